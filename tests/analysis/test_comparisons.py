import logging

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats
from sklearn.metrics import adjusted_rand_score

from mrvi_repro.analysis import (
    cluster_abundance_test,
    compare_sample_groups,
    gene_modules,
    module_activity,
    select_samples,
)

# --- cluster-level differential abundance -------------------------------------------------------


def test_cluster_test_calls_a_real_shift_and_not_one_inside_delta_with_100k_cells(caplog):
    rng = np.random.default_rng(0)
    sizes = {"A": 2_000, "D": 2_000, "B": 40_000, "C": 56_000}
    shifts = {"A": 0.5, "D": -0.5, "B": 0.05, "C": 0.0}
    clusters = np.repeat(list(sizes), list(sizes.values()))
    log_ratio = rng.standard_normal(len(clusters)) + np.vectorize(shifts.get)(clusters)
    log_ratio[:10] = np.nan  # cells of A with no log ratio
    clusters = np.append(clusters, "E")  # a cluster of one cell
    log_ratio = np.append(log_ratio, 3.0)
    with caplog.at_level(logging.INFO, logger="mrvi_repro.analysis._comparisons"):
        table = cluster_abundance_test(log_ratio, clusters).set_index("cluster")
    assert "dropped 10 of 100001 cells" in caplog.text
    assert table.attrs["n_dropped"] == 10
    assert list(table.index) == ["A", "B", "C", "D", "E"]
    assert table.loc["A", "n_cells"] == 1_990
    # a shift of 0.5 is called, in its direction
    for name, direction in (("A", "enriched"), ("D", "depleted")):
        assert table.loc[name, "direction"] == direction
        assert table.loc[name, "padj"] < 1e-10
        assert table.loc[name, "significant"]
        assert abs(table.loc[name, "difference"] - shifts[name]) < 0.05
    # a shift of 0.05 (and C's -0.045) lies inside delta = 0.1: not called, although a point-null
    # t-test calls B with 96,000 cells
    assert abs(table.loc["B", "difference"] - 0.05) < 0.015
    for name in ("B", "C"):
        assert table.loc[name, "pvalue"] > 0.5
        assert not table.loc[name, "significant"]
    inside = clusters[:-1] == "B"
    finite = np.isfinite(log_ratio[:-1])
    point_null = stats.ttest_ind(
        log_ratio[:-1][inside & finite], log_ratio[:-1][~inside & finite], equal_var=False
    )
    assert point_null.pvalue < 1e-4
    # one cell: no test
    assert table.loc["E", "n_cells"] == 1
    assert np.isnan(table.loc["E", "pvalue"]) and np.isnan(table.loc["E", "padj"])
    assert not table.loc["E", "significant"]


def test_cluster_test_with_delta_zero_is_half_welch_two_sided():
    rng = np.random.default_rng(1)
    clusters = rng.choice(["x", "y", "z"], size=600, p=[0.2, 0.3, 0.5])
    log_ratio = rng.normal(0.0, 1.0, 600) + 0.3 * (clusters == "x") + 5.0  # offset: cancellation
    table = cluster_abundance_test(log_ratio, clusters, delta=0.0).set_index("cluster")
    for name in "xyz":
        ref = stats.ttest_ind(
            log_ratio[clusters == name], log_ratio[clusters != name], equal_var=False
        )
        np.testing.assert_allclose(table.loc[name, "t"], abs(ref.statistic), rtol=1e-9)
        np.testing.assert_allclose(table.loc[name, "df"], ref.df, rtol=1e-9)
        np.testing.assert_allclose(table.loc[name, "pvalue"], ref.pvalue / 2, rtol=1e-7)
    padj = stats.false_discovery_control(table["pvalue"].to_numpy(), method="bh")
    np.testing.assert_allclose(table["padj"].to_numpy(), padj)


def test_cluster_test_keeps_categories_and_checks_inputs():
    clusters = pd.Categorical(["b", "b", "a", "a", "a"], categories=["b", "a", "empty"])
    table = cluster_abundance_test(np.array([1.0, 1.1, 0.0, 0.1, -0.1]), clusters)
    assert list(table["cluster"]) == ["b", "a", "empty"]
    assert table["n_cells"].tolist() == [2, 3, 0]
    assert table["pvalue"].isna().tolist() == [False, False, True]
    with pytest.raises(ValueError, match="3 labels for 2 log ratios"):
        cluster_abundance_test(np.zeros(2), ["a", "b", "c"])
    with pytest.raises(ValueError, match="delta must be >= 0"):
        cluster_abundance_test(np.zeros(3), ["a", "b", "c"], delta=-1)


# --- sample covariates between sample groups ----------------------------------------------------


def _sample_table():
    samples = [f"s{i}" for i in range(12)]
    return pd.DataFrame(
        {
            "disease": ["covid"] * 8 + ["healthy"] * 4,
            "dose": [1.0, 10.0] * 6,
            "treated": [True, False, False] * 4,
            "batch": [1, 1, 2, 2, 3, 3] * 2,
        },
        index=samples,
    )


def test_mann_whitney_separates_planted_groups_and_not_identical_ones(caplog):
    rng = np.random.default_rng(2)
    samples = [f"d{i}" for i in range(21)]
    groups = pd.Series([1] * 10 + [3] * 10 + [2], index=samples)
    dss = pd.Series(
        np.r_[rng.normal(5, 1, 10), rng.normal(12, 1, 10), 7.0], index=samples, name="dss"
    )
    dss.iloc[0] = np.nan  # a donor with no record
    with caplog.at_level(logging.INFO, logger="mrvi_repro.analysis._comparisons"):
        row = compare_sample_groups(dss, groups, group_a=3, group_b="1").iloc[0]
    assert "dropped 1 of 21 samples" in caplog.text
    assert (row["covariate"], row["group_a"], row["group_b"]) == ("dss", "3", "1")
    assert (row["n_a"], row["n_b"]) == (10, 9)
    assert row["median_a"] > 10 > row["median_b"]
    assert row["u"] == 90.0  # every value of group 3 above every value of group 1
    assert row["pvalue"] < 0.05

    # the same values in both groups
    values = rng.normal(size=10)
    same = pd.Series(np.r_[values, rng.permutation(values)], index=samples[:20], name="age")
    two = pd.Series(["young"] * 10 + ["old"] * 10, index=samples[:20])
    row = compare_sample_groups(same, two).iloc[0]
    assert (row["group_a"], row["group_b"]) == ("young", "old")  # sorted: b first, a second
    assert row["pvalue"] > 0.2
    assert row["u"] == 50.0


def test_mann_whitney_errors_name_the_groups():
    samples = [f"d{i}" for i in range(9)]
    values = pd.Series(np.arange(9.0), index=samples, name="dss")
    groups = pd.Series(["g1", "g2", "g3"] * 3, index=samples)
    with pytest.raises(
        ValueError, match=r"3 groups \['g1', 'g2', 'g3'\]: name group_a and group_b"
    ):
        compare_sample_groups(values, groups)
    with pytest.raises(ValueError, match=r"group 'g4' .* groups are \['g1', 'g2', 'g3'\]"):
        compare_sample_groups(values, groups, group_a="g4", group_b="g1")
    row = compare_sample_groups(values, groups, group_a="g3", group_b="g1").iloc[0]
    assert (row["n_a"], row["n_b"]) == (3, 3)
    with pytest.raises(ValueError, match="not numeric"):
        compare_sample_groups(pd.Series(list("abcdefghi"), index=samples), groups)


def test_select_samples_include_exclude():
    table = _sample_table()
    # YAML gives ints and bools; the columns hold floats, strings and bools
    chosen = select_samples(table, include={"disease": ["covid"], "dose": [1]})
    assert chosen == ["s0", "s2", "s4", "s6"]
    chosen = select_samples(table, include={"disease": ["covid"]}, exclude={"treated": [True]})
    assert chosen == ["s1", "s2", "s4", "s5", "s7"]
    chosen = select_samples(table, exclude={"batch": [1, "2"], "disease": ["healthy"]})
    assert chosen == ["s4", "s5"]
    assert select_samples(table) == list(table.index)


def test_select_samples_errors():
    table = _sample_table()
    with pytest.raises(KeyError, match=r"'severity' is not a sample covariate; columns are \["):
        select_samples(table, include={"severity": ["high"]})
    with pytest.raises(
        ValueError,
        match=r"no sample has disease = \['flu'\]; its values are \['covid', 'healthy'\]",
    ):
        select_samples(table, include={"disease": ["covid", "flu"]})
    with pytest.raises(
        ValueError, match=r"exclude: no sample has dose = \['5'\]; .* \['1', '10'\]"
    ):
        select_samples(table, exclude={"dose": [5]})
    with pytest.raises(ValueError, match="no sample left"):
        select_samples(table, include={"disease": ["healthy"]}, exclude={"batch": [1, 2, 3]})


# --- gene modules -------------------------------------------------------------------------------


def _planted_lfc(n_cells=3000, per_program=40, seed=3):
    """Cells x genes LFCs: 3 programs of genes sharing a per-cell profile, plus noise."""
    rng = np.random.default_rng(seed)
    profiles = rng.standard_normal((n_cells, 3))
    truth = np.repeat(np.arange(3), per_program)
    rng.shuffle(truth)
    gain = rng.uniform(0.8, 1.2, len(truth))
    values = profiles[:, truth] * gain + 0.5 * rng.standard_normal((n_cells, len(truth)))
    genes = [f"gene{i}" for i in range(len(truth))]
    lfc = xr.DataArray(
        values.astype(np.float32),
        dims=("cell", "gene"),
        coords={"cell": [f"c{i}" for i in range(n_cells)], "gene": genes},
        name="lfc",
    )
    return lfc, pd.Series(truth, index=genes)


def test_gene_modules_recover_planted_programs(tmp_path):
    lfc, truth = _planted_lfc()
    modules = gene_modules(lfc, seed=0)
    assert list(modules.index) == list(truth.index)
    assert list(modules.cat.categories) == ["1", "2", "3"]
    assert adjusted_rand_score(truth, modules) >= 0.9
    assert modules.attrs["n_pcs_used"] == 50

    # fewer cells than there are (a seeded subset), and from a zarr store: the same modules
    sub = gene_modules(lfc, max_cells=500, block=128, seed=0)
    assert sub.attrs["n_cells_used"] == 500
    assert adjusted_rand_score(truth, sub) >= 0.9
    store = tmp_path / "lfc.zarr"
    lfc.to_dataset().to_zarr(store, consolidated=False)
    lazy = xr.open_zarr(store, consolidated=False)["lfc"].transpose("gene", "cell")
    from_zarr = gene_modules(lazy, max_cells=500, block=128, seed=0)
    pd.testing.assert_series_equal(from_zarr, sub)


def test_gene_modules_checks_dims():
    lfc, _ = _planted_lfc(n_cells=50, per_program=5)
    with pytest.raises(ValueError, match=r"dims \(cell, gene\)"):
        gene_modules(lfc.expand_dims(covariate=["x"]))
    with pytest.raises(ValueError, match="n_neighbors = 15"):
        gene_modules(lfc.isel(gene=slice(10)))


def test_module_activity_is_the_mean_lfc_of_each_module(tmp_path):
    lfc, truth = _planted_lfc(n_cells=1000, per_program=10)
    modules = truth.map({0: "a", 1: "b", 2: "c"}).astype(object)
    modules.iloc[:4] = None  # genes in no module
    direct = np.stack(
        [lfc.values[:, (modules == m).to_numpy()].astype(np.float64).mean(1) for m in "abc"], 1
    )
    activity = module_activity(lfc, modules, block=77)
    assert activity.dims == ("cell", "module")
    assert list(activity["module"].values) == ["a", "b", "c"]
    assert activity["n_genes"].values.tolist() == [int((modules == m).sum()) for m in "abc"]
    np.testing.assert_allclose(activity.values, direct, rtol=1e-12)
    # a planted module's activity follows its program's profile
    assert (
        np.corrcoef(activity.values[:, 0], lfc.values[:, (truth == 0).to_numpy()].mean(1))[0, 1]
        > 0.99
    )

    store = tmp_path / "lfc.zarr"
    lfc.to_dataset().to_zarr(store, consolidated=False)
    lazy = xr.open_zarr(store, consolidated=False)["lfc"]
    np.testing.assert_allclose(module_activity(lazy, modules, block=300).values, direct)
    with pytest.raises(KeyError, match="not in lfc"):
        module_activity(lfc.isel(gene=slice(20, None)), modules)


def test_cluster_test_with_one_group_reports_nothing_to_compare():
    table = cluster_abundance_test(np.array([0.1, 0.3, 0.2]), np.array(["a", "a", "a"]))
    row = table.iloc[0]
    assert row["n_cells"] == 3 and np.isclose(row["mean_in"], 0.2)
    assert np.isnan(row["mean_out"]) and np.isnan(row["difference"]) and np.isnan(row["pvalue"])
    assert row["direction"] == "" and not row["significant"]
