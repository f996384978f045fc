"""Adapter of rules latent_mrvi and latent_mrvi_variant: trained MrVI + its data -> AnnData with u and z in obsm."""

import anndata as ad

from mrvi_repro._logging import setup_logging
from mrvi_repro.model import MrVI, latent_anndata

setup_logging(snakemake.log[0])
model = MrVI.load(snakemake.input.model)
latent_anndata(model, ad.read_h5ad(snakemake.input.h5ad)).write_h5ad(snakemake.output[0])
