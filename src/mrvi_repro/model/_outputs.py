"""What a fitted model writes: the model folder (atomically) and AnnData files of cell representations."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import anndata as ad
import numpy as np
import pandas as pd

from mrvi_repro.settings.names import LATENT_KEYS

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ._fitted import FittedModel
    from ._model import MrVI

logger = logging.getLogger(__name__)


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
