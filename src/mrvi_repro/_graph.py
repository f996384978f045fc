"""kNN graphs and Leiden clustering, the one place every module gets them from.

scanpy's default kNN search (pynndescent) pays about 25-30 s of numba compilation in every new
process, which dominates small runs; an exact search (scikit-learn) is faster up to tens of
thousands of cells and gives the same graph up to ties. Above :data:`EXACT_KNN_MAX_CELLS` the
approximate search is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
import scanpy as sc

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
    transformer = "sklearn" if adata.n_obs <= EXACT_KNN_MAX_CELLS else None
    sc.pp.neighbors(
        adata, n_neighbors=n_neighbors, use_rep=use_rep, random_state=seed, transformer=transformer
    )


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
