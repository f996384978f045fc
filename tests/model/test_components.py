import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special, stats

from mrvi_repro.model import MrVAE, MrVIConfig, nb_log_prob
from mrvi_repro.model._components import (
    MLP,
    AttentionBlock,
    ConditionalNormalization,
    NormalOutput,
    ResnetBlock,
)
from mrvi_repro.model._likelihoods import lgamma_positive

KEY = jax.random.key(0)


def apply(module, *args, **kwargs):
    variables = module.init({"params": KEY, "dropout": KEY}, *args, **kwargs)
    return module.apply(variables, *args, rngs={"dropout": KEY}, **kwargs)


def test_resnet_and_mlp_shapes():
    x = jnp.ones((5, 7))
    assert apply(ResnetBlock(n_out=3, n_hidden=8), x).shape == (5, 3)
    assert apply(MLP(n_out=4, n_hidden=8, n_layers=2), x).shape == (5, 4)


def test_normal_output_is_positive():
    mean, scale = apply(NormalOutput(n_out=3, n_hidden=8), jnp.ones((5, 7)))
    assert mean.shape == scale.shape == (5, 3)
    assert bool(jnp.all(scale > 0))


def test_conditional_normalization_depends_on_condition():
    module = ConditionalNormalization(n_features=6, n_conditions=3)
    x = jax.random.normal(KEY, (4, 6))
    variables = module.init(KEY, x, jnp.zeros(4, dtype=jnp.int32))
    a = module.apply(variables, x, jnp.zeros(4, dtype=jnp.int32))
    b = module.apply(variables, x, jnp.ones(4, dtype=jnp.int32))
    assert a.shape == (4, 6) and not np.allclose(a, b)


@pytest.mark.parametrize("lead", [(5,), (3, 5)])
def test_attention_block_shapes(lead):
    query = jnp.ones((*lead, 10))
    kv = jnp.ones((*lead, 16))
    assert apply(AttentionBlock(out_dim=30), query, kv, training=True).shape == (*lead, 30)


def test_nb_log_prob_matches_scipy():
    x = np.array([[0.0, 3.0, 10.0]])
    mean = np.array([[0.5, 2.0, 12.0]])
    theta = np.array([0.7, 3.0, 20.0])
    ours = nb_log_prob(jnp.asarray(x), jnp.log(mean), jnp.log(theta))
    p = theta / (theta + mean)
    log_x_factorial = np.log(6.0) + np.sum(np.log(np.arange(1, 11)))  # log 3! + log 10!
    assert np.isclose(
        float(ours[0]) - log_x_factorial, stats.nbinom.logpmf(x, theta, p).sum(), rtol=1e-5
    )


def test_positive_lgamma_and_its_derivative_match_scipy():
    a = np.geomspace(1e-3, 1e5, 2000)
    ours = np.asarray(lgamma_positive(jnp.asarray(a, jnp.float32)), np.float64)
    exact = special.gammaln(a)
    assert np.max(np.abs(ours - exact) / np.maximum(1.0, np.abs(exact))) < 1e-5
    grad = np.asarray(jax.vmap(jax.grad(lgamma_positive))(jnp.asarray(a, jnp.float32)))
    exact_grad = special.digamma(a)
    assert np.max(np.abs(grad - exact_grad) / np.maximum(1.0, np.abs(exact_grad))) < 1e-5
    # near the switch between the shifted and the direct series
    edge = np.array([7.999, 8.0, 8.001])
    edge_ours = np.asarray(lgamma_positive(jnp.asarray(edge, jnp.float32)), np.float64)
    np.testing.assert_allclose(edge_ours, special.gammaln(edge), rtol=1e-6)


def test_nb_gradient_matches_xla_gammaln_version():
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.poisson(2.0, (16, 50)), jnp.float32)
    log_mean = jnp.asarray(rng.normal(0.5, 1.0, (16, 50)), jnp.float32)
    log_theta = jnp.asarray(rng.normal(0.0, 1.5, 50), jnp.float32)

    def reference(lm, lt):
        theta = jnp.exp(lt)
        ltm = jnp.logaddexp(lt, lm)
        gamma = jax.scipy.special.gammaln(x + theta) - jax.scipy.special.gammaln(theta)
        return (gamma + theta * (lt - ltm) + x * (lm - ltm)).sum()

    ours = jax.grad(lambda lm, lt: nb_log_prob(x, lm, lt).sum(), argnums=(0, 1))
    want = jax.grad(reference, argnums=(0, 1))
    for got, exp in zip(ours(log_mean, log_theta), want(log_mean, log_theta), strict=True):
        np.testing.assert_allclose(got, exp, rtol=2e-4, atol=2e-4)


@pytest.mark.parametrize("n_batches", [1, 3])
@pytest.mark.parametrize("prior", ["mog", "isotropic", "celltype"])
def test_module_terms(n_batches, prior):
    config = MrVIConfig(n_latent=12, n_latent_u=4, encoder_n_hidden=16, prior=prior, n_mixture=5)
    module = MrVAE(config, n_genes=20, n_samples=6, n_batches=n_batches, n_labels=3)
    x = jax.random.poisson(KEY, 3.0, (8, 20)).astype(jnp.float32) + 1.0
    idx = jnp.arange(8, dtype=jnp.int32)
    args = (x, idx % 6, idx % n_batches, idx % 3)
    variables = module.init({"params": KEY, "u": KEY, "dropout": KEY}, *args)
    terms = module.apply(variables, *args, rngs={"u": KEY})
    assert set(terms) == {"reconstruction", "kl_u", "kl_z"}
    assert all(v.shape == (8,) and bool(jnp.all(jnp.isfinite(v))) for v in terms.values())
    n_components = variables["params"]["u_prior_means"].shape[0]
    assert n_components == {"mog": 5, "isotropic": 1, "celltype": 3}[prior]


def test_log_factorial_sparse_and_dense_agree_with_gammaln():
    from scipy import sparse
    from scipy.special import gammaln

    from mrvi_repro.model import log_factorial

    x = np.random.default_rng(0).poisson(2.0, (50, 30)).astype(np.float32)
    expected = gammaln(x.astype(np.float64) + 1.0).sum(1)
    np.testing.assert_allclose(log_factorial(sparse.csr_matrix(x)), expected, rtol=1e-10)
    np.testing.assert_allclose(log_factorial(x), expected, rtol=1e-10)
