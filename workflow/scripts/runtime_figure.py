"""Adapter of rule runtime_figure: Snakemake benchmark files -> run time and memory per rule."""

from pathlib import Path

import pandas as pd

from mrvi_repro._logging import setup_logging
from mrvi_repro.plotting import runtime_figure, save_figure

setup_logging(snakemake.log[0])
root = Path("results", snakemake.wildcards.dataset, "benchmarks")
tables = [
    (str(Path(p).relative_to(root).with_suffix("")), pd.read_csv(p, sep="\t"))
    for p in snakemake.input
]
panel = runtime_figure(tables)
save_figure(panel.plot, snakemake.output[0], width=panel.width, height=panel.height)
