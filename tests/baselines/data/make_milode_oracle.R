# Oracle numbers for tests/baselines/test_milode_oracle.py: miloDE's per-neighbourhood edgeR test
# and its correction across neighbourhoods, computed by R on small fixed pseudobulks.
#
# Run (not by the tests; they read the files it writes) from this directory:
#   Rscript make_milode_oracle.R
# It was run with R 4.2.2 Patched (2022-11-10 r83330), edgeR 3.40.2, limma 3.54.1, locfit 1.5-9.7
# (Debian bookworm: apt-get install r-base-core r-bioc-edger), and wrote
#   milode_oracle_samples.tsv       sample, cond, batch
#   milode_oracle_pseudobulk.tsv.gz one row per (nhood, sample with >= 1 cell in it): nhood,
#                                   sample, n_cells, then the summed counts of g001..g200
#   milode_oracle_nhoods.tsv.gz     cell, nhood: the cells x nhoods membership (0-based)
#   milode_oracle_edger.tsv.gz      design, nhood, gene, logFC, PValue, FDR,
#                                   pval_corrected_across_nhoods (genes tested in the nhood only)
#
# The data: 8 samples (cond ctrl s1-s4, treated s5-s8; batch b1/b2 alternating) whose cells lie
# on [0, 1]; 7 overlapping neighbourhoods are windows of it. Treated samples have no cells above
# 0.9, so the last window holds one level of cond and is not tested; s4 has 2 cells below 0.3,
# so the first window drops it (min_n_cells_per_sample = 3). Genes g001-g008 are expressed below
# 0.15 only (tested in the first window only: their corrected p-value is the raw one), g009-g014
# between 0.7 and 0.8 (tested in two windows); g015-g040 and g041-g050 are DE in the lower and
# upper half; g181-g200 are too low to pass filterByExpr anywhere.
#
# The per-neighbourhood test is miloDE's de_test_single_neighbourhood (MarioniLab/miloDE, R/
# de_test_neighbourhoods.R) with min_n_cells_per_sample = 3, min_count = 3, written out here with
# edgeR's calls so that miloDE (and miloR) need not be installed: samples with fewer than 3 cells
# dropped, filterByExpr(group = sample, min.count = 3, min.total.count = round(4.5)), y[keep, ]
# (library sizes of all genes kept), calcNormFactors, model.matrix(design), estimateDisp,
# glmQLFit(robust = TRUE), glmQLFTest(coef = ncol(design)), topTags(n = Inf); a neighbourhood
# whose fit fails is not tested. The correction across neighbourhoods is miloDE's current
# spatial_pval_adjustment (since January 2023), from its definition: per gene, over the
# neighbourhoods where it was tested, weights 1 / rowSums(crossprod(nhoods[, tested])) and a
# weighted BH; a gene tested in a single neighbourhood keeps its raw p-value.

suppressPackageStartupMessages(library(edgeR))

set.seed(20240516)
n_genes <- 200
genes <- sprintf("g%03d", seq_len(n_genes))
samples <- data.frame(
  sample = sprintf("s%d", 1:8),
  cond = rep(c("ctrl", "treated"), each = 4),
  batch = rep(c("b1", "b2"), 4)
)

# cells: 70 per sample at uniform positions (treated below 0.9; s4 with 2 cells below 0.3)
pos <- list()
for (s in samples$sample) {
  treated <- samples$cond[samples$sample == s] == "treated"
  x <- runif(70, 0, if (treated) 0.9 else 1)
  if (s == "s4") x <- c(runif(2, 0, 0.3), runif(68, 0.3, 1))
  pos[[s]] <- x
}
cell_sample <- rep(names(pos), lengths(pos))
cell_x <- unlist(pos, use.names = FALSE)
n_cells <- length(cell_x)
cell_treated <- samples$cond[match(cell_sample, samples$sample)] == "treated"

# expression: baseline means, regional genes, DE, per-sample biological variation, cell sizes
base <- exp(rnorm(n_genes, log(0.5), 1.2))
base[181:200] <- 0.004
mu <- matrix(base, n_cells, n_genes, byrow = TRUE)
mu[cell_x >= 0.15, 1:8] <- 0
mu[cell_x < 0.7 | cell_x > 0.8, 9:14] <- 0
mu[, 1:14] <- mu[, 1:14] * 4
lfc <- sample(c(-1.2, 1.2), 36, replace = TRUE)
low <- cell_x < 0.5
mu[low & cell_treated, 15:40] <- sweep(mu[low & cell_treated, 15:40, drop = FALSE], 2, 2^lfc[1:26], "*")
mu[!low & cell_treated, 41:50] <- sweep(mu[!low & cell_treated, 41:50, drop = FALSE], 2, 2^lfc[27:36], "*")
phi <- runif(n_genes, 0.03, 0.25)
effect <- sapply(phi, function(p) rgamma(nrow(samples), shape = 1 / p, rate = 1 / p))
rownames(effect) <- samples$sample
size <- exp(rnorm(n_cells, 0, 0.3))
mu <- mu * effect[cell_sample, ] * size
counts <- matrix(rpois(length(mu), mu), n_cells, n_genes, dimnames = list(NULL, genes))

# neighbourhoods: windows of [0, 1]
windows <- rbind(c(0, 0.3), c(0.2, 0.5), c(0.3, 0.65), c(0.4, 0.7), c(0.6, 0.85), c(0.75, 1),
                 c(0.91, 1))
nhoods <- sapply(seq_len(nrow(windows)), function(j) {
  as.numeric(cell_x >= windows[j, 1] & cell_x <= windows[j, 2])
})
n_nhoods <- ncol(nhoods)

pseudobulks <- lapply(seq_len(n_nhoods), function(j) {
  in_j <- nhoods[, j] == 1
  summed <- rowsum(counts[in_j, , drop = FALSE], cell_sample[in_j], reorder = TRUE)
  list(counts = summed, n_cells = as.vector(table(cell_sample[in_j])[rownames(summed)]))
})

test_nhood <- function(pb, design_formula) {
  kept <- pb$n_cells >= 3
  y <- DGEList(t(pb$counts[kept, , drop = FALSE]),
               samples = samples[match(rownames(pb$counts)[kept], samples$sample), ])
  keep <- filterByExpr(y, group = rownames(pb$counts)[kept], min.count = 3,
                       min.total.count = round(3 * 1.5))
  y <- y[keep, ]
  y <- calcNormFactors(y)
  tryCatch({
    design <- model.matrix(design_formula, data = y$samples)
    y <- estimateDisp(y, design)
    fit <- glmQLFit(y, design, robust = TRUE)
    res <- glmQLFTest(fit, coef = ncol(design))
    tab <- as.data.frame(topTags(res, n = Inf, sort.by = "none"))
    data.frame(gene = rownames(tab), logFC = tab$logFC, PValue = tab$PValue, FDR = tab$FDR)
  }, error = function(err) NULL)
}

spatial_adjust <- function(p, nhoods) {
  tested <- which(!is.na(p))
  if (length(tested) <= 1) return(p)
  w <- 1 / rowSums(crossprod(nhoods[, tested, drop = FALSE]))
  q <- p[tested]
  o <- order(q)
  adj <- numeric(length(q))
  adj[o] <- rev(cummin(rev(sum(w[o]) * q[o] / cumsum(w[o]))))
  out <- rep(NaN, length(p))
  out[tested] <- pmin(adj, 1)
  out
}

fmt <- function(x) ifelse(is.na(x), "nan", sprintf("%.17g", x))
designs <- list("~ cond" = ~cond, "~ batch + cond" = ~ batch + cond)
oracle <- list()
for (d in names(designs)) {
  pval <- matrix(NA_real_, n_genes, n_nhoods, dimnames = list(genes, NULL))
  tables <- list()
  for (j in seq_len(n_nhoods)) {
    tab <- test_nhood(pseudobulks[[j]], designs[[d]])
    if (is.null(tab)) next
    tab$nhood <- j - 1
    tables[[length(tables) + 1]] <- tab
    pval[tab$gene, j] <- tab$PValue
  }
  across <- t(apply(pval, 1, spatial_adjust, nhoods = nhoods))
  dimnames(across) <- dimnames(pval)
  tab <- do.call(rbind, tables)
  tab$pval_corrected_across_nhoods <- across[cbind(match(tab$gene, genes), tab$nhood + 1)]
  tab$design <- d
  oracle[[d]] <- tab
}
oracle <- do.call(rbind, oracle)
oracle <- data.frame(design = oracle$design, nhood = oracle$nhood, gene = oracle$gene,
                     logFC = fmt(oracle$logFC), PValue = fmt(oracle$PValue),
                     FDR = fmt(oracle$FDR),
                     pval_corrected_across_nhoods = fmt(oracle$pval_corrected_across_nhoods))

write_gz <- function(df, path) {
  con <- gzfile(path, "w")
  write.table(df, con, sep = "\t", quote = FALSE, row.names = FALSE)
  close(con)
}
write.table(samples, "milode_oracle_samples.tsv", sep = "\t", quote = FALSE, row.names = FALSE)
pb <- do.call(rbind, lapply(seq_len(n_nhoods), function(j) {
  data.frame(nhood = j - 1, sample = rownames(pseudobulks[[j]]$counts),
             n_cells = pseudobulks[[j]]$n_cells, pseudobulks[[j]]$counts, check.names = FALSE)
}))
write_gz(pb, "milode_oracle_pseudobulk.tsv.gz")
members <- which(nhoods == 1, arr.ind = TRUE)
members <- members[order(members[, 2], members[, 1]), ]
write_gz(data.frame(cell = members[, 1] - 1, nhood = members[, 2] - 1),
         "milode_oracle_nhoods.tsv.gz")
write_gz(oracle, "milode_oracle_edger.tsv.gz")
cat(sprintf("%d rows; nhoods tested per design: %s\n", nrow(oracle),
            paste(tapply(oracle$nhood, oracle$design, function(x) length(unique(x))),
                  collapse = ", ")))
