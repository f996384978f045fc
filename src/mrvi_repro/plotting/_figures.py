"""Whole figures: the tables of each panel assembled from the workflow's outputs, then drawn.

The workflow's files are netCDF (xarray) and TSV; these functions turn them into the tidy tables
of :mod:`._panels` and return named panels. They only read result objects (no model, no
analysis): the figure rules load the files and save what these return.

2-D embeddings are UMAPs (scanpy's ``neighbors`` + ``umap``, seeded), not the paper's PyMDE, which
would pull in torch; the paper itself used UMAP for Fig. 5, and every caption states the choice.
"""

from __future__ import annotations

import logging
import textwrap
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mrvi_repro.settings.names import (
    DA_ESTIMATORS,
    DA_METHODS,
    FIG2_PANELS,
    LATENT_KEYS,
    da_variable,
)

from ._panels import (
    plot_distance_heatmap,
    plot_distribution,
    plot_embedding,
    plot_lfc_scatter,
    plot_metric_table,
    plot_pr_curves,
    plot_runtime,
    save_figure,
)
from ._theme import LOWER_IS_BETTER

if TYPE_CHECKING:
    from pathlib import Path

    import xarray as xr
    from plotnine import ggplot

logger = logging.getLogger(__name__)

#: Embedding panels: obsm key of the MrVI latent file -> panel title.
LATENT_PANELS = {key: f"MrVI {name}" for name, key in LATENT_KEYS.items()}


@dataclass(frozen=True)
class Panel:
    """A figure panel and the size it is saved at (inches)."""

    plot: ggplot
    width: float
    height: float


def save_panels(panels: Mapping[str, Panel], paths: Mapping[str, str | Path]) -> None:
    """Write each panel to ``paths[<its name>]`` at its own size (:func:`save_figure`), logged."""
    for name, panel in panels.items():
        save_figure(panel.plot, paths[name], width=panel.width, height=panel.height)
        logger.info("wrote %s", paths[name])


def umap_table(
    latents: Mapping[str, np.ndarray],
    obs: pd.DataFrame,
    *,
    n_neighbors: int = 15,
    seed: int = 0,
) -> pd.DataFrame:
    """2-D UMAP of each latent space, as one tidy table.

    Parameters
    ----------
    latents
        Panel title -> (cells, dims) representation of the cells of ``obs``.
    obs
        The cells' annotations; its index names the cells.
    n_neighbors, seed
        UMAP's kNN graph size and seed.

    Returns
    -------
    Columns ``cell``, ``panel``, ``x``, ``y``, one row per (panel, cell).
    """
    import anndata as ad
    import scanpy as sc

    tables = []
    for title, x in latents.items():
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or len(x) != len(obs):
            msg = f"latent {title!r} must be (cells={len(obs)}, dims), got shape {x.shape}"
            raise ValueError(msg)
        logger.info("UMAP of %s: %d cells x %d dimensions...", title, len(obs), x.shape[1])
        start = time.perf_counter()
        tmp = ad.AnnData(obs=pd.DataFrame(index=obs.index.astype(str)), obsm={"X_rep": x})
        sc.pp.neighbors(tmp, n_neighbors=n_neighbors, use_rep="X_rep", random_state=seed)
        logger.info("UMAP of %s: neighbour graph in %.0f s", title, time.perf_counter() - start)
        sc.tl.umap(tmp, random_state=seed)
        xy = tmp.obsm["X_umap"]
        tables.append(
            pd.DataFrame({"cell": tmp.obs_names, "panel": title, "x": xy[:, 0], "y": xy[:, 1]})
        )
        logger.info("UMAP of %s: done in %.0f s", title, time.perf_counter() - start)
    return pd.concat(tables, ignore_index=True)


def _with_cell_values(embedding: pd.DataFrame, values: Mapping[str, pd.Series]) -> pd.DataFrame:
    """Join per-cell values (Series indexed by cell) onto an embedding table."""
    out = embedding.copy()
    for name, series in values.items():
        out[name] = series.reindex(out["cell"].astype(str)).to_numpy()
    return out


def _matrix_table(matrix: xr.DataArray) -> pd.DataFrame:
    """Return a (sample_x, sample_y) DataArray as the long table of :func:`plot_distance_heatmap`."""
    return (
        matrix.rename("distance").to_dataframe().reset_index()[["sample_x", "sample_y", "distance"]]
    )


def distance_heatmap(
    matrix: xr.DataArray,
    *,
    title: str,
    method: str = "ward",
    limits: tuple[float, float] | None = None,
    groups: Mapping[str, str] | None = None,
    group_title: str = "group",
    label: str = "distance",
    linkage: np.ndarray | None = None,
    annotations: Mapping[str, Mapping[str, object]] | None = None,
) -> ggplot:
    """Heatmap of one sample-distance matrix ordered by its dendrogram.

    The dendrogram is ``linkage`` (over the samples in ``sample_x`` order, e.g. the
    stratification's stored one), else the matrix's own, by ``method`` (Ward). ``limits``,
    ``groups``, ``group_title`` and ``annotations`` as in :func:`plot_distance_heatmap` (a shared
    colour range; colour bars of each sample's group and further annotation tracks).
    """
    if linkage is None:
        from scipy.cluster import hierarchy
        from scipy.spatial.distance import squareform

        d = matrix.sel(sample_y=matrix["sample_x"].values).values.astype(np.float64)
        d = (d + d.T) / 2
        np.fill_diagonal(d, 0.0)
        linkage = hierarchy.linkage(squareform(d, checks=False), method=method)
    # long table in coordinate order: leaf i of the linkage is the i-th sample_x to appear
    table = _matrix_table(matrix).astype({"sample_x": str, "sample_y": str})
    return plot_distance_heatmap(
        table,
        linkage,
        title=title,
        label=label,
        limits=limits,
        groups=groups,
        group_title=group_title,
        annotations=annotations,
    )


def shared_distance_limits(matrices: Sequence[xr.DataArray]) -> tuple[float, float]:
    """One colour range for several distance matrices: 0 to the largest finite entry of any."""
    tops = [float(np.nanmax(np.where(np.isfinite(m.values), m.values, np.nan))) for m in matrices]
    top = max(tops)
    return (0.0, top if top > 0 else 1.0)


def semisynthetic_cell_table(
    embedding: pd.DataFrame,
    obs: pd.DataFrame,
    da: xr.Dataset,
    de: xr.Dataset,
    *,
    da_covariate: str,
    de_covariate: str,
) -> pd.DataFrame:
    """Return the embedding table with each cell's subset, covariate 1, DA log ratio and ||beta||^2.

    Columns of ``embedding`` plus ``subset``, ``covariate_1``, ``log_ratio`` (MrVI's DA of
    ``da_covariate`` with the first estimator of :data:`DA_ESTIMATORS` in ``da``, the mixture
    when present; named in ``attrs["da_estimator"]``) and ``beta_norm2`` (squared norm of beta of
    the one design column of ``de_covariate``, named in ``attrs["de_column"]``).
    """
    estimator = next(
        (e for e in DA_ESTIMATORS if da_variable(da_covariate, e) in da), DA_ESTIMATORS[0]
    )
    name = da_variable(da_covariate, estimator)
    if name not in da:
        msg = f"DA has no log ratio of {da_covariate!r} (variables: {list(da.data_vars)})"
        raise ValueError(msg)
    log_ratio = da[name].to_series()
    log_ratio.index = log_ratio.index.astype(str)
    columns = [str(c) for c in de["covariate"].values if str(c).startswith(f"{de_covariate}_")]
    if len(columns) != 1:
        msg = f"DE has {len(columns)} design columns of {de_covariate!r}: {columns}"
        raise ValueError(msg)
    de_column = columns[0]
    beta = de["beta"].sel(covariate=de_column)
    beta_norm = pd.Series(
        (beta.values.astype(np.float64) ** 2).sum(axis=1), index=de["cell"].values.astype(str)
    )
    cells = _with_cell_values(
        embedding,
        {
            "subset": obs["subset"].astype(str),
            "covariate_1": obs["covariate_1"].astype(str),
            "log_ratio": log_ratio,
            "beta_norm2": beta_norm,
        },
    )
    cells.attrs["de_column"] = de_column
    cells.attrs["da_estimator"] = estimator
    return cells


def semisynthetic_figure(
    embedding: pd.DataFrame,
    obs: pd.DataFrame,
    da: xr.Dataset,
    de: xr.Dataset,
    distances: xr.DataArray,
    pr_curves: pd.DataFrame,
    lfc_scatter: pd.DataFrame,
    *,
    subset_clusters: Mapping[str, str],
    da_covariate: str,
    de_covariate: str,
    sample_groups: Mapping[str, str] | None = None,
    prevalence: float | None = None,
) -> dict[str, Panel]:
    """Panels of the paper's Fig. 2 and Supp. Fig. 1d from the workflow's outputs.

    Parameters
    ----------
    embedding
        :func:`umap_table` of MrVI's u and z (panels "MrVI u", "MrVI z").
    obs
        The cells' annotations (``subset``, ``covariate_1``; ``da_cell``, the planted DA cells,
        when ``prevalence`` is not given), indexed by cell.
    da
        MrVI's DA (``analysis/da.nc``) with ``log_ratio_<da_covariate>`` (and the other
        estimators' variables, :func:`~mrvi_repro.settings.names.da_variable`).
    de
        MrVI's DE (``analysis/de.nc``) with ``beta`` (cell, covariate, latent).
    distances
        MrVI's mean distance matrices per group (``analysis/sample_distances.nc``).
    pr_curves, lfc_scatter
        The metric rules' detail tables (``metrics/da_pr.tsv``, ``metrics/de_lfc.tsv``).
    subset_clusters
        Subset -> group of ``distances`` (the construction's ``subset_clusters``).
    da_covariate, de_covariate
        The DA covariate and the DE covariate shown (its one design column in ``de``:
        ``<de_covariate>_<tested level>``).
    sample_groups
        Subject -> planted group (``covariate_1``, G1-G8): colour bars beside the distance
        matrices. ``None``: no bars.
    prevalence
        Fraction of DA cells, the no-skill precision of the PR curves (default: the mean of
        ``obs["da_cell"]`` when present).

    Returns
    -------
    Panel name -> :class:`Panel`, in the order of :data:`FIG2_PANELS`. The subset A and B
    distance matrices share one colour scale (:func:`shared_distance_limits`); the DA map's colour
    and the DA violins' axis are clipped to robust quantiles, and say so.
    """
    cells = semisynthetic_cell_table(
        embedding, obs, da, de, da_covariate=da_covariate, de_covariate=de_covariate
    )
    de_contrast = _de_contrast(de_covariate, cells.attrs["de_column"])
    estimator = cells.attrs["da_estimator"]
    log_ratio = cells.loc[cells["panel"] == cells["panel"].iloc[0]].set_index("cell")["log_ratio"]
    u_only = cells[cells["panel"] == "MrVI u"]
    if prevalence is None and "da_cell" in obs.columns:
        prevalence = float(np.asarray(obs["da_cell"], dtype=bool).mean())
    da_name = "log density ratio" + ("" if estimator == "mixture" else f" ({estimator})")
    da_title = f"MrVI DA: {_contrast(da, da_covariate, estimator)}"
    # the per-dimension estimator beside the mixture: say which curve is which
    pr_labels = (
        {"mrvi": "MrVI, mixture DA"}
        if DA_METHODS["per_dimension"] in set(pr_curves["method"].astype(str))
        else None
    )
    panels = {
        "fig2b_subset": Panel(
            plot_embedding(cells, "subset", title="Cell subsets", legend_title="Subset"),
            7.0,
            3.4,
        ),
        "fig2b_covariate_1": Panel(
            plot_embedding(
                cells,
                "covariate_1",
                title="Covariate 1: subject group (DE planted in subset A)",
                legend_title="Group",
            ),
            7.0,
            3.4,
        ),
        "fig2d_da": Panel(
            plot_embedding(
                u_only,
                "log_ratio",
                diverging=True,
                limit_quantile=0.9,
                title=da_title,
                legend_title=da_name,
            ),
            5.0,
            3.6,
        ),
        "fig2e_pr_curves": Panel(
            plot_pr_curves(
                pr_curves,
                title="Finding the DA cells (subsets B and C)",
                prevalence=prevalence,
                labels=pr_labels,
            ),
            4.2,
            4.6,
        ),
        "fig2f_beta_norm": Panel(
            plot_embedding(
                u_only,
                "beta_norm2",
                limit_quantile=0.99,
                title=f"MrVI DE effect size: {de_contrast}",
                legend_title="‖β‖²",
            ),
            5.0,
            3.6,
        ),
        "fig2g_lfc_scatter": Panel(
            plot_lfc_scatter(
                lfc_scatter,
                title=f"Subset A, {de_contrast}: log2 fold changes per gene",
            ),
            6.0,
            3.4,
        ),
        "supp1d_da_by_subset": Panel(
            plot_distribution(
                pd.DataFrame(
                    {
                        "subset": obs["subset"].astype(str).to_numpy(),
                        "log_ratio": log_ratio.reindex(obs.index.astype(str)).to_numpy(),
                    }
                ),
                "subset",
                "log_ratio",
                title=f"MrVI DA per cell subset\n{_contrast(da, da_covariate, estimator)}",
                x_label="Cell subset",
                y_label=f"DA {da_name}",
                limit_quantiles=(0.01, 0.99),
            ),
            4.8,
            3.6,
        ),
    }
    matrices = {subset: distances.sel(group=subset_clusters[subset]) for subset in ("A", "B")}
    limits = shared_distance_limits(list(matrices.values()))
    for subset, matrix in matrices.items():
        panels[f"fig2c_distances_{subset}"] = Panel(
            distance_heatmap(
                matrix,
                title=f"Subset {subset} (cluster {subset_clusters[subset]}): MrVI sample distances",
                limits=limits,
                groups=sample_groups,
                group_title="Subject group\n(covariate 1)",
                label="distance\n(scale shared\nby A and B)",
            ),
            5.8,
            5.8,
        )
    return {name: panels[name] for name in FIG2_PANELS}


def _de_contrast(covariate: str, column: str) -> str:
    """Say the DE design column in words: ``covariate_1_G1_True`` -> ``"group G1 vs the rest"``."""
    level = column.removeprefix(f"{covariate}_")
    if covariate == "covariate_1_G1" and level == "True":
        return "group G1 vs the rest"
    return f"{covariate} {level} vs the rest"


def _contrast(da: xr.Dataset, covariate: str, estimator: str) -> str:
    """``"covariate_2_strong = True vs False"`` in words, from the DA variable's attributes."""
    attrs = da[da_variable(covariate, estimator)].attrs
    a, b = attrs.get("group_a"), attrs.get("group_b")
    if covariate == "covariate_2_strong" and (a, b) == ("True", "False"):
        return "strongly resampled subjects (R1-R2) vs R3-R4"
    if a is None or b is None:
        return covariate
    return f"{covariate} {a} vs {b}"


def _message_panel(title: str, message: str) -> ggplot:
    """Return a panel that only says, in words, why there is nothing to draw."""
    from plotnine import annotate, element_blank, ggplot, labs, theme, xlim, ylim

    from ._theme import theme_mrvi

    return (
        ggplot()
        + annotate("text", x=0.5, y=0.5, label=textwrap.fill(message, 70), size=9)
        + xlim(0, 1)
        + ylim(0, 1)
        + labs(title=title, x="", y="")
        + theme_mrvi()
        + theme(axis_text=element_blank(), axis_ticks=element_blank(), panel_grid=element_blank())
    )


#: Why a metric table can be empty (the dataset entry lacks what the metrics need).
EMPTY_METRICS = {
    "summary_metrics": "No metric was computed for this dataset: the benchmark metrics need the "
    "semi-synthetic truth, the integration metrics a labels_key.",
    "integration_metrics": "No integration metric was computed: they need cell-type labels "
    "(the dataset entry's labels_key).",
}


def metric_figures(summary: pd.DataFrame, integration: pd.DataFrame) -> dict[str, Panel]:
    """Draw the summary and the integration metric tables (Supp. Fig. 2) as tile plots.

    Both panels are always returned; an empty table gives a panel saying why it is empty
    (:data:`EMPTY_METRICS`), so that the figure rule writes its outputs for every dataset.
    """
    out = {}
    for name, table, title in (
        ("summary_metrics", summary, "Benchmark metrics"),
        ("integration_metrics", integration, "Integration metrics (scib-metrics)"),
    ):
        if len(table) == 0:
            logger.warning("%s: no metrics to draw", name)
            out[name] = Panel(_message_panel(title, EMPTY_METRICS[name]), 6.0, 1.5)
            continue
        n_metrics = table["metric"].nunique()
        out[name] = Panel(
            plot_metric_table(table, title=title, lower_is_better=LOWER_IS_BETTER),
            max(4.0, 1.0 + 0.9 * n_metrics),
            3.0,
        )
    return out


def runtime_table(
    benchmarks: Mapping[str, pd.DataFrame] | Sequence[tuple[str, pd.DataFrame]],
) -> pd.DataFrame:
    """Rows ``rule``, ``seconds``, ``max_rss_mib`` from Snakemake ``benchmark:`` tables.

    ``benchmarks``: rule name -> the benchmark table (columns ``s`` and ``max_rss``, MB); values
    Snakemake could not measure (``-``) become NaN.
    """
    items = benchmarks.items() if isinstance(benchmarks, Mapping) else benchmarks
    rows = [
        pd.DataFrame(
            {
                "rule": rule,
                "seconds": pd.to_numeric(t["s"], errors="coerce"),
                "max_rss_mib": pd.to_numeric(t["max_rss"], errors="coerce"),
            }
        )
        for rule, t in items
    ]
    if not rows:
        msg = "no benchmark table given"
        raise ValueError(msg)
    return pd.concat(rows, ignore_index=True)


def runtime_figure(
    benchmarks: Mapping[str, pd.DataFrame] | Sequence[tuple[str, pd.DataFrame]],
) -> Panel:
    """Wall time and peak memory per rule (:func:`runtime_table` of ``benchmarks``)."""
    table = runtime_table(benchmarks)
    height = 0.6 + 0.22 * table["rule"].nunique()
    return Panel(plot_runtime(table, title="Run time and peak memory per rule"), 7.0, height)
