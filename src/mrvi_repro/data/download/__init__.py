"""Downloads with retries, resume and a checksum lock; files that need a sign-in placed by hand.

A *resource* is one file the workflow needs from outside: a dataset, a supplementary table, a gene
set. The registry (``config/downloads.yaml``, read by :func:`load_registry`) names each resource by
its path under ``resources/`` and says where it comes from: a plain URL, or instructions for a file
that must be fetched by hand (a portal behind a sign-in). The lock file
(``config/downloads.lock.tsv``, tracked; :func:`read_lock`, :func:`write_lock`) records the size
and sha256 of each resource the first time it is obtained; every later download or placement is
checked against that record, so a silently changed or damaged file is never used. Before a file is
accepted or recorded, its content is checked too: an HTML page (an error or sign-in page, even
with status 200), an empty file, or bytes that do not start as the resource's name promises (HDF5
for ``.h5ad``, gzip for ``.gz``...) are refused with :class:`UnexpectedContentError`. An
interrupted transfer is resumed only when the server's file is provably unchanged (``If-Range``).
:func:`obtain` puts a registry resource in place: :func:`fetch` downloads a URL, :func:`manual_file`
checks a file placed by hand.

Only the standard library and PyYAML are imported, so that the ``download`` job starts fast and
works before anything else is installed, behind the proxies ``urllib`` honours (``http_proxy``,
``https_proxy``, ``no_proxy``).

Modules: ``_registry`` (the registry and its entries), ``_lock`` (the lock file, digests, the
exclusive lock and atomic writes), ``_fetch`` (downloads, hand-placed files, verification and
quarantine), ``_partial`` (the saved validators of a partial download), ``_formats`` (what each
kind of file starts with), ``_errors`` (the exceptions).
"""

from ._errors import (
    ChecksumError,
    DownloadError,
    ManualDownloadRequired,
    RegistryError,
    UnexpectedContentError,
)
from ._fetch import RETRY_STATUS, fetch, manual_file, obtain
from ._formats import HDF5_MAGIC, content_problem
from ._lock import LOCK_COLUMNS, MANUAL_URL, LockEntry, file_digest, read_lock, write_lock
from ._registry import DOWNLOAD_DEFAULTS, Resource, check_resource_name, load_registry

__all__ = [
    "DOWNLOAD_DEFAULTS",
    "HDF5_MAGIC",
    "LOCK_COLUMNS",
    "MANUAL_URL",
    "RETRY_STATUS",
    "ChecksumError",
    "DownloadError",
    "LockEntry",
    "ManualDownloadRequired",
    "RegistryError",
    "Resource",
    "UnexpectedContentError",
    "check_resource_name",
    "content_problem",
    "fetch",
    "file_digest",
    "load_registry",
    "manual_file",
    "obtain",
    "read_lock",
    "write_lock",
]
