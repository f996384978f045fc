"""What MrVI and scVI share: category registry, fitting loop, chunked inference, persistence.

Training is one jitted function per epoch: the counts sit on the device, the minibatches of an epoch
are a ``lax.scan`` over a permutation (the last batch padded with zero-weight cells so every step has
one shape and nothing recompiles), and RNG keys are passed explicitly. The optimiser works on the
parameters raveled into one vector: the same arithmetic as per-leaf Adam, in a handful of fused
kernels instead of a few per parameter array, which shortens both compile time and each step.

When a dense copy of the counts would exceed ``TrainConfig.max_dense_gib``, training streams
instead: the counts stay on the host as they are (sparse, never densified whole), and each kernel
call gets a chunk of consecutive minibatches densified from them (:data:`STREAM_CHUNK_BYTES`),
scanned by the same step function with the same keys, so both paths take the same steps (the
same numbers on CPU); the validation pass streams the same way.

A model's Flax module is called as ``module(x, sample, batch, label, training=...)`` and returns
per-cell loss terms: ``"reconstruction"`` (the negative NB log-likelihood without log x!) and KL
terms, which are weighted by the KL warm-up.
"""

from __future__ import annotations

import json
import logging
import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self

import flax.linen as nn
import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd
from jax.flatten_util import ravel_pytree
from scipy import sparse
from scipy.special import gammaln

from mrvi_repro import __version__

from ._config import TrainConfig

if TYPE_CHECKING:
    from collections.abc import Iterator

    import anndata as ad

logger = logging.getLogger(__name__)

#: Version of the on-disk format written by ``save``.
FORMAT_VERSION = 1
#: Dense counts (minibatches x cells x genes float32) a streaming kernel call gets: about 64 steps
#: of 128 cells x 2,000 genes (64 MiB), so memory is bounded by the chunk, not by cells x genes.
STREAM_CHUNK_BYTES = 64 * 1024**2
#: Rows of the counts reduced at a time on the host (log x!, totals): bounds their working copies.
_HOST_BLOCK_ROWS = 16_384
#: PRNG of training: XLA's RngBitGenerator compiles much faster than threefry on CPU (the
#: numbers are reproducible for a seed on one platform).
TRAIN_PRNG = "rbg"
#: Compile options of one-off kernels (parameter initialisation): they run once, so compile fast.
_ONE_OFF = {"xla_backend_optimization_level": 0}


@dataclass(frozen=True)
class Registry:
    """How AnnData columns map to the model's integer codes (fixed at fit time)."""

    sample_key: str | None
    batch_key: str | None
    labels_key: str | None
    samples: tuple[str, ...]
    batches: tuple[str, ...]
    labels: tuple[str, ...]
    genes: tuple[str, ...]

    @classmethod
    def from_adata(
        cls,
        adata: ad.AnnData,
        sample_key: str | None,
        batch_key: str | None,
        labels_key: str | None,
    ) -> Registry:
        """Categories of the keys in ``adata`` (sorted, as strings); a missing key gives one."""

        def cats(key: str | None) -> tuple[str, ...]:
            if key is None:
                return ("_all",)
            if key not in adata.obs.columns:
                msg = f"obs has no column {key!r}; columns are: {list(adata.obs.columns)}"
                raise KeyError(msg)
            return tuple(sorted(adata.obs[key].astype(str).unique()))

        return cls(
            sample_key,
            batch_key,
            labels_key,
            cats(sample_key),
            cats(batch_key),
            cats(labels_key),
            tuple(adata.var_names.astype(str)),
        )

    def codes(self, adata: ad.AnnData, kind: Literal["sample", "batch", "label"]) -> np.ndarray:
        """Integer codes of each cell's sample, batch or label; unknown categories are an error."""
        key, cats = {
            "sample": (self.sample_key, self.samples),
            "batch": (self.batch_key, self.batches),
            "label": (self.labels_key, self.labels),
        }[kind]
        if key is None:
            return np.zeros(adata.n_obs, dtype=np.int32)
        values = adata.obs[key].astype(str).to_numpy()
        codes = pd.Categorical(values, categories=cats).codes.astype(np.int32)
        if (codes < 0).any():
            unknown = sorted(set(values[codes < 0]))
            msg = f"obs[{key!r}] has {len(unknown)} value(s) the model was not fitted on: {unknown[:5]}"
            raise ValueError(msg)
        return codes

    def check_genes(self, adata: ad.AnnData) -> None:
        """Refuse data whose genes differ from the fitted ones (same names, same order)."""
        if tuple(adata.var_names.astype(str)) != self.genes:
            msg = (
                f"the data's {adata.n_vars} genes differ from the model's {len(self.genes)} genes "
                "(names and order must match the fitted data)"
            )
            raise ValueError(msg)


def _dense(x: Any) -> np.ndarray:
    return np.asarray(x.toarray() if sparse.issparse(x) else x, dtype=np.float32)


def _host_counts(x: Any) -> Any:
    """Return the counts as rows are cheap to take from: CSR (no copy if already) or dense."""
    return sparse.csr_matrix(x) if sparse.issparse(x) else np.asarray(x)


def _rows(x: Any, rows: np.ndarray | slice) -> np.ndarray:
    """Rows of host counts, dense float32 (only these rows are densified)."""
    return _dense(x[rows])


def _row_sums(x: Any) -> np.ndarray:
    """Per-cell total counts (float64), a block of rows at a time (no dense or float64 copy)."""
    out = np.empty(x.shape[0], dtype=np.float64)
    for start in range(0, x.shape[0], _HOST_BLOCK_ROWS):
        block = x[start : start + _HOST_BLOCK_ROWS]
        out[start : start + block.shape[0]] = np.asarray(
            block.sum(axis=1, dtype=np.float64)
        ).ravel()
    return out


def log_factorial(x: Any) -> np.ndarray:
    """Per-cell sum of log(x!) over genes, the NB log-likelihood's parameter-free term.

    Computed in blocks of rows: memory is bounded by a block, never a float64 copy of all counts.
    """
    x = _host_counts(x)
    out = np.empty(x.shape[0], dtype=np.float64)
    for start in range(0, x.shape[0], _HOST_BLOCK_ROWS):
        block = x[start : start + _HOST_BLOCK_ROWS]
        if sparse.issparse(block):
            terms = sparse.csr_matrix(
                (gammaln(block.data.astype(np.float64) + 1.0), block.indices, block.indptr),
                shape=block.shape,
            )
            out[start : start + block.shape[0]] = np.asarray(terms.sum(axis=1)).ravel()
        else:
            out[start : start + len(block)] = gammaln(
                np.asarray(block, dtype=np.float64) + 1.0
            ).sum(-1)
    return out


def _rows_log_factorial(x: Any, rows: np.ndarray) -> np.ndarray:
    """Return :func:`log_factorial` of the cells ``rows`` of ``x``, taking a block of them at a time."""
    return np.concatenate(
        [
            log_factorial(x[rows[i : i + _HOST_BLOCK_ROWS]])
            for i in range(0, len(rows), _HOST_BLOCK_ROWS)
        ]
    )


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


class FittedModel:
    """A fitted latent-variable model of counts (the shared part of :class:`MrVI` and scVI).

    Subclasses set ``MODEL_NAME`` and ``CONFIG_CLASS`` and build their Flax module in
    :meth:`_build_module`.
    """

    MODEL_NAME: ClassVar[str]
    CONFIG_CLASS: ClassVar[type]

    def __init__(
        self,
        params: Any,
        config: Any,
        train_config: TrainConfig,
        registry: Registry,
        history: pd.DataFrame | None = None,
        train_indices: np.ndarray | None = None,
    ) -> None:
        self.params = params
        self.config = config
        self.train_config = train_config
        self.registry = registry
        self.history = history if history is not None else pd.DataFrame()
        self.train_indices = train_indices
        self.module = self._build_module()
        #: Seconds spent initialising and compiling before the first epoch (set by fitting).
        self.compile_seconds: float | None = None
        self._kernels: dict[tuple[Any, ...], Any] = {}

    def _build_module(self) -> nn.Module:
        raise NotImplementedError

    def _kernel(self, factory: Any, *options: Any) -> Any:
        """Return the jitted function ``factory(module, *options)``, built once per model."""
        key = (factory, *options)
        if key not in self._kernels:
            self._kernels[key] = factory(self.module, *options)
        return self._kernels[key]

    # ------------------------------------------------------------------ fitting
    @classmethod
    def _fit(
        cls,
        adata: ad.AnnData,
        registry: Registry,
        config: Any,
        train: TrainConfig,
        seed: int,
        train_indices: Any,
    ) -> Self:
        n = adata.n_obs
        registry.check_genes(adata)
        rng = np.random.default_rng(seed)
        train_idx, val_idx = _split(n, train, rng, train_indices)
        stream = train.streams(n, adata.n_vars)
        x = _host_counts(adata.X) if stream else _dense(adata.X)
        if (_row_sums(x) <= 0).any():
            msg = "some cells have no counts; remove them before fitting"
            raise ValueError(msg)
        data = {"x": x} | {k: registry.codes(adata, k) for k in ("sample", "batch", "label")}
        if not stream:
            data = {k: jnp.asarray(v) for k, v in data.items()}
        # log(x!) of the validation cells from the counts as given (both paths: the same numbers)
        val_lf = float(_rows_log_factorial(adata.X, val_idx).sum()) if len(val_idx) else 0.0
        model = cls(None, config, train, registry, train_indices=train_idx)
        model._train(data, val_lf, train_idx, val_idx, seed, rng, stream=stream)
        return model

    def _train(
        self,
        data: dict[str, Any],
        val_lf: float,
        train_idx: np.ndarray,
        val_idx: np.ndarray,
        seed: int,
        rng: np.random.Generator,
        *,
        stream: bool = False,
    ) -> None:
        """Train on ``data`` (device arrays; host counts and codes with ``stream``).

        ``val_lf`` is the sum of log(x!) over the validation cells (the ELBO's constant).
        """
        tc = self.train_config
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
        init, unravel, flat_shape = _init_fn(self.module, first)
        n_epochs = tc.epochs_for(len(train_idx) + len(val_idx))
        logger.info(
            "training %s: %d train / %d validation cells, %d genes, %d samples, %d batches, "
            "batch size %d, up to %d epochs, %d parameters%s",
            self.MODEL_NAME,
            len(train_idx),
            len(val_idx),
            len(self.registry.genes),
            len(self.registry.samples),
            len(self.registry.batches),
            batch_size,
            n_epochs,
            flat_shape.size,
            ", minibatches streamed from the host" if stream else "",
        )
        opt_shape = jax.eval_shape(optimizer.init, flat_shape)
        if stream:
            runner: Any = _Streamer(
                self.module, optimizer, unravel, data, batch_size, n_steps, val_batches, key
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
            jobs = [(_epoch_fn(self.module, optimizer, unravel), epoch_args)]
        start = time.perf_counter()
        # XLA releases the GIL: the epoch kernel (the largest) compiles in a thread while the
        # initialiser compiles and runs here.
        with ThreadPoolExecutor(max_workers=1) as pool:
            futures = [pool.submit(_compile, fn, args) for fn, args in jobs]
            flat = _compile(init, (init_key,), _ONE_OFF)(init_key)
            opt_state = jax.jit(optimizer.init)(flat)
            kernels = [f.result() for f in futures]
        self.compile_seconds = time.perf_counter() - start
        logger.info("initialised and compiled in %.1f s", self.compile_seconds)
        if stream:
            runner.kernels = kernels
        else:
            train_epoch = kernels[0]
        rows, best, since_best = [], math.inf, 0
        for epoch in range(n_epochs):
            start = time.perf_counter()
            kl_weight = (
                min(1.0, epoch / tc.n_epochs_kl_warmup) if tc.n_epochs_kl_warmup > 0 else 1.0
            )
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
                row["val_elbo"] = (sum(vsums.values()) + val_lf) / len(val_idx)
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
                "epoch %d/%d: train loss %.3f, validation ELBO %s, kl weight %.2f, %.2f s",
                epoch + 1,
                n_epochs,
                row["train_loss"],
                f"{row['val_elbo']:.3f}" if "val_elbo" in row else "n/a",
                kl_weight,
                row["seconds"],
            )
            if tc.early_stopping and "val_elbo" in row:
                if row["val_elbo"] < best - 1e-6:
                    best, since_best = row["val_elbo"], 0
                else:
                    since_best += 1
                    if since_best >= tc.patience:
                        logger.info(
                            "early stopping: no improvement of the validation ELBO in %d epochs",
                            tc.patience,
                        )
                        break
        self.params = jax.jit(unravel)(flat)
        self.history = pd.DataFrame(rows)

    # ------------------------------------------------------------------ inference
    def iter_chunks(
        self, adata: ad.AnnData, batch_size: int
    ) -> Iterator[tuple[int, dict[str, jax.Array]]]:
        """Fixed-size chunks of cells (the last one padded), as device arrays, with their real size.

        Only a chunk's rows of the counts are densified: memory is bounded by the chunk.
        """
        self.registry.check_genes(adata)
        codes = {k: self.registry.codes(adata, k) for k in ("sample", "batch", "label")}
        x = adata.X  # once: a view's X is built anew at each access
        for start in range(0, adata.n_obs, batch_size):
            stop = min(start + batch_size, adata.n_obs)
            rows = np.arange(start, start + batch_size).clip(max=stop - 1)
            chunk = {"x": jnp.asarray(_rows(x, rows))}
            chunk.update({k: jnp.asarray(v[rows]) for k, v in codes.items()})
            yield stop - start, chunk

    def _map_chunks(
        self, fn: Any, adata: ad.AnnData, batch_size: int, seed: int, *args: Any
    ) -> np.ndarray:
        """Apply ``fn(params, chunk, *args, key)`` to fixed-size chunks; concatenate the real rows."""
        key = jax.random.key(seed)
        out = []
        for i, (n, chunk) in enumerate(self.iter_chunks(adata, batch_size)):
            res = fn(self.params, chunk, *args, jax.random.fold_in(key, i))
            out.append(np.asarray(res)[:n])
        return np.concatenate(out)

    def elbo(self, adata: ad.AnnData, *, seed: int = 0, batch_size: int = 1024) -> np.ndarray:
        """Per-cell negative ELBO (one posterior sample; the full NB log-likelihood, log x! included)."""
        fn = self._kernel(_cell_loss_fn)
        return self._map_chunks(fn, adata, batch_size, seed) + log_factorial(adata.X)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> None:
        """Write ``model.json`` (config, registry, history) and ``params.msgpack`` into a folder."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        meta = {
            "format_version": FORMAT_VERSION,
            "package_version": __version__,
            "model": self.MODEL_NAME,
            "config": asdict(self.config),
            "train_config": asdict(self.train_config),
            "registry": asdict(self.registry),
            "history": self.history.to_dict(orient="list"),
            "train_indices": None if self.train_indices is None else self.train_indices.tolist(),
        }
        params = jax.tree_util.tree_map(np.asarray, self.params)
        (path / "params.msgpack").write_bytes(flax.serialization.msgpack_serialize(params))
        (path / "model.json").write_text(json.dumps(meta, indent=1))

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Read a model written by ``save``."""
        path = Path(path)
        meta = json.loads((path / "model.json").read_text())
        if meta.get("format_version") != FORMAT_VERSION or meta.get("model") != cls.MODEL_NAME:
            msg = (
                f"{path} holds a {meta.get('model')} model in format {meta.get('format_version')}; "
                f"this version reads {cls.MODEL_NAME} format {FORMAT_VERSION}"
            )
            raise ValueError(msg)
        params = flax.serialization.msgpack_restore((path / "params.msgpack").read_bytes())
        reg = meta["registry"]
        registry = Registry(**{k: tuple(v) if isinstance(v, list) else v for k, v in reg.items()})
        train_idx = meta.get("train_indices")
        return cls(
            jax.tree_util.tree_map(jnp.asarray, params),
            cls.CONFIG_CLASS(**meta["config"]),
            TrainConfig(**meta["train_config"]),
            registry,
            pd.DataFrame(meta["history"]),
            None if train_idx is None else np.asarray(train_idx),
        )


# ---------------------------------------------------------------------- jitted kernels
def _apply_terms(
    module: nn.Module,
    params: Any,
    chunk: dict[str, jax.Array],
    rngs: dict[str, jax.Array],
    training: bool = False,
) -> dict[str, jax.Array]:
    return module.apply(
        {"params": params},
        chunk["x"],
        chunk["sample"],
        chunk["batch"],
        chunk["label"],
        training=training,
        rngs=rngs,
    )


def _compile(fn: Any, args: tuple[Any, ...], options: dict[str, Any] | None = None) -> Any:
    """Compile jitted ``fn`` for the shapes of ``args`` (arrays or ShapeDtypeStructs)."""
    return fn.lower(*args).compile(options)


def _init_fn(module: nn.Module, chunk: dict[str, jax.Array]) -> tuple[Any, Any, Any]:
    """Return the jitted initialiser of the raveled parameters, the unraveler and the vector's shape."""

    def init_tree(key: jax.Array) -> Any:
        rngs = {"params": key, "u": key, "dropout": key}
        args = (chunk["x"], chunk["sample"], chunk["batch"], chunk["label"])
        return module.init(rngs, *args)["params"]

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


# ---------------------------------------------------------------------- streamed training
def _host_chunk(data: dict[str, Any], rows: np.ndarray) -> dict[str, np.ndarray]:
    """Return the cells ``rows`` of host data: their counts densified (float32) and their codes."""
    return {k: (_rows(v, rows) if k == "x" else np.asarray(v)[rows]) for k, v in data.items()}


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
    (:func:`_epoch_fn`); only the grouping of steps into kernel calls differs. At most two chunks
    are in flight: the next one is densified on the host while the device runs the current one.
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

    def compile_jobs(self, flat_shape: Any, opt_shape: Any) -> list[tuple[Any, tuple[Any, ...]]]:
        """Return the kernels to compile (training and validation chunks) with argument shapes."""
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
        return [(self.steps_fn, steps_args), (self.val_fn, val_args)]

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
        """One epoch over the minibatches ``idx`` (as :func:`_epoch_fn`), then validation."""
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


def _cell_loss_fn(module: nn.Module) -> Any:
    """Build the per-cell negative ELBO without log x! (KL weight 1, one u draw)."""

    @jax.jit
    def cell_loss(params: Any, chunk: dict[str, jax.Array], key: jax.Array) -> jax.Array:
        return sum(_apply_terms(module, params, chunk, {"u": key}).values())

    return cell_loss
