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

import anndata as ad
import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
import zarr

from mrvi_repro._groups import group_codes, grouped_distance_array
from mrvi_repro.model._model import MrVAE, states_for_samples

if TYPE_CHECKING:
    from collections.abc import Iterator

    from mrvi_repro.model import MrVI

logger = logging.getLogger(__name__)


def pairwise_distances(z: jax.Array) -> jax.Array:
    """Traceable: Euclidean distances between the states ``z`` (..., S, d) -> (..., S, S).

    Centring across the S states keeps the Gram form accurate: it removes their shared offset,
    whose size would otherwise swamp their small differences in float32. The diagonal is 0.
    """
    z = z - z.mean(axis=-2, keepdims=True)
    sq = (z * z).sum(-1)
    d2 = sq[..., :, None] + sq[..., None, :] - 2.0 * jnp.einsum("...sd,...td->...st", z, z)
    return jnp.sqrt(jnp.maximum(d2, 0.0)) * (1.0 - jnp.eye(z.shape[-2], dtype=z.dtype))


def row_draws(key: jax.Array, rows: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """Draw standard normals (rows, *shape), each row from its own key (chunking-independent)."""
    return jax.vmap(lambda r: jax.random.normal(jax.random.fold_in(key, r), shape))(rows)


def _distance_fn(module: MrVAE, keep_cells: bool, mc_samples: int) -> Any:
    """Build the kernel: group sums of the distance matrices of a chunk (and the matrices).

    ``mc_samples == 0``: distances between the states at u's posterior mean. Otherwise the
    Monte-Carlo-normalised distances (see :func:`local_sample_distances`).
    """

    @jax.jit
    def distances(
        params: Any,
        chunk: dict[str, jax.Array],
        rows: jax.Array,
        codes: jax.Array,
        onehot: jax.Array,
        key: jax.Array,
    ) -> tuple[jax.Array, jax.Array | None]:
        mean, scale = module.apply(
            {"params": params}, chunk["x"], chunk["sample"], method=MrVAE.encode
        )
        if mc_samples == 0:
            d = pairwise_distances(states_for_samples(module, params, mean, codes))
        else:
            noise = row_draws(key, rows, (3 * mc_samples, mean.shape[-1]))
            u = mean[:, None, :] + scale[:, None, :] * noise  # (cells, 3 mc, d_u)
            sampled = pairwise_distances(
                states_for_samples(module, params, u[:, :mc_samples], codes)
            )  # (cells, mc, S, S)
            own = jnp.broadcast_to(chunk["sample"][:, None], u.shape[:2])
            z_base, eps = module.apply(
                {"params": params}, u[:, mc_samples:], own[:, mc_samples:], method=MrVAE.z_parts
            )
            z_own = z_base + eps  # (cells, 2 mc, d): pairs (i, mc + i) from the cell's own sample
            base = jnp.linalg.norm(z_own[:, :mc_samples] - z_own[:, mc_samples:], axis=-1)
            mu, sd = base.mean(1), base.std(1) + 1e-6
            d = ((sampled - mu[:, None, None, None]) / sd[:, None, None, None]).mean(1)
            d = d * (1.0 - jnp.eye(codes.shape[0], dtype=d.dtype))
        s = codes.shape[0]
        sums = onehot.T @ d.reshape(d.shape[0], s * s)  # onehot: (cells, groups), padding 0
        return sums.reshape(-1, s, s), (d if keep_cells else None)

    return distances


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


#: Bytes of distance matrices (cells x draws x S x S floats) one chunk may hold, when the chunk size
#: is not given: :data:`MAX_CHUNK_CELLS` cells up to S = 64, fewer beyond (S = 400: 26 cells), so
#: memory grows with S^2 per chunk, never with cells x S^2.
CHUNK_BYTES = 16 * 1024**2
#: Most cells per chunk: larger chunks were no faster (bench/RESULTS.md, "Executables found
#: without tracing"), 256 was 20 % slower than 1024.
MAX_CHUNK_CELLS = 1024


def chunk_cells(n_samples: int, mc_samples: int = 0, batch_size: int | None = None) -> int:
    """Cells per chunk: ``batch_size`` if given, else as many as :data:`CHUNK_BYTES` allows.

    At most :data:`MAX_CHUNK_CELLS`.
    """
    if batch_size is not None:
        if batch_size < 1:
            msg = f"batch_size must be positive, got {batch_size}"
            raise ValueError(msg)
        return batch_size
    per_cell = max(1, mc_samples) * n_samples * n_samples * 4
    return int(max(1, min(MAX_CHUNK_CELLS, CHUNK_BYTES // per_cell)))


def _check_mc(mc_samples: int) -> None:
    if mc_samples < 0 or mc_samples == 1:
        msg = f"mc_samples must be 0 (no normalisation) or at least 2, got {mc_samples}"
        raise ValueError(msg)


def _distance_chunks(
    model: MrVI,
    adata: ad.AnnData,
    onehot_of: Any,
    n_groups: int,
    *,
    keep_cells: bool,
    mc_samples: int,
    batch_size: int | None,
    seed: int,
) -> Iterator[tuple[int, int, np.ndarray, np.ndarray | None]]:
    """Run the distance kernel chunk by chunk: (start, size, group sums, cells' matrices or None)."""
    _check_mc(mc_samples)
    codes = model.sample_codes()
    batch_size = chunk_cells(codes.shape[0], mc_samples, batch_size)
    fn = model._kernel(_distance_fn, keep_cells, mc_samples)
    key = jax.random.key(seed)
    start_time, done = time.perf_counter(), 0
    for i, (n, chunk) in enumerate(model.iter_chunks(adata, batch_size)):
        onehot = np.zeros((batch_size, n_groups), dtype=np.float32)
        onehot[np.arange(n), onehot_of(done, n)] = 1.0
        rows = jnp.asarray(np.arange(done, done + batch_size).clip(max=adata.n_obs - 1))
        part, cells = fn(model.params, chunk, rows, codes, jnp.asarray(onehot), key)
        yield (
            done,
            n,
            np.asarray(part, dtype=np.float64),
            (None if cells is None else np.asarray(cells)[:n]),
        )
        done += n
        if i % 50 == 0 or done == adata.n_obs:
            logger.info("local sample distances: %d / %d cells", done, adata.n_obs)
    logger.info(
        "local sample distances of %d cells x %d samples (mc_samples=%d) in %.1f s",
        adata.n_obs,
        codes.shape[0],
        mc_samples,
        time.perf_counter() - start_time,
    )


def iter_local_distances(
    model: MrVI,
    adata: ad.AnnData,
    *,
    mc_samples: int = 0,
    batch_size: int | None = None,
    seed: int = 0,
) -> Iterator[tuple[int, np.ndarray]]:
    """Every cell's S x S local sample distance matrix, one chunk of cells at a time.

    Yields ``(start, distances)`` with ``distances`` of shape (cells in the chunk, S, S), float32,
    for the rows ``start : start + len(distances)`` of ``adata``; samples in the model's order.
    Memory is one chunk. ``mc_samples`` and ``seed`` as in :func:`local_sample_distances`.
    """
    for start, _, _, cells in _distance_chunks(
        model,
        adata,
        lambda _s, n: np.zeros(n, dtype=np.int32),
        1,
        keep_cells=True,
        mc_samples=mc_samples,
        batch_size=batch_size,
        seed=seed,
    ):
        yield start, cells


def local_sample_distances(
    model: MrVI,
    adata: ad.AnnData,
    *,
    groupby: str | None = None,
    cell_store: str | Path | None = None,
    mc_samples: int = 0,
    batch_size: int | None = None,
    seed: int = 0,
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
    mc_samples
        0 (default): distances between the counterfactual states at u's posterior mean. At least
        2: Monte-Carlo-normalised distances (paper, Methods: distances are z-scored against the
        distances between two states of the cell's own sample, which are non-zero only through
        the uncertainty of u). Per cell, ``mc_samples`` pairs of draws u ~ q(u | x) give the
        own-sample distances' mean mu and s.d. sigma; ``mc_samples`` further draws give D^(m);
        the result is mean_m (D^(m) - mu) / sigma off the diagonal and 0 on it (the reference
        code leaves -mu / sigma there). About ``mc_samples`` times the cost of the default.
    batch_size
        Cells per device chunk (default: 1024, fewer for many samples; see :data:`CHUNK_BYTES`).
    seed
        Seed of the draws of u (each cell's draws depend on its row, not on the chunking).

    Returns
    -------
    DataArray ``distance`` with dims (group, sample_x, sample_y) and a ``n_cells`` coordinate
    on group.
    """
    group, groups = group_codes(adata, groupby)
    samples = list(model.registry.samples)
    store = None
    if cell_store is not None:
        chunk = chunk_cells(len(samples), mc_samples, batch_size)
        store = _open_cell_store(Path(cell_store), list(adata.obs_names), samples, chunk)
    sums = np.zeros((len(groups), len(samples), len(samples)))
    for start, n, part, cells in _distance_chunks(
        model,
        adata,
        lambda s, n: group[s : s + n],
        len(groups),
        keep_cells=store is not None,
        mc_samples=mc_samples,
        batch_size=batch_size,
        seed=seed,
    ):
        sums += part
        if store is not None:
            store[start : start + n] = cells
    if store is not None:
        zarr.consolidate_metadata(str(cell_store))
    counts = np.bincount(group, minlength=len(groups))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = sums / counts[:, None, None]
    description = "mean ||z(s) - z(s')|| over the group"
    if mc_samples:
        description = f"mean Monte-Carlo-normalised distance ({mc_samples} draws) over the group"
    return grouped_distance_array(
        mean.astype(np.float32),
        groups=groups,
        samples=samples,
        n_cells=counts,
        attrs={"groupby": groupby or "", "description": description, "mc_samples": mc_samples},
    )
