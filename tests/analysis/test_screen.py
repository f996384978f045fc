"""Samples of a screen ranked by distance to the reference, clustered, and their DE gene sets."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy import stats
from sklearn.metrics import adjusted_rand_score

from mrvi_repro.analysis import (
    cluster_enrichment,
    de_gene_lists,
    overrepresentation,
    screen_clusters,
)


def _matrix(points: np.ndarray, names: list[str]) -> xr.DataArray:
    d = np.linalg.norm(points[:, None] - points[None], axis=-1)
    return xr.DataArray(
        d, dims=("sample_x", "sample_y"), coords={"sample_x": names, "sample_y": names}
    )


@pytest.fixture
def screen() -> tuple[xr.DataArray, dict[str, str]]:
    """A reference at 0, six weak samples near it and three planted groups of three far away."""
    rng = np.random.default_rng(0)
    names, points, group = ["ref"], [np.zeros(2)], {}
    for i in range(6):
        names.append(f"weak{i}")
        points.append(rng.normal(0, 0.2, 2))
    for g, centre in enumerate([(10.0, 0.0), (0.0, 10.0), (-10.0, -10.0)]):
        for i in range(3):
            names.append(f"g{g}_{i}")
            points.append(np.asarray(centre) + rng.normal(0, 0.3, 2))
            group[names[-1]] = f"g{g}"
    return _matrix(np.asarray(points), names), group


def test_screen_clusters_keeps_the_farthest_and_finds_the_planted_groups(screen):
    matrix, group = screen
    table = screen_clusters(matrix, "ref", top_fraction=0.6, n_clusters=3)
    # 15 samples besides the reference; ceil(0.6 x 15) = 9 retained: exactly the planted ones
    assert table["retained"].sum() == 9
    kept = table[table["retained"]]
    assert set(kept["sample"]) == set(group)
    assert adjusted_rand_score(kept["sample"].map(group), kept["cluster"]) == 1.0
    assert sorted(kept["cluster"].unique()) == ["1", "2", "3"]
    # ranks by decreasing distance; the reference last with distance 0; leaves a permutation
    assert table["distance_to_reference"].is_monotonic_decreasing
    assert table.iloc[-1]["sample"] == "ref" and table.iloc[-1]["rank"] == 16
    assert sorted(kept["leaf"]) == list(range(9))
    assert (table.loc[~table["retained"], "cluster"] == "").all()


def test_screen_clusters_caps_the_clusters_and_checks_its_inputs(screen):
    matrix, _ = screen
    table = screen_clusters(matrix, "ref", top_fraction=0.2, n_clusters=8)
    assert table["retained"].sum() == 3 and table["cluster"].replace("", np.nan).nunique() <= 3
    with pytest.raises(ValueError, match="reference 'nope' is not a sample"):
        screen_clusters(matrix, "nope")
    with pytest.raises(ValueError, match="retains 1 sample"):
        screen_clusters(matrix, "ref", top_fraction=0.05)
    with pytest.raises(ValueError, match="top_fraction must lie"):
        screen_clusters(matrix, "ref", top_fraction=0.0)
    bad = matrix.copy()
    bad[0, 1] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        screen_clusters(bad, "ref")


def test_overrepresentation_is_the_hypergeometric_tail():
    universe = [f"g{i}" for i in range(20)]
    sets = {"A": ["g0", "g1", "g2", "g3", "g4"], "B": ["g10", "g11", "g12", "g13", "g14", "x"]}
    table = overrepresentation(["g0", "g1", "g2", "g5"], sets, universe, min_size=5)
    a = table.set_index("gene_set").loc["A"]
    # 3 of a list of 4 in a set of 5 among 20 genes: P(X >= 3)
    expected = stats.hypergeom.sf(2, 20, 5, 4)
    assert a["overlap"] == 3 and a["size"] == 5 and np.isclose(a["pvalue"], expected)
    assert np.isclose(expected, (10 * 15 + 5) / 4845)  # (C(5,3)C(15,1) + C(5,4)) / C(20,4)
    b = table.set_index("gene_set").loc["B"]
    assert b["overlap"] == 0 and b["pvalue"] == 1.0 and b["size"] == 5  # "x" is outside
    assert table["gene_set"].iloc[0] == "A" and a["genes"] == "g0,g1,g2"
    assert overrepresentation([], sets, universe).empty
    with pytest.raises(ValueError, match="not in the universe"):
        overrepresentation(["zzz"], sets, universe)


def test_de_gene_lists_and_enrichment_find_the_planted_set():
    genes = [f"g{i}" for i in range(60)]
    lfc = np.zeros((2, 60))
    lfc[0, :10] = np.linspace(2.0, 1.0, 10)  # cluster 1: g0-g9 up
    lfc[0, 10:15] = -1.5  # and g10-g14 down
    lfc[1, 20:30] = 0.4  # cluster 2: below the threshold
    mean_lfc = xr.DataArray(
        lfc, dims=("covariate", "gene"), coords={"covariate": ["1", "2"], "gene": genes}
    )
    lists = de_gene_lists(mean_lfc, min_lfc=0.5, max_genes=8)
    assert lists[("1", "up")] == [f"g{i}" for i in range(8)]  # the 8 largest, largest first
    assert lists[("1", "down")] == [f"g{i}" for i in range(10, 15)]
    assert lists[("2", "up")] == [] and lists[("2", "down")] == []
    sets = {"UP": genes[:10], "DOWN": genes[10:15], "OTHER": genes[40:50]}
    table = cluster_enrichment(mean_lfc, sets, min_lfc=0.5, min_size=5)
    best = table.sort_values("pvalue").groupby(["cluster", "direction"]).first()
    assert best.loc[("1", "up"), "gene_set"] == "UP" and best.loc[("1", "up"), "fdr"] < 1e-6
    assert best.loc[("1", "down"), "gene_set"] == "DOWN"
    assert np.allclose(table["score"], -np.log10(table["fdr"]))
    assert set(table["cluster"]) == {"1"}  # cluster 2 has no DE gene: nothing tested
