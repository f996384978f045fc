"""Hand-checked tests of the sci-Plex screen metrics (Fig. 4d-f); expected values worked out inline."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from sklearn.metrics import silhouette_score

from mrvi_repro.metrics import (
    RANDOM,
    SCREEN_METRIC_COLUMNS,
    cmap_silhouette,
    intra_drug_percentile,
    permutation_interval,
    permutation_scores,
    pooled_distances,
    screen_claim_list,
    screen_metric_table,
    screen_summary,
    split_sample_names,
)
from mrvi_repro.metrics._screen import SAMPLE_DIMS


def sym(n: int, entries: dict[tuple[int, int], float]) -> np.ndarray:
    """Symmetric n x n matrix, zero diagonal, upper-triangle entries given."""
    d = np.zeros((n, n))
    for (i, j), v in entries.items():
        d[i, j] = d[j, i] = v
    return d


def as_dataarray(d: np.ndarray, names: list[str]) -> xr.DataArray:
    return xr.DataArray(
        d, dims=("sample_x", "sample_y"), coords={"sample_x": names, "sample_y": names}
    )


# --- intra-drug percentile ------------------------------------------------------------------

# 5 samples; the only same-product / different-dose pair is (A_10, A_100) = (1, 2).
NAMES5 = ["Vehicle_0", "A_10", "A_100", "B_10", "C_10"]
# The other 9 pairs get the distinct values 2..10; 10 pairs in all, percentile = (rank - 1) / 9.
OTHERS5 = {
    (0, 1): 2.0,
    (0, 2): 3.0,
    (0, 3): 4.0,
    (0, 4): 5.0,
    (1, 3): 6.0,
    (1, 4): 7.0,
    (2, 3): 8.0,
    (2, 4): 9.0,
    (3, 4): 10.0,
}


def five(pair: float) -> np.ndarray:
    return sym(5, {**OTHERS5, (1, 2): pair})


def pd5() -> tuple[pd.Series, pd.Series]:
    meta = split_sample_names(NAMES5)
    return meta["product"], meta["dose"]


@pytest.mark.parametrize(
    ("pair", "expected"),
    [
        (1.0, 0.0),  # smallest of the 10 distances: rank 1 -> 0 / 9
        (11.0, 1.0),  # largest: rank 10 -> 9 / 9
        (4.5, 3 / 9),  # above 2, 3, 4: rank 4 -> 3 / 9
        (4.0, 2.5 / 9),  # tied with (0, 3) = 4 at ranks 3 and 4: average 3.5 -> 2.5 / 9
    ],
)
def test_percentile_single_pair(pair: float, expected: float) -> None:
    product, dose = pd5()
    got = intra_drug_percentile(as_dataarray(five(pair), NAMES5), product, dose)
    assert got == pytest.approx(expected, abs=1e-12)


def test_percentile_numpy_arrays_and_dataarray_agree() -> None:
    product = ["Vehicle", "A", "A", "B", "C"]
    dose = [0, 10, 100, 10, 10]
    got = intra_drug_percentile(five(4.5), product, dose, samples=NAMES5)
    assert got == pytest.approx(3 / 9)


def test_percentile_aligns_series_by_name_and_reorders_sample_y() -> None:
    product, dose = pd5()
    # Series shuffled and with an extra sample not in the matrix: aligned by name.
    product = pd.concat([product, pd.Series({"Z_1": "Z"})]).iloc[::-1]
    dose = pd.concat([dose, pd.Series({"Z_1": 1.0})]).sample(frac=1.0, random_state=0)
    da = as_dataarray(five(4.5), NAMES5)
    da = da.isel(sample_y=[4, 2, 0, 3, 1])  # same matrix, columns in another order
    assert intra_drug_percentile(da, product, dose) == pytest.approx(3 / 9)
    frame = pd.DataFrame(five(4.5), index=NAMES5, columns=NAMES5)
    assert intra_drug_percentile(frame, product, dose) == pytest.approx(3 / 9)


def test_percentile_symmetrises() -> None:
    d = five(4.5)
    d[1, 2], d[2, 1] = 0.0, 9.0  # mean 4.5: same as the symmetric matrix -> 3 / 9
    product, dose = pd5()
    assert intra_drug_percentile(d, product, dose, samples=NAMES5) == pytest.approx(3 / 9)


def test_percentile_exclude_changes_the_ranking_universe() -> None:
    product, dose = pd5()
    d = as_dataarray(five(4.5), NAMES5)
    # Vehicle kept (default): 3 / 9. Vehicle dropped: 6 pairs left, 4.5 < 6, 7, 8, 9, 10 -> 0.
    assert intra_drug_percentile(d, product, dose) == pytest.approx(3 / 9)
    assert intra_drug_percentile(d, product, dose, exclude=["Vehicle_0"]) == pytest.approx(0.0)
    # Dropping B_10 too: 3 pairs left (1,2)=4.5, (1,4)=7, (2,4)=9 -> rank 1 -> 0.
    got = intra_drug_percentile(d, product, dose, exclude=("Vehicle_0", "B_10"))
    assert got == pytest.approx(0.0)
    # Dropping only C_10: 6 pairs (0,1)=2 (0,2)=3 (0,3)=4 (1,2)=4.5 (1,3)=6 (2,3)=8 -> rank 4 -> 3/5.
    assert intra_drug_percentile(d, product, dose, exclude=["C_10"]) == pytest.approx(3 / 5)


# Top-two-dose variant: 5 samples, pairs (1,2), (1,3), (2,3) are intra-drug.
NAMES_TOP = ["Vehicle_0", "A_10", "A_1000", "A_10000", "B_1000"]
TOP = sym(
    5,
    {
        (2, 3): 1.0,  # rank 1 -> 0
        (0, 1): 2.0,
        (0, 2): 3.0,
        (0, 3): 4.0,
        (1, 2): 5.0,  # rank 5 -> 4 / 9
        (0, 4): 6.0,
        (1, 4): 7.0,
        (2, 4): 8.0,
        (3, 4): 9.0,
        (1, 3): 10.0,  # rank 10 -> 1
    },
)


def test_percentile_averages_pairs_and_top_two_dose_variant() -> None:
    meta = split_sample_names(NAMES_TOP)
    da = as_dataarray(TOP, NAMES_TOP)
    p, q = meta["product"], meta["dose"]
    assert intra_drug_percentile(da, p, q) == pytest.approx((0 + 4 / 9 + 1) / 3)
    # Only (A_1000, A_10000); the ranking still uses all 10 pairs. Float doses match int values.
    assert intra_drug_percentile(da, p, q, doses=(1000, 10000)) == pytest.approx(0.0)
    assert intra_drug_percentile(da, p, q, doses=[10, 1000]) == pytest.approx(4 / 9)
    assert intra_drug_percentile(da, p, q, doses=[10, 10000]) == pytest.approx(1.0)


def test_percentile_same_dose_replicates_are_not_pairs() -> None:
    product = ["Vehicle", "A", "A", "B", "C"]
    with pytest.raises(ValueError, match="no pair"):
        intra_drug_percentile(five(1.0), product, [0, 10, 10, 10, 10], samples=NAMES5)


def test_percentile_errors() -> None:
    product, dose = pd5()
    da = as_dataarray(five(1.0), NAMES5)
    with pytest.raises(ValueError, match="no pair .* among doses"):
        intra_drug_percentile(da, product, dose, doses=(1000, 10000))
    with pytest.raises(ValueError, match="exclude names samples not in the matrix"):
        intra_drug_percentile(da, product, dose, exclude=["Vehicle_1"])
    with pytest.raises(ValueError, match="at least 3 samples"):
        intra_drug_percentile(da, product, dose, exclude=["Vehicle_0", "B_10", "C_10"])
    with pytest.raises(ValueError, match="lacks samples"):
        intra_drug_percentile(da, product.drop("B_10"), dose)
    with pytest.raises(ValueError, match="one entry per sample"):
        intra_drug_percentile(da, ["V", "A", "A", "B"], dose)
    with pytest.raises(ValueError, match="NaN"):
        intra_drug_percentile(da, product, dose.where(dose > 0))
    with pytest.raises(ValueError, match="duplicated samples"):
        intra_drug_percentile(da, pd.concat([product, product]), dose)


# --- input checks (shared helper) -----------------------------------------------------------


def test_matrix_input_errors() -> None:
    product, dose = pd5()
    d = five(1.0)
    with pytest.raises(ValueError, match="needs its sample names"):
        intra_drug_percentile(d, product, dose)
    with pytest.raises(ValueError, match="only with a numpy matrix"):
        intra_drug_percentile(as_dataarray(d, NAMES5), product, dose, samples=NAMES5)
    with pytest.raises(ValueError, match="square"):
        intra_drug_percentile(d[:, :4], product, dose, samples=NAMES5)
    bad = d.copy()
    bad[0, 1] = np.nan
    with pytest.raises(ValueError, match="finite"):
        intra_drug_percentile(bad, product, dose, samples=NAMES5)
    bad[0, 1] = np.inf
    with pytest.raises(ValueError, match="finite"):
        cmap_silhouette(bad, {"A_10": "x"}, samples=NAMES5)
    with pytest.raises(ValueError, match="4 sample names for a 5 x 5"):
        intra_drug_percentile(d, product, dose, samples=NAMES5[:4])
    with pytest.raises(ValueError, match="unique"):
        intra_drug_percentile(d, product, dose, samples=[*NAMES5[:4], "A_10"])
    with pytest.raises(ValueError, match="at least 2 samples"):
        permutation_scores(np.zeros((1, 1)), float, samples=["a"])
    with pytest.raises(ValueError, match="2-D"):
        intra_drug_percentile(xr.DataArray(np.zeros(5), dims="sample_x"), product, dose)
    with pytest.raises(ValueError, match="coords"):
        intra_drug_percentile(xr.DataArray(d, dims=("sample_x", "sample_y")), product, dose)
    other = as_dataarray(d, NAMES5).assign_coords(sample_y=[*NAMES5[:4], "D_10"])
    with pytest.raises(ValueError, match="same samples"):
        intra_drug_percentile(other, product, dose)


def test_split_sample_names() -> None:
    meta = split_sample_names(["Vehicle_0", "Dacinostat_10000", "Drug_with_parts_100"])
    assert meta.index.tolist() == ["Vehicle_0", "Dacinostat_10000", "Drug_with_parts_100"]
    assert meta["product"].tolist() == ["Vehicle", "Dacinostat", "Drug_with_parts"]
    assert meta["dose"].tolist() == [0.0, 10000.0, 100.0]
    for bad in ("Vehicle", "A_x", "_10"):
        with pytest.raises(ValueError, match="numeric dose"):
            split_sample_names([bad])


# --- CMap silhouette ------------------------------------------------------------------------

SIL_NAMES = ["a", "b", "c", "d", "e", "f"]


def two_clusters() -> np.ndarray:
    """{a, b, c} and {d, e}: within 1, between 3; f at 0.1 from everything."""
    d = np.full((6, 6), 3.0)
    d[:3, :3] = 1.0
    d[3:5, 3:5] = 1.0
    d[5, :] = d[:, 5] = 0.1
    np.fill_diagonal(d, 0.0)
    return d


LABELS = {"a": "X", "b": "X", "c": "X", "d": "Y", "e": "Y"}


def test_silhouette_separated_clusters() -> None:
    # Every labelled sample: a = 1, b = 3, s = 1 - 1/3 = 2/3; rescaled (2/3 + 1) / 2 = 5/6.
    # f is unlabelled, so ignored (with it labelled, the value would change).
    da = as_dataarray(two_clusters(), SIL_NAMES)
    assert cmap_silhouette(da, LABELS) == pytest.approx(5 / 6)
    assert cmap_silhouette(da, pd.Series({**LABELS, "f": np.nan})) == pytest.approx(5 / 6)
    assert cmap_silhouette(da, {**LABELS, "f": None}) == pytest.approx(5 / 6)
    assert cmap_silhouette(da, {**LABELS, "f": "X"}) != pytest.approx(5 / 6)
    assert cmap_silhouette(two_clusters(), LABELS, samples=SIL_NAMES) == pytest.approx(5 / 6)


def test_silhouette_symmetrises_and_zeroes_diagonal() -> None:
    d = two_clusters()
    rng = np.random.default_rng(1)
    skew = rng.uniform(-0.5, 0.5, size=d.shape)
    skew = skew - skew.T  # antisymmetric: (D + D.T) / 2 is unchanged
    d = d + skew
    np.fill_diagonal(d, 7.0)
    assert cmap_silhouette(d, LABELS, samples=SIL_NAMES) == pytest.approx(5 / 6)


def test_silhouette_uneven_by_hand() -> None:
    # {a, b} and the singleton {c}; d(a,b) = 1, d(a,c) = 2, d(b,c) = 4.
    # s_a = (2 - 1) / 2 = 1/2, s_b = (4 - 1) / 4 = 3/4, s_c = 0 (singleton); mean 5/12.
    # Rescaled: (5/12 + 1) / 2 = 17/24.
    d = sym(3, {(0, 1): 1.0, (0, 2): 2.0, (1, 2): 4.0})
    got = cmap_silhouette(d, {"a": 0, "b": 0, "c": 1}, samples=["a", "b", "c"])
    assert got == pytest.approx(17 / 24)


def test_silhouette_matches_sklearn_rescaled_on_labelled_subset() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 3))
    d = np.linalg.norm(x[:, None] - x[None], axis=-1)
    names = [f"s{i}" for i in range(12)]
    labels = {f"s{i}": i % 3 for i in range(9)}  # s9..s11 unlabelled
    s = silhouette_score(d[:9, :9], [i % 3 for i in range(9)], metric="precomputed")
    assert -1 < s < 1 and not math.isclose(s, 0.0)
    assert cmap_silhouette(d, labels, samples=names) == pytest.approx((s + 1) / 2)


def test_silhouette_errors() -> None:
    da = as_dataarray(two_clusters(), SIL_NAMES)
    with pytest.raises(ValueError, match="at least 2 clusters, got 1"):
        cmap_silhouette(da, {"a": "X", "b": "X", "c": "X"})
    with pytest.raises(ValueError, match="at least 3 labelled samples, got 2"):
        cmap_silhouette(da, {"a": "X", "d": "Y", "f": np.nan})
    with pytest.raises(ValueError, match=r"fewer clusters \(3\) than labelled samples \(3\)"):
        cmap_silhouette(da, {"a": "X", "b": "Y", "c": "Z"})
    with pytest.raises(ValueError, match="not in the matrix"):
        cmap_silhouette(da, {**LABELS, "g": "Y"})
    with pytest.raises(ValueError, match="duplicated"):
        cmap_silhouette(da, pd.Series(["X", "X", "Y", "Y"], index=["a", "a", "d", "e"]))
    neg = two_clusters()
    neg[0, 1] = neg[1, 0] = -1.0
    with pytest.raises(ValueError, match="non-negative"):
        cmap_silhouette(neg, LABELS, samples=SIL_NAMES)


# --- permutation baseline -------------------------------------------------------------------


def screen(n_products: int = 8, planted: bool = True, seed: int = 0) -> xr.DataArray:
    """Vehicle + n_products x 3 doses.

    Planted: same product at 1-2, same class (product number parity, the mock CMap cluster) at
    3-4, others at 5-6. Otherwise uniform on 0-5.
    """
    names = ["Vehicle_0"] + [f"P{k}_{x}" for k in range(n_products) for x in (100, 1000, 10000)]
    meta = split_sample_names(names)
    rng = np.random.default_rng(seed)
    n = len(names)
    noise = rng.uniform(0, 1, size=(n, n))
    if planted:
        prod = meta["product"].to_numpy()
        klass = np.array([-1] + [k % 2 for k in range(n_products) for _ in range(3)])
        same = prod[:, None] == prod[None, :]
        same_class = klass[:, None] == klass[None, :]
        d = np.where(same, 1.0, np.where(same_class, 3.0, 5.0)) + noise
    else:
        d = 5.0 * noise
    d = (d + d.T) / 2
    np.fill_diagonal(d, 0.0)
    return as_dataarray(d, names)


def test_permutation_contract_and_determinism() -> None:
    da = screen()
    names = [str(s) for s in da["sample_x"].values]
    seen = []

    def metric(m: xr.DataArray) -> float:
        assert m.dims == ("sample_x", "sample_y")
        assert m["sample_x"].values.tolist() == names == m["sample_y"].values.tolist()
        seen.append(m.values.copy())
        return float(m.values[0, 1])

    got = permutation_scores(da, metric, n_permutations=5, seed=3)
    rng = np.random.default_rng(3)
    d = da.values
    for k in range(5):
        p = rng.permutation(len(names))
        np.testing.assert_array_equal(seen[k], d[np.ix_(p, p)])
        assert got[k] == d[p[0], p[1]]
    assert got.shape == (5,) and got.dtype == np.float64
    again = permutation_scores(da, metric, n_permutations=5, seed=3)
    np.testing.assert_array_equal(got, again)
    gen = permutation_scores(da, metric, n_permutations=5, seed=np.random.default_rng(3))
    np.testing.assert_array_equal(got, gen)
    other = permutation_scores(da, metric, n_permutations=5, seed=4)
    assert not np.array_equal(got, other)
    numpy_input = permutation_scores(d, metric, samples=names, n_permutations=5, seed=3)
    np.testing.assert_array_equal(got, numpy_input)


def _percentile_of(da: xr.DataArray):
    meta = split_sample_names(da["sample_x"].values)
    return lambda m: intra_drug_percentile(m, meta["product"], meta["dose"])


def test_planted_structure_is_outside_the_permutation_interval() -> None:
    da = screen(planted=True)
    metric = _percentile_of(da)
    observed = metric(da)
    low, high = permutation_interval(permutation_scores(da, metric, seed=0))
    # Same-product pairs are the 24 smallest of the 300 distances: percentile <= 23 / 299.
    assert observed <= 23 / 299
    assert observed < low < high
    # Silhouette of the top-dose samples by class (product parity): planted -> higher.
    top = [s for s in da["sample_x"].values.tolist() if s.endswith("_10000")]
    labels = {s: int(s[1]) % 2 for s in top}
    sil = lambda m: cmap_silhouette(m, labels)
    values = permutation_scores(da, sil, seed=0)
    assert values.shape == (100,)
    assert sil(da) > permutation_interval(values)[1]


def test_random_matrix_is_inside_the_permutation_interval() -> None:
    da = screen(planted=False, seed=5)
    metric = _percentile_of(da)
    low, high = permutation_interval(permutation_scores(da, metric, seed=0))
    assert low < metric(da) < high


def test_permutation_interval_known_quantiles() -> None:
    # 0, 1, ..., 100: linear quantiles at 2.5 % and 97.5 % are 2.5 and 97.5.
    assert permutation_interval(np.arange(101.0)) == pytest.approx((2.5, 97.5))
    assert permutation_interval(list(range(101)), level=0.5) == pytest.approx((25.0, 75.0))
    assert permutation_interval([3.0]) == (3.0, 3.0)


def test_permutation_errors() -> None:
    da = screen()
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="n_permutations"):
            permutation_scores(da, float, n_permutations=bad)
    for level in (0, 1, 1.5, -0.1, True):
        with pytest.raises(ValueError, match="level"):
            permutation_interval([1.0, 2.0], level=level)
    with pytest.raises(ValueError, match="no values"):
        permutation_interval([])
    with pytest.raises(ValueError, match="finite"):
        permutation_interval([1.0, np.nan])


# --- the screen's metric table, summary and claims (Fig. 4d-f) ---------------------------------


def _screen_matrix(noise: float, seed: int = 0) -> tuple[xr.DataArray, pd.Series, pd.Series]:
    """Four drugs x three doses + a vehicle; a drug's doses close together unless noise is large."""
    rng = np.random.default_rng(seed)
    names, points, product, dose = ["Vehicle_0"], [np.zeros(3)], ["Vehicle"], [0.0]
    for d, centre in enumerate(np.eye(3).tolist() + [[1.0, 1.0, 0.0]]):
        for x in (100.0, 1000.0, 10000.0):
            names.append(f"D{d}_{int(x)}")
            points.append(np.asarray(centre) * 5 + rng.normal(0, noise, 3))
            product.append(f"D{d}")
            dose.append(x)
    p = np.asarray(points)
    d = np.linalg.norm(p[:, None] - p[None], axis=-1)
    da = xr.DataArray(d, dims=SAMPLE_DIMS, coords={"sample_x": names, "sample_y": names})
    return da, pd.Series(product, index=names), pd.Series(dose, index=names)


def test_screen_metric_table_scores_every_method_and_the_permutations():
    good, product, dose = _screen_matrix(0.3)
    bad, _, _ = _screen_matrix(20.0)
    labels = pd.Series({"D0_10000": "1", "D3_10000": "1", "D1_10000": "2", "D2_10000": "2"})
    grouped = good.expand_dims(group=["1"]).assign_coords(n_cells=("group", [50]))
    table = screen_metric_table(
        {"mrvi": grouped, "noisy": bad}, product, dose, cmap_labels=labels, n_permutations=50
    )
    assert list(table.columns) == list(SCREEN_METRIC_COLUMNS)
    t = table.set_index(["method", "metric"])
    # the 12 same-drug pairs are the 12 smallest of 78: mean percentile (0 + ... + 11) / 12 / 77
    assert np.isclose(t.loc[("mrvi", "intra_drug_percentile"), "value"], 5.5 / 77)
    assert t.loc[("mrvi", "intra_drug_percentile"), "n_samples"] == 12
    low = t.loc[(RANDOM, "intra_drug_percentile"), "lower"]
    assert t.loc[("mrvi", "intra_drug_percentile"), "value"] < low
    assert t.loc[("noisy", "intra_drug_percentile"), "value"] > 0.2
    assert t.loc[("mrvi", "cmap_silhouette"), "n_samples"] == 4
    assert np.isnan(t.loc[("noisy", "cmap_silhouette"), "lower"])  # only MrVI is permuted
    # no CMap labels: no silhouette at all
    plain = screen_metric_table({"mrvi": good}, product, dose, n_permutations=5)
    assert set(plain["metric"]) == {"intra_drug_percentile"}
    with pytest.raises(ValueError, match="permuted 'mrvi' is not among"):
        screen_metric_table({"other": good}, product, dose)


def test_pooled_distances_weights_the_groups_by_their_cells():
    a = xr.DataArray(
        np.ones((2, 2)), dims=SAMPLE_DIMS, coords={"sample_x": ["s", "t"], "sample_y": ["s", "t"]}
    )
    grouped = xr.concat([a, 4 * a], dim="group").assign_coords(
        group=["x", "y"], n_cells=("group", [3, 1])
    )
    assert np.allclose(pooled_distances(grouped).values, (3 * 1 + 1 * 4) / 4)
    assert pooled_distances(a) is a
    # a pair missing (NaN) in a group is the mean over the groups that have it, NaN if none does
    b = grouped.copy()
    b[1, 0, 1] = np.nan
    b[:, 1, 0] = np.nan
    pooled = pooled_distances(b).values
    assert pooled[0, 1] == 1.0 and np.isnan(pooled[1, 0]) and np.isclose(pooled[0, 0], 7 / 4)


def test_screen_summary_and_claims_on_hand_made_clusters():
    from mrvi_repro.metrics import claims_with_missing
    from mrvi_repro.settings.figures import ScreenClaimsSpec

    clusters = pd.DataFrame(
        {
            "sample": ["A_1", "A_2", "B_1", "B_2", "C_1", "C_2", "V_0"],
            "retained": [True, True, True, True, True, False, False],
            "cluster": ["1", "1", "2", "2", "1", "", ""],
        }
    )
    samples = pd.DataFrame(
        {
            "product": ["A", "A", "B", "B", "C", "C", "V"],
            "target": ["H", "H", "K", "K", "H", "H", "-"],
        },
        index=clusters["sample"],
    )
    enrichment = pd.DataFrame(
        {
            "cluster": ["1", "1", "2"],
            "direction": ["down", "up", "up"],
            "gene_set": ["METAB", "METAB", "KRAS"],
            "fdr": [1e-4, 0.5, 0.01],
        }
    )
    metrics = pd.DataFrame(
        {
            "method": ["mrvi", RANDOM, "composition_pca"],
            "metric": ["intra_drug_percentile"] * 3,
            "value": [0.1, 0.5, 0.3],
            "lower": [np.nan, 0.4, np.nan],
            "upper": [np.nan, 0.6, np.nan],
            "n_samples": [6, 6, 6],
        }
    )
    spec = ScreenClaimsSpec.parse(
        {
            "one_cluster": [{"product": ["A"]}, {"product": ["C"]}, {"target": ["H", "K"]}],
            "mostly": [{"target": ["H"]}],
            "enriched": [
                {"samples": {"target": ["H"]}, "gene_sets": ["METAB"], "direction": "down"},
                {"samples": {"target": ["H"]}, "gene_sets": ["METAB"], "direction": "up"},
                {"samples": {"product": ["B"]}, "gene_sets": ["KRAS"]},
            ],
        },
        "claims",
    )
    summary = screen_summary(metrics, clusters, samples, enrichment, spec)
    values = summary.set_index(["method", "metric"])["value"]
    assert values[("random_low", "intra_drug_percentile")] == 0.4
    assert values[("mrvi", "one_cluster_0")] == 1.0  # A's two retained samples in cluster 1
    assert np.isnan(values[("mrvi", "one_cluster_1")])  # C has one retained sample
    assert values[("mrvi", "one_cluster_2")] == 0.6  # 3 of 5 in cluster 1
    assert values[("mrvi", "mostly_0")] == 1.0  # H's samples all in cluster 1, 3/3 H
    assert values[("mrvi", "enriched_0")] == 1e-4 and values[("mrvi", "enriched_1")] == 0.5
    assert values[("mrvi", "enriched_2")] == 0.01
    claims = claims_with_missing(summary, screen_claim_list(spec, metrics)).set_index("claim")
    assert claims.loc["intra_drug_percentile_mrvi_vs_composition_pca", "holds"]
    assert claims.loc["intra_drug_percentile_mrvi_vs_random", "holds"]
    assert "cmap_silhouette_mrvi_vs_random" not in claims.index  # no CMap metric scored
    assert claims.loc["one_cluster_0", "holds"] and not claims.loc["one_cluster_2", "holds"]
    assert claims.loc["one_cluster_1", "ours"] == "not computed"
    assert claims.loc["enriched_0", "holds"] and not claims.loc["enriched_1", "holds"]
    assert claims.loc["enriched_2", "holds"] and claims.loc["mostly_0", "holds"]
    # a numeric covariate selects by value (10000 == 10000.0); a set never tested (not in the
    # GMT, or too small) is not computed, not a failure
    samples["dose"] = [1000.0, 10000.0, 1000.0, 10000.0, 1000.0, 10000.0, 0.0]
    spec = ScreenClaimsSpec.parse(
        {
            "one_cluster": [{"dose": [10000]}],
            "enriched": [{"samples": {"target": ["H"]}, "gene_sets": ["TYPO"]}],
        },
        "claims",
    )
    values = screen_summary(metrics, clusters, samples, enrichment, spec).set_index(
        ["method", "metric"]
    )["value"]
    assert values[("mrvi", "one_cluster_0")] == 0.5  # A_2 in 1, B_2 in 2 (C_2 not retained)
    assert np.isnan(values[("mrvi", "enriched_0")])
