# mrvi-repro: the MrVI paper (Boyeau et al., Nature Methods 2025) as a Snakemake workflow.
#
#   snakemake --cores 2                       default config: offline semi-synthetic benchmark
#   snakemake --cores 2 --configfile FILE     another config (it replaces config/config.yaml)
#
# Output path grammar: every file of a dataset lives under results/{dataset}/, where {dataset} is a
# name from config["datasets"]:
#
#   results/{dataset}/raw/base.h5ad             raw counts before preprocessing (simulated bases)
#   results/{dataset}/data/preprocessed.h5ad    validated AnnData: raw counts of the HVGs in X (CSR),
#                                               contract keys and (semi-synthetic) ground truth in obs/uns
#   results/{dataset}/data/samples.tsv          one row per sample: covariates, number of cells
#   results/{dataset}/model/mrvi/               trained MrVI: model.json (config, registry, history)
#                                               and params.msgpack
#   results/{dataset}/model/mrvi_history.tsv    training history, one row per epoch
#   results/{dataset}/model/mrvi_latent.h5ad    cells' obs with latent u and z in
#                                               obsm["X_mrvi_u"], obsm["X_mrvi_z"] (no X)
#   results/{dataset}/analysis/sample_distances.nc  mean local sample distance matrix per label
#                                               group (netCDF: group x sample_x x sample_y)
#   results/{dataset}/analysis/da.nc            per-cell DA log ratio for each two-valued sample
#                                               covariate (netCDF: log_ratio_<covariate>, cell;
#                                               log_ratio_<covariate>_per_dimension with the
#                                               per-dimension estimator of analysis.da.estimators)
#   results/{dataset}/analysis/de.nc            per-cell DE of the analysis.de design: effect_size,
#                                               pvalue, padj (cell x covariate), beta (+ latent);
#                                               lfc (covariate x group x gene), mean per label group
#   results/{dataset}/analysis/stratification.nc  cells clustered by their distance matrices
#                                               (cell_cluster, pcs), per cluster the mean matrix,
#                                               the sample dendrogram (linkage, leaf_order) and
#                                               sample groups (sample_group: cluster x sample)
#   results/{dataset}/comparisons/              the entry's named comparisons: sample_groups.tsv
#                                               (derived sample covariates) and their tests;
#                                               de/{name}/de.nc (per-cell statistics, LFC means per
#                                               label group), lfc.zarr (per-cell LFCs), modules.tsv,
#                                               gsea.tsv; da/{name}/da.nc, cluster_test.tsv
#   results/{dataset}/model/scvi/               trained scVI (composition-scVI baseline), as model/mrvi/
#   results/{dataset}/model/scvi_history.tsv    its training history, one row per epoch
#   results/{dataset}/baselines/representations.h5ad  cells' obs with the baselines'
#                                               representations in obsm["X_pca"], obsm["X_scvi"] (no X)
#   results/{dataset}/baselines/composition_{rep}.nc  composition-PCA / -scVI sample distances per
#                                               cluster ({rep}: pca, scvi; layout of sample_distances.nc)
#   results/{dataset}/baselines/deseq2.tsv      DESeq2 pseudobulk table: one row per (two-valued
#                                               covariate, gene) with LFC, p-values
#   results/{dataset}/baselines/milo.nc         Milo DA: per-cell log_ratio_<covariate> (layout of
#                                               da.nc) and per-neighbourhood logFC, SpatialFDR
#   results/{dataset}/baselines/milode.nc       miloDE: lfc (covariate x group x gene), mean per label
#                                               group of the per-cell LFCs (layout of de.nc's lfc)
#   results/{dataset}/baselines/milode.tsv      miloDE table: one row per (covariate, neighbourhood,
#                                               gene) with logFC, p-values (gene- and nhood-corrected)
#   results/{dataset}/metrics/summary.tsv       every metric of the dataset: method, metric, value
#   results/{dataset}/metrics/integration.tsv   scib-metrics of MrVI u, scVI, PCA (records)
#   results/{dataset}/metrics/{da_pr,de_lfc,trees}.tsv  semi-synthetic only: PR curves, subset-A
#                                               LFCs vs DESeq2, tree recovery per method and group
#                                               (+ their records da.tsv, de.tsv, tree.tsv)
#   results/{dataset}/figures/*.png             Fig. 2 panels (semi-synthetic), metric tables, run
#                                               time; figures/data/umap.tsv.gz: 2-D UMAPs of u, z
#   results/{dataset}/figures/fig3/             entries asking for fig3: the cohort figure's panels
#                                               (*.png) and fig3f_module_genes.tsv
#   results/{dataset}/figures/fig4/             entries asking for fig4: the screen figure's panels
#   results/{dataset}/analysis/screen/          entries asking for fig4: CMap clusters of the drugs,
#                                               samples ranked by distance to the reference and
#                                               clustered, each cluster's DE and its enrichment
#   results/{dataset}/metrics/screen_metrics.tsv  fig4: Fig. 4d's metrics per method, permutations
#   results/{dataset}/figures/fig5/             entries asking for fig5: the disease-behaviour
#                                               figure's panels (Fig. 5, Extended Data Figs. 6-7)
#   results/{dataset}/metrics/claims.tsv        entries asking for fig3, fig4 or fig5: the paper's
#                                               statements checked (claim, paper, ours, margin,
#                                               holds)
#   results/{dataset}/logs/{rule}.log           log of each rule
#   results/{dataset}/benchmarks/{rule}.tsv     Snakemake benchmark (time, memory) of each rule
#
# Files from outside the workflow (rule `download`, registry config/downloads.yaml, checked against
# config/downloads.lock.tsv): resources/{resource} (the registry key is the path under resources/),
# with resources/logs/{resource}.log and resources/benchmarks/{resource}.tsv; files that need a
# sign-in are placed by hand in resources/manual/ (the rule's error says which and where).
#
# Further wildcards become path levels: logs/{rule}/{wildcard}.log, benchmarks/{rule}/{wildcard}.tsv.
# Targets: `all` (default), `fig2` (Fig. 2 panels of the semi-synthetic datasets), `fig3`, `fig4`,
# `fig5` (the cohort, screen and disease-behaviour figures and claims of the entries asking for
# them), `extended_data` (Extended Data figures made so far), `benchmarks` (run time and memory per rule). `snakemake --report report.html` gathers every figure and table.

import os

from snakemake.utils import min_version

min_version("9.0")


configfile: os.path.join(workflow.basedir, "config", "config.yaml")


# The report's landing page (`snakemake --report report.html`): what the run is, where to look.
report: "workflow/report/workflow.rst"


include: "workflow/rules/resources.smk"
include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/downloads.smk"


if STANDINS:

    include: "workflow/rules/standins.smk"


include: "workflow/rules/mrvi.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/comparisons.smk"
include: "workflow/rules/baselines.smk"
include: "workflow/rules/screen.smk"
include: "workflow/rules/metrics.smk"
include: "workflow/rules/figures.smk"


rule all:
    default_target: True
    input:
        get_final_outputs(),
