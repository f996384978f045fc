"""Adapter of the standin_<writer> rules: a stand-in writer -> the registry files it makes."""

from mrvi_repro._logging import setup_logging
from mrvi_repro.testing.standins import write_standin_files

setup_logging(snakemake.log[0])
paths = dict(zip(snakemake.params.resources_keys, snakemake.output, strict=True))
write_standin_files(paths, seed=snakemake.params.seed, sizes=snakemake.params.sizes)
