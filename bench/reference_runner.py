"""Train the reference MrVI (scvi-tools 1.4.2 or 1.5.x) once and report speed as JSON.

This script runs inside a reference virtual environment created by
``bench/reference_env.sh`` (Python 3.11, scvi-tools 1.4.2, CPU torch, CPU jax; or Python 3.12,
scvi-tools 1.5.x, whose MrVI is torch only: ``--backend torch``).
It never imports ``mrvi_repro``: it is the scvi-tools side of the speed
comparison with our own JAX MrVI.

It loads an AnnData (raw counts in ``X``), registers it with
``scvi.external.MRVI.setup_anndata(..., backend=...)``, builds the model with
its defaults and trains it on CPU for exactly ``--epochs`` epochs, early
stopping off and the default KL warm-up (20 epochs), on exactly the train /
validation split given by ``--train-indices`` (every other row is
validation). Exactly one JSON line is written to stdout; everything else
(scvi-tools, Lightning and XLA chatter, our own log) goes to stderr.

How the split is enforced
-------------------------
``DataSplitter`` (``scvi/dataloaders/_data_splitting.py``) accepts
``external_indexing=[train_idx, val_idx, test_idx]``; when it is given,
``setup()`` uses those arrays verbatim and ignores ``train_size`` /
``validation_size`` / ``shuffle_set_split`` (and, unlike the size-based path,
never moves a tiny last batch's cells from train to validation). Both
``JaxTrainingMixin.train`` (``scvi/model/base/_jaxmixin.py``) and
``UnsupervisedTrainingMixin.train`` (``scvi/model/base/_training_mixin.py``,
used by the torch backend) forward ``datasplitter_kwargs`` to it, so we pass
``datasplitter_kwargs={"external_indexing": [train, val, empty]}``. The split
is verified twice: a callback checks the ``indices`` of the train and
validation ``AnnDataLoader`` that Lightning actually iterates, and after
training ``model.train_indices`` / ``model.validation_indices`` are compared
with the requested sets.

What ``val_neg_elbo`` contains
--------------------------
``val_neg_elbo`` is ``model.history["elbo_validation"]`` after the last epoch. It
is a *loss* (the negative ELBO, positive, lower is better), a per-cell mean
over the whole validation set (not a mean of minibatch means and not a sum):

* ``ElboMetric`` (``scvi/train/_metrics.py``) accumulates, over all validation
  minibatches of the epoch, the per-minibatch *sums* over cells of each
  component and divides by the total number of validation cells;
  ``TrainingPlan._create_elbo_metric_components``
  (``scvi/train/_trainingplans.py``) defines
  ``elbo = reconstruction_loss + kl_local + kl_global / n_val``; MrVI returns
  no ``kl_global`` so that term is 0.
* ``kl_local`` is logged *unweighted*: the KL warm-up weight multiplies only
  the training objective (``loss``), so ``elbo_validation`` is always the
  kl-weight-1 quantity.
* Per cell, from ``MrVAE.loss`` (JAX: ``scvi/external/mrvi_jax/_module.py``;
  the torch ``scvi/external/mrvi_torch/_module.py`` is the same):

  - ``reconstruction_loss = -sum_g log NB(x_g | mu_g, theta_g)`` where the
    log-pmf is ``log_nb_positive`` (``scvi/distributions/_negative_binomial.py``,
    called by ``JaxNegativeBinomialMeanDisp.log_prob`` for JAX and by
    ``NegativeBinomial.log_prob`` for torch) =
    ``theta*(log(theta+eps) - log(theta+mu+eps)) + x*(log(mu+eps) -
    log(theta+mu+eps)) + lgamma(x+theta) - lgamma(theta) - lgamma(x+1)``
    with ``eps = 1e-8``. **It includes the ``-log(x!) = -lgamma(x+1)`` term**,
    i.e. it is the full, normalised NB log-likelihood.
  - ``kl_u = log q(u|x,s) - log p(u)`` evaluated at ONE reparameterised
    sample ``u ~ q(u|x,s)`` (a single-sample Monte-Carlo KL, since the prior
    on ``u`` is a 20-component Gaussian mixture), ``log q`` summed over the
    ``n_latent_u`` dimensions.
  - ``kl_z = -sum_k log N(eps_k | 0, exp(z_u_prior_scale)=1)`` with
    ``eps = z - z_base`` the (deterministic, ``qz use_map=True``) residual of
    the u->z attention block; this is a negative log prior density including
    the ``0.5*log(2*pi)`` constant per dimension, not an analytic KL.
  - ``kl_local = kl_u + kl_z``.

  In validation the modules run in eval mode (no dropout) but ``u`` is still
  sampled, so ``val_neg_elbo`` is itself a (seeded) one-sample estimate.

Timing
------
A Lightning callback records ``perf_counter`` at ``on_train_epoch_start`` and
at ``on_train_epoch_end``; in Lightning 2.x the end-of-epoch validation loop
runs before ``on_train_epoch_end``, so each epoch time includes the
validation pass (this is checked at run time). For JAX the first epoch
includes XLA compilation of the training and validation steps (and one more
compilation for each ragged last minibatch); parameter initialisation
(``JaxModuleInit.on_train_start``) happens before the first epoch starts and
is not counted.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import package_version, peak_rss_mb, reset_peak_rss

LOG = logging.getLogger("reference_runner")


def _redirect_stdout_to_stderr() -> int:
    """Send everything written to file descriptor 1 to stderr.

    Returns
    -------
    int
        A duplicate of the original stdout descriptor, used for the final
        JSON line only.
    """
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return saved


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line.

    Parameters
    ----------
    argv
        Arguments (without the program name); ``None`` reads ``sys.argv``.

    Returns
    -------
    argparse.Namespace
        The parsed arguments.
    """
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--h5ad", required=True, help="AnnData with raw counts in X")
    p.add_argument("--train-indices", required=True, help=".npy of training row indices")
    p.add_argument("--sample-key", default="sample")
    p.add_argument("--batch-key", default="batch", help="obs column or 'none'")
    p.add_argument("--epochs", type=int, required=True)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backend", choices=("jax", "torch"), default="jax")
    p.add_argument(
        "--analyses",
        default="",
        help=f"after training, time these post-hoc calls (comma-separated, of {ANALYSES})",
    )
    p.add_argument("--covariate", default="group", help="binary sample covariate of DA and DE")
    p.add_argument("--de-mc-samples", type=int, default=100, help="the JAX reference's default")
    args = p.parse_args(argv)
    args.analyses = [a for a in args.analyses.split(",") if a]
    unknown = sorted(set(args.analyses) - set(ANALYSES))
    if unknown:
        p.error(f"unknown analyses {unknown}; choose from {ANALYSES}")
    if args.epochs < 1:
        p.error("--epochs must be >= 1")
    if args.batch_size < 1:
        p.error("--batch-size must be >= 1")
    return args


#: Post-hoc calls the runner can time, named as in ``bench/posthoc.py``.
ANALYSES = ("distances", "da", "de")


def time_analyses(model: Any, adata: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Time the reference's post-hoc calls, each with its own peak RSS (``VmHWM`` reset first).

    ``distances``: ``get_local_sample_distances(groupby="cell_type", keep_cell=False)`` (group
    means only, as our rule writes); ``da``: ``differential_abundance`` of ``--covariate``; ``de``:
    ``differential_expression`` of ``--covariate`` with ``--de-mc-samples`` draws, no LFCs.
    """
    calls = {
        "distances": lambda: model.get_local_sample_distances(
            adata, groupby="cell_type", keep_cell=False
        ),
        "da": lambda: model.differential_abundance(adata, sample_cov_keys=[args.covariate]),
        "de": lambda: model.differential_expression(
            adata, sample_cov_keys=[args.covariate], mc_samples=args.de_mc_samples
        ),
    }
    out = {}
    for name in args.analyses:
        reset_peak_rss()
        start = time.perf_counter()
        calls[name]()
        out[name] = {"seconds": time.perf_counter() - start, "peak_rss_mb": peak_rss_mb()}
        LOG.info(
            "%s: %.1f s, peak RSS %.0f MiB", name, out[name]["seconds"], out[name]["peak_rss_mb"]
        )
    return out


def load_split(path: str, n_obs: int) -> tuple[np.ndarray, np.ndarray]:
    """Read the training indices and derive the validation indices.

    Parameters
    ----------
    path
        ``.npy`` file holding a 1-D array of integer row indices.
    n_obs
        Number of rows of the AnnData.

    Returns
    -------
    train_idx, val_idx
        ``int64`` arrays; ``val_idx`` is every row not in ``train_idx``,
        ascending.

    Raises
    ------
    ValueError
        If the indices are not integers, out of range, duplicated, or leave
        no validation or no training cells.
    """
    raw = np.load(path)
    if raw.ndim != 1 or not np.issubdtype(raw.dtype, np.integer):
        raise ValueError(f"{path}: expected a 1-D integer array, got {raw.dtype} {raw.shape}")
    train_idx = raw.astype(np.int64)
    if train_idx.size == 0:
        raise ValueError(f"{path}: empty training index")
    if train_idx.min() < 0 or train_idx.max() >= n_obs:
        raise ValueError(f"{path}: indices outside [0, {n_obs})")
    if np.unique(train_idx).size != train_idx.size:
        raise ValueError(f"{path}: duplicated indices")
    val_idx = np.setdiff1d(np.arange(n_obs, dtype=np.int64), train_idx)
    if val_idx.size == 0:
        raise ValueError(f"{path}: every cell is in the training set; no validation cells")
    return train_idx, val_idx


def make_epoch_timer(train_idx: np.ndarray, val_idx: np.ndarray) -> Any:
    """Build the Lightning callback that times epochs and checks the split.

    Parameters
    ----------
    train_idx, val_idx
        The requested split; the data loaders Lightning iterates must use
        exactly these rows.

    Returns
    -------
    lightning.pytorch.Callback
        Callback with an ``epoch_s`` list of per-epoch wall times (seconds).
    """
    from lightning.pytorch import Callback

    want_train = np.sort(train_idx)
    want_val = np.sort(val_idx)

    def _check(loader: Any, want: np.ndarray, what: str) -> None:
        if isinstance(loader, (list, tuple)):
            loader = loader[0]
        got = getattr(loader, "indices", None)
        if got is None:
            raise RuntimeError(f"cannot read the {what} loader's indices")
        if not np.array_equal(np.sort(np.asarray(got)), want):
            raise RuntimeError(f"the {what} loader does not use the requested {what} indices")

    class EpochTimer(Callback):
        """Wall time from train-epoch start to train-epoch end (incl. validation)."""

        def __init__(self) -> None:
            super().__init__()
            self.epoch_s: list[float] = []
            self._t0 = 0.0
            self._val_end = -1.0
            self.split_checked = False

        def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
            if not self.split_checked:
                _check(trainer.train_dataloader, want_train, "training")
                _check(trainer.val_dataloaders, want_val, "validation")
                self.split_checked = True
            self._t0 = time.perf_counter()

        def on_validation_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            self._val_end = time.perf_counter()

        def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            t1 = time.perf_counter()
            if self._val_end < self._t0:
                raise RuntimeError("validation did not run inside the timed epoch")
            self.epoch_s.append(t1 - self._t0)
            LOG.info(
                "epoch %d: %.3f s (validation ended %.3f s before epoch end)",
                len(self.epoch_s),
                t1 - self._t0,
                t1 - self._val_end,
            )

    return EpochTimer()


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Train the reference MrVI and collect the measurements.

    Parameters
    ----------
    args
        Parsed command line (see :func:`parse_args`).

    Returns
    -------
    dict
        The JSON record described in the module docstring.
    """
    import anndata as ad
    import scvi
    from packaging.version import Version

    scvi.settings.seed = args.seed
    batch_key = None if args.batch_key.lower() == "none" else args.batch_key

    adata = ad.read_h5ad(args.h5ad)
    train_idx, val_idx = load_split(args.train_indices, adata.n_obs)
    n_samples = int(adata.obs[args.sample_key].nunique())
    n_batches = int(adata.obs[batch_key].nunique()) if batch_key is not None else 1
    LOG.info(
        "data: %d cells x %d genes, %d samples, %d batches; %d train / %d validation",
        adata.n_obs,
        adata.n_vars,
        n_samples,
        n_batches,
        train_idx.size,
        val_idx.size,
    )

    # scvi-tools 1.5 dropped the JAX MrVI: its MRVI is the torch model and takes no backend.
    single_backend = Version(scvi.__version__) >= Version("1.5")
    if single_backend and args.backend != "torch":
        msg = f"scvi-tools {scvi.__version__} has only the torch MrVI (asked: {args.backend})"
        raise SystemExit(msg)
    backend = {} if single_backend else {"backend": args.backend}
    scvi.external.MRVI.setup_anndata(
        adata, sample_key=args.sample_key, batch_key=batch_key, **backend
    )
    model = scvi.external.MRVI(adata)
    LOG.info("model class: %s", type(model).__name__)
    expected = "MRVI" if single_backend else "JaxMRVI" if args.backend == "jax" else "TorchMRVI"
    if type(model).__name__ != expected:
        raise RuntimeError(f"expected {expected}, got {type(model).__name__}")

    timer = make_epoch_timer(train_idx, val_idx)
    model.train(
        max_epochs=args.epochs,
        accelerator="cpu",
        devices=1,
        batch_size=args.batch_size,
        early_stopping=False,
        datasplitter_kwargs={
            "external_indexing": [train_idx, val_idx, np.array([], dtype=np.int64)]
        },
        callbacks=[timer],
        enable_progress_bar=False,
    )

    if not timer.split_checked:
        raise RuntimeError("the split was never checked")
    if set(np.asarray(model.train_indices).tolist()) != set(train_idx.tolist()):
        raise RuntimeError("model.train_indices differ from the requested training indices")
    if set(np.asarray(model.validation_indices).tolist()) != set(val_idx.tolist()):
        raise RuntimeError("model.validation_indices differ from the requested validation set")
    if len(timer.epoch_s) != args.epochs:
        raise RuntimeError(f"trained {len(timer.epoch_s)} epochs, expected {args.epochs}")

    elbo_hist = model.history["elbo_validation"]
    if len(elbo_hist) != args.epochs:
        raise RuntimeError(f"elbo_validation has {len(elbo_hist)} entries, not {args.epochs}")
    val_neg_elbo = float(elbo_hist.iloc[-1, 0])

    LOG.info("epoch times (s): %s", ", ".join(f"{t:.3f}" for t in timer.epoch_s))
    steady = statistics.median(timer.epoch_s[1:]) if args.epochs > 1 else None
    train_peak = peak_rss_mb()
    analyses = time_analyses(model, adata, args)
    return {
        "backend": args.backend,
        "n_cells": int(adata.n_obs),
        "n_genes": int(adata.n_vars),
        "n_samples": n_samples,
        "n_batches": n_batches,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "first_epoch_s": timer.epoch_s[0],
        "steady_epoch_s": steady,
        "cells_per_s": (train_idx.size / steady) if steady else None,
        "val_neg_elbo": val_neg_elbo,
        "peak_rss_mb": train_peak,
        "analyses": analyses,
        "de_mc_samples": args.de_mc_samples,
        "scvi_version": scvi.__version__,
        "jax_version": package_version("jax"),
        "torch_version": package_version("torch"),
    }


def main(argv: list[str] | None = None) -> int:
    """Entry point: train, then print one JSON line on the original stdout.

    Parameters
    ----------
    argv
        Arguments (without the program name); ``None`` reads ``sys.argv``.

    Returns
    -------
    int
        Process exit status.
    """
    args = parse_args(argv)
    json_fd = _redirect_stdout_to_stderr()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    LOG.addHandler(handler)
    LOG.setLevel(logging.INFO)
    LOG.propagate = False
    record = run(args)
    with os.fdopen(json_fd, "w") as out:
        out.write(json.dumps(record) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
