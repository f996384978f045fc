"""Adapter of rule download: registry entry -> resources/{resource}, checked against the lock."""

import sys

from mrvi_repro._logging import setup_logging
from mrvi_repro.data.download import DownloadError, Resource, obtain

setup_logging(snakemake.log[0])
resource = Resource.from_dict(snakemake.wildcards.resource, snakemake.params.entry)
try:
    obtain(
        resource,
        snakemake.output[0],
        lock_path=snakemake.params.lock,
        manual_dir=snakemake.params.manual_dir,
    )
except DownloadError as err:  # the instructions belong on the console, not only in the log
    print(f"\n{err}\n", file=sys.__stderr__)
    raise
