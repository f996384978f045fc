"""The metric rules that a dataset entry drives: rule ``integration_metrics``."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

from mrvi_repro.metrics import integration_metrics
from mrvi_repro.settings.names import LATENT_KEYS, REPRESENTATION_KEYS

if TYPE_CHECKING:
    import anndata as ad
    import pandas as pd

    from .entry import DatasetSpec

logger = logging.getLogger(__name__)


def integration_benchmark(
    mrvi_latent: ad.AnnData,
    representations: ad.AnnData,
    spec: DatasetSpec,
    *,
    variants: dict[str, ad.AnnData] | None = None,
) -> pd.DataFrame:
    """Supp. Fig. 2: integration metrics of MrVI's u, scVI and PCA (summary records).

    Labels: the entry's ``labels_key``; nuisance groups: ``analysis.integration.batch_key``,
    else its ``batch_key``, else the samples.
    Without ``labels_key``, or with a single label, the label metrics are NaN with the reason in
    the table's ``note`` column; the nuisance mixing is still scored. ``variants``: the latent
    files of the entry's MrVI variants, scored after MrVI as ``mrvi_<name>``.
    """
    variants = dict(variants or {})
    for name, other in {"representations": representations, **variants}.items():
        if not np.array_equal(mrvi_latent.obs_names, other.obs_names):
            msg = f"the MrVI latent file and the {name!r} file hold different cells"
            raise ValueError(msg)
    obs = mrvi_latent.obs
    batch_key = spec.analysis.integration.batch_key or spec.batch_key
    if batch_key is not None and batch_key not in obs.columns:
        msg = f"integration batch key {batch_key!r} is not an obs column of the latent file"
        raise KeyError(msg)
    embeddings = {
        "mrvi": mrvi_latent.obsm[LATENT_KEYS["u"]],
        **{f"mrvi_{name}": v.obsm[LATENT_KEYS["u"]] for name, v in variants.items()},
        # the order of the paper's table (Supp. Fig. 2): MrVI, scVI, PCA
        **{rep: representations.obsm[REPRESENTATION_KEYS[rep]] for rep in ("scvi", "pca")},
    }
    return integration_metrics(
        embeddings,
        None if spec.labels_key is None else obs[spec.labels_key],
        obs[spec.sample_key],
        None if batch_key is None else obs[batch_key],
        seed=spec.mrvi.seed,
    )
