"""Streamed training (counts kept on the host, minibatches densified a chunk at a time).

The streamed path must take the very steps of the device-resident one: the same minibatches, keys
and arithmetic, only grouped differently into kernel calls.
"""

import jax
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

import mrvi_repro.model._data as host
import mrvi_repro.model._streaming as streaming
from mrvi_repro.data.simulate import simulate_base
from mrvi_repro.model import SCVI, MrVI, MrVIConfig, SCVIConfig, TrainConfig, log_factorial
from mrvi_repro.settings.data import SimulationParams

SMALL = MrVIConfig(n_latent=8, n_latent_u=4, encoder_n_hidden=16, n_mixture=3)


@pytest.fixture(scope="module")
def cells():
    # 1,300 validation cells: two validation batches of 1,024 rows
    return simulate_base(
        SimulationParams(n_cells=2600, n_genes=60, n_samples=4, n_batches=2, seed=3)
    )


def _same_model(a, b):
    pd.testing.assert_frame_equal(a.history, b.history, rtol=1e-6)
    for x, y in zip(
        jax.tree_util.tree_leaves(a.params), jax.tree_util.tree_leaves(b.params), strict=True
    ):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-5, atol=1e-6)


def test_streamed_training_takes_the_same_steps(cells, monkeypatch):
    # chunks of 4 steps: 21 steps per epoch -> 5 full chunks and one padded with 3 inactive steps;
    # one validation batch per chunk -> two validation chunks
    monkeypatch.setattr(streaming, "STREAM_CHUNK_BYTES", 4 * 64 * cells.n_vars * 4)
    shapes = []
    dense = host._dense
    monkeypatch.setattr(host, "_dense", lambda x: shapes.append(x.shape) or dense(x))

    def fit(max_dense_gib):
        train = TrainConfig(
            max_epochs=3,
            batch_size=64,
            n_epochs_kl_warmup=2,
            train_size=0.5,
            max_dense_gib=max_dense_gib,
        )
        return MrVI.fit(
            cells, sample_key="sample", batch_key="batch", config=SMALL, train=train, seed=0
        )

    streamed = fit(0.0)
    # only chunks were densified: 4 minibatches of 64 cells, or 1,024 validation rows
    assert (4 * 64, cells.n_vars) in shapes and max(s[0] for s in shapes) <= 1024 < cells.n_obs
    shapes.clear()
    resident = fit(None)
    assert shapes == [cells.shape]  # the resident path densifies everything once
    assert len(streamed.history) == 3
    _same_model(streamed, resident)
    np.testing.assert_allclose(streamed.get_latent(cells), resident.get_latent(cells), rtol=1e-5)


def test_streaming_from_dense_counts_and_for_scvi_without_validation(cells):
    dense_cells = cells.copy()
    dense_cells.X = cells.X.toarray()
    train = {"max_epochs": 2, "batch_size": 128, "n_epochs_kl_warmup": 1}
    train |= {"train_size": 1.0, "early_stopping": False}
    models = [
        SCVI.fit(
            data,
            batch_key="batch",
            config=SCVIConfig(n_latent=4, encoder_n_hidden=16, decoder_n_hidden=16),
            train=TrainConfig(**train, max_dense_gib=gib),
            seed=1,
        )
        for data, gib in ((dense_cells, 0.0), (cells, None))
    ]
    assert "val_neg_elbo" not in models[0].history.columns
    _same_model(*models)


def test_streaming_is_chosen_by_the_dense_size():
    assert not TrainConfig().streams(10_000, 2_000)  # 0.07 GiB
    assert TrainConfig().streams(1_000_000, 2_000)  # 7.5 GiB > 2 GiB
    assert TrainConfig(max_dense_gib=0).streams(10, 10)
    assert not TrainConfig(max_dense_gib=None).streams(10**7, 10**4)
    with pytest.raises(ValueError, match="max_dense_gib"):
        TrainConfig(max_dense_gib=-1.0)


def test_empty_cells_are_refused_when_streaming(cells):
    bad = cells[:200].copy()
    x = bad.X.tolil()
    x[7] = 0
    bad.X = sparse.csr_matrix(x)
    with pytest.raises(ValueError, match="no counts"):
        MrVI.fit(bad, sample_key="sample", config=SMALL, train=TrainConfig(max_dense_gib=0))


def test_log_factorial_in_row_blocks_equals_one_pass(cells, monkeypatch):
    whole = log_factorial(cells.X)
    monkeypatch.setattr(host, "_HOST_BLOCK_ROWS", 97)
    np.testing.assert_array_equal(log_factorial(cells.X), whole)
    np.testing.assert_allclose(log_factorial(cells.X.toarray()), whole, rtol=1e-12)
    np.testing.assert_array_equal(host._row_sums(cells.X), np.asarray(cells.X.sum(1)).ravel())
