"""Logging set-up shared by every Snakemake adapter script, and errors shown on the console."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
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


@contextlib.contextmanager
def errors_on_console(*kinds: type[BaseException]) -> Iterator[None]:
    """Show an error of one of ``kinds`` on the console as well as in the rule's log, then re-raise.

    After :func:`setup_logging` with a path, stderr is the rule's log file, and Snakemake's console
    says only that the job failed and where its log is. Errors that speak to the user (a data
    contract broken, an input that cannot be read, a file to download by hand) are printed as
    ``<ErrorName>: <message>`` on the process's original stderr (Snakemake's console); the
    traceback still goes to the log.

    Parameters
    ----------
    *kinds
        Exception classes to show; others pass through untouched.

    Examples
    --------
    >>> with errors_on_console(ValueError):  # doctest: +SKIP
    ...     build_dataset(spec, inputs)
    """
    try:
        yield
    except kinds as err:
        console = sys.__stderr__
        if console is not None and console is not sys.stderr:
            print(f"\n{type(err).__name__}: {err}\n", file=console, flush=True)
        raise
