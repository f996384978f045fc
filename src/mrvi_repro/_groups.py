"""Cell groups and per-group sample distance matrices: helpers shared by analyses and baselines."""

from __future__ import annotations

from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
import xarray as xr


def group_codes(adata: ad.AnnData, groupby: str | None) -> tuple[np.ndarray, list[str]]:
    """Integer group of every cell and the group names (``None``: one group, ``"all"``)."""
    if groupby is None:
        return np.zeros(adata.n_obs, dtype=np.int32), ["all"]
    if groupby not in adata.obs.columns:
        msg = f"groupby {groupby!r} is not an obs column; columns are: {list(adata.obs.columns)}"
        raise KeyError(msg)
    values = adata.obs[groupby]
    if values.isna().any():
        msg = f"obs[{groupby!r}] has missing values; every cell needs a group"
        raise ValueError(msg)
    cat = pd.Categorical(values.astype(str))
    return cat.codes.astype(np.int32), [str(c) for c in cat.categories]


def with_group_column(
    adata: ad.AnnData, values: Any, name: str = "group"
) -> tuple[ad.AnnData, str]:
    """Copy ``adata`` shallowly (X shared, obs copied) with ``values`` as a new obs column.

    Returns the copy and the column's name (``_<name>``, lengthened until it is new), so that a
    grouping the data does not carry can be passed as ``groupby``.
    """
    column = f"_{name}"
    while column in adata.obs.columns:
        column += "_"
    obs = adata.obs.copy(deep=False)
    obs[column] = values
    return ad.AnnData(X=adata.X, obs=obs, var=pd.DataFrame(index=adata.var_names)), column


def grouped_distance_array(
    values: np.ndarray,
    *,
    groups: list[str],
    samples: list[str],
    n_cells: np.ndarray,
    attrs: dict[str, object] | None = None,
) -> xr.DataArray:
    """Wrap (groups, samples, samples) distance matrices in the layout every method shares.

    A DataArray ``distance`` with dims (group, sample_x, sample_y), string coordinates and an
    ``n_cells`` coordinate on group: MrVI's distances and the composition baselines' both use it, so
    downstream metrics and figures take either.
    """
    return xr.DataArray(
        values,
        dims=("group", "sample_x", "sample_y"),
        coords={
            "group": list(groups),
            "sample_x": list(samples),
            "sample_y": list(samples),
            "n_cells": ("group", np.asarray(n_cells)),
        },
        name="distance",
        attrs=dict(attrs or {}),
    )
