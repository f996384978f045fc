"""Downloads with retries, resume and a checksum lock; files that need a sign-in placed by hand.

A *resource* is one file the workflow needs from outside: a dataset, a supplementary table, a gene
set. The registry (``config/downloads.yaml``) names each resource by its path under ``resources/``
and says where it comes from: a plain URL, or instructions for a file that must be fetched by hand
(a portal behind a sign-in). The lock file (``config/downloads.lock.tsv``, tracked) records the size
and sha256 of each resource the first time it is obtained; every later download or placement is
checked against that record, so a silently changed or damaged file is never used.

Only the standard library is used (``urllib``), so that downloads work before anything else is
installed and behind the proxies ``urllib`` honours (``http_proxy``, ``https_proxy``,
``no_proxy``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import http.client
import logging
import os
import re
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

logger = logging.getLogger(__name__)

MiB = 1 << 20

#: Default locations of the registry, the lock file and the folder of hand-placed files (the
#: workflow's ``downloads`` config section; registry and lock relative to the workflow's folder).
DOWNLOAD_DEFAULTS = {
    "registry": "config/downloads.yaml",
    "lock": "config/downloads.lock.tsv",
    "manual_dir": "resources/manual",
}

#: Columns of the lock file, in order.
LOCK_COLUMNS = ("name", "url", "size", "sha256")

#: ``url`` column of a lock entry for a file placed by hand.
MANUAL_URL = "manual"

#: HTTP status codes worth retrying: timeouts, rate limits, server errors.
RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})

_NAME_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_USER_AGENT = "mrvi-repro-download/0.1 (Python urllib)"


class DownloadError(RuntimeError):
    """A resource could not be obtained: the server refused it, or retries were used up."""


class ChecksumError(DownloadError):
    """A file's size or sha256 differs from the lock (or from the registry's known values)."""


class ManualDownloadRequired(DownloadError):
    """A file that must be downloaded by hand (e.g. behind a sign-in) is not where it should be."""


class RegistryError(ValueError):
    """The download registry or the lock file is malformed."""


@dataclass(frozen=True)
class Resource:
    """One downloadable file of the registry.

    Attributes
    ----------
    name
        Path of the file under ``resources/`` (POSIX, relative, e.g.
        ``covid/haniffa21.processed.h5ad``). It is also the resource's name in the lock file, the
        ``{resource}`` wildcard of the ``download`` rule and the path of its log.
    url
        Where to download it from (``http://`` or ``https://``); ``None`` for a manual resource.
    manual
        Instructions for a file that must be fetched by hand: which page, which file, how to sign
        in. ``None`` for a URL resource.
    size
        Known size in bytes, checked on the first download (optional).
    sha256
        Known sha256 hex digest, checked on the first download (optional).
    description
        Free text: what the file is and what uses it.
    """

    name: str
    url: str | None = None
    manual: str | None = None
    size: int | None = None
    sha256: str | None = None
    description: str = ""

    def __post_init__(self) -> None:
        check_resource_name(self.name)
        where = f"resource {self.name!r}"
        if (self.url is None) == (self.manual is None):
            msg = f"{where}: give exactly one of 'url' and 'manual'"
            raise RegistryError(msg)
        if self.url is not None and not re.match(r"^https?://\S+$", self.url):
            msg = f"{where}: url must be an http:// or https:// address, got {self.url!r}"
            raise RegistryError(msg)
        if self.manual is not None and not self.manual.strip():
            msg = f"{where}: 'manual' instructions are empty"
            raise RegistryError(msg)
        if self.size is not None and (
            isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 0
        ):
            msg = f"{where}: size must be a non-negative integer, got {self.size!r}"
            raise RegistryError(msg)
        if self.sha256 is not None and not _SHA256.match(str(self.sha256)):
            msg = f"{where}: sha256 must be 64 lower-case hex digits, got {self.sha256!r}"
            raise RegistryError(msg)

    @property
    def filename(self) -> str:
        """The file's name (last part of :attr:`name`)."""
        return PurePosixPath(self.name).name

    @property
    def is_manual(self) -> bool:
        """Whether the file must be downloaded by hand."""
        return self.manual is not None

    @classmethod
    def from_dict(cls, name: str, entry: Mapping[str, Any]) -> Resource:
        """Build a resource from its registry entry.

        Parameters
        ----------
        name
            The entry's key: the file's path under ``resources/``.
        entry
            Mapping with ``url`` or ``manual`` and optionally ``size``, ``sha256``,
            ``description``.

        Returns
        -------
        Resource
            The checked resource.

        Raises
        ------
        RegistryError
            Unknown keys, both or neither of ``url`` and ``manual``, malformed values.
        """
        if not isinstance(entry, Mapping):
            msg = f"resource {name!r}: entry must be a mapping, got {type(entry).__name__}"
            raise RegistryError(msg)
        known = {"url", "manual", "size", "sha256", "description"}
        unknown = sorted(set(entry) - known)
        if unknown:
            msg = f"resource {name!r}: unknown keys {unknown} (allowed: {sorted(known)})"
            raise RegistryError(msg)
        return cls(name=name, **dict(entry))

    def to_dict(self) -> dict[str, Any]:
        """Return the registry entry of this resource (keys with ``None`` values left out)."""
        fields = {
            "url": self.url,
            "manual": self.manual,
            "size": self.size,
            "sha256": self.sha256,
            "description": self.description or None,
        }
        return {k: v for k, v in fields.items() if v is not None}


@dataclass(frozen=True)
class LockEntry:
    """One line of the lock file: what a resource's file was when it was first obtained.

    Attributes
    ----------
    name
        The resource's name (path under ``resources/``).
    url
        Where it was downloaded from, or ``"manual"``.
    size
        Size in bytes.
    sha256
        sha256 hex digest.
    """

    name: str
    url: str
    size: int
    sha256: str


def check_resource_name(name: str) -> None:
    """Refuse a resource name that is not a safe relative path under ``resources/``.

    Parameters
    ----------
    name
        Relative POSIX path; each part starts with a letter or digit and holds only letters,
        digits, ``.``, ``_`` and ``-``.

    Raises
    ------
    RegistryError
        Empty, absolute, with ``..``, with other characters, or ending in ``.part``/``.corrupt``
        (the suffixes of partial and quarantined files).
    """
    parts = str(name).split("/")
    if not name or not all(_NAME_PART.match(p) for p in parts):
        msg = (
            f"resource name {name!r} must be a relative path whose parts start with a letter or "
            "digit and hold only letters, digits, '.', '_' and '-'"
        )
        raise RegistryError(msg)
    if name.endswith((".part", ".corrupt")):
        msg = f"resource name {name!r} must not end in .part or .corrupt"
        raise RegistryError(msg)


def load_registry(path: str | Path) -> dict[str, Resource]:
    """Read the download registry.

    Parameters
    ----------
    path
        YAML file with the top-level key ``resources``: a mapping from resource name (the file's
        path under ``resources/``) to its entry (see :meth:`Resource.from_dict`). Other
        top-level keys must start with ``x-`` (they hold YAML anchors shared by entries).

    Returns
    -------
    dict
        Name -> resource, in the file's order.

    Raises
    ------
    RegistryError
        The file is not such a mapping or an entry is malformed; the message names the entry.
    """
    path = Path(path)
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        msg = f"download registry {str(path)!r}: expected a mapping with the key 'resources'"
        raise RegistryError(msg)
    extra = sorted(str(k) for k in data if k != "resources" and not str(k).startswith("x-"))
    if extra:
        msg = (
            f"download registry {str(path)!r}: unknown top-level keys {extra} (allowed: "
            "'resources', and keys starting with 'x-' that hold YAML anchors)"
        )
        raise RegistryError(msg)
    entries = data.get("resources") or {}
    if not isinstance(entries, dict):
        msg = f"download registry {str(path)!r}: 'resources' must be a mapping"
        raise RegistryError(msg)
    try:
        return {str(name): Resource.from_dict(str(name), e) for name, e in entries.items()}
    except (RegistryError, TypeError) as err:
        raise RegistryError(f"download registry {str(path)!r}: {err}") from None


def read_lock(path: str | Path) -> dict[str, LockEntry]:
    """Read the lock file.

    Parameters
    ----------
    path
        Tab-separated file with the header ``name url size sha256``. A missing file is an
        empty lock.

    Returns
    -------
    dict
        Name -> entry.

    Raises
    ------
    RegistryError
        Wrong header, a line with the wrong number of fields, a bad size or digest, a name twice.
    """
    path = Path(path)
    if not path.exists():
        return {}
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    if not lines or tuple(lines[0].split("\t")) != LOCK_COLUMNS:
        msg = f"lock file {str(path)!r}: the first line must be {chr(9).join(LOCK_COLUMNS)!r}"
        raise RegistryError(msg)
    entries: dict[str, LockEntry] = {}
    for number, line in enumerate(lines[1:], start=2):
        fields = line.split("\t")
        bad = len(fields) != len(LOCK_COLUMNS)
        if not bad:
            name, url, size, digest = fields
            bad = not size.isdigit() or not _SHA256.match(digest) or name in entries
        if bad:
            msg = (
                f"lock file {str(path)!r}, line {number}: expected a new name, a url, a size in "
                f"bytes and a sha256 digest separated by tabs, got {line!r}"
            )
            raise RegistryError(msg)
        entries[name] = LockEntry(name, url, int(size), digest)
    return entries


def write_lock(path: str | Path, entries: Mapping[str, LockEntry]) -> None:
    """Write the lock file atomically, entries sorted by name.

    Parameters
    ----------
    path
        The lock file; written to a temporary sibling, then renamed over it.
    entries
        Name -> entry.
    """
    path = Path(path)
    lines = ["\t".join(LOCK_COLUMNS)]
    for name in sorted(entries):
        e = entries[name]
        lines.append(f"{e.name}\t{e.url}\t{e.size}\t{e.sha256}")
    _atomic_write_text(path, "\n".join(lines) + "\n")


def file_digest(path: str | Path, *, chunk: int = MiB) -> tuple[int, str]:
    """Size and sha256 of a file, read in chunks.

    Parameters
    ----------
    path
        The file.
    chunk
        Bytes read at a time.

    Returns
    -------
    tuple
        (size in bytes, sha256 hex digest).
    """
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
            size += len(block)
    return size, h.hexdigest()


def fetch(
    url: str,
    dest: str | Path,
    *,
    lock_path: str | Path,
    name: str,
    retries: int = 5,
    backoff: float = 2.0,
    max_backoff: float = 120.0,
    timeout: float = 60.0,
    chunk: int = MiB,
    progress_every: float = 10.0,
    expected_size: int | None = None,
    expected_sha256: str | None = None,
) -> Path:
    """Download a file over HTTP(S), resuming and retrying, and check it against the lock.

    The bytes go to ``<dest>.part``; an existing part (from an interrupted run) is resumed with a
    ``Range`` request and re-hashed first. A server that ignores ``Range`` (status 200) restarts
    the transfer from byte 0. Connection errors, timeouts, short reads and the statuses in
    :data:`RETRY_STATUS` are retried with exponential backoff; an attempt that received bytes does
    not use up a retry. A progress line (bytes, percent when the size is known, MiB/s) is logged
    every ``progress_every`` seconds and when the transfer ends.

    When complete, size and sha256 are checked against the lock entry for ``name`` (and against
    ``expected_size``/``expected_sha256`` when given). A mismatch moves the file to
    ``<dest>.corrupt`` and raises :class:`ChecksumError`. Without a lock entry one is recorded.
    Only then is the part renamed to ``dest``, so ``dest`` never holds a partial or unchecked
    file. A file already at ``dest`` is checked the same way instead of being downloaded.

    Parameters
    ----------
    url
        ``http://`` or ``https://`` address (redirects are followed).
    dest
        Final path of the file; its folder is created.
    lock_path
        The lock file (see :func:`read_lock`); created if missing.
    name
        The resource's name in the lock file.
    retries
        Failed attempts retried before giving up (attempts that made progress are not counted).
    backoff
        Seconds before the first retry; doubled on every further failure.
    max_backoff
        Longest wait between two attempts, in seconds.
    timeout
        Socket timeout in seconds (connection and every read).
    chunk
        Bytes read and written at a time.
    progress_every
        Seconds between two progress lines; ``0`` logs one per chunk.
    expected_size, expected_sha256
        Known size and digest (from the registry), checked as well as the lock.

    Returns
    -------
    Path
        ``dest``.

    Raises
    ------
    ChecksumError
        The file differs from the lock or the known values (the file is quarantined).
    DownloadError
        An HTTP error that is not worth retrying (e.g. 404), or retries used up.
    """
    dest = Path(dest)
    if dest.exists():
        return _check_present(
            dest,
            "is already present",
            lock_path=lock_path,
            name=name,
            url=url,
            expected=(expected_size, expected_sha256),
            chunk=chunk,
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = _part_path(dest)
    failures = 0
    while True:
        before = part.stat().st_size if part.exists() else 0
        try:
            size, digest = _transfer(
                url, part, name=name, timeout=timeout, chunk=chunk, progress_every=progress_every
            )
            break
        except _Retryable as err:
            after = part.stat().st_size if part.exists() else 0
            failures = 0 if after > before else failures + 1
            if failures > retries:
                msg = (
                    f"{name}: download from {url} failed {failures} times in a row, giving up: "
                    f"{err}. The {_fmt_bytes(after)} received so far are kept in {part} and a "
                    "later run resumes from there."
                )
                raise DownloadError(msg) from None
            delay = min(backoff * 2 ** max(failures - 1, 0), max_backoff)
            logger.warning(
                "%s: attempt failed (%s); %s kept in %s; retrying in %.1f s",
                name,
                err,
                _fmt_bytes(after),
                part.name,
                delay,
            )
            time.sleep(delay)
    _verify_or_record(
        part,
        size,
        digest,
        lock_path=lock_path,
        name=name,
        url=url,
        expected=(expected_size, expected_sha256),
        quarantine=_quarantine_path(dest),
    )
    os.replace(part, dest)
    logger.info("%s: saved %s (%s, sha256 %s)", name, dest, _fmt_bytes(size), digest)
    return dest


def manual_file(
    dest: str | Path,
    instructions: str,
    *,
    lock_path: str | Path,
    name: str,
    expected_size: int | None = None,
    expected_sha256: str | None = None,
) -> Path:
    """Check a file that must be downloaded by hand (e.g. from a portal behind a sign-in).

    Parameters
    ----------
    dest
        Where the user must put the file.
    instructions
        What to download from where (page, file name, sign-in).
    lock_path
        The lock file: the file is checked against its entry, or recorded there.
    name
        The resource's name in the lock file.
    expected_size, expected_sha256
        Known size and digest (from the registry), checked as well as the lock.

    Returns
    -------
    Path
        ``dest``, checked.

    Raises
    ------
    ManualDownloadRequired
        The file is not at ``dest``; the message holds the instructions and the full path where
        to put it.
    ChecksumError
        The file differs from the lock or the known values (it is moved to ``<dest>.corrupt``).
    """
    dest = Path(dest)
    if not dest.is_file():
        where = dest.absolute()
        msg = (
            f"{name} must be downloaded by hand.\n{instructions.strip()}\n"
            f"Save it as:\n  {where}\n"
            f"(create the folder with: mkdir -p {where.parent}) and run the workflow again; "
            f"the file is checked and recorded in {Path(lock_path).absolute()}."
        )
        raise ManualDownloadRequired(msg)
    return _check_present(
        dest,
        "is in place",
        lock_path=lock_path,
        name=name,
        url=MANUAL_URL,
        expected=(expected_size, expected_sha256),
    )


def obtain(
    resource: Resource,
    dest: str | Path,
    *,
    lock_path: str | Path,
    manual_dir: str | Path,
    **fetch_options: Any,
) -> Path:
    """Put a registry resource at ``dest``: download it, or pick up the copy placed by hand.

    Parameters
    ----------
    resource
        The registry entry.
    dest
        Where the file goes (``resources/<name>`` in the workflow).
    lock_path
        The lock file.
    manual_dir
        Folder where manual resources are placed by hand, at ``<manual_dir>/<name>``. The checked
        file is hard-linked to ``dest`` (copied when the two are on different file systems), so
        the hand-placed copy stays where the user put it.
    **fetch_options
        Passed to :func:`fetch` (``retries``, ``backoff``, ``timeout``, ``chunk``,
        ``progress_every``).

    Returns
    -------
    Path
        ``dest``.

    Raises
    ------
    ManualDownloadRequired, ChecksumError, DownloadError
        As :func:`manual_file` and :func:`fetch`.
    """
    dest = Path(dest)
    known = {"expected_size": resource.size, "expected_sha256": resource.sha256}
    if resource.url is not None:
        return fetch(
            resource.url, dest, lock_path=lock_path, name=resource.name, **known, **fetch_options
        )
    placed = manual_file(
        Path(manual_dir) / resource.name,
        resource.manual or "",
        lock_path=lock_path,
        name=resource.name,
        **known,
    )
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        dest.unlink()
    try:
        os.link(placed, dest)
        logger.info("%s: linked %s to %s", resource.name, placed, dest)
    except OSError:
        part = _part_path(dest)
        shutil.copyfile(placed, part)
        os.replace(part, dest)
        logger.info("%s: copied %s to %s", resource.name, placed, dest)
    return dest


class _Retryable(Exception):
    """An attempt failed in a way that another attempt may fix."""


def _transfer(
    url: str, part: Path, *, name: str, timeout: float, chunk: int, progress_every: float
) -> tuple[int, str]:
    """One attempt: stream ``url`` into ``part``, resuming it; return its size and sha256."""
    offset = part.stat().st_size if part.exists() else 0
    hasher = hashlib.sha256()
    if offset:
        with open(part, "rb") as fh:
            while block := fh.read(chunk):
                hasher.update(block)
    request = urllib.request.Request(url)
    request.add_header("User-Agent", _USER_AGENT)
    request.add_header("Accept-Encoding", "identity")
    if offset:
        request.add_header("Range", f"bytes={offset}-")
        logger.info(
            "%s: resuming at byte %d (%s already in %s)",
            name,
            offset,
            _fmt_bytes(offset),
            part.name,
        )
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        err.close()
        if err.code == 416 and offset:
            total = _content_range_total(err.headers.get("Content-Range"))
            if total == offset:
                logger.info("%s: the partial file is already complete", name)
                return offset, hasher.hexdigest()
            part.unlink()
            msg = f"server refused to resume at byte {offset} (HTTP 416); starting again"
            raise _Retryable(msg) from None
        if err.code in RETRY_STATUS:
            raise _Retryable(f"HTTP {err.code} {err.reason}") from None
        msg = f"{name}: HTTP {err.code} {err.reason} for {url}"
        raise DownloadError(msg) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
        raise _Retryable(f"{type(err).__name__}: {err}") from None

    with response:
        status = response.status
        length = response.headers.get("Content-Length")
        length = int(length) if length and length.isdigit() else None
        if offset and status == 206:
            start = _content_range_start(response.headers.get("Content-Range"))
            if start != offset:
                logger.warning(
                    "%s: server answered the range request from byte %s, not %d; starting again",
                    name,
                    start,
                    offset,
                )
                part.unlink()
                raise _Retryable("mismatched Content-Range")
            total = _content_range_total(response.headers.get("Content-Range"))
            if total is None and length is not None:
                total = offset + length
        else:
            if offset:
                logger.warning(
                    "%s: server ignored the range request (HTTP %d); restarting from byte 0",
                    name,
                    status,
                )
                offset = 0
                hasher = hashlib.sha256()
            total = length
        progress = _Progress(name, offset, total, progress_every)
        received = offset
        with open(part, "ab" if offset else "wb") as fh:
            while True:
                try:
                    block = response.read(chunk)
                except (OSError, http.client.HTTPException) as err:
                    msg = f"connection lost after {received} bytes ({type(err).__name__}: {err})"
                    raise _Retryable(msg) from None
                if not block:
                    break
                fh.write(block)  # a local write error (disk full) is not retried
                hasher.update(block)
                received += len(block)
                progress.update(received)
            fh.flush()
            os.fsync(fh.fileno())
    if total is not None and received < total:
        raise _Retryable(f"connection closed after {received} of {total} bytes")
    if total is not None and received > total:
        part.unlink()
        raise _Retryable(f"received {received} bytes, more than the announced {total}")
    progress.done(received)
    return received, hasher.hexdigest()


class _Progress:
    """Logs ``name: 12.0 MiB of 119.0 MiB (10.1%) at 25.3 MiB/s`` at intervals and at the end."""

    def __init__(self, name: str, start: int, total: int | None, every: float) -> None:
        self.name, self.start, self.total, self.every = name, start, total, every
        self.t0 = self.last = time.monotonic()

    def update(self, received: int) -> None:
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            self._log(received, now)

    def done(self, received: int) -> None:
        self._log(received, time.monotonic(), final=True)

    def _log(self, received: int, now: float, *, final: bool = False) -> None:
        rate = (received - self.start) / MiB / max(now - self.t0, 1e-6)
        of = f" of {_fmt_bytes(self.total)}" if self.total else ""
        pct = f" ({100 * received / self.total:.1f}%)" if self.total else ""
        word = "downloaded" if final else "progress"
        logger.info(
            "%s: %s %s%s%s at %.1f MiB/s", self.name, word, _fmt_bytes(received), of, pct, rate
        )


def _check_present(
    dest: Path,
    state: str,
    *,
    lock_path: str | Path,
    name: str,
    url: str,
    expected: tuple[int | None, str | None],
    chunk: int = MiB,
) -> Path:
    """Hash a file already at ``dest`` and verify it against (or record it in) the lock."""
    size, digest = file_digest(dest, chunk=chunk)
    logger.info("%s: %s %s (%s); checking it", name, dest, state, _fmt_bytes(size))
    _verify_or_record(
        dest,
        size,
        digest,
        lock_path=lock_path,
        name=name,
        url=url,
        expected=expected,
        quarantine=_quarantine_path(dest),
    )
    return dest


def _verify_or_record(
    path: Path,
    size: int,
    digest: str,
    *,
    lock_path: str | Path,
    name: str,
    url: str,
    expected: tuple[int | None, str | None],
    quarantine: Path,
) -> None:
    """Check ``path`` against the lock entry and the known values; record it if new.

    On a mismatch ``path`` is moved to ``quarantine`` and :class:`ChecksumError` raised.
    """
    lock_path = Path(lock_path)
    with _exclusive(lock_path):
        entries = read_lock(lock_path)
        entry = entries.get(name)
        checks = []
        if entry is not None:
            checks.append((f"the lock file {lock_path}", entry.size, entry.sha256))
        known_size, known_sha = expected
        if known_size is not None or known_sha is not None:
            checks.append(("the registry", known_size, known_sha))
        for source, want_size, want_sha in checks:
            bad_size = want_size is not None and want_size != size
            bad_sha = want_sha is not None and want_sha != digest
            if bad_size or bad_sha:
                os.replace(path, quarantine)
                msg = (
                    f"{name}: the file does not match {source}: expected {want_size} bytes with "
                    f"sha256 {want_sha}, got {size} bytes with sha256 {digest}. It was moved to "
                    f"{quarantine}. If the source legitimately changed, delete the line of "
                    f"{name!r} from {lock_path} (and fix the registry's size/sha256 if given) "
                    "and run again; otherwise the download was damaged or tampered with: "
                    "delete the quarantined file and run again."
                )
                logger.error("%s", msg)
                raise ChecksumError(msg)
        if entry is None:
            entries[name] = LockEntry(name, url, size, digest)
            write_lock(lock_path, entries)
            logger.info("%s: recorded %d bytes, sha256 %s in %s", name, size, digest, lock_path)
        else:
            if entry.url != url:
                logger.warning(
                    "%s: the lock records the url %s, the registry now says %s; the content "
                    "matches",
                    name,
                    entry.url,
                    url,
                )
            logger.info("%s: size and sha256 match %s", name, lock_path)


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on the lock file's folder (so parallel jobs do not lose entries).

    The folder, not the file, is locked because the file is replaced on every write.
    """
    folder = lock_path.parent if str(lock_path.parent) else Path(".")
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file in ``path``'s folder, then rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o777)
        else:
            os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _part_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def _quarantine_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".corrupt")


def _content_range_start(value: str | None) -> int | None:
    """First byte of ``Content-Range: bytes START-END/TOTAL``."""
    match = re.match(r"^\s*bytes\s+(\d+)-\d+/(?:\d+|\*)\s*$", value or "")
    return int(match.group(1)) if match else None


def _content_range_total(value: str | None) -> int | None:
    """Total size of ``Content-Range: bytes START-END/TOTAL`` or ``bytes */TOTAL``."""
    match = re.match(r"^\s*bytes\s+(?:\d+-\d+|\*)/(\d+)\s*$", value or "")
    return int(match.group(1)) if match else None


def _fmt_bytes(n: int | None) -> str:
    """``12.3 MiB``-style size."""
    if n is None:
        return "? bytes"
    for unit, factor in (("GiB", 1 << 30), ("MiB", MiB), ("KiB", 1 << 10)):
        if n >= factor:
            return f"{n / factor:.1f} {unit}"
    return f"{n} bytes"
