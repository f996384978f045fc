import numpy as np
import pandas as pd
import pytest
import scanpy as sc
from sklearn.metrics import silhouette_samples, silhouette_score

from mrvi_repro.data import SimulationParams, simulate_base
from mrvi_repro.model import MrVI, MrVIConfig, TrainConfig

SMALL = MrVIConfig(n_latent=12, n_latent_u=5, encoder_n_hidden=32, n_mixture=5)


@pytest.fixture(scope="module")
def small():
    return simulate_base(
        SimulationParams(n_cells=600, n_genes=80, n_samples=6, n_batches=2, seed=0)
    )


@pytest.fixture(scope="module")
def fitted(small):
    train = TrainConfig(max_epochs=15, batch_size=64, n_epochs_kl_warmup=5)
    return MrVI.fit(
        small, sample_key="sample", batch_key="batch", config=SMALL, train=train, seed=0
    )


def test_loss_decreases(fitted):
    h = fitted.history
    assert len(h) == 15
    assert h["val_elbo"].iloc[-1] < h["val_elbo"].iloc[0]
    assert h["train_reconstruction"].iloc[-1] < h["train_reconstruction"].iloc[0]
    assert np.isfinite(h[["train_loss", "val_elbo"]].to_numpy()).all()


def test_same_seed_same_numbers(small, fitted):
    train = TrainConfig(max_epochs=15, batch_size=64, n_epochs_kl_warmup=5)
    again = MrVI.fit(
        small, sample_key="sample", batch_key="batch", config=SMALL, train=train, seed=0
    )
    pd.testing.assert_frame_equal(
        again.history.drop(columns="seconds"), fitted.history.drop(columns="seconds")
    )
    np.testing.assert_array_equal(again.get_latent(small), fitted.get_latent(small))


def test_save_load_round_trip(tmp_path, small, fitted):
    fitted.save(tmp_path / "m")
    loaded = MrVI.load(tmp_path / "m")
    for rep in ("u", "z"):
        np.testing.assert_array_equal(loaded.get_latent(small, rep), fitted.get_latent(small, rep))
    np.testing.assert_array_equal(loaded.train_indices, fitted.train_indices)
    assert loaded.config == fitted.config and loaded.registry == fitted.registry


def test_counterfactual_of_own_sample_is_z(small, fitted):
    z = fitted.get_latent(small, "z")
    cf = fitted.counterfactual_z(small)
    assert cf.shape == (small.n_obs, 6, 12)
    own = np.array([fitted.registry.samples.index(s) for s in small.obs["sample"].astype(str)])
    np.testing.assert_allclose(cf[np.arange(small.n_obs), own], z, rtol=1e-5, atol=1e-5)
    two = fitted.counterfactual_z(small[:10], samples=["sample_03", "sample_01"])
    np.testing.assert_allclose(two[:, 1], cf[:10, 0], rtol=1e-5, atol=1e-5)


def test_decoded_expression_is_a_distribution(fitted, small):
    log_h = fitted.log_expression(fitted.get_latent(small[:5], "z"), batch="batch_2")
    np.testing.assert_allclose(np.exp(log_h).sum(-1), 1.0, rtol=1e-4)


def test_bad_requests(small, fitted):
    with pytest.raises(ValueError, match="unknown sample"):
        fitted.counterfactual_z(small, samples=["nope"])
    with pytest.raises(ValueError, match="genes differ"):
        fitted.get_latent(small[:, :40])
    with pytest.raises(ValueError, match="needs labels_key"):
        MrVI.fit(small, sample_key="sample", config=MrVIConfig(prior="celltype"))


def test_nan_loss_names_epoch_and_term(small):
    train = TrainConfig(max_epochs=3, batch_size=64, lr=1e6, max_grad_norm=1e9)
    with pytest.raises(FloatingPointError, match=r"epoch \d+: .*(reconstruction|kl_u|kl_z)"):
        MrVI.fit(small, sample_key="sample", config=SMALL, train=train, seed=0)


@pytest.mark.xfail(
    strict=True,
    reason="open (issue 3): after 20 epochs only ~66% of cells have their label's component as the "
    "most responsible one; the claim stands, the training or prior needs work",
)
def test_celltype_prior_puts_labels_on_their_component(small):
    config = MrVIConfig(n_latent=12, n_latent_u=5, encoder_n_hidden=32, prior="celltype")
    train = TrainConfig(max_epochs=20, batch_size=64, n_epochs_kl_warmup=5)
    model = MrVI.fit(small, sample_key="sample", labels_key="cell_type", config=config, train=train)
    u = model.get_latent(small)
    means = np.asarray(model.params["u_prior_means"])
    log_scales = np.asarray(model.params["u_prior_log_scales"])
    log_w = np.asarray(model.params["u_prior_logits"])
    # component responsibilities of each cell's u under the mixture without the label bonus
    log_dens = (
        -0.5 * ((u[:, None, :] - means[None]) / np.exp(log_scales)[None]) ** 2 - log_scales[None]
    ).sum(-1)
    component = np.argmax(log_dens + log_w, axis=1)
    labels = np.array([model.registry.labels.index(c) for c in small.obs["cell_type"].astype(str)])
    assert (component == labels).mean() > 0.8


@pytest.mark.xfail(
    strict=True,
    reason="open (issue 3): u keeps sample identity (per-subset 1-|silhouette| 0.60-0.76 even after "
    "150 epochs, in subsets with no sample effect) while PCA gives 0.92; the sample-conditioned encoder "
    "leaks s into u - to be found and fixed before the model issue closes",
)
def test_u_mixes_samples_better_than_pca(tiny_semi):
    adata = tiny_semi
    model = MrVI.fit(
        adata, sample_key="sample_assignment", train=TrainConfig(max_epochs=40), seed=0
    )
    u = model.get_latent(adata)
    pca = adata.copy()
    sc.pp.normalize_total(pca)
    sc.pp.log1p(pca)
    sc.pp.pca(pca, n_comps=30, random_state=0)
    labels = adata.obs["leiden"].astype(str).to_numpy()
    subjects = adata.obs["sample_assignment"].astype(str).to_numpy()

    def sample_mixing(rep):  # scib's batch silhouette: mean over cell types of 1 - |s|
        scores = []
        for lab in np.unique(labels):
            m = labels == lab
            scores.append(np.mean(1 - np.abs(silhouette_samples(rep[m], subjects[m]))))
        return np.mean(scores)

    assert silhouette_score(u, labels) > 0.3  # cell types stay apart
    assert sample_mixing(u) > sample_mixing(pca.obsm["X_pca"])
