"""What MrVI and scVI share: category registry, fitting loop, chunked inference, persistence.

Training is one jitted function per epoch: the counts sit on the device, the minibatches of an epoch
are a ``lax.scan`` over a permutation (the last batch padded with zero-weight cells so every step has
one shape and nothing recompiles), and RNG keys are passed explicitly. The optimiser works on the
parameters raveled into one vector: the same arithmetic as per-leaf Adam, in a handful of fused
kernels instead of a few per parameter array, which shortens both compile time and each step.

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
#: Largest dense copy of the counts put on the device for training, in bytes.
MAX_DEVICE_BYTES = 8 * 1024**3
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


def log_factorial(x: Any) -> np.ndarray:
    """Per-cell sum of log(x!) over genes, the NB log-likelihood's parameter-free term."""
    if sparse.issparse(x):
        x = sparse.csr_matrix(x)
        terms = sparse.csr_matrix(
            (gammaln(x.data.astype(np.float64) + 1.0), x.indices, x.indptr), shape=x.shape
        )
        return np.asarray(terms.sum(axis=1)).ravel()
    return gammaln(np.asarray(x, dtype=np.float64) + 1.0).sum(-1)


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
        if n * adata.n_vars * 4 > MAX_DEVICE_BYTES:
            msg = (
                f"{n} cells x {adata.n_vars} genes needs {n * adata.n_vars * 4 / 1024**3:.1f} GiB as a "
                f"dense device copy, above the {MAX_DEVICE_BYTES / 1024**3:.0f} GiB limit"
            )
            raise MemoryError(msg)
        rng = np.random.default_rng(seed)
        train_idx, val_idx = _split(n, train, rng, train_indices)
        x = _dense(adata.X)
        if (x.sum(-1) <= 0).any():
            msg = "some cells have no counts; remove them before fitting"
            raise ValueError(msg)
        data = {
            "x": jnp.asarray(x),
            "sample": jnp.asarray(registry.codes(adata, "sample")),
            "batch": jnp.asarray(registry.codes(adata, "batch")),
            "label": jnp.asarray(registry.codes(adata, "label")),
        }
        model = cls(None, config, train, registry, train_indices=train_idx)
        model._train(data, log_factorial(adata.X), train_idx, val_idx, seed, rng)
        return model

    def _train(
        self,
        data: dict[str, jax.Array],
        lf: np.ndarray,
        train_idx: np.ndarray,
        val_idx: np.ndarray,
        seed: int,
        rng: np.random.Generator,
    ) -> None:
        tc = self.train_config
        key = jax.random.key(seed, impl=TRAIN_PRNG)
        key, init_key = jax.random.split(key)
        batch_size = min(tc.batch_size, len(train_idx))
        n_steps = math.ceil(len(train_idx) / batch_size)
        val_batches = tuple(
            jnp.asarray(a) for a in _padded_batches(val_idx, min(1024, max(1, len(val_idx))))
        )
        first = {k: v[jnp.asarray(train_idx[:batch_size])] for k, v in data.items()}
        optimizer = make_optimizer(tc)
        init, unravel, flat_shape = _init_fn(self.module, first)
        val_lf = float(lf[val_idx].sum()) if len(val_idx) else 0.0
        n_epochs = tc.epochs_for(len(train_idx) + len(val_idx))
        logger.info(
            "training %s: %d train / %d validation cells, %d genes, %d samples, %d batches, "
            "batch size %d, up to %d epochs, %d parameters",
            self.MODEL_NAME,
            len(train_idx),
            len(val_idx),
            len(self.registry.genes),
            len(self.registry.samples),
            len(self.registry.batches),
            batch_size,
            n_epochs,
            flat_shape.size,
        )
        epoch_args = (
            flat_shape,
            jax.eval_shape(optimizer.init, flat_shape),
            data,
            jax.ShapeDtypeStruct((n_steps, batch_size), jnp.int32),
            jax.ShapeDtypeStruct((n_steps, batch_size), jnp.float32),
            *val_batches,
            key,
            jax.ShapeDtypeStruct((), jnp.float32),
        )
        start = time.perf_counter()
        # XLA releases the GIL: the epoch kernel (the largest) compiles in a thread while the
        # initialiser compiles and runs here.
        with ThreadPoolExecutor(max_workers=1) as pool:
            epoch_job = pool.submit(
                _compile, _epoch_fn(self.module, optimizer, unravel), epoch_args
            )
            flat = _compile(init, (init_key,), _ONE_OFF)(init_key)
            opt_state = jax.jit(optimizer.init)(flat)
            train_epoch = epoch_job.result()
        self.compile_seconds = time.perf_counter() - start
        logger.info("initialised and compiled in %.1f s", self.compile_seconds)
        rows, best, since_best = [], math.inf, 0
        for epoch in range(n_epochs):
            start = time.perf_counter()
            kl_weight = (
                min(1.0, epoch / tc.n_epochs_kl_warmup) if tc.n_epochs_kl_warmup > 0 else 1.0
            )
            idx, weight = _padded_batches(rng.permutation(train_idx), batch_size)
            epoch_key = jax.random.fold_in(key, epoch)
            flat, opt_state, sums, vsums = train_epoch(
                flat,
                opt_state,
                data,
                jnp.asarray(idx),
                jnp.asarray(weight),
                *val_batches,
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
        """Fixed-size chunks of cells (the last one padded), as device arrays, with their real size."""
        self.registry.check_genes(adata)
        codes = {k: self.registry.codes(adata, k) for k in ("sample", "batch", "label")}
        for start in range(0, adata.n_obs, batch_size):
            stop = min(start + batch_size, adata.n_obs)
            rows = np.arange(start, start + batch_size).clip(max=stop - 1)
            chunk = {"x": jnp.asarray(_dense(adata.X[rows]))}
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


def _epoch_fn(module: nn.Module, optimizer: optax.GradientTransformation, unravel: Any) -> Any:
    """One epoch: a scan of optimiser steps over the minibatch index matrix, then validation.

    Returns the new parameters and optimiser state and the sums of the loss terms over the
    training cells (as they were when each step saw them) and over the validation cells (under the
    new parameters, without dropout, KL weight 1).
    """

    def step(carry: Any, inputs: Any, data: dict[str, jax.Array], kl_weight: jax.Array) -> Any:
        flat, opt_state = carry
        idx, weight, key = inputs
        u_key, drop_key = jax.random.split(key)
        chunk = {k: v[idx] for k, v in data.items()}

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
        return (optax.apply_updates(flat, updates), opt_state), sums

    def validate(params: Any, data: dict[str, jax.Array], inputs: Any) -> Any:
        idx, weight, key = inputs
        terms = _apply_terms(module, params, {k: v[idx] for k, v in data.items()}, {"u": key})
        return {k: (weight * v).sum() for k, v in terms.items()}

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
