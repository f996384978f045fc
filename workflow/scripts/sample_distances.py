"""Adapter of rule sample_distances: MrVI + data -> mean local sample distances per label group."""

import anndata as ad

from mrvi_repro._logging import setup_logging
from mrvi_repro.analysis import local_sample_distances
from mrvi_repro.model import MrVI

setup_logging(snakemake.log[0])
model, adata = MrVI.load(snakemake.input.model), ad.read_h5ad(snakemake.input.h5ad)
groupby = snakemake.params.analysis["groupby"]
local_sample_distances(model, adata, groupby=groupby).to_netcdf(snakemake.output[0], engine="scipy")
