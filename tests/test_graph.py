"""kNN graphs: UMAP connectivities without umap-learn, equal to scanpy's."""

from __future__ import annotations

import subprocess
import sys

import anndata as ad
import numpy as np
import pytest
import scanpy as sc
from scipy import sparse

from mrvi_repro._graph import knn_graph, umap_connectivities


def _cells(n_obs: int, n_dims: int, seed: int) -> ad.AnnData:
    """Gaussian cells in obsm['X_rep'], with two duplicated cells and a triplicated one."""
    x = np.random.default_rng(seed).normal(size=(n_obs, n_dims)).astype(np.float32)
    x[:2] = x[2:4]
    x[10:12] = x[12]
    adata = ad.AnnData(np.zeros((n_obs, 1), np.float32))
    adata.obsm["X_rep"] = x
    return adata


@pytest.mark.parametrize(("n_obs", "n_dims", "n_neighbors"), [(600, 8, 15), (150, 3, 30)])
def test_connectivities_equal_scanpys_umap_kernel(n_obs, n_dims, n_neighbors):
    ours, theirs = _cells(n_obs, n_dims, seed=n_obs), _cells(n_obs, n_dims, seed=n_obs)
    knn_graph(ours, n_neighbors=n_neighbors, use_rep="X_rep")
    # scanpy's default kernel (umap-learn's fuzzy_simplicial_set) on the same exact search
    sc.pp.neighbors(theirs, n_neighbors=n_neighbors, use_rep="X_rep", transformer="sklearn")
    assert ours.uns["neighbors"] == theirs.uns["neighbors"]  # params say method "umap"
    assert (ours.obsp["distances"] != theirs.obsp["distances"]).nnz == 0
    a, b = ours.obsp["connectivities"], theirs.obsp["connectivities"]
    assert isinstance(a, sparse.csr_matrix) and a.dtype == np.float32
    assert ((a > 0) != (b > 0)).nnz == 0 and a.nnz == b.nnz  # the same edges
    assert abs(a - b).max() < 1e-6  # up to float32 rounding
    assert a.diagonal().max() == 0 and abs(a - a.T).max() == 0
    # the duplicated cells are joined at full strength, as in umap-learn
    assert a[0, 2] == pytest.approx(1.0) and a[10, 12] == pytest.approx(1.0)


def test_a_graph_of_wrong_shape_is_refused():
    distances = sparse.csr_matrix(np.array([[0, 1.0, 2.0], [1.0, 0, 0], [2.0, 0, 0]]))
    with pytest.raises(ValueError, match="expected 2 neighbours in every row"):
        umap_connectivities(distances, 3)


def test_knn_graph_and_leiden_do_not_import_umap(repo):
    code = (
        "import sys, numpy as np, anndata as ad\n"
        "from mrvi_repro._graph import knn_graph, leiden\n"
        "a = ad.AnnData(np.random.default_rng(0).normal(size=(300, 5)).astype('float32'))\n"
        "knn_graph(a, n_neighbors=10)\n"
        "assert leiden(a, resolution=0.5).nunique() > 1\n"
        "print(sorted(m for m in ('umap', 'pynndescent') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=repo
    )
    assert out.stdout.strip() == "[]"
