import numpy as np
import pytest
import xarray as xr

from mrvi_repro.analysis import local_sample_distances


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
