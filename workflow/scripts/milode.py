"""Adapter of rule milode: data + representations -> miloDE LFCs per group and per-nhood table."""

import anndata as ad

from mrvi_repro._logging import setup_logging
from mrvi_repro.pipeline import DatasetSpec
from mrvi_repro.pipeline.baselines import milode_baseline

setup_logging(snakemake.log[0])
spec = DatasetSpec.from_dict(snakemake.wildcards.dataset, snakemake.params.entry)
adata, reps = ad.read_h5ad(snakemake.input.h5ad), ad.read_h5ad(snakemake.input.representations)
lfc, table = milode_baseline(adata, reps, spec)
lfc.to_netcdf(snakemake.output.lfc, engine="scipy")
table.to_csv(snakemake.output.table, sep="\t", index=False)
