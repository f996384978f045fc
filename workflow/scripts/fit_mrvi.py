"""Adapter of rules fit_mrvi and fit_mrvi_variant: preprocessed AnnData -> trained MrVI + history."""

import anndata as ad

from mrvi_repro._logging import setup_logging
from mrvi_repro.model import write_model
from mrvi_repro.pipeline import DatasetSpec
from mrvi_repro.pipeline.model import fit_mrvi

setup_logging(snakemake.log[0])
spec = DatasetSpec.from_dict(snakemake.wildcards.dataset, snakemake.params.entry)
if getattr(snakemake.params, "variant", None):  # rule fit_mrvi_variant
    spec = spec.with_mrvi_variant(snakemake.params.variant)
model = fit_mrvi(ad.read_h5ad(snakemake.input[0]), spec, checkpoint_dir=snakemake.params.checkpoint)
write_model(model, snakemake.output.model)
model.history.to_csv(snakemake.output.history, sep="\t", index=False)
