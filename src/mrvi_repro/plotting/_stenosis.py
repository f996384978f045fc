"""The disease-behaviour figure: the paper's Fig. 5 and Extended Data Figs. 6-7 for any cohort.

:func:`stenosis_figure` draws the panels from a :class:`~mrvi_repro.metrics.StenosisResults`
(the workflow's outputs for one entry, loaded), the 2-D embedding of u (:func:`umap_table`,
its ``"MrVI u"`` panel) and the entry's ``figures.fig5`` settings. Every panel of the analysed
subset (the DE comparison's cells: the stromal cells) draws it on the UMAP of all cells, as the
paper did. Embeddings are UMAPs, as the paper's Fig. 5.
"""

from __future__ import annotations

import logging
import textwrap
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from plotnine import (
    aes,
    element_text,
    facet_wrap,
    geom_hline,
    geom_point,
    geom_violin,
    ggplot,
    labs,
    position_dodge,
    scale_color_cmap,
    scale_fill_manual,
    scale_size_area,
    scale_y_discrete,
    theme,
)

from mrvi_repro.metrics import (
    behaviour_effect,
    clustered_label_order,
    contrast_ends,
    da_contrast,
    label_lfc_profiles,
    mean_lfc,
)
from mrvi_repro.settings.names import FIG5_PANELS

from ._cohort import _delta_text, _drawn_cells, _point_size
from ._figures import Panel, _message_panel
from ._panels import plot_distribution, plot_embedding
from ._theme import discrete_colors, theme_mrvi

if TYPE_CHECKING:
    import xarray as xr
    from plotnine.composition import Compose

    from mrvi_repro.metrics import StenosisResults
    from mrvi_repro.settings.figures import Fig5Spec

logger = logging.getLogger(__name__)

#: Genes drawn by default in panel e (those with the largest mean |LFC|) and panel f.
DEFAULT_LFC_GENES = 6
DEFAULT_UMAP_GENES = 2
#: Embedding panels per row of a composed figure.
NCOL = 3


def _grid(plots: list[ggplot], ncol: int = NCOL) -> Compose | ggplot:
    """Compose plots in rows of ``ncol`` (plotnine's ``|`` and ``/``).

    A short last row is padded with empty space, so that its plots keep the others' width.
    """
    from plotnine.composition import plot_spacer

    ncol = min(ncol, len(plots))
    rows = []
    for start in range(0, len(plots), ncol):
        chunk = plots[start : start + ncol]
        row = chunk[0]
        for p in [*chunk[1:], *[plot_spacer() for _ in range(ncol - len(chunk))]]:
            row = row | p
        rows.append(row)
    composed = rows[0]
    for row in rows[1:]:
        composed = composed / row
    return composed


def _grid_size(n: int, width: float, height: float, ncol: int = NCOL) -> tuple[float, float]:
    return width * min(n, ncol), height * ((n + ncol - 1) // ncol)


def figure_genes(de: xr.Dataset, spec: Fig5Spec) -> dict[str, list[str]]:
    """Return the genes of panels e and f: the configured ones, else the strongest mean LFCs.

    ``de``: the DE comparison's dataset (:func:`~mrvi_repro.metrics.mean_lfc`).
    """
    mean = mean_lfc(de)
    lfc_genes = list(spec.lfc_genes) or list(
        mean.abs().sort_values(ascending=False).index[:DEFAULT_LFC_GENES]
    )
    umap_genes = list(spec.umap_genes) or list(
        mean.sort_values(ascending=False).index[:DEFAULT_UMAP_GENES]
    )
    return {"lfc": lfc_genes, "umap": umap_genes}


def _available(genes: list[str], table: pd.DataFrame, what: str) -> list[str]:
    """Return the genes among ``table``'s columns, in order; log the missing ones."""
    missing = [g for g in genes if g not in table.columns]
    if missing:
        logger.warning("%s: genes %s are not among the model's genes; left out", what, missing)
    return [g for g in genes if g in table.columns]


def stenosis_figure(
    results: StenosisResults, embedding: pd.DataFrame, spec: Fig5Spec, *, seed: int = 0
) -> dict[str, Panel]:
    """Panels of the disease-behaviour figure (:data:`~mrvi_repro.settings.names.FIG5_PANELS`).

    Parameters
    ----------
    results
        The entry's outputs (:class:`~mrvi_repro.metrics.StenosisResults`).
    embedding
        :func:`umap_table` of MrVI's u (its ``"MrVI u"`` panel is drawn).
    spec
        The entry's ``figures.fig5`` settings.
    seed
        Seed of the subsample of drawn cells (above ``spec.max_points``).

    Returns
    -------
    Panel name -> :class:`Panel`: a (u by coarse label, by collection method, effect sizes),
    b (subset by label), c (DA), d (expression of one gene, high values on top), e (LFC violins
    per label, labels by hierarchical clustering), f (per-cell LFCs of two genes), Extended
    Data 6a-e and 7a, 7c. A panel whose data are missing says why instead.
    """
    u = embedding[embedding["panel"] == "MrVI u"]
    if u.empty:
        msg = "the embedding table has no 'MrVI u' panel"
        raise ValueError(msg)
    drawn = _drawn_cells(u, spec.max_points, seed).set_index("cell")
    note = drawn.attrs["note"]
    cells = drawn.index
    covariate, a, b = da_contrast(results)
    de_a, de_b = contrast_ends(results.de)
    subset = cells[cells.isin(results.subset)]
    table = drawn.assign(
        coarse=results.obs["coarse"].astype(str).reindex(cells).to_numpy(),
        label=results.labels(cells).to_numpy(),
        collection=results.sample_values(spec.collection, cells).to_numpy(),
        behaviour=results.sample_values(covariate, cells).to_numpy(),
    ).reset_index()
    sub = table[table["cell"].isin(subset)]
    size_all, size_sub = _point_size(len(table)), _point_size(len(sub))
    panels: dict[str, Panel] = {}

    def embed(data: pd.DataFrame, column: str, title: str, legend: str, **kw: object) -> ggplot:
        if data.empty:
            return _message_panel(title, "No drawn cell is among the cells of this panel.")
        size = size_sub if len(data) < len(table) else size_all
        return plot_embedding(
            data, column, facet=None, title=title, legend_title=legend, point_size=size, **kw
        )

    panels["fig5a_coarse"] = Panel(
        embed(table, "coarse", f"MrVI u by coarse label\n({note})", "Coarse label"), 6.0, 4.6
    )
    panels["fig5a_collection"] = Panel(
        embed(table, "collection", f"MrVI u by {spec.collection}\n({note})", spec.collection),
        6.0,
        4.6,
    )
    effects = results.effects
    effect_plots = [
        embed(
            table.assign(effect=effects[name].reindex(table["cell"]).to_numpy()),
            "effect",
            f"Effect size of {name}",
            "‖β‖²",
            limit_quantile=0.99,
            high_on_top=True,
            from_zero=True,
        )
        for name in effects.columns
    ]
    panels["fig5a_effect_sizes"] = Panel(
        _grid(effect_plots), *_grid_size(len(effect_plots), 4.8, 4.2)
    )
    panels["fig5b_labels"] = Panel(
        embed(sub, "label", f"Analysed cells by {results.labels_key}\n({note})", "Cell type"),
        7.5,
        4.8,
    )
    log_ratio = pd.Series(
        results.da["log_ratio"].values, index=results.da["cell"].values.astype(str)
    )
    da_cells = table[table["cell"].isin(log_ratio.index)].assign(
        log_ratio=lambda t: log_ratio.reindex(t["cell"]).to_numpy()
    )
    panels["fig5c_da"] = Panel(
        embed(
            da_cells,
            "log_ratio",
            f"MrVI DA, {covariate} {a} vs {b}: log q({a}) - log q({b})\n({note})",
            "log density\nratio",
            diverging=True,
            limit_quantile=0.98,
        ),
        6.0,
        4.6,
    )
    panels["fig5d_expression"] = _expression_panel(results, sub, spec, size_sub, note)
    genes = figure_genes(results.de, spec)
    panels["fig5e_lfc_violins"] = _lfc_violins(results, genes["lfc"], de_a, de_b)
    panels["fig5f_lfc_umaps"] = _lfc_umaps(
        results, sub, genes["umap"], de_a, de_b, size_sub, "Fig. 5f"
    )
    panels["ed6a_labels_behaviour"] = Panel(
        embed(table, "label", f"MrVI u by {results.labels_key} ({note})", "Cell type")
        | embed(table, "behaviour", f"MrVI u by {covariate}", covariate),
        16.0,
        6.0,
    )
    panels["ed6b_subset_behaviour"] = Panel(
        embed(sub, "behaviour", f"Analysed cells by {covariate}\n({note})", covariate), 6.0, 4.6
    )
    effect = behaviour_effect(results)
    title = "Analysed cells: effect size of the DA comparison's contrast"
    panels["ed6c_subset_effect"] = Panel(
        _message_panel(title, f"analysis.de.contrasts has no contrast {covariate}: {a} vs {b}.")
        if effect is None
        else embed(
            sub.assign(effect=effects[effect].reindex(sub["cell"]).to_numpy()),
            "effect",
            f"Analysed cells: effect size of {effect}",
            "‖β‖²",
            limit_quantile=0.99,
            high_on_top=True,
            from_zero=True,
        ),
        6.0,
        4.6,
    )
    panels["ed6d_markers"] = _marker_panel(results, sub, spec, size_sub)
    panels["ed6e_more_lfcs"] = _lfc_umaps(
        results, sub, list(spec.more_umap_genes), de_a, de_b, size_sub, "Extended Data Fig. 6e"
    )
    panels["ed7a_focus_expression"] = _focus_panel(results, spec, genes["lfc"], covariate)
    panels["ed7b_subcluster_markers"] = _subcluster_dotplot(results, spec)
    panels["ed7c_da_violins"] = _da_violins(results, log_ratio, covariate, a, b)
    return {name: panels[name] for name in FIG5_PANELS}


def _expression_panel(
    results: StenosisResults, sub: pd.DataFrame, spec: Fig5Spec, size: float, note: str
) -> Panel:
    gene = spec.expression_gene
    title = "Expression in the analysed cells"
    if gene is None or gene not in results.expression.columns:
        why = (
            "No gene is set (figures.fig5.expression_gene)."
            if gene is None
            else (f"{gene} is not among the model's genes.")
        )
        return Panel(_message_panel(title, why), 6.0, 1.5)
    values = results.expression[gene].reindex(sub["cell"]).to_numpy()
    plot = plot_embedding(
        sub.assign(expression=values),
        "expression",
        facet=None,
        title=f"{gene} expression in the analysed cells\n({note}; highest values on top)",
        legend_title=f"{gene}\nlog1p(normalised)",
        point_size=size,
        high_on_top=True,
    )
    return Panel(plot, 6.0, 4.6)


def _lfc_violins(results: StenosisResults, genes: list[str], a: str, b: str) -> Panel:
    title = f"MrVI LFCs, {a} vs {b}, per cell type"
    genes = _available(genes, results.lfc, "Fig. 5e")
    if not genes:
        return Panel(_message_panel(title, "None of the panel's genes is a model gene."), 6.0, 1.5)
    order = clustered_label_order(label_lfc_profiles(results.de))
    labels = results.labels(results.subset)
    present = set(labels)
    order = [lb for lb in order if lb in present]
    long = (
        results.lfc[genes]
        .assign(label=labels.to_numpy())
        .melt(id_vars="label", var_name="gene", value_name="lfc")
    )
    long = long[np.isfinite(long["lfc"]) & long["label"].isin(order)]
    long["label"] = pd.Categorical(long["label"], categories=order)
    long["gene"] = pd.Categorical(long["gene"], categories=genes)
    plot = (
        ggplot(long, aes("label", "lfc"))
        + geom_hline(yintercept=0.0, linetype="dashed", color="#666666", size=0.4)
        + geom_violin(aes(fill="label"), scale="width", size=0.25, alpha=0.8)
        + scale_fill_manual(values=discrete_colors(order), guide=None)
        + facet_wrap("gene", ncol=min(2, len(genes)), scales="free_y")
        + labs(
            title=f"{title}\n(cell types ordered by hierarchical clustering of their mean LFCs)",
            x="",
            y=f"LFC (log2, {a} vs {b})",
        )
        + theme_mrvi()
        + theme(axis_text_x=element_text(rotation=60, ha="right", size=6.5))
    )
    ncol = min(2, len(genes))
    nrow = (len(genes) + ncol - 1) // ncol
    return Panel(plot, 3.2 + 3.0 * ncol + 0.12 * len(order), 1.5 + 2.6 * nrow)


def _lfc_umaps(
    results: StenosisResults,
    sub: pd.DataFrame,
    genes: list[str],
    a: str,
    b: str,
    size: float,
    where: str,
) -> Panel:
    genes = _available(genes, results.lfc, where)
    if not genes:
        return Panel(
            _message_panel(f"{where}: per-cell LFCs", "No gene of this panel is a model gene."),
            6.0,
            1.5,
        )
    plots = [
        plot_embedding(
            sub.assign(lfc=results.lfc[g].reindex(sub["cell"]).to_numpy()),
            "lfc",
            facet=None,
            title=f"{g}: per-cell LFC, {a} vs {b}",
            legend_title="LFC (log2)",
            point_size=size,
            diverging=True,
            limit_quantile=0.99,
        )
        for g in genes
    ]
    return Panel(_grid(plots), *_grid_size(len(plots), 4.8, 4.0))


def _marker_panel(
    results: StenosisResults, sub: pd.DataFrame, spec: Fig5Spec, size: float
) -> Panel:
    title = "Marker expression in the analysed cells"
    genes = _available(list(spec.markers), results.expression, "Extended Data Fig. 6d")
    if not genes:
        why = (
            "No marker gene is set (figures.fig5.markers)"
            if not spec.markers
            else ("None of the markers is a model gene")
        )
        return Panel(_message_panel(title, why + "."), 6.0, 1.5)
    plots = [
        plot_embedding(
            sub.assign(expression=results.expression[g].reindex(sub["cell"]).to_numpy()),
            "expression",
            facet=None,
            title=g,
            legend_title="log1p\n(normalised)",
            point_size=size,
            high_on_top=True,
        )
        for g in genes
    ]
    return Panel(_grid(plots), *_grid_size(len(plots), 4.2, 3.6))


def _focus_panel(
    results: StenosisResults, spec: Fig5Spec, lfc_genes: list[str], covariate: str
) -> Panel:
    focus = spec.focus
    title = f"Expression in {focus} by {covariate}" + (
        f" and {spec.inflammation}" if spec.inflammation else ""
    )
    cells = results.subset[results.labels(results.subset).to_numpy() == focus] if focus else []
    genes = _available(list(spec.focus_genes) or lfc_genes, results.expression, "ED 7a")
    if focus is None or len(cells) == 0 or not genes:
        why = (
            "No focus label is set (figures.fig5.focus or claims.strongest)."
            if focus is None
            else f"No analysed cell is labelled {focus}."
            if len(cells) == 0
            else "None of the panel's genes is a model gene."
        )
        return Panel(_message_panel(title, why), 6.0, 1.5)
    group = spec.inflammation or covariate
    long = results.expression.loc[cells, genes].assign(
        behaviour=results.sample_values(covariate, cells).to_numpy(),
        group=results.sample_values(group, cells).to_numpy(),
    )
    long = long.melt(id_vars=["behaviour", "group"], var_name="gene", value_name="expression")
    long["gene"] = pd.Categorical(long["gene"], categories=genes)
    levels = sorted(long["group"].unique())
    dodge = position_dodge(width=0.85)
    plot = (
        ggplot(long, aes("behaviour", "expression", fill="group"))
        + geom_violin(
            scale="width", position=dodge, size=0.25, alpha=0.8, draw_quantiles=[0.25, 0.5, 0.75]
        )
        + scale_fill_manual(values=discrete_colors(levels), breaks=levels)
        + facet_wrap("gene", ncol=min(3, len(genes)), scales="free_y")
        + labs(
            title=f"{title} ({len(cells):,} cells; lines: quartiles)",
            x=covariate,
            y="log1p(library-size-normalised counts)",
            fill=group,
        )
        + theme_mrvi()
    )
    ncol = min(3, len(genes))
    return Panel(plot, 1.2 + 3.4 * ncol, 1.2 + 2.6 * ((len(genes) + ncol - 1) // ncol))


def _subcluster_dotplot(results: StenosisResults, spec: Fig5Spec) -> Panel:
    """Draw Extended Data Fig. 7b: the subclusters' top marker genes as a dot plot.

    Dot size: share of the label's cells expressing the gene; colour: mean log1p normalised
    expression.
    """
    title = "Top marker genes of the subclusters"
    dot, sub = results.markers, spec.subclusters
    if sub is None or dot is None:
        why = "No subclusters are set (figures.fig5.subclusters)."
        return Panel(_message_panel(title, why), 6.0, 1.5)
    if dot.empty:
        chosen = dot.attrs.get("chosen", [])
        why = (
            f"Fewer than two analysed labels contain {sub.match!r}"
            + (f" and none of {list(sub.exclude)}" if sub.exclude else "")
            + f" (matched: {chosen or 'none'})."
        )
        return Panel(_message_panel(title, why), 6.0, 1.5)
    groups = list(dict.fromkeys(dot["group"]))
    tops = dot.drop_duplicates("gene").sort_values(
        ["marker_of", "rank"], key=lambda c: c.map(groups.index) if c.name == "marker_of" else c
    )
    data = dot.assign(
        gene=pd.Categorical(dot["gene"], categories=list(tops["gene"])),
        group=pd.Categorical(dot["group"], categories=groups[::-1]),
        percent=100 * dot["fraction"],
    )
    cells = dot.attrs.get("cells", {})
    ticks = [textwrap.fill(f"{g} ({cells[g]:,} cells)" if g in cells else g, 34) for g in groups]
    left_out = f"; left out: labels with {', '.join(sub.exclude)}" if sub.exclude else ""
    plot = (
        ggplot(data, aes("gene", "group"))
        + geom_point(aes(size="percent", color="mean"))
        + scale_size_area(max_size=7, limits=(0, 100), breaks=[25, 50, 75, 100])
        + scale_color_cmap(cmap_name="viridis")
        + scale_y_discrete(labels=ticks[::-1])
        + labs(
            title=f"Top {sub.n_markers} marker genes per subcluster",
            subtitle=textwrap.fill(
                f"Wilcoxon test of each label against the others, at most {sub.max_cells:,} "
                f"cells per label{left_out}",
                60,
            ),
            x="Marker gene (grouped by the label it marks)",
            y="",
            size="% cells\nexpressing",
            color="Mean log1p\n(normalised)",
        )
        + theme_mrvi()
        + theme(axis_text_x=element_text(rotation=60, ha="right"))
    )
    return Panel(plot, max(6.5, 3.6 + 0.4 * len(tops)), max(3.8, 2.4 + 0.45 * len(groups)))


def _da_violins(
    results: StenosisResults, log_ratio: pd.Series, covariate: str, a: str, b: str
) -> Panel:
    test = results.da_test.assign(cluster=lambda t: t["cluster"].astype(str)).set_index("cluster")
    labels = results.labels(log_ratio.index)
    means = log_ratio.groupby(labels.to_numpy()).mean().sort_values()
    called = test["significant"].astype(bool) if "significant" in test else pd.Series(dtype=bool)
    names = {lb: f"{lb} *" if bool(called.get(lb, False)) else lb for lb in means.index}
    table = pd.DataFrame(
        {
            "label": pd.Categorical(
                labels.map(names).to_numpy(), categories=[names[lb] for lb in means.index]
            ),
            "log_ratio": log_ratio.to_numpy(),
        }
    )
    delta = _delta_text(results.da)
    plot = plot_distribution(
        table,
        "label",
        "log_ratio",
        title=f"MrVI DA per cell type, {covariate} {a} vs {b}\n"
        + textwrap.fill(
            f"* cluster-level test: the cell type's mean log ratio differs from the other cells' "
            f"by more than {delta} (FDR 5 %)",
            80,
        ),
        x_label="Cell type (ordered by mean log ratio)",
        y_label=f"log q({a}) - log q({b})",
        limit_quantiles=(0.01, 0.99),
    ) + theme(axis_text_x=element_text(rotation=60, ha="right", size=6.5))
    return Panel(plot, 2.5 + 0.45 * len(means), 5.0)
