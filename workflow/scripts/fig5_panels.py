"""Adapter of rule fig5_panels: an entry's outputs -> the disease-behaviour figure (Fig. 5, ED 6-7)."""

import pandas as pd

from mrvi_repro._logging import setup_logging
from mrvi_repro.pipeline import DatasetSpec
from mrvi_repro.pipeline.figures import load_stenosis_results, write_fig5

setup_logging(snakemake.log[0])
spec = DatasetSpec.from_dict(snakemake.wildcards.dataset, snakemake.params.entry)
inputs = {k: v for k, v in snakemake.input.items() if k != "umap"}
results = load_stenosis_results(spec, **inputs, markers=True)
write_fig5(spec, results, pd.read_csv(snakemake.input.umap, sep="\t"), snakemake.output)
