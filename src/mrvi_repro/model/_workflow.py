"""What the workflow's model rules do: fit MrVI or scVI from a dataset entry, save, collect latents."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import anndata as ad
import numpy as np
import pandas as pd

from ._model import MrVI
from ._scvi import SCVI

if TYPE_CHECKING:
    from collections.abc import Mapping

    from mrvi_repro.data import DatasetSpec, MrVISpec, SCVISpec

    from ._base import FittedModel

logger = logging.getLogger(__name__)

#: ``obsm`` keys of the latents written by :func:`latent_anndata`.
LATENT_KEYS = {"u": "X_mrvi_u", "z": "X_mrvi_z"}


def fit_mrvi(adata: ad.AnnData, spec: DatasetSpec) -> MrVI:
    """Fit MrVI to a preprocessed dataset as its entry says.

    Parameters
    ----------
    adata
        The preprocessed AnnData (raw counts of the selected genes in ``X``).
    spec
        The dataset entry: ``sample_key`` and ``batch_key`` name the target and nuisance
        covariates; ``mrvi`` gives the architecture, training schedule and seed. ``labels_key`` is
        passed to the model only for the ``"celltype"`` prior, the only part that uses labels.

    Returns
    -------
    The fitted model; ``history`` has one row per epoch.
    """
    settings = spec.mrvi
    labels_key = spec.labels_key if settings.model.prior == "celltype" else None
    logger.info(
        "dataset %r: fitting MrVI on %d cells x %d genes (sample_key %r, batch_key %r, "
        "labels_key %r, seed %d)",
        spec.name,
        adata.n_obs,
        adata.n_vars,
        spec.sample_key,
        spec.batch_key,
        labels_key,
        settings.seed,
    )
    return _fit(
        MrVI,
        adata,
        settings,
        sample_key=spec.sample_key,
        batch_key=spec.batch_key,
        labels_key=labels_key,
    )


def fit_scvi(adata: ad.AnnData, spec: DatasetSpec) -> SCVI:
    """Fit scVI to a preprocessed dataset as its entry's ``baselines.scvi`` section says.

    The composition-scVI baseline's representation: as in the paper, the decoder is given the
    entry's ``batch_key`` (the nuisance) and not the sample.

    Parameters
    ----------
    adata
        The preprocessed AnnData (raw counts of the selected genes in ``X``).
    spec
        The dataset entry: ``batch_key`` and ``baselines.scvi`` (architecture, training schedule,
        seed).

    Returns
    -------
    The fitted model; ``history`` has one row per epoch.
    """
    settings = spec.baselines.scvi
    logger.info(
        "dataset %r: fitting scVI on %d cells x %d genes (batch_key %r, seed %d)",
        spec.name,
        adata.n_obs,
        adata.n_vars,
        spec.batch_key,
        settings.seed,
    )
    return _fit(SCVI, adata, settings, batch_key=spec.batch_key)


def _fit[M: FittedModel](
    cls: type[M], adata: ad.AnnData, settings: MrVISpec | SCVISpec, **keys: str | None
) -> M:
    """Fit ``cls`` with a fit section's settings and the covariate ``keys``, logging both."""
    logger.info("model config: %s", settings.model)
    logger.info("train config: %s", settings.train)
    model = cls.fit(adata, config=settings.model, train=settings.train, seed=settings.seed, **keys)
    history = model.history
    if len(history):
        last = history.iloc[-1]
        logger.info(
            "trained %d epochs; final train loss %.3f, validation ELBO %s",
            len(history),
            last["train_loss"],
            f"{last['val_elbo']:.3f}" if "val_elbo" in history else "n/a",
        )
    return model


def write_model(model: FittedModel, path: str | Path) -> None:
    """Save a model into a folder so that the folder never holds a partial model.

    The model is written into a temporary sibling folder, which then replaces ``path``; an error or
    an interruption while writing leaves ``path`` as it was.

    Parameters
    ----------
    model
        The fitted model (MrVI or scVI).
    path
        Destination folder (gets ``model.json`` and ``params.msgpack``); an existing one is
        replaced.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        model.save(tmp)
        if path.exists():
            shutil.rmtree(path)
        tmp.rename(path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    logger.info("wrote the model to %s", path)


def latent_anndata(model: MrVI, adata: ad.AnnData, *, batch_size: int = 1024) -> ad.AnnData:
    """Collect MrVI's latent u and z of every cell into a light AnnData.

    Parameters
    ----------
    model
        A fitted model.
    adata
        The data it was fitted to (or other cells with the same genes and known samples).
    batch_size
        Cells per inference chunk.

    Returns
    -------
    An AnnData without ``X``, with the cells' ``obs`` and the gene names of ``adata``;
    ``obsm["X_mrvi_u"]`` and ``obsm["X_mrvi_z"]`` hold the posterior means of u and z (float32),
    ``uns["latent_keys"]`` lists those keys, ``uns["mrvi"]`` the covariate keys and the latent
    sizes, and ``uns["mrvi_history"]`` the training history (one row per epoch).
    """
    out = embedding_anndata(
        adata,
        {
            key: model.get_latent(adata, rep, batch_size=batch_size)
            for rep, key in LATENT_KEYS.items()
        },
    )
    reg = model.registry
    out.uns["mrvi"] = {
        "sample_key": reg.sample_key,
        "batch_key": reg.batch_key or "",
        "labels_key": reg.labels_key or "",
        "n_latent": model.config.n_latent,
        "n_latent_u": model.config.n_latent_u,
        "prior": model.config.prior,
        "n_epochs": len(model.history),
    }
    out.uns["mrvi_history"] = model.history.copy()
    logger.info(
        "latents of %d cells: u %s, z %s",
        out.n_obs,
        out.obsm[LATENT_KEYS["u"]].shape[1],
        out.obsm[LATENT_KEYS["z"]].shape[1],
    )
    return out


def embedding_anndata(adata: ad.AnnData, embeddings: Mapping[str, np.ndarray]) -> ad.AnnData:
    """Put cell representations into a light AnnData, the layout every representation file shares.

    Parameters
    ----------
    adata
        The cells (their ``obs`` and gene names are kept; ``X`` is not).
    embeddings
        ``obsm`` key -> ``n_obs x d`` array.

    Returns
    -------
    An AnnData without ``X``, with ``adata``'s ``obs`` and gene names, every embedding in ``obsm``
    as float32 and ``uns["latent_keys"]`` listing their keys.

    Raises
    ------
    FloatingPointError
        If an embedding has NaN or infinite values.
    """
    out = ad.AnnData(obs=adata.obs.copy(), var=pd.DataFrame(index=adata.var_names.copy()))
    for key, values in embeddings.items():
        array = np.asarray(values, dtype=np.float32)
        if not np.isfinite(array).all():
            msg = f"{key} has {int((~np.isfinite(array)).sum())} NaN or infinite values"
            raise FloatingPointError(msg)
        out.obsm[key] = array
    out.uns["latent_keys"] = list(embeddings)
    return out
