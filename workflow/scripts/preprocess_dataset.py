"""Adapter of rule preprocess_dataset: raw inputs -> validated AnnData, per-sample table, sizes."""

from mrvi_repro._logging import errors_on_console, setup_logging
from mrvi_repro.data.contract import DataContractError
from mrvi_repro.data.preprocess import count_check, sample_table
from mrvi_repro.data.readers import ArchiveError, SchemaError, UnreadableInputError
from mrvi_repro.pipeline import DatasetSpec
from mrvi_repro.pipeline.data import build_dataset

setup_logging(snakemake.log[0])
spec = DatasetSpec.from_dict(snakemake.wildcards.dataset, snakemake.params.entry)
# what is wrong with the inputs, and what to do, on the console (not only in the log)
with errors_on_console(UnreadableInputError, DataContractError, SchemaError, ArchiveError):
    adata = build_dataset(spec, dict(snakemake.input.items()))
    counts = count_check(adata, spec.expected, sample_key=spec.sample_key, name=spec.name)
adata.write_h5ad(snakemake.output.h5ad)
table = sample_table(adata, sample_key=spec.sample_key, sample_covariates=spec.sample_covariates)
table.to_csv(snakemake.output.samples, sep="\t", index=False)
counts.to_csv(snakemake.output.counts, sep="\t", index=False)
