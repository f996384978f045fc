"""Checkpointed fits: a fit stopped by SIGTERM resumes where it stopped and ends as if never stopped;
the kept parameters are those of the best validation epoch."""

import contextlib
import logging
import os
import signal

import jax
import numpy as np
import pandas as pd
import pytest

from mrvi_repro.data.simulate import simulate_base
from mrvi_repro.model import SCVI, MrVI, MrVIConfig, SCVIConfig, TrainConfig, TrainingInterrupted
from mrvi_repro.settings.data import SimulationParams

SMALL = MrVIConfig(n_latent=8, n_latent_u=4, encoder_n_hidden=32, n_mixture=4)
TRAIN = TrainConfig(max_epochs=6, batch_size=64, n_epochs_kl_warmup=3, checkpoint_every=0)


@pytest.fixture(scope="module")
def small():
    return simulate_base(SimulationParams(n_cells=400, n_genes=60, n_samples=4, seed=1))


class KillAtEpoch(logging.Handler):
    """Send SIGTERM to this process when the training log reports epoch ``epoch``."""

    def __init__(self, epoch: int) -> None:
        super().__init__()
        self.prefix = f"epoch {epoch}/"

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith(self.prefix):
            os.kill(os.getpid(), signal.SIGTERM)


@contextlib.contextmanager
def killed_at(epoch: int):
    """The fit run inside gets SIGTERM when it logs ``epoch``, and must stop on it."""
    log = logging.getLogger("mrvi_repro.model._training")
    killer, level = KillAtEpoch(epoch), log.level
    log.addHandler(killer)
    log.setLevel(logging.INFO)
    try:
        with pytest.raises(TrainingInterrupted, match=f"SIGTERM after epoch {epoch};"):
            yield
    finally:
        log.removeHandler(killer)
        log.setLevel(level)


def fit(data, train=TRAIN, **kwargs):
    return MrVI.fit(data, sample_key="sample", config=SMALL, train=train, seed=3, **kwargs)


def same_params(a, b):
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def without_seconds(history):
    return history.drop(columns=[c for c in ("seconds",) if c in history])


@pytest.mark.parametrize("streamed", [False, True], ids=["on_device", "streamed"])
def test_a_killed_fit_resumes_and_ends_as_an_uninterrupted_one(tmp_path, small, streamed):
    train = TrainConfig(**{**TRAIN.__dict__, "max_dense_gib": 0.0 if streamed else 2.0})
    whole = fit(small, train)
    ckpt = tmp_path / "ckpt"
    with killed_at(3):
        fit(small, train, checkpoint_dir=ckpt)
    assert (ckpt / "state.npz").exists() and (ckpt / "fit.log").exists()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler was put back
    resumed = fit(small, train, checkpoint_dir=ckpt)
    same_params(resumed.params, whole.params)
    pd.testing.assert_frame_equal(without_seconds(resumed.history), without_seconds(whole.history))
    assert resumed.params_epoch == whole.params_epoch
    assert not ckpt.exists()  # removed once the fit ended


def test_the_resumed_attempt_logs_the_earlier_ones(tmp_path, small, caplog):
    ckpt = tmp_path / "ckpt"
    with killed_at(2):
        fit(small, checkpoint_dir=ckpt)
    with caplog.at_level(logging.INFO):
        fit(small, checkpoint_dir=ckpt)
    replayed = [r.getMessage() for r in caplog.records if "[earlier attempt]" in r.getMessage()]
    assert any("epoch 2/6" in m for m in replayed)
    assert any("SIGTERM received" in m for m in replayed)
    assert any(
        "resuming from the checkpoint after epoch 2" in r.getMessage() for r in caplog.records
    )


def test_a_checkpoint_of_another_fit_is_ignored(tmp_path, small, caplog):
    ckpt = tmp_path / "ckpt"
    other = TrainConfig(**{**TRAIN.__dict__, "checkpoint_every": 2, "max_epochs": 2})
    with killed_at(1):
        fit(small, other, checkpoint_dir=ckpt)  # another schedule: another fit
    with caplog.at_level(logging.WARNING):
        again = fit(small, checkpoint_dir=ckpt)
    assert any("belongs to another fit" in r.getMessage() for r in caplog.records)
    same_params(again.params, fit(small).params)


def test_periodic_checkpoints_are_written(tmp_path, small, monkeypatch):
    from mrvi_repro.model import _checkpoint

    saved = []
    monkeypatch.setattr(
        _checkpoint.Checkpoint, "save", lambda self, state: saved.append(state.epoch)
    )
    monkeypatch.setattr(_checkpoint.Checkpoint, "clear", lambda self: None)
    fit(small, TrainConfig(**{**TRAIN.__dict__, "checkpoint_every": 2}), checkpoint_dir=tmp_path)
    assert saved == [2, 4, 6]


def test_the_best_validation_epoch_is_kept(small):
    train = TrainConfig(**{**TRAIN.__dict__, "max_epochs": 12, "early_stopping": False})
    best = fit(small, train)
    last = fit(small, TrainConfig(**{**train.__dict__, "restore_best": False}))
    val = best.history["val_neg_elbo"].to_numpy()
    assert best.params_epoch == int(np.argmin(val)) + 1
    assert last.params_epoch == 12
    # the kept parameters reproduce the best epoch's validation ELBO, the last ones the last's
    cells = small[np.setdiff1d(np.arange(small.n_obs), best.train_indices)]
    gap = abs(best.elbo(cells).mean() - val.min()) / val.min()
    assert gap < 0.05
    if best.params_epoch != 12:
        assert best.elbo(cells).mean() < last.elbo(cells).mean()


def test_params_epoch_is_saved(tmp_path, small):
    model = SCVI.fit(small, config=SCVIConfig(n_latent=4), train=TRAIN, seed=0)
    model.save(tmp_path / "m")
    assert SCVI.load(tmp_path / "m").params_epoch == model.params_epoch


def test_checkpoint_every_must_not_be_negative():
    with pytest.raises(ValueError, match="checkpoint_every"):
        TrainConfig(checkpoint_every=-1)
