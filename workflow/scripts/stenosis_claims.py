"""Adapter of rule stenosis_claims: an entry's outputs -> the paper's Fig. 5 claims checked."""

from mrvi_repro._logging import setup_logging
from mrvi_repro.pipeline import DatasetSpec
from mrvi_repro.pipeline.figures import load_stenosis_results, write_stenosis_claims

setup_logging(snakemake.log[0])
spec = DatasetSpec.from_dict(snakemake.wildcards.dataset, snakemake.params.entry)
write_stenosis_claims(
    spec, load_stenosis_results(spec, **dict(snakemake.input.items())), snakemake.output[0]
)
