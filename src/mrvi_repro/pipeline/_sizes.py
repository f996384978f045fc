"""Settings bounded by the data's size: capped to what the data allow, each cap logged by its key.

A dataset entry's defaults suit cohorts of dozens of samples and thousands of cells (50 PCs of the
distance matrices, 30-cell neighbourhoods...). A small cohort runs with them too: each rule caps
such a setting to what its data allow and logs the cap at INFO, naming the entry's key; an error
that remains (a limit no cap can meet) names the keys of the step's settings.
"""

from __future__ import annotations

import dataclasses
import logging
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

logger = logging.getLogger(__name__)


def cap(value: int, limit: int, key: str, why: str, *, minimum: int = 1) -> int:
    """Return ``min(value, limit)``, logging the cap (naming the entry's key) when it applies.

    Parameters
    ----------
    value
        The setting's value in the dataset entry.
    limit
        The largest value the data allow.
    key
        The setting's key in the dataset entry (``"analysis.stratify.n_pcs"``).
    why
        What bounds it, for the log (``"10 samples"``).
    minimum
        The smallest value the step can run with.

    Returns
    -------
    The value to run with.

    Raises
    ------
    ValueError
        If the data allow less than ``minimum``, naming the key.
    """
    if limit < minimum:
        msg = f"{key} = {value}: the data allow at most {limit} ({why}); the step needs {minimum}"
        raise ValueError(msg)
    if value <= limit:
        return value
    logger.info("%s = %d capped to %d: %s", key, value, limit, why)
    return limit


def setting_keys(section: str, settings: object) -> str:
    """Return ``"<section>.<field> = <value>, ..."`` for every field of a settings dataclass.

    Nested settings are listed field by field, by their full keys (``baselines.milo.config.k``).
    """
    keys = []
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        if dataclasses.is_dataclass(value):
            keys.append(setting_keys(f"{section}.{f.name}", value))
        else:
            keys.append(f"{section}.{f.name} = {value!r}")
    return ", ".join(keys)


@contextmanager
def naming_settings(section: str, settings: object) -> Iterator[None]:
    """Add the step's settings, by their keys in the entry, to a ``ValueError`` raised inside.

    The note (PEP 678) is printed with the traceback, in the rule's log: a size error that no cap
    could prevent says which keys of the entry set the step up.
    """
    try:
        yield
    except ValueError as err:
        err.add_note(
            f"settings of this step in the dataset entry: {setting_keys(section, settings)}"
        )
        raise
