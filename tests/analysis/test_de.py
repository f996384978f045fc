import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from mrvi_repro.analysis import _de, design_matrix, differential_expression
from mrvi_repro.model._model import MrVAE, states_for_samples


@pytest.fixture(scope="module")
def de(tiny_semi, tiny_semi_mrvi):
    return differential_expression(
        tiny_semi_mrvi, tiny_semi, covariates=["covariate_1_top"], mc_samples=8
    )


def test_effect_sizes_are_highest_in_subset_a(tiny_semi, de):
    effect = de["effect_size"].sel(covariate="covariate_1_top_T2").values
    subset = tiny_semi.obs["subset"].astype(str).to_numpy()
    median = {s: np.median(effect[subset == s]) for s in ("A", "B", "C", "Other")}
    norm = np.linalg.norm(de["beta"].sel(covariate="covariate_1_top_T2").values, axis=-1)
    size = {s: np.median(norm[subset == s]) for s in ("A", "B", "C", "Other")}
    assert median["A"] > 1.5 * max(median["B"], median["C"], median["Other"])
    assert size["A"] > 3 * max(size["B"], size["C"], size["Other"])  # in latent units
    assert (de["padj"].values[subset == "A"] < 0.05).mean() > 0.5


def test_chunked_result_equals_a_naive_per_cell_regression(
    monkeypatch, tiny_semi, tiny_semi_mrvi, de
):
    model, cells = tiny_semi_mrvi, np.arange(5)
    # the same draws, from each cell's row, then ordinary least squares cell by cell
    mean, scale = model.module.apply(
        {"params": model.params},
        jnp.asarray(tiny_semi.X[cells].toarray()),
        jnp.zeros(len(cells), jnp.int32),
        method=MrVAE.encode,
    )
    key = jax.random.key(0)
    noise = jnp.stack(
        [jax.random.normal(jax.random.fold_in(key, r), (8, model.config.n_latent_u)) for r in cells]
    )
    u = mean[:, None] + scale[:, None] * noise
    z = np.asarray(states_for_samples(model.module, model.params, u, model.sample_codes()))
    x = design_matrix(
        tiny_semi, "sample_assignment", model.registry.samples, ["covariate_1_top"]
    ).to_numpy()
    x = np.column_stack([np.ones(len(x)), x])
    var = np.diag(np.linalg.inv(x.T @ x))[1:]
    for i in cells:
        e = (z[i] - z[i].mean(1, keepdims=True)) / (1e-6 + z[i].std(1, keepdims=True))
        beta = np.stack([np.linalg.lstsq(x, e[m], rcond=None)[0] for m in range(8)])[:, 1:]
        t = ((beta**2).sum(-1) / var).mean(0)
        np.testing.assert_allclose(de["effect_size"].values[i], t, rtol=2e-3)
        want = stats.chi2.sf(t[0], df=model.config.n_latent)
        assert np.isclose(de["pvalue"].values[i, 0], want, rtol=1e-2)
    # and a different chunking gives the same numbers
    monkeypatch.setattr(_de, "CHUNK_BYTES", 8 * 2**20)
    again = differential_expression(
        model, tiny_semi[:700], covariates=["covariate_1_top"], mc_samples=8
    )
    np.testing.assert_allclose(
        again["effect_size"].values, de["effect_size"].values[:700], rtol=1e-3, atol=1e-3
    )


def test_design_and_bad_requests(tiny_semi, tiny_semi_mrvi):
    samples = tiny_semi_mrvi.registry.samples
    x = design_matrix(tiny_semi, "sample_assignment", samples, ["covariate_1", "covariate_2"])
    assert x.shape == (32, 7 + 3) and x.min().min() == 0 and x.max().max() == 1
    with pytest.raises(KeyError, match="unknown covariate"):
        differential_expression(tiny_semi_mrvi, tiny_semi, covariates=["nope"])
    with pytest.raises(ValueError, match="varies within"):
        differential_expression(tiny_semi_mrvi, tiny_semi, covariates=["subset"])
    tiny_semi.obs["constant"] = "x"
    with pytest.raises(ValueError, match="single value"):
        differential_expression(tiny_semi_mrvi, tiny_semi, covariates=["constant"])
    del tiny_semi.obs["constant"]
