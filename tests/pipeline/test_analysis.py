"""The functions the analysis rules call, on a parsed dataset entry."""

import numpy as np
import pytest
import xarray as xr

import mrvi_repro.pipeline.analysis as wf
from mrvi_repro.pipeline import DatasetSpec
from mrvi_repro.pipeline.analysis import mrvi_da, mrvi_de, mrvi_distances, mrvi_stratification

ENTRY = {
    "source": {"kind": "simulate"},
    "sample_key": "sample_assignment",
    "labels_key": "leiden",
    "sample_covariates": ["covariate_1_top", "covariate_2_strong"],
    "analysis": {
        "da": {"estimators": ["mixture", "per_dimension"]},
        "de": {"covariates": ["covariate_1_top"], "mc_samples": 2},
        "stratify": {"n_pcs": 5, "resolution": 0.1, "n_sample_groups": 2},
    },
}


@pytest.fixture(scope="module")
def cells(tiny_semi):
    return tiny_semi[np.random.default_rng(2).choice(tiny_semi.n_obs, 500, replace=False)].copy()


def test_rule_functions_follow_the_entry_and_write_netcdf(tmp_path, cells, tiny_semi_mrvi):
    spec = DatasetSpec.from_dict("tiny", ENTRY)
    de = mrvi_de(tiny_semi_mrvi, cells, spec)
    assert list(de["covariate"].values) == ["covariate_1_top_T2"]
    assert de.attrs["mc_samples"] == 2 and de.attrs["covariates"] == "covariate_1_top"
    groups = sorted(cells.obs["leiden"].astype(str).unique())
    assert sorted(de["group"].values) == groups and de["lfc"].dims == ("covariate", "group", "gene")
    strat = mrvi_stratification(tiny_semi_mrvi, cells, spec)
    assert strat.sizes["pc"] == 5 and set(np.unique(strat["sample_group"])) == {1, 2}
    dist = mrvi_distances(tiny_semi_mrvi, cells, spec)
    assert sorted(dist["group"].values) == groups
    da = mrvi_da(tiny_semi_mrvi, cells, spec)
    assert sorted(da.data_vars) == [
        f"log_ratio_{cov}{suffix}"
        for cov in ("covariate_1_top", "covariate_2_strong")
        for suffix in ("", "_per_dimension")
    ]
    assert da.attrs["estimators"] == "mixture,per_dimension"
    for name, obj in (("de", de), ("strat", strat), ("dist", dist), ("da", da)):
        obj.to_netcdf(tmp_path / f"{name}.nc", engine="scipy")
    again = xr.open_dataset(tmp_path / "de.nc")
    np.testing.assert_allclose(again["lfc"].values, de["lfc"].values)


def test_without_labels_lfcs_are_one_group_and_without_covariates_de_is_refused(
    cells, tiny_semi_mrvi
):
    entry = {k: v for k, v in ENTRY.items() if k != "labels_key"}
    de = mrvi_de(tiny_semi_mrvi, cells, DatasetSpec.from_dict("tiny", entry))
    assert list(de["group"].values) == ["all"] and int(de["n_cells"][0]) == cells.n_obs
    assert "_all" not in cells.obs.columns  # the caller's data is left alone
    bare = {**entry, "sample_covariates": [], "analysis": {}}
    with pytest.raises(ValueError, match="DE needs sample_covariates"):
        mrvi_de(tiny_semi_mrvi, cells, DatasetSpec.from_dict("tiny", bare))


def test_workflow_da_subsamples_references_only_for_large_data(
    tiny_semi, tiny_semi_mrvi, monkeypatch
):
    entry = {
        "source": {"kind": "simulate"},
        "sample_key": "sample_assignment",
        "sample_covariates": ["covariate_2_strong"],
    }
    spec = DatasetSpec.from_dict("tiny", entry)
    full = wf.mrvi_da(tiny_semi_mrvi, tiny_semi, spec)
    assert full.attrs["max_cells_per_sample"] == -1
    monkeypatch.setattr(wf, "DA_REFERENCE_CELLS", 2000)
    capped = wf.mrvi_da(tiny_semi_mrvi, tiny_semi, spec)
    n_samples = len(tiny_semi_mrvi.registry.samples)
    assert capped.attrs["max_cells_per_sample"] == -(-2000 // n_samples)
    ratio = capped["log_ratio_covariate_2_strong"].values
    assert np.isfinite(ratio).all()
    assert np.corrcoef(ratio, full["log_ratio_covariate_2_strong"].values)[0, 1] > 0.9
