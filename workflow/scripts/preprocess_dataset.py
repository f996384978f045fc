"""Adapter of rule preprocess_dataset: raw counts -> validated AnnData + per-sample table."""

from mrvi_repro._logging import setup_logging
from mrvi_repro.data import DatasetSpec, preprocess_dataset, read_source, sample_table

setup_logging(snakemake.log[0])
spec = DatasetSpec.from_dict(snakemake.wildcards.dataset, snakemake.params.entry)
adata = preprocess_dataset(read_source(spec.source, snakemake.input[0]), spec)
adata.write_h5ad(snakemake.output.h5ad)
table = sample_table(adata, sample_key=spec.sample_key, sample_covariates=spec.sample_covariates)
table.to_csv(snakemake.output.samples, sep="\t", index=False)
