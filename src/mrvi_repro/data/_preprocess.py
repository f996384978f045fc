"""Preprocessing shared by every dataset: counts check, HVG selection, semi-synthetic step, contract.

The order follows the paper's code: HVG selection on the full input, then the dataset-specific step
(here the semi-synthetic construction), then the data-contract check. What is removed is logged with
counts; nothing is dropped silently.
"""

from __future__ import annotations

import copy
import logging
from typing import TYPE_CHECKING, Any

import anndata as ad
import numpy as np
import pandas as pd
import scanpy as sc
from scipy import sparse

from ._readers import read_sample_metadata, read_source
from ._recipes import (
    covid_covariates,
    ibd_covariates,
    sciplex_cell_line,
    sciplex_screen,
)
from ._semisynthetic import make_semisynthetic
from ._spec import CovidRecipe, IbdRecipe, SciplexRecipe, SciplexScreen
from ._validate import DataContractError, _listing, count_problems, validate_adata

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

    from ._spec import DatasetSpec, HVGParams

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
    """Keep the top highly variable genes (scanpy, computed on the raw counts in ``X``)."""
    if params.n_top_genes >= adata.n_vars:
        logger.info("HVG: keeping all %d genes (n_top_genes=%d)", adata.n_vars, params.n_top_genes)
        return adata
    sc.pp.highly_variable_genes(
        adata,
        n_top_genes=params.n_top_genes,
        flavor=params.flavor,
        batch_key=params.batch_key,
        subset=True,
    )
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


def preprocess_dataset(adata: ad.AnnData, spec: DatasetSpec) -> ad.AnnData:
    """Turn a raw dataset into the validated AnnData of the data contract.

    Steps: raw counts of ``X`` checked and made CSR, HVG selection, removal of cells without
    counts in the selected genes, the semi-synthetic construction if the entry asks for it, the
    removal of small samples if it asks for that, and :func:`validate_adata`.

    Parameters
    ----------
    adata
        Raw dataset with counts in ``X`` (:func:`read_source`, after the entry's recipe).
    spec
        The dataset entry.

    Returns
    -------
    The preprocessed dataset.

    Raises
    ------
    DataContractError
        If the input or the result violates the data contract.
    """
    out = counts_to_x(adata)
    logger.info("%s: input %d cells x %d genes", spec.name, out.n_obs, out.n_vars)
    if isinstance(spec.recipe, SciplexRecipe):
        logger.info("HVG: selected by the shared sci-Plex screen step (%d genes)", out.n_vars)
    else:
        out = select_hvgs(out, spec.hvg)
    empty = np.asarray(out.X.sum(axis=1)).ravel() == 0
    if empty.any():
        logger.info(
            "removed %d of %d cells with no counts in the selected genes",
            int(empty.sum()),
            out.n_obs,
        )
        out = out[~empty].copy()
    if spec.semisynthetic is not None:
        out = make_semisynthetic(out, spec.semisynthetic, sample_key=spec.sample_key)
    if spec.drop_small_samples:
        out = drop_small_samples(out, spec.sample_key, spec.min_cells_per_sample)
    validate_adata(
        out,
        sample_key=spec.sample_key,
        batch_key=spec.batch_key,
        labels_key=spec.labels_key,
        sample_covariates=spec.sample_covariates,
        min_cells_per_sample=spec.min_cells_per_sample,
        what=f"dataset {spec.name!r}",
    )
    logger.info(
        "%s: output %d cells x %d genes, %d samples",
        spec.name,
        out.n_obs,
        out.n_vars,
        out.obs[spec.sample_key].nunique(),
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


def build_dataset(spec: DatasetSpec, inputs: Mapping[str, Any]) -> ad.AnnData:
    """Read, prepare and preprocess a dataset entry's inputs into the validated AnnData.

    Steps: the source is read (:func:`read_source`, the entry's ``subset`` applied), the recipe's
    step runs (COVID-19 ``age_int``; IBD donors and combined nuisance; for a sci-Plex cell line,
    whose source is then the shared screen output of :func:`build_sciplex_screen`, its cells and
    cell-cycle phase), the ``sample_metadata`` table is joined, then :func:`preprocess_dataset`.

    Parameters
    ----------
    spec
        The dataset entry.
    inputs
        ``source``: the source's file (for ``scp_bundles`` a mapping of its registry keys to
        paths; for a sci-Plex cell line the screen's ``.h5ad``); ``sample_metadata`` and
        ``cell_cycle_genes`` when the entry reads them.
    """
    if isinstance(spec.recipe, SciplexRecipe):
        adata = sciplex_cell_line(
            ad.read_h5ad(inputs["source"]), spec.recipe, inputs["cell_cycle_genes"]
        )
    else:
        adata = read_source(spec.source, inputs["source"], spec.subset)
        if isinstance(spec.recipe, CovidRecipe):
            adata = covid_covariates(adata, spec.recipe)
        elif isinstance(spec.recipe, IbdRecipe):
            adata = ibd_covariates(adata, spec.recipe)
    if spec.sample_metadata is not None:
        adata = read_sample_metadata(adata, spec.sample_metadata, inputs["sample_metadata"])
    return preprocess_dataset(adata, spec)


def build_sciplex_screen(
    screen: SciplexScreen, source: str | Path, plate_table: str | Path
) -> ad.AnnData:
    """Build the sci-Plex screen shared by the cell-line entries (rule ``sciplex_screen``).

    Reads the published file's counts (``screen.source`` and ``screen.subset``), runs
    :func:`mrvi_repro.data.sciplex_screen`, then selects HVGs on the kept cells of all cell lines
    with ``screen.hvg`` (the paper: 5,000 seurat_v3 genes, ``batch_key`` ``cell_type``).
    """
    adata = read_source(screen.source, source, screen.subset)
    adata = sciplex_screen(counts_to_x(adata), screen, plate_table)
    return select_hvgs(adata, screen.hvg)
