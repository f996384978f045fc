"""MrVI from AnnData: fitting, latents, counterfactuals, save/load.

Training is one jitted function per epoch: the counts sit on the device, the minibatches of an epoch
are a ``lax.scan`` over a permutation (the last batch padded with zero-weight cells so every step has
one shape and nothing recompiles), and RNG keys are passed explicitly.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd
from scipy import sparse
from scipy.special import gammaln

from mrvi_repro import __version__

from ._config import MrVIConfig, TrainConfig
from ._module import MrVAE

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    import anndata as ad

logger = logging.getLogger(__name__)

#: Version of the on-disk format written by :meth:`MrVI.save`.
FORMAT_VERSION = 1
#: Largest dense copy of the counts put on the device for training, in bytes.
MAX_DEVICE_BYTES = 8 * 1024**3
TERMS = ("reconstruction", "kl_u", "kl_z")


@dataclass(frozen=True)
class Registry:
    """How AnnData columns map to the model's integer codes (fixed at fit time)."""

    sample_key: str
    batch_key: str | None
    labels_key: str | None
    samples: tuple[str, ...]
    batches: tuple[str, ...]
    labels: tuple[str, ...]
    genes: tuple[str, ...]

    @classmethod
    def from_adata(
        cls, adata: ad.AnnData, sample_key: str, batch_key: str | None, labels_key: str | None
    ) -> Registry:
        """Categories of the keys in ``adata`` (sorted, as strings)."""

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


class MrVI:
    """A fitted MrVI model.

    Build one with :meth:`fit` or :meth:`load`; then ask for latents (:meth:`get_latent`),
    counterfactual states (:meth:`counterfactual_z`) or decoded expression (:meth:`log_expression`).
    """

    def __init__(
        self,
        params: Any,
        config: MrVIConfig,
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
        self.module = _module_for(config, registry)
        self._kernels: dict[tuple[Any, ...], Any] = {}

    def _kernel(self, factory: Any, *options: Any) -> Any:
        """Return the jitted function ``factory(module, *options)``, built once per model."""
        key = (factory, *options)
        if key not in self._kernels:
            self._kernels[key] = factory(self.module, *options)
        return self._kernels[key]

    # ------------------------------------------------------------------ fitting
    @classmethod
    def fit(
        cls,
        adata: ad.AnnData,
        *,
        sample_key: str,
        batch_key: str | None = None,
        labels_key: str | None = None,
        config: MrVIConfig | None = None,
        train: TrainConfig | None = None,
        seed: int = 0,
        train_indices: Sequence[int] | None = None,
    ) -> MrVI:
        """Fit MrVI to raw counts.

        Parameters
        ----------
        adata
            Cells x genes with raw counts in ``X`` (the data contract).
        sample_key, batch_key, labels_key
            ``obs`` columns of the target covariate, the nuisance covariate and the labels (the
            labels are used only by the ``"celltype"`` prior).
        config, train
            Architecture and training schedule (defaults: the reference's).
        seed
            Seed of initialisation, split, minibatch order and all sampling.
        train_indices
            Rows to train on (the others validate); by default a seeded random ``train_size`` split.

        Returns
        -------
        The fitted model; its ``history`` has one row per epoch.

        Raises
        ------
        FloatingPointError
            If a loss term becomes NaN or infinite, naming the epoch and the term.
        """
        config = config or MrVIConfig()
        train = train or TrainConfig()
        if config.prior == "celltype" and labels_key is None:
            msg = "the 'celltype' prior needs labels_key"
            raise ValueError(msg)
        registry = Registry.from_adata(adata, sample_key, batch_key, labels_key)
        n = adata.n_obs
        if n * adata.n_vars * 4 > MAX_DEVICE_BYTES:
            msg = (
                f"{n} cells x {adata.n_vars} genes needs {n * adata.n_vars * 4 / 1024**3:.1f} GiB as a "
                f"dense device copy, above the {MAX_DEVICE_BYTES / 1024**3:.0f} GiB limit"
            )
            raise MemoryError(msg)
        rng = np.random.default_rng(seed)
        if train_indices is None:
            perm = rng.permutation(n)
            n_train = (
                n if train.train_size >= 1.0 else max(1, min(n - 1, round(train.train_size * n)))
            )
            train_idx, val_idx = np.sort(perm[:n_train]), np.sort(perm[n_train:])
        else:
            train_idx = np.unique(np.asarray(train_indices, dtype=np.int64))
            val_idx = np.setdiff1d(np.arange(n), train_idx)
        data = {
            "x": jnp.asarray(_dense(adata.X)),
            "sample": jnp.asarray(registry.codes(adata, "sample")),
            "batch": jnp.asarray(registry.codes(adata, "batch")),
            "label": jnp.asarray(registry.codes(adata, "label")),
        }
        if bool(jnp.any(data["x"].sum(-1) <= 0)):
            msg = "some cells have no counts; remove them before fitting"
            raise ValueError(msg)
        lf = log_factorial(adata.X)
        model = cls(None, config, train, registry, train_indices=train_idx)
        model._train(data, lf, train_idx, val_idx, seed, rng)
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
        key = jax.random.key(seed)
        key, init_key = jax.random.split(key)
        batch_size = min(tc.batch_size, len(train_idx))
        first = jnp.asarray(train_idx[:batch_size])
        params = self.module.init(
            {"params": init_key, "u": init_key, "dropout": init_key},
            data["x"][first],
            data["sample"][first],
            data["batch"][first],
            data["label"][first],
        )["params"]
        optimizer = make_optimizer(tc)
        opt_state = optimizer.init(params)
        train_epoch = _epoch_fn(self.module, optimizer)
        evaluate = _eval_fn(self.module)
        val_batches = (
            _padded_batches(val_idx, min(1024, max(1, len(val_idx)))) if len(val_idx) else None
        )
        val_lf = float(lf[val_idx].sum()) if len(val_idx) else 0.0
        n_epochs = tc.epochs_for(len(train_idx) + len(val_idx))
        logger.info(
            "training MrVI: %d train / %d validation cells, %d genes, %d samples, %d batches, "
            "batch size %d, up to %d epochs, %d parameters",
            len(train_idx),
            len(val_idx),
            len(self.registry.genes),
            len(self.registry.samples),
            len(self.registry.batches),
            batch_size,
            n_epochs,
            sum(p.size for p in jax.tree_util.tree_leaves(params)),
        )
        rows, best, since_best = [], math.inf, 0
        for epoch in range(n_epochs):
            start = time.perf_counter()
            kl_weight = (
                min(1.0, epoch / tc.n_epochs_kl_warmup) if tc.n_epochs_kl_warmup > 0 else 1.0
            )
            idx, weight = _padded_batches(rng.permutation(train_idx), batch_size)
            epoch_key = jax.random.fold_in(key, epoch)
            params, opt_state, sums = train_epoch(
                params,
                opt_state,
                data,
                jnp.asarray(idx),
                jnp.asarray(weight),
                jax.random.fold_in(epoch_key, 0),
                jnp.float32(kl_weight),
            )
            sums = {k: float(v) / len(train_idx) for k, v in sums.items()}
            row = {"epoch": epoch + 1, "kl_weight": kl_weight}
            row.update({f"train_{k}": v for k, v in sums.items()})
            row["train_loss"] = sums["reconstruction"] + kl_weight * (sums["kl_u"] + sums["kl_z"])
            if val_batches is not None:
                vsums = evaluate(
                    params, data, *map(jnp.asarray, val_batches), jax.random.fold_in(epoch_key, 1)
                )
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
        self.params = params
        self.history = pd.DataFrame(rows)

    # ------------------------------------------------------------------ inference
    def _chunks(
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

    def get_latent(
        self,
        adata: ad.AnnData,
        representation: Literal["u", "z"] = "u",
        *,
        use_mean: bool = True,
        seed: int = 0,
        batch_size: int = 1024,
    ) -> np.ndarray:
        """Latent u or z of every cell (posterior means, or one sample each with ``use_mean=False``)."""
        fn = self._kernel(_latent_fn, representation, use_mean)
        key = jax.random.key(seed)
        out = []
        for i, (n, chunk) in enumerate(self._chunks(adata, batch_size)):
            out.append(np.asarray(fn(self.params, chunk, jax.random.fold_in(key, i)))[:n])
        return np.concatenate(out)

    def counterfactual_z(
        self,
        adata: ad.AnnData,
        samples: Sequence[str] | None = None,
        *,
        use_mean: bool = True,
        seed: int = 0,
        batch_size: int = 256,
    ) -> np.ndarray:
        """Z of every cell had it come from each of ``samples`` (default: all fitted samples).

        Returns an array of shape (cells, samples, n_latent); u is the cell's own (mean or one draw).
        """
        names = list(self.registry.samples) if samples is None else list(samples)
        lookup = {s: i for i, s in enumerate(self.registry.samples)}
        unknown = [s for s in names if s not in lookup]
        if unknown:
            msg = f"unknown sample(s) {unknown[:5]}; the model knows {len(lookup)} samples"
            raise ValueError(msg)
        codes = jnp.asarray([lookup[s] for s in names], dtype=jnp.int32)
        fn = self._kernel(_counterfactual_fn, use_mean)
        key = jax.random.key(seed)
        out = []
        for i, (n, chunk) in enumerate(self._chunks(adata, batch_size)):
            out.append(np.asarray(fn(self.params, chunk, codes, jax.random.fold_in(key, i)))[:n])
        return np.concatenate(out)

    def log_expression(self, z: np.ndarray, batch: str | None = None) -> np.ndarray:
        """Decode log gene proportions log h for states ``z`` (..., n_latent) in a nuisance batch."""
        batches = self.registry.batches
        if batch is not None and batch not in batches:
            msg = f"unknown batch {batch!r}; the model knows {list(batches)}"
            raise ValueError(msg)
        code = 0 if batch is None else batches.index(batch)
        z = jnp.asarray(z, dtype=jnp.float32)
        b = jnp.full(z.shape[:-1], code, dtype=jnp.int32)
        return np.asarray(self.module.apply({"params": self.params}, z, b, method=MrVAE.log_h))

    def elbo(self, adata: ad.AnnData, *, seed: int = 0, batch_size: int = 1024) -> np.ndarray:
        """Per-cell negative ELBO (one posterior sample; the full NB log-likelihood, log x! included)."""
        fn = self._kernel(_cell_terms_fn)
        key = jax.random.key(seed)
        out = []
        for i, (n, chunk) in enumerate(self._chunks(adata, batch_size)):
            terms = fn(self.params, chunk, jax.random.fold_in(key, i))
            out.append(np.asarray(sum(terms.values()))[:n])
        return np.concatenate(out) + log_factorial(adata.X)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> None:
        """Write ``model.json`` (config, registry, history) and ``params.msgpack`` into a folder."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        meta = {
            "format_version": FORMAT_VERSION,
            "package_version": __version__,
            "model": "MrVI",
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
    def load(cls, path: str | Path) -> MrVI:
        """Read a model written by :meth:`save`."""
        path = Path(path)
        meta = json.loads((path / "model.json").read_text())
        if meta.get("format_version") != FORMAT_VERSION or meta.get("model") != "MrVI":
            msg = (
                f"{path} holds a {meta.get('model')} model in format {meta.get('format_version')}; "
                f"this version reads MrVI format {FORMAT_VERSION}"
            )
            raise ValueError(msg)
        params = flax.serialization.msgpack_restore((path / "params.msgpack").read_bytes())
        reg = meta["registry"]
        registry = Registry(**{k: tuple(v) if isinstance(v, list) else v for k, v in reg.items()})
        train_idx = meta.get("train_indices")
        return cls(
            jax.tree_util.tree_map(jnp.asarray, params),
            MrVIConfig(**meta["config"]),
            TrainConfig(**meta["train_config"]),
            registry,
            pd.DataFrame(meta["history"]),
            None if train_idx is None else np.asarray(train_idx),
        )


# ---------------------------------------------------------------------- jitted kernels
def _module_for(config: MrVIConfig, registry: Registry) -> MrVAE:
    return MrVAE(
        config,
        n_genes=len(registry.genes),
        n_samples=len(registry.samples),
        n_batches=len(registry.batches),
        n_labels=len(registry.labels),
    )


def _epoch_fn(module: MrVAE, optimizer: optax.GradientTransformation) -> Any:
    """One training epoch: a scan of optimiser steps over the minibatch index matrix."""

    def step(carry: Any, inputs: Any, data: dict[str, jax.Array], kl_weight: jax.Array) -> Any:
        params, opt_state = carry
        idx, weight, key = inputs
        u_key, drop_key = jax.random.split(key)

        def loss_fn(p: Any) -> tuple[jax.Array, dict[str, jax.Array]]:
            terms = module.apply(
                {"params": p},
                data["x"][idx],
                data["sample"][idx],
                data["batch"][idx],
                data["label"][idx],
                training=True,
                rngs={"u": u_key, "dropout": drop_key},
            )
            per_cell = terms["reconstruction"] + kl_weight * (terms["kl_u"] + terms["kl_z"])
            loss = (weight * per_cell).sum() / weight.sum()
            return loss, {k: (weight * v).sum() for k, v in terms.items()}

        (_, sums), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), sums

    @jax.jit
    def epoch(
        params: Any,
        opt_state: Any,
        data: dict[str, jax.Array],
        idx: jax.Array,
        weight: jax.Array,
        key: jax.Array,
        kl_weight: jax.Array,
    ) -> Any:
        keys = jax.random.split(key, idx.shape[0])
        (params, opt_state), sums = jax.lax.scan(
            lambda c, i: step(c, i, data, kl_weight), (params, opt_state), (idx, weight, keys)
        )
        return params, opt_state, jax.tree_util.tree_map(jnp.sum, sums)

    return epoch


def _eval_fn(module: MrVAE) -> Any:
    """Build the evaluator: sums of the loss terms over index batches (no dropout, one draw of u per cell)."""

    @jax.jit
    def evaluate(
        params: Any, data: dict[str, jax.Array], idx: jax.Array, weight: jax.Array, key: jax.Array
    ) -> Any:
        def body(_: None, inputs: Any) -> Any:
            i, w, k = inputs
            terms = module.apply(
                {"params": params},
                data["x"][i],
                data["sample"][i],
                data["batch"][i],
                data["label"][i],
                rngs={"u": k},
            )
            return None, {name: (w * v).sum() for name, v in terms.items()}

        keys = jax.random.split(key, idx.shape[0])
        _, sums = jax.lax.scan(body, None, (idx, weight, keys))
        return jax.tree_util.tree_map(jnp.sum, sums)

    return evaluate


def _u(
    module: MrVAE, params: Any, chunk: dict[str, jax.Array], key: jax.Array, use_mean: bool
) -> jax.Array:
    mean, scale = module.apply({"params": params}, chunk["x"], chunk["sample"], method=MrVAE.encode)
    return mean if use_mean else mean + scale * jax.random.normal(key, mean.shape)


def _latent_fn(module: MrVAE, representation: str, use_mean: bool) -> Any:
    @jax.jit
    def latent(params: Any, chunk: dict[str, jax.Array], key: jax.Array) -> jax.Array:
        u = _u(module, params, chunk, key, use_mean)
        if representation == "u":
            return u
        z_base, eps = module.apply({"params": params}, u, chunk["sample"], method=MrVAE.z_parts)
        return z_base + eps

    if representation not in ("u", "z"):
        msg = f"representation must be 'u' or 'z' (got {representation!r})"
        raise ValueError(msg)
    return latent


def _counterfactual_fn(module: MrVAE, use_mean: bool) -> Any:
    @jax.jit
    def counterfactual(
        params: Any, chunk: dict[str, jax.Array], codes: jax.Array, key: jax.Array
    ) -> jax.Array:
        u = _u(module, params, chunk, key, use_mean)

        def for_sample(code: jax.Array) -> jax.Array:
            sample = jnp.full(u.shape[:-1], code, dtype=jnp.int32)
            z_base, eps = module.apply({"params": params}, u, sample, method=MrVAE.z_parts)
            return z_base + eps

        return jnp.moveaxis(jax.vmap(for_sample)(codes), 0, 1)

    return counterfactual


def _cell_terms_fn(module: MrVAE) -> Any:
    @jax.jit
    def terms(params: Any, chunk: dict[str, jax.Array], key: jax.Array) -> dict[str, jax.Array]:
        return module.apply(
            {"params": params},
            chunk["x"],
            chunk["sample"],
            chunk["batch"],
            chunk["label"],
            rngs={"u": key},
        )

    return terms
