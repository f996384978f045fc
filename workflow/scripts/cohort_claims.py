"""Adapter of rule cohort_claims: an entry's outputs -> the paper's Fig. 3 claims checked."""

from mrvi_repro._logging import setup_logging
from mrvi_repro.pipeline import DatasetSpec
from mrvi_repro.pipeline.figures import load_cohort_results, write_cohort_claims

setup_logging(snakemake.log[0])
spec = DatasetSpec.from_dict(snakemake.wildcards.dataset, snakemake.params.entry)
write_cohort_claims(
    spec, load_cohort_results(spec, **dict(snakemake.input.items())), snakemake.output[0]
)
