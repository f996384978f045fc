"""Adapter of rule embeddings_2d: MrVI u and z -> 2-D UMAP coordinates of every cell."""

import anndata as ad

from mrvi_repro._logging import setup_logging
from mrvi_repro.plotting import LATENT_PANELS, umap_table

setup_logging(snakemake.log[0])
latent = ad.read_h5ad(snakemake.input[0])
latents = {title: latent.obsm[key] for key, title in LATENT_PANELS.items()}
umap_table(latents, latent.obs, seed=snakemake.params.seed).to_csv(
    snakemake.output[0], sep="\t", index=False
)
