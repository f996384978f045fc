"""Adapter of rule de_comparison: MrVI + data -> one named DE comparison (LFCs, modules, GSEA)."""

import anndata as ad
import pandas as pd
import xarray as xr

from mrvi_repro._logging import setup_logging
from mrvi_repro.model import MrVI
from mrvi_repro.pipeline import DatasetSpec
from mrvi_repro.pipeline.comparisons import run_de_comparison

setup_logging(snakemake.log[0])
spec = DatasetSpec.from_dict(snakemake.wildcards.dataset, snakemake.params.entry)
inputs = snakemake.input
de, modules, gsea = run_de_comparison(
    MrVI.load(inputs.model),
    ad.read_h5ad(inputs.h5ad),
    spec,
    snakemake.wildcards.comparison,
    lfc_store=snakemake.output.lfc,
    sample_groups_table=pd.read_csv(inputs.groups, sep="\t") if "groups" in inputs.keys() else None,
    stratification=xr.load_dataset(inputs.stratification)
    if "stratification" in inputs.keys()
    else None,
    gene_sets=inputs.gene_sets if "gene_sets" in inputs.keys() else None,
)
de.to_netcdf(snakemake.output.de, engine="scipy")
modules.to_csv(snakemake.output.modules, sep="\t", index=False)
gsea.to_csv(snakemake.output.gsea, sep="\t", index=False)
