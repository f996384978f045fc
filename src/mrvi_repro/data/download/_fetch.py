"""Getting a resource: HTTP downloads with retries and resume, files placed by hand, checking.

:func:`fetch` streams a URL into ``<dest>.part`` (resuming it, retrying with backoff, logging
progress), then checks the file against the lock (:mod:`._lock`) and renames it into place;
:func:`manual_file` checks a file the user put in place by hand; :func:`obtain` does either for a
registry entry (:mod:`._registry`). A file that does not match the lock is moved aside to
``<dest>.corrupt``.

Only the standard library is used (``urllib``), so that downloads work before anything else is
installed and behind the proxies ``urllib`` honours (``http_proxy``, ``https_proxy``,
``no_proxy``).
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from ._errors import ChecksumError, DownloadError, ManualDownloadRequired
from ._lock import MANUAL_URL, LockEntry, MiB, exclusive, file_digest, read_lock, write_lock
from ._registry import Resource

logger = logging.getLogger(__name__)

#: HTTP status codes worth retrying: timeouts, rate limits, server errors.
RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})

_USER_AGENT = "mrvi-repro-download/0.1 (Python urllib)"


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
    with exclusive(lock_path):
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
