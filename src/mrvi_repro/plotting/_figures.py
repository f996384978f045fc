"""Whole figures: the tables of each panel assembled from the workflow's outputs, then drawn.

The workflow's files are netCDF (xarray) and TSV; these functions turn them into the tidy tables
of :mod:`._panels` and return named panels. They only read result objects (no model, no
analysis): the figure rules load the files and save what these return.

2-D embeddings are UMAPs (scanpy's ``neighbors`` + ``umap``, seeded), not the paper's PyMDE, which
would pull in torch; FIGURES.md allows either if the choice is stated.
"""

from __future__ import annotations

import logging
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mrvi_repro.settings.names import FIG2_PANELS, LATENT_KEYS

from ._panels import (
    plot_distance_heatmap,
    plot_distribution,
    plot_embedding,
    plot_lfc_scatter,
    plot_metric_table,
    plot_pr_curves,
    plot_runtime,
)

if TYPE_CHECKING:
    import xarray as xr
    from plotnine import ggplot

logger = logging.getLogger(__name__)

#: Embedding panels: obsm key of the MrVI latent file -> panel title.
LATENT_PANELS = {key: f"MrVI {name}" for name, key in LATENT_KEYS.items()}

#: Metrics where lower is better (shaded accordingly in the metric tables).
LOWER_IS_BETTER = ("rf_distance", "cophenetic_r_other", "distance_ratio_other")


@dataclass(frozen=True)
class Panel:
    """A figure panel and the size it is saved at (inches)."""

    plot: ggplot
    width: float
    height: float


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
        tmp = ad.AnnData(obs=pd.DataFrame(index=obs.index.astype(str)), obsm={"X_rep": x})
        sc.pp.neighbors(tmp, n_neighbors=n_neighbors, use_rep="X_rep", random_state=seed)
        sc.tl.umap(tmp, random_state=seed)
        xy = tmp.obsm["X_umap"]
        tables.append(
            pd.DataFrame({"cell": tmp.obs_names, "panel": title, "x": xy[:, 0], "y": xy[:, 1]})
        )
        logger.info("UMAP of %s: %d cells", title, len(obs))
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


def distance_heatmap(matrix: xr.DataArray, *, title: str, method: str = "ward") -> ggplot:
    """Heatmap of one sample-distance matrix ordered by its own (Ward) dendrogram."""
    from scipy.cluster import hierarchy
    from scipy.spatial.distance import squareform

    d = matrix.sel(sample_y=matrix["sample_x"].values).values.astype(np.float64)
    d = (d + d.T) / 2
    np.fill_diagonal(d, 0.0)
    linkage = hierarchy.linkage(squareform(d, checks=False), method=method)
    # long table in coordinate order: leaf i of the linkage is the i-th sample_x to appear
    table = _matrix_table(matrix).astype({"sample_x": str, "sample_y": str})
    return plot_distance_heatmap(table, linkage, title=title, label="distance")


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
    ``da_covariate``) and ``beta_norm2`` (squared norm of beta of the one design column of
    ``de_covariate``, named in ``attrs["de_column"]``).
    """
    log_ratio = da[f"log_ratio_{da_covariate}"].to_series()
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
) -> dict[str, Panel]:
    """Panels of the paper's Fig. 2 and Supp. Fig. 1d from the workflow's outputs.

    Parameters
    ----------
    embedding
        :func:`umap_table` of MrVI's u and z (panels "MrVI u", "MrVI z").
    obs
        The cells' annotations (``subset``, ``covariate_1``), indexed by cell.
    da
        MrVI's DA (``analysis/da.nc``) with ``log_ratio_<da_covariate>``.
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

    Returns
    -------
    Panel name -> :class:`Panel`, in the order of :data:`FIG2_PANELS`.
    """
    cells = semisynthetic_cell_table(
        embedding, obs, da, de, da_covariate=da_covariate, de_covariate=de_covariate
    )
    de_column = cells.attrs["de_column"]
    log_ratio = cells.loc[cells["panel"] == cells["panel"].iloc[0]].set_index("cell")["log_ratio"]
    u_only = cells[cells["panel"] == "MrVI u"]
    panels = {
        "fig2b_subset": Panel(plot_embedding(cells, "subset", title="Cell subsets"), 7.0, 3.4),
        "fig2b_covariate_1": Panel(
            plot_embedding(cells, "covariate_1", title="Covariate 1"), 7.0, 3.4
        ),
        "fig2d_da": Panel(
            plot_embedding(
                u_only,
                "log_ratio",
                diverging=True,
                limit_quantile=0.99,
                title=f"DA log density ratio ({da_covariate}: True vs False)",
            ),
            4.2,
            3.4,
        ),
        "fig2e_pr_curves": Panel(
            plot_pr_curves(pr_curves, title="DA cells (subsets B and C)"), 4.2, 3.4
        ),
        "fig2f_beta_norm": Panel(
            plot_embedding(
                u_only, "beta_norm2", limit_quantile=0.99, title=f"||beta||^2 ({de_column})"
            ),
            4.2,
            3.4,
        ),
        "fig2g_lfc_scatter": Panel(
            plot_lfc_scatter(lfc_scatter, title="Subset A LFCs vs DESeq2 pseudobulk"), 6.0, 3.2
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
                title="MrVI DA log ratio per subset",
            ),
            4.2,
            3.2,
        ),
    }
    for subset in ("A", "B"):
        group = subset_clusters[subset]
        panels[f"fig2c_distances_{subset}"] = Panel(
            distance_heatmap(
                distances.sel(group=group), title=f"MrVI distances, subset {subset} ({group})"
            ),
            5.0,
            5.6,
        )
    return {name: panels[name] for name in FIG2_PANELS}


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
