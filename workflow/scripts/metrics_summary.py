"""Adapter of rule metrics_summary: the metric rules' records -> one tidy summary.tsv."""

import pandas as pd

from mrvi_repro._logging import setup_logging
from mrvi_repro.metrics import collect_summary

setup_logging(snakemake.log[0])
tables = [pd.read_csv(p, sep="\t") for p in snakemake.input]
collect_summary(tables).to_csv(snakemake.output[0], sep="\t", index=False)
