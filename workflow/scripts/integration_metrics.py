"""Adapter of rule integration_metrics: MrVI u, scVI, PCA -> scib-metrics silhouettes etc."""

import anndata as ad

from mrvi_repro._logging import setup_logging
from mrvi_repro.pipeline import DatasetSpec
from mrvi_repro.pipeline.metrics import integration_benchmark

setup_logging(snakemake.log[0])
spec = DatasetSpec.from_dict(snakemake.wildcards.dataset, snakemake.params.entry)
latent = ad.read_h5ad(snakemake.input.latent)
reps = ad.read_h5ad(snakemake.input.representations)
integration_benchmark(latent, reps, spec).to_csv(snakemake.output[0], sep="\t", index=False)
