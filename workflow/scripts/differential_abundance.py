"""Adapter of rule differential_abundance: MrVI + data -> per-cell DA log ratios per covariate."""

import anndata as ad

from mrvi_repro._logging import setup_logging
from mrvi_repro.analysis import differential_abundance_binary
from mrvi_repro.model import MrVI

setup_logging(snakemake.log[0])
model, adata = MrVI.load(snakemake.input.model), ad.read_h5ad(snakemake.input.h5ad)
covariates = snakemake.params.analysis["covariates"]
differential_abundance_binary(model, adata, covariates).to_netcdf(
    snakemake.output[0], engine="scipy"
)
