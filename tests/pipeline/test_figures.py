"""Loading helpers of the figure rules (mrvi_repro.pipeline.figures)."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
from scipy import sparse

from mrvi_repro.pipeline.figures import (
    normalised_expression,
    normalised_matrix,
    subcluster_markers,
)
from mrvi_repro.settings.figures import SubclusterMarkersSpec


def test_normalised_expression_is_log1p_of_counts_per_10k_of_the_cells_total(tmp_path):
    counts = np.array([[1, 3, 0, 6], [0, 0, 0, 0], [5, 0, 5, 0]], dtype=np.float32)
    adata = ad.AnnData(
        X=sparse.csr_matrix(counts),
        obs=pd.DataFrame(index=["a", "b", "c"]),
        var=pd.DataFrame(index=["G1", "G2", "G3", "G4"]),
    )
    path = tmp_path / "x.h5ad"
    adata.write_h5ad(path)
    backed = ad.read_h5ad(path, backed="r")
    out = normalised_expression(backed, np.array([0, 2]), ["G4", "XIST", "G1"])
    assert list(out.index) == ["a", "c"] and list(out.columns) == ["G4", "G1"]
    expected = np.log1p(np.array([[6 / 10, 1 / 10], [0.0, 5 / 10]]) * 1e4)
    np.testing.assert_allclose(out.to_numpy(), expected, rtol=1e-6)
    # a cell without counts is 0, not NaN
    assert (normalised_expression(backed, np.array([1]), ["G1"]).to_numpy() == 0).all()


def test_normalised_matrix_agrees_with_normalised_expression(tmp_path):
    rng = np.random.default_rng(0)
    counts = rng.poisson(1.0, (50, 8)).astype(np.float32)
    adata = ad.AnnData(
        X=sparse.csr_matrix(counts),
        obs=pd.DataFrame(index=[f"c{i}" for i in range(50)]),
        var=pd.DataFrame(index=[f"G{j}" for j in range(8)]),
    )
    rows = np.array([1, 4, 30, 49])
    matrix = normalised_matrix(adata, rows)
    dense = normalised_expression(adata, rows, list(adata.var_names))
    assert sparse.issparse(matrix) and matrix.dtype == np.float32
    np.testing.assert_allclose(matrix.toarray(), dense.to_numpy(), rtol=1e-6)


def test_subcluster_markers_rank_the_chosen_labels_only():
    """Two endothelial labels with planted markers, a lymphatic one left out, a fibroblast one
    not matched; at most max_cells cells per label are ranked."""
    rng = np.random.default_rng(0)
    labels = np.repeat(
        ["Endothelial CD36", "Endothelial LTC4S", "Lymphatic endothelial", "Fib"], 100
    )
    rate = np.full((400, 30), 1.0)
    rate[labels == "Endothelial CD36", 0] = 12.0  # G0: CD36's marker
    rate[labels == "Endothelial LTC4S", 1] = 12.0  # G1: LTC4S's marker
    rate[labels == "Lymphatic endothelial", 2] = 12.0
    names = [f"c{i}" for i in range(400)]
    adata = ad.AnnData(
        X=sparse.csr_matrix(rng.poisson(rate).astype(np.float32)),
        obs=pd.DataFrame(index=names),
        var=pd.DataFrame(index=[f"G{j}" for j in range(30)]),
    )
    spec = SubclusterMarkersSpec(
        match="ENDOTHELIAL", exclude=("lymphatic",), n_markers=1, max_cells=40
    )
    dot = subcluster_markers(adata, pd.Series(labels, index=names), spec, seed=0)
    assert dot.attrs["chosen"] == ["Endothelial CD36", "Endothelial LTC4S"]
    assert dot.attrs["cells"] == {"Endothelial CD36": 40, "Endothelial LTC4S": 40}
    tops = dot.drop_duplicates("gene").set_index("marker_of")["gene"].to_dict()
    assert tops == {"Endothelial CD36": "G0", "Endothelial LTC4S": "G1"}
    # one label matching: an empty table that names it
    alone = SubclusterMarkersSpec(match="CD36")
    empty = subcluster_markers(adata, pd.Series(labels, index=names), alone)
    assert empty.empty and empty.attrs["chosen"] == ["Endothelial CD36"]
