"""Preprocessing shared by every dataset: counts check, HVG selection, semi-synthetic step, contract.

The order follows the paper's code: HVG selection on the full input, then the dataset-specific step
(here the semi-synthetic construction), then the data-contract check. What is removed is logged with
counts; nothing is dropped silently.
"""

from __future__ import annotations

import copy
import logging
from typing import TYPE_CHECKING

import anndata as ad
import numpy as np
import pandas as pd
import scanpy as sc
from scipy import sparse

from .contract import DataContractError, _listing, count_problems, validate_adata
from .readers import read_source
from .recipes import sciplex_screen
from .semisynthetic import make_semisynthetic

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from mrvi_repro.settings.data import (
        ExpectedCounts,
        HVGParams,
        SciplexScreen,
        SemisyntheticParams,
    )

logger = logging.getLogger(__name__)


def counts_to_x(adata: ad.AnnData, layer: str | None = None) -> ad.AnnData:
    """Return a copy whose ``X`` holds the raw counts as CSR float32 (layers and graphs dropped).

    Parameters
    ----------
    adata
        Input data.
    layer
        Layer that holds the counts; ``None`` means ``X``.

    Raises
    ------
    DataContractError
        If the layer does not exist or does not hold raw counts.
    """
    if layer is not None and layer not in adata.layers:
        raise DataContractError(
            [f"counts_layer {layer!r} is not a layer; layers are: {list(adata.layers)}"]
        )
    x = adata.X if layer is None else adata.layers[layer]
    where = "X" if layer is None else f"layers[{layer!r}]"
    problems = count_problems(x, where=where)
    if problems:
        raise DataContractError(problems)
    return ad.AnnData(
        X=sparse.csr_matrix(x, dtype=np.float32),
        obs=adata.obs.copy(),
        var=adata.var.copy(),
        uns=copy.deepcopy(dict(adata.uns)),
        obsm={k: v.copy() for k, v in adata.obsm.items()},
    )


def select_hvgs(adata: ad.AnnData, params: HVGParams) -> ad.AnnData:
    """Keep the top highly variable genes (scanpy, on the raw counts in ``X``) and ``params.keep``.

    The named genes are kept whether or not they rank among the top; one the data lacks is a
    warning. Genes stay in the data's order. ``adata`` is subset in place and returned.
    """
    if params.n_top_genes >= adata.n_vars:
        logger.info("HVG: keeping all %d genes (n_top_genes=%d)", adata.n_vars, params.n_top_genes)
        return adata
    sc.pp.highly_variable_genes(
        adata,
        n_top_genes=params.n_top_genes,
        flavor=params.flavor,
        batch_key=params.batch_key,
    )
    selected = adata.var["highly_variable"].to_numpy().copy()
    named = adata.var_names.isin(params.keep)
    missing = sorted(set(params.keep) - set(adata.var_names))
    if missing:
        logger.warning("HVG: genes to keep that the data lacks: %s", _listing(missing))
    added = named & ~selected
    if added.any():
        logger.info(
            "HVG: kept %d named genes besides the top %d: %s",
            int(added.sum()),
            params.n_top_genes,
            _listing(list(adata.var_names[added])),
        )
    # in place, as scanpy's own subset=True does (the caller's object shrinks too)
    adata._inplace_subset_var(selected | named)
    logger.info("HVG (%s): kept %d genes", params.flavor, adata.n_vars)
    return adata


def drop_small_samples(adata: ad.AnnData, sample_key: str, min_cells: int) -> ad.AnnData:
    """Drop the samples with fewer than ``min_cells`` cells, naming them in the log."""
    sizes = adata.obs[sample_key].value_counts()
    small = sizes.index[sizes < min_cells]
    if len(small):
        logger.info(
            "dropped %d samples with fewer than %d cells (%d cells): %s",
            len(small),
            min_cells,
            int(sizes[small].sum()),
            _listing(list(small.astype(str))),
        )
        adata = adata[~adata.obs[sample_key].isin(small)].copy()
    return adata


def _warn_lost_samples(obs: pd.DataFrame, removed: np.ndarray, sample_key: str) -> None:
    """Warn, naming each, about the samples whose every cell is in ``removed``."""
    if sample_key not in obs.columns:  # created later (semi-synthetic construction)
        return
    samples = obs[sample_key].astype(str).to_numpy()
    lost = sorted(set(samples[removed]) - set(samples[~removed]))
    if lost:
        logger.warning(
            "%d sample(s) of obs[%r] removed entirely, none of their cells having counts in the "
            "selected genes: %s",
            len(lost),
            sample_key,
            ", ".join(f"{s!r} ({int((samples == s).sum())} cells)" for s in lost),
        )


def preprocess(
    adata: ad.AnnData,
    *,
    sample_key: str,
    hvg: HVGParams | None,
    batch_key: str | None = None,
    labels_key: str | None = None,
    sample_covariates: Sequence[str] = (),
    min_cells_per_sample: int = 10,
    drop_small: bool = False,
    semisynthetic: SemisyntheticParams | None = None,
    name: str = "dataset",
) -> ad.AnnData:
    """Turn a raw dataset into the validated AnnData of the data contract.

    Steps: raw counts of ``X`` checked and made CSR, HVG selection, removal of cells without
    counts in the selected genes (a warning names each sample that loses all its cells), the
    semi-synthetic construction (with ``semisynthetic``), the removal of samples under
    ``min_cells_per_sample`` cells (with ``drop_small``), and
    :func:`~mrvi_repro.data.contract.validate_adata`.

    Parameters
    ----------
    adata
        Raw dataset with counts in ``X`` (:func:`~mrvi_repro.data.readers.read_source`, after the
        dataset's recipe).
    sample_key, batch_key, labels_key, sample_covariates, min_cells_per_sample
        The keys of the data contract and the smallest sample allowed.
    hvg
        HVG selection; ``None`` when the genes were selected before (the sci-Plex screen).
    drop_small
        Drop (and log) samples under ``min_cells_per_sample`` cells instead of failing.
    semisynthetic
        Plant the paper's semi-synthetic effects (this creates ``sample_key``).
    name
        The dataset's name, for the log and error messages.

    Returns
    -------
    The preprocessed dataset; ``uns['preprocessing']`` holds the size of the input
    (``input_cells``, ``input_genes``).

    Raises
    ------
    DataContractError
        If the input or the result violates the data contract.
    """
    out = counts_to_x(adata)
    logger.info("%s: input %d cells x %d genes", name, out.n_obs, out.n_vars)
    read = {"input_cells": int(out.n_obs), "input_genes": int(out.n_vars)}
    if hvg is None:
        logger.info("HVG: selected by the shared sci-Plex screen step (%d genes)", out.n_vars)
    else:
        out = select_hvgs(out, hvg)
    empty = np.asarray(out.X.sum(axis=1)).ravel() == 0
    if empty.any():
        logger.info(
            "removed %d of %d cells with no counts in the selected genes",
            int(empty.sum()),
            out.n_obs,
        )
        _warn_lost_samples(out.obs, empty, sample_key)
        out = out[~empty].copy()
    if semisynthetic is not None:
        out = make_semisynthetic(out, semisynthetic, sample_key=sample_key)
    if drop_small:
        out = drop_small_samples(out, sample_key, min_cells_per_sample)
    out.uns["preprocessing"] = read
    validate_adata(
        out,
        sample_key=sample_key,
        batch_key=batch_key,
        labels_key=labels_key,
        sample_covariates=sample_covariates,
        min_cells_per_sample=min_cells_per_sample,
        what=f"dataset {name!r}",
    )
    logger.info(
        "%s: output %d cells x %d genes, %d samples",
        name,
        out.n_obs,
        out.n_vars,
        out.obs[sample_key].nunique(),
    )
    return out


def sample_table(
    adata: ad.AnnData, *, sample_key: str, sample_covariates: Sequence[str] = ()
) -> pd.DataFrame:
    """One row per sample: its covariates (constant within the sample) and its number of cells."""
    obs = adata.obs
    table = obs.groupby(sample_key, observed=True)[list(sample_covariates)].first()
    table["n_cells"] = obs.groupby(sample_key, observed=True).size()
    table.index.name = "sample"
    return table.reset_index()


#: Columns of :func:`count_check`'s table.
COUNT_CHECK_COLUMNS = (
    "quantity",
    "expected",
    "observed",
    "difference",
    "relative_difference",
    "status",
    "note",
)


def _equals(column: pd.Series, value: str) -> np.ndarray:
    """Cells whose value is ``value`` (a string): compared as numbers in a numeric column."""
    if pd.api.types.is_numeric_dtype(column):
        number = pd.to_numeric(value, errors="coerce")
        return (column == number).to_numpy() if not pd.isna(number) else np.zeros(len(column), bool)
    return (column.notna() & (column.astype(str) == value)).to_numpy()


def count_check(
    adata: ad.AnnData,
    expected: ExpectedCounts | None,
    *,
    sample_key: str,
    name: str = "dataset",
) -> pd.DataFrame:
    """Compare a preprocessed dataset's sizes with those its source reports; log each.

    Quantities: cells read (``uns['preprocessing']['input_cells']``, set by :func:`preprocess`),
    cells, genes, samples, participants (distinct ``expected.participant_key``, default the
    sample key; listed when ``expected`` names a number or a key for them) and, per
    ``expected.participant_groups`` column and value, the participants whose cells carry that
    value. A quantity with an expected number is ``"matches"`` when it lies
    within ``expected.tolerance`` (relative) of it, else ``"differs"`` and a warning names both
    numbers and ``expected.note``; without one it is ``"not reported"`` (still listed, so the
    table describes the data).

    Parameters
    ----------
    adata
        The preprocessed dataset.
    expected
        What the source reports, or ``None``.
    sample_key
        The samples' column.
    name
        The dataset's name, for the log.

    Returns
    -------
    One row per quantity, columns :data:`COUNT_CHECK_COLUMNS` (``expected`` and the differences
    are missing where nothing was reported).

    Raises
    ------
    DataContractError
        If a participant column named by ``expected`` is not in ``obs``.
    """
    exp = expected
    obs = adata.obs
    participant_key = (exp.participant_key if exp is not None else None) or sample_key
    groups = exp.participant_groups if exp is not None else {}
    missing = sorted({participant_key, *groups} - set(obs.columns))
    if missing:
        raise DataContractError([f"expected counts name obs columns that are not there: {missing}"])
    rows: list[tuple[str, int | None, int]] = []
    read = adata.uns.get("preprocessing", {})
    if "input_cells" in read:
        rows.append(("cells read", exp.input_cells if exp else None, int(read["input_cells"])))
    rows += [
        ("cells", exp.cells if exp else None, adata.n_obs),
        ("genes", exp.genes if exp else None, adata.n_vars),
        ("samples", exp.samples if exp else None, int(obs[sample_key].nunique())),
    ]
    participants = obs[participant_key]  # nunique() leaves missing values out
    if exp is not None and (exp.participants is not None or exp.participant_key is not None):
        rows.append(
            (f"participants ({participant_key})", exp.participants, int(participants.nunique()))
        )
    for column, values in groups.items():
        for value, n in values.items():
            rows.append(
                (
                    f"participants with {column} = {value}",
                    n,
                    int(participants[_equals(obs[column], value)].nunique()),
                )
            )
    tolerance = exp.tolerance if exp is not None else 0.0
    note = exp.note if exp is not None else ""
    records = []
    for quantity, want, got in rows:
        if want is None:
            records.append((quantity, np.nan, got, np.nan, np.nan, "not reported", ""))
            logger.info("%s: %s %d (no expected number)", name, quantity, got)
            continue
        diff = got - want
        rel = diff / want if want else (0.0 if diff == 0 else np.inf)
        status = "matches" if abs(rel) <= tolerance else "differs"
        records.append(
            (quantity, want, got, diff, rel, status, note if status == "differs" else "")
        )
        if status == "matches":
            logger.info("%s: %s %d, expected %d: matches", name, quantity, got, want)
        else:
            source = f" ({exp.source})" if exp is not None and exp.source else ""
            logger.warning(
                "%s: %s %d, expected %d%s: differs by %+d (%+.1f%%)%s",
                name,
                quantity,
                got,
                want,
                source,
                diff,
                100 * rel,
                f"; {note}" if note else "",
            )
    table = pd.DataFrame.from_records(records, columns=list(COUNT_CHECK_COLUMNS))
    return table.astype({"expected": "Int64", "observed": "int64", "difference": "Int64"})


def build_sciplex_screen(
    screen: SciplexScreen, source: str | Path, plate_table: str | Path
) -> ad.AnnData:
    """Build the sci-Plex screen shared by the cell-line entries (rule ``sciplex_screen``).

    Reads the published file's counts (``screen.source`` and ``screen.subset``), runs
    :func:`mrvi_repro.data.recipes.sciplex_screen`, then selects HVGs on the kept cells of all cell lines
    with ``screen.hvg`` (the paper: 5,000 seurat_v3 genes, ``batch_key`` ``cell_type``).
    """
    adata = read_source(screen.source, source, screen.subset)
    adata = sciplex_screen(counts_to_x(adata), screen, plate_table)
    return select_hvgs(adata, screen.hvg)
