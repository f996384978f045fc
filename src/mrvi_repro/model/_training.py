"""The fitting loop: optimiser, training/validation split, minibatches, epochs, early stopping.

:func:`_train` runs the epochs of a model's Flax module on device-resident data (one jitted epoch
kernel, :func:`._kernels._epoch_fn`) or, for counts too large to densify, on host data streamed a
chunk of minibatches at a time (:class:`._streaming._Streamer`); both take the same steps with the
same keys. It logs one line per epoch and returns the parameters and the per-epoch history.
"""

from __future__ import annotations

import logging
import math
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd

from mrvi_repro._jax_cache import cached_array, compile_cached, signature

from ._checkpoint import TrainingInterrupted, TrainState
from ._data import _host_chunk
from ._kernels import _epoch_fn, _init_fn
from ._streaming import _Streamer

if TYPE_CHECKING:
    import flax.linen as nn

    from mrvi_repro.settings.model import TrainConfig

    from ._checkpoint import Checkpoint
    from ._registry import Registry

logger = logging.getLogger(__name__)

#: PRNG of training: XLA's RngBitGenerator compiles much faster than threefry on CPU (the
#: numbers are reproducible for a seed on one platform).
TRAIN_PRNG = "rbg"
#: Compile options of one-off kernels (parameter initialisation): they run once, so compile fast.
_ONE_OFF = {"xla_backend_optimization_level": 0}


class TrainTimings(NamedTuple):
    """Wall-clock seconds of a fit: kept in memory and in the log, never in a model's files."""

    #: Initialising the parameters and compiling the kernels, before the first epoch.
    compile_seconds: float
    #: Each epoch, from the start of its training pass to the end of its validation pass.
    epoch_seconds: tuple[float, ...]


def make_optimizer(train: TrainConfig) -> optax.GradientTransformation:
    """Adam with coupled weight decay and global-norm clipping (the reference's chain)."""
    return optax.chain(
        optax.clip_by_global_norm(train.max_grad_norm),
        optax.add_decayed_weights(train.weight_decay),
        optax.adam(train.lr, eps=train.adam_eps),
    )


def _padded_batches(index: np.ndarray, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Split ``index`` into equal minibatches; the last is padded with zero-weight repeats."""
    n_steps = max(1, math.ceil(len(index) / batch_size))
    pad = n_steps * batch_size - len(index)
    idx = np.concatenate([index, np.resize(index, pad)]) if pad else index
    weight = np.concatenate([np.ones(len(index)), np.zeros(pad)]).astype(np.float32)
    return idx.reshape(n_steps, batch_size).astype(np.int32), weight.reshape(n_steps, batch_size)


def _split(
    n: int, train: TrainConfig, rng: np.random.Generator, train_indices: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Training and validation rows: the given training rows, else a seeded random split."""
    if train_indices is None:
        perm = rng.permutation(n)
        n_train = train.n_train(n)
        return np.sort(perm[:n_train]), np.sort(perm[n_train:])
    train_idx = np.unique(np.asarray(train_indices, dtype=np.int64))
    if len(train_idx) == 0 or train_idx[0] < 0 or train_idx[-1] >= n:
        msg = f"train_indices must be non-empty rows in [0, {n})"
        raise ValueError(msg)
    return train_idx, np.setdiff1d(np.arange(n), train_idx)


def signal_name(signum: int) -> str:
    """Name of a signal number (``SIGTERM``)."""
    return signal.Signals(signum).name


def _train(
    module: nn.Module,
    name: str,
    registry: Registry,
    tc: TrainConfig,
    data: dict[str, Any],
    val_lf: float,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    seed: int,
    rng: np.random.Generator,
    *,
    stream: bool = False,
    checkpoint: Checkpoint | None = None,
) -> tuple[Any, pd.DataFrame, TrainTimings, int]:
    """Train the parameters of ``module`` on ``data``.

    Parameters
    ----------
    module
        The model's Flax module (it returns per-cell loss terms, see :mod:`._kernels`).
    name
        The model's name, for the log.
    registry
        The model's registry (its numbers of genes, samples and batches, for the log).
    tc
        The training schedule.
    data
        Counts ``x`` and ``sample``, ``batch`` and ``label`` codes of all cells: device arrays, or
        host counts and codes with ``stream``.
    val_lf
        Sum of log(x!) over the validation cells (the ELBO's constant).
    train_idx, val_idx
        Rows of the training and validation cells.
    seed
        Seed of the initialisation and of all sampling in training.
    rng
        Generator of each epoch's minibatch order (after it drew the split).
    stream
        Densify the minibatches from host data a chunk at a time (:class:`._streaming._Streamer`).
    checkpoint
        Resume from its saved state if it has one; write the state every ``checkpoint.every``
        epochs and, after a stop signal, at the end of the running epoch.

    Returns
    -------
    The fitted parameters (with a validation set and ``tc.restore_best``, those of the epoch with
    the lowest validation negative ELBO; else the last epoch's), the history, the wall-clock
    timings (also logged) and the epoch whose parameters are returned. The history has one row per
    epoch, only numbers that the seed fixes (two fits with one seed write identical files):
    ``epoch``, ``kl_weight``, ``train_<term>`` (each loss term per training cell:
    ``reconstruction``, the negative NB log-likelihood without the constant log x!, and the KL
    terms, unweighted), ``train_loss`` (the minimised objective per training cell:
    reconstruction + kl_weight x KL terms) and ``val_neg_elbo`` (the negative ELBO per validation
    cell: log x! included, KL weight 1; lower is better; early stopping watches it; absent without
    validation cells).

    Raises
    ------
    TrainingInterrupted
        After a stop signal, once the checkpoint is written.
    """
    key = jax.random.key(seed, impl=TRAIN_PRNG)
    key, init_key = jax.random.split(key)
    batch_size = min(tc.batch_size, len(train_idx))
    n_steps = math.ceil(len(train_idx) / batch_size)
    val_batches = _padded_batches(val_idx, min(1024, max(1, len(val_idx))))
    first_rows = train_idx[:batch_size]
    if stream:
        first = _host_chunk(data, first_rows)
    else:
        first = {k: v[jnp.asarray(first_rows)] for k, v in data.items()}
    optimizer = make_optimizer(tc)
    init, unravel, flat_shape = _init_fn(module, first)
    n_epochs = tc.epochs_for(len(train_idx) + len(val_idx))
    logger.info(
        "training %s: %d train / %d validation cells, %d genes, %d samples, %d batches, "
        "batch size %d, up to %d epochs, %d parameters%s",
        name,
        len(train_idx),
        len(val_idx),
        len(registry.genes),
        len(registry.samples),
        len(registry.batches),
        batch_size,
        n_epochs,
        flat_shape.size,
        ", minibatches streamed from the host" if stream else "",
    )
    if tc.early_stopping and not len(val_idx):
        logger.warning("no validation cells (train_indices holds every cell): no early stopping")
    opt_shape = jax.eval_shape(optimizer.init, flat_shape)
    if stream:
        runner: Any = _Streamer(
            module, optimizer, unravel, data, batch_size, n_steps, val_batches, key
        )
        jobs = runner.compile_jobs(flat_shape, opt_shape)
    else:
        val_dev = tuple(jnp.asarray(a) for a in val_batches)
        epoch_args = (
            flat_shape,
            opt_shape,
            data,
            jax.ShapeDtypeStruct((n_steps, batch_size), jnp.int32),
            jax.ShapeDtypeStruct((n_steps, batch_size), jnp.float32),
            *val_dev,
            key,
            jax.ShapeDtypeStruct((), jnp.float32),
        )
        jobs = [("train.epoch", _epoch_fn(module, optimizer, unravel), epoch_args)]
    # what the kernels close over besides their arguments (compile_cached's key)
    cache_key = (repr(module), repr(tc))
    start = time.perf_counter()
    # XLA releases the GIL: the epoch kernel (the largest) compiles in a thread while the
    # initialiser compiles and runs here.
    with ThreadPoolExecutor(max_workers=1) as pool:
        futures = [
            pool.submit(compile_cached, fn, args, name=kernel_name, key=cache_key)
            for kernel_name, fn, args in jobs
        ]
        # its argument is only the key: the inputs' and the parameters' shapes name it too
        init_id = (repr(module), signature(first), flat_shape.shape)
        # the parameters themselves are cached (a function of these and the seed): a warm
        # process loads no initialiser, whose executable costs more memory than the epoch's
        flat = jnp.asarray(
            cached_array(
                "train.init.params",
                (*init_id, seed),
                lambda: compile_cached(
                    init, (init_key,), name="train.init", key=init_id, options=_ONE_OFF
                )(init_key),
            )
        )
        opt_state = jax.jit(optimizer.init)(flat)
        kernels = [f.result() for f in futures]
    compile_seconds = time.perf_counter() - start
    logger.info("initialised and compiled in %.1f s", compile_seconds)
    if stream:
        runner.kernels = kernels
    else:
        train_epoch = kernels[0]
    rows, best, best_epoch, since_best, best_flat = [], math.inf, 0, 0, None
    epoch_seconds: list[float] = []
    start_epoch = 0
    state = checkpoint.load() if checkpoint is not None else None
    if state is not None:
        treedef = jax.tree_util.tree_structure(opt_state)
        flat = jnp.asarray(state.flat)
        opt_state = jax.tree_util.tree_unflatten(
            treedef, [jnp.asarray(a) for a in state.opt_leaves]
        )
        best_flat = None if state.best_flat is None else jnp.asarray(state.best_flat)
        rows, best, best_epoch, since_best = (
            state.rows,
            state.best,
            state.best_epoch,
            state.since_best,
        )
        rng.bit_generator.state = state.rng_state
        start_epoch = state.epoch
        logger.info(
            "resuming from the checkpoint after epoch %d (%s)", start_epoch, checkpoint.path
        )
    stopped_early = bool(rows) and tc.early_stopping and since_best >= tc.patience
    for epoch in range(start_epoch, 0 if stopped_early else n_epochs):
        start = time.perf_counter()
        kl_weight = min(1.0, epoch / tc.n_epochs_kl_warmup) if tc.n_epochs_kl_warmup > 0 else 1.0
        idx, weight = _padded_batches(rng.permutation(train_idx), batch_size)
        epoch_key = jax.random.fold_in(key, epoch)
        if stream:
            flat, opt_state, sums, vsums = runner.epoch(
                flat, opt_state, idx, weight, epoch_key, kl_weight
            )
        else:
            flat, opt_state, sums, vsums = train_epoch(
                flat,
                opt_state,
                data,
                jnp.asarray(idx),
                jnp.asarray(weight),
                *val_dev,
                epoch_key,
                jnp.float32(kl_weight),
            )
        sums = {k: float(v) / len(train_idx) for k, v in sums.items()}
        row = {"epoch": epoch + 1, "kl_weight": kl_weight}
        row.update({f"train_{k}": v for k, v in sums.items()})
        row["train_loss"] = sums["reconstruction"] + kl_weight * sum(
            v for k, v in sums.items() if k != "reconstruction"
        )
        if len(val_idx):
            vsums = {k: float(v) for k, v in vsums.items()}
            row["val_neg_elbo"] = (sum(vsums.values()) + val_lf) / len(val_idx)
            sums.update({f"validation {k}": v for k, v in vsums.items()})
        seconds = time.perf_counter() - start
        bad = [k for k, v in sums.items() if not math.isfinite(v)]
        if bad:
            msg = (
                f"training diverged in epoch {epoch + 1}: {', '.join(bad)} became NaN or infinite "
                f"(kl weight {kl_weight:.2f}); try a lower learning rate (lr={tc.lr})"
            )
            raise FloatingPointError(msg)
        rows.append(row)
        epoch_seconds.append(seconds)
        logger.info(
            "epoch %d/%d: train loss %.3f, validation negative ELBO %s, kl weight %.2f, %.2f s",
            epoch + 1,
            n_epochs,
            row["train_loss"],
            f"{row['val_neg_elbo']:.3f}" if "val_neg_elbo" in row else "n/a",
            kl_weight,
            seconds,
        )
        if "val_neg_elbo" in row:
            if row["val_neg_elbo"] < best - 1e-6:
                best, best_epoch, best_flat, since_best = row["val_neg_elbo"], epoch + 1, flat, 0
            else:
                since_best += 1
        stop = tc.early_stopping and since_best >= tc.patience
        if checkpoint is not None and (stop or epoch + 1 == n_epochs or checkpoint.due(epoch + 1)):
            checkpoint.save(
                TrainState(
                    epoch=epoch + 1,
                    flat=np.asarray(flat),
                    opt_leaves=[np.asarray(a) for a in jax.tree_util.tree_leaves(opt_state)],
                    rows=rows,
                    rng_state=rng.bit_generator.state,
                    best=best,
                    best_epoch=best_epoch,
                    since_best=since_best,
                    best_flat=None if best_flat is None else np.asarray(best_flat),
                )
            )
            if checkpoint.stop_requested is not None and not stop and epoch + 1 < n_epochs:
                msg = (
                    f"training of {name} stopped by {signal_name(checkpoint.stop_requested)} "
                    f"after epoch {epoch + 1}; the checkpoint in {checkpoint.path} resumes it "
                    "(run the same fit or rule again)"
                )
                raise TrainingInterrupted(msg)
        if stop:
            logger.info(
                "early stopping: the validation negative ELBO did not decrease in %d epochs",
                tc.patience,
            )
            break
    timings = TrainTimings(compile_seconds, tuple(epoch_seconds))
    if best_flat is not None and tc.restore_best:
        logger.info(
            "keeping the parameters of epoch %d (lowest validation negative ELBO %.3f)",
            best_epoch,
            best,
        )
        return jax.jit(unravel)(best_flat), pd.DataFrame(rows), timings, best_epoch
    return jax.jit(unravel)(flat), pd.DataFrame(rows), timings, len(rows)
