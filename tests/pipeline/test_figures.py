"""Loading helpers of the figure rules (mrvi_repro.pipeline.figures)."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
from scipy import sparse

from mrvi_repro.pipeline.figures import normalised_expression


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
