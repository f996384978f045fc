"""Hand-checked tests of mrvi_repro.metrics (every expected value is worked out in a comment)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy.cluster.hierarchy import ClusterNode

from mrvi_repro.data.semisynthetic import _subject_linkage
from mrvi_repro.metrics import (
    SUMMARY_COLUMNS,
    Correlation,
    cophenetic_correlation,
    inter_cluster_distance_ratio,
    intra_cluster_distance_ratio,
    lfc_pearson,
    linkage_from_distances,
    pr_auc,
    pr_curve,
    robinson_foulds,
    summary_table,
    tree_clusters,
    tree_recovery,
)

# --- precision-recall -----------------------------------------------------------------------


def test_pr_curve_four_points_by_hand():
    # ranked: .9 (P), .8 (N), .7 (P), .6 (N); 2 positives
    # t=.6: 2/4 called correct, recall 2/2 | t=.7: 2/3, 1 | t=.8: 1/2, 1/2 | t=.9: 1/1, 1/2
    # then sklearn's end point (precision 1, recall 0)
    curve = pr_curve([0.9, 0.8, 0.7, 0.6], [True, False, True, False])
    assert list(curve.columns) == ["precision", "recall", "threshold"]
    np.testing.assert_allclose(curve["precision"], [1 / 2, 2 / 3, 1 / 2, 1, 1])
    np.testing.assert_allclose(curve["recall"], [1, 1, 1 / 2, 1 / 2, 0])
    np.testing.assert_allclose(curve["threshold"], [0.6, 0.7, 0.8, 0.9, np.nan])


def test_pr_auc_trapezoid_by_hand():
    # trapezoids over recall: 1->1: 0; 1->.5: .5 * (2/3 + 1/2) / 2 = 7/24; .5->.5: 0;
    # .5->0: .5 * (1 + 1) / 2 = 12/24  => 19/24 (average precision would give 5/6)
    assert pr_auc([0.9, 0.8, 0.7, 0.6], [1, 0, 1, 0]) == pytest.approx(19 / 24)
    # a perfect ranking has area 1
    assert pr_auc([0.9, 0.8, 0.2, 0.1], [1, 1, 0, 0]) == pytest.approx(1.0)


def test_pr_nan_scores_ranked_last_or_omitted():
    scores = [0.9, np.nan, 0.7, 0.6]
    truth = [True, True, False, False]
    # "lowest": the NaN becomes 0.6 - 1 = -0.4, ranked last: .9 P, .7 N, .6 N, -.4 P
    # curve: (P .5, R 1), (1/3, .5), (.5, .5), (1, .5), (1, 0)
    curve = pr_curve(scores, truth)
    np.testing.assert_allclose(curve["precision"], [1 / 2, 1 / 3, 1 / 2, 1, 1])
    np.testing.assert_allclose(curve["recall"], [1, 1 / 2, 1 / 2, 1 / 2, 0])
    assert curve["threshold"].iloc[0] == pytest.approx(-0.4)
    # area: 1->.5: .5 * (1/2 + 1/3) / 2 = 5/24; .5->0: .5 => 17/24
    assert pr_auc(scores, truth) == pytest.approx(17 / 24)
    # "omit": .9 P, .7 N, .6 N with one positive -> recall 1 at every threshold, area 1
    assert pr_auc(scores, truth, nan_policy="omit") == pytest.approx(1.0)
    with pytest.raises(ValueError, match="NaN"):
        pr_auc(scores, truth, nan_policy="raise")


def test_pr_input_checks():
    with pytest.raises(ValueError, match="same length"):
        pr_curve([0.1, 0.2], [True])
    with pytest.raises(ValueError, match="no positive"):
        pr_curve([0.1, 0.2], [False, False])
    with pytest.raises(ValueError, match="infinite"):
        pr_curve([np.inf, 0.2], [True, False])
    with pytest.raises(ValueError, match="boolean"):
        pr_curve([0.1, 0.2], [2, 0])


# --- LFC correlation ------------------------------------------------------------------------


def test_lfc_pearson_aligns_by_gene_and_drops_nan():
    lfc = pd.Series({"g1": 1.0, "g2": 2.0, "g3": 3.0, "g4": np.nan, "g5": 10.0})
    ref = pd.Series({"g3": 5.0, "g6": 7.0, "g1": 2.0, "g4": 1.0, "g2": 4.0})
    # common finite genes g1..g3: x = (1, 2, 3), y = (2, 4, 5)
    # Sxy = 3, Sxx = 2, Syy = 14/3 -> r = 3 / sqrt(28/3) = sqrt(27/28)
    res = lfc_pearson(lfc, ref)
    assert isinstance(res, Correlation)
    assert res.n == 3
    assert res.r == pytest.approx(math.sqrt(27 / 28))
    assert float(res) == res.r
    # fewer than 2 genes or a constant side: NaN with the count
    short = lfc_pearson(pd.Series({"g1": 1.0}), pd.Series({"g1": 2.0}))
    assert math.isnan(short.r) and short.n == 1
    const = lfc_pearson(pd.Series({"a": 1.0, "b": 1.0}), pd.Series({"a": 1.0, "b": 2.0}))
    assert math.isnan(const.r) and const.n == 2
    with pytest.raises(TypeError, match="Series"):
        lfc_pearson(np.array([1.0, 2.0]), ref)
    with pytest.raises(ValueError, match="duplicated"):
        lfc_pearson(pd.Series([1.0, 2.0], index=["a", "a"]), ref)


# --- trees ----------------------------------------------------------------------------------

# leaves 0..3 = a, b, c, d
BALANCED = np.array([[0, 1, 1, 2], [2, 3, 2, 2], [4, 5, 3, 4]], float)  # ((a,b),(c,d))
CATERPILLAR = np.array([[0, 1, 1, 2], [4, 2, 2, 3], [5, 3, 3, 4]], float)  # (((a,b),c),d)
OTHER = np.array([[0, 2, 1, 2], [4, 1, 2, 3], [5, 3, 3, 4]], float)  # (((a,c),b),d)
ABCD = ["a", "b", "c", "d"]


def test_tree_clusters_by_hand():
    assert tree_clusters(BALANCED, ABCD) == {frozenset("ab"), frozenset("cd")}
    assert tree_clusters(CATERPILLAR, ABCD) == {frozenset("ab"), frozenset("abc")}
    assert tree_clusters(OTHER) == {frozenset({0, 2}), frozenset({0, 1, 2})}


def test_robinson_foulds_by_hand():
    assert robinson_foulds(BALANCED, BALANCED, ABCD) == 0.0
    # {ab, cd} vs {ab, abc}: symmetric difference {cd, abc} -> 2 / (2 + 2)
    assert robinson_foulds(BALANCED, CATERPILLAR, ABCD) == pytest.approx(0.5)
    # {ab, cd} vs {ac, abc}: nothing shared -> 4 / 4
    assert robinson_foulds(BALANCED, OTHER, ABCD) == pytest.approx(1.0)
    # same topology, leaves numbered differently: leaf order (c, d, a, b) of the same shape
    assert robinson_foulds(BALANCED, BALANCED, ABCD, ["c", "d", "a", "b"]) == 0.0
    # caterpillar over (c, d, a, b): {cd, cda} vs {ab, cd} -> 2 / 4
    assert robinson_foulds(BALANCED, CATERPILLAR, ABCD, ["c", "d", "a", "b"]) == 0.5
    with pytest.raises(ValueError, match="leaf labels"):
        robinson_foulds(BALANCED, BALANCED, ABCD, ["a", "b", "c", "e"])
    with pytest.raises(ValueError, match="numbers of leaves"):
        robinson_foulds(BALANCED, np.array([[0, 1, 1, 2]], float))


def test_zero_length_branches_collapse():
    # replicates a, b, c joined at height 0 in two different binary orders, then d at height 1
    z1 = np.array([[0, 1, 0, 2], [4, 2, 0, 3], [5, 3, 1, 4]], float)
    z2 = np.array([[1, 2, 0, 2], [4, 0, 0, 3], [5, 3, 1, 4]], float)
    assert tree_clusters(z1) == {frozenset({0, 1, 2})}
    assert robinson_foulds(z1, z2) == 0.0
    # without collapsing: {01, 012} vs {12, 012} -> 2 / 4
    assert robinson_foulds(z1, z2, collapse_zero_length=False) == 0.5


def test_cophenetic_correlation_by_hand():
    d = np.array([[0, 1, 4], [1, 0, 4], [4, 4, 0]], float)
    z = np.array([[0, 1, 1, 2], [2, 3, 4, 3]], float)  # cophenetic distances (1, 4, 4)
    assert cophenetic_correlation(d, z) == pytest.approx(1.0)
    # the matrix with samples permuted (2, 0, 1): condensed (4, 4, 1) against (1, 4, 4):
    # deviations (-2, 1, 1) and (1, 1, -2) -> r = -3 / 6
    perm = [2, 0, 1]
    shuffled = d[np.ix_(perm, perm)]
    assert cophenetic_correlation(shuffled, z) == pytest.approx(-0.5)
    # named samples are reordered to the tree's leaf labels, as DataFrame or DataArray
    names = np.array(["s0", "s1", "s2"])
    frame = pd.DataFrame(shuffled, index=names[perm], columns=names[perm])
    assert cophenetic_correlation(frame, z, labels=names) == pytest.approx(1.0)
    da = xr.DataArray(
        shuffled,
        dims=("sample_x", "sample_y"),
        coords={"sample_x": names[perm], "sample_y": names[perm]},
    )
    assert cophenetic_correlation(da, z, labels=list(names)) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="do not match"):
        cophenetic_correlation(frame, z, labels=["s0", "s1", "x"])


def test_own_ward_tree_beats_shuffled_matrix():
    rng = np.random.default_rng(0)
    pts = np.concatenate([rng.normal(c, 0.3, (4, 2)) for c in ((0, 0), (5, 0), (0, 5))])
    d = np.linalg.norm(pts[:, None] - pts[None], axis=-1)
    z = linkage_from_distances(d)
    own = cophenetic_correlation(d, z)
    perm = rng.permutation(len(d))
    assert own > 0.9
    assert cophenetic_correlation(d[np.ix_(perm, perm)], z) < own - 0.3
    # the Ward tree of the matrix is the tree itself
    assert robinson_foulds(z, linkage_from_distances(d)) == 0.0


def test_tree_recovery_of_a_semisynthetic_subject_tree():
    # subclusters 0, 1 merge at 1, then subcluster 2 at 2; 2 replicates each -> 6 subjects
    tree = ClusterNode(
        4, ClusterNode(3, ClusterNode(0), ClusterNode(1), dist=1.0), ClusterNode(2), dist=2.0
    )
    z, _ = _subject_linkage(tree, n_replicates=2)
    assert tree_clusters(z) == {
        frozenset({0, 1}),
        frozenset({2, 3}),
        frozenset({4, 5}),
        frozenset({0, 1, 2, 3}),
    }
    subjects = [f"S{i}" for i in range(6)]
    # distances: the tree's heights plus a small within-subcluster distance
    group = np.repeat([0, 1, 2], 2)
    d = np.where(group[:, None] == group[None], 0.1, 1.0)
    d[4:, :] = d[:, 4:] = 2.0
    d[4:, 4:] = 0.1
    np.fill_diagonal(d, 0.0)
    perm = [5, 2, 0, 4, 1, 3]
    frame = pd.DataFrame(
        d[np.ix_(perm, perm)],
        index=[subjects[i] for i in perm],
        columns=[subjects[i] for i in perm],
    )
    good = tree_recovery(frame, z, subjects)
    assert good["robinson_foulds"] == 0.0
    assert good["cophenetic_correlation"] == pytest.approx(1.0, abs=0.01)
    # a matrix without the structure (samples swapped across subclusters) does worse
    swap = [0, 2, 4, 1, 3, 5]
    bad = tree_recovery(d[np.ix_(swap, swap)], z)
    assert bad["robinson_foulds"] > 0.5
    assert bad["cophenetic_correlation"] < 0.5


# --- distance ratios ------------------------------------------------------------------------

RATIO_D = np.array(
    [[0, 1, 4, 5], [1, 0, 3, 6], [4, 3, 0, 2], [5, 6, 2, 0]],
    float,
)


def test_intra_cluster_distance_ratio_by_hand():
    # groups x x y y: nearest same / nearest other = 1/4, 1/3, 2/3, 2/5 -> mean 0.4125
    assert intra_cluster_distance_ratio(RATIO_D, ["x", "x", "y", "y"]) == pytest.approx(0.4125)
    with pytest.raises(ValueError, match="another sample"):
        intra_cluster_distance_ratio(RATIO_D, ["x", "y", "y", "y"])


def test_inter_cluster_distance_ratio_by_hand():
    # positive: off-diagonal mean 2 * (1+4+5+3+6+2) / 12 = 3.5; other: 0.7 -> 0.2
    other = 0.7 * (1 - np.eye(4))
    assert inter_cluster_distance_ratio(other, RATIO_D) == pytest.approx(0.2)
    assert math.isnan(inter_cluster_distance_ratio(other, np.zeros((4, 4))))


# --- summary table --------------------------------------------------------------------------


def test_summary_table():
    out = summary_table(
        [
            {"method": "mrvi", "metric": "da_pr_auc", "value": 0.8},
            ("milo", "da_pr_auc", np.float32(0.5)),
            ("mrvi", "de_pearson", Correlation(0.9, 100)),
            ("milode", "de_pearson", math.nan),
            ("mrvi", "n", 3),
        ]
    )
    assert tuple(out.columns) == SUMMARY_COLUMNS == ("method", "metric", "value")
    assert out["value"].dtype == np.float64
    assert out["method"].tolist() == ["mrvi", "milo", "mrvi", "milode", "mrvi"]
    np.testing.assert_allclose(out["value"], [0.8, 0.5, 0.9, np.nan, 3.0])
    pd.testing.assert_frame_equal(summary_table(out), out)
    assert summary_table([]).columns.tolist() == list(SUMMARY_COLUMNS)


@pytest.mark.parametrize(
    ("records", "error", "match"),
    [
        ([("mrvi", "auc", "0.5")], TypeError, "real number"),
        ([("mrvi", "auc", True)], TypeError, "real number"),
        ([(1, "auc", 0.5)], TypeError, "method"),
        ([("mrvi", "", 0.5)], TypeError, "metric"),
        ([{"method": "mrvi", "metric": "auc", "score": 0.5}], ValueError, "keys"),
        ([("mrvi", "auc")], ValueError, "method, metric, value"),
        ([("mrvi", "auc", 0.5), ("mrvi", "auc", 0.6)], ValueError, "duplicated"),
    ],
)
def test_summary_table_rejects(records, error, match):
    with pytest.raises(error, match=match):
        summary_table(records)
