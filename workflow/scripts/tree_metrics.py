"""Adapter of rule tree_metrics: per-group distance matrices -> recovery of the planted tree."""

import anndata as ad
import xarray as xr

from mrvi_repro._logging import setup_logging
from mrvi_repro.metrics import semisynthetic_tree_metrics

setup_logging(snakemake.log[0])
inp = snakemake.input
table, records = semisynthetic_tree_metrics(
    ad.read_h5ad(inp.h5ad, backed="r"),
    *(xr.load_dataarray(p) for p in (inp.mrvi, inp.composition_pca, inp.composition_scvi)),
)
table.to_csv(snakemake.output.table, sep="\t", index=False)
records.to_csv(snakemake.output.records, sep="\t", index=False)
