"""Checkpoints of a fit in progress: written every few epochs and on SIGTERM/SIGINT, resumed.

A checkpoint folder holds what the fitting loop needs to go on exactly where it stopped: the
parameters and the optimiser state (``state.npz``), the epochs done, the history rows, the best
validation negative ELBO so far with its parameters and epoch, and the state of the generator that orders
the minibatches (``state.json``); and ``fit.log``, the log of every attempt. Each epoch's random
key is derived from the seed and the epoch number, so a resumed fit takes the same steps as an
uninterrupted one and ends with the same parameters.

A checkpoint belongs to one fit: its ``fingerprint`` (model, configuration, training schedule
without the checkpoint frequency, seed, registry, cells and split) must match, else it is ignored
(logged) and the fit starts afresh.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Iterator

logger = logging.getLogger(__name__)

#: Signals that stop a fit at the end of the running epoch, after a checkpoint.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class TrainingInterrupted(RuntimeError):
    """A fit stopped on a signal after writing its checkpoint; a rerun resumes it."""


@dataclass
class TrainState:
    """Where a fit stands after ``epoch`` epochs (what :class:`Checkpoint` writes and reads)."""

    epoch: int
    flat: np.ndarray
    opt_leaves: list[np.ndarray]
    rows: list[dict[str, Any]]
    rng_state: dict[str, Any]
    best: float
    best_epoch: int
    since_best: int
    best_flat: np.ndarray | None


class Checkpoint:
    """A fit's checkpoint folder.

    Parameters
    ----------
    path
        The folder (created when first written).
    fingerprint
        Identity of the fit (:func:`fit_fingerprint`); a saved state with another one is ignored.
    every
        Write the state every this many epochs (0: only on a signal).
    """

    def __init__(self, path: str | Path, fingerprint: str, every: int) -> None:
        self.path = Path(path)
        self.fingerprint = fingerprint
        self.every = every
        self.stop_requested: int | None = None

    @property
    def log_file(self) -> Path:
        """The log of every attempt of this fit."""
        return self.path / "fit.log"

    def due(self, epochs_done: int) -> bool:
        """Whether the state is written after ``epochs_done`` epochs."""
        return self.stop_requested is not None or (self.every > 0 and epochs_done % self.every == 0)

    def save(self, state: TrainState) -> None:
        """Write the state; a crash while writing leaves the previous state readable."""
        self.path.mkdir(parents=True, exist_ok=True)
        arrays = {"epoch": np.asarray(state.epoch), "flat": state.flat}
        arrays.update({f"opt_{i}": leaf for i, leaf in enumerate(state.opt_leaves)})
        if state.best_flat is not None:
            arrays["best_flat"] = state.best_flat
        meta = {
            "fingerprint": self.fingerprint,
            "epoch": state.epoch,
            "n_opt_leaves": len(state.opt_leaves),
            "rows": state.rows,
            "rng_state": state.rng_state,
            "best": state.best,
            "best_epoch": state.best_epoch,
            "since_best": state.since_best,
        }
        tmp_npz, tmp_json = self.path / "state.tmp.npz", self.path / "state.json.tmp"
        with tmp_npz.open("wb") as fh:
            np.savez(fh, **arrays)
        tmp_json.write_text(json.dumps(meta))
        os.replace(tmp_npz, self.path / "state.npz")
        os.replace(tmp_json, self.path / "state.json")
        logger.info("checkpoint after epoch %d written to %s", state.epoch, self.path)

    def load(self) -> TrainState | None:
        """Read the saved state of this fit: ``None`` without one, or if another fit's or torn."""
        meta_path, npz_path = self.path / "state.json", self.path / "state.npz"
        if not (meta_path.exists() and npz_path.exists()):
            return None
        meta = json.loads(meta_path.read_text())
        if meta.get("fingerprint") != self.fingerprint:
            logger.warning(
                "checkpoint %s belongs to another fit (other data, settings or seed): ignored, "
                "starting afresh",
                self.path,
            )
            return None
        with np.load(npz_path) as arrays:
            if int(arrays["epoch"]) != meta["epoch"]:
                logger.warning("checkpoint %s was half-written: ignored", self.path)
                return None
            best_flat = arrays["best_flat"] if "best_flat" in arrays.files else None
            return TrainState(
                epoch=meta["epoch"],
                flat=arrays["flat"],
                opt_leaves=[arrays[f"opt_{i}"] for i in range(meta["n_opt_leaves"])],
                rows=meta["rows"],
                rng_state=meta["rng_state"],
                best=meta["best"],
                best_epoch=meta["best_epoch"],
                since_best=meta["since_best"],
                best_flat=best_flat,
            )

    def clear(self) -> None:
        """Remove the folder (the fit finished)."""
        shutil.rmtree(self.path, ignore_errors=True)

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        """Run one attempt of the fit: log to ``fit.log``, replaying earlier attempts, and stop.

        Records also go to ``fit.log`` (the earlier attempts' lines are logged first, marked);
        SIGTERM/SIGINT become a request to stop after the running epoch (main thread only).
        """
        self.path.mkdir(parents=True, exist_ok=True)
        if self.log_file.exists():
            for line in self.log_file.read_text().splitlines():
                logger.info("[earlier attempt] %s", line)
        handler = logging.FileHandler(self.log_file, mode="a")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():

            def request_stop(signum: int, frame: Any) -> None:
                self.stop_requested = signum
                logger.warning(
                    "%s received: stopping after this epoch, with a checkpoint",
                    signal.Signals(signum).name,
                )

            for sig in STOP_SIGNALS:
                previous[sig] = signal.signal(sig, request_stop)
        try:
            yield
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)
            root.removeHandler(handler)
            handler.close()


def fit_fingerprint(parts: dict[str, Any]) -> str:
    """Digest everything that makes a fit what it is (JSON-serialisable parts)."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()
