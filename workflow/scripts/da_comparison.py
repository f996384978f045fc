"""Adapter of rule da_comparison: MrVI + data -> one named DA comparison and its cluster test."""

import anndata as ad
import pandas as pd
import xarray as xr

from mrvi_repro._logging import setup_logging
from mrvi_repro.model import MrVI
from mrvi_repro.pipeline import DatasetSpec
from mrvi_repro.pipeline.comparisons import run_da_comparison

setup_logging(snakemake.log[0])
spec = DatasetSpec.from_dict(snakemake.wildcards.dataset, snakemake.params.entry)
inputs = snakemake.input
da, test = run_da_comparison(
    MrVI.load(inputs.model),
    ad.read_h5ad(inputs.h5ad),
    spec,
    snakemake.wildcards.comparison,
    sample_groups_table=pd.read_csv(inputs.groups, sep="\t") if "groups" in inputs.keys() else None,
    stratification=xr.load_dataset(inputs.stratification)
    if "stratification" in inputs.keys()
    else None,
)
da.to_netcdf(snakemake.output.da, engine="scipy")
test.to_csv(snakemake.output.test, sep="\t", index=False)
