"""The AnnData data contract and its validator.

After preprocessing every dataset is one AnnData whose ``X`` holds raw integer counts (CSR), whose
genes are the selected highly variable genes, and whose ``obs`` carries the keys named by the
dataset entry. :func:`validate_adata` checks all of it and raises one :class:`DataContractError`
that lists every problem found, each naming the offending key, sample or gene.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import sparse

if TYPE_CHECKING:
    from collections.abc import Sequence

    from anndata import AnnData

_MAX_LISTED = 5


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


def count_problems(x: object, *, where: str = "X") -> list[str]:
    """Describe why a matrix is not a matrix of raw counts (empty list if it is).

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
    values = x.data if sparse.issparse(x) else np.asarray(x)
    if not np.issubdtype(values.dtype, np.number):
        return [f"{where} has non-numeric dtype {values.dtype}"]
    problems = []
    finite = np.isfinite(values)
    n_bad = int(values.size - finite.sum())
    if n_bad:
        problems.append(f"{where} has {n_bad} NaN or infinite entries")
    vals = values[finite]
    n_neg = int((vals < 0).sum())
    if n_neg:
        problems.append(
            f"{where} has {n_neg} negative entries (min {vals.min():g}); raw counts are >= 0"
        )
    frac = vals != np.round(vals)
    n_frac = int(frac.sum())
    if n_frac:
        example = float(vals[frac][0])
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

    Checks: ``X`` holds finite, non-negative, integer counts; gene names are unique; every named key
    is an ``obs`` column without missing values; every sample covariate is constant within each
    sample; there are at least two samples and each has at least ``min_cells_per_sample`` cells.

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
