"""Adapter of rule composition_distances: representations -> composition distances per cluster."""

import anndata as ad

from mrvi_repro._logging import setup_logging
from mrvi_repro.pipeline import DatasetSpec
from mrvi_repro.pipeline.baselines import composition_baseline

setup_logging(snakemake.log[0])
spec = DatasetSpec.from_dict(snakemake.wildcards.dataset, snakemake.params.entry)
dist = composition_baseline(ad.read_h5ad(snakemake.input[0]), spec, snakemake.wildcards.rep)
dist.to_netcdf(snakemake.output[0], engine="scipy")
