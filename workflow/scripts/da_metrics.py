"""Adapter of rule da_metrics: MrVI and Milo DA -> PR curves and AUCs against the planted truth."""

import anndata as ad
import xarray as xr

from mrvi_repro._logging import setup_logging
from mrvi_repro.metrics import semisynthetic_da_metrics

setup_logging(snakemake.log[0])
inp = snakemake.input
curves, records = semisynthetic_da_metrics(
    ad.read_h5ad(inp.h5ad, backed="r"), xr.load_dataset(inp.mrvi), xr.load_dataset(inp.milo)
)
curves.to_csv(snakemake.output.curves, sep="\t", index=False)
records.to_csv(snakemake.output.records, sep="\t", index=False)
