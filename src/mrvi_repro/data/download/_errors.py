"""The exceptions of the downloads: a malformed registry or lock, a file that could not be had."""

from __future__ import annotations


class RegistryError(ValueError):
    """The download registry or the lock file is malformed."""


class DownloadError(RuntimeError):
    """A resource could not be obtained: the server refused it, or retries were used up."""


class ChecksumError(DownloadError):
    """A file's size or sha256 differs from the lock (or from the registry's known values)."""


class ManualDownloadRequired(DownloadError):
    """A file that must be downloaded by hand (e.g. behind a sign-in) is not where it should be."""


class UnexpectedContentError(DownloadError):
    """A server or a hand-placed file gave something else than the resource.

    An HTML page (an error or sign-in page, even with status 200), an empty file, or bytes that
    do not start as the format the resource's name promises.
    """
