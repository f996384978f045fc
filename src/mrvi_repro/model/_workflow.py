"""What the workflow's MrVI rules do: fit from a dataset entry, save safely, collect the latents."""

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

if TYPE_CHECKING:
    from mrvi_repro.data import DatasetSpec

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
    logger.info("model config: %s", settings.model)
    logger.info("train config: %s", settings.train)
    model = MrVI.fit(
        adata,
        sample_key=spec.sample_key,
        batch_key=spec.batch_key,
        labels_key=labels_key,
        config=settings.model,
        train=settings.train,
        seed=settings.seed,
    )
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


def write_model(model: MrVI, path: str | Path) -> None:
    """Save a model into a folder so that the folder never holds a partial model.

    The model is written into a temporary sibling folder, which then replaces ``path``; an error or
    an interruption while writing leaves ``path`` as it was.

    Parameters
    ----------
    model
        The fitted model.
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
    out = ad.AnnData(obs=adata.obs.copy(), var=pd.DataFrame(index=adata.var_names.copy()))
    for rep, key in LATENT_KEYS.items():
        latent = model.get_latent(adata, rep, batch_size=batch_size).astype(np.float32)
        if not np.isfinite(latent).all():
            msg = f"latent {rep} has {int((~np.isfinite(latent)).sum())} NaN or infinite values"
            raise FloatingPointError(msg)
        out.obsm[key] = latent
    out.uns["latent_keys"] = list(LATENT_KEYS.values())
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
