"""The analyses of a fitted MrVI as the workflow runs them: one function per rule.

Each takes the fitted model, the preprocessed data and the parsed dataset entry (its ``labels_key``,
``sample_covariates`` and ``analysis`` section) and returns what the rule writes.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

import numpy as np

from mrvi_repro._groups import with_group_column
from mrvi_repro.analysis import (
    Contrast,
    differential_abundance_binary,
    differential_expression,
    local_sample_distances,
    sample_groups,
    stratify_cells,
)
from mrvi_repro.data.contract import per_sample

from ._sizes import cap, naming_settings

if TYPE_CHECKING:
    import anndata as ad
    import xarray as xr

    from mrvi_repro.model import MrVI

    from .entry import DatasetSpec

logger = logging.getLogger(__name__)

#: Cells up to which DA's aggregated posteriors use every cell; above, about this many in all.
DA_REFERENCE_CELLS = 100_000


def da_reference_cap(model: MrVI, adata: ad.AnnData) -> int | None:
    """Return the cells per sample of DA's aggregated posteriors (``None``: all of them).

    All up to :data:`DA_REFERENCE_CELLS` cells, else about ``DA_REFERENCE_CELLS / S`` each (logged).
    """
    if adata.n_obs <= DA_REFERENCE_CELLS:
        return None
    max_cells = math.ceil(DA_REFERENCE_CELLS / len(model.registry.samples))
    logger.info(
        "DA: %d cells; aggregated posteriors from at most %d cells per sample",
        adata.n_obs,
        max_cells,
    )
    return max_cells


def mrvi_distances(model: MrVI, adata: ad.AnnData, spec: DatasetSpec) -> xr.DataArray:
    """Mean local sample distance matrix per ``labels_key`` group (one group without labels)."""
    return local_sample_distances(
        model,
        adata,
        groupby=spec.labels_key,
        mc_samples=spec.analysis.distances.mc_samples,
        seed=spec.mrvi.seed,
    )


def mrvi_da(model: MrVI, adata: ad.AnnData, spec: DatasetSpec) -> xr.Dataset:
    """Per-cell DA log ratios for every two-valued sample covariate of the entry.

    One variable per covariate and estimator of ``analysis.da.estimators``, named by
    :func:`mrvi_repro.settings.names.da_variable`. Up to :data:`DA_REFERENCE_CELLS` cells, each
    sample's aggregated posterior is made of all its cells (the paper's); above, of a seeded random
    subset of about ``DA_REFERENCE_CELLS / S`` cells per sample, so the cost stays linear in cells
    instead of quadratic.

    Raises
    ------
    ValueError
        If no sample covariate of the entry takes two values (nothing to compare), naming the
        entry's ``sample_covariates``, as DE does.
    """
    covariates = list(spec.sample_covariates)
    n_values = {c: per_sample(adata, spec.sample_key, c).nunique() for c in covariates}
    if 2 not in n_values.values():
        found = ", ".join(f"{c!r} has {n}" for c, n in n_values.items()) or "none is named"
        msg = (
            f"dataset {spec.name!r}: DA compares the two values of a sample covariate, and no "
            f"entry of sample_covariates {covariates} has two values ({found}); set "
            "sample_covariates to name an obs column constant within each sample with two values"
        )
        raise ValueError(msg)
    max_cells = da_reference_cap(model, adata)
    return differential_abundance_binary(
        model,
        adata,
        covariates,
        estimators=spec.analysis.da.estimators,
        max_cells_per_sample=max_cells,
        seed=spec.mrvi.seed,
    )


def mrvi_de(model: MrVI, adata: ad.AnnData, spec: DatasetSpec) -> xr.Dataset:
    """Per-cell DE of the entry's ``analysis.de`` design, LFCs averaged per ``labels_key`` group.

    The design's covariates are fitted jointly (default: all ``sample_covariates``); the
    reported covariates are ``analysis.de.contrasts`` (default: the design columns). Without a
    ``labels_key`` the LFCs are averaged over all cells (one group, ``all``).
    """
    de = spec.analysis.de
    covariates = list(de.covariates or spec.sample_covariates)
    if not covariates:
        msg = f"dataset {spec.name!r}: DE needs sample_covariates (or analysis.de.covariates)"
        raise ValueError(msg)
    groupby = spec.labels_key
    if de.lfc and groupby is None:
        adata, groupby = with_group_column(adata, np.full(adata.n_obs, "all"), "all")
    with naming_settings("analysis.de", de):
        out = differential_expression(
            model,
            adata,
            covariates=covariates,
            mc_samples=de.mc_samples,
            lam=de.lam,
            lfc=de.lfc,
            lfc_groupby=groupby if de.lfc else None,
            contrasts=[Contrast(c.covariate, c.a, c.b) for c in de.contrasts] or None,
            seed=spec.mrvi.seed,
        )
    out.attrs["covariates"] = ",".join(covariates)  # netCDF attributes hold no string lists
    return out


def mrvi_stratification(model: MrVI, adata: ad.AnnData, spec: DatasetSpec) -> xr.Dataset:
    """Cell clusters by distance matrices, per-cluster sample dendrograms and sample groups.

    ``analysis.stratify``'s sizes are capped to what the data allow, each cap logged: ``n_pcs`` to
    the features (S(S-1)/2 for S samples) and the cells, ``n_neighbors`` to the cells but one,
    ``n_sample_groups`` to the samples.
    """
    st, key = spec.analysis.stratify, "analysis.stratify"
    n_samples, n_cells = len(model.registry.samples), adata.n_obs
    n_features = n_samples * (n_samples - 1) // 2
    n_pcs = cap(
        st.n_pcs,
        min(n_features, n_cells),
        f"{key}.n_pcs",
        f"the upper triangles of {n_samples} x {n_samples} sample distance matrices have "
        f"{n_features} features, of {n_cells} cells",
    )
    n_neighbors = cap(st.n_neighbors, n_cells - 1, f"{key}.n_neighbors", f"{n_cells} cells")
    n_groups = cap(st.n_sample_groups, n_samples, f"{key}.n_sample_groups", f"{n_samples} samples")
    with naming_settings(key, st):
        out = stratify_cells(
            model,
            adata,
            n_pcs=n_pcs,
            n_neighbors=n_neighbors,
            resolution=st.resolution,
            method=st.method,
            mc_samples=st.mc_samples,
            seed=spec.mrvi.seed,
        )
    out["sample_group"] = sample_groups(out, n_groups)
    return out
