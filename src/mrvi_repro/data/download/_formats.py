"""What a resource's file must look like: the first bytes its name promises, never an HTML page.

A server that cannot deliver a file often answers with an HTML page (an error, a sign-in or a
"too many requests" page) and, too often, with status 200. Saved under the resource's name, such a
page would be recorded in the lock file and make the genuine file look corrupt later. Before a file
is accepted, :func:`content_problem` therefore compares its first bytes with the signature its
name promises (:data:`SIGNATURES`: HDF5 for ``.h5ad``, gzip for ``.gz``, ...) and refuses anything
that looks like HTML, and :func:`is_html_type` lets a download refuse a ``Content-Type: text/html``
answer before it writes a byte.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

#: The first 8 bytes of every HDF5 file (``.h5ad`` files are HDF5).
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"

#: The first 2 bytes of every gzip stream (``.gz``, ``.tar.gz``, ``.tgz``).
GZIP_MAGIC = b"\x1f\x8b"

#: The first 4 bytes of a zip archive (``.xlsx`` files are zip archives).
ZIP_MAGIC = b"PK\x03\x04"

#: The first bytes of a MatrixMarket file (the Single Cell Portal's ``.mtx`` matrices).
MTX_MAGIC = b"%%MatrixMarket"

#: Name endings -> (what the file must be, its first bytes). Names ending otherwise have no
#: signature; they are still refused when they look like an HTML page.
SIGNATURES: tuple[tuple[tuple[str, ...], str, bytes], ...] = (
    ((".h5ad", ".h5", ".hdf5"), "an HDF5 file", HDF5_MAGIC),
    ((".gz", ".tgz"), "a gzip file", GZIP_MAGIC),
    ((".xlsx", ".zip"), "a zip archive", ZIP_MAGIC),
    ((".mtx",), "a MatrixMarket file", MTX_MAGIC),
)

#: Resources whose names end so are HTML pages themselves (not refused as such).
HTML_SUFFIXES = (".html", ".htm")

#: Media types of HTML pages.
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})

#: Bytes read from the start of a file to check it and to show in a message.
HEAD_BYTES = 64

_HTML_STARTS = (b"<!doctype html", b"<html", b"<head", b"<body", b"<title")


def signature(name: str) -> tuple[str, bytes] | None:
    """Return what a resource's file must be and its first bytes, by the resource's name.

    Parameters
    ----------
    name
        The resource's name (its path under ``resources/``).

    Returns
    -------
    tuple or None
        (description such as ``"an HDF5 file"``, magic bytes), or ``None`` when the name promises
        no signature.
    """
    lower = PurePosixPath(name).name.lower()
    for suffixes, what, magic in SIGNATURES:
        if lower.endswith(suffixes):
            return what, magic
    return None


def is_html_name(name: str) -> bool:
    """Whether the resource is an HTML page itself (then HTML is what it should be)."""
    return PurePosixPath(name).name.lower().endswith(HTML_SUFFIXES)


def is_html_type(content_type: str | None) -> bool:
    """Whether a ``Content-Type`` header names an HTML page (parameters such as charset ignored)."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media in HTML_TYPES


def looks_like_html(head: bytes) -> bool:
    """Whether bytes start like an HTML page (after a byte-order mark and white space)."""
    start = head.removeprefix(b"\xef\xbb\xbf").lstrip().lower()
    return start.startswith(_HTML_STARTS)


def content_problem(name: str, head: bytes, size: int) -> str | None:
    """Why a file is not what the resource's name promises, or ``None`` when it looks right.

    Parameters
    ----------
    name
        The resource's name (its path under ``resources/``).
    head
        The file's first bytes (at least :data:`HEAD_BYTES` when the file is that long).
    size
        The file's size in bytes.

    Returns
    -------
    str or None
        ``"it is empty"``, ``"it is an HTML page, not an HDF5 file"``, ``"it is not an HDF5 file"``
        and the like; ``None`` when nothing is wrong.
    """
    expected = signature(name)
    what = f", not {expected[0]}" if expected else ""
    if size == 0:
        return f"it is empty (0 bytes){what}"
    if not is_html_name(name) and looks_like_html(head):
        return f"it is an HTML page{what}"
    if expected is not None and not head.startswith(expected[1]):
        if len(head) < len(expected[1]) and size == len(head):
            return f"it is {size} bytes long, too short to be {expected[0]}"
        return f"it is not {expected[0]} (which starts with {expected[1]!r})"
    return None


def read_head(path: str | Path, n: int = HEAD_BYTES) -> bytes:
    """Read the first ``n`` bytes of a file."""
    with open(path, "rb") as fh:
        return fh.read(n)


def show_head(head: bytes, n: int = 48) -> str:
    """Show the first ``n`` bytes of ``head`` as a Python bytes literal, ``...`` when cut."""
    return repr(head[:n]) + ("..." if len(head) > n else "")
