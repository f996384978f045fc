"""Adapter of rule sample_groups: stratification -> derived sample covariates and their tests."""

import anndata as ad
import xarray as xr

from mrvi_repro._logging import setup_logging
from mrvi_repro.pipeline import DatasetSpec
from mrvi_repro.pipeline.comparisons import derive_sample_groups

setup_logging(snakemake.log[0])
spec = DatasetSpec.from_dict(snakemake.wildcards.dataset, snakemake.params.entry)
strat = xr.load_dataset(snakemake.input.stratification)
groups, tests = derive_sample_groups(strat, ad.read_h5ad(snakemake.input.h5ad, backed="r"), spec)
groups.to_csv(snakemake.output.groups, sep="\t", index=False)
tests.to_csv(snakemake.output.tests, sep="\t", index=False)
