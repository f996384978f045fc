"""Milo differential abundance (pertpy) with per-cell scores, the paper's DA baseline.

Paper: Methods "Benchmark" (Milo, Dann et al. 2022); the paper's code: ``bin/run_milo.R`` and the
per-cell scores of ``bin/produce_figures_pbmc68k_for_subsample.py`` in YosefLab/mrvi-reproducibility.
The authors ran R miloR on an MNN-corrected PCA: ``buildGraph(k=30, d=30)``,
``makeNhoods(prop=0.1, refined=TRUE)``, counts of cells per sample and neighbourhood, and
``testNhoods`` with design ``~ covariate (+ batch)``; a cell's score is the mean log fold change of
the neighbourhoods that contain it. Here the same steps run in scverse's Python Milo
(``pertpy.tl.Milo``, solver ``"pydeseq2"``: TMM-normalised negative-binomial GLMs with pydeseq2
dispersions and a likelihood-ratio test, and the k-distance weighted "spatial" FDR), on any
representation (by default the PCA of :func:`mrvi_repro.baselines.pca_representation`). With one
batch no batch correction is needed, so the PCA stands in for the paper's corrected PCA; with
several batches pass a batch-corrected representation and ``batch_key``.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import asdict
from typing import TYPE_CHECKING

import anndata as ad
import numpy as np
import pandas as pd
import xarray as xr
from scipy import sparse

from mrvi_repro._graph import knn_graph
from mrvi_repro.data.contract import per_sample
from mrvi_repro.settings.baselines import MiloConfig

from ._checks import check_obs_keys
from ._composition import _representation

if TYPE_CHECKING:
    from anndata import AnnData

logger = logging.getLogger(__name__)

#: Internal column names of the design (free of characters a formula cannot hold).
_SAMPLE, _COVARIATE, _BATCH = "sample", "covariate", "batch"

#: Sign convention shared by the DA outputs (stored in ``attrs``).
SIGN_CONVENTION = (
    "positive = more abundant in group_a (the covariate's second level in sorted string order) "
    "than in group_b (the first), as MrVI's differential_abundance_binary"
)


def binary_levels(
    adata: AnnData, *, sample_key: str, covariate: str, min_samples: int = 2
) -> tuple[pd.Series, list[str]]:
    """Sample-level values of a two-valued covariate and its levels in sorted string order.

    The order is MrVI's (:func:`mrvi_repro.analysis.differential_abundance_binary`): the second
    level is the tested group (``group_a``), the first the reference (``group_b``).

    Parameters
    ----------
    adata
        Cells with ``obs[sample_key]`` and ``obs[covariate]``.
    sample_key, covariate
        ``obs`` columns of the sample and of the sample-level covariate.
    min_samples
        Smallest number of samples each level must have.

    Returns
    -------
    values
        Covariate value (str) per sample (index: sample name).
    levels
        ``[reference, tested]``.

    Raises
    ------
    ValueError
        If the covariate varies within a sample, does not take exactly two values, or a level has
        fewer than ``min_samples`` samples.
    """
    values = per_sample(adata, sample_key, covariate).astype(str)
    levels = sorted(values.unique().tolist())
    if len(levels) != 2:
        msg = (
            f"covariate {covariate!r} must take exactly two values over the samples; it takes "
            f"{len(levels)}: {levels[:6]}"
        )
        raise ValueError(msg)
    per_level = values.value_counts()
    too_few = {lv: int(per_level[lv]) for lv in levels if per_level[lv] < min_samples}
    if too_few:
        msg = (
            f"each level of {covariate!r} needs at least {min_samples} samples of "
            f"obs[{sample_key!r}]; got {too_few}"
        )
        raise ValueError(msg)
    return values, levels


def knn_adjacency(rep: np.ndarray, *, k: int, seed: int = 0) -> tuple[sparse.csr_matrix, AnnData]:
    """Undirected 0/1 kNN graph: an edge wherever one cell is among the other's k nearest.

    This is the graph of R miloR's ``buildGraph`` (k neighbours, the cell excluded, symmetrised by
    union). The search is :func:`mrvi_repro._graph.knn_graph` with ``k + 1`` neighbours (scanpy
    counts the cell itself); duplicated cells (distance 0) keep their edges.

    Returns
    -------
    adjacency
        ``n x n`` CSR with sorted indices, ones off the diagonal.
    graph
        The AnnData holding the search (``obsp['distances']``: each cell's k nearest, directed;
        ``obsm['X_rep']``: ``rep``).
    """
    holder = ad.AnnData(obs=pd.DataFrame(index=np.arange(rep.shape[0]).astype(str)))
    holder.obsm["X_rep"] = rep
    knn_graph(holder, n_neighbors=k + 1, use_rep="X_rep", seed=seed)
    dist = holder.obsp["distances"].tocsr()
    # the stored structure, not the values: duplicates are explicit zeros
    pattern = sparse.csr_matrix(
        (np.ones(dist.indices.size), dist.indices, dist.indptr), shape=dist.shape
    )
    adjacency = (pattern + pattern.T).tocsr()
    adjacency.setdiag(0)
    adjacency.eliminate_zeros()
    adjacency.data[:] = 1.0
    adjacency.sort_indices()
    return adjacency, holder


def cell_means(
    nhoods: sparse.spmatrix, values: np.ndarray, *, chunk: int = 4096
) -> tuple[np.ndarray, np.ndarray]:
    """Mean of neighbourhood values over the neighbourhoods containing each cell, NaN-aware.

    Parameters
    ----------
    nhoods
        ``cells x nhoods`` 0/1 membership.
    values
        ``(nhoods,)`` or ``(nhoods, genes)``; NaN entries (untested) are left out of the mean.
    chunk
        Cells per block (bounds the float64 temporaries to ``chunk x genes``).

    Returns
    -------
    mean
        ``(cells,)`` or ``(cells, genes)`` float32; NaN where no containing neighbourhood has a
        value.
    count
        The number of values averaged, same shape, int32.
    """
    membership = sparse.csr_matrix(nhoods, dtype=np.float64)
    vals = np.asarray(values, dtype=np.float64)
    flat = vals.ndim == 1
    if flat:
        vals = vals[:, None]
    known = np.isfinite(vals)
    filled = np.where(known, vals, 0.0)
    known = known.astype(np.float64)
    n_cells = membership.shape[0]
    mean = np.empty((n_cells, vals.shape[1]), dtype=np.float32)
    count = np.empty((n_cells, vals.shape[1]), dtype=np.int32)
    for start in range(0, n_cells, chunk):
        block = membership[start : start + chunk]
        total = np.asarray(block @ filled)
        n = np.asarray(block @ known)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean[start : start + chunk] = np.where(n > 0, total / n, np.nan)
        count[start : start + chunk] = np.rint(n).astype(np.int32)
    if flat:
        return mean[:, 0], count[:, 0]
    return mean, count


def check_design_rank(
    batches: pd.Series, values: pd.Series, *, batch_key: str, covariate: str
) -> None:
    """Refuse a batch confounded with the covariate (design ``~ batch + covariate`` not of full rank).

    ``batches`` and ``values`` are per-sample (same index).
    """
    columns = [np.ones(len(values))]
    for level in sorted(batches.unique())[1:]:
        columns.append((batches.to_numpy() == level).astype(float))
    for level in sorted(values.unique())[1:]:
        columns.append((values.reindex(batches.index).to_numpy() == level).astype(float))
    design = np.column_stack(columns)
    if np.linalg.matrix_rank(design) < design.shape[1]:
        table = pd.crosstab(batches, values.reindex(batches.index))
        msg = (
            f"batch_key {batch_key!r} is confounded with covariate {covariate!r}: the design "
            f"~ {batch_key} + {covariate} is not of full rank (samples per batch and level: "
            f"{table.to_dict(orient='index')})"
        )
        raise ValueError(msg)


def milo_da(
    adata: AnnData,
    *,
    sample_key: str,
    covariate: str,
    batch_key: str | None = None,
    representation: str | np.ndarray = "X_pca",
    config: MiloConfig | None = None,
) -> xr.Dataset:
    """Milo differential abundance of a two-valued sample covariate, per neighbourhood and per cell.

    Steps (pertpy ``Milo``): kNN graph on the first ``n_dims`` dimensions of the representation
    (:func:`knn_adjacency`), ``make_nhoods`` (``prop`` of the cells sampled, each moved to the
    neighbour closest to the median position of its neighbours; a neighbourhood is the index cell
    and its graph neighbours), ``count_nhoods`` per sample and ``da_nhoods`` with the design
    ``~ covariate`` or, when ``batch_key`` has more than one value, ``~ batch + covariate`` (the
    covariate is the last column, the one tested).

    Parameters
    ----------
    adata
        Cells; only ``obs`` and the representation are used (no counts).
    sample_key
        ``obs`` column of the sample (the replicate unit of the count model).
    covariate
        Sample-level ``obs`` column with exactly two values.
    batch_key
        Optional sample-level ``obs`` column added to the design if it takes several values
        (with one value it is dropped, as in the reference ``run_milo.R``).
    representation
        ``obsm`` key or ``n_obs x d`` array (e.g. :func:`pca_representation`, or an
        MNN-corrected PCA with several batches).
    config
        Graph, sampling and solver settings (:class:`MiloConfig`).

    Returns
    -------
    Dataset with

    * ``log_ratio`` (cell): the mean ``logFC`` over the tested neighbourhoods containing the cell,
      NaN for a cell in no tested neighbourhood (the reference code sets those to 0 before the
      PR curves); ``n_nhoods`` (cell): how many were averaged;
    * per neighbourhood (dim ``nhood``, 0..m-1 in index-cell order): ``logFC`` (log2),
      ``PValue``, ``FDR`` (BH), ``SpatialFDR`` (k-distance weighted BH, 1 where not tested),
      ``n_cells``, ``kth_distance`` and ``index_cell`` (obs name). Neighbourhoods with no cells in
      the tested samples are not tested (NaN ``logFC``/``PValue``);
    * ``attrs``: ``covariate``, ``group_a`` (tested level), ``group_b`` (reference), the design,
      :data:`SIGN_CONVENTION` and the settings.

    Sign: positive ``logFC``/``log_ratio`` = more cells of samples of ``group_a`` (the covariate's
    second level in sorted string order) than of ``group_b``, the orientation of MrVI's
    ``log q_{group_a} - log q_{group_b}``.

    Raises
    ------
    ValueError
        For an unknown ``obs`` key, a covariate or batch that varies within a sample, a covariate
        without exactly two values, fewer than 2 samples per level, a batch confounded with the
        covariate, or a bad representation.
    """
    import pertpy as pt

    cfg = config or MiloConfig()
    check_obs_keys(adata, sample_key=sample_key, covariate=covariate, batch_key=batch_key)
    values, levels = binary_levels(adata, sample_key=sample_key, covariate=covariate)
    rep = _representation(adata, representation)
    n_dims = min(cfg.n_dims, rep.shape[1])
    if cfg.k >= adata.n_obs:
        msg = f"k = {cfg.k} needs more than {cfg.k} cells (got {adata.n_obs})"
        raise ValueError(msg)

    samples = adata.obs[sample_key].astype(str).to_numpy()
    obs = pd.DataFrame(
        {
            _SAMPLE: samples,
            _COVARIATE: pd.Categorical(values.reindex(samples).to_numpy(), categories=levels),
        },
        index=adata.obs_names.astype(str),
    )
    design = f"~{_COVARIATE}"
    design_shown = f"~ {covariate}"
    if batch_key is not None:
        batches = per_sample(adata, sample_key, batch_key).astype(str)
        if batches.nunique() > 1:
            check_design_rank(batches, values, batch_key=batch_key, covariate=covariate)
            obs[_BATCH] = pd.Categorical(
                batches.reindex(samples).to_numpy(), categories=sorted(batches.unique())
            )
            design = f"~{_BATCH}+{_COVARIATE}"
            design_shown = f"~ {batch_key} + {covariate}"
        else:
            logger.info("Milo: batch_key %r has one value; left out of the design", batch_key)

    adjacency, holder = knn_adjacency(rep[:, :n_dims], k=cfg.k, seed=cfg.seed)
    holder.obs = obs.set_index(holder.obs_names)
    # Milo reads the binarised connectivities: give it the union kNN graph of R's buildGraph
    holder.obsp["connectivities"] = adjacency
    milo = pt.tl.Milo()
    with warnings.catch_warnings():
        # mudata 0.4 calls DataFrame.drop(inplace=True), which pandas 3.1 deprecates
        warnings.filterwarnings("ignore", message="The inplace keyword", module="mudata")
        mdata = milo.load(holder)
        milo.make_nhoods(mdata["rna"], prop=cfg.prop, seed=cfg.seed)
        mdata = milo.count_nhoods(mdata, sample_col=_SAMPLE)
    logger.info(
        "Milo: %d cells, %d neighbourhoods (k=%d, %d dims, prop=%g), design %s",
        holder.n_obs,
        mdata["milo"].n_vars,
        cfg.k,
        n_dims,
        cfg.prop,
        design_shown,
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The inplace keyword", module="mudata")
        # pertpy hands pydeseq2 a table with integer columns, which anndata renames
        warnings.filterwarnings("ignore", message="Transforming to str index")
        milo.da_nhoods(mdata, design=design, solver=cfg.solver)

    res = mdata["milo"].var
    nhoods = sparse.csr_matrix(mdata["rna"].obsm["nhoods"])
    logfc = res["logFC"].to_numpy(dtype=float)
    log_ratio, n_nhoods = cell_means(nhoods, logfc)
    index_cell = adata.obs_names.astype(str).to_numpy()[res["index_cell"].astype(int).to_numpy()]
    n_tested = int(np.isfinite(logfc).sum())
    logger.info(
        "Milo: %d of %d neighbourhoods tested; %d cells in none",
        n_tested,
        logfc.size,
        int((n_nhoods == 0).sum()),
    )
    return xr.Dataset(
        {
            "log_ratio": ("cell", log_ratio),
            "n_nhoods": ("cell", n_nhoods),
            "logFC": ("nhood", logfc),
            "PValue": ("nhood", res["PValue"].to_numpy(dtype=float)),
            "FDR": ("nhood", res["FDR"].to_numpy(dtype=float)),
            "SpatialFDR": ("nhood", res["SpatialFDR"].to_numpy(dtype=float)),
            "n_cells": ("nhood", np.asarray(nhoods.sum(axis=0)).ravel().astype(np.int64)),
            "kth_distance": ("nhood", res["kth_distance"].to_numpy(dtype=float)),
            "index_cell": ("nhood", index_cell),
        },
        coords={
            "cell": adata.obs_names.astype(str).to_numpy(),
            "nhood": np.arange(logfc.size),
        },
        attrs={
            "method": "milo",
            "covariate": covariate,
            "group_a": levels[1],
            "group_b": levels[0],
            "sample_key": sample_key,
            "batch_key": "" if batch_key is None else batch_key,
            "design": design_shown,
            "sign_convention": SIGN_CONVENTION,
            "n_dims": int(n_dims),
            "n_tested": n_tested,
            **{f"config_{key}": value for key, value in asdict(cfg).items()},
        },
    )
