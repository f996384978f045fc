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
    # standardised per cell, so scale-free: the group pattern of the sample embeddings also
    # reaches unaffected cells a little (measured on this 40-epoch fit: A 118, Other 82)
    assert median["A"] > 1.2 * max(median["B"], median["C"], median["Other"])
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


@pytest.fixture(scope="module")
def lfc_cells(tiny_semi):
    """300 cells of subset A and 300 of Other, with a one-group-versus-rest covariate.

    ``g1`` marks the subjects of the first covariate-1 group, as the paper's DE benchmark does
    (its "group 1 versus rest").
    """
    rng = np.random.default_rng(0)
    sub = tiny_semi.obs["subset"].astype(str).to_numpy()
    rows = np.concatenate(
        [rng.choice(np.flatnonzero(sub == s), 300, replace=False) for s in ("A", "Other")]
    )
    cells = tiny_semi[np.sort(rows)].copy()
    first = sorted(tiny_semi.obs["covariate_1"].astype(str).unique())[0]
    cells.obs["g1"] = np.where(cells.obs["covariate_1"].astype(str) == first, "yes", "no")
    return cells


@pytest.fixture(scope="module")
def lfc_de(lfc_cells, tiny_semi_mrvi):
    return differential_expression(
        tiny_semi_mrvi, lfc_cells, covariates=["g1"], mc_samples=6, lfc=True
    )


def test_lfcs_equal_decoding_the_counterfactual_shift(lfc_cells, tiny_semi_mrvi, lfc_de):
    model = tiny_semi_mrvi
    lfc = lfc_de["lfc"].sel(covariate="g1_yes")
    assert lfc.dims == ("cell", "gene") and lfc.shape == (
        lfc_cells.n_obs,
        len(model.registry.genes),
    )
    # naive: per cell and draw, OLS in latent units, decode mean state and shifted state
    cells = np.arange(4)
    mean, scale = model.posterior_u(lfc_cells[cells])
    key = jax.random.key(0)
    noise = np.stack(
        [
            np.asarray(jax.random.normal(jax.random.fold_in(key, r), (6, mean.shape[1])))
            for r in cells
        ]
    )
    u = jnp.asarray(mean[:, None] + scale[:, None] * noise)
    z = np.asarray(states_for_samples(model.module, model.params, u, model.sample_codes()), float)
    x = design_matrix(lfc_cells, "sample_assignment", model.registry.samples, ["g1"]).to_numpy()
    x = np.column_stack([np.ones(len(x)), x])
    for i in cells:
        base = z[i].mean(1)  # (draws, d)
        shift = np.stack([np.linalg.lstsq(x, z[i, m], rcond=None)[0][1] for m in range(6)])
        h0, h1 = (np.exp(model.log_expression(s)) for s in (base, base + shift))
        want = (np.log2(h1 + 1e-4) - np.log2(h0 + 1e-4)).mean(0)
        np.testing.assert_allclose(lfc.values[i], want, rtol=1e-3, atol=2e-4)


def test_lfcs_are_the_expression_change_between_the_groups_samples(
    lfc_cells, tiny_semi_mrvi, lfc_de
):
    model = tiny_semi_mrvi
    lfc = lfc_de["lfc"].sel(covariate="g1_yes").values
    # decoded expression of each cell had it come from each sample, group means compared
    log2h = np.log2(np.exp(model.log_expression(model.counterfactual_z(lfc_cells))) + 1e-4)
    group = lfc_cells.obs.groupby("sample_assignment", observed=True)["g1"].first()
    yes = group.reindex(list(model.registry.samples)).to_numpy() == "yes"
    direct = log2h[:, yes].mean(1) - log2h[:, ~yes].mean(1)  # (cells, genes)
    sub = lfc_cells.obs["subset"].astype(str).to_numpy()
    a = sub == "A"
    assert np.corrcoef(lfc[a].mean(0), direct[a].mean(0))[0, 1] > 0.95
    # the planted DE lives in subset A: LFCs there dwarf those where nothing was planted
    assert np.abs(lfc[a]).mean() > 5 * np.abs(lfc[~a]).mean()
    grouped = differential_expression(
        model, lfc_cells, covariates=["g1"], mc_samples=6, lfc=True, lfc_groupby="subset"
    )
    assert grouped["lfc"].dims == ("covariate", "group", "gene")
    for name, mask in (("A", a), ("Other", ~a)):
        np.testing.assert_allclose(
            grouped["lfc"].sel(covariate="g1_yes", group=name).values,
            lfc[mask].mean(0),
            rtol=1e-4,
            atol=1e-6,
        )
        assert int(grouped["n_cells"].sel(group=name)) == mask.sum()
    with pytest.raises(ValueError, match="mc_samples must be at least 1"):
        differential_expression(model, lfc_cells, covariates=["g1"], mc_samples=0)
