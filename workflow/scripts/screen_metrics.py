"""Adapter of rule screen_metrics: sample distances of each method -> Fig. 4d's metrics."""

import anndata as ad
import pandas as pd
import xarray as xr

from mrvi_repro._logging import setup_logging
from mrvi_repro.pipeline import DatasetSpec
from mrvi_repro.pipeline.screen import run_screen_metrics

setup_logging(snakemake.log[0])
spec = DatasetSpec.from_dict(snakemake.wildcards.dataset, snakemake.params.entry)
inputs = snakemake.input
matrices = {
    method: xr.load_dataset(path)["distance"]
    for method, path in (
        ("mrvi", inputs.mrvi),
        ("composition_pca", inputs.pca),
        ("composition_scvi", inputs.scvi),
    )
}
cmap = pd.read_csv(inputs.cmap, sep="\t", dtype=str) if "cmap" in inputs.keys() else None
table = run_screen_metrics(
    spec, ad.read_h5ad(inputs.h5ad, backed="r"), matrices, cmap_clusters=cmap
)
table.to_csv(snakemake.output[0], sep="\t", index=False)
