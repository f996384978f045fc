"""The lock file: size and sha256 of each resource as first obtained, written atomically.

The lock file (``config/downloads.lock.tsv``, tracked) records the size and sha256 of each resource
the first time it is obtained; every later download or placement is checked against that record,
so a silently changed or damaged file is never used. Parallel jobs take an exclusive lock on its
folder before they read and rewrite it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from ._errors import RegistryError
from ._registry import SHA256_HEX

MiB = 1 << 20

#: Columns of the lock file, in order.
LOCK_COLUMNS = ("name", "url", "size", "sha256")

#: ``url`` column of a lock entry for a file placed by hand.
MANUAL_URL = "manual"


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
            bad = not size.isdigit() or not SHA256_HEX.match(digest) or name in entries
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
    atomic_write_text(path, "\n".join(lines) + "\n")


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


@contextlib.contextmanager
def exclusive(lock_path: Path) -> Iterator[None]:
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


def atomic_write_text(path: Path, text: str) -> None:
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
