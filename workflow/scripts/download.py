"""Adapter of rule download: registry entry -> resources/{resource}, checked against the lock."""

from mrvi_repro._logging import errors_on_console, setup_logging
from mrvi_repro.data.download import DownloadError, Resource, obtain

setup_logging(snakemake.log[0])
resource = Resource.from_dict(snakemake.wildcards.resource, snakemake.params.entry)
with errors_on_console(DownloadError):  # what went wrong and what to do, on the console
    obtain(
        resource,
        snakemake.output[0],
        lock_path=snakemake.params.lock,
        manual_dir=snakemake.params.manual_dir,
    )
