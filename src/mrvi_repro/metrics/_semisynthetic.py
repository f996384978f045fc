"""The semi-synthetic benchmark as the metric rules compute it, and the summary table.

Each takes what its rule reads (AnnData, xarray, DataFrames) and returns the tables it writes: a detail table for the figures and/or tidy ``method`` / ``metric`` /
``value`` records that :func:`collect_summary` gathers into ``metrics/summary.tsv``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import pandas as pd

from mrvi_repro.settings.names import DA_ESTIMATORS, DA_METHODS, da_variable

from ._benchmark import (
    DA_COVARIATE,
    SemisyntheticTruth,
    da_benchmark,
    da_scores,
    de_benchmark,
    de_lfcs,
    tree_benchmark,
)
from ._metrics import SUMMARY_COLUMNS, summary_table

if TYPE_CHECKING:
    import anndata as ad
    import xarray as xr


def semisynthetic_da_metrics(
    adata: ad.AnnData, mrvi_da: xr.Dataset, milo: xr.Dataset
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fig. 2e: PR curves and AUCs of MrVI's and Milo's DA on the strong-resampling covariate.

    Every DA estimator in MrVI's file is scored as its own method (:data:`DA_METHODS`: ``mrvi``
    for the mixture, ``mrvi_per_dimension`` for the per-dimension estimator).
    """
    truth = SemisyntheticTruth.from_adata(adata)
    results = {}
    for estimator in DA_ESTIMATORS:
        var = da_variable(DA_COVARIATE, estimator)
        if var in mrvi_da:
            results[DA_METHODS[estimator]] = mrvi_da[[var]].rename({var: da_variable(DA_COVARIATE)})
    if not results:  # da_scores names what is missing
        results["mrvi"] = mrvi_da
    results["milo"] = milo
    return da_benchmark(da_scores(truth, results), truth.da_cell)


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


def collect_summary(tables: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate summary records into one validated tidy table (one row per method, metric)."""
    frames = [t for t in tables if len(t)]
    if not frames:
        return pd.DataFrame(columns=list(SUMMARY_COLUMNS))
    return summary_table(pd.concat(frames, ignore_index=True)[list(SUMMARY_COLUMNS)])
