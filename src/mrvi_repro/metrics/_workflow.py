"""The benchmark metrics as the workflow computes them: one function per rule of ``metrics.smk``.

Each takes what its rule reads (AnnData, xarray, DataFrames, the parsed dataset entry) and returns
the tables it writes: a detail table for the figures and/or tidy ``method`` / ``metric`` /
``value`` records that :func:`collect_summary` gathers into ``metrics/summary.tsv``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ._benchmark import (
    SemisyntheticTruth,
    da_benchmark,
    da_scores,
    de_benchmark,
    de_lfcs,
    tree_benchmark,
)
from ._integration import integration_metrics
from ._metrics import SUMMARY_COLUMNS, summary_table

if TYPE_CHECKING:
    import anndata as ad
    import xarray as xr

    from mrvi_repro.data import DatasetSpec

logger = logging.getLogger(__name__)


def semisynthetic_da_metrics(
    adata: ad.AnnData, mrvi_da: xr.Dataset, milo: xr.Dataset
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fig. 2e: PR curves and AUCs of MrVI's and Milo's DA on the strong-resampling covariate."""
    truth = SemisyntheticTruth.from_adata(adata)
    return da_benchmark(da_scores(truth, {"mrvi": mrvi_da, "milo": milo}), truth.da_cell)


def semisynthetic_de_metrics(
    adata: ad.AnnData, mrvi_de: xr.Dataset, milode: xr.Dataset, deseq2: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fig. 2g: subset-A LFCs of MrVI and miloDE against DESeq2 pseudobulk, Pearson r."""
    truth = SemisyntheticTruth.from_adata(adata)
    lfcs, reference = de_lfcs(mrvi_de, milode, deseq2, group=truth.subset_clusters["A"])
    return de_benchmark(lfcs, reference)


def semisynthetic_tree_metrics(
    adata: ad.AnnData,
    mrvi: xr.DataArray,
    composition_pca: xr.DataArray,
    composition_scvi: xr.DataArray,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fig. 2c: recovery of the planted subject tree by MrVI and the composition baselines."""
    truth = SemisyntheticTruth.from_adata(adata)
    matrices = {
        "mrvi": mrvi,
        "composition_pca": composition_pca,
        "composition_scvi": composition_scvi,
    }
    return tree_benchmark(matrices, truth)


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
        "mrvi": mrvi_latent.obsm["X_mrvi_u"],
        "scvi": representations.obsm["X_scvi"],
        "pca": representations.obsm["X_pca"],
    }
    return integration_metrics(
        embeddings,
        obs[spec.labels_key],
        obs[spec.sample_key],
        None if spec.batch_key is None else obs[spec.batch_key],
        seed=spec.mrvi.seed,
    )


def collect_summary(tables: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate summary records into one validated tidy table (one row per method, metric)."""
    frames = [t for t in tables if len(t)]
    if not frames:
        return pd.DataFrame(columns=list(SUMMARY_COLUMNS))
    return summary_table(pd.concat(frames, ignore_index=True)[list(SUMMARY_COLUMNS)])
