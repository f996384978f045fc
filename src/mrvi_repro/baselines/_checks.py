"""Input checks shared by the baselines: keys, sample-level columns, raw counts."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mrvi_repro.data.contract import count_problems

if TYPE_CHECKING:
    from anndata import AnnData


def check_obs_keys(adata: AnnData, **keys: str | None) -> None:
    """Raise a ValueError naming every ``obs`` key (by argument name) that ``adata`` lacks."""
    missing = [
        f"{arg}={key!r}" for arg, key in keys.items() if key is not None and key not in adata.obs
    ]
    if missing:
        msg = (
            f"unknown obs key(s): {', '.join(missing)}; obs has columns "
            f"{list(map(str, adata.obs.columns))}"
        )
        raise ValueError(msg)


def check_counts(x: object, *, where: str) -> None:
    """Raise a ValueError if ``x`` does not hold raw counts (the data contract, :mod:`mrvi_repro.data.contract`)."""
    problems = count_problems(x, where=where)
    if problems:
        raise ValueError("; ".join(problems))


def natural_order(labels: pd.Series) -> list[str]:
    """Distinct labels as strings: categorical order if categorical, else numbers before text."""
    if isinstance(labels.dtype, pd.CategoricalDtype):
        present = set(labels.astype(str).unique())
        return [str(c) for c in labels.cat.categories if str(c) in present]
    uniq = np.unique(labels.astype(str).to_numpy())

    def key(s: str) -> tuple[int, float, str]:
        try:
            return (0, float(s), s)
        except ValueError:
            return (1, 0.0, s)

    return sorted(uniq.tolist(), key=key)
