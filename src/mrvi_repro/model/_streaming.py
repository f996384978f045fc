"""Training on counts kept on the host: minibatches densified a chunk at a time and fed to the device.

When a dense copy of the counts would exceed ``TrainConfig.max_dense_gib``, training streams
instead: the counts stay on the host as they are (sparse, never densified whole), and each kernel
call gets a chunk of consecutive minibatches densified from them (:data:`STREAM_CHUNK_BYTES`),
scanned by the same step function with the same keys, so both paths take the same steps (the
same numbers on CPU); the validation pass streams the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

from ._data import _host_chunk
from ._kernels import _train_step, _validation_sums

if TYPE_CHECKING:
    from collections.abc import Iterator

    import flax.linen as nn
    import optax

#: Dense counts (minibatches x cells x genes float32) a streaming kernel call gets: about 64 steps
#: of 128 cells x 2,000 genes (64 MiB), so memory is bounded by the chunk, not by cells x genes.
STREAM_CHUNK_BYTES = 64 * 1024**2


def _stream_steps_fn(
    module: nn.Module, optimizer: optax.GradientTransformation, unravel: Any
) -> Any:
    """Build the kernel of a chunk of consecutive optimiser steps on densified minibatches.

    The chunk's arrays are (k, batch, ...). Steps whose ``active`` flag is off (padding of an
    epoch's last chunk) leave the parameters and optimiser state as they are and add nothing to the
    sums. Returns the per-step sums (k,).
    """
    train_step = _train_step(module, optimizer, unravel)

    @jax.jit
    def steps(
        flat: jax.Array,
        opt_state: Any,
        chunk: dict[str, jax.Array],
        weight: jax.Array,
        keys: jax.Array,
        active: jax.Array,
        kl_weight: jax.Array,
    ) -> Any:
        def run(carry: Any, batch: Any, w: jax.Array, key: jax.Array) -> Any:
            flat, opt_state, sums = train_step(*carry, batch, w, key, kl_weight)
            return (flat, opt_state), sums

        def body(carry: Any, inputs: Any) -> Any:
            batch, w, key, on = inputs
            shapes = jax.eval_shape(run, carry, batch, w, key)[1]

            def skip(carry: Any, *_: Any) -> Any:
                return carry, jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)

            return jax.lax.cond(on, run, skip, carry, batch, w, key)

        (flat, opt_state), sums = jax.lax.scan(
            body, (flat, opt_state), (chunk, weight, keys, active)
        )
        return flat, opt_state, sums

    return steps


def _stream_validation_fn(module: nn.Module, unravel: Any) -> Any:
    """Build the kernel of the per-batch validation sums of a chunk of densified batches."""

    @jax.jit
    def validate(flat: jax.Array, chunk: dict[str, jax.Array], weight: jax.Array, keys: Any) -> Any:
        params = unravel(flat)
        _, sums = jax.lax.scan(
            lambda c, i: (c, _validation_sums(module, params, *i)), None, (chunk, weight, keys)
        )
        return sums

    return validate


def _total(parts: list[dict[str, jax.Array]], n: int) -> dict[str, jax.Array]:
    """Sum per-step sums over the first ``n`` steps (one reduction, as the resident epoch's)."""
    return {k: _sum(jnp.concatenate([p[k] for p in parts])[:n]) for k in parts[0]}


_sum = jax.jit(jnp.sum)


class _Streamer:
    """Run epochs on host data: minibatches densified a chunk at a time and fed to the device.

    The steps, their keys and their order are those of the device-resident epoch
    (:func:`._kernels._epoch_fn`); only the grouping of steps into kernel calls differs. At most
    two chunks are in flight: the next one is densified on the host while the device runs the
    current one.
    """

    def __init__(
        self,
        module: nn.Module,
        optimizer: optax.GradientTransformation,
        unravel: Any,
        data: dict[str, Any],
        batch_size: int,
        n_steps: int,
        val_batches: tuple[np.ndarray, np.ndarray],
        key: jax.Array,
    ) -> None:
        self.data = data
        self.batch_size = batch_size
        self.n_steps = n_steps
        self.val_idx, self.val_weight = val_batches
        n_genes = data["x"].shape[1]
        self.k = max(1, min(n_steps, STREAM_CHUNK_BYTES // (batch_size * n_genes * 4)))
        val_rows = self.val_idx.shape[1]
        self.k_val = max(1, min(len(self.val_idx), STREAM_CHUNK_BYTES // (val_rows * n_genes * 4)))
        self.steps_fn = _stream_steps_fn(module, optimizer, unravel)
        self.val_fn = _stream_validation_fn(module, unravel)
        self.key = key
        self.kernels: list[Any] = []

    def _chunk_struct(self, k: int, rows: int) -> dict[str, jax.ShapeDtypeStruct]:
        n_genes = self.data["x"].shape[1]
        out = {"x": jax.ShapeDtypeStruct((k, rows, n_genes), jnp.float32)}
        for name in ("sample", "batch", "label"):
            out[name] = jax.ShapeDtypeStruct((k, rows), jnp.asarray(self.data[name][:1]).dtype)
        return out

    def _keys_struct(self, k: int) -> Any:
        return jax.eval_shape(lambda key: jax.random.split(key, k), self.key)

    def compile_jobs(
        self, flat_shape: Any, opt_shape: Any
    ) -> list[tuple[str, Any, tuple[Any, ...]]]:
        """Return the kernels to compile (training and validation chunks): names, kernels, shapes."""
        steps_args = (
            flat_shape,
            opt_shape,
            self._chunk_struct(self.k, self.batch_size),
            jax.ShapeDtypeStruct((self.k, self.batch_size), jnp.float32),
            self._keys_struct(self.k),
            jax.ShapeDtypeStruct((self.k,), jnp.bool_),
            jax.ShapeDtypeStruct((), jnp.float32),
        )
        val_rows = self.val_idx.shape[1]
        val_args = (
            flat_shape,
            self._chunk_struct(self.k_val, val_rows),
            jax.ShapeDtypeStruct((self.k_val, val_rows), jnp.float32),
            self._keys_struct(self.k_val),
        )
        return [
            ("train.stream_steps", self.steps_fn, steps_args),
            ("train.stream_validation", self.val_fn, val_args),
        ]

    def _chunks(
        self, idx: np.ndarray, weight: np.ndarray, keys: jax.Array, k: int
    ) -> Iterator[tuple[dict[str, jax.Array], jax.Array, jax.Array, jax.Array]]:
        """Chunks of ``k`` batches (the last padded with inactive, zero-weight repeats)."""
        n = len(idx)
        for start in range(0, n, k):
            pick = np.arange(start, start + k).clip(max=n - 1)
            active = np.arange(start, start + k) < n
            rows = idx[pick]
            chunk = _host_chunk(self.data, rows.ravel())
            chunk = {name: v.reshape(*rows.shape, *v.shape[1:]) for name, v in chunk.items()}
            yield (
                {name: jnp.asarray(v) for name, v in chunk.items()},
                jnp.asarray(np.where(active[:, None], weight[pick], 0.0).astype(np.float32)),
                keys[jnp.asarray(pick)],
                jnp.asarray(active),
            )

    def epoch(
        self,
        flat: jax.Array,
        opt_state: Any,
        idx: np.ndarray,
        weight: np.ndarray,
        key: jax.Array,
        kl_weight: float,
    ) -> tuple[jax.Array, Any, dict[str, jax.Array], dict[str, jax.Array]]:
        """One epoch over the minibatches ``idx`` (as :func:`._kernels._epoch_fn`), then validation."""
        train_kernel, val_kernel = self.kernels
        train_key, val_key = jax.random.split(key)
        keys = jax.random.split(train_key, len(idx))
        kl = jnp.float32(kl_weight)
        parts: list[dict[str, jax.Array]] = []
        for chunk, w, chunk_keys, active in self._chunks(idx, weight, keys, self.k):
            flat, opt_state, sums = train_kernel(flat, opt_state, chunk, w, chunk_keys, active, kl)
            if parts:  # bound the chunks in flight: wait for the previous call
                jax.block_until_ready(parts[-1])
            parts.append(sums)
        sums = _total(parts, len(idx))
        val_keys = jax.random.split(val_key, len(self.val_idx))
        val_parts: list[dict[str, jax.Array]] = []
        for chunk, w, chunk_keys, _ in self._chunks(
            self.val_idx, self.val_weight, val_keys, self.k_val
        ):
            val_parts.append(val_kernel(flat, chunk, w, chunk_keys))
            if len(val_parts) > 1:
                jax.block_until_ready(val_parts[-2])
        return flat, opt_state, sums, _total(val_parts, len(self.val_idx))
