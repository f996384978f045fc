"""Adapter of rule de_metrics: MrVI and miloDE subset-A LFCs -> Pearson r against DESeq2."""

import anndata as ad
import pandas as pd
import xarray as xr

from mrvi_repro._logging import setup_logging
from mrvi_repro.metrics import semisynthetic_de_metrics

setup_logging(snakemake.log[0])
inp = snakemake.input
scatter, records = semisynthetic_de_metrics(
    ad.read_h5ad(inp.h5ad, backed="r"),
    xr.load_dataset(inp.mrvi),
    xr.load_dataset(inp.milode),
    pd.read_csv(inp.deseq2, sep="\t"),
)
scatter.to_csv(snakemake.output.scatter, sep="\t", index=False)
records.to_csv(snakemake.output.records, sep="\t", index=False)
