"""Adapter of rule integration_metrics: MrVI u (and its variants'), scVI, PCA -> silhouettes etc."""

import anndata as ad

from mrvi_repro._logging import setup_logging
from mrvi_repro.pipeline import DatasetSpec
from mrvi_repro.pipeline.metrics import integration_benchmark

setup_logging(snakemake.log[0])
spec = DatasetSpec.from_dict(snakemake.wildcards.dataset, snakemake.params.entry)
latent = ad.read_h5ad(snakemake.input.latent)
reps = ad.read_h5ad(snakemake.input.representations)
files = snakemake.input.variants
variants = dict(zip(snakemake.params.variants, map(ad.read_h5ad, files), strict=True))
table = integration_benchmark(latent, reps, spec, variants=variants)
table.to_csv(snakemake.output[0], sep="\t", index=False)
