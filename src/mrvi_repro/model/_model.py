"""MrVI from AnnData: fitting, latents u and z, counterfactual states, decoded expression."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import jax
import jax.numpy as jnp
import numpy as np

from mrvi_repro.settings.model import MrVIConfig, TrainConfig

from ._fitted import FittedModel
from ._module import MrVAE
from ._registry import Registry

if TYPE_CHECKING:
    from collections.abc import Sequence

    import anndata as ad


class MrVI(FittedModel):
    """A fitted MrVI model.

    Build one with :meth:`fit` or :meth:`load`; then ask for latents (:meth:`get_latent`),
    counterfactual states (:meth:`counterfactual_z`), decoded expression (:meth:`log_expression`)
    or per-cell negative ELBOs (:meth:`elbo`). :meth:`save` writes it to a folder.
    """

    MODEL_NAME = "MrVI"
    CONFIG_CLASS = MrVIConfig

    def _build_module(self) -> MrVAE:
        registry = self.registry
        return MrVAE(
            self.config,
            n_genes=len(registry.genes),
            n_samples=len(registry.samples),
            n_batches=len(registry.batches),
            n_labels=len(registry.labels),
        )

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
        checkpoint_dir: str | Path | None = None,
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
        checkpoint_dir
            Folder of the fit's checkpoint (:mod:`._checkpoint`): the training state is written
            there every ``train.checkpoint_every`` epochs and on SIGTERM/SIGINT, and a fit with
            the same data, settings and seed resumes from it; removed when the fit ends.

        Returns
        -------
        The fitted model; its ``history`` has one row per epoch.

        Raises
        ------
        TrainingInterrupted
            After SIGTERM/SIGINT, once the checkpoint is written (with ``checkpoint_dir``).
        DataContractError
            Before anything is compiled, if ``X`` is not raw counts (NaN or infinite, negative or
            non-integer entries: log-normalised data, say), naming each problem.
        FloatingPointError
            If a loss term becomes NaN or infinite, naming the epoch and the term.
        """
        config = config or MrVIConfig()
        if config.prior == "celltype" and labels_key is None:
            msg = "the 'celltype' prior needs labels_key"
            raise ValueError(msg)
        registry = Registry.from_adata(adata, sample_key, batch_key, labels_key)
        return cls._fit(
            adata, registry, config, train or TrainConfig(), seed, train_indices, checkpoint_dir
        )

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
        if representation not in ("u", "z"):
            msg = f"representation must be 'u' or 'z' (got {representation!r})"
            raise ValueError(msg)
        fn = self._kernel(_latent_fn, representation, use_mean)
        return self._map_chunks(fn, adata, batch_size, seed)

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
        codes = self.sample_codes(samples)
        fn = self._kernel(_counterfactual_fn, use_mean)
        return self._map_chunks(fn, adata, batch_size, seed, codes)

    def sample_codes(self, samples: Sequence[str] | None = None) -> jax.Array:
        """Integer codes of ``samples`` (default: all fitted samples, in the registry's order)."""
        names = list(self.registry.samples) if samples is None else list(samples)
        lookup = {s: i for i, s in enumerate(self.registry.samples)}
        unknown = [s for s in names if s not in lookup]
        if unknown:
            msg = f"unknown sample(s) {unknown[:5]}; the model knows {len(lookup)} samples"
            raise ValueError(msg)
        return jnp.asarray([lookup[s] for s in names], dtype=jnp.int32)

    def posterior_u(self, adata: ad.AnnData, *, batch_size: int = 1024) -> tuple[np.ndarray, ...]:
        """Mean and standard deviation of q(u | x) for every cell, each (cells, n_latent_u)."""
        out = self._map_chunks(self._kernel(_posterior_fn), adata, batch_size, 0)
        d = self.config.n_latent_u
        return out[:, :d], out[:, d:]

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


# ---------------------------------------------------------------------- jitted kernels
def _u(
    module: MrVAE, params: Any, chunk: dict[str, jax.Array], key: jax.Array, use_mean: bool
) -> jax.Array:
    mean, scale = module.apply({"params": params}, chunk["x"], chunk["sample"], method=MrVAE.encode)
    return mean if use_mean else mean + scale * jax.random.normal(key, mean.shape)


def _posterior_fn(module: MrVAE) -> Any:
    @jax.jit
    def posterior(params: Any, chunk: dict[str, jax.Array], key: jax.Array) -> jax.Array:
        del key
        mean, scale = module.apply(
            {"params": params}, chunk["x"], chunk["sample"], method=MrVAE.encode
        )
        return jnp.concatenate([mean, scale], axis=-1)

    return posterior


def _latent_fn(module: MrVAE, representation: str, use_mean: bool) -> Any:
    @jax.jit
    def latent(params: Any, chunk: dict[str, jax.Array], key: jax.Array) -> jax.Array:
        u = _u(module, params, chunk, key, use_mean)
        if representation == "u":
            return u
        z_base, eps = module.apply({"params": params}, u, chunk["sample"], method=MrVAE.z_parts)
        return z_base + eps

    return latent


def counterfactual_states(
    module: MrVAE,
    params: Any,
    chunk: dict[str, jax.Array],
    codes: jax.Array,
    key: jax.Array,
    use_mean: bool = True,
) -> jax.Array:
    """Traceable: z of each cell of ``chunk`` under each sample code, shape (cells, samples, d)."""
    return states_for_samples(module, params, _u(module, params, chunk, key, use_mean), codes)


def states_for_samples(module: MrVAE, params: Any, u: jax.Array, codes: jax.Array) -> jax.Array:
    """Traceable: z for states ``u`` (..., d_u) under each sample code: (..., samples, d).

    The samples are visited one after the other (``lax.map``), not vectorised: each step's
    activations (cells x 128 floats per layer) then stay in the CPU's cache, which made the
    attention evaluations 2-5x faster per (cell, sample) pair here than one (cells x samples)
    batch; it also bounds device memory by one sample's activations.
    """

    def for_sample(code: jax.Array) -> jax.Array:
        sample = jnp.full(u.shape[:-1], code, dtype=jnp.int32)
        z_base, eps = module.apply({"params": params}, u, sample, method=MrVAE.z_parts)
        return z_base + eps

    return jnp.moveaxis(jax.lax.map(for_sample, codes), 0, -2)


def _counterfactual_fn(module: MrVAE, use_mean: bool) -> Any:
    @jax.jit
    def counterfactual(
        params: Any, chunk: dict[str, jax.Array], codes: jax.Array, key: jax.Array
    ) -> jax.Array:
        return counterfactual_states(module, params, chunk, codes, key, use_mean)

    return counterfactual
