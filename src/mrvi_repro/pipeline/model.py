"""The model stage as a dataset entry drives it: rules ``fit_mrvi`` and ``fit_scvi``."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from mrvi_repro.model import SCVI, MrVI

if TYPE_CHECKING:
    import anndata as ad

    from mrvi_repro.model._fitted import FittedModel

    from .entry import DatasetSpec, MrVISpec, SCVISpec

logger = logging.getLogger(__name__)


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
            "trained %d epochs; final train loss %.3f, validation negative ELBO %s",
            len(history),
            last["train_loss"],
            f"{last['val_neg_elbo']:.3f}" if "val_neg_elbo" in history else "n/a",
        )
    return model
