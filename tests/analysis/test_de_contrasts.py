"""DE contrasts, sample subsets, the chunked admissibility filter and LFCs streamed to zarr."""

import numpy as np
import pytest
import xarray as xr

from mrvi_repro.analysis import (
    Contrast,
    admissibility,
    admissibility_reference,
    contrast_matrices,
    differential_expression,
)


@pytest.fixture(scope="module")
def cells(tiny_semi):
    """200 cells of subset A (planted DE between the covariate-1 groups) and 200 of Other."""
    rng = np.random.default_rng(1)
    sub = tiny_semi.obs["subset"].astype(str).to_numpy()
    rows = np.concatenate(
        [rng.choice(np.flatnonzero(sub == s), 200, replace=False) for s in ("A", "Other")]
    )
    out = tiny_semi[np.sort(rows)].copy()
    # a numeric sample covariate: the covariate-1 group's index (G1 -> 1, ...)
    out.obs["group_index"] = out.obs["covariate_1"].astype(str).str[1:].astype(float)
    return out


@pytest.fixture(scope="module")
def by_columns(cells, tiny_semi_mrvi):
    return differential_expression(
        tiny_semi_mrvi, cells, covariates=["covariate_1"], mc_samples=4, lfc=True
    )


CONTRASTS = [
    Contrast("covariate_1", "G2", "G1"),
    Contrast("covariate_1", "G3", "G2"),
    Contrast("covariate_1", "G5", "G1", name="five"),
]


@pytest.fixture(scope="module")
def by_contrasts(cells, tiny_semi_mrvi):
    return differential_expression(
        tiny_semi_mrvi,
        cells,
        covariates=["covariate_1"],
        contrasts=CONTRASTS,
        mc_samples=4,
        lfc=True,
    )


def test_a_contrast_is_the_difference_of_its_levels_effects(by_columns, by_contrasts):
    assert list(by_contrasts["covariate"].values) == [
        "covariate_1: G2 vs G1",
        "covariate_1: G3 vs G2",
        "five",
    ]
    col = by_columns.sel
    con = by_contrasts.sel
    # against the reference level the contrast is the design column itself
    for name, column in (("covariate_1: G2 vs G1", "covariate_1_G2"), ("five", "covariate_1_G5")):
        np.testing.assert_allclose(
            con(covariate=name)["beta"], col(covariate=column)["beta"], rtol=1e-4, atol=1e-5
        )
        np.testing.assert_allclose(
            con(covariate=name)["effect_size"],
            col(covariate=column)["effect_size"],
            rtol=1e-3,
            atol=1e-3,
        )
        np.testing.assert_allclose(
            con(covariate=name)["lfc"], col(covariate=column)["lfc"], rtol=1e-4, atol=1e-5
        )
    # G3 vs G2: the difference of the two levels' effects, in z and (one batch) in log2 space
    g3, g2 = (col(covariate=f"covariate_1_G{i}") for i in (3, 2))
    mid = con(covariate="covariate_1: G3 vs G2")
    np.testing.assert_allclose(mid["beta"], g3["beta"] - g2["beta"], rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(mid["lfc"], g3["lfc"] - g2["lfc"], rtol=1e-3, atol=1e-4)


def test_contrast_effects_live_where_they_were_planted(cells, by_contrasts):
    # G5 vs G1 crosses the root of the planted subject tree: the largest planted difference,
    # in subset A only (effect sizes are standardised per cell, so compare latent and log2 sizes)
    subset = cells.obs["subset"].astype(str).to_numpy()
    far = by_contrasts.sel(covariate="five")
    size = np.linalg.norm(far["beta"].values, axis=-1)
    lfc = np.abs(far["lfc"].values).mean(1)
    assert np.median(size[subset == "A"]) > 3 * np.median(size[subset == "Other"])
    assert np.median(lfc[subset == "A"]) > 3 * np.median(lfc[subset == "Other"])


def test_numeric_slope_is_per_unit(cells, tiny_semi_mrvi):
    out = differential_expression(
        tiny_semi_mrvi,
        cells,
        covariates=["group_index"],
        contrasts=[Contrast("group_index")],
        mc_samples=4,
    )
    full = differential_expression(tiny_semi_mrvi, cells, covariates=["group_index"], mc_samples=4)
    span = np.ptp(cells.obs["group_index"].to_numpy())
    assert out["covariate"].item() == "group_index (per unit)"
    np.testing.assert_allclose(
        out["beta"].values[:, 0], full["beta"].values[:, 0] / span, rtol=1e-3, atol=1e-5
    )
    # the Wald statistic does not depend on the unit
    np.testing.assert_allclose(
        out["effect_size"].values, full["effect_size"].values, rtol=1e-3, atol=1e-3
    )


def test_sample_subset_fits_on_those_samples_only(cells, tiny_semi_mrvi):
    # G1 and G5 sit on the two sides of the planted tree's root
    groups = cells.obs.groupby("sample_assignment", observed=True)["covariate_1"].first()
    used = sorted(groups.index[groups.astype(str).isin(["G1", "G5"])])
    out = differential_expression(
        tiny_semi_mrvi, cells, covariates=["covariate_1"], samples=used, mc_samples=4
    )
    assert list(out["covariate"].values) == ["covariate_1_G5"]  # only the levels of the subset
    assert (out["n_admissible"].values == len(used)).all()
    assert out.attrs["n_samples_used"] == len(used) < len(tiny_semi_mrvi.registry.samples)
    subset = cells.obs["subset"].astype(str).to_numpy()
    size = np.linalg.norm(out["beta"].values[:, 0], axis=-1)
    assert np.median(size[subset == "A"]) > 3 * np.median(size[subset == "Other"])
    with pytest.raises(ValueError, match="not in the model"):
        differential_expression(
            tiny_semi_mrvi, cells, covariates=["covariate_1"], samples=["nobody", used[0]]
        )


def test_chunked_admissibility_equals_the_full_mask(cells, tiny_semi_mrvi):
    model = tiny_semi_mrvi
    full = admissibility(model, cells, quantile=0.3, max_cells_per_sample=20, seed=0)
    rule = admissibility_reference(model, cells, quantile=0.3, max_cells_per_sample=20, seed=0)
    assert rule.threshold == full.attrs["threshold"]
    mask = full["is_admissible"].values
    assert 0.05 < mask.mean() < 0.95  # the rule drops some samples for some cells
    kwargs = {"covariates": ["covariate_1_top"], "mc_samples": 3}
    a = differential_expression(model, cells, admissible=mask, **kwargs)
    b = differential_expression(model, cells, admissible=rule, **kwargs)
    np.testing.assert_array_equal(a["n_admissible"].values, mask.sum(1))
    np.testing.assert_array_equal(a["n_admissible"].values, b["n_admissible"].values)
    np.testing.assert_allclose(a["effect_size"].values, b["effect_size"].values, rtol=1e-6)
    # a cell whose admissible samples hold one level only has no estimable contrast: NaN, not 0
    top = cells.obs.groupby("sample_assignment", observed=True)["covariate_1_top"].first()
    level = top.reindex(list(model.registry.samples)).astype(str).to_numpy()
    one_sided = np.array([len(set(level[row])) < 2 for row in mask])
    assert one_sided.any()
    assert np.isnan(a["effect_size"].values[one_sided]).all()
    assert np.isnan(a["padj"].values[one_sided]).all()
    assert np.isfinite(a["padj"].values[~one_sided]).all()


def test_lfcs_streamed_to_zarr_equal_those_in_memory(
    tmp_path, cells, tiny_semi_mrvi, by_contrasts, monkeypatch
):
    from mrvi_repro.analysis import _de

    monkeypatch.setattr(_de, "CHUNK_BYTES", 2 * 2**20)  # several chunks of cells
    store = tmp_path / "lfc.zarr"
    out = differential_expression(
        tiny_semi_mrvi,
        cells,
        covariates=["covariate_1"],
        contrasts=CONTRASTS,
        mc_samples=4,
        lfc=True,
        lfc_store=store,
        lfc_groupby="subset",
    )
    assert out.attrs["lfc_store"] == str(store)
    on_disk = xr.open_dataset(store, engine="zarr", chunks=None, consolidated=False)["lfc"]
    assert on_disk.dims == ("covariate", "cell", "gene")
    assert on_disk.encoding["chunks"][1] < cells.n_obs  # written in chunks of cells
    # other chunk sizes than the fixture's: float32 rounding differs slightly
    np.testing.assert_allclose(on_disk.values, by_contrasts["lfc"].values, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(on_disk["cell"].values, cells.obs_names.to_numpy())
    # the group means beside the store
    a = cells.obs["subset"].astype(str).to_numpy() == "A"
    np.testing.assert_allclose(
        out["lfc"].sel(group="A").values, on_disk.values[:, a].mean(1), rtol=1e-4, atol=1e-6
    )


def test_bad_contrasts(cells, tiny_semi_mrvi):
    samples = tiny_semi_mrvi.registry.samples
    args = (cells, "sample_assignment", samples)
    with pytest.raises(ValueError, match="not among the fitted covariates"):
        contrast_matrices(*args, ["covariate_1"], [Contrast("covariate_2", "B", "A")])
    with pytest.raises(ValueError, match="no level 'G9'"):
        contrast_matrices(*args, ["covariate_1"], [Contrast("covariate_1", "G9")])
    with pytest.raises(ValueError, match="name level_a"):
        contrast_matrices(*args, ["covariate_1"], [Contrast("covariate_1")])
    with pytest.raises(ValueError, match="give no levels"):
        contrast_matrices(*args, ["group_index"], [Contrast("group_index", "1", "2")])
    with pytest.raises(ValueError, match="with itself"):
        contrast_matrices(*args, ["covariate_1"], [Contrast("covariate_1", "G1", "G1")])
    with pytest.raises(ValueError, match="lfc_store needs lfc"):
        differential_expression(
            tiny_semi_mrvi, cells, covariates=["covariate_1"], lfc_store="x.zarr"
        )


def test_admissibility_threshold_from_a_subsample_of_the_reference_cells(cells, tiny_semi_mrvi):
    """The threshold's quantile over a seeded subsample of the reference cells estimates the one
    over all of them; with at least as many allowed as there are, it is the same number."""
    model = tiny_semi_mrvi
    full = admissibility_reference(model, cells, quantile=0.3, max_cells_per_sample=None)
    same = admissibility_reference(
        model, cells, quantile=0.3, max_cells_per_sample=None, threshold_cells=cells.n_obs
    )
    assert same.threshold == full.threshold
    scores = full.log_ratio(full.mean)
    iqr = np.subtract(*np.percentile(scores[np.isfinite(scores)], [75, 25]))
    for seed in (0, 1):
        part = admissibility_reference(
            model, cells, quantile=0.3, max_cells_per_sample=None, threshold_cells=300, seed=seed
        )
        assert part.threshold != full.threshold
        assert abs(part.threshold - full.threshold) < 0.1 * iqr
