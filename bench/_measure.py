"""Process measurements shared by the benchmark scripts (standard library only: the reference
runner imports it too, from the reference's own Python 3.11 venv)."""

from __future__ import annotations

import resource
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path


def peak_rss_mb() -> float:
    """Return the peak resident set size of this process so far, in MiB.

    Linux's ``VmHWM`` (the high-water mark of this process image, reset by ``exec`` and by
    :func:`reset_peak_rss`); ``ru_maxrss`` is only the fallback because it also carries the
    parent's RSS across fork + exec.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def rss_mb() -> float:
    """Return the current resident set size of this process (Linux ``VmRSS``) in MiB, else 0."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def reset_peak_rss() -> None:
    """Reset ``VmHWM`` to the current RSS (Linux), so the next peak is measured from here."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def package_version(name: str) -> str | None:
    """Return the installed version of a distribution, or ``None`` when it is not installed."""
    try:
        return version(name)
    except PackageNotFoundError:
        return None
