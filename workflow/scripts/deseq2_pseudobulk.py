"""Adapter of rule deseq2_pseudobulk: preprocessed AnnData -> DESeq2 table per covariate and gene."""

import anndata as ad

from mrvi_repro._logging import setup_logging
from mrvi_repro.pipeline import DatasetSpec
from mrvi_repro.pipeline.baselines import deseq2_baseline

setup_logging(snakemake.log[0])
spec = DatasetSpec.from_dict(snakemake.wildcards.dataset, snakemake.params.entry)
table = deseq2_baseline(ad.read_h5ad(snakemake.input[0]), spec, n_cpus=snakemake.threads)
table.to_csv(snakemake.output[0], sep="\t", index=False)
