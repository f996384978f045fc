"""miloDE: differential expression within overlapping neighbourhoods, ported from R to Python.

Paper: Methods "Benchmark" (miloDE, Missarova et al. 2024, the DE baseline); the paper's code:
``bin/run_milode.R`` in YosefLab/mrvi-reproducibility. This is a port of MarioniLab/miloDE (MIT);
like this package it is GPL-3.0, as its edgeR backend ``edgepython`` is. The algorithm is theirs,
the code is written from its description.

1. Neighbourhoods (``assign_neighbourhoods(k=20, order=2, filtering=TRUE)`` as the paper ran it):
   an undirected kNN graph (k neighbours, union) on the first ``n_dims`` dimensions; ``prop`` of the
   cells sampled at random and each replaced by the neighbour with the most triangles in the
   subgraph induced by its neighbours (first by cell order on ties; duplicates dropped); a
   neighbourhood is the index cell and every cell within ``order`` steps of it; with ``filtering``
   a greedy set cover keeps the fewest neighbourhoods that still cover every covered cell.
2. Per neighbourhood (``de_test_neighbourhoods(min_n_cells_per_sample=3, min_count=3)``): samples
   with fewer than ``min_n_cells_per_sample`` cells in it are dropped, the counts are summed per
   sample, genes are kept by edgeR's ``filterByExpr`` (group = sample, ``min.count = min_count``,
   ``min.total.count = round(1.5 * min_count)``; library sizes stay those of all genes), then TMM,
   ``estimateDisp``, ``glmQLFit(robust=TRUE)`` and the QL F-test of the last design column
   (edgepython, the Python port of edgeR). With ``legacy_ql`` (the default) this is edgeR 3.x,
   as in the paper's environment: the legacy quasi-likelihood fit and ``estimateDisp``'s legacy
   dispersion-trend span, ``0.25 + 0.75 * sqrt(50 / n_genes)`` (edgeR >= 4 and edgepython's
   default use ``chooseLowessSpan``). A neighbourhood whose design cannot be fitted (one
   covariate level left, a factor with one level, no residual degree of freedom) is not tested.
3. p-values: BH across the genes of a neighbourhood (edgeR's FDR) and, per gene, miloDE's
   ``spatial_pval_adjustment`` across neighbourhoods as miloDE has run it since January 2023:
   over the neighbourhoods where the gene was tested only, a weighted BH with weights
   1 / (cells the neighbourhood shares with those neighbourhoods, itself included); a gene tested
   in one neighbourhood keeps its raw p-value there. (Before, the weights were taken over every
   neighbourhood and a lone p-value was corrected too.)

Checked against R (``tests/baselines/test_milode_oracle.py``, inputs and R's numbers in
``tests/baselines/data/``): on fixed pseudobulks of 7 neighbourhoods (designs ``~ cond`` and
``~ batch + cond``), edgeR 3.40.2's p-values, FDR and miloDE's corrected p-values agree to 1e-8
relative and its logFC to 6e-8 (log2); with edgeR >= 4's span instead, p-values differed by up
to 7% and logFC by up to 0.009, and with the pre-2023 correction the corrected p-values by up to
15%. On the default run's 34 neighbourhoods (31,830 tests, not stored) the agreement was 3e-6
relative (p-values) and 8e-8 (logFC).

A cell's LFC for a gene is the mean logFC over the tested neighbourhoods containing it that kept
the gene; NaN where there is none (cells in no neighbourhood, genes filtered out everywhere).
"""

from __future__ import annotations

import heapq
import logging
import math
import warnings
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr
from scipy import sparse
from threadpoolctl import threadpool_limits

from mrvi_repro.data.contract import per_sample
from mrvi_repro.settings.baselines import MiloDEConfig

from ._checks import check_counts, check_obs_keys
from ._composition import _representation
from ._deseq2 import pseudobulk
from ._milo import binary_levels, cell_means, check_design_rank, knn_adjacency

if TYPE_CHECKING:
    from collections.abc import Iterator

    from anndata import AnnData

logger = logging.getLogger(__name__)

#: Sign convention of the LFCs (stored in ``attrs``).
DE_SIGN_CONVENTION = (
    "positive = higher expression in samples of group_a (the covariate's second level in sorted "
    "string order) than in samples of group_b (the first); log2"
)

#: Columns of :attr:`MiloDEResult.table`, in order.
MILODE_COLUMNS = (
    "nhood",
    "nhood_center",
    "gene",
    "test_performed",
    "logFC",
    "pvalue",
    "pval_corrected_across_genes",
    "pval_corrected_across_nhoods",
)


@dataclass(frozen=True)
class MiloDEResult:
    """Output of :func:`milode`.

    Attributes
    ----------
    lfc
        Dataset with ``lfc`` (cell, gene; float32, log2, NaN where no tested neighbourhood of the
        cell kept the gene) and ``n_nhoods`` (cell: neighbourhoods containing the cell);
        coordinates ``cell`` (obs names) and ``gene`` (var names, all genes).
    table
        One row per (neighbourhood, gene) for the genes tested somewhere, columns
        :data:`MILODE_COLUMNS`; NaN statistics where a gene was filtered out or the neighbourhood
        not tested (``test_performed`` False).
    nhoods
        ``cells x nhoods`` 0/1 CSR membership (columns in the order of ``table['nhood']``).
    index_cells
        Obs name of each neighbourhood's index cell.
    """

    lfc: xr.Dataset
    table: pd.DataFrame
    nhoods: sparse.csr_matrix
    index_cells: np.ndarray


def refined_index_cells(
    adjacency: sparse.csr_matrix, *, prop: float, rng: np.random.Generator
) -> np.ndarray:
    """Sample ``floor(prop * n)`` cells and move each to its neighbour with the most triangles.

    For each sampled cell, the triangles of every neighbour are counted in the subgraph induced by
    the cell's neighbours (the cell excluded); the first neighbour (in cell order) with the most
    wins. Repeated picks are kept once, in order of first appearance (miloDE's
    ``.get_graph_refined_sampling``).

    Parameters
    ----------
    adjacency
        Symmetric 0/1 CSR graph with sorted indices and no self-loops.
    prop
        Fraction of cells sampled.
    rng
        Random generator.

    Returns
    -------
    Index cells (positions), unique, in order of first pick.
    """
    n = adjacency.shape[0]
    size = math.floor(prop * n)
    if size < 1:
        msg = f"prop = {prop} samples no cell out of {n}"
        raise ValueError(msg)
    sampled = rng.choice(n, size=size, replace=False)
    picks = np.empty(size, dtype=np.int64)
    indptr, indices = adjacency.indptr, adjacency.indices
    for i, v in enumerate(sampled):
        nbrs = indices[indptr[v] : indptr[v + 1]]
        if nbrs.size == 0:  # an isolated cell (cannot happen in a kNN graph) stays itself
            picks[i] = v
            continue
        sub = adjacency[nbrs][:, nbrs].toarray()
        triangles = ((sub @ sub) * sub).sum(axis=1)  # twice the triangles through each vertex
        picks[i] = nbrs[int(np.argmax(triangles))]
    _, first = np.unique(picks, return_index=True)
    return picks[np.sort(first)]


def greedy_set_cover(nhoods: sparse.csc_matrix) -> np.ndarray:
    """Greedy set cover of the covered cells: the neighbourhoods kept, in their original order.

    Repeatedly takes the neighbourhood covering the most still-uncovered cells (ties: the first
    column), until every cell of some neighbourhood is covered.

    Parameters
    ----------
    nhoods
        ``cells x nhoods`` 0/1 CSC membership.

    Returns
    -------
    Sorted column positions of the kept neighbourhoods.
    """
    nhoods = sparse.csc_matrix(nhoods)
    indptr, indices = nhoods.indptr, nhoods.indices
    covered = np.zeros(nhoods.shape[0], dtype=bool)
    n_left = int((np.diff(sparse.csr_matrix(nhoods).indptr) > 0).sum())
    heap = [(-(indptr[j + 1] - indptr[j]), j) for j in range(nhoods.shape[1])]
    heapq.heapify(heap)
    kept = []
    while n_left > 0 and heap:
        neg_gain, j = heapq.heappop(heap)
        cells = indices[indptr[j] : indptr[j + 1]]
        gain = int((~covered[cells]).sum())
        if gain == 0:
            continue
        if gain < -neg_gain:  # stale gain: re-queue with the current one (lazy greedy)
            heapq.heappush(heap, (-gain, j))
            continue
        covered[cells] = True
        n_left -= gain
        kept.append(j)
    return np.sort(np.asarray(kept, dtype=np.int64))


def assign_neighbourhoods(
    representation: np.ndarray, config: MiloDEConfig | None = None
) -> tuple[sparse.csr_matrix, np.ndarray]:
    """Assign miloDE's neighbourhoods of cells on a representation.

    Parameters
    ----------
    representation
        ``n_cells x d`` array.
    config
        Graph and sampling settings (``k``, ``k_init``, ``n_dims``, ``prop``, ``order``,
        ``filtering``, ``seed``).

    Returns
    -------
    nhoods
        ``cells x nhoods`` 0/1 CSR membership (index cell included).
    index
        Position of each neighbourhood's index cell.
    """
    cfg = config or MiloDEConfig()
    rep = np.asarray(representation)
    n_dims = min(cfg.n_dims, rep.shape[1])
    k_init = min(cfg.k, cfg.k_init)
    if cfg.k >= rep.shape[0]:
        msg = f"k = {cfg.k} needs more than {cfg.k} cells (got {rep.shape[0]})"
        raise ValueError(msg)
    graph, _ = knn_adjacency(rep[:, :n_dims], k=k_init, seed=cfg.seed)
    index = refined_index_cells(graph, prop=cfg.prop, rng=np.random.default_rng(cfg.seed))
    if cfg.k != k_init:
        graph, _ = knn_adjacency(rep[:, :n_dims], k=cfg.k, seed=cfg.seed)
    n = graph.shape[0]
    own = sparse.csr_matrix(
        (np.ones(index.size), (index, np.arange(index.size))), shape=(n, index.size)
    )
    members = graph[:, index] + own
    if cfg.order == 2:
        members = members + graph @ graph[:, index]
    members = sparse.csr_matrix(members)
    members.data[:] = 1.0
    members.eliminate_zeros()
    n_sampled = index.size
    if cfg.filtering:
        keep = greedy_set_cover(members.tocsc())
        members, index = sparse.csr_matrix(members[:, keep]), index[keep]
    sizes = np.asarray(members.sum(axis=0)).ravel()
    logger.info(
        "miloDE: %d neighbourhoods (%d index cells before filtering; k=%d, order %d), "
        "mean size %.1f, %d cells in none",
        index.size,
        n_sampled,
        cfg.k,
        cfg.order,
        sizes.mean(),
        int((np.diff(members.indptr) == 0).sum()),
    )
    return members, index


def weighted_bh(pvalues: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted Benjamini-Hochberg over the non-NaN p-values (NaN stays NaN).

    ``adj_(i) = min_{j >= i} (sum(w) * p_(j) / cumsum(w)_(j))``, capped at 1, in increasing order
    of p (ties in original order): the correction inside miloDE's ``spatial_pval_adjustment``.

    Parameters
    ----------
    pvalues
        p-values, NaN where there is none.
    weights
        One positive weight per p-value (those of NaN p-values are ignored).

    Returns
    -------
    Adjusted p-values, NaN where ``pvalues`` is.
    """
    p = np.asarray(pvalues, dtype=float)
    w = np.asarray(weights, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    if ok.size == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    ws = w[order]
    adj = ws.sum() * p[order] / np.cumsum(ws)
    adj = np.minimum.accumulate(adj[::-1])[::-1]
    out[order] = np.minimum(adj, 1.0)
    return out


def overlap_matrix(nhoods: sparse.spmatrix) -> np.ndarray:
    """Return the cells shared by each pair of neighbourhoods (``crossprod(nhoods)``; dense).

    Parameters
    ----------
    nhoods
        ``cells x nhoods`` 0/1 membership.

    Returns
    -------
    ``nhoods x nhoods`` array; the diagonal holds the neighbourhood sizes.
    """
    membership = sparse.csc_matrix(nhoods, dtype=np.float64)
    return np.asarray((membership.T @ membership).toarray())


def _spatial_adjust(pvalues: np.ndarray, overlap: np.ndarray) -> np.ndarray:
    """:func:`spatial_pval_adjustment` given the neighbourhoods' :func:`overlap_matrix`."""
    p = np.asarray(pvalues, dtype=float)
    ok = np.flatnonzero(np.isfinite(p))
    if ok.size <= 1:  # miloDE returns the p-values as they are
        return p.copy()
    out = np.full(p.shape, np.nan)
    weights = 1.0 / overlap[np.ix_(ok, ok)].sum(axis=1)
    out[ok] = weighted_bh(p[ok], weights)
    return out


def spatial_pval_adjustment(pvalues: np.ndarray, nhoods: sparse.spmatrix) -> np.ndarray:
    """Correct one gene's p-values across neighbourhoods, as miloDE's ``spatial_pval_adjustment``.

    Only the neighbourhoods with a p-value (not NaN) count: each is weighted by 1 / its total
    overlap (cells shared, itself included) with those neighbourhoods, and the p-values are
    corrected by :func:`weighted_bh`. Where fewer than two neighbourhoods have a p-value, the
    p-values are returned unchanged (miloDE since 2023; before, the weights were taken over
    every neighbourhood and a single p-value was corrected as one of them).

    Parameters
    ----------
    pvalues
        One p-value per neighbourhood, NaN where the gene was not tested.
    nhoods
        ``cells x nhoods`` 0/1 membership, columns in the order of ``pvalues``.

    Returns
    -------
    Corrected p-values, NaN where ``pvalues`` is.
    """
    return _spatial_adjust(pvalues, overlap_matrix(nhoods))


def correct_across_nhoods(pvalues: np.ndarray, nhoods: sparse.spmatrix) -> np.ndarray:
    """Apply :func:`spatial_pval_adjustment` to every gene (column) of a p-value matrix.

    Parameters
    ----------
    pvalues
        ``nhoods x genes`` p-values, NaN where a gene was not tested in a neighbourhood.
    nhoods
        ``cells x nhoods`` 0/1 membership, columns in the order of the rows of ``pvalues``.

    Returns
    -------
    ``nhoods x genes`` corrected p-values; all NaN for a gene tested nowhere.
    """
    p = np.asarray(pvalues, dtype=float)
    overlap = overlap_matrix(nhoods)
    out = np.full(p.shape, np.nan)
    for g in np.flatnonzero(np.isfinite(p).any(axis=0)):
        out[:, g] = _spatial_adjust(p[:, g], overlap)
    return out


def _design(meta: pd.DataFrame, batched: bool) -> np.ndarray | None:
    """Treatment-coded ``~ (batch +) covariate`` for the samples present, or None if unfittable.

    Unfittable, as R's ``model.matrix``/edgeR would fail: a factor with one level present, a
    design not of full rank, or no residual degree of freedom.
    """
    columns = [np.ones(len(meta))]
    factors = (["batch"] if batched else []) + ["covariate"]
    for factor in factors:
        levels = sorted(meta[factor].unique())
        if len(levels) < 2:
            return None
        columns += [(meta[factor] == lv).to_numpy(dtype=float) for lv in levels[1:]]
    design = np.column_stack(columns)
    if np.linalg.matrix_rank(design) < design.shape[1] or len(meta) <= design.shape[1]:
        return None
    return design


def _filter_genes(counts: pd.DataFrame, min_count: float) -> np.ndarray:
    """Positions of the genes ``filterByExpr`` keeps (group = sample), all genes if min_count is 0."""
    import edgepython as ep

    if min_count <= 0:
        return np.arange(counts.shape[1])
    y = counts.to_numpy(dtype=np.float64).T
    keep = ep.filter_by_expr(
        y,
        group=counts.index.to_numpy(),
        lib_size=y.sum(axis=0),
        min_count=min_count,
        min_total_count=round(1.5 * min_count),
    )
    return np.flatnonzero(keep)


def ql_test(
    counts: pd.DataFrame, design: np.ndarray, keep: np.ndarray, *, legacy: bool = True
) -> pd.DataFrame:
    """Run the edgeR QL F-test of the last design column on a pseudobulk, as miloDE runs it.

    Parameters
    ----------
    counts
        Samples x genes summed counts.
    design
        Samples x coefficients design matrix.
    keep
        Gene positions tested; library sizes are those of all genes (R's ``y[keep, ]``).
    legacy
        edgeR < 4, as in the paper's environment: the legacy quasi-likelihood fit and the legacy
        span of the dispersion trend; False: edgeR >= 4's defaults for both.

    Returns
    -------
    edgepython's ``topTags`` table (``logFC``, ``logCPM``, ``F``, ``PValue``, ``FDR``) for the kept
    genes, in their order.
    """
    import edgepython as ep

    y = counts.to_numpy(dtype=np.float64).T  # genes x samples
    dge = ep.make_dgelist(y[keep], lib_size=y.sum(axis=0))
    dge = ep.calc_norm_factors(dge)
    # edgeR < 4 also chose the dispersion trend's span by the legacy rule (WLEB's
    # 0.25 + 0.75 * sqrt(50 / n_genes)); edgeR >= 4, and edgepython by default, by chooseLowessSpan
    dge = ep.estimate_disp(dge, design=design, legacy_span=legacy)
    fit = ep.glm_ql_fit(dge, design=design, robust=True, legacy=legacy)
    res = ep.glm_ql_ftest(fit, coef=design.shape[1] - 1)
    return ep.top_tags(res, n=np.inf, sort_by="none")["table"]


def _config_attrs(cfg: MiloDEConfig) -> dict[str, object]:
    """Return the settings as ``attrs`` (booleans as 0/1, which netCDF can store)."""
    return {
        f"config_{key}": int(value) if isinstance(value, bool) else value
        for key, value in asdict(cfg).items()
    }


@contextmanager
def _numba_threads(n: int) -> Iterator[None]:
    """Run numba's parallel kernels (edgepython's) on at most ``n`` threads inside the block."""
    import numba

    previous = numba.get_num_threads()
    numba.set_num_threads(min(n, previous))
    try:
        yield
    finally:
        numba.set_num_threads(previous)


def milode(
    adata: AnnData,
    *,
    sample_key: str,
    covariate: str,
    batch_key: str | None = None,
    representation: str | np.ndarray = "X_pca",
    config: MiloDEConfig | None = None,
) -> MiloDEResult:
    """miloDE: per-neighbourhood DE of a two-valued sample covariate and per-cell LFCs.

    See the module docstring for the steps. The design is ``~ covariate`` or, when ``batch_key``
    takes several values, ``~ batch + covariate``; the tested coefficient is the covariate's
    (the last column).

    Parameters
    ----------
    adata
        Raw counts in ``X`` (dense or sparse); ``obs`` holds the keys below.
    sample_key
        ``obs`` column of the sample (the pseudobulk unit).
    covariate
        Sample-level ``obs`` column with exactly two values.
    batch_key
        Optional sample-level ``obs`` column added to the design if it takes several values.
    representation
        ``obsm`` key or ``n_obs x d`` array (e.g. :func:`pca_representation`; with several
        batches a batch-corrected one, as the paper's MNN-corrected PCA).
    config
        :class:`MiloDEConfig`.

    Returns
    -------
    :class:`MiloDEResult`. Sign: positive logFC = higher expression in samples of ``group_a``
    (the covariate's second level in sorted string order) than of ``group_b``, as the other DA/DE
    outputs (:data:`DE_SIGN_CONVENTION`); the levels are in
    ``lfc.attrs``.

    Raises
    ------
    ValueError
        For an unknown key, non-count data, a covariate or batch varying within a sample, a
        covariate without exactly two values or with fewer than 2 samples per level, a batch
        confounded with the covariate, a neighbourhood where no gene passes ``filterByExpr``
        (miloDE stops there too), or when no neighbourhood can be tested.
    """
    cfg = config or MiloDEConfig()
    check_obs_keys(adata, sample_key=sample_key, covariate=covariate, batch_key=batch_key)
    check_counts(adata.X, where="X")
    values, levels = binary_levels(adata, sample_key=sample_key, covariate=covariate)
    meta = pd.DataFrame({"covariate": values})
    batched = False
    design_shown = f"~ {covariate}"
    if batch_key is not None:
        batches = per_sample(adata, sample_key, batch_key).astype(str)
        if batches.nunique() > 1:
            check_design_rank(batches, values, batch_key=batch_key, covariate=covariate)
            meta["batch"] = batches.reindex(meta.index)
            batched = True
            design_shown = f"~ {batch_key} + {covariate}"
        else:
            logger.info("miloDE: batch_key %r has one value; left out of the design", batch_key)
    rep = _representation(adata, representation)
    nhoods, index = assign_neighbourhoods(rep, cfg)
    n_nhoods, genes = nhoods.shape[1], adata.var_names.astype(str).to_numpy()
    logfc = np.full((n_nhoods, genes.size), np.nan)
    pval = np.full((n_nhoods, genes.size), np.nan)
    fdr = np.full((n_nhoods, genes.size), np.nan)
    tested = np.zeros(n_nhoods, dtype=bool)
    members = nhoods.tocsc()
    why: dict[str, int] = {"no sample with enough cells": 0, "design not estimable": 0}
    step = max(1, n_nhoods // 10)
    # edgepython's fits are small: threaded BLAS and numba's parallel kernels only add contention
    # (measured 10x slower on 2 busy cores)
    with (
        threadpool_limits(limits=1, user_api="blas"),
        _numba_threads(1),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore", RuntimeWarning)
        for j in range(n_nhoods):
            if j and j % step == 0:
                logger.info("miloDE: %d of %d neighbourhoods done", j, n_nhoods)
            mask = np.zeros(adata.n_obs, dtype=bool)
            mask[members.indices[members.indptr[j] : members.indptr[j + 1]]] = True
            counts, n_cells = pseudobulk(adata, sample_key=sample_key, mask=mask)
            counts = counts.loc[n_cells >= cfg.min_n_cells_per_sample]
            if counts.shape[0] == 0:
                why["no sample with enough cells"] += 1
                continue
            # as miloDE: the gene filter (which may stop the run) comes before the fit
            keep = _filter_genes(counts, cfg.min_count)
            if keep.size == 0:
                msg = (
                    f"miloDE: neighbourhood {j} (index cell {adata.obs_names[index[j]]!r}) keeps "
                    f"no gene under filterByExpr (min_count={cfg.min_count}); lower min_count"
                )
                raise ValueError(msg)
            design = _design(meta.loc[counts.index], batched)
            if design is None:
                why["design not estimable"] += 1
                continue
            try:
                table = ql_test(counts, design, keep, legacy=cfg.legacy_ql)
            except (ValueError, ArithmeticError, np.linalg.LinAlgError) as err:
                # miloDE catches any failed fit and reports the neighbourhood as not tested
                logger.warning("miloDE: neighbourhood %d not tested: %s", j, err)
                why["fit failed"] = why.get("fit failed", 0) + 1
                continue
            logfc[j, keep] = table["logFC"].to_numpy()
            pval[j, keep] = table["PValue"].to_numpy()
            fdr[j, keep] = table["FDR"].to_numpy()
            tested[j] = True
    if not tested.any():
        msg = (
            f"miloDE: none of the {n_nhoods} neighbourhoods could be tested ({why}); each needs "
            f">= {cfg.min_n_cells_per_sample} cells from samples of both levels of {covariate!r}"
        )
        raise ValueError(msg)
    logger.info(
        "miloDE: %d of %d neighbourhoods tested; not tested: %s", tested.sum(), n_nhoods, why
    )

    used = np.flatnonzero(np.isfinite(pval).any(axis=0))  # genes tested somewhere (miloDE)
    across = correct_across_nhoods(pval, nhoods)

    obs_names = adata.obs_names.astype(str).to_numpy()
    centers = obs_names[index]
    table = pd.DataFrame(
        {
            "nhood": np.repeat(np.arange(n_nhoods), used.size),
            "nhood_center": np.repeat(centers, used.size),
            "gene": np.tile(genes[used], n_nhoods),
            "test_performed": np.repeat(tested, used.size),
            "logFC": logfc[:, used].ravel(),
            "pvalue": pval[:, used].ravel(),
            "pval_corrected_across_genes": fdr[:, used].ravel(),
            "pval_corrected_across_nhoods": across[:, used].ravel(),
        },
        columns=list(MILODE_COLUMNS),
    )
    cell_lfc, _ = cell_means(nhoods, logfc)
    n_per_cell = np.diff(nhoods.indptr).astype(np.int32)
    attrs = {
        "method": "milode",
        "covariate": covariate,
        "group_a": levels[1],
        "group_b": levels[0],
        "sample_key": sample_key,
        "batch_key": "" if batch_key is None else batch_key,
        "design": design_shown,
        "sign_convention": DE_SIGN_CONVENTION,
        "n_nhoods": int(n_nhoods),
        "n_tested": int(tested.sum()),
        **_config_attrs(cfg),
    }
    table.attrs = dict(attrs)
    lfc = xr.Dataset(
        {"lfc": (("cell", "gene"), cell_lfc), "n_nhoods": ("cell", n_per_cell)},
        coords={"cell": obs_names, "gene": genes},
        attrs=attrs,
    )
    return MiloDEResult(lfc=lfc, table=table, nhoods=sparse.csr_matrix(nhoods), index_cells=centers)
