"""Figure panels of the benchmark, drawn with plotnine.

Every ``plot_*`` function takes one tidy :class:`pandas.DataFrame` (one row per observation,
the columns named in its docstring), validates it (a missing column or an empty table raises
:class:`ValueError`) and returns one :class:`plotnine.ggplot` panel in the :func:`theme_mrvi`
theme; :func:`save_figure` writes a panel to PNG, PDF or SVG. The module only draws: it takes
tables computed elsewhere; only :func:`cohort_figure`, :func:`screen_figure` and :func:`stenosis_figure` read a stage
below it (their derived quantities in :mod:`mrvi_repro.metrics`). Methods are named and
coloured consistently across figures through :data:`METHOD_LABELS` and :data:`METHOD_COLORS`.
:func:`semisynthetic_figure`, :func:`cohort_figure`, :func:`metric_figures` and
:func:`runtime_figure` assemble the panels of whole figures from the workflow's result objects
(xarray, TSV tables).
"""

from ._cohort import cohort_figure, module_gene_table
from ._figures import (
    FIG2_PANELS,
    LATENT_PANELS,
    Panel,
    distance_heatmap,
    metric_figures,
    runtime_figure,
    runtime_table,
    save_panels,
    semisynthetic_cell_table,
    semisynthetic_figure,
    shared_distance_limits,
    umap_table,
)
from ._panels import (
    FIGURE_SUFFIXES,
    dendrogram_segments,
    plot_alluvial,
    plot_distance_heatmap,
    plot_distribution,
    plot_embedding,
    plot_group_values,
    plot_lfc_scatter,
    plot_metric_table,
    plot_pr_curves,
    plot_runtime,
    save_figure,
)
from ._screen import plot_enrichment_tiles, plot_screen_metrics, screen_figure
from ._stenosis import figure_genes, stenosis_figure
from ._theme import (
    DISCRETE_PALETTE,
    LOWER_IS_BETTER,
    METHOD_COLORS,
    METHOD_LABELS,
    METRIC_LABELS,
    NA_COLOR,
    SUBSET_COLORS,
    discrete_colors,
    method_label,
    method_order,
    metric_label,
    theme_mrvi,
)

__all__ = [
    "cohort_figure",
    "plot_enrichment_tiles",
    "plot_screen_metrics",
    "screen_figure",
    "stenosis_figure",
    "figure_genes",
    "module_gene_table",
    "plot_alluvial",
    "plot_group_values",
    "FIG2_PANELS",
    "LATENT_PANELS",
    "Panel",
    "distance_heatmap",
    "metric_figures",
    "runtime_figure",
    "runtime_table",
    "semisynthetic_cell_table",
    "semisynthetic_figure",
    "shared_distance_limits",
    "umap_table",
    "DISCRETE_PALETTE",
    "FIGURE_SUFFIXES",
    "LOWER_IS_BETTER",
    "METHOD_COLORS",
    "METHOD_LABELS",
    "METRIC_LABELS",
    "NA_COLOR",
    "SUBSET_COLORS",
    "dendrogram_segments",
    "discrete_colors",
    "method_label",
    "method_order",
    "metric_label",
    "plot_distance_heatmap",
    "plot_distribution",
    "plot_embedding",
    "plot_lfc_scatter",
    "plot_metric_table",
    "plot_pr_curves",
    "plot_runtime",
    "save_figure",
    "save_panels",
    "theme_mrvi",
]
