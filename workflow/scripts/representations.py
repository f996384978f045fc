"""Adapter of rule representations: scVI + data -> AnnData with PCA and scVI in obsm."""

import anndata as ad

from mrvi_repro._logging import setup_logging
from mrvi_repro.model import SCVI
from mrvi_repro.pipeline import DatasetSpec
from mrvi_repro.pipeline.baselines import baseline_representations

setup_logging(snakemake.log[0])
spec = DatasetSpec.from_dict(snakemake.wildcards.dataset, snakemake.params.entry)
model, adata = SCVI.load(snakemake.input.model), ad.read_h5ad(snakemake.input.h5ad)
baseline_representations(adata, model, spec).write_h5ad(snakemake.output[0])
