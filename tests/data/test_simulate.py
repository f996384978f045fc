import numpy as np
import pytest
from scipy import sparse

from mrvi_repro.data.contract import count_problems
from mrvi_repro.data.simulate import simulate_base
from mrvi_repro.settings.data import SimulationParams


def _log_means(adata, mask):
    x = adata.X[mask]
    norm = x.multiply(1e4 / np.asarray(x.sum(axis=1))).tocsr()
    return np.log1p(np.asarray(norm.mean(axis=0)).ravel())


def test_shape_and_counts(tiny_base):
    assert tiny_base.shape == (3000, 600)
    assert sparse.issparse(tiny_base.X) and tiny_base.X.format == "csr"
    assert count_problems(tiny_base.X) == []
    assert {"cell_type", "lineage", "substate", "sample", "batch"} <= set(tiny_base.obs.columns)
    assert tiny_base.var_names.is_unique and tiny_base.obs_names.is_unique
    assert tiny_base.obs["sample"].nunique() == 4


def test_same_seed_same_data_other_seed_other_data():
    p = SimulationParams(n_cells=300, n_genes=100, seed=5)
    a, b = simulate_base(p), simulate_base(p)
    assert (a.X != b.X).nnz == 0
    assert a.obs.equals(b.obs)
    c = simulate_base(SimulationParams(n_cells=300, n_genes=100, seed=6))
    assert (a.X != c.X).nnz > 0


def test_chunking_does_not_change_the_draws_layout():
    p = SimulationParams(n_cells=500, n_genes=80, seed=2)
    a = simulate_base(p, chunk_size=500)
    b = simulate_base(p, chunk_size=120)
    assert a.shape == b.shape and a.obs.equals(b.obs)
    assert count_problems(b.X) == []


def test_cell_types_unequal_and_distinct(tiny_base):
    sizes = tiny_base.obs["cell_type"].value_counts()
    assert len(sizes) == 6
    assert sizes.max() / sizes.min() > 2.5
    # every cell type has its own up-regulated markers (log fold > 1 against all other cells)
    for cell_type in sizes.index:
        mask = (tiny_base.obs["cell_type"] == cell_type).to_numpy()
        lfc = _log_means(tiny_base, mask) - _log_means(tiny_base, ~mask)
        assert (lfc > 1.0).sum() >= 5, cell_type


def test_library_sizes_vary(tiny_base):
    totals = np.asarray(tiny_base.X.sum(axis=1)).ravel()
    assert totals.std() / totals.mean() > 0.3
    assert totals.min() > 0


def test_substates_differ_within_a_type(tiny_base):
    obs = tiny_base.obs
    mask_type = (obs["cell_type"] == "CD4 T").to_numpy()
    states = obs.loc[mask_type, "substate"].value_counts()
    assert len(states[states > 50]) >= 2
    a, b = states.index[:2]
    lfc = _log_means(tiny_base, (obs["substate"] == a).to_numpy()) - _log_means(
        tiny_base, (obs["substate"] == b).to_numpy()
    )
    assert (np.abs(lfc) > 0.7).sum() >= 3


def test_batch_effect_only_when_asked():
    def between_batch_shift(sd):
        a = simulate_base(
            SimulationParams(
                n_cells=2000, n_genes=300, n_samples=4, n_batches=2, batch_effect_sd=sd, seed=4
            )
        )
        b1 = (a.obs["batch"] == "batch_1").to_numpy()
        return np.abs(_log_means(a, b1) - _log_means(a, ~b1)).mean()

    assert between_batch_shift(0.5) > 3 * between_batch_shift(0.0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_cells": 0}, "n_cells"),
        ({"n_genes": 10}, "n_genes"),
        ({"n_batches": 5, "n_samples": 2}, "nested"),
        ({"median_library_size": -1.0}, "median_library_size"),
    ],
)
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SimulationParams(**kwargs)
