"""The functions behind the workflow's baseline rules, on the tiny semi-synthetic dataset.

The baselines themselves are tested in test_composition.py, test_deseq2.py, test_milo.py and
test_milode.py; here: that the entry's settings reach them and that the rules' outputs have their
layout.
"""

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from mrvi_repro.baselines import pseudobulk_deseq2
from mrvi_repro.model import SCVI, write_model
from mrvi_repro.pipeline import DatasetSpec
from mrvi_repro.pipeline.baselines import (
    DESEQ2_TABLE_COLUMNS,
    MILODE_TABLE_COLUMNS,
    baseline_representations,
    composition_baseline,
    deseq2_baseline,
    design_nuisance,
    milo_baseline,
    milode_baseline,
)
from mrvi_repro.pipeline.model import fit_scvi

KEY = "sample_assignment"
COVARIATES = ["covariate_1", "covariate_1_top", "covariate_2", "covariate_2_strong"]
ENTRY = {
    "source": {"kind": "simulate"},
    "sample_key": KEY,
    "batch_key": "batch",
    "labels_key": "leiden",
    "sample_covariates": COVARIATES,
    "baselines": {
        "scvi": {"train": {"max_epochs": 30, "batch_size": 256}, "seed": 1},
        "pca": {"n_comps": 20},
        "deseq2": {"group": "0"},  # Leiden cluster 0 is subset A, the one with planted DE
    },
}


def spec(**baselines):
    return DatasetSpec.from_dict("tiny", {**ENTRY, "baselines": ENTRY["baselines"] | baselines})


@pytest.fixture(scope="module")
def scvi(tiny_semi):
    return fit_scvi(tiny_semi, spec())


@pytest.fixture(scope="module")
def reps(tiny_semi, scvi):
    return baseline_representations(tiny_semi, scvi, spec())


def test_fit_scvi_uses_the_entry(tmp_path, tiny_semi, scvi):
    assert len(scvi.history) == 30 and scvi.train_config.batch_size == 256
    assert scvi.registry.batch_key == "batch" and scvi.registry.sample_key is None
    write_model(scvi, tmp_path / "scvi")
    back = SCVI.load(tmp_path / "scvi")
    np.testing.assert_array_equal(back.get_latent(tiny_semi[:50]), scvi.get_latent(tiny_semi[:50]))


def test_representations_layout(tmp_path, tiny_semi, reps):
    assert reps.X is None and list(reps.var_names) == list(tiny_semi.var_names)
    pd.testing.assert_frame_equal(reps.obs, tiny_semi.obs)
    assert reps.uns["latent_keys"] == ["X_pca", "X_scvi"]
    assert reps.obsm["X_pca"].shape == (tiny_semi.n_obs, 20)
    assert reps.obsm["X_scvi"].shape == (tiny_semi.n_obs, 10)
    assert all(reps.obsm[k].dtype == np.float32 for k in reps.uns["latent_keys"])
    reps.write_h5ad(tmp_path / "representations.h5ad")
    back = ad.read_h5ad(tmp_path / "representations.h5ad")
    np.testing.assert_array_equal(back.obsm["X_scvi"], reps.obsm["X_scvi"])
    assert len(back.uns["scvi_history"]) == 30


def test_composition_scvi_shows_the_subset_a_subject_groups(tiny_semi, reps):
    dist = composition_baseline(reps, spec(), "scvi")
    assert dist.dims == ("group", "sample_x", "sample_y")
    assert dist.attrs["representation"] == "scvi" and dist.attrs["clusters"] == "labels"
    assert list(dist["group"].values) == [str(g) for g in tiny_semi.obs["leiden"].cat.categories]
    # subset A subjects of one covariate-1 group share subclusters: closer than across groups
    cov1 = tiny_semi.obs.groupby(KEY, observed=True)["covariate_1"].first().astype(str)
    lab = cov1.loc[dist["sample_x"].to_numpy()].to_numpy()
    d = dist.sel(group="0").to_numpy()
    same = (lab[:, None] == lab[None, :]) & ~np.eye(len(lab), dtype=bool)
    assert d[same].mean() < 0.8 * d[lab[:, None] != lab[None, :]].mean()


def test_composition_on_leiden_clusters(reps):
    dist = composition_baseline(reps, spec(composition={"clusters": "leiden"}), "pca")
    assert dist.attrs["clusters"] == "leiden" and dist.attrs["groupby"] == "leiden_pca"
    assert int(dist["n_cells"].sum()) == reps.n_obs
    assert "leiden_pca" not in reps.obs  # the input is left as it was
    with pytest.raises(ValueError, match=r"unknown representation 'umap'"):
        composition_baseline(reps, spec(), "umap")


def test_deseq2_table_tests_the_two_valued_covariates_in_the_group(tiny_semi):
    table = deseq2_baseline(tiny_semi, spec())
    assert tuple(table.columns) == DESEQ2_TABLE_COLUMNS
    by_cov = dict(tuple(table.groupby("covariate", sort=False)))
    assert list(by_cov) == ["covariate_1_top", "covariate_2_strong"]  # the others: > 2 values
    top = by_cov["covariate_1_top"]
    assert (top["tested"] == "T2").all() and (top["reference"] == "T1").all()
    assert top["gene"].tolist() == tiny_semi.var_names.tolist()
    # planted DE in subset A follows covariate 1; covariate 2 only moves abundances elsewhere
    assert (top["padj"] < 0.05).sum() >= 5
    assert (by_cov["covariate_2_strong"]["padj"] < 0.05).sum() <= 2
    # the rows are pseudobulk_deseq2's on the entry's group (one batch: no nuisance)
    direct = pseudobulk_deseq2(
        tiny_semi, sample_key=KEY, group_key="leiden", group="0", covariate="covariate_1_top"
    )
    np.testing.assert_allclose(
        top["log2_fold_change"].to_numpy(), direct["log2_fold_change"].to_numpy()
    )


def test_a_batch_that_varies_within_samples_is_left_out_of_the_designs(tiny_semi, caplog):
    cells = tiny_semi.copy()
    assert design_nuisance(cells, spec(), "DESeq2") is None  # one batch
    # a batch per sample pair: a sample-level covariate, kept
    codes = cells.obs[KEY].cat.codes.to_numpy()
    cells.obs["batch"] = np.where(codes % 2 == 0, "b0", "b1")
    assert design_nuisance(cells, spec(), "DESeq2") == "batch"
    # a plate that varies within samples (sci-Plex): left out, with a warning, and DESeq2 runs
    cells.obs["batch"] = np.where(np.arange(cells.n_obs) % 2 == 0, "p0", "p1")
    with caplog.at_level("WARNING"):
        assert design_nuisance(cells, spec(), "DESeq2") is None
    assert "varies within 32 of 32 samples" in caplog.text
    table = deseq2_baseline(cells, spec(deseq2={"group": "0", "covariates": ["covariate_1_top"]}))
    assert (table["padj"] < 0.05).sum() >= 5
    # a two-valued covariate with one sample on one side (sci-Plex's vehicle) is skipped, logged
    cells.obs["lonely"] = codes == 0
    lonely = DatasetSpec.from_dict(
        "tiny", {**ENTRY, "sample_covariates": ["lonely"], "baselines": {}}
    )
    caplog.clear()
    with caplog.at_level("WARNING"):
        assert deseq2_baseline(cells, lonely).empty
    assert "skipping 'lonely': a level with fewer than 2 samples" in caplog.text


def test_deseq2_table_is_empty_without_two_valued_covariates(tiny_semi):
    table = deseq2_baseline(tiny_semi, spec(deseq2={"covariates": ["covariate_1"]}))
    assert table.empty and tuple(table.columns) == DESEQ2_TABLE_COLUMNS


def test_milo_tests_the_two_valued_covariates_on_the_entrys_representation(
    tmp_path, tiny_semi, reps
):
    ds = milo_baseline(tiny_semi, reps, spec(milo={"config": {"k": 15}, "representation": "scvi"}))
    binary = ["covariate_1_top", "covariate_2_strong"]  # the others: > 2 values
    assert [v for v in ds.data_vars if v.startswith("log_ratio_")] == [
        f"log_ratio_{c}" for c in binary
    ]
    assert list(ds["covariate"].values) == binary and ds.sizes["cell"] == reps.n_obs
    top = ds["log_ratio_covariate_1_top"]
    assert top.dims == ("cell",) and top.dtype == np.float32
    # the attributes of MrVI's DA variables (analysis/da.nc); one batch: no batch in the design
    assert {k: top.attrs[k] for k in ("covariate", "group_a", "group_b", "design")} == {
        "covariate": "covariate_1_top",
        "group_a": "T2",
        "group_b": "T1",
        "design": "~ covariate_1_top",
    }
    assert ds["logFC"].dims == ("covariate", "nhood") and ds["index_cell"].dims == ("nhood",)
    # the scVI latent (10 dimensions) with the entry's k
    assert ds.attrs["representation"] == "scvi" and ds.attrs["n_dims"] == 10
    assert ds.attrs["config_k"] == 15 and ds.attrs["batch_key"] == "batch"
    ds.to_netcdf(tmp_path / "milo.nc", engine="scipy")
    back = xr.open_dataset(tmp_path / "milo.nc")
    np.testing.assert_array_equal(
        back["log_ratio_covariate_2_strong"], ds["log_ratio_covariate_2_strong"]
    )
    assert back["log_ratio_covariate_2_strong"].attrs["group_a"] == "True"


def test_milode_lfcs_are_group_means(tmp_path, tiny_semi, reps):
    entry = {"config": {"k": 15, "prop": 0.1}, "covariates": ["covariate_1", "covariate_1_top"]}
    ds, table = milode_baseline(tiny_semi, reps, spec(milode=entry))
    assert list(ds["covariate"].values) == ["covariate_1_top"]  # covariate_1: 8 values
    assert ds["lfc"].dims == ("covariate", "group", "gene") and ds["lfc"].dtype == np.float32
    assert list(ds["group"].values) == [str(g) for g in tiny_semi.obs["leiden"].cat.categories]
    assert list(ds["gene"].values) == list(tiny_semi.var_names)
    assert int(ds["n_cells"].sum()) == tiny_semi.n_obs
    assert (ds["n_cells_tested"] <= ds["n_cells"]).all()
    assert ds["group_a"].item() == "T2" and ds["design"].item() == "~ covariate_1_top"
    assert ds.attrs["representation"] == "pca" and ds.attrs["config_k"] == 15
    assert tuple(table.columns) == MILODE_TABLE_COLUMNS
    assert (table["covariate"] == "covariate_1_top").all() and (table["reference"] == "T1").all()
    assert table["nhood"].nunique() == ds["n_nhoods"].item()
    ds.to_netcdf(tmp_path / "milode.nc", engine="scipy")
    back = xr.open_dataset(tmp_path / "milode.nc")
    np.testing.assert_array_equal(back["lfc"], ds["lfc"])


def test_neighbourhood_baselines_without_two_valued_covariates(tiny_semi, reps):
    entry = {**ENTRY, "labels_key": None, "baselines": {"milode": {"covariates": ["covariate_1"]}}}
    unlabelled = DatasetSpec.from_dict("tiny", entry)
    ds, table = milode_baseline(tiny_semi, reps, unlabelled)
    assert ds.sizes["covariate"] == 0 and list(ds["group"].values) == ["all"]
    assert table.empty and tuple(table.columns) == MILODE_TABLE_COLUMNS
    ds = milo_baseline(tiny_semi, reps, spec(milo={"covariates": ["covariate_1"]}))
    assert not ds.data_vars and ds.sizes["cell"] == tiny_semi.n_obs
    with pytest.raises(ValueError, match=r"milo: the representations' cells are not the data's"):
        milo_baseline(tiny_semi, reps[::-1], spec())
