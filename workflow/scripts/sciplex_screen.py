"""Adapter of rule sciplex_screen: the published sci-Plex file + Table S3 -> the shared screen."""

from mrvi_repro._logging import setup_logging
from mrvi_repro.data.preprocess import build_sciplex_screen
from mrvi_repro.settings.data import SciplexScreen

setup_logging(snakemake.log[0])
screen = SciplexScreen.from_dict(snakemake.params.screen)
adata = build_sciplex_screen(screen, snakemake.input.source, snakemake.input.plate_table)
adata.write_h5ad(snakemake.output[0])
