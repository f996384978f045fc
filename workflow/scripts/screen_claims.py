"""Adapter of rule screen_claims: an entry's outputs -> the paper's Fig. 4 claims checked."""

from mrvi_repro._logging import setup_logging
from mrvi_repro.pipeline import DatasetSpec
from mrvi_repro.pipeline.screen import load_screen_results, write_screen_claims

setup_logging(snakemake.log[0])
spec = DatasetSpec.from_dict(snakemake.wildcards.dataset, snakemake.params.entry)
write_screen_claims(
    spec, load_screen_results(spec, **dict(snakemake.input.items())), snakemake.output[0]
)
