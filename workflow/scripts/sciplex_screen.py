"""Adapter of rule sciplex_screen: the published sci-Plex file + Table S3 -> the shared screen."""

from mrvi_repro._logging import errors_on_console, setup_logging
from mrvi_repro.data.contract import DataContractError
from mrvi_repro.data.preprocess import build_sciplex_screen
from mrvi_repro.data.readers import SchemaError, UnreadableInputError
from mrvi_repro.settings.data import SciplexScreen

setup_logging(snakemake.log[0])
screen = SciplexScreen.from_dict(snakemake.params.screen)
# what is wrong with the inputs, and what to do, on the console (not only in the log)
with errors_on_console(UnreadableInputError, DataContractError, SchemaError):
    adata = build_sciplex_screen(screen, snakemake.input.source, snakemake.input.plate_table)
adata.write_h5ad(snakemake.output[0])
