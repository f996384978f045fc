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

from ._semisynthetic import make_semisynthetic
from ._spec import H5adSource
from ._validate import DataContractError, count_problems, validate_adata

if TYPE_CHECKING:
    from collections.abc import Sequence

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


def preprocess_dataset(adata: ad.AnnData, spec: DatasetSpec) -> ad.AnnData:
    """Turn a raw dataset into the validated AnnData of the data contract.

    Steps: raw counts into ``X`` (CSR), HVG selection, removal of cells without counts in the selected
    genes, the
    semi-synthetic construction if the entry asks for it, and :func:`validate_adata`.

    Parameters
    ----------
    adata
        Raw dataset (simulated base, downloaded or local file).
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
    layer = spec.source.counts_layer if isinstance(spec.source, H5adSource) else None
    out = counts_to_x(adata, layer)
    logger.info("%s: input %d cells x %d genes", spec.name, out.n_obs, out.n_vars)
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
