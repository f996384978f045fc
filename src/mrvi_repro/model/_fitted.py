"""The fitted-model API MrVI and scVI share: fitting, chunked inference, saving and loading.

:class:`FittedModel` holds a model's parameters, its configuration, its :class:`._registry.Registry`
and its training history. Fitting prepares the data (:mod:`._data`) and runs the fitting loop
(:mod:`._training`); inference maps jitted kernels over fixed-size chunks of cells, densifying only
a chunk's rows of the counts; ``save`` and ``load`` write and read a folder.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from mrvi_repro import __version__
from mrvi_repro._jax_cache import CachedKernel
from mrvi_repro.data.contract import DataContractError, count_problems
from mrvi_repro.settings.model import TrainConfig

from ._checkpoint import Checkpoint, fit_fingerprint
from ._data import _rows, _training_data
from ._kernels import _cell_loss_fn
from ._likelihoods import _rows_log_factorial, log_factorial
from ._registry import Registry
from ._training import _split, _train

if TYPE_CHECKING:
    from collections.abc import Iterator

    import anndata as ad
    import flax.linen as nn

#: Version of the on-disk format written by ``save``.
FORMAT_VERSION = 1


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
        params_epoch: int | None = None,
    ) -> None:
        self.params = params
        self.config = config
        self.train_config = train_config
        self.registry = registry
        self.history = history if history is not None else pd.DataFrame()
        self.train_indices = train_indices
        #: The epoch whose parameters these are (the best validation epoch with
        #: ``train_config.restore_best``, else the last one).
        self.params_epoch = params_epoch
        self.module = self._build_module()
        #: Seconds spent initialising and compiling before the first epoch (set by fitting).
        self.compile_seconds: float | None = None
        #: Wall-clock seconds of each epoch (set by fitting). Timings are kept here and in the
        #: log, out of ``history`` and the saved files, which a seed fixes to the byte.
        self.epoch_seconds: tuple[float, ...] = ()
        self._kernels: dict[tuple[Any, ...], Any] = {}

    def _build_module(self) -> nn.Module:
        raise NotImplementedError

    def _kernel(self, factory: Any, *options: Any) -> Any:
        """Return the jitted function ``factory(module, *options)``, built once per model.

        It is compiled once per argument shapes, its executable kept in the compilation cache
        and found there without tracing (:class:`mrvi_repro._jax_cache.CachedKernel`): the
        kernel closes over the module and ``options`` only, which name it with the factory.
        """
        key = (factory, *options)
        if key not in self._kernels:
            self._kernels[key] = CachedKernel(
                factory(self.module, *options),
                name=f"{factory.__module__}.{factory.__qualname__}",
                key=(repr(self.module), options),
            )
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
        checkpoint_dir: str | Path | None = None,
    ) -> Self:
        n = adata.n_obs
        registry.check_genes(adata)
        x = adata.X  # once: a view's X is built anew at each access
        problems = count_problems(x)
        if problems:
            raise DataContractError(problems, what=f"{cls.MODEL_NAME}.fit's adata")
        rng = np.random.default_rng(seed)
        train_idx, val_idx = _split(n, train, rng, train_indices)
        stream = train.streams(n, adata.n_vars)
        data = _training_data(adata, registry, stream)
        # log(x!) of the validation cells from the counts as given (both paths: the same numbers)
        val_lf = float(_rows_log_factorial(adata.X, val_idx).sum()) if len(val_idx) else 0.0
        model = cls(None, config, train, registry, train_indices=train_idx)
        checkpoint = None
        if checkpoint_dir is not None:
            schedule = {k: v for k, v in asdict(train).items() if k != "checkpoint_every"}
            fingerprint = fit_fingerprint(
                {
                    "model": cls.MODEL_NAME,
                    "config": asdict(config),
                    "train": schedule,
                    "seed": seed,
                    "registry": asdict(registry),
                    "cells": adata.obs_names.tolist(),
                    "train_indices": train_idx.tolist(),
                }
            )
            checkpoint = Checkpoint(checkpoint_dir, fingerprint, train.checkpoint_every)
        with checkpoint.session() if checkpoint is not None else contextlib.nullcontext():
            model.params, model.history, timings, model.params_epoch = _train(
                model.module,
                cls.MODEL_NAME,
                registry,
                train,
                data,
                val_lf,
                train_idx,
                val_idx,
                seed,
                rng,
                stream=stream,
                checkpoint=checkpoint,
            )
        model.compile_seconds, model.epoch_seconds = timings
        if checkpoint is not None:
            checkpoint.clear()
        return model

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
            "params_epoch": self.params_epoch,
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
            meta.get("params_epoch"),
        )
