"""The download registry: which files the workflow needs from outside, and where they come from.

A *resource* is one file the workflow needs from outside: a dataset, a supplementary table, a gene
set. The registry (``config/downloads.yaml``) names each resource by its path under ``resources/``
and says where it comes from: a plain URL, or instructions for a file that must be fetched by hand
(a portal behind a sign-in).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from ._errors import RegistryError

#: Default locations of the registry, the lock file and the folder of hand-placed files (the
#: workflow's ``downloads`` config section; registry and lock relative to the workflow's folder).
DOWNLOAD_DEFAULTS = {
    "registry": "config/downloads.yaml",
    "lock": "config/downloads.lock.tsv",
    "manual_dir": "resources/manual",
}

#: A sha256 hex digest as the registry and the lock file write it.
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")

_NAME_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


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
        if self.sha256 is not None and not SHA256_HEX.match(str(self.sha256)):
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
        Empty, absolute, with ``..``, with other characters, or ending in ``.part``,
        ``.part.json`` or ``.corrupt`` (the suffixes of partial files, their saved state and
        quarantined files).
    """
    parts = str(name).split("/")
    if not name or not all(_NAME_PART.match(p) for p in parts):
        msg = (
            f"resource name {name!r} must be a relative path whose parts start with a letter or "
            "digit and hold only letters, digits, '.', '_' and '-'"
        )
        raise RegistryError(msg)
    if name.endswith((".part", ".part.json", ".corrupt")):
        msg = f"resource name {name!r} must not end in .part, .part.json or .corrupt"
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
