"""Getting a resource: HTTP downloads with retries and checked resume, hand-placed files, checking.

:func:`fetch` streams a URL into ``<dest>.part`` (resuming it only when the server's file is
provably unchanged, retrying with backoff, logging progress), then checks the file's content
(:mod:`._formats`) and its size and sha256 against the lock (:mod:`._lock`) and renames it into
place; :func:`manual_file` checks a file the user put in place by hand; :func:`obtain` does either
for a registry entry (:mod:`._registry`). A file that fails a check is moved aside to
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
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any

from ._errors import ChecksumError, DownloadError, ManualDownloadRequired, UnexpectedContentError
from ._formats import (
    HEAD_BYTES,
    content_problem,
    is_html_name,
    is_html_type,
    read_head,
    show_head,
)
from ._lock import MANUAL_URL, LockEntry, MiB, exclusive, file_digest, read_lock, write_lock
from ._partial import PartState, drop_partial, read_state, state_path, write_state
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
    """Download a file over HTTP(S), resuming and retrying, and check it before it is accepted.

    The bytes go to ``<dest>.part``. The first answer's strong ``ETag`` (else ``Last-Modified``),
    announced size and the URL are saved in ``<dest>.part.json``; a later attempt, in this run or
    a later one, resumes the part with ``Range`` and that validator in ``If-Range``, and starts
    again from byte 0 when the server sends the whole file (status 200: its file changed, or it
    ignores ranges), when the answer's ETag, Last-Modified or size differ from the saved ones, or
    when nothing proves the part is of the current file (no saved state, another URL, or a server
    that gives no validator and a part from an earlier run). Connection errors, timeouts, short
    reads and the statuses in :data:`RETRY_STATUS` are retried with exponential backoff; an attempt
    that received bytes does not use up a retry. Other HTTP errors (404, 403...) are permanent
    and raised at once. A progress line (bytes, percent when the size is known, MiB/s) is logged
    every ``progress_every`` seconds and when the transfer ends.

    Before a byte is written, an answer with ``Content-Type: text/html`` (for a resource that is
    not an HTML page) or, when ``expected_size`` is given, another announced size is refused. The
    first bytes and the finished file must start as the resource's name promises (HDF5 for
    ``.h5ad``, gzip for ``.gz``...; :func:`~._formats.content_problem`) and must not be an HTML
    page or empty; otherwise they are moved to ``<dest>.corrupt`` and
    :class:`UnexpectedContentError` is raised, with nothing recorded. Then size and sha256 are
    checked against the lock entry for ``name`` (and against ``expected_size``/``expected_sha256``
    when given); a mismatch moves the file to ``<dest>.corrupt`` and raises
    :class:`ChecksumError`. Without a lock entry one is recorded. Only then is the part renamed to
    ``dest``, so ``dest`` never holds a partial or unchecked file. A file already at ``dest`` is
    checked the same way instead of being downloaded.

    Parameters
    ----------
    url
        ``http://`` or ``https://`` address (redirects are followed).
    dest
        Final path of the file; its folder is created.
    lock_path
        The lock file (see :func:`read_lock`); created if missing.
    name
        The resource's name in the lock file; its ending chooses the expected format.
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
    UnexpectedContentError
        The server sent an HTML page, an empty file or another format (quarantined).
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
    attempt = _Attempt(
        url=url,
        part=part,
        name=name,
        timeout=timeout,
        chunk=chunk,
        progress_every=progress_every,
        expected_size=expected_size,
        quarantine=_quarantine_path(dest),
    )
    failures = 0
    while True:
        before = _size(part)
        try:
            size, digest, content_type = _transfer(attempt)
            break
        except _Retryable as err:
            after = _size(part)
            failures = 0 if after > before else failures + 1
            if failures > retries:
                msg = (
                    f"{name}: download from {url} failed {failures} times in a row, giving up: "
                    f"{err}. {_what_is_kept(part, after)}"
                )
                raise DownloadError(msg) from None
            delay = min(backoff * 2 ** max(failures - 1, 0), max_backoff)
            kept = f"; {_fmt_bytes(after)} kept in {part.name}" if after else ""
            logger.warning("%s: attempt failed (%s)%s; retrying in %.1f s", name, err, kept, delay)
            time.sleep(delay)
    try:
        _verify_or_record(
            part,
            size,
            digest,
            lock_path=lock_path,
            name=name,
            url=url,
            expected=(expected_size, expected_sha256),
            quarantine=attempt.quarantine,
            content_type=content_type,
        )
        os.replace(part, dest)
    finally:
        if not part.exists():
            drop_partial(part)
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


#: What to do when a server's answer is not the resource.
_SERVER_ADVICE = (
    "The server probably sent an error or sign-in page, or the url now points to another file: "
    "open it in a browser, fix the registry entry if the file moved, and run again."
)


class _Retryable(Exception):
    """An attempt failed in a way that another attempt may fix."""


@dataclass
class _Attempt:
    """What every attempt of one :func:`fetch` call needs, and what the attempts did so far."""

    url: str
    part: Path
    name: str
    timeout: float
    chunk: int
    progress_every: float
    expected_size: int | None
    quarantine: Path
    wrote: bool = False  # whether an attempt of this call wrote to the part


def _transfer(attempt: _Attempt) -> tuple[int, str, str | None]:
    """One attempt: stream the URL into the part, resuming it when that is safe.

    Returns the file's size, its sha256 and the answer's ``Content-Type``.
    """
    url, part, name, chunk = attempt.url, attempt.part, attempt.name, attempt.chunk
    offset = _size(part)
    state = _resumable_state(attempt, offset)
    if state is None:
        offset = 0
    hasher = hashlib.sha256()
    if offset:
        with open(part, "rb") as fh:
            while block := fh.read(chunk):
                hasher.update(block)
    request = urllib.request.Request(url)
    request.add_header("User-Agent", _USER_AGENT)
    request.add_header("Accept-Encoding", "identity")
    if offset and state is not None:
        request.add_header("Range", f"bytes={offset}-")
        if state.validator:
            request.add_header("If-Range", state.validator)
        logger.info(
            "%s: resuming at byte %d (%s already in %s; If-Range %s)",
            name,
            offset,
            _fmt_bytes(offset),
            part.name,
            state.validator or "not sent: the server gave no validator",
        )
    try:
        response = urllib.request.urlopen(request, timeout=attempt.timeout)
    except urllib.error.HTTPError as err:
        err.close()
        if err.code == 416 and offset and state is not None:
            total = _content_range_total(err.headers.get("Content-Range"))
            if total == offset and not state.changed(err.headers, total):
                logger.info("%s: the partial file is already complete", name)
                return offset, hasher.hexdigest(), None
            drop_partial(part)
            msg = f"server refused to resume at byte {offset} (HTTP 416); starting again"
            raise _Retryable(msg) from None
        if err.code in RETRY_STATUS:
            raise _Retryable(f"HTTP {err.code} {err.reason}") from None
        msg = (
            f"{name}: HTTP {err.code} {err.reason} for {url}. This is not a passing failure, so "
            "it is not retried: check the registry entry's url (the file may have moved)."
        )
        raise DownloadError(msg) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
        raise _Retryable(f"{type(err).__name__}: {err}") from None

    with response:
        headers = response.headers
        content_type = headers.get("Content-Type")
        length = headers.get("Content-Length")
        length = int(length) if length and length.isdigit() else None
        if offset and response.status == 206:
            total = _resumed_total(attempt, headers, offset, length, state)
        else:
            if offset:
                logger.warning(
                    "%s: the server sent the whole file (HTTP %d) instead of the bytes from %d "
                    "on (%s); restarting from byte 0",
                    name,
                    response.status,
                    offset,
                    "its file changed since the partial download began, or it ignores ranges"
                    if state is not None and state.validator
                    else "it ignored the range request",
                )
                offset = 0
                hasher = hashlib.sha256()
            total = length
            _check_first_answer(attempt, response, content_type, total)
            write_state(part, PartState.from_headers(url, headers, total))
        progress = _Progress(name, offset, total, attempt.progress_every)
        received = offset
        head_checked = offset > 0
        with open(part, "ab" if offset else "wb") as fh:
            attempt.wrote = True
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
                if not head_checked and received >= HEAD_BYTES:
                    head_checked = True
                    problem = content_problem(name, block[:HEAD_BYTES], max(received, total or 0))
                    if problem:
                        fh.close()
                        cut = total is None or received < total
                        _refuse_content(
                            part,
                            name=name,
                            source=f"the answer of {url}",
                            problem=problem,
                            head=block[:HEAD_BYTES],
                            content_type=content_type,
                            quarantine=attempt.quarantine,
                            note=f"the transfer was stopped after {_fmt_bytes(received)}"
                            if cut
                            else None,
                        )
            fh.flush()
            os.fsync(fh.fileno())
    if total is not None and received < total:
        raise _Retryable(f"connection closed after {received} of {total} bytes")
    if total is not None and received > total:
        drop_partial(part)
        raise _Retryable(f"received {received} bytes, more than the announced {total}")
    progress.done(received)
    return received, hasher.hexdigest(), content_type


def _resumable_state(attempt: _Attempt, offset: int) -> PartState | None:
    """Return the saved state of the part if it may be resumed; else drop the part, return None.

    A part is resumed only when its state was saved for the same URL and either holds a validator
    (sent as ``If-Range``) or was written by an earlier attempt of this very call (a server without
    ETag and Last-Modified: a part from an earlier run cannot be shown to be of the current file).
    """
    part = attempt.part
    if not offset:
        if state_path(part).exists():
            drop_partial(part)
        return None
    state = read_state(part)
    if state is None:
        reason = f"no {state_path(part).name} records what the server sent first"
    elif state.url != attempt.url:
        reason = f"it was started from another url, {state.url}"
    elif state.validator is None and not attempt.wrote:
        reason = (
            "the server gave no ETag or Last-Modified, so nothing shows that the file it serves "
            "now is the one the partial download began with"
        )
    else:
        return state
    logger.warning(
        "%s: not resuming the %s in %s (%s); starting again from byte 0",
        attempt.name,
        _fmt_bytes(offset),
        part.name,
        reason,
    )
    drop_partial(part)
    return None


def _resumed_total(
    attempt: _Attempt, headers: Message, offset: int, length: int | None, state: PartState | None
) -> int | None:
    """Check an answer of 206 to a resume; return the whole file's size (if known).

    A range that does not start at ``offset``, or validators or a size that differ from those the
    partial download began with, drop the part and raise :class:`_Retryable` (start again).
    """
    name, part = attempt.name, attempt.part
    start = _content_range_start(headers.get("Content-Range"))
    if start != offset:
        logger.warning(
            "%s: server answered the range request from byte %s, not %d; starting again",
            name,
            start,
            offset,
        )
        drop_partial(part)
        raise _Retryable("mismatched Content-Range")
    total = _content_range_total(headers.get("Content-Range"))
    if total is None and length is not None:
        total = offset + length
    changed = state.changed(headers, total) if state is not None else None
    if changed:
        logger.warning(
            "%s: the file on the server changed since the partial download began (%s); "
            "dropping the %s received and starting again from byte 0",
            name,
            changed,
            _fmt_bytes(offset),
        )
        drop_partial(part)
        raise _Retryable(f"the file on the server changed ({changed})")
    return total


def _check_first_answer(
    attempt: _Attempt, response: Any, content_type: str | None, total: int | None
) -> None:
    """Refuse, before a byte is written, an HTML answer or one of another size than the registry's."""
    name, url = attempt.name, attempt.url
    if is_html_type(content_type) and not is_html_name(name):
        head = response.read(HEAD_BYTES)
        msg = (
            f"{name}: the answer of {url} is not the expected file: it is an HTML page "
            f"(HTTP {response.status}, Content-Type {content_type}; first bytes "
            f"{show_head(head)}). The server probably sent an error or sign-in page. Nothing "
            "was saved or recorded in the lock file. Open the url in a browser to see what it "
            "serves, fix the registry entry if the file moved, and run again."
        )
        logger.error("%s", msg)
        raise UnexpectedContentError(msg)
    want = attempt.expected_size
    if want is not None and total is not None and total != want:
        msg = (
            f"{name}: {url} announces {total} bytes (Content-Length; Content-Type "
            f"{content_type}), but the registry gives its size as {want} bytes: this is not the "
            "file the registry describes. Nothing was saved or recorded in the lock file. If the "
            "source legitimately changed, fix (or remove) the registry entry's size and sha256 "
            "and run again."
        )
        logger.error("%s", msg)
        raise UnexpectedContentError(msg)


def _refuse_content(
    path: Path,
    *,
    name: str,
    source: str,
    problem: str,
    head: bytes,
    content_type: str | None,
    quarantine: Path,
    advice: str = _SERVER_ADVICE,
    note: str | None = None,
    lock_note: str = "",
) -> None:
    """Move a file that is not the resource to ``quarantine`` and raise UnexpectedContentError."""
    os.replace(path, quarantine)
    if path.name.endswith(".part"):
        drop_partial(path)
    arrived = f"Content-Type {content_type}; " if content_type else ""
    stopped = f" ({note})" if note else ""
    msg = (
        f"{name}: {source} is not the expected file: {problem} ({arrived}first bytes "
        f"{show_head(head)}){stopped}. It was moved to {quarantine}; nothing was recorded in the "
        f"lock file.{lock_note} {advice}"
    )
    logger.error("%s", msg)
    raise UnexpectedContentError(msg)


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
    content_type: str | None = None,
) -> None:
    """Check ``path``'s content, then its size and sha256 against the lock and the known values.

    A file that is not what the resource's name promises (:func:`~._formats.content_problem`)
    raises :class:`UnexpectedContentError`; one that differs from the lock entry or the registry's
    values raises :class:`ChecksumError`. Either way ``path`` is moved to ``quarantine`` and the
    lock is left as it was. A new file that passes is recorded.
    """
    lock_path = Path(lock_path)
    with exclusive(lock_path):
        entries = read_lock(lock_path)
        entry = entries.get(name)
        head = read_head(path)
        problem = content_problem(name, head, size)
        if problem:
            lock_note = ""
            if entry is not None and (entry.size, entry.sha256) == (size, digest):
                lock_note = (
                    f" The lock file {lock_path} records this very file for {name!r} (recorded "
                    "before contents were checked): delete that line too, or the genuine file "
                    "will be refused as not matching it."
                )
            if url == MANUAL_URL:
                source = f"the file placed by hand at {path.absolute()}"
                advice = (
                    "Download it again as the registry entry's instructions say, save it at "
                    f"{path.absolute()} and run again."
                )
            elif path.name.endswith(".part"):
                source, advice = f"the answer of {url}", _SERVER_ADVICE
            else:
                source = str(path.absolute())
                advice = f"Run again to download it anew from {url}."
            _refuse_content(
                path,
                name=name,
                source=source,
                problem=problem,
                head=head,
                content_type=content_type,
                quarantine=quarantine,
                advice=advice,
                lock_note=lock_note,
            )
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
                wanted = " with ".join(
                    part
                    for part in (
                        f"{want_size} bytes" if want_size is not None else "",
                        f"sha256 {want_sha}" if want_sha is not None else "",
                    )
                    if part
                )
                msg = (
                    f"{name}: the file does not match {source}: expected {wanted}, got {size} "
                    f"bytes with sha256 {digest}. It was moved to {quarantine}. If the source "
                    f"legitimately changed, delete the line of {name!r} from {lock_path} (and fix "
                    "the registry's size/sha256 if given) and run again; otherwise the download "
                    "was damaged or tampered with: delete the quarantined file and run again."
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


def _size(path: Path) -> int:
    """Size of a file, 0 when it does not exist."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _what_is_kept(part: Path, size: int) -> str:
    """Say what a failed download leaves for the next run."""
    if not size:
        return "Nothing was received; a later run starts from the beginning."
    state = read_state(part)
    if state is not None and state.validator:
        return (
            f"The {_fmt_bytes(size)} received so far are kept in {part}; a later run resumes "
            f"from there if the server's file is unchanged (If-Range {state.validator})."
        )
    return (
        f"The {_fmt_bytes(size)} received so far are kept in {part}, but the server gave no ETag "
        "or Last-Modified to check a resume against, so a later run starts from the beginning."
    )


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
