"""Adapter of rule metric_figures: summary and integration tables -> tile-table figures."""

import pandas as pd

from mrvi_repro._logging import setup_logging
from mrvi_repro.plotting import metric_figures, save_figure

setup_logging(snakemake.log[0])
panels = metric_figures(
    pd.read_csv(snakemake.input.summary, sep="\t"),
    pd.read_csv(snakemake.input.integration, sep="\t"),
)
for name in ("summary", "integration"):
    panel = panels[f"{name}_metrics"]
    save_figure(panel.plot, snakemake.output[name], width=panel.width, height=panel.height)
