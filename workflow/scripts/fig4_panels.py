"""Adapter of rule fig4_panels: an entry's outputs -> the screen figure's panels (Fig. 4, ED 2-4)."""

import pandas as pd

from mrvi_repro._logging import setup_logging
from mrvi_repro.pipeline import DatasetSpec
from mrvi_repro.pipeline.screen import load_screen_results, write_fig4

setup_logging(snakemake.log[0])
spec = DatasetSpec.from_dict(snakemake.wildcards.dataset, snakemake.params.entry)
inputs = {k: v for k, v in snakemake.input.items() if k != "umap"}
results = load_screen_results(spec, **inputs)
write_fig4(spec, results, pd.read_csv(snakemake.input.umap, sep="\t"), snakemake.output)
