"""The semi-synthetic benchmark: truth reading, DA/DE/tree scoring, summary collection."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy.cluster import hierarchy

from mrvi_repro.metrics import (
    DA_COVARIATE,
    DE_COVARIATE,
    SemisyntheticTruth,
    collect_summary,
    da_benchmark,
    da_scores,
    de_benchmark,
    de_lfcs,
    pr_auc,
    semisynthetic_da_metrics,
    top_split,
    tree_benchmark,
)


def test_truth_from_the_construction(tiny_semi):
    truth = SemisyntheticTruth.from_adata(tiny_semi)
    assert truth.da_cell.sum() == tiny_semi.obs["subset"].isin(["B", "C"]).sum()
    assert len(truth.subject_order) == 32 and truth.subject_linkage.shape == (31, 4)
    assert set(truth.subset_clusters) == {"A", "B", "C"}
    assert list(truth.subject_covariates.columns) == ["covariate_1", DA_COVARIATE, DE_COVARIATE]
    # the planted root separates the subjects as the construction's covariate_1_top does
    top = tiny_semi.obs.groupby("sample_assignment", observed=True)["covariate_1_top"].first()
    sides = {frozenset(top.index[top == v].astype(str)) for v in top.unique()}
    assert top_split(truth.subject_linkage, truth.subject_order) == sides


def test_truth_refuses_other_data(tiny_base):
    with pytest.raises(ValueError, match="not a semi-synthetic dataset"):
        SemisyntheticTruth.from_adata(tiny_base)


def test_top_split_by_hand():
    # ((a, b), (c, (d, e))): the root splits {a, b} from {c, d, e}
    z = np.array([[0, 1, 1.0, 2], [3, 4, 1.0, 2], [2, 6, 2.0, 3], [5, 7, 3.0, 5]])
    labels = ["a", "b", "c", "d", "e"]
    assert top_split(z, labels) == frozenset({frozenset("ab"), frozenset("cde")})


def _truth(n_cells=6):
    # 8 subjects: groups of 2 replicates, planted tree ((G1), ((G2), (G3, G4)))
    order = [f"S{i}" for i in range(8)]
    centers = np.array([0.0, 10.0, 14.0, 15.0]).repeat(2)[:, None]
    z = hierarchy.linkage(centers, method="ward")
    covs = pd.DataFrame(
        {
            "covariate_1": [f"G{i // 2 + 1}" for i in range(8)],
            DA_COVARIATE: ["False"] * 8,
            DE_COVARIATE: ["True"] * 2 + ["False"] * 6,
        },
        index=order,
    )
    return SemisyntheticTruth(
        cells=np.array([f"c{i}" for i in range(n_cells)]),
        subset=np.array(["A", "A", "B", "B", "C", "Other"][:n_cells]),
        da_cell=np.array([False, False, True, True, True, False][:n_cells]),
        subject_covariates=covs,
        subject_linkage=z,
        subject_order=order,
        subset_clusters={"A": "0", "B": "1", "C": "2"},
    ), centers


def test_da_scores_align_cells_and_take_absolute_values():
    truth, _ = _truth()
    ratio = np.array([0.1, -0.2, -2.0, 3.0, 1.0, np.nan])
    mrvi = xr.Dataset({f"log_ratio_{DA_COVARIATE}": ("cell", ratio)}, coords={"cell": truth.cells})
    shuffled = mrvi.isel(cell=[5, 4, 3, 2, 1, 0])
    scores = da_scores(truth, {"mrvi": mrvi, "milo": shuffled})
    np.testing.assert_array_equal(scores["mrvi"], np.abs(ratio))
    np.testing.assert_array_equal(scores["milo"], np.abs(ratio))  # reordered back
    with pytest.raises(ValueError, match="no DA for"):
        da_scores(truth, {"mrvi": mrvi.rename({f"log_ratio_{DA_COVARIATE}": "other"})})
    with pytest.raises(ValueError, match="missing"):
        da_scores(truth, {"mrvi": mrvi.isel(cell=[0, 1])})


def test_da_benchmark_perfect_and_reversed():
    truth = np.array([True, True, False, False, False])
    curves, records = da_benchmark(
        {"good": np.array([5.0, 4, 1, 2, 3]), "bad": np.array([1.0, 2, 5, 4, 3])}, truth
    )
    auc = records.set_index("method")["value"]
    assert auc["good"] == pytest.approx(1.0)
    assert auc["bad"] == pytest.approx(pr_auc(np.array([1.0, 2, 5, 4, 3]), truth))
    assert auc["bad"] < 0.5
    assert list(curves.columns) == ["method", "recall", "precision", "auc"]
    assert (curves.groupby("method")["auc"].nunique() == 1).all()
    assert list(records["metric"].unique()) == ["da_pr_auc"]


def test_every_mrvi_da_estimator_is_scored_as_its_own_method(tiny_semi):
    truth = tiny_semi.obs["da_cell"].to_numpy().astype(bool)
    cells = tiny_semi.obs_names.to_numpy()
    noise = np.random.default_rng(0).normal(size=len(cells))
    mrvi = xr.Dataset(
        {
            f"log_ratio_{DA_COVARIATE}": ("cell", noise),  # the mixture: no skill
            f"log_ratio_{DA_COVARIATE}_per_dimension": ("cell", np.where(truth, -3.0, 0.1)),
        },
        coords={"cell": cells},
    )
    milo = xr.Dataset(
        {f"log_ratio_{DA_COVARIATE}": ("cell", noise * truth)}, coords={"cell": cells}
    )
    curves, records = semisynthetic_da_metrics(tiny_semi, mrvi, milo)
    auc = records.set_index("method")["value"]
    assert list(auc.index) == ["mrvi", "mrvi_per_dimension", "milo"]
    assert auc["mrvi_per_dimension"] == pytest.approx(1.0) and auc["milo"] == pytest.approx(1.0)
    assert auc["mrvi"] < 0.5  # about the prevalence, 0.345
    assert set(curves["method"]) == set(auc.index)
    # a file with the per-dimension estimator alone is scored too; one without MrVI's DA is refused
    only = mrvi[[f"log_ratio_{DA_COVARIATE}_per_dimension"]]
    _, records = semisynthetic_da_metrics(tiny_semi, only, milo)
    assert list(records["method"]) == ["mrvi_per_dimension", "milo"]
    with pytest.raises(ValueError, match="mrvi: no DA for"):
        semisynthetic_da_metrics(tiny_semi, mrvi[[]], milo)


def _de_inputs(genes, ref, mrvi, milode, *, tested="True"):
    deseq2 = pd.DataFrame(
        {"covariate": DE_COVARIATE, "tested": tested, "gene": genes, "log2_fold_change": ref}
    )
    mrvi_ds = xr.Dataset(
        {"lfc": (("covariate", "group", "gene"), np.stack([mrvi, -mrvi])[None])},
        coords={"covariate": [f"{DE_COVARIATE}_True"], "group": ["0", "1"], "gene": genes},
    )
    milode_ds = xr.Dataset(
        {
            "lfc": (("covariate", "group", "gene"), np.stack([milode, milode])[None]),
            "group_a": ("covariate", ["True"]),
        },
        coords={"covariate": [DE_COVARIATE], "group": ["0", "1"], "gene": genes},
    )
    return mrvi_ds, milode_ds, deseq2


def test_de_lfcs_and_pearson():
    genes = [f"g{i}" for i in range(6)]
    ref = np.array([1.0, -1.0, 0.5, 0.0, 2.0, -0.5])
    mrvi = 0.5 * ref  # shrunk but perfectly correlated
    milode = ref + np.array([0.5, -0.5, 0.5, -0.5, 0.5, -0.5])
    lfcs, reference = de_lfcs(*_de_inputs(genes, ref, mrvi, milode), group="0")
    scatter, records = de_benchmark(lfcs, reference)
    r = records.set_index("method")["value"]
    assert r["mrvi"] == pytest.approx(1.0)
    assert r["milode"] == pytest.approx(np.corrcoef(milode, ref)[0, 1])
    assert set(scatter["method"]) == {"mrvi", "milode"} and len(scatter) == 12
    np.testing.assert_allclose(
        scatter[scatter["method"] == "mrvi"]["lfc"], mrvi
    )  # group "0", not the negated group "1"


def test_de_lfcs_refuse_mismatched_inputs():
    genes = ["g0", "g1", "g2"]
    ref = np.array([1.0, 0.0, -1.0])
    mrvi, milode, deseq2 = _de_inputs(genes, ref, ref, ref)
    with pytest.raises(ValueError, match="tested level"):
        de_lfcs(mrvi, milode, deseq2.assign(tested="False"), group="0")
    with pytest.raises(ValueError, match="no rows"):
        de_lfcs(mrvi, milode, deseq2.assign(covariate="other"), group="0")
    with pytest.raises(ValueError, match="no LFCs for group"):
        de_lfcs(mrvi, milode, deseq2, group="9")
    with pytest.raises(ValueError, match="analysis.de.covariates"):
        de_lfcs(mrvi.assign_coords(covariate=["x_True"]), milode, deseq2, group="0")


def _matrices(truth, centers, noise, rng):
    order = truth.subject_order
    d_a = np.abs(centers - centers.T) + noise * rng.random((8, 8))
    d_a = (d_a + d_a.T) / 2
    np.fill_diagonal(d_a, 0)
    flat = rng.random((8, 8))
    flat = (flat + flat.T) / 2
    np.fill_diagonal(flat, 0)
    return xr.DataArray(
        np.stack([d_a, 0.1 * flat]),
        dims=("group", "sample_x", "sample_y"),
        coords={"group": ["0", "1"], "sample_x": order, "sample_y": order},
    )


def test_tree_benchmark_recovers_a_planted_tree():
    truth, centers = _truth()
    rng = np.random.default_rng(0)
    good = _matrices(truth, centers, 0.01, rng)
    # a method whose subset-A matrix is unrelated to the tree
    bad = good.copy()
    bad.loc[{"group": "0"}] = _matrices(truth, rng.permutation(centers), 0.01, rng).sel(group="0")
    table, records = tree_benchmark({"good": good, "bad": bad}, truth)
    rec = records.set_index(["method", "metric"])["value"]
    assert rec["good", "top_split"] == 1.0 and rec["good", "rf_distance"] == 0.0
    assert rec["good", "cophenetic_r"] > 0.95
    assert (
        rec["bad", "rf_distance"] > 0 and rec["bad", "cophenetic_r"] < rec["good", "cophenetic_r"]
    )
    assert abs(rec["good", "cophenetic_r_other"]) < 0.9  # no hierarchy planted in subset B
    per_group = table[(table["method"] == "good") & (table["metric"] == "inter_ratio")]
    assert per_group.set_index("group")["value"]["0"] == pytest.approx(1.0)
    assert per_group.set_index("group")["value"]["1"] < 0.1
    assert set(table["subset"]) == {"A", "B"}
    intra = table[(table["method"] == "good") & (table["metric"] == "intra_ratio")]
    assert intra.set_index("group")["value"]["0"] < 0.1  # replicates nearest each other


def test_tree_benchmark_scores_the_locality_of_sample_effects():
    """A local method (nothing but noise outside subset A) against a leaky one (a small copy of
    subset A's matrix outside it): the copy is as hierarchical as A (scale-free cophenetic r) but
    small (distance ratio); both locality metrics are in the summary."""
    truth, centers = _truth()
    rng = np.random.default_rng(2)
    local = _matrices(truth, centers, 0.01, rng)
    leaky = local.copy()
    leaky.loc[{"group": "1"}] = 0.3 * local.sel(group="0").values
    table, records = tree_benchmark({"local": local, "leaky": leaky}, truth)
    rec = records.set_index(["method", "metric"])["value"]
    inter = table[table["metric"] == "inter_ratio"].set_index(["method", "group"])["value"]
    for method in ("local", "leaky"):
        assert rec[method, "distance_ratio_other"] == pytest.approx(inter[method, "1"])
    assert rec["leaky", "distance_ratio_other"] == pytest.approx(0.3)
    assert rec["local", "distance_ratio_other"] < 0.1
    assert rec["leaky", "cophenetic_r_other"] == pytest.approx(rec["leaky", "cophenetic_r"])
    assert rec["leaky", "cophenetic_r_other"] > 0.95 > 0.5 > abs(rec["local", "cophenetic_r_other"])


def test_tree_benchmark_needs_subset_a_and_all_subjects():
    truth, centers = _truth()
    m = _matrices(truth, centers, 0.0, np.random.default_rng(1))
    with pytest.raises(ValueError, match="subset A"):
        tree_benchmark({"x": m.sel(group=["1"])}, truth)
    with pytest.raises(ValueError, match="lack subjects"):
        tree_benchmark({"x": m.isel(sample_x=slice(0, 7), sample_y=slice(0, 7))}, truth)


def test_collect_summary_refuses_duplicates_and_keeps_order():
    a = pd.DataFrame({"method": ["mrvi"], "metric": ["da_pr_auc"], "value": [0.5]})
    b = pd.DataFrame({"method": ["milo"], "metric": ["da_pr_auc"], "value": [0.4]})
    out = collect_summary([a, b, a.iloc[:0]])
    assert list(out["method"]) == ["mrvi", "milo"]
    with pytest.raises(ValueError):
        collect_summary([a, a])
    assert list(collect_summary([]).columns) == ["method", "metric", "value"]
