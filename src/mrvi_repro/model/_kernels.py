"""The jitted kernels of training: parameter initialisation, the optimiser step, the epoch, losses.

A model's Flax module is called as ``module(x, sample, batch, label, training=...)`` and returns
per-cell loss terms: ``"reconstruction"`` (the negative NB log-likelihood without log x!) and KL
terms, which are weighted by the KL warm-up.

The optimiser works on the parameters raveled into one vector: the same arithmetic as per-leaf
Adam, in a handful of fused kernels instead of a few per parameter array, which shortens both
compile time and each step. An epoch on device-resident data is one jitted function: its
minibatches are a ``lax.scan`` over a permutation (the last batch padded with zero-weight cells so
every step has one shape and nothing recompiles), and RNG keys are passed explicitly.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

if TYPE_CHECKING:
    import flax.linen as nn


#: The module's inputs, in the order of its call.
_INPUTS = ("x", "sample", "batch", "label")


def _apply_terms(
    module: nn.Module,
    params: Any,
    chunk: dict[str, jax.Array],
    rngs: dict[str, jax.Array],
    training: bool = False,
) -> dict[str, jax.Array]:
    return module.apply(
        {"params": params}, *(chunk[k] for k in _INPUTS), training=training, rngs=rngs
    )


def _init_fn(module: nn.Module, chunk: dict[str, jax.Array]) -> tuple[Any, Any, Any]:
    """Return the jitted initialiser of the raveled parameters, the unraveler and the vector's shape."""
    # The initialiser sees only the inputs' shapes (zeros of them), never their values: its
    # executable is then the same for every dataset of these shapes (see compile_cached).
    inputs = tuple(jax.ShapeDtypeStruct(chunk[k].shape, chunk[k].dtype) for k in _INPUTS)

    def init_tree(key: jax.Array) -> Any:
        rngs = {"params": key, "u": key, "dropout": key}
        return module.init(rngs, *(jnp.zeros(a.shape, a.dtype) for a in inputs))["params"]

    shapes = jax.eval_shape(init_tree, jax.random.key(0))
    unravel = ravel_pytree(jax.tree_util.tree_map(lambda s: np.zeros(s.shape, s.dtype), shapes))[1]
    init = jax.jit(lambda k: ravel_pytree(init_tree(k))[0])
    n_params = sum(math.prod(s.shape) for s in jax.tree_util.tree_leaves(shapes))
    return init, unravel, jax.ShapeDtypeStruct((n_params,), jnp.float32)


def _train_step(module: nn.Module, optimizer: optax.GradientTransformation, unravel: Any) -> Any:
    """Traceable optimiser step on one minibatch (cells of zero ``weight`` are padding).

    Returns the new parameters and optimiser state and the weighted sums of the loss terms.
    Both training paths (device-resident data, streamed chunks) take their steps with it.
    """

    def step(
        flat: jax.Array,
        opt_state: Any,
        chunk: dict[str, jax.Array],
        weight: jax.Array,
        key: jax.Array,
        kl_weight: jax.Array,
    ) -> Any:
        u_key, drop_key = jax.random.split(key)

        def loss_fn(p: jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
            terms = _apply_terms(
                module, unravel(p), chunk, {"u": u_key, "dropout": drop_key}, training=True
            )
            kl = sum(v for k, v in terms.items() if k != "reconstruction")
            per_cell = terms["reconstruction"] + kl_weight * kl
            loss = (weight * per_cell).sum() / weight.sum()
            return loss, {k: (weight * v).sum() for k, v in terms.items()}

        (_, sums), grads = jax.value_and_grad(loss_fn, has_aux=True)(flat)
        updates, opt_state = optimizer.update(grads, opt_state, flat)
        return optax.apply_updates(flat, updates), opt_state, sums

    return step


def _validation_sums(
    module: nn.Module, params: Any, chunk: dict[str, jax.Array], weight: jax.Array, key: jax.Array
) -> dict[str, jax.Array]:
    """Traceable: weighted sums of the loss terms of one validation batch (no dropout)."""
    terms = _apply_terms(module, params, chunk, {"u": key})
    return {k: (weight * v).sum() for k, v in terms.items()}


def _epoch_fn(module: nn.Module, optimizer: optax.GradientTransformation, unravel: Any) -> Any:
    """One epoch: a scan of optimiser steps over the minibatch index matrix, then validation.

    Returns the new parameters and optimiser state and the sums of the loss terms over the
    training cells (as they were when each step saw them) and over the validation cells (under the
    new parameters, without dropout, KL weight 1).
    """
    train_step = _train_step(module, optimizer, unravel)

    def step(carry: Any, inputs: Any, data: dict[str, jax.Array], kl_weight: jax.Array) -> Any:
        idx, weight, key = inputs
        chunk = {k: v[idx] for k, v in data.items()}
        flat, opt_state, sums = train_step(*carry, chunk, weight, key, kl_weight)
        return (flat, opt_state), sums

    def validate(params: Any, data: dict[str, jax.Array], inputs: Any) -> Any:
        idx, weight, key = inputs
        return _validation_sums(module, params, {k: v[idx] for k, v in data.items()}, weight, key)

    @jax.jit
    def epoch(
        flat: jax.Array,
        opt_state: Any,
        data: dict[str, jax.Array],
        idx: jax.Array,
        weight: jax.Array,
        val_idx: jax.Array,
        val_weight: jax.Array,
        key: jax.Array,
        kl_weight: jax.Array,
    ) -> Any:
        train_key, val_key = jax.random.split(key)
        keys = jax.random.split(train_key, idx.shape[0])
        (flat, opt_state), sums = jax.lax.scan(
            lambda c, i: step(c, i, data, kl_weight), (flat, opt_state), (idx, weight, keys)
        )
        params = unravel(flat)
        val_keys = jax.random.split(val_key, val_idx.shape[0])
        _, val_sums = jax.lax.scan(
            lambda c, i: (c, validate(params, data, i)), None, (val_idx, val_weight, val_keys)
        )
        total = jax.tree_util.tree_map(jnp.sum, (sums, val_sums))
        return flat, opt_state, *total

    return epoch


def _cell_loss_fn(module: nn.Module) -> Any:
    """Build the per-cell negative ELBO without log x! (KL weight 1, one u draw)."""

    @jax.jit
    def cell_loss(params: Any, chunk: dict[str, jax.Array], key: jax.Array) -> jax.Array:
        return sum(_apply_terms(module, params, chunk, {"u": key}).values())

    return cell_loss
