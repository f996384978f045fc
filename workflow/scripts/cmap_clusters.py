"""Adapter of rule cmap_clusters: iLINCS L1000 exports -> Connectivity Map clusters of the drugs."""

import anndata as ad

from mrvi_repro._logging import setup_logging
from mrvi_repro.pipeline import DatasetSpec
from mrvi_repro.pipeline.screen import run_cmap_clusters

setup_logging(snakemake.log[0])
spec = DatasetSpec.from_dict(snakemake.wildcards.dataset, snakemake.params.entry)
similarity, clusters = run_cmap_clusters(
    spec,
    ad.read_h5ad(snakemake.input.h5ad, backed="r"),
    list(snakemake.input.signatures),
    list(snakemake.input.metadata),
)
similarity.to_csv(snakemake.output.similarity, sep="\t")
clusters.to_csv(snakemake.output.clusters, sep="\t", index=False)
