"""Exploratory stratification of cells by their local sample distance matrices.

Paper, Methods "Exploratory analysis of sample effects on cell states": cells are clustered on their
S x S distance matrices (flattened, embedded by PCA, Leiden), and each cluster's mean matrix is
used to cluster the samples hierarchically. The reference code (Haniffa COVID figures) z-scores
the upper triangles per feature, keeps 50 PCs, builds a 15-nearest-neighbour graph, runs Leiden
at a very low resolution (0.005, chosen from a scan) and clusters the samples of each cluster's
mean matrix with Ward's method (donor groups: ``fcluster`` into 3 groups).

Nothing here holds cells x S x S, nor cells x S^2: every pass streams chunks of cells from
:func:`~mrvi_repro.analysis.iter_local_distances` and keeps only per-feature moments, a
cells x (n_pcs + oversamples) sketch and an (n_pcs + oversamples) x S^2 basis (or, for few
samples, the S^2/2 x S^2/2 covariance). The passes (each recomputes the distances of every cell;
the Monte-Carlo draws depend only on the row and the seed, so every pass sees the same matrices):

* solver ``"covariance"`` (exact): 1. feature moments and covariance, 2. scores;
* solver ``"randomized"`` (randomised subspace iteration, Halko et al. 2011, Alg. 4.4): 1. feature
  moments and the range sketch, then 2 passes per power iteration, then 1 for the basis;

and one more pass for the clusters' mean matrices (:func:`local_sample_distances`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import anndata as ad
import numpy as np
import pandas as pd
import xarray as xr
from scipy.cluster import hierarchy
from scipy.spatial.distance import squareform

from mrvi_repro._graph import knn_graph, leiden
from mrvi_repro._groups import with_group_column
from mrvi_repro.analysis._distances import iter_local_distances, local_sample_distances
from mrvi_repro.settings.names import LINKAGE_METHODS

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from mrvi_repro.model import MrVI

logger = logging.getLogger(__name__)

#: Largest number of features (S(S-1)/2, i.e. S <= 64 samples) for which solver "auto" uses the
#: exact covariance (at most 32 MB); above it, the randomised solver, linear in the features.
COVARIANCE_MAX_FEATURES = 2016

#: Columns of a scipy linkage matrix.
LINKAGE_COLUMNS = ("left", "right", "height", "size")

Solver = Literal["auto", "covariance", "randomized"]


@dataclass(frozen=True)
class StreamingPCA:
    """PCA of the per-feature z-scored rows of a matrix seen only in chunks.

    ``scores`` (cells, n_pcs) are the centred, scaled data projected on the components;
    ``explained_variance`` uses ddof = 1 and ``explained_variance_ratio`` divides by the total
    variance (as :class:`sklearn.decomposition.PCA`). Components are signed so that each one's
    largest-magnitude loading is positive.
    """

    scores: np.ndarray
    components: np.ndarray
    explained_variance: np.ndarray
    explained_variance_ratio: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    n_passes: int
    solver: str


def streaming_pca(
    chunks: Callable[[str], Iterator[tuple[int, np.ndarray]]],
    *,
    n_obs: int,
    n_features: int,
    n_pcs: int,
    solver: Solver = "auto",
    n_power_iter: int = 2,
    oversamples: int = 10,
    seed: int = 0,
) -> StreamingPCA:
    """PCA of the z-scored rows of a matrix (n_obs x n_features) read in chunks, in bounded memory.

    Parameters
    ----------
    chunks
        ``chunks(label)`` returns a fresh iterator of ``(start, rows)`` covering all rows once, in
        any chunking; ``label`` names the pass (for logging). Called once per pass.
    n_obs, n_features
        Shape of the matrix.
    n_pcs
        Number of components.
    solver
        ``"covariance"``: exact, from the feature covariance (n_features^2 memory, 2 passes).
        ``"randomized"``: randomised subspace iteration (memory n_obs and n_features times
        ``n_pcs + oversamples``; ``2 + 2 n_power_iter`` passes). ``"auto"``: covariance up to
        :data:`COVARIANCE_MAX_FEATURES` features.
    n_power_iter, oversamples
        Power iterations and extra sketch columns of the randomised solver.
    seed
        Seed of the random test matrix.

    Returns
    -------
    The :class:`StreamingPCA`. Features constant over the rows are centred, not scaled (they
    contribute zeros), and do not count in the total variance.
    """
    if solver == "auto":
        solver = "covariance" if n_features <= COVARIANCE_MAX_FEATURES else "randomized"
    if solver not in ("covariance", "randomized"):
        msg = f"solver must be 'auto', 'covariance' or 'randomized', got {solver!r}"
        raise ValueError(msg)
    if not 1 <= n_pcs <= min(n_obs, n_features):
        msg = (
            f"n_pcs = {n_pcs} must lie between 1 and min(cells, features) = "
            f"min({n_obs}, {n_features})"
        )
        raise ValueError(msg)
    if n_power_iter < 0 or oversamples < 0:
        msg = "n_power_iter and oversamples must be >= 0"
        raise ValueError(msg)
    width = min(n_pcs + oversamples, n_obs, n_features)
    rng = np.random.default_rng(seed)
    sketch_raw = rng.standard_normal((n_features, width)) if solver == "randomized" else None

    # pass 1: moments about a shift (the first chunk's mean, against cancellation), plus the
    # covariance or the range sketch (X - 1 c') Omega_raw
    shift: np.ndarray | None = None
    s1 = np.zeros(n_features)
    s2 = np.zeros(n_features)
    gram = np.zeros((n_features, n_features)) if solver == "covariance" else None
    y = np.zeros((n_obs, width)) if sketch_raw is not None else None
    seen = 0
    for start, rows in chunks("moments"):
        x = np.array(rows, dtype=np.float64)  # a copy: modified below
        if shift is None:
            shift = x.mean(0)
        x -= shift
        s1 += x.sum(0)
        s2 += np.einsum("ij,ij->j", x, x)
        if gram is not None:
            gram += x.T @ x
        if y is not None:
            y[start : start + len(x)] = x @ sketch_raw
        seen += len(x)
    if seen != n_obs or shift is None:
        msg = f"the chunks covered {seen} rows, expected {n_obs}"
        raise ValueError(msg)
    offset = s1 / n_obs  # mean - shift
    var = np.maximum(s2 / n_obs - offset**2, 0.0)
    varying = var > 0
    scale = np.where(varying, np.sqrt(var), 1.0)
    mean = shift + offset
    total = float(n_obs * varying.sum())  # sum of squares of the z-scored matrix
    n_passes = 1

    def centred(x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=np.float64) - shift

    def times(right: np.ndarray, label: str) -> np.ndarray:
        """Z @ right with Z the z-scored matrix (one pass)."""
        nonlocal n_passes
        r = right / scale[:, None]
        out = np.empty((n_obs, right.shape[1]))
        for start, rows in chunks(label):
            out[start : start + len(rows)] = centred(rows) @ r
        n_passes += 1
        return out - offset @ r

    def transposed_times(left: np.ndarray, label: str) -> np.ndarray:
        """Z' @ left (one pass)."""
        nonlocal n_passes
        acc = np.zeros((n_features, left.shape[1]))
        for start, rows in chunks(label):
            acc += centred(rows).T @ left[start : start + len(rows)]
        n_passes += 1
        return (acc - np.outer(offset, left.sum(0))) / scale[:, None]

    if gram is not None:
        cov = (gram - n_obs * np.outer(offset, offset)) / np.outer(scale, scale)
        eigval, eigvec = np.linalg.eigh(cov)
        order = np.argsort(eigval)[::-1][:n_pcs]
        sq = np.maximum(eigval[order], 0.0)
        components = eigvec[:, order].T
        components *= _signs(components)[:, None]
        scores = times(components.T, "scores")
    else:
        # Z Omega with Omega = diag(scale) Omega_raw: a valid random test matrix, known after pass 1
        q = np.linalg.qr(y - offset @ sketch_raw)[0]
        del y
        for i in range(n_power_iter):
            w = np.linalg.qr(transposed_times(q, f"power iteration {i + 1} (Z'Q)"))[0]
            q = np.linalg.qr(times(w, f"power iteration {i + 1} (ZW)"))[0]
        bt = transposed_times(q, "basis")  # (Q' Z)' = Z' Q, features x width
        u_f, sv, vt_l = np.linalg.svd(bt, full_matrices=False)
        # Z ~ Q B = (Q V_l) diag(sv) U_f': right singular vectors U_f, scores Q V_l diag(sv)
        signs = _signs(u_f[:, :n_pcs].T)
        components = u_f[:, :n_pcs].T * signs[:, None]
        scores = (q @ vt_l.T[:, :n_pcs]) * (sv[:n_pcs] * signs)
        sq = sv[:n_pcs] ** 2
    denom = max(n_obs - 1, 1)
    return StreamingPCA(
        scores=scores,
        components=components,
        explained_variance=sq / denom,
        explained_variance_ratio=sq / total if total > 0 else np.zeros_like(sq),
        mean=mean,
        scale=scale,
        n_passes=n_passes,
        solver=solver,
    )


def _signs(components: np.ndarray) -> np.ndarray:
    """Per row, the sign that makes its largest-magnitude entry positive."""
    idx = np.abs(components).argmax(1)
    signs = np.sign(components[np.arange(len(components)), idx])
    return np.where(signs == 0, 1.0, signs)


def stratify_cells(
    model: MrVI,
    adata: ad.AnnData,
    *,
    n_pcs: int = 50,
    n_neighbors: int = 15,
    resolution: float = 0.005,
    method: str = "ward",
    solver: Solver = "auto",
    n_power_iter: int = 2,
    mc_samples: int = 0,
    batch_size: int | None = None,
    seed: int = 0,
) -> xr.Dataset:
    """Cluster cells by their local sample distance matrices; cluster the samples within each.

    Every cell's S x S matrix (:func:`~mrvi_repro.analysis.iter_local_distances`) is reduced to
    its upper triangle (S(S-1)/2 features), z-scored per feature and embedded by PCA, computed in
    streaming passes without materialising cells x S x S; then a kNN graph and Leiden give cell
    clusters; each cluster's mean distance matrix
    (:func:`~mrvi_repro.analysis.local_sample_distances`) is clustered hierarchically.

    Parameters
    ----------
    model
        A fitted MrVI.
    adata
        Cells to stratify (the model's genes; samples/batches known to the model).
    n_pcs
        Principal components of the z-scored upper triangles (the reference code: 50).
    n_neighbors
        Neighbours of the kNN graph, the cell included (the reference code: 15).
    resolution
        Leiden resolution. The default is the reference code's choice for the Haniffa COVID data
        (419,000 cells, 55 donors; picked from a scan of 0.005 to 1), meant to give a handful of
        populations with homogeneous sample stratification. At a fixed resolution the number of
        clusters grows with the number of cells, so small data may need a higher value; scanning a
        few values is advised (on the 3000-cell semi-synthetic test data, 0.005 merges one
        population into another and 0.01 to 0.1 give the same 6 clusters).
    method
        Linkage method for the samples (:data:`LINKAGE_METHODS`; ``"ward"`` as in the paper),
        applied to each cluster's mean matrix taken as the samples' pairwise distances.
    solver
        PCA solver (:func:`streaming_pca`): ``"auto"`` is exact (feature covariance) for at most
        64 samples and randomised subspace iteration above.
    n_power_iter
        Power iterations of the randomised solver (2 passes each).
    mc_samples
        0: distances at u's posterior mean; at least 2: Monte-Carlo-normalised distances (see
        :func:`~mrvi_repro.analysis.local_sample_distances`). Same draws in every pass.
    batch_size
        Cells per chunk (default: :func:`~mrvi_repro.analysis._distances.chunk_cells`, 1024 up to
        64 samples and fewer beyond). A chunk's working memory is about ``batch_size`` x S^2 x 12
        bytes (its matrices, their upper triangles and a float64 copy); besides it,
        cells x (n_pcs + 10) and S^2/2 x (n_pcs + 10) float64 arrays.
    seed
        Seed of the Monte-Carlo draws, the PCA sketch, the kNN search and Leiden.

    Returns
    -------
    Dataset with

    * ``cell_cluster`` (cell): the cell's cluster, "0" = largest (the ``cluster`` coordinate);
    * ``pcs`` (cell, pc): the PCA scores; ``explained_variance`` and ``explained_variance_ratio``
      (pc);
    * ``distance`` (cluster, sample_x, sample_y): the cluster's mean matrix, with a ``n_cells``
      coordinate on cluster;
    * ``linkage`` (cluster, merge, linkage_column): each cluster's scipy linkage matrix over the
      samples (leaves are positions in ``sample_x``; columns left, right, height, size);
    * ``leaf_order`` (cluster, position): the samples' indices in ``sample_x`` in dendrogram order;

    and the parameters as attributes. Writable with ``to_netcdf`` (no object arrays).

    Raises
    ------
    ValueError
        Fewer than 3 samples, ``n_pcs`` above the number of features (or cells), an unknown
        ``method`` or ``solver``.
    """
    samples = list(model.registry.samples)
    n_samples = len(samples)
    if n_samples < 3:
        msg = f"stratification needs at least 3 samples; the model has {n_samples}"
        raise ValueError(msg)
    n_features = n_samples * (n_samples - 1) // 2
    if n_pcs > n_features:
        msg = (
            f"n_pcs = {n_pcs} exceeds the number of features, {n_features} "
            f"(upper triangle of {n_samples} x {n_samples} matrices)"
        )
        raise ValueError(msg)
    if method not in LINKAGE_METHODS:
        msg = f"unknown linkage method {method!r}; choose one of {list(LINKAGE_METHODS)}"
        raise ValueError(msg)
    if solver not in ("auto", "covariance", "randomized"):
        msg = f"solver must be 'auto', 'covariance' or 'randomized', got {solver!r}"
        raise ValueError(msg)
    if n_neighbors >= adata.n_obs:
        msg = f"n_neighbors = {n_neighbors} needs more cells than {adata.n_obs}"
        raise ValueError(msg)
    iu = np.triu_indices(n_samples, 1)
    t0 = time.perf_counter()
    n_pass = 0

    def chunks(label: str) -> Iterator[tuple[int, np.ndarray]]:
        nonlocal n_pass
        n_pass += 1
        t = time.perf_counter()
        logger.info("stratify_cells: pass %d (%s) over %d cells", n_pass, label, adata.n_obs)
        for start, d in iter_local_distances(
            model, adata, mc_samples=mc_samples, batch_size=batch_size, seed=seed
        ):
            yield start, d[:, iu[0], iu[1]]
        logger.info(
            "stratify_cells: pass %d (%s) done in %.1f s", n_pass, label, time.perf_counter() - t
        )

    pca = streaming_pca(
        chunks,
        n_obs=adata.n_obs,
        n_features=n_features,
        n_pcs=n_pcs,
        solver=solver,
        n_power_iter=n_power_iter,
        seed=seed,
    )
    logger.info(
        "stratify_cells: PCA (%s, %d passes): %d PCs explain %.3f of the variance",
        pca.solver,
        pca.n_passes,
        n_pcs,
        float(pca.explained_variance_ratio.sum()),
    )

    graph = ad.AnnData(obs=pd.DataFrame(index=adata.obs_names.astype(str)))
    graph.obsm["X_distance_pca"] = pca.scores.astype(np.float32)
    knn_graph(graph, n_neighbors=n_neighbors, use_rep="X_distance_pca", seed=seed)
    clusters = leiden(graph, resolution=resolution, seed=seed)
    labels = clusters.astype(str).to_numpy()
    logger.info(
        "stratify_cells: Leiden (resolution %g): %d clusters, sizes %s",
        resolution,
        len(clusters.cat.categories),
        clusters.value_counts(sort=False).to_dict(),
    )

    # per-cluster mean matrices: one more pass, on a shallow copy (X shared, obs copied)
    shallow, column = with_group_column(
        adata, pd.Categorical(labels, categories=list(clusters.cat.categories)), "cluster"
    )
    n_pass += 1
    logger.info("stratify_cells: pass %d (cluster means) over %d cells", n_pass, adata.n_obs)
    means = local_sample_distances(
        model,
        shallow,
        groupby=column,
        mc_samples=mc_samples,
        batch_size=batch_size,
        seed=seed,
    )
    means = means.sel(group=list(clusters.cat.categories))  # "0", "1", ... (sorted as str)

    linkages, orders = [], []
    for values in means.values.astype(np.float64):
        z = sample_linkage(values, method=method)
        linkages.append(z)
        orders.append(hierarchy.leaves_list(z))

    cluster_names = [str(c) for c in means["group"].values]
    ds = xr.Dataset(
        {
            "cell_cluster": ("cell", labels.astype(str)),
            "pcs": (("cell", "pc"), pca.scores.astype(np.float32)),
            "explained_variance": ("pc", pca.explained_variance),
            "explained_variance_ratio": ("pc", pca.explained_variance_ratio),
            "distance": (
                ("cluster", "sample_x", "sample_y"),
                means.values.astype(np.float32),
            ),
            "linkage": (("cluster", "merge", "linkage_column"), np.stack(linkages)),
            "leaf_order": (("cluster", "position"), np.stack(orders).astype(np.int32)),
        },
        coords={
            "cell": np.asarray(adata.obs_names, dtype=str),
            "pc": np.arange(n_pcs, dtype=np.int32),
            "cluster": np.asarray(cluster_names, dtype=str),
            "n_cells": ("cluster", means["n_cells"].values.astype(np.int64)),
            "sample_x": np.asarray(samples, dtype=str),
            "sample_y": np.asarray(samples, dtype=str),
            "merge": np.arange(n_samples - 1, dtype=np.int32),
            "linkage_column": np.asarray(LINKAGE_COLUMNS, dtype=str),
            "position": np.arange(n_samples, dtype=np.int32),
        },
        attrs={
            "description": (
                "cells clustered by their local sample distance matrices (z-scored upper "
                "triangles, PCA, kNN, Leiden); per cluster the mean matrix and a hierarchical "
                "clustering of the samples"
            ),
            "n_pcs": int(n_pcs),
            "n_neighbors": int(n_neighbors),
            "resolution": float(resolution),
            "method": str(method),
            "solver": str(pca.solver),
            "n_power_iter": int(n_power_iter) if pca.solver == "randomized" else 0,
            "n_passes": int(n_pass),
            "n_features": int(n_features),
            "mc_samples": int(mc_samples),
            "seed": int(seed),
        },
    )
    logger.info(
        "stratify_cells: %d cells, %d samples, %d clusters in %.1f s (%d passes)",
        adata.n_obs,
        n_samples,
        len(cluster_names),
        time.perf_counter() - t0,
        n_pass,
    )
    return ds


def sample_linkage(distances: np.ndarray, *, method: str = "ward") -> np.ndarray:
    """Scipy linkage matrix of the samples from a square distance matrix.

    The matrix is symmetrised and its diagonal set to 0 before condensing (Ward's, centroid and
    median methods treat the entries as Euclidean distances, as the reference code does).
    """
    if method not in LINKAGE_METHODS:
        msg = f"unknown linkage method {method!r}; choose one of {list(LINKAGE_METHODS)}"
        raise ValueError(msg)
    d = np.asarray(distances, dtype=np.float64)
    d = (d + d.T) / 2
    np.fill_diagonal(d, 0.0)
    return hierarchy.linkage(squareform(d, checks=False), method=method)


def sample_groups(stratification: xr.Dataset, n_groups: int = 3) -> xr.DataArray:
    """Cut each cluster's sample dendrogram into at most ``n_groups`` groups of samples.

    As ``scipy.cluster.hierarchy.fcluster(linkage, t=n_groups, criterion="maxclust")`` (the
    reference code's donor groups, e.g. for differential expression between them); groups are
    numbered 1, 2, ... in dendrogram (leaf) order.

    Parameters
    ----------
    stratification
        Output of :func:`stratify_cells`.
    n_groups
        Maximum number of groups per cluster.

    Returns
    -------
    DataArray ``sample_group`` (cluster, sample) of ints.
    """
    if n_groups < 1:
        msg = f"n_groups must be >= 1, got {n_groups}"
        raise ValueError(msg)
    out = []
    for c in stratification["cluster"].values:
        z = stratification["linkage"].sel(cluster=c).values
        raw = hierarchy.fcluster(z, t=n_groups, criterion="maxclust")
        order = stratification["leaf_order"].sel(cluster=c).values
        relabel: dict[int, int] = {}
        for label in raw[order]:
            relabel.setdefault(int(label), len(relabel) + 1)
        out.append([relabel[int(r)] for r in raw])
    samples = stratification["sample_x"].values
    return xr.DataArray(
        np.asarray(out, dtype=np.int32),
        dims=("cluster", "sample"),
        coords={"cluster": stratification["cluster"].values, "sample": samples},
        name="sample_group",
        attrs={"n_groups": int(n_groups)},
    )
