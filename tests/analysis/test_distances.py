import numpy as np
import pytest
import xarray as xr

from mrvi_repro.analysis import iter_local_distances, local_sample_distances


def _naive(model, adata):
    z = model.counterfactual_z(adata).astype(np.float64)  # (cells, S, d)
    return np.sqrt(((z[:, :, None, :] - z[:, None, :, :]) ** 2).sum(-1))


@pytest.fixture(scope="module")
def subset(tiny_semi):
    # 700 cells: several chunks of 256 and a padded last one
    return tiny_semi[np.random.default_rng(0).choice(tiny_semi.n_obs, 700, replace=False)].copy()


def test_grouped_and_streamed_distances_equal_the_dense_computation(
    tmp_path, subset, tiny_semi_mrvi
):
    naive = _naive(tiny_semi_mrvi, subset)
    store = tmp_path / "cells.zarr"
    grouped = local_sample_distances(
        tiny_semi_mrvi, subset, groupby="leiden", cell_store=store, batch_size=256
    )
    cells = xr.open_zarr(store, chunks=None)["distance"]
    assert cells.dims == ("cell", "sample_x", "sample_y")
    assert list(cells["cell"].values) == list(subset.obs_names)
    np.testing.assert_allclose(cells.values, naive, rtol=1e-3, atol=1e-3)
    labels = subset.obs["leiden"].astype(str).to_numpy()
    assert grouped.dims == ("group", "sample_x", "sample_y")
    for g in grouped["group"].values:
        np.testing.assert_allclose(
            grouped.sel(group=g).values, naive[labels == g].mean(0), rtol=1e-3, atol=1e-3
        )
        assert int(grouped.sel(group=g)["n_cells"]) == (labels == g).sum()
    one = local_sample_distances(tiny_semi_mrvi, subset)
    np.testing.assert_allclose(one.sel(group="all").values, naive.mean(0), rtol=1e-3, atol=1e-3)
    assert np.all(np.diagonal(one.values, axis1=1, axis2=2) == 0)


def test_subset_a_distances_carry_the_planted_sample_structure(tiny_semi, tiny_semi_mrvi):
    d = local_sample_distances(tiny_semi_mrvi, tiny_semi, groupby="subset")
    truth = tiny_semi.obs.groupby("sample_assignment", observed=True)["covariate_1"].first()
    g = truth.loc[d["sample_x"].values].astype(str).to_numpy()
    same = g[:, None] == g[None, :]
    off = ~np.eye(len(g), dtype=bool)

    def within_between(name):
        m = d.sel(group=name).values
        return m[same & off].mean(), m[~same].mean()

    within_a, between_a = within_between("A")
    within_o, between_o = within_between("Other")
    assert within_a / between_a < 0.7  # subjects of one subcluster group are close in subset A
    # the planted separation is an order of magnitude larger in A than where nothing was planted
    # (the sample embedding leaves a faint copy of it elsewhere: within/between is ~0.8 there)
    assert between_a - within_a > 5 * (between_o - within_o)


def test_bad_groupby(subset, tiny_semi_mrvi):
    with pytest.raises(KeyError, match="groupby 'nope'"):
        local_sample_distances(tiny_semi_mrvi, subset, groupby="nope")


def _naive_normalised(model, adata, mc, seed):
    """Dense numpy version of the Monte-Carlo-normalised distances, same draws as the kernel."""
    import jax
    import jax.numpy as jnp

    from mrvi_repro.model._model import states_for_samples

    mean, scale = model.posterior_u(adata)
    key = jax.random.key(seed)
    noise = np.stack(
        [
            np.asarray(jax.random.normal(jax.random.fold_in(key, r), (3 * mc, mean.shape[1])))
            for r in range(adata.n_obs)
        ]
    )
    u = mean[:, None, :] + scale[:, None, :] * noise
    codes = model.sample_codes()
    z = np.asarray(states_for_samples(model.module, model.params, jnp.asarray(u), codes), float)
    own = model.registry.codes(adata, "sample")
    z_own = z[np.arange(adata.n_obs), mc:, own]  # (cells, 2 mc, d): the cell's own sample
    base = np.linalg.norm(z_own[:, :mc] - z_own[:, mc:], axis=-1)
    mu, sd = base.mean(1), base.std(1) + 1e-6
    zs = z[:, :mc]  # (cells, mc, S, d)
    dm = np.sqrt(((zs[:, :, :, None] - zs[:, :, None, :]) ** 2).sum(-1))
    out = ((dm - mu[:, None, None, None]) / sd[:, None, None, None]).mean(1)
    s = out.shape[-1]
    return out * (1 - np.eye(s))


def test_normalised_distances_equal_the_dense_computation_and_do_not_depend_on_chunks(
    subset, tiny_semi_mrvi
):
    cells = subset[:150].copy()
    naive = _naive_normalised(tiny_semi_mrvi, cells, mc=4, seed=7)
    chunks = [
        np.concatenate(
            [
                d
                for _, d in iter_local_distances(
                    tiny_semi_mrvi, cells, mc_samples=4, seed=7, batch_size=b
                )
            ]
        )
        for b in (64, 256)
    ]
    np.testing.assert_allclose(chunks[0], chunks[1], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(chunks[0], naive, rtol=2e-3, atol=2e-3)
    grouped = local_sample_distances(tiny_semi_mrvi, cells, mc_samples=4, seed=7)
    np.testing.assert_allclose(grouped.sel(group="all").values, naive.mean(0), atol=2e-3)
    assert grouped.attrs["mc_samples"] == 4
    with pytest.raises(ValueError, match="mc_samples must be 0"):
        local_sample_distances(tiny_semi_mrvi, cells, mc_samples=1)
