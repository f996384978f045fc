"""The AnnData data contract and its validator.

After preprocessing every dataset is one AnnData whose ``X`` holds raw integer counts (CSR), whose
genes are the selected highly variable genes, and whose ``obs`` carries the keys named by the
dataset entry. :func:`validate_adata` checks all of it and raises one :class:`DataContractError`
that lists every problem found, each naming the offending key, sample or gene.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import sparse

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from anndata import AnnData

_MAX_LISTED = 5
#: Entries of a matrix checked at a time by :func:`count_problems` (bounds its working copies).
_CHECK_BLOCK = 1 << 22


class DataContractError(ValueError):
    """An AnnData does not satisfy the data contract; the message lists every problem."""

    def __init__(self, problems: Sequence[str], *, what: str = "AnnData") -> None:
        self.problems = list(problems)
        msg = f"{what} violates the data contract:\n" + "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(msg)


def _listing(values: Sequence[object]) -> str:
    shown = ", ".join(repr(v) for v in values[:_MAX_LISTED])
    more = len(values) - _MAX_LISTED
    return shown + (f" and {more} more" if more > 0 else "")


def _value_blocks(x: object) -> Iterator[np.ndarray]:
    """Yield the stored values of a matrix, at most ``_CHECK_BLOCK`` or one row of them at a time.

    Sparse: slices of its stored values (``data``); dense: blocks of rows (views, no copy).
    """
    if sparse.issparse(x):
        values = (x.tocsr() if x.format in ("lil", "dok") else x).data.reshape(-1)
        for start in range(0, values.size, _CHECK_BLOCK):
            yield values[start : start + _CHECK_BLOCK]
        return
    values = np.asarray(x)
    if values.ndim != 2:
        values = values.reshape(len(values) if values.ndim else 1, -1)
    rows = max(1, _CHECK_BLOCK // max(1, values.shape[1]))
    for start in range(0, values.shape[0], rows):
        yield values[start : start + rows]


def count_problems(x: object, *, where: str = "X") -> list[str]:
    """Describe why a matrix is not a matrix of raw counts (empty list if it is).

    The entries are checked a block at a time (:data:`_CHECK_BLOCK` entries): memory stays bounded
    by the block whatever the size of the matrix, and a sparse matrix is never densified.

    Parameters
    ----------
    x
        Dense array or scipy sparse matrix.
    where
        Name of the matrix used in the messages (``"X"``, ``"layers['counts']"``).

    Returns
    -------
    One message per problem: NaN or infinite entries, negative entries, non-integer entries.
    """
    dtype = x.dtype if sparse.issparse(x) else np.asarray(x).dtype
    if not np.issubdtype(dtype, np.number):
        return [f"{where} has non-numeric dtype {dtype}"]
    exact = np.issubdtype(dtype, np.integer)  # integers: finite and whole by their type
    n_bad = n_neg = n_frac = 0
    lowest, example = math.inf, None
    for block in _value_blocks(x):
        values = block
        if not exact:
            finite = np.isfinite(block)
            n_bad += int(block.size - np.count_nonzero(finite))
            values = block[finite]
        negative = values < 0
        if negative.any():
            n_neg += int(np.count_nonzero(negative))
            lowest = min(lowest, float(values[negative].min()))
        if not exact:
            frac = values != np.round(values)
            if frac.any():
                n_frac += int(np.count_nonzero(frac))
                if example is None:
                    example = float(values[frac][0])
    problems = []
    if n_bad:
        problems.append(f"{where} has {n_bad} NaN or infinite entries")
    if n_neg:
        problems.append(
            f"{where} has {n_neg} negative entries (min {lowest:g}); raw counts are >= 0"
        )
    if n_frac:
        problems.append(
            f"{where} has {n_frac} non-integer entries (e.g. {example:g}); it must hold raw counts, "
            "not normalised or log-transformed values"
        )
    return problems


def validate_adata(
    adata: AnnData,
    *,
    sample_key: str,
    batch_key: str | None = None,
    labels_key: str | None = None,
    sample_covariates: Sequence[str] = (),
    min_cells_per_sample: int = 1,
    what: str = "AnnData",
) -> None:
    """Check an AnnData against the data contract and raise if anything is wrong.

    Checks: ``X`` holds finite, non-negative, integer counts; gene names and cell names are unique;
    ``batch_key`` is not ``sample_key``; every named key is an ``obs`` column without missing
    values; every sample covariate is constant within each sample; there are at least two samples
    and each has at least ``min_cells_per_sample`` cells.

    Parameters
    ----------
    adata
        The dataset.
    sample_key
        ``obs`` column of the target covariate (the sample, s in the paper).
    batch_key
        ``obs`` column of the nuisance covariate (b), if any.
    labels_key
        ``obs`` column of cell-type labels, if any.
    sample_covariates
        ``obs`` columns that describe samples (disease, dose...) and so must be constant per sample.
    min_cells_per_sample
        Smallest number of cells a sample may have.
    what
        Name of the dataset used in the error message.

    Raises
    ------
    DataContractError
        Listing every problem found.
    """
    problems = count_problems(adata.X)
    if adata.n_obs == 0 or adata.n_vars == 0:
        problems.append(f"it is empty ({adata.n_obs} cells x {adata.n_vars} genes)")
    dup = adata.var_names[adata.var_names.duplicated()].unique()
    if len(dup):
        problems.append(
            f"{len(dup)} duplicated gene names: {_listing(list(dup))} "
            "(make them unique, e.g. AnnData.var_names_make_unique())"
        )
    dup_cells = adata.obs_names[adata.obs_names.duplicated()].unique()
    if len(dup_cells):
        n_cells = int(adata.obs_names.isin(dup_cells).sum())
        problems.append(
            f"{len(dup_cells)} cell names are shared by {n_cells} cells: "
            f"{_listing(list(dup_cells))} (outputs are keyed by cell name; make them unique, "
            "e.g. AnnData.obs_names_make_unique())"
        )
    if batch_key is not None and batch_key == sample_key:
        problems.append(
            f"batch_key and sample_key are both {sample_key!r}: the nuisance covariate must be "
            "another obs column than the samples (or no batch_key)"
        )

    named = {"sample_key": sample_key, "batch_key": batch_key, "labels_key": labels_key}
    named.update({f"sample_covariates[{i}]": c for i, c in enumerate(sample_covariates)})
    present = {}
    for role, column in named.items():
        if column is None:
            continue
        if column not in adata.obs.columns:
            problems.append(
                f"obs has no column {column!r} (named by {role}); "
                f"columns are: {_listing(list(adata.obs.columns))}"
            )
            continue
        n_missing = int(adata.obs[column].isna().sum())
        if n_missing:
            problems.append(f"obs[{column!r}] (named by {role}) has {n_missing} missing values")
            continue
        present[role] = column

    if "sample_key" in present:
        samples = adata.obs[sample_key].astype(str)
        sizes = samples.value_counts()
        if len(sizes) < 2:
            problems.append(
                f"obs[{sample_key!r}] has {len(sizes)} distinct sample(s); at least 2 are needed"
            )
        small = sizes[sizes < min_cells_per_sample]
        if len(small):
            listed = [f"{s} ({n} cells)" for s, n in small.sort_values().items()]
            problems.append(
                f"{len(small)} sample(s) have fewer than {min_cells_per_sample} cells: "
                + ", ".join(listed[:_MAX_LISTED])
                + (f" and {len(listed) - _MAX_LISTED} more" if len(listed) > _MAX_LISTED else "")
                + " (lower min_cells_per_sample, or drop such samples: drop_small_samples)"
            )
        for role, column in present.items():
            if not role.startswith("sample_covariates"):
                continue
            n_values = (
                pd.Series(adata.obs[column].to_numpy(), index=samples.index)
                .groupby(samples.to_numpy())
                .nunique()
            )
            varying = n_values[n_values > 1]
            if len(varying):
                problems.append(
                    f"sample covariate {column!r} varies within {len(varying)} sample(s) "
                    f"(e.g. {_listing(list(varying.index))}); it must be constant per sample"
                )
    if problems:
        raise DataContractError(problems, what=what)


def per_sample(adata: AnnData, sample_key: str, column: str) -> pd.Series:
    """Return the value of a sample-level ``obs`` column for each sample (index: sample name).

    Raises
    ------
    ValueError
        If the column is missing for some cells or takes more than one value within a sample.
    """
    values = adata.obs[column]
    if values.isna().any():
        msg = f"obs[{column!r}] has {int(values.isna().sum())} missing values"
        raise ValueError(msg)
    frame = pd.DataFrame(
        {"sample": adata.obs[sample_key].astype(str).to_numpy(), "value": values.to_numpy()}
    )
    n_values = frame.groupby("sample")["value"].nunique()
    varying = n_values.index[n_values > 1].tolist()
    if varying:
        shown = ", ".join(repr(s) for s in varying[:5]) + (" ..." if len(varying) > 5 else "")
        msg = (
            f"obs[{column!r}] varies within {len(varying)} sample(s) of obs[{sample_key!r}] "
            f"({shown}); it must be a sample-level covariate, constant within each sample"
        )
        raise ValueError(msg)
    return frame.groupby("sample")["value"].first()
