"""The entry's named comparisons as the workflow runs them: one function per rule.

Rules ``sample_groups``, ``de_comparison`` and ``da_comparison`` (``workflow/rules/comparisons.smk``).

Each function takes the parsed entry (:class:`~mrvi_repro.pipeline.DatasetSpec`, its
``comparisons`` section: :mod:`mrvi_repro.pipeline._comparison_spec`) and the inputs of its rule,
and returns what the rule writes.
"""

from __future__ import annotations

import logging
import math
from itertools import combinations
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mrvi_repro._groups import with_group_column
from mrvi_repro.analysis import (
    Contrast,
    admissibility_reference,
    cluster_abundance_test,
    compare_sample_groups,
    differential_abundance,
    differential_expression,
    gene_modules,
    gsea_prerank,
    module_activity,
    read_gmt,
    sample_groups,
    select_samples,
)
from mrvi_repro.data.contract import per_sample
from mrvi_repro.metrics import cell_clusters, mean_lfc

from ._comparison_spec import CLUSTER_OF, DAComparisonSpec, DEComparisonSpec, SampleGroupsSpec
from .analysis import da_reference_cap
from .workload import cells_matching

if TYPE_CHECKING:
    from pathlib import Path

    import anndata as ad
    import xarray as xr

    from mrvi_repro.model import MrVI

    from .entry import DatasetSpec

logger = logging.getLogger(__name__)

#: Columns of the sample-group tests table.
GROUP_TEST_COLUMNS = (
    "sample_groups",
    "cluster",
    "covariate",
    "group_a",
    "group_b",
    "n_a",
    "n_b",
    "median_a",
    "median_b",
    "u",
    "pvalue",
)


def _cell_clusters(stratification: xr.Dataset, adata: ad.AnnData) -> pd.Series:
    """Return the stratification's cluster of each cell of ``adata``, in its order."""
    by_cell = cell_clusters(stratification).reindex(np.asarray(adata.obs_names, dtype=str))
    if by_cell.isna().any():
        msg = "the stratification does not cover every cell of the data"
        raise ValueError(msg)
    return by_cell


def stratification_cluster(
    stratification: xr.Dataset, adata: ad.AnnData, cells: dict[str, tuple[str, ...]]
) -> str:
    """Return the stratification cluster holding most of the named cells (logged, with its share)."""
    selected = cells_matching(adata, cells)
    if not selected.any():
        msg = f"no cell matches {cells}"
        raise ValueError(msg)
    by_cell = _cell_clusters(stratification, adata)
    counts = by_cell[selected].value_counts()
    cluster = str(counts.index[0])
    logger.info(
        "cells %s: %d cells, %.0f %% in stratification cluster %s (%d cells in all)",
        dict(cells),
        int(selected.sum()),
        100 * counts.iloc[0] / selected.sum(),
        cluster,
        int((by_cell == cluster).sum()),
    )
    return cluster


def _sample_table(adata: ad.AnnData, sample_key: str, columns: list[str]) -> pd.DataFrame:
    """One row per sample: the named sample covariates (each constant within a sample)."""
    samples = pd.Index(adata.obs[sample_key].astype(str).unique(), name=sample_key)
    table = pd.DataFrame(index=samples)
    for column in columns:
        table[column] = per_sample(adata, sample_key, column).reindex(samples).to_numpy()
    return table


def derive_sample_groups(
    stratification: xr.Dataset, adata: ad.AnnData, spec: DatasetSpec
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Sample covariates from the stratification, and tests of sample covariates between groups.

    For each ``comparisons.sample_groups`` item: the cluster holding most of its cells, that
    cluster's Ward groups of samples (``n_groups``), named ``g1``, ``g2``, ... in leaf order or by
    the increasing median of ``order_by``; then a Mann-Whitney U test of each ``compare`` covariate
    between every two groups (groups where it is never a number, e.g. days since symptom onset of
    healthy donors, are left out of its tests).

    Returns
    -------
    The groups (one row per sample, a column per item) and the tests
    (:data:`GROUP_TEST_COLUMNS`).
    """
    items = spec.comparisons.sample_groups
    key = spec.sample_key
    needed = sorted({c for g in items for c in (g.order_by, *g.compare) if c is not None})
    table = _sample_table(adata, key, needed)
    out = pd.DataFrame(index=pd.Index(stratification["sample_x"].values, name=key))
    tests = []
    for item in items:
        cluster = stratification_cluster(stratification, adata, item.cells)
        raw = sample_groups(stratification.sel(cluster=[cluster]), item.n_groups)
        labels = pd.Series(raw.sel(cluster=cluster).values, index=raw["sample"].values)
        names = _group_names(labels, table, item)
        out[item.name] = labels.map(names).reindex(out.index).to_numpy()
        logger.info(
            "sample_groups %r: cluster %s, groups %s",
            item.name,
            cluster,
            out[item.name].value_counts().sort_index().to_dict(),
        )
        for covariate in item.compare:
            values = pd.to_numeric(table[covariate], errors="coerce")
            has = values.reindex(out.index).notna().groupby(out[item.name]).any()
            if not has.all():
                logger.info(
                    "%s: %s is not a number for any sample of group(s) %s: not compared",
                    item.name,
                    covariate,
                    sorted(has.index[~has]),
                )
            for a, b in combinations(sorted(has.index[has]), 2):
                row = compare_sample_groups(values, out[item.name], group_a=b, group_b=a).iloc[0]
                tests.append(
                    (item.name, cluster, covariate, b, a, row["n_a"], row["n_b"])
                    + (row["median_a"], row["median_b"], row["u"], row["pvalue"])
                )
                logger.info(
                    "%s: %s in %s vs %s: medians %.3g vs %.3g, Mann-Whitney U p = %.3g",
                    item.name,
                    covariate,
                    b,
                    a,
                    row["median_a"],
                    row["median_b"],
                    row["pvalue"],
                )
    return out.reset_index(), pd.DataFrame(tests, columns=list(GROUP_TEST_COLUMNS))


def _group_names(labels: pd.Series, table: pd.DataFrame, item: SampleGroupsSpec) -> dict:
    """Map raw group numbers (leaf order) to ``g1``, ``g2``, ... (by ``order_by`` if given).

    With ``order_by``: by the increasing median of its numeric values, groups where most samples
    have none (e.g. the healthy donors' days since onset, even with a few patients among them)
    last.
    """
    order = sorted(labels.unique())
    if item.order_by is not None:
        values = pd.to_numeric(table[item.order_by], errors="coerce")
        members = {g: values.reindex(labels.index[labels == g]) for g in order}
        key = {
            g: (bool(v.isna().mean() > 0.5), math.isnan(v.median()), v.median(), g)
            for g, v in members.items()
        }
        order = sorted(order, key=lambda g: key[g])
    return {g: f"g{i + 1}" for i, g in enumerate(order)}


def with_sample_groups(
    adata: ad.AnnData, groups: pd.DataFrame | None, spec: DatasetSpec
) -> ad.AnnData:
    """Add the derived sample covariates to ``adata.obs`` (in place; returns ``adata``)."""
    if groups is None or groups.empty:
        return adata
    table = groups.set_index(spec.sample_key)
    table.index = table.index.astype(str)
    samples = adata.obs[spec.sample_key].astype(str)
    for column in table.columns:
        adata.obs[column] = pd.Categorical(samples.map(table[column]).to_numpy())
    return adata


def _selected_samples(
    adata: ad.AnnData, spec: DatasetSpec, comparison: DEComparisonSpec | DAComparisonSpec
) -> list[str]:
    """Return the samples a comparison keeps (all without a ``samples`` selection), logged."""
    selection = comparison.samples
    if not selection.columns:
        return list(adata.obs[spec.sample_key].astype(str).unique())
    table = _sample_table(adata, spec.sample_key, sorted(selection.columns))
    kept = select_samples(table, include=selection.include, exclude=selection.exclude)
    logger.info(
        "%s: %d of %d samples kept by %s", comparison.name, len(kept), len(table), selection
    )
    return kept


def _selected_cells(
    adata: ad.AnnData,
    spec: DatasetSpec,
    comparison: DEComparisonSpec | DAComparisonSpec,
    stratification: xr.Dataset | None,
) -> np.ndarray:
    """Boolean mask of the cells a comparison analyses (``cells``, ``cluster_of``), logged."""
    mask = cells_matching(adata, comparison.cells)
    if CLUSTER_OF in comparison.cells:
        if stratification is None:
            msg = f"{comparison.name}: cells.{CLUSTER_OF} needs the stratification"
            raise ValueError(msg)
        (name,) = comparison.cells[CLUSTER_OF]
        item = next(g for g in spec.comparisons.sample_groups if g.name == name)
        cluster = stratification_cluster(stratification, adata, item.cells)
        mask &= (_cell_clusters(stratification, adata) == cluster).to_numpy()
    if not mask.any():
        msg = f"{comparison.name}: no cell is selected by cells {dict(comparison.cells)}"
        raise ValueError(msg)
    logger.info("%s: %d of %d cells analysed", comparison.name, int(mask.sum()), adata.n_obs)
    return mask


def run_de_comparison(
    model: MrVI,
    adata: ad.AnnData,
    spec: DatasetSpec,
    name: str,
    *,
    lfc_store: str | Path,
    sample_groups_table: pd.DataFrame | None = None,
    stratification: xr.Dataset | None = None,
    gene_sets: str | Path | None = None,
) -> tuple[xr.Dataset, pd.DataFrame, pd.DataFrame]:
    """One named DE comparison: per-cell statistics and LFCs, gene modules, GSEA.

    The regression uses the comparison's samples and, by default, each cell's admissible samples
    (the rule is fitted on all cells of the data); the analysed cells' per-cell LFCs go to
    ``lfc_store`` (zarr) and their means per ``labels_key`` group (one group ``all`` without
    labels) to the returned dataset, with module activities per cell when modules are asked.

    Returns
    -------
    The DE dataset, the gene modules (``gene``, ``module``, ``mean_lfc``; empty without
    ``modules``) and the GSEA table (empty without ``gsea``).
    """
    comparison = spec.comparisons.de_named(name)
    adata = with_sample_groups(adata, sample_groups_table, spec)
    samples = _selected_samples(adata, spec, comparison)
    rule = None
    if comparison.admissibility:
        rule = admissibility_reference(model, adata, seed=spec.mrvi.seed)
        logger.info("%s: admissibility threshold %.3f", name, rule.threshold)
    mask = _selected_cells(adata, spec, comparison, stratification)
    groupby = spec.labels_key
    if groupby is None:
        adata, groupby = with_group_column(adata, np.full(adata.n_obs, "all"), "all")
    c = comparison.contrast
    de = differential_expression(
        model,
        adata,
        covariates=list(comparison.covariates),
        contrasts=[Contrast(c.covariate, c.a, c.b)],
        samples=samples,
        cells=mask,
        admissible=rule,
        mc_samples=comparison.mc_samples,
        lfc=True,
        lfc_groupby=groupby,
        lfc_store=lfc_store,
        seed=spec.mrvi.seed,
    )
    de.attrs.update({"comparison": name, "covariates": ",".join(comparison.covariates)})
    contrast = str(de["covariate"].values[0])
    gene_lfc = mean_lfc(de)
    modules = pd.DataFrame(columns=["gene", "module", "mean_lfc"])
    if comparison.modules is not None:
        import xarray as xr

        m = comparison.modules
        store = xr.open_dataset(lfc_store, engine="zarr", chunks=None, consolidated=False)
        lfc = store["lfc"].sel(covariate=contrast)
        labels = gene_modules(
            lfc,
            n_neighbors=m.n_neighbors,
            resolution=m.resolution,
            max_cells=m.max_cells,
            seed=spec.mrvi.seed,
        )
        modules = pd.DataFrame(
            {"gene": labels.index, "module": labels.astype(str).to_numpy()}
        ).assign(mean_lfc=lambda t: gene_lfc.reindex(t["gene"]).to_numpy())
        de["module_activity"] = module_activity(lfc, labels).rename({"module": "gene_module"})
        logger.info("%s: %d gene modules", name, modules["module"].nunique())
    gsea = pd.DataFrame()
    if comparison.gsea is not None:
        if gene_sets is None:
            msg = f"{name}: gsea asks for gene sets {comparison.gsea.gene_sets!r}: pass the file"
            raise ValueError(msg)
        gsea = gsea_prerank(
            gene_lfc,
            read_gmt(gene_sets),
            min_size=comparison.gsea.min_size,
            max_size=comparison.gsea.max_size,
            seed=spec.mrvi.seed,
        )
        gsea.insert(0, "comparison", name)
    return de, modules, gsea


def run_da_comparison(
    model: MrVI,
    adata: ad.AnnData,
    spec: DatasetSpec,
    name: str,
    *,
    sample_groups_table: pd.DataFrame | None = None,
    stratification: xr.Dataset | None = None,
) -> tuple[xr.Dataset, pd.DataFrame]:
    """One named DA comparison: per-cell log ratios and the cluster-level test.

    Every cell of its sample defines a sample's aggregated posterior (above
    :data:`~mrvi_repro.pipeline.analysis.DA_REFERENCE_CELLS` cells, a seeded subset of about that
    many, as rule ``differential_abundance``); the log ratios are
    reported for the comparison's cells, and tested per ``groupby`` group (default
    ``labels_key``; all selected cells as one group without labels).
    """
    comparison = spec.comparisons.da_named(name)
    adata = with_sample_groups(adata, sample_groups_table, spec)
    samples = _selected_samples(adata, spec, comparison)
    values = per_sample(adata, spec.sample_key, comparison.covariate).astype(str)
    values = values[values.index.astype(str).isin(samples)]
    levels = sorted(values.unique())
    a, b = comparison.a, comparison.b
    if a is None:
        if len(levels) != 2:
            msg = (
                f"{name}: {comparison.covariate!r} has {len(levels)} values {levels[:6]} among "
                "the kept samples; name a and b"
            )
            raise ValueError(msg)
        b, a = (levels[0],), (levels[1],)
    max_cells = da_reference_cap(model, adata)
    mask = _selected_cells(adata, spec, comparison, stratification)
    da = differential_abundance(
        model,
        adata,
        covariate=comparison.covariate,
        group_a=list(a),
        group_b=list(b),
        samples=samples,
        estimator=comparison.estimator,
        max_cells_per_sample=max_cells,
        seed=spec.mrvi.seed,
        cells=mask,
    )
    da.attrs.update(
        {
            "comparison": name,
            "group_a": ",".join(a),
            "group_b": ",".join(b),
            "delta": comparison.delta,
        }
    )
    groupby = comparison.groupby or spec.labels_key
    groups = (
        np.full(int(mask.sum()), "all")
        if groupby is None
        else adata.obs[groupby].astype(str).to_numpy()[mask]
    )
    test = cluster_abundance_test(da["log_ratio"].values, groups, delta=comparison.delta)
    test.insert(0, "comparison", name)
    called = test[test["significant"]]
    logger.info(
        "%s: log q(%s) - log q(%s); %d of %d %s groups called (|diff| > %.2f): %s",
        name,
        "+".join(a),
        "+".join(b),
        len(called),
        len(test),
        groupby or "cell",
        comparison.delta,
        ", ".join(f"{r.cluster} {r.direction}" for r in called.itertuples()) or "none",
    )
    return da, test
