"""The model stage as a dataset entry drives it: rules ``fit_mrvi`` and ``fit_scvi``."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from mrvi_repro.model import SCVI, MrVI

from ._sizes import cap

if TYPE_CHECKING:
    from pathlib import Path

    import anndata as ad

    from mrvi_repro.model._fitted import FittedModel

    from .entry import DatasetSpec, MrVISpec, SCVISpec

logger = logging.getLogger(__name__)


def fit_mrvi(
    adata: ad.AnnData, spec: DatasetSpec, *, checkpoint_dir: str | Path | None = None
) -> MrVI:
    """Fit MrVI to a preprocessed dataset as its entry says.

    Parameters
    ----------
    adata
        The preprocessed AnnData (raw counts of the selected genes in ``X``).
    spec
        The dataset entry: ``sample_key`` and ``batch_key`` name the target and nuisance
        covariates; ``mrvi`` gives the architecture, training schedule and seed. ``labels_key`` is
        passed to the model only for the ``"celltype"`` prior, the only part that uses labels.
    checkpoint_dir
        Folder of the fit's checkpoint: a killed fit resumes from it (see ``MrVI.fit``).

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
        checkpoint_dir,
        "mrvi",
        sample_key=spec.sample_key,
        batch_key=spec.batch_key,
        labels_key=labels_key,
    )


def fit_scvi(
    adata: ad.AnnData, spec: DatasetSpec, *, checkpoint_dir: str | Path | None = None
) -> SCVI:
    """Fit scVI to a preprocessed dataset as its entry's ``baselines.scvi`` section says.

    The composition-scVI baseline's representation: as in the paper, the decoder is given the
    entry's ``batch_key`` (the nuisance; ``baselines.scvi.batch_key`` when given) and not the
    sample.

    Parameters
    ----------
    adata
        The preprocessed AnnData (raw counts of the selected genes in ``X``).
    spec
        The dataset entry: ``batch_key`` and ``baselines.scvi`` (architecture, training schedule,
        seed, its own ``batch_key``).
    checkpoint_dir
        Folder of the fit's checkpoint: a killed fit resumes from it (see ``MrVI.fit``).

    Returns
    -------
    The fitted model; ``history`` has one row per epoch.
    """
    settings = spec.baselines.scvi
    batch_key = settings.batch_key or spec.batch_key
    logger.info(
        "dataset %r: fitting scVI on %d cells x %d genes (batch_key %r, seed %d)",
        spec.name,
        adata.n_obs,
        adata.n_vars,
        batch_key,
        settings.seed,
    )
    return _fit(SCVI, adata, settings, checkpoint_dir, "baselines.scvi", batch_key=batch_key)


def _fit[M: FittedModel](
    cls: type[M],
    adata: ad.AnnData,
    settings: MrVISpec | SCVISpec,
    checkpoint_dir: str | Path | None,
    section: str,
    **keys: str | None,
) -> M:
    """Fit ``cls`` with a fit section's settings and the covariate ``keys``, logging both.

    A minibatch is at most the training cells: a larger ``train.batch_size`` is capped (logged).
    """
    logger.info("model config: %s", settings.model)
    logger.info("train config: %s", settings.train)
    n_train = settings.train.n_train(adata.n_obs)
    cap(  # logged here, by its key; the training loop applies it
        settings.train.batch_size,
        n_train,
        f"{section}.train.batch_size",
        f"{n_train} training cells",
    )
    model = cls.fit(
        adata,
        config=settings.model,
        train=settings.train,
        seed=settings.seed,
        checkpoint_dir=checkpoint_dir,
        **keys,
    )
    history = model.history
    if len(history):
        last = history.iloc[-1]
        logger.info(
            "trained %d epochs; final train loss %.3f, validation negative ELBO %s",
            len(history),
            last["train_loss"],
            f"{last['val_neg_elbo']:.3f}" if "val_neg_elbo" in history else "n/a",
        )
        logger.info("the model keeps the parameters of epoch %s", model.params_epoch)
    return model
