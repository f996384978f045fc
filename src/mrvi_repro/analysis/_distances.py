"""Local sample distances: for every cell, the S x S distances between its counterfactual states.

Paper, Methods "Exploratory analysis of sample effects on cell states": D^(n)_{s,s'} =
||z_n^(s) - z_n^(s')|| with z_n^(s) the state of cell n had it come from sample s (u at its posterior
mean). Cells are processed in fixed-size chunks on the device; per chunk only the group sums
(groups x S x S) come back to the host, and the per-cell matrices are written to a chunked zarr
store only when asked for. Memory is bounded by the chunk, never by cells x S x S.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import xarray as xr
import zarr

from mrvi_repro.model._model import counterfactual_states

if TYPE_CHECKING:
    import anndata as ad

    from mrvi_repro.model import MrVI

logger = logging.getLogger(__name__)


def _distance_fn(module: Any, keep_cells: bool) -> Any:
    """Build the kernel: group sums of the distance matrices of a chunk (and the matrices)."""

    @jax.jit
    def distances(
        params: Any,
        chunk: dict[str, jax.Array],
        codes: jax.Array,
        onehot: jax.Array,
        key: jax.Array,
    ) -> tuple[jax.Array, jax.Array | None]:
        z = counterfactual_states(module, params, chunk, codes, key, use_mean=True)
        # centring per cell keeps the Gram form accurate: it removes the shared offset of the
        # S states, whose size would otherwise swamp their small differences in float32
        z = z - z.mean(axis=1, keepdims=True)
        sq = (z * z).sum(-1)
        d2 = sq[:, :, None] + sq[:, None, :] - 2.0 * jnp.einsum("bsd,btd->bst", z, z)
        s = codes.shape[0]
        d = jnp.sqrt(jnp.maximum(d2, 0.0)) * (1.0 - jnp.eye(s, dtype=z.dtype))
        sums = onehot.T @ d.reshape(d.shape[0], s * s)  # onehot: (cells, groups), padding 0
        return sums.reshape(-1, s, s), (d if keep_cells else None)

    return distances


def _group_codes(adata: ad.AnnData, groupby: str | None) -> tuple[np.ndarray, list[str]]:
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


def _open_cell_store(path: Path, cells: list[str], samples: list[str], chunk: int) -> zarr.Array:
    """Create a zarr store readable by ``xarray.open_zarr`` with the array ``distance``."""
    root = zarr.open_group(str(path), mode="w", zarr_format=2)
    n, s = len(cells), len(samples)
    arr = root.create_array(
        "distance",
        shape=(n, s, s),
        chunks=(min(chunk, max(n, 1)), s, s),
        dtype="f4",
        fill_value=np.nan,  # unwritten cells read as missing; 0 is a real distance
    )
    arr.attrs["_ARRAY_DIMENSIONS"] = ["cell", "sample_x", "sample_y"]
    for name, values in (("cell", cells), ("sample_x", samples), ("sample_y", samples)):
        v = np.asarray(values, dtype=str)
        coord = root.create_array(name, shape=v.shape, dtype=v.dtype)
        coord[:] = v
        coord.attrs["_ARRAY_DIMENSIONS"] = [name]
    return arr


def local_sample_distances(
    model: MrVI,
    adata: ad.AnnData,
    *,
    groupby: str | None = None,
    cell_store: str | Path | None = None,
    batch_size: int = 256,
) -> xr.DataArray:
    """Mean local sample distance matrix per cell group; optionally every cell's, to zarr.

    Parameters
    ----------
    model
        A fitted MrVI.
    adata
        Cells to analyse (the model's genes; their samples/batches must be known to the model).
    groupby
        ``obs`` column whose groups get a mean matrix (``None``: one group, ``"all"``).
    cell_store
        If given, a path where every cell's S x S matrix is written as a chunked zarr store
        (``xarray.open_zarr`` reads it: variable ``distance`` with dims cell, sample_x, sample_y).
        Written chunk by chunk; the whole tensor is never held in memory.
    batch_size
        Cells per device chunk.

    Returns
    -------
    DataArray ``distance`` with dims (group, sample_x, sample_y) and a ``n_cells`` coordinate
    on group.
    """
    group, groups = _group_codes(adata, groupby)
    samples = list(model.registry.samples)
    codes = model.sample_codes()
    fn = model._kernel(_distance_fn, cell_store is not None)
    store = None
    if cell_store is not None:
        store = _open_cell_store(Path(cell_store), list(adata.obs_names), samples, batch_size)
    sums = np.zeros((len(groups), len(samples), len(samples)))
    key = jax.random.key(0)
    start, done = time.perf_counter(), 0
    for i, (n, chunk) in enumerate(model.iter_chunks(adata, batch_size)):
        onehot = np.zeros((batch_size, len(groups)), dtype=np.float32)
        onehot[np.arange(n), group[done : done + n]] = 1.0
        part, cells = fn(model.params, chunk, codes, jnp.asarray(onehot), key)
        sums += np.asarray(part, dtype=np.float64)
        if store is not None:
            store[done : done + n] = np.asarray(cells)[:n]
        done += n
        if i % 50 == 0 or done == adata.n_obs:
            logger.info("local sample distances: %d / %d cells", done, adata.n_obs)
    logger.info(
        "local sample distances of %d cells x %d samples in %.1f s",
        adata.n_obs,
        len(samples),
        time.perf_counter() - start,
    )
    if store is not None:
        zarr.consolidate_metadata(str(cell_store))
    counts = np.bincount(group, minlength=len(groups))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = sums / counts[:, None, None]
    return grouped_distance_array(
        mean.astype(np.float32),
        groups=groups,
        samples=samples,
        n_cells=counts,
        attrs={"groupby": groupby or "", "description": "mean ||z(s) - z(s')|| over the group"},
    )


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
