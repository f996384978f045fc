"""Adapter of rule simulate_base: dataset entry -> simulated raw counts."""

from mrvi_repro._logging import setup_logging
from mrvi_repro.data.simulate import simulate_base
from mrvi_repro.pipeline import DatasetSpec

setup_logging(snakemake.log[0])
spec = DatasetSpec.from_dict(snakemake.wildcards.dataset, snakemake.params.entry)
simulate_base(spec.source).write_h5ad(snakemake.output[0])
