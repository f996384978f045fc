import numpy as np
import pandas as pd
import pytest
import scanpy as sc
from scipy.stats import chi2
from sklearn.metrics import silhouette_score
from sklearn.neighbors import NearestNeighbors

from mrvi_repro.data.simulate import simulate_base
from mrvi_repro.model import MrVI, MrVIConfig, TrainConfig
from mrvi_repro.settings.data import SimulationParams

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
    assert h["val_neg_elbo"].iloc[-1] < h["val_neg_elbo"].iloc[0]
    assert h["train_reconstruction"].iloc[-1] < h["train_reconstruction"].iloc[0]
    assert np.isfinite(h[["train_loss", "val_neg_elbo"]].to_numpy()).all()


def test_same_seed_same_numbers(small, fitted):
    train = TrainConfig(max_epochs=15, batch_size=64, n_epochs_kl_warmup=5)
    again = MrVI.fit(
        small, sample_key="sample", batch_key="batch", config=SMALL, train=train, seed=0
    )
    pd.testing.assert_frame_equal(again.history, fitted.history)
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


def test_celltype_prior_puts_labels_on_their_component(small):
    """Each label's cells sit inside its own component, and components are label-specific."""
    config = MrVIConfig(n_latent=12, n_latent_u=5, encoder_n_hidden=32, prior="celltype")
    train = TrainConfig(max_epochs=200, batch_size=64, n_epochs_kl_warmup=5, early_stopping=False)
    model = MrVI.fit(small, sample_key="sample", labels_key="cell_type", config=config, train=train)
    u = model.get_latent(small)
    means = np.asarray(model.params["u_prior_means"])
    scales = np.exp(np.asarray(model.params["u_prior_log_scales"]))
    labels = np.array([model.registry.labels.index(c) for c in small.obs["cell_type"].astype(str)])
    # squared standardised distance of every cell to every component, against the 99% region
    inside = (((u[:, None, :] - means[None]) / scales[None]) ** 2).sum(-1) < chi2.ppf(0.99, 5)
    rows = np.arange(small.n_obs)
    other = (labels + np.random.default_rng(0).integers(1, len(means), small.n_obs)) % len(means)
    assert inside[rows, labels].mean() > 0.95
    assert inside[rows, other].mean() < 0.3
    # and the mixture itself, without the label bonus, gives most cells their label's component
    log_dens = -0.5 * (((u[:, None, :] - means[None]) / scales[None]) ** 2).sum(-1)
    log_dens -= np.log(scales).sum(-1)[None]
    responsible = np.argmax(log_dens + np.asarray(model.params["u_prior_logits"])[None], axis=1)
    assert (responsible == labels).mean() > 0.8


def _same_sample_enrichment(rep, samples, k=15):
    """Share of kNN from the cell's own sample over its expectation under random assignment."""
    idx = NearestNeighbors(n_neighbors=k + 1).fit(rep).kneighbors(rep, return_distance=False)
    observed = (samples[idx[:, 1:]] == samples[:, None]).mean()
    counts = pd.Series(samples).value_counts().to_numpy()
    expected = (counts * (counts - 1)).sum() / (len(samples) * (len(samples) - 1))
    return observed / expected


def test_u_mixes_samples_better_than_pca(tiny_semi, tiny_semi_mrvi):
    """u keeps cell types apart and, unlike PCA, does not group cells by sample.

    Sample mixing is measured by the kNN same-sample enrichment within each cluster (1 = random),
    not by 1 - |silhouette|: the silhouette's value under random sample labels depends on the
    geometry of the representation (0.75 for u, 0.91 for PCA here), so it cannot compare them.
    """
    adata, model = tiny_semi, tiny_semi_mrvi
    u = model.get_latent(adata)
    pca = adata.copy()
    sc.pp.normalize_total(pca)
    sc.pp.log1p(pca)
    sc.pp.pca(pca, n_comps=30, random_state=0)
    labels = adata.obs["leiden"].astype(str).to_numpy()
    subjects = adata.obs["sample_assignment"].astype(str).to_numpy()
    subset = adata.obs["subset"].astype(str).to_numpy()

    def enrichment(rep, which):
        return [
            _same_sample_enrichment(rep[labels == lab], subjects[labels == lab])
            for lab in np.unique(labels[subset == which])
        ]

    assert silhouette_score(u, labels) > 0.3  # cell types stay apart
    # subset A: subjects differ (planted); PCA groups cells by subject, u must not
    (pca_a,) = enrichment(pca.obsm["X_pca"], "A")
    (u_a,) = enrichment(u, "A")
    assert pca_a > 1.5 and u_a < 1.25
    # no sample effect at all: u at the random level too
    assert max(enrichment(u, "Other")) < 1.25
