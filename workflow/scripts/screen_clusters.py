"""Adapter of rule screen_clusters: MrVI + distances -> retained samples, clusters, DE, enrichment."""

import anndata as ad
import xarray as xr

from mrvi_repro._logging import setup_logging
from mrvi_repro.model import MrVI
from mrvi_repro.pipeline import DatasetSpec
from mrvi_repro.pipeline.screen import run_screen_clusters

setup_logging(snakemake.log[0])
spec = DatasetSpec.from_dict(snakemake.wildcards.dataset, snakemake.params.entry)
inputs = snakemake.input
clusters, de, enrichment = run_screen_clusters(
    MrVI.load(inputs.model),
    ad.read_h5ad(inputs.h5ad),
    spec,
    xr.load_dataset(inputs.distances)["distance"],
    gene_sets=inputs.gene_sets if "gene_sets" in inputs.keys() else None,
)
clusters.to_csv(snakemake.output.clusters, sep="\t", index=False)
de.to_netcdf(snakemake.output.de, engine="scipy")
enrichment.to_csv(snakemake.output.enrichment, sep="\t", index=False)
