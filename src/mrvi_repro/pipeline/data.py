"""The data stage as a dataset entry drives it: rules ``simulate_base`` and ``preprocess_dataset``."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import anndata as ad

from mrvi_repro.data.preprocess import preprocess
from mrvi_repro.data.readers import read_h5ad, read_sample_metadata, read_source
from mrvi_repro.data.recipes import covid_covariates, ibd_covariates, sciplex_cell_line
from mrvi_repro.settings.data import CovidRecipe, IbdRecipe, SciplexRecipe

if TYPE_CHECKING:
    from collections.abc import Mapping

    from .entry import DatasetSpec

logger = logging.getLogger(__name__)


def preprocess_dataset(adata: ad.AnnData, spec: DatasetSpec) -> ad.AnnData:
    """Preprocess a raw dataset as its entry says (:func:`~mrvi_repro.data.preprocess.preprocess`).

    The entry gives the contract's keys, the HVG selection (none for a sci-Plex cell line, whose
    genes the shared screen selected), the semi-synthetic construction and the small-sample rule.
    """
    return preprocess(
        adata,
        sample_key=spec.sample_key,
        hvg=None if isinstance(spec.recipe, SciplexRecipe) else spec.hvg,
        batch_key=spec.batch_key,
        labels_key=spec.labels_key,
        sample_covariates=spec.sample_covariates,
        min_cells_per_sample=spec.min_cells_per_sample,
        drop_small=spec.drop_small_samples,
        semisynthetic=spec.semisynthetic,
        name=spec.name,
    )


def build_dataset(spec: DatasetSpec, inputs: Mapping[str, Any]) -> ad.AnnData:
    """Read, prepare and preprocess a dataset entry's inputs into the validated AnnData.

    Steps: the source is read (:func:`~mrvi_repro.data.readers.read_source`, the entry's
    ``subset`` applied), the recipe's step runs (COVID-19 ``age_int``; IBD donors and combined
    nuisance; for a sci-Plex cell line, whose source is then the shared screen output of
    :func:`~mrvi_repro.data.preprocess.build_sciplex_screen`, its cells and cell-cycle phase), the
    ``sample_metadata`` table is joined, then :func:`preprocess_dataset`.

    Parameters
    ----------
    spec
        The dataset entry.
    inputs
        ``source``: the source's file (for ``scp_bundles`` a mapping of its registry keys to
        paths; for a sci-Plex cell line the screen's ``.h5ad``); ``sample_metadata`` and
        ``cell_cycle_genes`` when the entry reads them.
    """
    logger.info("dataset %r: %s", spec.name, spec.description or "(no description)")
    if isinstance(spec.recipe, SciplexRecipe):
        adata = sciplex_cell_line(
            read_h5ad(inputs["source"]), spec.recipe, inputs["cell_cycle_genes"]
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
