"""The cohort and disease-behaviour figures and their claims as the workflow runs them.

Rules ``fig3_panels`` and ``cohort_claims``: :func:`load_cohort_results` reads what the
workflow wrote for an entry that asks for ``fig3`` (its ``figures.fig3`` settings say which
comparisons) into a :class:`~mrvi_repro.metrics.CohortResults`; :func:`write_fig3` draws and
writes the panels and the module gene table, :func:`write_cohort_claims` the claims table
``metrics/claims.tsv``. Rules ``fig5_panels`` and ``stenosis_claims``: the same for ``fig5``
(:func:`load_stenosis_results`, :func:`write_fig5`, :func:`write_stenosis_claims`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .comparisons import stratification_cluster

if TYPE_CHECKING:
    import anndata as ad
    from scipy import sparse

    from mrvi_repro.metrics import CohortResults, StenosisResults
    from mrvi_repro.settings.figures import Fig3Spec, Fig5Spec, SubclusterMarkersSpec

    from .entry import DatasetSpec

logger = logging.getLogger(__name__)


def load_cohort_results(
    spec: DatasetSpec,
    *,
    h5ad: str | Path,
    stratification: str | Path,
    sample_groups: str | Path,
    da: Sequence[str | Path],
    da_tests: Sequence[str | Path],
    de: str | Path,
    modules: str | Path,
    integration: str | Path,
) -> CohortResults:
    """Read an entry's outputs for the cohort figure and its claims.

    ``da`` and ``da_tests``: the ``da.nc`` and ``cluster_test.tsv`` of the figure's DA
    comparisons, in the order of ``figures.fig3.da``. The samples' covariates are read from the
    data (each constant within a sample); the donor groups' cluster is the stratification cluster
    holding most of the set's cells, as rule ``sample_groups`` chose it.
    """
    import anndata as ad
    import xarray as xr

    from mrvi_repro.data.contract import per_sample
    from mrvi_repro.metrics import CohortResults

    fig: Fig3Spec = spec.figures.require("fig3", spec.name)
    if len(da) != len(fig.da) or len(da_tests) != len(fig.da):
        msg = f"give the da.nc and cluster_test.tsv of each DA comparison {list(fig.da)}"
        raise ValueError(msg)
    adata = ad.read_h5ad(h5ad, backed="r")
    obs = adata.obs[[spec.labels_key, spec.sample_key]].copy()
    obs.index = obs.index.astype(str)
    columns = sorted({fig.condition, fig.onset, *fig.annotations})
    samples = pd.DataFrame({c: per_sample(adata, spec.sample_key, c) for c in columns})
    samples.index = samples.index.astype(str)
    strat = xr.load_dataset(stratification)
    item = next(g for g in spec.comparisons.sample_groups if g.name == fig.sample_groups)
    cluster = stratification_cluster(strat, adata, item.cells)
    groups_table = pd.read_csv(sample_groups, sep="\t", dtype={spec.sample_key: str})
    groups = groups_table.set_index(spec.sample_key)[fig.sample_groups].astype(str)
    return CohortResults(
        obs=obs,
        labels_key=spec.labels_key,
        sample_key=spec.sample_key,
        samples=samples,
        stratification=strat,
        groups=groups,
        group_cluster=cluster,
        da={n: xr.load_dataset(p) for n, p in zip(fig.da, da, strict=True)},
        da_tests={n: pd.read_csv(p, sep="\t") for n, p in zip(fig.da, da_tests, strict=True)},
        de=xr.load_dataset(de),
        modules=pd.read_csv(modules, sep="\t"),
        integration=pd.read_csv(integration, sep="\t"),
    )


def write_fig3(
    spec: DatasetSpec,
    results: CohortResults,
    embedding: pd.DataFrame,
    outputs: Mapping[str, str | Path],
) -> None:
    """Draw the cohort figure: each panel to ``outputs[<panel>]``, the module table to ``module_genes``.

    Panels are PNGs; the module gene table is a TSV.
    """
    from mrvi_repro.plotting import cohort_figure, module_gene_table, save_panels

    fig: Fig3Spec = spec.figures.require("fig3", spec.name)
    save_panels(cohort_figure(results, embedding, fig, seed=spec.mrvi.seed), outputs)
    module_gene_table(results).to_csv(outputs["module_genes"], sep="\t", index=False)


def write_cohort_claims(
    spec: DatasetSpec, results: CohortResults, path: str | Path, *, n_permutations: int = 999
) -> pd.DataFrame:
    """Check the paper's Fig. 3 statements on the entry's outputs; write and return the table."""
    from mrvi_repro.metrics import cohort_claims, cohort_summary

    fig: Fig3Spec = spec.figures.require("fig3", spec.name)
    summary = cohort_summary(results, fig, n_permutations=n_permutations, seed=spec.mrvi.seed)
    claims = cohort_claims(summary, fig)
    for row in claims.itertuples():
        logger.info("%s: %s -> %s", row.claim, row.ours, row.holds)
    claims.to_csv(path, sep="\t", index=False)
    return claims


def _coarse_labels(adata: ad.AnnData, fig: Fig5Spec, labels_key: str) -> pd.Series:
    """Return each cell's coarse label: the first ``coarse`` selection it matches, else "other"."""
    from .workload import cells_matching

    if not fig.coarse:
        return adata.obs[labels_key].astype(str)
    coarse = np.full(adata.n_obs, "other", dtype=object)
    for name, selection in reversed(list(fig.coarse.items())):
        coarse[cells_matching(adata, selection)] = name
    return pd.Series(coarse, index=adata.obs_names.astype(str))


def _scaled_blocks(
    adata: ad.AnnData, cells: np.ndarray, target: float, block: int = 20_000
) -> Iterator[tuple[int, sparse.csr_matrix, np.ndarray]]:
    """Yield (first row, counts of a block of ``cells`` as CSR, factor to ``target`` per cell).

    The library size is the cell's total over the data's genes (factor 0 for an empty cell).
    """
    from scipy import sparse

    for start in range(0, len(cells), block):
        rows = cells[start : start + block]
        x = adata.X[rows] if not adata.isbacked else adata[rows].X
        x = sparse.csr_matrix(x) if not sparse.issparse(x) else x.tocsr()
        total = np.asarray(x.sum(1), dtype=np.float64).ravel()
        scale = np.divide(target, total, out=np.zeros_like(total), where=total > 0)
        yield start, x, scale


def normalised_expression(
    adata: ad.AnnData, cells: np.ndarray, genes: Sequence[str], *, target: float = 1e4
) -> pd.DataFrame:
    """Return log1p of the counts of ``genes`` scaled to ``target`` per cell, rows ``cells``.

    The library size is the cell's total over the data's genes; ``cells`` are integer
    positions, ascending.

    Reads the rows a block at a time (a backed file's rows are not all loaded at once).
    """
    present = [g for g in genes if g in adata.var_names]
    columns = adata.var_names.get_indexer(present)
    out = np.empty((len(cells), len(present)), dtype=np.float32)
    for start, x, scale in _scaled_blocks(adata, cells, target):
        picked = np.asarray(x[:, columns].todense(), dtype=np.float64)
        out[start : start + x.shape[0]] = np.log1p(picked * scale[:, None])
    return pd.DataFrame(out, index=adata.obs_names[cells].astype(str), columns=present)


def normalised_matrix(
    adata: ad.AnnData, cells: np.ndarray, *, target: float = 1e4
) -> sparse.csr_matrix:
    """Return log1p of the counts of every gene scaled to ``target`` per cell (CSR float32).

    Rows ``cells`` (integer positions, ascending), normalised as :func:`normalised_expression`.
    """
    from scipy import sparse

    parts = []
    for _, x, scale in _scaled_blocks(adata, cells, target):
        scaled = sparse.csr_matrix(sparse.diags(scale) @ x, dtype=np.float32)
        scaled.data = np.log1p(scaled.data)
        parts.append(scaled)
    if not parts:
        return sparse.csr_matrix((0, adata.n_vars), dtype=np.float32)
    return sparse.csr_matrix(sparse.vstack(parts))


def subcluster_markers(
    adata: ad.AnnData,
    labels: pd.Series,
    spec: SubclusterMarkersSpec,
    *,
    seed: int = 0,
) -> pd.DataFrame:
    """Top marker genes of the labels ``spec`` chooses among ``labels`` (Extended Data Fig. 7b).

    ``labels``: the analysed cells' labels (index: cell names of ``adata``). At most
    ``spec.max_cells`` cells per chosen label (a seeded subsample) are read, normalised as
    :func:`normalised_expression` does, and ranked (:func:`~mrvi_repro.analysis.marker_genes`).
    Returns its dot-plot table, empty (its ``attrs["chosen"]`` the matching labels) when fewer
    than two labels match.
    """
    import anndata as ad

    from mrvi_repro.analysis import marker_genes

    labels = labels.astype(str)
    chosen = spec.chosen(sorted(labels.unique()))
    if len(chosen) < 2:
        empty = pd.DataFrame(
            columns=["group", "gene", "marker_of", "rank", "score", "fraction", "mean"]
        )
        empty.attrs["chosen"] = chosen
        return empty
    rng = np.random.default_rng(seed)
    picked = []
    for label in chosen:
        names = labels.index[labels.to_numpy() == label]
        if len(names) > spec.max_cells:
            names = names[np.sort(rng.choice(len(names), spec.max_cells, replace=False))]
        picked.append(names)
    rows = np.sort(adata.obs_names.astype(str).get_indexer(np.concatenate(picked)))
    names = adata.obs_names[rows].astype(str)
    matrix = normalised_matrix(adata, rows)
    obs = pd.DataFrame({"label": labels.reindex(names).to_numpy()}, index=names)
    expressed = ad.AnnData(matrix, obs=obs, var=pd.DataFrame(index=adata.var_names.astype(str)))
    dot = marker_genes(expressed, "label", spec.n_markers)
    dot.attrs["chosen"] = chosen
    dot.attrs["cells"] = obs["label"].value_counts().reindex(chosen).to_dict()
    return dot


def load_stenosis_results(
    spec: DatasetSpec,
    *,
    h5ad: str | Path,
    effects: str | Path,
    de: str | Path,
    lfc: str | Path,
    da: str | Path,
    da_test: str | Path,
    markers: bool = False,
) -> StenosisResults:
    """Read an entry's outputs for the disease-behaviour figure (``figures.fig5``) and its claims.

    ``effects``: the multivariate DE of ``analysis.de`` (``analysis/de.nc``, its ``beta``);
    ``de``, ``lfc``: the DE comparison's ``de.nc`` and per-cell LFC store; ``da``,
    ``da_test``: the DA comparison's ``da.nc`` and ``cluster_test.tsv``. Only the figure's genes
    (and the strongest mean LFCs, the default genes of panels e-f) are read from the LFC store
    and the counts. ``markers``: also rank the marker genes of ``figures.fig5.subclusters``
    (:func:`subcluster_markers`; the panels need them, the claims do not).
    """
    import anndata as ad
    import xarray as xr

    from mrvi_repro.data.contract import per_sample
    from mrvi_repro.metrics import StenosisResults, effect_norms
    from mrvi_repro.plotting import figure_genes

    fig: Fig5Spec = spec.figures.require("fig5", spec.name)
    labels_key = str(spec.labels_key)
    adata = ad.read_h5ad(h5ad, backed="r")
    obs = adata.obs[[labels_key, spec.sample_key]].copy()
    obs.index = obs.index.astype(str)
    obs["coarse"] = _coarse_labels(adata, fig, labels_key).to_numpy()
    covariate = spec.comparisons.da_named(fig.da).covariate
    columns = sorted({fig.collection, covariate, *([fig.inflammation] if fig.inflammation else [])})
    samples = pd.DataFrame({c: per_sample(adata, spec.sample_key, c) for c in columns})
    samples.index = samples.index.astype(str)
    with xr.open_dataset(effects) as multivariate:
        norms = effect_norms(multivariate, fig.effects)
    comparison = xr.load_dataset(de)
    comparison = comparison.drop_vars([v for v in ("beta",) if v in comparison])
    store = xr.open_dataset(lfc, engine="zarr", chunks=None, consolidated=False)
    contrast = str(comparison["covariate"].values[0])
    cells = store["cell"].values.astype(str)
    defaults = figure_genes(comparison, fig)
    genes = list(dict.fromkeys([*fig.genes, *defaults["lfc"], *defaults["umap"]]))
    stored = set(store["gene"].values.astype(str))
    model_genes = [g for g in genes if g in stored]
    values = store["lfc"].sel(covariate=contrast, gene=model_genes).values
    per_cell = pd.DataFrame(values, index=pd.Index(cells), columns=model_genes)
    store.close()
    rows = np.sort(adata.obs_names.astype(str).get_indexer(cells))
    expression = normalised_expression(adata, rows, model_genes).reindex(cells)
    logger.info("fig5: %d cells, %d analysed; genes read: %s", adata.n_obs, len(cells), model_genes)
    ranked = None
    if markers and fig.subclusters is not None:
        analysed = obs[labels_key].reindex(cells)
        ranked = subcluster_markers(adata, analysed, fig.subclusters, seed=spec.mrvi.seed)
    return StenosisResults(
        obs=obs,
        labels_key=labels_key,
        sample_key=spec.sample_key,
        samples=samples,
        effects=norms,
        de=comparison,
        lfc=per_cell,
        expression=expression,
        da=xr.load_dataset(da),
        da_test=pd.read_csv(da_test, sep="\t"),
        markers=ranked,
    )


def write_fig5(
    spec: DatasetSpec,
    results: StenosisResults,
    embedding: pd.DataFrame,
    outputs: Mapping[str, str | Path],
) -> None:
    """Draw the disease-behaviour figure: each panel to ``outputs[<panel>]`` (PNG)."""
    from mrvi_repro.plotting import save_panels, stenosis_figure

    fig: Fig5Spec = spec.figures.require("fig5", spec.name)
    save_panels(stenosis_figure(results, embedding, fig, seed=spec.mrvi.seed), outputs)


def write_stenosis_claims(
    spec: DatasetSpec, results: StenosisResults, path: str | Path
) -> pd.DataFrame:
    """Check the paper's Fig. 5 statements on the entry's outputs; write and return the table."""
    from mrvi_repro.metrics import da_contrast, stenosis_claims, stenosis_summary

    fig: Fig5Spec = spec.figures.require("fig5", spec.name)
    _, a, b = da_contrast(results)
    claims = stenosis_claims(stenosis_summary(results, fig), fig, a, b)
    for row in claims.itertuples():
        logger.info("%s: %s -> %s", row.claim, row.ours, row.holds)
    claims.to_csv(path, sep="\t", index=False)
    return claims
