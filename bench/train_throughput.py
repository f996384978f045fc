"""Train our MrVI once on simulated (or given) counts and report its training speed as JSON.

Usage::

    .venv/bin/python bench/train_throughput.py [--n-cells 10000 --n-genes 2000 --n-samples 32
        --n-batches 2 --epochs 10 --batch-size 128 --seed 0] [--encoder-sample-aware]
    .venv/bin/python bench/train_throughput.py --h5ad DATA.h5ad --train-indices TRAIN.npy
        --epochs 10 --batch-size 128 --seed 0

Exactly one JSON line goes to stdout; everything else (our log, JAX warnings) goes to stderr.

Data
----
Without ``--h5ad`` the counts come from :func:`mrvi_repro.data.simulate.simulate_base` with 5 cell types
(negative-binomial counts, samples nested in batches; ``--seed`` seeds the simulation) and the
split is a seeded random 90 / 10 train / validation split (:func:`train_split`, also seeded by
``--seed``). The simulation runs in a *spawned child process* that writes the data to a temporary
``.h5ad`` + ``.npy``; this process then reads them exactly as it reads ``--h5ad`` /
``--train-indices``. So the peak RSS reported never contains the simulator's working memory, nor
scanpy (which ``mrvi_repro.data.simulate`` imports), and it is measured the same way as the reference's
(``bench/reference_runner.py`` also reads an ``.h5ad``). ``bench/compare_reference.py`` writes the
data once and passes the same files to both models. ``--n-cells`` ... ``--n-batches`` are ignored
when ``--h5ad`` is given (the record reports the data's actual sizes).

Model and training
------------------
``MrVI.fit`` with the default :class:`MrVIConfig` (``--encoder-sample-aware`` sets
``encoder_sample_aware=True``, the reference's q(u | x, s) encoder) and
``TrainConfig(max_epochs=--epochs, batch_size=--batch-size, early_stopping=False)``: exactly
``--epochs`` epochs, KL warm-up over 20 epochs as in the reference, ``seed=--seed``.
``--max-dense-gib`` sets ``TrainConfig.max_dense_gib`` (``0``: minibatches streamed from the
host's sparse counts; the record's ``streamed`` says which path trained).

What the figures mean (matched to ``bench/reference_runner.py``)
----------------------------------------------------------------
* ``epoch_s``: ``model.epoch_seconds``, the wall time of each epoch from the start of its
  training pass to the end of its validation pass (the validation pass IS included, as in the
  reference, whose Lightning callback times ``on_train_epoch_start`` to ``on_train_epoch_end``,
  after the validation loop). Both values are synchronous: our epoch ends with host reads of the
  summed losses. Not in ``epoch_s``: parameter initialisation and compilation (ours: ``compile_s``,
  see ``first_epoch_s``; the reference's initialisation, ``JaxModuleInit.on_train_start``, runs
  before its first epoch). Excluded on our side only, with no reference counterpart inside an epoch: the one-off dense device copy of the counts and the
  per-cell log(x!) (the reference's data loader instead densifies each minibatch inside the epoch).
  These one-off costs are reported as ``setup_s`` = wall time of ``MrVI.fit`` minus the sum of
  the epoch times and ``compile_s``.
* ``first_epoch_s``: ``compile_s`` + epoch 1. ``MrVI.fit`` initialises the parameters and
  compiles the epoch kernel (training steps and validation pass in one kernel) before its first
  epoch, reporting the time as ``model.compile_seconds`` (``compile_s`` here); the sum is what the
  reference's JAX first epoch contains (compiling its training and validation steps) plus our
  parameter initialisation, which the reference does outside its first epoch.
* ``steady_epoch_s``: median of epochs 2..N (``None`` with one epoch).
* ``cells_per_s``: training cells / ``steady_epoch_s``. As in the reference, the time of the
  validation pass is in the denominator while only training cells are counted.
* ``val_neg_elbo``: ``history["val_neg_elbo"]`` after the last epoch: per-cell mean negative ELBO over the
  validation cells with the full NB log-likelihood (log x! included) and KL weight 1, the same
  definition as the reference's ``elbo_validation`` (one draw of u per cell, no dropout). Lower is
  better.
* ``peak_rss_mb``: the high-water RSS (``VmHWM``) of this process at the end, in MiB
  (imports, data loading and training); ``rss_before_fit_mb`` is the same just before ``fit``.
* ``rss_phases_mb``: where the memory of ``fit`` goes: the RSS and the high-water RSS
  (``VmRSS``, ``VmHWM``, MiB) at ``before_fit``, then at the fit's own log records:
  ``data_ready`` (counts and codes on the device, before any kernel: the "training ..." record),
  ``compiled`` (parameters initialised, kernels compiled or loaded from the compilation cache),
  ``epoch_1`` and ``last_epoch``.
* ``fit_s``: wall time of the whole ``MrVI.fit`` call.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import package_version, peak_rss_mb, rss_mb

LOG = logging.getLogger("train_throughput")

#: Fraction of cells in the training set of the simulated split.
TRAIN_FRACTION = 0.9
#: Cell types of the simulated data.
N_CELL_TYPES = 5


def add_data_args(p: argparse.ArgumentParser) -> None:
    """Add the flags shared with ``compare_reference.py`` (data sizes, schedule, seed)."""
    p.add_argument("--n-cells", type=int, default=10_000)
    p.add_argument("--n-genes", type=int, default=2_000)
    p.add_argument("--n-samples", type=int, default=32)
    p.add_argument("--n-batches", type=int, default=2)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--seed", type=int, default=0, help="seeds simulation, split and training")
    p.add_argument(
        "--encoder-sample-aware",
        action="store_true",
        help="MrVIConfig(encoder_sample_aware=True): the reference's q(u | x, s) encoder",
    )


def check_args(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Reject impossible sizes with an argparse error."""
    for name in ("n_cells", "n_genes", "n_samples", "n_batches", "epochs", "batch_size"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.n_cells < 10:
        p.error("--n-cells must be >= 10 (the validation set needs cells)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line (``None`` reads ``sys.argv``)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_args(p)
    p.add_argument("--h5ad", help="use this AnnData (raw counts in X) instead of simulating")
    p.add_argument(
        "--train-indices", help=".npy of training row indices (needs --h5ad); others validate"
    )
    p.add_argument("--sample-key", default="sample")
    p.add_argument("--batch-key", default="batch")
    p.add_argument(
        "--max-dense-gib",
        type=float,
        default=None,
        help="TrainConfig.max_dense_gib (default: TrainConfig's); 0 streams the minibatches",
    )
    args = p.parse_args(argv)
    check_args(p, args)
    if args.train_indices and not args.h5ad:
        p.error("--train-indices needs --h5ad")
    return args


def train_split(n_obs: int, seed: int) -> np.ndarray:
    """Return the seeded 90 % training rows (sorted ``int64``); the other rows validate."""
    perm = np.random.default_rng(seed).permutation(n_obs)
    n_train = min(n_obs - 1, max(1, round(TRAIN_FRACTION * n_obs)))
    return np.sort(perm[:n_train]).astype(np.int64)


def write_dataset(
    out_dir: str | Path,
    *,
    n_cells: int,
    n_genes: int,
    n_samples: int,
    n_batches: int,
    seed: int,
) -> tuple[Path, Path]:
    """Simulate the benchmark data and write ``data.h5ad`` and ``train_indices.npy``.

    ``obs`` keeps ``sample``, ``batch``, ``cell_type`` and ``group`` (a binary sample covariate:
    every other sample, for the analyses' benchmarks).

    Parameters
    ----------
    out_dir
        Folder to write into (created).
    n_cells, n_genes, n_samples, n_batches, seed
        Passed to :class:`mrvi_repro.settings.data.SimulationParams` (5 cell types); ``seed`` also seeds
        the split.

    Returns
    -------
    h5ad, train_indices
        Paths of the two files.
    """
    from mrvi_repro.data.simulate import simulate_base
    from mrvi_repro.settings.data import SimulationParams

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    params = SimulationParams(
        n_cells=n_cells,
        n_genes=n_genes,
        n_cell_types=N_CELL_TYPES,
        n_samples=n_samples,
        n_batches=n_batches,
        seed=seed,
    )
    adata = simulate_base(params)
    # A binary sample covariate for the analyses' benchmarks: every other sample (sorted by name).
    samples = sorted(adata.obs["sample"].astype(str).unique())
    half = {s: ("g1" if i % 2 else "g0") for i, s in enumerate(samples)}
    adata.obs["group"] = pd.Categorical(adata.obs["sample"].astype(str).map(half))
    # Keep only what both models read; older anndata (the reference venv's) reads this plainly.
    adata.obs = adata.obs[["sample", "batch", "cell_type", "group"]].copy()
    adata.uns.clear()
    h5ad, idx = out / "data.h5ad", out / "train_indices.npy"
    adata.write_h5ad(h5ad)
    np.save(idx, train_split(adata.n_obs, seed))
    return h5ad, idx


def simulate_in_child(args: argparse.Namespace, out_dir: str) -> tuple[Path, Path, float]:
    """Run :func:`write_dataset` in a spawned process so its memory is not in our peak RSS."""
    start = time.perf_counter()
    ctx = multiprocessing.get_context("spawn")
    proc = ctx.Process(
        target=write_dataset,
        args=(out_dir,),
        kwargs={
            "n_cells": args.n_cells,
            "n_genes": args.n_genes,
            "n_samples": args.n_samples,
            "n_batches": args.n_batches,
            "seed": args.seed,
        },
    )
    proc.start()
    proc.join()
    if proc.exitcode != 0:
        msg = f"simulating the data failed (child exit code {proc.exitcode})"
        raise RuntimeError(msg)
    out = Path(out_dir)
    return out / "data.h5ad", out / "train_indices.npy", time.perf_counter() - start


class _PhaseMemory(logging.Handler):
    """Record the RSS and its high-water mark at the training log's milestones (see the docstring)."""

    PHASES = (("training ", "data_ready"), ("initialised and compiled", "compiled"))

    def __init__(self) -> None:
        super().__init__()
        self.phases: dict[str, dict[str, float]] = {}

    def mark(self, phase: str) -> None:
        """Record the memory now as ``phase``."""
        # Unrounded, like ``peak_rss_mb``: rounding up one and not the other broke their order.
        self.phases[phase] = {"rss": rss_mb(), "hwm": peak_rss_mb()}

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        for prefix, phase in self.PHASES:
            if message.startswith(prefix):
                self.mark(phase)
        if message.startswith("epoch "):
            if "epoch_1" not in self.phases:
                self.mark("epoch_1")
            self.mark("last_epoch")


def _load_train_indices(path: str | Path, n_obs: int) -> np.ndarray:
    """Read and check a 1-D integer ``.npy`` of distinct training rows leaving some to validate."""
    raw = np.load(path)
    if raw.ndim != 1 or not np.issubdtype(raw.dtype, np.integer):
        msg = f"{path}: expected a 1-D integer array, got {raw.dtype} {raw.shape}"
        raise ValueError(msg)
    idx = raw.astype(np.int64)
    if idx.size == 0 or idx.min() < 0 or idx.max() >= n_obs or np.unique(idx).size != idx.size:
        msg = f"{path}: indices must be distinct, non-empty and within [0, {n_obs})"
        raise ValueError(msg)
    if idx.size == n_obs:
        msg = f"{path}: every cell is in the training set; no validation cells"
        raise ValueError(msg)
    return idx


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Load or simulate the data, train once and collect the record described in the docstring."""
    with tempfile.TemporaryDirectory(prefix="mrvi_bench_") as tmp:
        simulate_s = None
        if args.h5ad:
            h5ad, idx_path = Path(args.h5ad), args.train_indices
        else:
            LOG.info("simulating the data in a child process")
            h5ad, idx_path, simulate_s = simulate_in_child(args, tmp)

        import anndata as ad

        start = time.perf_counter()
        adata = ad.read_h5ad(h5ad)
        load_s = time.perf_counter() - start
        train_idx = (
            _load_train_indices(idx_path, adata.n_obs)
            if idx_path
            else train_split(adata.n_obs, args.seed)
        )

    import jax

    from mrvi_repro import __version__
    from mrvi_repro.model import MrVI, MrVIConfig, TrainConfig

    config = MrVIConfig(**({"encoder_sample_aware": True} if args.encoder_sample_aware else {}))
    train = TrainConfig(max_epochs=args.epochs, batch_size=args.batch_size, early_stopping=False)
    if args.max_dense_gib is not None:
        train = dataclasses.replace(train, max_dense_gib=args.max_dense_gib)
    n_samples = int(adata.obs[args.sample_key].nunique())
    n_batches = int(adata.obs[args.batch_key].nunique())
    LOG.info(
        "data: %d cells x %d genes, %d samples, %d batches; %d train / %d validation",
        adata.n_obs,
        adata.n_vars,
        n_samples,
        n_batches,
        train_idx.size,
        adata.n_obs - train_idx.size,
    )
    phases = _PhaseMemory()
    phases.mark("before_fit")
    training_log = logging.getLogger("mrvi_repro.model._training")
    training_log.addHandler(phases)
    start = time.perf_counter()
    model = MrVI.fit(
        adata,
        sample_key=args.sample_key,
        batch_key=args.batch_key,
        config=config,
        train=train,
        seed=args.seed,
        train_indices=train_idx,
    )
    fit_s = time.perf_counter() - start
    peak_rss = peak_rss_mb()
    training_log.removeHandler(phases)

    hist = model.history
    if len(hist) != args.epochs:
        msg = f"trained {len(hist)} epochs, expected {args.epochs}"
        raise RuntimeError(msg)
    epoch_s = [float(s) for s in model.epoch_seconds]
    steady = statistics.median(epoch_s[1:]) if len(epoch_s) > 1 else None
    LOG.info("epoch times (s): %s", ", ".join(f"{t:.3f}" for t in epoch_s))
    n_params = int(sum(np.size(p) for p in jax.tree_util.tree_leaves(model.params)))
    device = jax.devices()[0]
    return {
        "model": "mrvi_repro",
        "data": str(args.h5ad) if args.h5ad else "simulated",
        "n_cells": int(adata.n_obs),
        "n_genes": int(adata.n_vars),
        "n_samples": n_samples,
        "n_batches": n_batches,
        "n_train": int(train_idx.size),
        "n_val": int(adata.n_obs - train_idx.size),
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "streamed": train.streams(adata.n_obs, adata.n_vars),
        "seed": args.seed,
        "encoder_sample_aware": bool(getattr(model.config, "encoder_sample_aware", False)),
        "first_epoch_s": model.compile_seconds + epoch_s[0],
        "compile_s": model.compile_seconds,
        "steady_epoch_s": steady,
        "cells_per_s": (train_idx.size / steady) if steady else None,
        "epoch_s": epoch_s,
        "epoch_s_includes_validation": True,
        "val_neg_elbo": float(hist["val_neg_elbo"].iloc[-1]),
        "train_loss": float(hist["train_loss"].iloc[-1]),
        "peak_rss_mb": peak_rss,
        "rss_before_fit_mb": phases.phases["before_fit"]["hwm"],
        "rss_phases_mb": phases.phases,
        "fit_s": fit_s,
        "setup_s": fit_s - sum(epoch_s) - model.compile_seconds,
        "load_s": load_s,
        "simulate_s": simulate_s,
        "n_params": n_params,
        "mrvi_repro_version": __version__,
        "jax_version": jax.__version__,
        "jaxlib_version": package_version("jaxlib"),
        "flax_version": package_version("flax"),
        "optax_version": package_version("optax"),
        "python_version": platform.python_version(),
        "platform": jax.default_backend(),
        "device": getattr(device, "device_kind", str(device)),
        "machine": platform.platform(),
        "cpu_count": os.cpu_count(),
    }


def main(argv: list[str] | None = None) -> int:
    """Parse, train, and print the one JSON line on the original stdout; return the exit status."""
    args = parse_args(argv)
    sys.stdout.flush()
    json_fd = os.dup(1)
    os.dup2(2, 1)  # anything else printed to stdout (ours or a library's) goes to stderr
    sys.stdout = sys.stderr
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    record = run(args)
    with os.fdopen(json_fd, "w") as out:
        out.write(json.dumps(record) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
