"""scVI from AnnData (MrVI's parts without the sample level): fit, latent z, decoded expression."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

from mrvi_repro.settings.model import SCVIConfig, TrainConfig

from ._fitted import FittedModel
from ._module import SCVAE
from ._registry import Registry

if TYPE_CHECKING:
    from collections.abc import Sequence

    import anndata as ad


class SCVI(FittedModel):
    """A fitted scVI model: a batch-corrected latent z for integration baselines.

    ``batch_key`` is what the decoder corrects for: the nuisance batch, or the sample when scVI
    stands in for sample integration (as in the paper's integration comparison).
    """

    MODEL_NAME = "scVI"
    CONFIG_CLASS = SCVIConfig

    def _build_module(self) -> SCVAE:
        return SCVAE(
            self.config, n_genes=len(self.registry.genes), n_batches=len(self.registry.batches)
        )

    @classmethod
    def fit(
        cls,
        adata: ad.AnnData,
        *,
        batch_key: str | None = None,
        config: SCVIConfig | None = None,
        train: TrainConfig | None = None,
        seed: int = 0,
        train_indices: Sequence[int] | None = None,
        checkpoint_dir: str | Path | None = None,
    ) -> SCVI:
        """Fit scVI to raw counts.

        Parameters
        ----------
        adata
            Cells x genes with raw counts in ``X``.
        batch_key
            ``obs`` column the decoder conditions on (``None``: one batch).
        config, train
            Architecture and training schedule.
        seed
            Seed of initialisation, split, minibatch order and all sampling.
        train_indices
            Rows to train on (the others validate); by default a seeded random ``train_size`` split.
        checkpoint_dir
            Folder of the fit's checkpoint (:mod:`._checkpoint`): the training state is written
            there every ``train.checkpoint_every`` epochs and on SIGTERM/SIGINT, and a fit with
            the same data, settings and seed resumes from it; removed when the fit ends.

        Returns
        -------
        The fitted model; its ``history`` has one row per epoch.

        Raises
        ------
        DataContractError
            Before anything is compiled, if ``X`` is not raw counts (NaN or infinite, negative or
            non-integer entries: log-normalised data, say), naming each problem.
        FloatingPointError
            If a loss term becomes NaN or infinite, naming the epoch and the term.
        """
        registry = Registry.from_adata(adata, None, batch_key, None)
        config = config or SCVIConfig()
        return cls._fit(
            adata, registry, config, train or TrainConfig(), seed, train_indices, checkpoint_dir
        )

    def get_latent(
        self, adata: ad.AnnData, *, use_mean: bool = True, seed: int = 0, batch_size: int = 1024
    ) -> np.ndarray:
        """Latent z of every cell (posterior means, or one sample each with ``use_mean=False``)."""
        return self._map_chunks(self._kernel(_latent_fn, use_mean), adata, batch_size, seed)

    def log_expression(self, z: np.ndarray, batch: str | None = None) -> np.ndarray:
        """Decode log gene proportions for states ``z`` (..., n_latent) in a batch."""
        batches = self.registry.batches
        if batch is not None and batch not in batches:
            msg = f"unknown batch {batch!r}; the model knows {list(batches)}"
            raise ValueError(msg)
        z = jnp.asarray(z, dtype=jnp.float32)
        b = jnp.full(z.shape[:-1], 0 if batch is None else batches.index(batch), dtype=jnp.int32)
        return np.asarray(self.module.apply({"params": self.params}, z, b, method=SCVAE.log_h))


def _latent_fn(module: SCVAE, use_mean: bool) -> Any:
    @jax.jit
    def latent(params: Any, chunk: dict[str, jax.Array], key: jax.Array) -> jax.Array:
        mean, scale = module.apply({"params": params}, chunk["x"], method=SCVAE.encode)
        return mean if use_mean else mean + scale * jax.random.normal(key, mean.shape)

    return latent
