"""The one theme of the figures: a plotnine theme, method names and colour palettes.

Every panel of :mod:`mrvi_repro.plotting` draws with :func:`theme_mrvi` and takes its method
display names and colours from :data:`METHOD_LABELS` and :data:`METHOD_COLORS`, so that a
method looks the same in every figure. The colours are the Okabe-Ito palette (distinguishable
under the common colour-vision deficiencies) and Paul Tol's "muted" scheme.
"""

from __future__ import annotations

import colorsys
from collections.abc import Iterable, Sequence

from plotnine import (
    element_blank,
    element_line,
    element_rect,
    element_text,
    theme,
    theme_bw,
)

#: Display name of each method id (the ``method`` column of the benchmark tables).
METHOD_LABELS: dict[str, str] = {
    "mrvi": "MrVI",
    "mrvi_per_dimension": "MrVI, per-dimension DA",
    "milo": "Milo",
    "milode": "miloDE",
    "composition_pca": "Composition (PCA)",
    "composition_scvi": "Composition (scVI)",
    "scvi": "scVI",
    "pca": "PCA",
    "deseq2": "DESeq2 pseudobulk",
}

#: One fixed colour per method id (Okabe-Ito; its yellow is replaced by grey, which reads
#: better as a line on white). The key order is the canonical order of methods in legends,
#: facets and table rows.
METHOD_COLORS: dict[str, str] = {
    "mrvi": "#0072B2",  # blue
    "mrvi_per_dimension": "#332288",  # indigo (Tol), drawn dashed: MrVI's paper-era DA estimator
    "milo": "#E69F00",  # orange
    "milode": "#CC79A7",  # reddish purple
    "composition_pca": "#009E73",  # bluish green
    "composition_scvi": "#56B4E9",  # sky blue
    "scvi": "#D55E00",  # vermillion
    "pca": "#999999",  # grey
    "deseq2": "#000000",  # black
}

#: Display name of each metric id (the ``metric`` column of the benchmark tables); unknown ids
#: are shown as they are.
METRIC_LABELS: dict[str, str] = {
    "da_pr_auc": "DA PR-AUC",
    "de_pearson_r": "DE r vs DESeq2",
    "rf_distance": "Robinson-Foulds",
    "top_split": "top split found",
    "cophenetic_r": "cophenetic r (A)",
    "cophenetic_r_other": "cophenetic r (others)",
    "distance_ratio_other": "distance ratio (others)",
    "silhouette_label": "silhouette label",
    "silhouette_batch": "silhouette batch",
    "silhouette_sample": "silhouette sample",
    "isolated_labels": "isolated labels",
    "nmi_kmeans": "NMI k-means",
    "ari_kmeans": "ARI k-means",
}

#: Metrics where lower is better (their column is marked and its shading reversed); every other
#: metric of the tables is higher-is-better. ``cophenetic_r_other``: a tree found where none was
#: planted; ``distance_ratio_other``: sample distances where no sample effect was planted, over
#: subset A's.
LOWER_IS_BETTER: tuple[str, ...] = ("rf_distance", "cophenetic_r_other", "distance_ratio_other")


def metric_label(metric_id: str, *, lower_is_better: Iterable[str] = LOWER_IS_BETTER) -> str:
    """Display name of a metric id with its direction: ``"DA PR-AUC ↑"``, ``"Robinson-Foulds ↓"``.

    Parameters
    ----------
    metric_id
        A metric id such as ``"da_pr_auc"``; unknown ids keep their name.
    lower_is_better
        The metric ids whose best value is the smallest.
    """
    arrow = "↓" if metric_id in set(lower_is_better) else "↑"
    return f"{METRIC_LABELS.get(metric_id, metric_id)} {arrow}"


#: Colour of the cell subsets of the semi-synthetic data (the subsets with simulated effects
#: A, B, C and the remaining cells, "Other", in light grey).
SUBSET_COLORS: dict[str, str] = {
    "A": "#D55E00",
    "B": "#0072B2",
    "C": "#009E73",
    "Other": "#BBBBBB",
}

#: Generic discrete palette (Paul Tol's "muted", colour-blind friendly); longer sequences of
#: levels fall back to evenly spaced hues (see :func:`discrete_colors`).
DISCRETE_PALETTE: tuple[str, ...] = (
    "#332288",
    "#88CCEE",
    "#44AA99",
    "#117733",
    "#999933",
    "#DDCC77",
    "#CC6677",
    "#882255",
    "#AA4499",
)

#: Colour of missing values (points drawn underneath, empty tiles).
NA_COLOR = "#D9D9D9"


def method_label(method_id: str) -> str:
    """Display name of a method id.

    Parameters
    ----------
    method_id
        A method id such as ``"mrvi"`` or ``"composition_scvi"``.

    Returns
    -------
    The name in :data:`METHOD_LABELS`, or ``method_id`` itself for an unknown id.
    """
    return METHOD_LABELS.get(method_id, method_id)


def method_order(method_ids: Iterable[str]) -> list[str]:
    """Canonical order of method ids: known ids in :data:`METHOD_COLORS` order, then the others.

    Parameters
    ----------
    method_ids
        Method ids, possibly repeated.

    Returns
    -------
    The distinct ids; unknown ids keep their order of first appearance.
    """
    seen = list(dict.fromkeys(method_ids))
    known = [m for m in METHOD_COLORS if m in seen]
    return known + [m for m in seen if m not in METHOD_COLORS]


def _hues(n: int) -> list[str]:
    """``n`` evenly spaced hues of equal lightness and saturation, as hex colours."""
    out = []
    for i in range(n):
        r, g, b = colorsys.hls_to_rgb((15 / 360 + i / n) % 1.0, 0.55, 0.65)
        out.append(f"#{round(r * 255):02X}{round(g * 255):02X}{round(b * 255):02X}")
    return out


def discrete_colors(levels: Sequence[str]) -> dict[str, str]:
    """Colour of each level of a categorical variable.

    Parameters
    ----------
    levels
        Distinct levels, in legend order.

    Returns
    -------
    Mapping level -> hex colour: :data:`SUBSET_COLORS` when every level is a cell subset
    name, :data:`METHOD_COLORS` when every level is a known method id, else
    :data:`DISCRETE_PALETTE` (evenly spaced hues when there are more levels than colours in it).
    """
    levels = list(levels)
    if levels and all(lv in SUBSET_COLORS for lv in levels):
        return {lv: SUBSET_COLORS[lv] for lv in levels}
    if levels and all(lv in METHOD_COLORS for lv in levels):
        return {lv: METHOD_COLORS[lv] for lv in levels}
    palette = DISCRETE_PALETTE if len(levels) <= len(DISCRETE_PALETTE) else _hues(len(levels))
    return dict(zip(levels, palette, strict=False))


def theme_mrvi(base_size: float = 9) -> theme:
    """Return the figures' plotnine theme: white background, light grid, framed panels.

    Parameters
    ----------
    base_size
        Font size (points) of titles and labels; tick labels are one point smaller.

    Returns
    -------
    A complete :class:`plotnine.theme`, to add to a plot (``plot + theme_mrvi()``).
    """
    small = max(base_size - 1, 4)
    return theme_bw(base_size=base_size) + theme(
        text=element_text(color="#222222"),
        plot_title=element_text(size=base_size + 1, ha="left"),
        axis_text=element_text(size=small, color="#333333"),
        axis_ticks=element_line(color="#4D4D4D"),
        panel_border=element_rect(color="#4D4D4D", fill="none"),
        panel_grid_major=element_line(color="#EBEBEB", size=0.4),
        panel_grid_minor=element_blank(),
        strip_background=element_rect(fill="#F2F2F2", color="#4D4D4D"),
        strip_text=element_text(size=base_size, color="#222222"),
        legend_key=element_blank(),
        legend_text=element_text(size=small),
        legend_title=element_text(size=base_size),
        legend_background=element_blank(),
    )
