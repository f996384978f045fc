"""Adapter of rule differential_abundance: MrVI + data -> per-cell DA log ratios per covariate."""

import anndata as ad

from mrvi_repro._logging import setup_logging
from mrvi_repro.model import MrVI
from mrvi_repro.pipeline import DatasetSpec
from mrvi_repro.pipeline.analysis import mrvi_da

setup_logging(snakemake.log[0])
spec = DatasetSpec.from_dict(snakemake.wildcards.dataset, snakemake.params.entry)
model, adata = MrVI.load(snakemake.input.model), ad.read_h5ad(snakemake.input.h5ad)
mrvi_da(model, adata, spec).to_netcdf(snakemake.output[0], engine="scipy")
