import numpy as np
import pytest
import scanpy as sc
from sklearn.metrics import silhouette_score
from sklearn.neighbors import NearestNeighbors

from mrvi_repro.data.simulate import simulate_base
from mrvi_repro.model import SCVI, MrVI, SCVIConfig, TrainConfig
from mrvi_repro.settings.data import SimulationParams


@pytest.fixture(scope="module")
def batched():
    return simulate_base(
        SimulationParams(
            n_cells=1200, n_genes=200, n_samples=6, n_batches=2, batch_effect_sd=0.6, seed=4
        )
    )


@pytest.fixture(scope="module")
def fitted(batched):
    train = TrainConfig(max_epochs=80, batch_size=128, n_epochs_kl_warmup=5)
    return SCVI.fit(batched, batch_key="batch", train=train, seed=0)


def _same_batch_share(rep, batch, k=15):
    idx = NearestNeighbors(n_neighbors=k + 1).fit(rep).kneighbors(rep, return_distance=False)
    return (batch[idx[:, 1:]] == batch[:, None]).mean()


def test_loss_decreases_and_terms(fitted):
    h = fitted.history
    assert len(h) == 80 and {"train_reconstruction", "train_kl_z", "val_neg_elbo"} <= set(h)
    assert h["val_neg_elbo"].iloc[-1] < h["val_neg_elbo"].iloc[0]


def test_latent_corrects_batch_and_keeps_cell_types(batched, fitted):
    z = fitted.get_latent(batched)
    assert z.shape == (batched.n_obs, SCVIConfig().n_latent)
    pca = batched.copy()
    sc.pp.normalize_total(pca)
    sc.pp.log1p(pca)
    sc.pp.pca(pca, n_comps=10, random_state=0)
    batch = batched.obs["batch"].astype(str).to_numpy()
    labels = batched.obs["cell_type"].astype(str).to_numpy()
    assert _same_batch_share(pca.obsm["X_pca"], batch) > 0.8  # the batch effect is visible
    assert _same_batch_share(z, batch) < 0.65  # two equal batches: 0.5 is perfect mixing
    assert silhouette_score(z, labels) > 0.2


def test_save_load_round_trip_and_wrong_kind(tmp_path, batched, fitted):
    fitted.save(tmp_path / "m")
    loaded = SCVI.load(tmp_path / "m")
    np.testing.assert_array_equal(loaded.get_latent(batched), fitted.get_latent(batched))
    np.testing.assert_allclose(
        np.exp(loaded.log_expression(loaded.get_latent(batched[:4]), "batch_1")).sum(-1),
        1.0,
        rtol=1e-4,
    )
    with pytest.raises(ValueError, match="holds a scVI model"):
        MrVI.load(tmp_path / "m")
