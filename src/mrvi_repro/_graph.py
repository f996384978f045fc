"""kNN graphs and Leiden clustering, the one place every module gets them from.

scanpy's default kNN search (pynndescent) pays about 25-30 s of numba compilation in every new
process, which dominates small runs; an exact search (scikit-learn) is faster up to tens of
thousands of cells and gives the same graph up to ties. Above :data:`EXACT_KNN_MAX_CELLS` the
approximate search is used.

The connectivities of an exact search are UMAP's fuzzy simplicial set, as scanpy's default
(``method="umap"``) computes them, but by :func:`umap_connectivities` in numpy: scanpy takes them
from umap-learn, whose import compiles pynndescent's numba kernels (8.4 s of CPU in every new
process on the machine of bench/RESULTS.md) and then compiles its own (about 4 s), for a
computation that takes milliseconds at these sizes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scanpy as sc
from scipy import sparse

if TYPE_CHECKING:
    import anndata as ad

#: Largest number of cells for which the kNN search is exact.
EXACT_KNN_MAX_CELLS = 50_000


def knn_graph(
    adata: ad.AnnData, *, n_neighbors: int = 15, use_rep: str | None = None, seed: int = 0
) -> None:
    """Compute the kNN graph (``obsp['distances']``, ``obsp['connectivities']``) in place.

    Parameters
    ----------
    adata
        Data with the representation in ``obsm[use_rep]`` (or ``X_pca``/``X`` as scanpy chooses).
    n_neighbors
        Neighbours per cell, the cell included (scanpy's convention).
    use_rep
        ``obsm`` key of the representation.
    seed
        Seed of the approximate search.
    """
    if adata.n_obs > EXACT_KNN_MAX_CELLS:
        sc.pp.neighbors(adata, n_neighbors=n_neighbors, use_rep=use_rep, random_state=seed)
        return
    # scanpy's exact search and layout; its cheapest kernel ("gauss") stands in until the UMAP
    # connectivities below replace it, so that umap-learn is not imported
    sc.pp.neighbors(
        adata,
        n_neighbors=n_neighbors,
        use_rep=use_rep,
        random_state=seed,
        transformer="sklearn",
        method="gauss",
    )
    params = adata.uns["neighbors"]["params"]
    adata.obsp["connectivities"] = umap_connectivities(
        adata.obsp["distances"], params["n_neighbors"]
    )
    params["method"] = "umap"


#: umap-learn's tolerance of the bandwidth search and its floor of a bandwidth (relative to the
#: mean distance), so that :func:`umap_connectivities` equals its ``fuzzy_simplicial_set``.
_SMOOTH_K_TOLERANCE = 1e-5
_MIN_K_DIST_SCALE = 1e-3


def umap_connectivities(distances: sparse.csr_matrix, n_neighbors: int) -> sparse.csr_matrix:
    """UMAP's fuzzy simplicial set of a kNN graph: umap-learn's ``fuzzy_simplicial_set`` in numpy.

    The connectivities scanpy's ``pp.neighbors`` computes with ``method="umap"`` (local
    connectivity 1, fuzzy union), from the kNN distances it stores.

    Parameters
    ----------
    distances
        Cells x cells, each row holding the distances to the ``n_neighbors - 1`` nearest other
        cells (scanpy's ``obsp['distances']``; a zero is a duplicate of the cell).
    n_neighbors
        Neighbours per cell, the cell itself included (scanpy's convention).

    Returns
    -------
    The symmetric connectivities, float32 CSR, zero diagonal.
    """
    n_obs = distances.shape[0]
    distances = sparse.csr_matrix(distances)
    per_row = np.diff(distances.indptr)
    if n_obs and not (per_row == n_neighbors - 1).all():
        msg = (
            f"expected {n_neighbors - 1} neighbours in every row of the distances, found "
            f"{per_row.min()}-{per_row.max()}"
        )
        raise ValueError(msg)
    # rows sorted by distance, then the cell itself first at distance 0, as umap-learn takes them
    dists = distances.data.reshape(n_obs, n_neighbors - 1).astype(np.float32)
    cols = distances.indices.reshape(n_obs, n_neighbors - 1)
    order = np.argsort(dists, axis=1, kind="stable")
    dists = np.hstack([np.zeros((n_obs, 1), np.float32), np.take_along_axis(dists, order, 1)])
    cols = np.hstack([np.arange(n_obs)[:, None], np.take_along_axis(cols, order, 1)])
    sigma, rho = _smooth_knn_dist(dists, float(n_neighbors))
    with np.errstate(over="ignore"):
        shifted = dists - rho[:, None]
        vals = np.where(
            (shifted <= 0) | (sigma[:, None] == 0),
            np.float32(1.0),
            np.exp(-(shifted / sigma[:, None])),
        ).astype(np.float32)
    # the cell itself (scanpy may store it among the others where a duplicate came first)
    vals[cols == np.arange(n_obs)[:, None]] = 0.0
    graph = sparse.coo_matrix(
        (vals.ravel(), (np.repeat(np.arange(n_obs), n_neighbors), cols.ravel())),
        shape=(n_obs, n_obs),
    )
    transpose = graph.transpose()
    union = sparse.csr_matrix(graph + transpose - graph.multiply(transpose))
    union.eliminate_zeros()
    return union


def _smooth_knn_dist(dists: np.ndarray, k: float) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the bandwidth sigma and the distance rho to the nearest distinct neighbour.

    umap-learn's ``smooth_knn_dist`` (local connectivity 1, bandwidth 1) over all rows at once:
    the same binary search on sigma, 64 steps at most, a row stopping once its sum of memberships
    is within the tolerance of log2(k).
    """
    n_obs = dists.shape[0]
    positive = np.where(dists > 0, dists, np.inf).min(axis=1)
    rho = np.where(np.isfinite(positive), positive, 0.0).astype(np.float32)
    target = np.log2(k)
    floatmax = float(np.finfo(np.float32).max)
    lo, hi, mid = np.zeros(n_obs), np.full(n_obs, floatmax), np.ones(n_obs)
    active = np.arange(n_obs)
    for _ in range(64):
        if not active.size:
            break
        shifted = dists[active, 1:] - rho[active, None]
        with np.errstate(over="ignore"):
            terms = np.where(shifted > 0, np.exp(-(shifted / mid[active, None])), 1.0)
        psum = terms.sum(axis=1)
        searching = np.abs(psum - target) >= _SMOOTH_K_TOLERANCE
        active, psum = active[searching], psum[searching]
        above = psum > target
        down, up = active[above], active[~above]
        hi[down] = mid[down]
        mid[down] = (lo[down] + hi[down]) / 2.0
        lo[up] = mid[up]
        mid[up] = np.where(hi[up] >= floatmax, mid[up] * 2, (lo[up] + hi[up]) / 2.0)
    sigma = mid.astype(np.float32)
    floor = np.where(
        rho > 0, _MIN_K_DIST_SCALE * dists.mean(axis=1), _MIN_K_DIST_SCALE * dists.mean()
    ).astype(np.float32)
    return np.maximum(sigma, floor), rho


def leiden(adata: ad.AnnData, *, resolution: float, seed: int = 0) -> pd.Series:
    """Leiden clusters on the kNN graph of ``adata``, labelled "0", "1", ... by decreasing size.

    Uses the igraph implementation (two iterations, undirected), seeded. Ties in size keep the
    order of the original labels, so the result is deterministic.
    """
    sc.tl.leiden(
        adata,
        resolution=resolution,
        flavor="igraph",
        n_iterations=2,
        directed=False,
        random_state=seed,
        key_added="_leiden_tmp",
    )
    raw = adata.obs.pop("_leiden_tmp").astype(str)
    order = raw.value_counts().sort_index().sort_values(ascending=False, kind="stable").index
    relabel = {old: str(new) for new, old in enumerate(order)}
    return pd.Series(
        pd.Categorical(raw.map(relabel), categories=[str(i) for i in range(len(order))]),
        index=adata.obs_names,
        name="leiden",
    )
