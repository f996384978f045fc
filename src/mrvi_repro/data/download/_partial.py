"""What a partial download was started from, kept beside its ``.part`` so a resume can be checked.

A transfer that breaks off leaves ``<dest>.part``; the next attempt asks only for the missing bytes
(a ``Range`` request). Were the server's file replaced in between by another of the same size, the
result would be spliced from two versions. So the first answer's validators (its strong ``ETag``,
else its ``Last-Modified``), its announced size and the URL are saved in ``<dest>.part.json``
(:func:`write_state`); a resume sends the validator as ``If-Range``, so that a server whose file
changed sends the whole new file (status 200) instead of the rest of the old one, and an answer
whose validators or size differ from the saved ones (:func:`changed`) restarts the transfer from
byte 0.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict, dataclass
from email.message import Message
from pathlib import Path

from ._lock import atomic_write_text


@dataclass(frozen=True)
class PartState:
    """The server's description of the file a ``.part`` holds the beginning of.

    Attributes
    ----------
    url
        The registry URL the transfer started from.
    etag
        The first answer's strong ``ETag`` (``None`` when absent or weak: a weak tag may not be
        sent in ``If-Range``).
    last_modified
        The first answer's ``Last-Modified``.
    length
        The whole file's size as the first answer announced it, if it did.
    """

    url: str
    etag: str | None = None
    last_modified: str | None = None
    length: int | None = None

    @property
    def validator(self) -> str | None:
        """The value for ``If-Range``: the ETag, else the Last-Modified date, else ``None``."""
        return self.etag or self.last_modified

    @classmethod
    def from_headers(cls, url: str, headers: Message, length: int | None) -> PartState:
        """Describe a transfer that starts with an answer carrying ``headers``."""
        return cls(url, _strong_etag(headers), headers.get("Last-Modified"), length)

    def changed(self, headers: Message, length: int | None) -> str | None:
        """Why an answer to a resume shows another file than the one started, or ``None``.

        Parameters
        ----------
        headers
            The answer's headers.
        length
            The whole file's size the answer announces (``Content-Range`` total), if any.

        Returns
        -------
        str or None
            ``"its ETag changed from "a" to "b""`` and the like.
        """
        etag, modified = _strong_etag(headers), headers.get("Last-Modified")
        if self.etag and etag and etag != self.etag:
            return f"its ETag changed from {self.etag} to {etag}"
        if self.last_modified and modified and modified != self.last_modified:
            return f"its Last-Modified changed from {self.last_modified} to {modified}"
        if self.length is not None and length is not None and length != self.length:
            return f"its size changed from {self.length} to {length} bytes"
        return None


def state_path(part: Path) -> Path:
    """Where the state of ``<dest>.part`` is kept: ``<dest>.part.json``."""
    return part.with_name(part.name + ".json")


def read_state(part: Path) -> PartState | None:
    """Read the saved state of a ``.part``; ``None`` when there is none or it is unreadable."""
    try:
        data = json.loads(state_path(part).read_text())
        return PartState(
            url=str(data["url"]),
            etag=data.get("etag"),
            last_modified=data.get("last_modified"),
            length=data.get("length"),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_state(part: Path, state: PartState) -> None:
    """Save the state of a ``.part`` (atomically, before its first byte is written)."""
    atomic_write_text(state_path(part), json.dumps(asdict(state), indent=1) + "\n")


def drop_partial(part: Path) -> None:
    """Delete a ``.part`` and its saved state (either may be missing)."""
    for path in (part, state_path(part)):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _strong_etag(headers: Message) -> str | None:
    etag = (headers.get("ETag") or "").strip()
    return etag if etag and not etag.startswith("W/") else None
