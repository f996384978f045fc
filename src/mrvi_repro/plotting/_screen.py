"""The perturbation-screen figure: the paper's Fig. 4 and Extended Data Figs. 2-4 for any screen.

:func:`screen_figure` draws the panels from a :class:`~mrvi_repro.metrics.ScreenResults` (the
workflow's outputs for one entry, loaded), the 2-D embeddings of u and z and the entry's
``figures.fig4`` settings. Embeddings are UMAPs, not the paper's MDE (every title says so).
"""

from __future__ import annotations

import logging
import re
import textwrap
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from mizani.bounds import squish
from plotnine import (
    aes,
    element_blank,
    element_text,
    facet_wrap,
    geom_col,
    geom_errorbar,
    geom_point,
    geom_polygon,
    ggplot,
    labs,
    scale_fill_cmap,
    scale_fill_manual,
    scale_x_continuous,
    scale_x_discrete,
    scale_y_continuous,
    theme,
)

from mrvi_repro.metrics import RANDOM
from mrvi_repro.settings.names import FIG4_PANELS

from ._cohort import _drawn_cells, _point_size
from ._figures import Panel, _message_panel, distance_heatmap
from ._panels import _with_title, plot_embedding
from ._theme import METHOD_COLORS, NA_COLOR, method_label, theme_mrvi

if TYPE_CHECKING:
    from mrvi_repro.metrics import ScreenResults
    from mrvi_repro.settings.figures import Fig4Spec

logger = logging.getLogger(__name__)

#: At most this many gene sets (rows) in panel f: those with the best FDR in any cluster.
MAX_GENE_SETS = 25
#: Components shown in panel c's variance bars at most.
MAX_PCS_SHOWN = 20
#: Colour of the permutation baseline in panel d.
RANDOM_COLOR = "#999999"
#: Metric titles of panel d.
METRIC_TITLES = {
    "intra_drug_percentile": "Intra-drug distance percentile\n(lower is better)",
    "cmap_silhouette": "Connectivity Map silhouette\n(higher is better)",
}


def _natural(name: str) -> list[object]:
    """Sort key: "C2" before "C10" (runs of digits compare as numbers)."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _cluster_label(cluster: object) -> str:
    """Name a sample cluster in the figure ("C1"): text, so that it gets discrete colours."""
    return f"C{cluster}"


def plot_screen_metrics(table: pd.DataFrame, *, title: str | None = None) -> ggplot:
    """Bars of each method's metric and the permutation baseline's 95 % interval (Fig. 4d).

    ``table``: :data:`~mrvi_repro.metrics.SCREEN_METRIC_COLUMNS` (rows of
    :data:`~mrvi_repro.metrics.RANDOM` carry the interval in ``lower`` / ``upper``). One facet per
    metric, free y scales; methods in the table's order, the baseline last as an interval with
    its median.
    """
    if table.empty:
        msg = "plot_screen_metrics: the table is empty"
        raise ValueError(msg)
    methods = [m for m in dict.fromkeys(table["method"]) if m != RANDOM] + [RANDOM]
    labels = {m: method_label(m) for m in methods} | {RANDOM: "Random\n(95 % of perm.)"}
    df = table.assign(
        method=pd.Categorical(table["method"], categories=methods),
        facet=pd.Categorical(
            table["metric"].map(lambda m: METRIC_TITLES.get(m, m)),
            categories=[METRIC_TITLES.get(m, m) for m in dict.fromkeys(table["metric"])],
        ),
    )
    bars, random = df[df["method"] != RANDOM], df[df["method"] == RANDOM]
    colors = {m: METHOD_COLORS.get(m, "#555555") for m in methods} | {RANDOM: RANDOM_COLOR}
    plot = (
        ggplot(mapping=aes("method", "value"))
        + geom_col(data=bars, mapping=aes(fill="method"), width=0.7)
        + geom_errorbar(
            data=random, mapping=aes(ymin="lower", ymax="upper"), width=0.35, color=RANDOM_COLOR
        )
        + geom_point(data=random, color=RANDOM_COLOR, size=2)
        + scale_fill_manual(values=colors, guide=None)
        + scale_x_discrete(labels=[labels[m] for m in methods])
        + facet_wrap("facet", scales="free_y")
        + labs(x="", y="")
        + theme_mrvi()
        + theme(axis_text_x=element_text(rotation=30, ha="right"))
    )
    return _with_title(plot, title)


def plot_enrichment_tiles(
    table: pd.DataFrame, *, title: str | None = None, max_score: float = 10.0
) -> ggplot:
    """Gene sets x clusters, each tile split into the up (upper right) and down (lower left) score.

    ``table``: ``cluster``, ``direction`` ("up" / "down"), ``gene_set``, ``score`` (e.g.
    -log10 FDR); a missing (cluster, set, direction) is drawn empty. Rows in the table's order of
    first appearance, columns sorted numerically. Scores above ``max_score`` are drawn in the end
    colour (the legend says so), so that one very strong set does not wash out the rest.
    """
    needed = {"cluster", "direction", "gene_set", "score"}
    if table.empty or not needed.issubset(table.columns):
        msg = f"plot_enrichment_tiles: need a non-empty table with columns {sorted(needed)}"
        raise ValueError(msg)
    sets = list(dict.fromkeys(table["gene_set"].astype(str)))
    clusters = sorted({str(c) for c in table["cluster"]}, key=_natural)
    x_of = {c: i for i, c in enumerate(clusters)}
    y_of = {s: len(sets) - 1 - i for i, s in enumerate(sets)}  # first set on top
    up = [(0.5, 0.5), (-0.5, 0.5), (0.5, -0.5)]
    down = [(-0.5, -0.5), (0.5, -0.5), (-0.5, 0.5)]
    rows = []
    for k, row in enumerate(table.itertuples()):
        x, y = x_of[str(row.cluster)], y_of[str(row.gene_set)]
        shape = up if row.direction == "up" else down
        for dx, dy in shape:
            rows.append((f"{k}", x + 0.47 * 2 * dx, y + 0.47 * 2 * dy, float(row.score)))
    poly = pd.DataFrame(rows, columns=["id", "x", "y", "score"])
    scores = poly["score"].to_numpy()
    top = float(min(np.nanmax(scores), max_score)) if np.isfinite(scores).any() else 1.0
    top = max(top, 1.0)
    capped = bool(np.nanmax(scores) > top) if np.isfinite(scores).any() else False
    plot = (
        ggplot(poly, aes("x", "y", group="id", fill="score"))
        + geom_polygon(color="white", size=0.2)
        + scale_fill_cmap(cmap_name="magma_r", na_value=NA_COLOR, limits=(0.0, top), oob=squish)
        + scale_x_continuous(breaks=list(range(len(clusters))), labels=clusters, expand=(0, 0.6))
        + scale_y_continuous(
            breaks=list(range(len(sets))),
            labels=[textwrap.shorten(s, 40, placeholder="...") for s in reversed(sets)],
            expand=(0, 0.6),
        )
        + labs(
            x="Sample cluster (vs the reference)",
            y="",
            fill="-log10 FDR"
            + (f" (capped\nat {top:g})" if capped else "")
            + "\nupper right: up\nlower left: down",
        )
        + theme_mrvi()
        + theme(panel_grid=element_blank())
    )
    return _with_title(plot, title)


def _pca_panel(results: ScreenResults, spec: Fig4Spec, cells: pd.Index) -> Panel:
    """Panel c: the cells' distance matrices on PC1-PC2 by phase, and variance per PC."""
    strat = results.stratification
    pcs = pd.DataFrame(
        strat["pcs"].values[:, :2], index=strat["cell"].values.astype(str), columns=["x", "y"]
    )
    pcs = pcs.reindex(cells.intersection(pcs.index))
    ratio = strat["explained_variance_ratio"].values
    table = pcs.assign(
        phase=results.obs[spec.phase].astype(str).reindex(pcs.index).to_numpy(),
        panel="PC1-PC2",
    )
    scatter = plot_embedding(
        table,
        "phase",
        facet=None,
        title="Cells' sample distance matrices, PCA",
        legend_title="Cell-cycle phase",
        point_size=_point_size(len(table)),
    ) + labs(x=f"PC1 ({100 * ratio[0]:.1f} %)", y=f"PC2 ({100 * ratio[1]:.1f} %)")
    shown = ratio[:MAX_PCS_SHOWN]
    bars = pd.DataFrame({"pc": np.arange(1, len(shown) + 1), "ratio": shown})
    variance = (
        ggplot(bars, aes("pc", "ratio"))
        + geom_col(fill="#0072B2", width=0.8)
        + scale_x_continuous(breaks=list(range(1, len(shown) + 1, max(1, len(shown) // 10))))
        + labs(
            x="Principal component",
            y="Variance explained (share)",
            title=f"Variance explained, first {len(shown)} PCs\n(z-scored upper triangles)",
        )
        + theme_mrvi()
    )
    return Panel(scatter | variance, 10.0, 4.0)


def _heatmap_size(n_samples: int) -> tuple[float, float]:
    """Width and height (inches) of a sample matrix panel: about 0.1 inch per sample named."""
    side = float(np.clip(0.11 * n_samples, 6.0, 14.0))
    return side + 6.5, side + 3.0


def screen_figure(
    results: ScreenResults, embedding: pd.DataFrame, spec: Fig4Spec, *, seed: int = 0
) -> dict[str, Panel]:
    """Panels of the screen figure (:data:`~mrvi_repro.settings.names.FIG4_PANELS`).

    Parameters
    ----------
    results
        The entry's outputs (:class:`~mrvi_repro.metrics.ScreenResults`).
    embedding
        UMAPs of MrVI's u and z (panels ``"MrVI u"``, ``"MrVI z"``).
    spec
        The entry's ``figures.fig4`` settings.
    seed
        Seed of the subsample of drawn cells (above ``spec.max_points``).

    Returns
    -------
    Panel name -> :class:`Panel`: a (u and z by pathway, cells of the retained samples in
    colour), b (by cell-cycle phase), c (PCA of the cells' distance matrices and the variance
    per PC), d (the metrics of MrVI, the composition baselines and the permutations), e (the
    retained samples' matrix with their clusters, pathway and dose), f (enrichment of each
    cluster's up- and down-regulated genes), Extended Data 2 (all samples' matrix, retained
    marked). A panel whose data are missing says why instead.
    """
    drawn = _drawn_cells(embedding, spec.max_points, seed)
    note = drawn.attrs["note"]
    clusters = results.clusters.set_index(results.clusters["sample"].astype(str))
    retained = clusters.index[clusters["retained"].astype(bool)]
    n_retained, n_other = len(retained), len(clusters) - 1
    sample_of = results.obs[results.sample_key].astype(str).reindex(drawn["cell"])
    pathway = sample_of.map(results.samples[spec.pathway].astype(str))
    cells = drawn.assign(
        pathway=pathway.where(sample_of.isin(retained)).to_numpy(),
        phase=results.obs[spec.phase].astype(str).reindex(drawn["cell"]).to_numpy(),
    )
    size = _point_size(len(cells) / 2)
    label = spec.label
    panels: dict[str, Panel] = {
        "fig4a_pathway": Panel(
            plot_embedding(
                cells,
                "pathway",
                title=f"{label}a. MrVI u and z by {spec.pathway}: cells of the {n_retained} of "
                f"{n_other} samples farthest from {spec.reference} coloured, others grey ({note})",
                legend_title=spec.pathway,
                point_size=size,
            ),
            10.0,
            4.2,
        ),
        "fig4b_phase": Panel(
            plot_embedding(
                cells,
                "phase",
                title=f"{label}b. MrVI u and z by cell-cycle phase ({note})",
                legend_title="Phase",
                point_size=size,
            ),
            9.0,
            4.0,
        ),
        "fig4c_distance_pca": _pca_panel(results, spec, pd.Index(drawn["cell"].unique())),
    }
    panels["fig4d_metrics"] = Panel(
        plot_screen_metrics(
            results.metrics,
            title=f"{label}d. Agreement with prior knowledge"
            + ("" if "cmap_silhouette" in set(results.metrics["metric"]) else " (no CMap data)"),
        ),
        3.2 * max(1, results.metrics["metric"].nunique()) + 1.0,
        4.0,
    )
    samples = results.samples
    annotations = {
        spec.pathway: samples[spec.pathway].astype(str).to_dict(),
        spec.dose: samples[spec.dose].to_dict(),
        **{c: samples[c].to_dict() for c in spec.annotations},
    }
    matrix = results.distances
    top = matrix.sel(sample_x=list(retained), sample_y=list(retained))
    limits = (0.0, float(np.nanmax(matrix.values)) or 1.0)
    panels["fig4e_top_distances"] = Panel(
        distance_heatmap(
            top,
            title=f"{label}e. Mean sample distances of the {n_retained} samples farthest from "
            f"{spec.reference} (Ward), {clusters.loc[retained, 'cluster'].nunique()} clusters",
            limits=limits,
            groups=clusters.loc[retained, "cluster"].map(_cluster_label).to_dict(),
            group_title="cluster",
            annotations=annotations,
        ),
        *_heatmap_size(n_retained),
    )
    kept = {s: ("retained" if s in set(retained) else "not retained") for s in clusters.index}
    kept[spec.reference] = "reference"
    panels["ed2_all_distances"] = Panel(
        distance_heatmap(
            matrix,
            title=f"{label} (Extended Data 2). Mean sample distances of all {len(clusters)} "
            "samples (Ward)",
            limits=limits,
            groups=kept,
            group_title="retained",
            annotations=annotations,
        ),
        *_heatmap_size(len(clusters)),
    )
    panels["fig4f_enrichment"] = _enrichment_panel(results, spec)
    return {name: panels[name] for name in FIG4_PANELS}


def _enrichment_panel(results: ScreenResults, spec: Fig4Spec) -> Panel:
    """Panel f: the best gene sets' scores per cluster, up and down triangles."""
    title = f"{spec.label}f. Gene sets enriched in each cluster's DE genes vs {spec.reference}"
    table = results.enrichment
    if table.empty:
        why = (
            "No gene sets were given (figures.fig4.gene_sets)."
            if spec.gene_sets is None
            else "No cluster has DE genes beyond the LFC threshold, or no gene set was tested."
        )
        return Panel(_message_panel(title, why), 7.0, 1.5)
    best = table.groupby("gene_set")["fdr"].min().sort_values(kind="stable")
    shown = list(best.index[best < 0.25][:MAX_GENE_SETS]) or list(best.index[:MAX_GENE_SETS])
    sub = table[table["gene_set"].isin(shown)].copy()
    sub["cluster"] = sub["cluster"].map(_cluster_label)
    sub["gene_set"] = pd.Categorical(sub["gene_set"], categories=shown)
    sub = sub.sort_values("gene_set")
    n_clusters = sub["cluster"].nunique()
    return Panel(
        plot_enrichment_tiles(
            sub,
            title=f"{title}\n(sets with FDR < 0.25 in some cluster, at most {MAX_GENE_SETS})",
        ),
        3.5 + 0.6 * n_clusters + 2.5,
        1.5 + 0.28 * len(shown),
    )
