"""Logging set-up shared by every Snakemake adapter script."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(path: str | Path | None = None, *, level: int = logging.INFO) -> None:
    """Send log records (and, with a path, stderr) to a file.

    Adapters call this first so that package loggers, Python warnings and messages that libraries
    write straight to stderr (JAX, numba, absl) all end up in the rule's log file.

    Parameters
    ----------
    path
        Log file; its folder is created. ``None`` logs to stderr only.
    level
        Minimum level recorded.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        stream = open(path, "a", buffering=1)
        sys.stderr = stream
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(_FORMAT))
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)
