"""How much work a step has, read from the preprocessed file's ``obs`` alone (light: anndata).

The workflow declares the DE rules' run times from :func:`de_workload` when it schedules them
(``workflow/rules/resources.smk``); :func:`cells_matching` is the comparisons' cell selection.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ._comparison_spec import CLUSTER_OF

if TYPE_CHECKING:
    from pathlib import Path

    import anndata as ad

    from .entry import DatasetSpec


def cells_matching(adata: ad.AnnData, cells: dict[str, tuple[str, ...]]) -> np.ndarray:
    """Boolean mask of the cells whose ``obs`` values are among the listed ones, every column.

    A ``cluster_of`` entry is left to the caller (it needs the stratification).

    Raises
    ------
    KeyError
        For an unknown ``obs`` column.
    ValueError
        For a value the column does not hold (naming the values it holds).
    """
    mask = np.ones(adata.n_obs, dtype=bool)
    for column, values in cells.items():
        if column == CLUSTER_OF:
            continue
        if column not in adata.obs.columns:
            msg = f"cells: unknown obs column {column!r}; columns: {list(adata.obs.columns)}"
            raise KeyError(msg)
        observed = adata.obs[column].astype(str)
        missing = sorted(set(values) - set(observed.unique()))
        if missing:
            msg = (
                f"cells: {column!r} has no value(s) {missing}; values: "
                f"{sorted(observed.unique())[:20]}"
            )
            raise ValueError(msg)
        mask &= observed.isin(values).to_numpy()
    return mask


def de_workload(
    h5ad: str | Path, spec: DatasetSpec, comparison: str | None = None
) -> dict[str, int]:
    """Return the cells, samples and draws of a DE step, from the preprocessed file's ``obs``.

    ``comparison``: a DE comparison's name (its ``cells`` selection by ``obs`` columns; a
    ``cluster_of`` selection, known only after the stratification, counts every cell), else
    the entry's ``analysis.de`` over all cells. Samples: every sample of the data (the model
    builds each cell's counterfactual state for all of them). A DE step's time grows with
    cells x samples x draws.
    """
    import anndata as ad

    adata = ad.read_h5ad(h5ad, backed="r")
    try:
        n_samples = int(adata.obs[spec.sample_key].nunique())
        if comparison is None:
            draws = spec.analysis.de.mc_samples
            return {"cells": adata.n_obs, "samples": n_samples, "draws": draws}
        item = spec.comparisons.de_named(comparison)
        cells = int(cells_matching(adata, item.cells).sum())
        return {"cells": cells, "samples": n_samples, "draws": item.mc_samples}
    finally:
        adata.file.close()
