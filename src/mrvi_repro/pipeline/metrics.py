"""The metric rules that a dataset entry drives: rule ``integration_metrics``."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mrvi_repro.metrics import SUMMARY_COLUMNS, integration_metrics
from mrvi_repro.settings.names import LATENT_KEYS, REPRESENTATION_KEYS

if TYPE_CHECKING:
    import anndata as ad

    from .entry import DatasetSpec

logger = logging.getLogger(__name__)


def integration_benchmark(
    mrvi_latent: ad.AnnData, representations: ad.AnnData, spec: DatasetSpec
) -> pd.DataFrame:
    """Supp. Fig. 2: integration metrics of MrVI's u, scVI and PCA (summary records).

    Labels: the entry's ``labels_key``; nuisance groups: its ``batch_key``, or the samples. A
    dataset without ``labels_key`` gets an empty table (logged): the metrics need cell types.
    """
    if spec.labels_key is None:
        logger.warning("no labels_key: integration metrics skipped")
        return pd.DataFrame(columns=list(SUMMARY_COLUMNS))
    if not np.array_equal(mrvi_latent.obs_names, representations.obs_names):
        msg = "the MrVI latent file and the representations file hold different cells"
        raise ValueError(msg)
    obs = mrvi_latent.obs
    embeddings = {
        "mrvi": mrvi_latent.obsm[LATENT_KEYS["u"]],
        # the order of the paper's table (Supp. Fig. 2): MrVI, scVI, PCA
        **{rep: representations.obsm[REPRESENTATION_KEYS[rep]] for rep in ("scvi", "pca")},
    }
    return integration_metrics(
        embeddings,
        obs[spec.labels_key],
        obs[spec.sample_key],
        None if spec.batch_key is None else obs[spec.batch_key],
        seed=spec.mrvi.seed,
    )
