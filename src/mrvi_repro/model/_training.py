"""The fitting loop: optimiser, training/validation split, minibatches, epochs, early stopping.

:func:`_train` runs the epochs of a model's Flax module on device-resident data (one jitted epoch
kernel, :func:`._kernels._epoch_fn`) or, for counts too large to densify, on host data streamed a
chunk of minibatches at a time (:class:`._streaming._Streamer`); both take the same steps with the
same keys. It logs one line per epoch and returns the parameters and the per-epoch history.
"""

from __future__ import annotations

import logging
import math
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd

from ._data import _host_chunk
from ._kernels import _epoch_fn, _init_fn
from ._streaming import _Streamer

if TYPE_CHECKING:
    import flax.linen as nn

    from mrvi_repro.settings.model import TrainConfig

    from ._registry import Registry

logger = logging.getLogger(__name__)

#: PRNG of training: XLA's RngBitGenerator compiles much faster than threefry on CPU (the
#: numbers are reproducible for a seed on one platform).
TRAIN_PRNG = "rbg"
#: Compile options of one-off kernels (parameter initialisation): they run once, so compile fast.
_ONE_OFF = {"xla_backend_optimization_level": 0}


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
        n_train = n if train.train_size >= 1.0 else max(1, min(n - 1, round(train.train_size * n)))
        return np.sort(perm[:n_train]), np.sort(perm[n_train:])
    train_idx = np.unique(np.asarray(train_indices, dtype=np.int64))
    if len(train_idx) == 0 or train_idx[0] < 0 or train_idx[-1] >= n:
        msg = f"train_indices must be non-empty rows in [0, {n})"
        raise ValueError(msg)
    return train_idx, np.setdiff1d(np.arange(n), train_idx)


def _compile(fn: Any, args: tuple[Any, ...], options: dict[str, Any] | None = None) -> Any:
    """Compile jitted ``fn`` for the shapes of ``args`` (arrays or ShapeDtypeStructs)."""
    return fn.lower(*args).compile(options)


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
) -> tuple[Any, pd.DataFrame, float]:
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

    Returns
    -------
    The fitted parameters, the history (one row per epoch) and the seconds spent initialising and
    compiling before the first epoch. History columns: ``epoch``, ``kl_weight``, ``train_<term>``
    (each loss term per training cell: ``reconstruction``, the negative NB log-likelihood without
    the constant log x!, and the KL terms, unweighted), ``train_loss`` (the minimised objective
    per training cell: reconstruction + kl_weight x KL terms), ``val_neg_elbo`` (the negative ELBO
    per validation cell: log x! included, KL weight 1; lower is better; early stopping watches
    it; absent without validation cells) and ``seconds``.
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
        jobs = [(_epoch_fn(module, optimizer, unravel), epoch_args)]
    start = time.perf_counter()
    # XLA releases the GIL: the epoch kernel (the largest) compiles in a thread while the
    # initialiser compiles and runs here.
    with ThreadPoolExecutor(max_workers=1) as pool:
        futures = [pool.submit(_compile, fn, args) for fn, args in jobs]
        flat = _compile(init, (init_key,), _ONE_OFF)(init_key)
        opt_state = jax.jit(optimizer.init)(flat)
        kernels = [f.result() for f in futures]
    compile_seconds = time.perf_counter() - start
    logger.info("initialised and compiled in %.1f s", compile_seconds)
    if stream:
        runner.kernels = kernels
    else:
        train_epoch = kernels[0]
    rows, best, since_best = [], math.inf, 0
    for epoch in range(n_epochs):
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
        row["seconds"] = time.perf_counter() - start
        bad = [k for k, v in sums.items() if not math.isfinite(v)]
        if bad:
            msg = (
                f"training diverged in epoch {epoch + 1}: {', '.join(bad)} became NaN or infinite "
                f"(kl weight {kl_weight:.2f}); try a lower learning rate (lr={tc.lr})"
            )
            raise FloatingPointError(msg)
        rows.append(row)
        logger.info(
            "epoch %d/%d: train loss %.3f, validation negative ELBO %s, kl weight %.2f, %.2f s",
            epoch + 1,
            n_epochs,
            row["train_loss"],
            f"{row['val_neg_elbo']:.3f}" if "val_neg_elbo" in row else "n/a",
            kl_weight,
            row["seconds"],
        )
        if tc.early_stopping and "val_neg_elbo" in row:
            if row["val_neg_elbo"] < best - 1e-6:
                best, since_best = row["val_neg_elbo"], 0
            else:
                since_best += 1
                if since_best >= tc.patience:
                    logger.info(
                        "early stopping: the validation negative ELBO did not decrease in %d epochs",
                        tc.patience,
                    )
                    break
    return jax.jit(unravel)(flat), pd.DataFrame(rows), compile_seconds
