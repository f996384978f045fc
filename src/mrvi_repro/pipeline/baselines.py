"""What the workflow's baseline rules do, as a dataset entry's ``baselines`` section says.

Representations (PCA and scVI), composition distances on either, DESeq2 pseudobulk tables, Milo
per-cell DA log ratios and miloDE LFCs per cell group.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import anndata as ad
import numpy as np
import pandas as pd
import xarray as xr

from mrvi_repro._graph import knn_graph, leiden
from mrvi_repro._groups import group_codes
from mrvi_repro.baselines import (
    DESEQ2_COLUMNS,
    MILODE_COLUMNS,
    check_obs_keys,
    composition_distances,
    milo_da,
    milode,
    natural_order,
    pca_representation,
    pseudobulk_deseq2,
)
from mrvi_repro.data.contract import per_sample
from mrvi_repro.model import embedding_anndata
from mrvi_repro.settings.baselines import MiloDEConfig
from mrvi_repro.settings.names import REPRESENTATION_KEYS

from ._sizes import cap, naming_settings

if TYPE_CHECKING:
    from collections.abc import Sequence

    from mrvi_repro.model import SCVI

    from .entry import DatasetSpec

logger = logging.getLogger(__name__)

#: Columns of the table of :func:`deseq2_baseline`, in order: one row per (covariate, gene).
DESEQ2_TABLE_COLUMNS = ("covariate", "tested", "reference", *DESEQ2_COLUMNS)

#: Columns of the table of :func:`milode_baseline`, in order: one row per (covariate, nhood, gene).
MILODE_TABLE_COLUMNS = ("covariate", "tested", "reference", *MILODE_COLUMNS)


def baseline_representations(adata: ad.AnnData, scvi: SCVI, spec: DatasetSpec) -> ad.AnnData:
    """Collect the baselines' cell representations into a light AnnData.

    Parameters
    ----------
    adata
        The preprocessed AnnData (raw counts in ``X``).
    scvi
        scVI fitted to ``adata`` (:func:`mrvi_repro.pipeline.fit_scvi`).
    spec
        The dataset entry: ``baselines.pca.n_comps`` (capped, logged, at min(cells, genes) - 1)
        and ``baselines.seed`` (PCA solver).

    Returns
    -------
    An AnnData without ``X`` in the layout of ``mrvi_latent.h5ad``
    (:func:`mrvi_repro.model.embedding_anndata`): the cells' ``obs``, ``obsm["X_pca"]`` and
    ``obsm["X_scvi"]`` (the keys of :data:`~mrvi_repro.settings.names.REPRESENTATION_KEYS`, listed in
    ``uns["latent_keys"]``), and scVI's training history in ``uns["scvi_history"]``.
    """
    settings = spec.baselines
    n_comps = cap(
        settings.pca.n_comps,
        min(adata.n_obs, adata.n_vars) - 1,
        "baselines.pca.n_comps",
        f"{adata.n_obs} cells x {adata.n_vars} genes allow min(cells, genes) - 1 components",
    )
    out = embedding_anndata(
        adata,
        {
            REPRESENTATION_KEYS["pca"]: pca_representation(adata, n_comps, seed=settings.seed),
            REPRESENTATION_KEYS["scvi"]: scvi.get_latent(adata),
        },
    )
    out.uns["scvi_history"] = scvi.history.copy()
    logger.info(
        "representations of %d cells: %s",
        out.n_obs,
        ", ".join(f"{k} {out.obsm[k].shape[1]}" for k in out.uns["latent_keys"]),
    )
    return out


def composition_baseline(
    representations: ad.AnnData, spec: DatasetSpec, representation: str
) -> xr.DataArray:
    """Composition-PCA or composition-scVI sample distances per cluster, as the entry says.

    Parameters
    ----------
    representations
        Cells with the representation in ``obsm`` (:func:`baseline_representations`) and the
        entry's ``sample_key`` (and ``labels_key``) in ``obs``.
    spec
        The dataset entry: ``baselines.composition`` (clusters, resolutions, kNN size, capped at
        the cells but one) and ``baselines.seed``.
    representation
        A name of :data:`~mrvi_repro.settings.names.REPRESENTATION_KEYS` (``"pca"`` or ``"scvi"``).

    Returns
    -------
    The distances of :func:`composition_distances` (dims ``group``, ``sample_x``, ``sample_y``;
    the layout of MrVI's grouped distances), with ``representation`` and ``clusters`` (the
    resolved choice: ``labels`` or ``leiden``) added to ``attrs``.
    """
    if representation not in REPRESENTATION_KEYS:
        msg = f"unknown representation {representation!r}; known: {list(REPRESENTATION_KEYS)}"
        raise ValueError(msg)
    key = REPRESENTATION_KEYS[representation]
    settings, seed = spec.baselines.composition, spec.baselines.seed
    use_labels = settings.clusters == "labels" or (
        settings.clusters == "auto" and spec.labels_key is not None
    )
    adata = representations
    n_neighbors = cap(
        settings.n_neighbors,
        adata.n_obs - 1,
        "baselines.composition.n_neighbors",
        f"{adata.n_obs} cells",
        minimum=2,
    )
    if use_labels:
        cluster_key = spec.labels_key
    else:
        cluster_key = f"leiden_{representation}"
        graph = ad.AnnData(obs=pd.DataFrame(index=adata.obs_names), obsm={key: adata.obsm[key]})
        knn_graph(graph, n_neighbors=n_neighbors, use_rep=key, seed=seed)
        adata = adata.copy()
        adata.obs[cluster_key] = leiden(graph, resolution=settings.cluster_resolution, seed=seed)
        logger.info(
            "composition %s: %d Leiden clusters (resolution %s)",
            representation,
            adata.obs[cluster_key].nunique(),
            settings.cluster_resolution,
        )
    with naming_settings("baselines.composition", settings):
        dist = composition_distances(
            adata,
            representation=key,
            sample_key=spec.sample_key,
            cluster_key=cluster_key,
            resolution=settings.subcluster_resolution,
            n_neighbors=n_neighbors,
            seed=seed,
        )
    dist.attrs.update(
        {"representation": representation, "clusters": "labels" if use_labels else "leiden"}
    )
    return dist


def design_nuisance(adata: ad.AnnData, spec: DatasetSpec, method: str) -> str | None:
    """Return the ``batch_key`` if a sample-level design can hold it, else ``None`` (logged).

    The baselines' designs are per sample (``~ batch + covariate``): a batch with one value adds
    nothing, and a batch that varies within samples (the sci-Plex plate within a drug-dose) is
    not a sample covariate; both are left out of the design with a line in the log.
    """
    key = spec.batch_key
    if key is None:
        return None
    if adata.obs[key].nunique() < 2:
        logger.info("%s: batch_key %r has one value; no nuisance in the design", method, key)
        return None
    per = adata.obs.groupby(spec.sample_key, observed=True)[key].nunique()
    if (per > 1).any():
        logger.warning(
            "%s: batch_key %r varies within %d of %d samples of %r (it is not a sample-level "
            "covariate): left out of the design; each sample's pseudobulk pools its batches",
            method,
            key,
            int((per > 1).sum()),
            len(per),
            spec.sample_key,
        )
        return None
    return key


def deseq2_baseline(adata: ad.AnnData, spec: DatasetSpec, *, n_cpus: int = 1) -> pd.DataFrame:
    """DESeq2 on pseudobulks for every tested two-valued sample covariate, as the entry says.

    Parameters
    ----------
    adata
        The preprocessed AnnData (raw counts in ``X``).
    spec
        The dataset entry: ``baselines.deseq2`` (group, covariates, nuisance, ``min_cells``),
        ``sample_key``, ``labels_key`` (the group's column) and ``batch_key`` (the nuisance).
    n_cpus
        Worker processes of pydeseq2.

    Returns
    -------
    One row per (covariate, gene) with columns :data:`DESEQ2_TABLE_COLUMNS`: the covariate, its
    tested and reference levels (the LFC is log2(tested / reference); the reference is the first
    level, categorical order, else sorted) and :func:`pseudobulk_deseq2`'s statistics. Covariates
    without exactly two values are skipped (logged); with none left the table is empty.
    """
    settings = spec.baselines.deseq2
    group = None if settings.group == "all" else settings.group
    nuisance = design_nuisance(adata, spec, "DESeq2") if settings.batch_in_design else None
    covariates = spec.sample_covariates if settings.covariates is None else settings.covariates
    tables = []
    for covariate in _binary_covariates(
        adata, covariates, method="DESeq2", sample_key=spec.sample_key
    ):
        with naming_settings("baselines.deseq2", settings):
            table = pseudobulk_deseq2(
                adata,
                sample_key=spec.sample_key,
                group_key=None if group is None else spec.labels_key,
                group=group,
                covariate=covariate,
                nuisance_key=nuisance,
                min_cells=settings.min_cells,
                n_cpus=n_cpus,
            )
        info = table.attrs
        tested, reference = info["contrast"]
        logger.info(
            "DESeq2 %s (%s), %s vs %s in %s: samples per level %s, left out %s; "
            "%d genes with padj < 0.05",
            covariate,
            info["design"],
            tested,
            reference,
            "all cells" if group is None else f"{spec.labels_key} == {group!r}",
            info["n_samples"],
            info["dropped_samples"] or "none",
            int((table["padj"] < 0.05).sum()),
        )
        table.insert(0, "reference", reference)
        table.insert(0, "tested", tested)
        table.insert(0, "covariate", covariate)
        tables.append(table)
    if not tables:
        logger.warning("DESeq2: no two-valued covariate among %s; the table is empty", covariates)
        return pd.DataFrame(columns=list(DESEQ2_TABLE_COLUMNS))
    out = pd.concat(tables, ignore_index=True)
    out.attrs = {}
    return out


def _binary_covariates(
    adata: ad.AnnData, covariates: Sequence[str], *, method: str, sample_key: str
) -> list[str]:
    """Keep the testable covariates, in order: two values, each of at least two samples.

    The others are skipped, each with a line in the log (e.g. the sci-Plex entries'
    ``A549_deg_product``, False for the vehicle only: one sample on one side).

    Raises
    ------
    ValueError
        If a covariate is not an ``obs`` column.
    """
    check_obs_keys(adata, **{f"covariates[{i}]": c for i, c in enumerate(covariates)})
    kept = []
    for covariate in covariates:
        n_levels = len(natural_order(adata.obs[covariate]))
        if n_levels != 2:
            logger.info("%s: skipping %r (%d values, not two)", method, covariate, n_levels)
            continue
        per_level = per_sample(adata, sample_key, covariate).astype(str).value_counts()
        if per_level.min() < 2:
            logger.warning(
                "%s: skipping %r: a level with fewer than 2 samples of %r (samples per level: "
                "%s), nothing to test",
                method,
                covariate,
                sample_key,
                per_level.to_dict(),
            )
            continue
        kept.append(covariate)
    return kept


def _nhood_inputs(
    adata: ad.AnnData, representations: ad.AnnData, spec: DatasetSpec, method: str
) -> tuple[np.ndarray, list[str], Any]:
    """Return a neighbourhood baseline's representation, tested covariates and capped settings.

    The settings (:class:`MiloConfig` or :class:`MiloDEConfig`) have the graph's sizes capped
    (logged) to what the data allow: ``n_dims`` to the representation's dimensions, ``k`` (and
    ``k_init``) to the cells but one.
    """
    settings = getattr(spec.baselines, method)
    if not np.array_equal(
        np.asarray(adata.obs_names, dtype=str), np.asarray(representations.obs_names, dtype=str)
    ):
        msg = f"{method}: the representations' cells are not the data's (names or order differ)"
        raise ValueError(msg)
    rep = np.asarray(representations.obsm[REPRESENTATION_KEYS[settings.representation]])
    covariates = spec.sample_covariates if settings.covariates is None else settings.covariates
    config, key, n_cells = settings.config, f"baselines.{method}.config", rep.shape[0]
    sizes = {
        "n_dims": cap(
            config.n_dims,
            rep.shape[1],
            f"{key}.n_dims",
            f"the {settings.representation} representation has {rep.shape[1]} dimensions",
        ),
        "k": cap(config.k, n_cells - 1, f"{key}.k", f"{n_cells} cells"),
    }
    if isinstance(config, MiloDEConfig):
        sizes["k_init"] = cap(config.k_init, n_cells - 1, f"{key}.k_init", f"{n_cells} cells")
    return (
        rep,
        _binary_covariates(adata, covariates, method=method, sample_key=spec.sample_key),
        replace(config, **sizes),
    )


def milo_baseline(adata: ad.AnnData, representations: ad.AnnData, spec: DatasetSpec) -> xr.Dataset:
    """Run Milo DA for every tested two-valued sample covariate, as ``baselines.milo`` says.

    Parameters
    ----------
    adata
        The preprocessed AnnData (only ``obs`` is used).
    representations
        The same cells with the baselines' representations in ``obsm``
        (:func:`baseline_representations`).
    spec
        The dataset entry: ``baselines.milo`` (settings, covariates, representation),
        ``sample_key`` and ``batch_key`` (added to the design when it takes several values).

    Returns
    -------
    Dataset in the layout of MrVI's DA file (``analysis/da.nc``): one ``log_ratio_<covariate>``
    (cell; the mean log2 fold change of the tested neighbourhoods containing the cell, NaN in
    none) per tested covariate, with ``covariate``, ``group_a`` (tested level), ``group_b``,
    ``design`` and ``n_tested`` in its ``attrs``. The neighbourhoods do not depend on the
    covariate and are shared: ``n_nhoods`` (cell), ``index_cell``, ``n_cells`` and
    ``kth_distance`` (nhood), and per covariate ``logFC``, ``PValue`` and ``SpatialFDR``
    (covariate, nhood). ``attrs``: the method, keys, representation, sign convention and
    settings. Covariates without exactly two values are skipped (logged); with none left the
    Dataset has only the ``cell`` coordinate.

    Raises
    ------
    ValueError
        If the representations are not of the data's cells, or :func:`milo_da` refuses a
        covariate (e.g. fewer than 2 samples per level, a batch confounded with it).
    """
    settings = spec.baselines.milo
    rep, covariates, config = _nhood_inputs(adata, representations, spec, "milo")
    batch_key = design_nuisance(adata, spec, "Milo")
    cells = np.asarray(adata.obs_names, dtype=str)
    out = xr.Dataset(coords={"cell": cells})
    per_nhood: dict[str, list[np.ndarray]] = {"logFC": [], "PValue": [], "SpatialFDR": []}
    first: xr.Dataset | None = None
    for covariate in covariates:
        with naming_settings("baselines.milo", settings):
            res = milo_da(
                adata,
                sample_key=spec.sample_key,
                covariate=covariate,
                batch_key=batch_key,
                representation=rep,
                config=config,
            )
        if first is None:
            first = res
        elif not np.array_equal(res["index_cell"].values, first["index_cell"].values):
            msg = f"milo: the neighbourhoods of {covariate!r} differ from the first covariate's"
            raise RuntimeError(msg)
        out[f"log_ratio_{covariate}"] = ("cell", res["log_ratio"].values)
        out[f"log_ratio_{covariate}"].attrs.update(
            {k: res.attrs[k] for k in ("covariate", "group_a", "group_b", "design", "n_tested")}
        )
        for name, values in per_nhood.items():
            values.append(res[name].values)
        logger.info(
            "Milo %s (%s), %s vs %s: %d of %d neighbourhoods tested, %d with SpatialFDR < 0.1",
            covariate,
            res.attrs["design"],
            res.attrs["group_a"],
            res.attrs["group_b"],
            res.attrs["n_tested"],
            res.sizes["nhood"],
            int((res["SpatialFDR"] < 0.1).sum()),
        )
    if first is None:
        logger.warning("Milo: no two-valued covariate among %s; nothing tested", covariates)
        return out
    out = out.assign_coords(
        covariate=np.asarray(covariates, dtype=str), nhood=first["nhood"].values
    )
    out["n_nhoods"] = ("cell", first["n_nhoods"].values)
    out["index_cell"] = ("nhood", np.asarray(first["index_cell"].values, dtype=str))
    for name in ("n_cells", "kth_distance"):
        out[name] = ("nhood", first[name].values)
    for name, values in per_nhood.items():
        out[name] = (("covariate", "nhood"), np.stack(values))
    keep = ("method", "sample_key", "batch_key", "sign_convention", "n_dims")
    out.attrs = {k: first.attrs[k] for k in keep} | {
        k: v for k, v in first.attrs.items() if k.startswith("config_")
    }
    out.attrs["representation"] = settings.representation
    out.attrs["batch_key"] = spec.batch_key or ""  # the data's; the design's is in each variable
    return out


def milode_baseline(
    adata: ad.AnnData, representations: ad.AnnData, spec: DatasetSpec
) -> tuple[xr.Dataset, pd.DataFrame]:
    """Run miloDE for every tested two-valued sample covariate, as ``baselines.milode`` says.

    Parameters
    ----------
    adata
        The preprocessed AnnData (raw counts in ``X``).
    representations
        The same cells with the baselines' representations in ``obsm``
        (:func:`baseline_representations`).
    spec
        The dataset entry: ``baselines.milode`` (settings, covariates, representation),
        ``sample_key``, ``batch_key`` (added to the design when it takes several values) and
        ``labels_key`` (the groups the per-cell LFCs are averaged over).

    Returns
    -------
    lfc
        Dataset in the layout of MrVI's DE LFCs (``analysis/de.nc``): ``lfc`` (covariate, group,
        gene; float32, log2), per tested covariate the mean over the cells of each ``labels_key``
        group (one group ``all`` without labels) of the per-cell LFC (the mean logFC of the tested
        neighbourhoods containing the cell that kept the gene), cells without a value left out
        (NaN where the group has none); ``n_cells`` (group) and ``n_cells_tested`` (covariate,
        group: cells in at least one tested neighbourhood); ``group_a``, ``group_b``, ``design``,
        ``n_nhoods`` and ``n_tested`` (covariate). ``attrs``: the method, keys, representation,
        sign convention and settings.
    table
        One row per (covariate, neighbourhood, gene tested somewhere) with columns
        :data:`MILODE_TABLE_COLUMNS`: the covariate, its tested (``group_a``) and reference levels
        and miloDE's statistics. Covariates without exactly two values are skipped (logged); with
        none left the Dataset has no covariate and the table is empty.

    Raises
    ------
    ValueError
        If the representations are not of the data's cells, or :func:`milode` refuses a
        covariate (e.g. fewer than 2 samples per level, no testable neighbourhood).
    """
    settings = spec.baselines.milode
    rep, covariates, config = _nhood_inputs(adata, representations, spec, "milode")
    batch_key = design_nuisance(adata, spec, "miloDE")
    group, groups = group_codes(adata, spec.labels_key)
    onehot = np.eye(len(groups), dtype=np.float64)[group]  # cells x groups
    n_cells = onehot.sum(axis=0).astype(np.int64)
    means, tested_cells, per_cov, tables = [], [], [], []
    attrs: dict[str, object] = {}
    for covariate in covariates:
        with naming_settings("baselines.milode", settings):
            res = milode(
                adata,
                sample_key=spec.sample_key,
                covariate=covariate,
                batch_key=batch_key,
                representation=rep,
                config=config,
            )
        lfc = res.lfc["lfc"].values
        known = np.isfinite(lfc)
        with np.errstate(invalid="ignore", divide="ignore"):
            means.append(
                ((onehot.T @ np.where(known, lfc, 0.0)) / (onehot.T @ known)).astype(np.float32)
            )
        tested_cells.append((onehot.T @ known.any(axis=1)).astype(np.int64))
        info = res.lfc.attrs
        per_cov.append(
            {k: info[k] for k in ("group_a", "group_b", "design", "n_nhoods", "n_tested")}
        )
        attrs = info
        table = res.table.copy()
        table.insert(0, "reference", info["group_b"])
        table.insert(0, "tested", info["group_a"])
        table.insert(0, "covariate", covariate)
        tables.append(table)
        logger.info(
            "miloDE %s (%s), %s vs %s: %d of %d neighbourhoods tested, %d (nhood, gene) pairs "
            "with pval_corrected_across_nhoods < 0.1",
            covariate,
            info["design"],
            info["group_a"],
            info["group_b"],
            info["n_tested"],
            info["n_nhoods"],
            int((res.table["pval_corrected_across_nhoods"] < 0.1).sum()),
        )
    genes = np.asarray(adata.var_names, dtype=str)
    out = xr.Dataset(
        {
            "lfc": (
                ("covariate", "group", "gene"),
                np.stack(means) if means else np.empty((0, len(groups), genes.size), np.float32),
            ),
            "n_cells_tested": (
                ("covariate", "group"),
                np.stack(tested_cells) if tested_cells else np.empty((0, len(groups)), np.int64),
            ),
        },
        coords={
            "covariate": np.asarray(covariates, dtype=str),
            "group": np.asarray(groups, dtype=str),
            "gene": genes,
            "n_cells": ("group", n_cells),
        },
    )
    for key, dtype in (
        ("group_a", str),
        ("group_b", str),
        ("design", str),
        ("n_nhoods", np.int64),
        ("n_tested", np.int64),
    ):
        out[key] = ("covariate", np.asarray([c[key] for c in per_cov], dtype=dtype))
    out["lfc"].attrs["groupby"] = spec.labels_key or "all"
    keep = ("method", "sample_key", "batch_key", "sign_convention")
    out.attrs = {k: attrs[k] for k in keep if k in attrs} | {
        k: v for k, v in attrs.items() if k.startswith("config_")
    }
    out.attrs["representation"] = settings.representation
    out.attrs["batch_key"] = spec.batch_key or ""
    if not tables:
        logger.warning("miloDE: no two-valued covariate among %s; nothing tested", covariates)
        return out, pd.DataFrame(columns=list(MILODE_TABLE_COLUMNS))
    table = pd.concat(tables, ignore_index=True)
    table.attrs = {}
    return out, table
