"""Adapter of rule milo: data + representations -> Milo per-cell DA log ratios per covariate."""

import anndata as ad

from mrvi_repro._logging import setup_logging
from mrvi_repro.pipeline import DatasetSpec
from mrvi_repro.pipeline.baselines import milo_baseline

setup_logging(snakemake.log[0])
spec = DatasetSpec.from_dict(snakemake.wildcards.dataset, snakemake.params.entry)
adata, reps = ad.read_h5ad(snakemake.input.h5ad), ad.read_h5ad(snakemake.input.representations)
milo_baseline(adata, reps, spec).to_netcdf(snakemake.output[0], engine="scipy")
