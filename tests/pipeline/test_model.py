"""The functions behind the workflow's MrVI rules: fit from a dataset entry, save, latent AnnData."""

from types import SimpleNamespace

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from mrvi_repro.data.simulate import simulate_base
from mrvi_repro.model import MrVI, latent_anndata, write_model
from mrvi_repro.pipeline import DatasetSpec
from mrvi_repro.pipeline.model import fit_mrvi
from mrvi_repro.settings.data import SimulationParams

ENTRY = {
    "source": {"kind": "simulate"},
    "sample_key": "sample",
    "batch_key": "batch",
    "labels_key": "cell_type",
    "mrvi": {
        "model": {"n_latent": 6, "n_latent_u": 3, "encoder_n_hidden": 16, "n_mixture": 3},
        "train": {"max_epochs": 2, "batch_size": 64},
        "seed": 1,
    },
}


@pytest.fixture(scope="module")
def data():
    return simulate_base(
        SimulationParams(n_cells=300, n_genes=60, n_samples=4, n_batches=2, seed=0)
    )


@pytest.fixture(scope="module")
def fitted(data):
    return fit_mrvi(data, DatasetSpec.from_dict("tiny", ENTRY))


def test_fit_uses_the_entry(fitted):
    assert len(fitted.history) == 2
    assert fitted.config.n_latent_u == 3 and fitted.train_config.batch_size == 64
    reg = fitted.registry
    assert (reg.sample_key, reg.batch_key) == ("sample", "batch") and len(reg.batches) == 2
    assert reg.labels_key is None  # labels only for the cell-type prior


def test_labels_go_to_the_celltype_prior_only(data, monkeypatch):
    calls = []

    def fake_fit(adata, **kwargs):
        calls.append(kwargs)
        return SimpleNamespace(history=pd.DataFrame())

    monkeypatch.setattr(MrVI, "fit", fake_fit)
    for prior in ("isotropic", "celltype"):
        entry = {**ENTRY, "mrvi": {"model": {"prior": prior}, "seed": 5}}
        fit_mrvi(data, DatasetSpec.from_dict("tiny", entry))
    assert [c["labels_key"] for c in calls] == [None, "cell_type"]
    assert all(c["seed"] == 5 and c["batch_key"] == "batch" for c in calls)


def test_latent_anndata(tmp_path, data, fitted):
    write_model(fitted, tmp_path / "mrvi")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mrvi"]
    model = MrVI.load(tmp_path / "mrvi")
    out = latent_anndata(model, data)
    assert out.X is None
    assert list(out.obs_names) == list(data.obs_names)
    assert list(out.var_names) == list(data.var_names)
    pd.testing.assert_frame_equal(out.obs, data.obs)
    assert out.uns["latent_keys"] == ["X_mrvi_u", "X_mrvi_z"]
    assert out.obsm["X_mrvi_u"].shape == (300, 3) and out.obsm["X_mrvi_z"].shape == (300, 6)
    for key in out.uns["latent_keys"]:
        assert out.obsm[key].dtype == np.float32 and np.isfinite(out.obsm[key]).all()
    np.testing.assert_allclose(out.obsm["X_mrvi_u"], fitted.get_latent(data, "u"), rtol=1e-6)

    out.write_h5ad(tmp_path / "latent.h5ad")
    back = ad.read_h5ad(tmp_path / "latent.h5ad")
    np.testing.assert_array_equal(back.obsm["X_mrvi_z"], out.obsm["X_mrvi_z"])
    assert back.uns["mrvi"]["n_latent_u"] == 3 and back.uns["mrvi"]["batch_key"] == "batch"
    assert list(back.uns["mrvi_history"]["epoch"]) == [1, 2]


def test_write_model_never_leaves_a_partial_folder(tmp_path, fitted, monkeypatch):
    write_model(fitted, tmp_path / "mrvi")
    before = {p.name: p.read_bytes() for p in (tmp_path / "mrvi").iterdir()}
    assert set(before) == {"model.json", "params.msgpack"}

    def broken_save(self, path):
        (path / "params.msgpack").parent.mkdir(parents=True, exist_ok=True)
        (path / "params.msgpack").write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(MrVI, "save", broken_save)
    with pytest.raises(KeyboardInterrupt):
        write_model(fitted, tmp_path / "mrvi")
    assert {p.name: p.read_bytes() for p in (tmp_path / "mrvi").iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mrvi"]
