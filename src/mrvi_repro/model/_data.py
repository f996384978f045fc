"""What a model reads from AnnData: rows of the counts (dense float32 only where taken) and codes.

The counts stay as they are given (CSR or dense) until a block of rows is needed: memory is
bounded by the block, never by a dense or float64 copy of all cells x genes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jax.numpy as jnp
import numpy as np
from scipy import sparse

if TYPE_CHECKING:
    from collections.abc import Iterator

    import anndata as ad

    from ._registry import Registry

#: Rows of the counts reduced at a time on the host (log x!, totals): bounds their working copies.
_HOST_BLOCK_ROWS = 16_384


def _dense(x: Any) -> np.ndarray:
    return np.asarray(x.toarray() if sparse.issparse(x) else x, dtype=np.float32)


def _host_counts(x: Any) -> Any:
    """Return the counts as rows are cheap to take from: CSR (no copy if already) or dense."""
    return sparse.csr_matrix(x) if sparse.issparse(x) else np.asarray(x)


def _rows(x: Any, rows: np.ndarray | slice) -> np.ndarray:
    """Rows of host counts, dense float32 (only these rows are densified)."""
    return _dense(x[rows])


def _row_blocks(x: Any) -> Iterator[tuple[int, Any]]:
    """Consecutive blocks of ``_HOST_BLOCK_ROWS`` rows of ``x``, each with its first row."""
    for start in range(0, x.shape[0], _HOST_BLOCK_ROWS):
        yield start, x[start : start + _HOST_BLOCK_ROWS]


def _row_sums(x: Any) -> np.ndarray:
    """Per-cell total counts (float64), a block of rows at a time (no dense or float64 copy)."""
    out = np.empty(x.shape[0], dtype=np.float64)
    for start, block in _row_blocks(x):
        out[start : start + block.shape[0]] = np.asarray(
            block.sum(axis=1, dtype=np.float64)
        ).ravel()
    return out


def _training_data(adata: ad.AnnData, registry: Registry, stream: bool) -> dict[str, Any]:
    """Return the counts and codes a model trains on; cells without counts are an error.

    Parameters
    ----------
    adata
        Cells x genes with raw counts in ``X``.
    registry
        The codes of the cells' sample, batch and label.
    stream
        Keep the counts on the host as given (CSR or dense) and the codes as NumPy arrays; else
        densify the counts once and put everything on the device.

    Returns
    -------
    ``x`` (the counts) and the ``sample``, ``batch`` and ``label`` codes, one row per cell.
    """
    x = _host_counts(adata.X) if stream else _dense(adata.X)
    if (_row_sums(x) <= 0).any():
        msg = "some cells have no counts; remove them before fitting"
        raise ValueError(msg)
    data = {"x": x} | {k: registry.codes(adata, k) for k in ("sample", "batch", "label")}
    if not stream:
        data = {k: jnp.asarray(v) for k, v in data.items()}
    return data


def _host_chunk(data: dict[str, Any], rows: np.ndarray) -> dict[str, np.ndarray]:
    """Return the cells ``rows`` of host data: their counts densified (float32) and their codes."""
    return {k: (_rows(v, rows) if k == "x" else np.asarray(v)[rows]) for k, v in data.items()}
