"""Adapter of rule fig3_panels: an entry's outputs -> the cohort figure's panels (Fig. 3, ED 1)."""

import pandas as pd

from mrvi_repro._logging import setup_logging
from mrvi_repro.pipeline import DatasetSpec
from mrvi_repro.pipeline.figures import load_cohort_results, write_fig3

setup_logging(snakemake.log[0])
spec = DatasetSpec.from_dict(snakemake.wildcards.dataset, snakemake.params.entry)
inputs = {k: v for k, v in snakemake.input.items() if k != "umap"}
results = load_cohort_results(spec, **inputs)
write_fig3(spec, results, pd.read_csv(snakemake.input.umap, sep="\t"), snakemake.output)
