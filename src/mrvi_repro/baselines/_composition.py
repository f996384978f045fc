"""Composition baselines: sample distances from per-sample subcluster proportions.

Paper: Methods "Benchmark/Baselines" (composition PCA and composition scVI); the paper's code:
``bin/composition_baseline.py`` and ``bin/fit_and_get_latent_composition_baseline.py`` in
YosefLab/mrvi-reproducibility. Within each cluster of cells (annotated labels or Leiden clusters) the cells are split into Leiden
subclusters on a kNN graph of a representation (PCA or a scVI latent); each sample is described by
its cells' subcluster proportions and samples are compared by the Euclidean distance between those
vectors. The result has the layout of MrVI's grouped distance matrices.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import anndata as ad
import numpy as np
import pandas as pd
import scanpy as sc
import xarray as xr

from mrvi_repro._graph import knn_graph, leiden
from mrvi_repro._groups import grouped_distance_array

from ._checks import check_counts, check_obs_keys, natural_order

if TYPE_CHECKING:
    from anndata import AnnData

logger = logging.getLogger(__name__)


def pca_representation(adata: AnnData, n_comps: int = 50, *, seed: int = 0) -> np.ndarray:
    """Return the PCA representation of the composition-PCA baseline.

    ``normalize_total`` (10,000 counts per cell), ``log1p`` and ``n_comps`` principal components
    (scanpy, seeded) of a copy of the raw counts in ``X``; ``adata`` is not modified. There is no
    HVG step: the data contract's genes are already the selected ones.

    Parameters
    ----------
    adata
        Raw counts in ``X``.
    n_comps
        Principal components; capped (with a warning in the log) at ``min(n_obs, n_vars) - 1``.
    seed
        Seed of the randomised PCA solver.

    Returns
    -------
    ``n_obs x n_comps`` float32 array.
    """
    check_counts(adata.X, where="X")
    if n_comps < 1:
        msg = f"n_comps must be >= 1 (got {n_comps})"
        raise ValueError(msg)
    tmp = ad.AnnData(X=adata.X.astype(np.float32, copy=True))
    sc.pp.normalize_total(tmp, target_sum=1e4)
    sc.pp.log1p(tmp)
    cap = min(tmp.n_obs, tmp.n_vars) - 1
    if n_comps > cap:
        logger.warning("PCA: %d components requested, the data allow %d", n_comps, cap)
        n_comps = cap
    sc.pp.pca(tmp, n_comps=n_comps, random_state=seed)
    return np.asarray(tmp.obsm["X_pca"], dtype=np.float32)


def composition_subclusters(
    adata: AnnData,
    *,
    representation: np.ndarray | str,
    cluster_key: str,
    resolution: float = 1.0,
    n_neighbors: int = 30,
    seed: int = 0,
) -> pd.Series:
    """Leiden subclusters within each cluster, labelled ``"<cluster>:<subcluster>"``.

    Parameters
    ----------
    adata
        Cells with ``obs[cluster_key]``.
    representation
        ``n_obs x d`` array, or the ``obsm`` key holding it.
    cluster_key
        ``obs`` column of the clusters (cell-type labels or Leiden clusters).
    resolution
        Leiden resolution of the subclustering (the paper's ``subleiden1``: 1.0).
    n_neighbors
        kNN graph size within a cluster (the reference: 30), capped at the cluster's size - 1;
        a cluster of fewer than 3 cells is one subcluster.
    seed
        Seed of the kNN search and Leiden.

    Returns
    -------
    Subcluster label of every cell (index: ``obs_names``).
    """
    check_obs_keys(adata, cluster_key=cluster_key)
    rep = _representation(adata, representation)
    if resolution <= 0 or n_neighbors < 2:
        msg = f"resolution must be > 0 and n_neighbors >= 2 (got {resolution}, {n_neighbors})"
        raise ValueError(msg)
    clusters = adata.obs[cluster_key].astype(str).to_numpy()
    labels = np.empty(adata.n_obs, dtype=object)
    for cluster in natural_order(adata.obs[cluster_key]):
        idx = np.flatnonzero(clusters == cluster)
        if idx.size < 3:
            labels[idx] = f"{cluster}:0"
            continue
        sub = ad.AnnData(obs=pd.DataFrame(index=adata.obs_names[idx]), obsm={"X_rep": rep[idx]})
        knn_graph(sub, n_neighbors=min(n_neighbors, idx.size - 1), use_rep="X_rep", seed=seed)
        sub_labels = leiden(sub, resolution=resolution, seed=seed).astype(str).to_numpy()
        labels[idx] = [f"{cluster}:{s}" for s in sub_labels]
    return pd.Series(labels, index=adata.obs_names, name="subcluster")


def composition_distances(
    adata: AnnData,
    *,
    representation: np.ndarray | str,
    sample_key: str,
    cluster_key: str,
    resolution: float = 1.0,
    n_neighbors: int = 30,
    seed: int = 0,
) -> xr.DataArray:
    """Sample distance matrices per cluster from subcluster proportions (composition baseline).

    Within each cluster, cells are split into Leiden subclusters (:func:`composition_subclusters`);
    each sample is represented by the proportions of its cells of that cluster over the
    subclusters, and two samples are as far apart as the Euclidean distance between their vectors
    (0 to sqrt(2)).

    Parameters
    ----------
    adata
        Cells with ``obs[sample_key]`` and ``obs[cluster_key]``.
    representation
        ``n_obs x d`` array (e.g. :func:`pca_representation` or a scVI latent) or an ``obsm`` key.
    sample_key
        ``obs`` column of the sample.
    cluster_key
        ``obs`` column of the clusters.
    resolution, n_neighbors, seed
        Subclustering settings (see :func:`composition_subclusters`).

    Returns
    -------
    DataArray named ``"distance"`` with dims ``("group", "sample_x", "sample_y")``: ``group`` holds
    the cluster labels (str; categorical order, else numeric-aware sorted) and ``sample_x`` /
    ``sample_y`` the sample names (str, sorted), with a ``n_cells`` coordinate on ``group`` (the
    layout of MrVI's grouped distances, ``mrvi_repro.analysis``). A sample with no cells in a cluster has no
    proportion vector there: its row and column of that cluster's matrix are NaN (the reference
    code filled 0 or 1 instead, which makes absent samples look alike). ``attrs`` hold the
    settings.
    """
    check_obs_keys(adata, sample_key=sample_key, cluster_key=cluster_key)
    subclusters = composition_subclusters(
        adata,
        representation=representation,
        cluster_key=cluster_key,
        resolution=resolution,
        n_neighbors=n_neighbors,
        seed=seed,
    )
    samples = sorted(np.unique(adata.obs[sample_key].astype(str).to_numpy()).tolist())
    groups = natural_order(adata.obs[cluster_key])
    frame = pd.DataFrame(
        {
            "cluster": adata.obs[cluster_key].astype(str).to_numpy(),
            "sample": adata.obs[sample_key].astype(str).to_numpy(),
            "subcluster": subclusters.to_numpy(),
        }
    )
    out = np.full((len(groups), len(samples), len(samples)), np.nan)
    n_cells = np.zeros(len(groups), dtype=np.int64)
    for g, cluster in enumerate(groups):
        cells = frame[frame["cluster"] == cluster]
        n_cells[g] = len(cells)
        counts = pd.crosstab(cells["sample"], cells["subcluster"]).reindex(samples)
        props = counts.to_numpy(dtype=float) / counts.sum(axis=1).to_numpy()[:, None]
        diff = props[:, None, :] - props[None, :, :]
        out[g] = np.sqrt(np.sum(diff**2, axis=-1))  # NaN rows/cols for absent samples
        logger.info(
            "composition: cluster %s, %d cells, %d subclusters, %d of %d samples present",
            cluster,
            len(cells),
            counts.shape[1],
            int(counts.notna().all(axis=1).sum()),
            len(samples),
        )
    return grouped_distance_array(
        out,
        groups=groups,
        samples=samples,
        n_cells=n_cells,
        attrs={
            "method": "composition",
            "groupby": cluster_key,
            "sample_key": sample_key,
            "resolution": float(resolution),
            "n_neighbors": int(n_neighbors),
            "seed": int(seed),
        },
    )


def _representation(adata: AnnData, representation: np.ndarray | str) -> np.ndarray:
    if isinstance(representation, str):
        if representation not in adata.obsm:
            msg = f"unknown obsm key {representation!r}; obsm has {list(adata.obsm.keys())}"
            raise ValueError(msg)
        representation = adata.obsm[representation]
    rep = np.asarray(representation, dtype=np.float32)
    if rep.ndim != 2 or rep.shape[0] != adata.n_obs:
        msg = f"representation must be an n_obs x d array ({adata.n_obs} rows); got {rep.shape}"
        raise ValueError(msg)
    if not np.isfinite(rep).all():
        msg = "representation has NaN or infinite entries"
        raise ValueError(msg)
    return rep
