"""marker_genes: planted markers of each group come out on top, with their dot-plot statistics."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from mrvi_repro.analysis import marker_genes


def _planted(seed: int = 0) -> ad.AnnData:
    """Three groups of 150 cells x 60 genes; group k expresses genes 3k..3k+2 8x higher (gene
    3k most, 3k+2 least), and genes 50-59 are expressed in half of group A's cells only."""
    rng = np.random.default_rng(seed)
    groups = np.repeat(["A", "B", "C"], 150)
    rate = np.full((450, 60), 0.5)
    for k, g in enumerate(["A", "B", "C"]):
        for j, fold in enumerate((16.0, 10.0, 6.0)):
            rate[groups == g, 3 * k + j] *= fold
    counts = rng.poisson(rate).astype(np.float32)
    logged = np.log1p(counts / counts.sum(1, keepdims=True) * 1e4)
    obs = pd.DataFrame({"label": groups}, index=[f"c{i}" for i in range(450)])
    return ad.AnnData(
        sparse.csr_matrix(logged), obs=obs, var=pd.DataFrame(index=[f"G{j}" for j in range(60)])
    )


def test_planted_markers_rank_first_in_their_order():
    dot = marker_genes(_planted(), "label", n_markers=3)
    tops = dot.drop_duplicates("gene").set_index("gene")
    for k, g in enumerate(["A", "B", "C"]):
        genes = tops[tops["marker_of"] == g].sort_values("rank").index.tolist()
        assert genes == [f"G{3 * k}", f"G{3 * k + 1}", f"G{3 * k + 2}"]
    # one row per group and marker gene: 3 groups x 9 genes
    assert len(dot) == 27 and set(dot["group"]) == {"A", "B", "C"}
    own = dot[dot["group"] == dot["marker_of"]]
    other = dot[dot["group"] != dot["marker_of"]]
    # a marker is expressed in nearly all of its group's cells, in under half of the others'
    assert own["fraction"].min() > 0.9 and other["fraction"].max() < 0.5
    assert (own.groupby("gene")["mean"].first() > 2 * other.groupby("gene")["mean"].max()).all()


def test_markers_need_two_groups_and_the_column():
    adata = _planted()
    with pytest.raises(ValueError, match="no obs column"):
        marker_genes(adata, "missing")
    one = adata[adata.obs["label"] == "A"].copy()
    with pytest.raises(ValueError, match="two groups"):
        marker_genes(one, "label")
