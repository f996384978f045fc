"""Figure panels of the benchmark: one function, one panel, one tidy table in, one plot out.

Each ``plot_*`` function validates its table (a missing column or an empty table raises
:class:`ValueError`), copies what it needs, and returns a :class:`plotnine.ggplot` in the
:func:`~mrvi_repro.plotting.theme_mrvi` theme; :func:`save_figure` writes it to PNG, PDF or SVG.
Nothing here computes a benchmark quantity: the tables come from the workflow's analysis steps.
"""

from __future__ import annotations

import textwrap
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from mizani.bounds import squish
from plotnine import (
    aes,
    annotate,
    coord_cartesian,
    coord_fixed,
    coord_flip,
    element_blank,
    element_text,
    facet_wrap,
    geom_abline,
    geom_boxplot,
    geom_col,
    geom_hline,
    geom_path,
    geom_point,
    geom_rect,
    geom_ribbon,
    geom_segment,
    geom_step,
    geom_text,
    geom_tile,
    geom_violin,
    ggplot,
    ggtitle,
    guide_legend,
    guides,
    labs,
    scale_color_cmap,
    scale_color_gradient2,
    scale_color_manual,
    scale_fill_cmap,
    scale_fill_gradient,
    scale_fill_manual,
    scale_linetype_manual,
    scale_x_continuous,
    scale_x_discrete,
    scale_y_continuous,
    scale_y_discrete,
    theme,
)
from plotnine.composition import Compose
from scipy.cluster import hierarchy

from ._theme import (
    DISCRETE_PALETTE,
    LOWER_IS_BETTER,
    METHOD_COLORS,
    NA_COLOR,
    SUBSET_COLORS,
    _hues,
    discrete_colors,
    method_label,
    method_order,
    metric_label,
    theme_mrvi,
)

#: File suffixes :func:`save_figure` writes.
FIGURE_SUFFIXES = (".png", ".pdf", ".svg")

# Metadata that matplotlib would otherwise stamp with the current date: left out so that the
# same plot gives the same PDF / SVG bytes.
_SAVE_METADATA = {".pdf": {"CreationDate": None}, ".svg": {"Date": None}}


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _check_table(table: pd.DataFrame, required: Iterable[str], what: str) -> pd.DataFrame:
    """Raise unless ``table`` is a non-empty DataFrame with the ``required`` columns."""
    if not isinstance(table, pd.DataFrame):
        msg = f"{what}: the table must be a pandas DataFrame, got {type(table).__name__}"
        raise TypeError(msg)
    required = list(dict.fromkeys(required))
    missing = [c for c in required if c not in table.columns]
    if missing:
        msg = (
            f"{what}: missing required column(s) {missing}; "
            f"the table has columns {list(table.columns)}"
        )
        raise ValueError(msg)
    if len(table) == 0:
        msg = f"{what}: the table is empty (no rows)"
        raise ValueError(msg)
    return table


def _numeric(table: pd.DataFrame, column: str, what: str) -> pd.Series:
    """Column ``column`` as float64, raising a ValueError naming it when it is not numeric."""
    col = table[column]
    if pd.api.types.is_bool_dtype(col) or not pd.api.types.is_numeric_dtype(col):
        msg = f"{what}: column {column!r} must be numeric, got dtype {col.dtype}"
        raise ValueError(msg)
    return col.astype(np.float64)


def _levels(values: pd.Series, *, sort: bool = False) -> list[str]:
    """Distinct non-missing values as strings, in legend order.

    The categories' order for a categorical column; else the cell subsets in the order of
    :data:`SUBSET_COLORS` when every value is a subset name; else sorted (``sort``) or in order
    of first appearance.
    """
    present = list(dict.fromkeys(values.dropna().astype(str)))
    if isinstance(values.dtype, pd.CategoricalDtype):
        return [str(c) for c in values.cat.categories if str(c) in set(present)]
    if present and all(v in SUBSET_COLORS for v in present):
        return [v for v in SUBSET_COLORS if v in present]
    return sorted(present) if sort else present


def _constant_per(table: pd.DataFrame, key: str, column: str, what: str) -> pd.Series:
    """Return the one value of ``column`` for each ``key``; raise if a key has several."""
    n_values = table.groupby(key, sort=False)[column].nunique(dropna=False)
    bad = n_values[n_values > 1]
    if len(bad):
        msg = f"{what}: {column!r} must be constant per {key}; it is not for {list(bad.index)}"
        raise ValueError(msg)
    return table.groupby(key, sort=False)[column].first()


def _method_palette(methods: Sequence[str]) -> dict[str, str]:
    """Colour of each method id: :data:`METHOD_COLORS`, the generic palette for unknown ids."""
    unknown = [m for m in methods if m not in METHOD_COLORS]
    extra = {m: DISCRETE_PALETTE[i % len(DISCRETE_PALETTE)] for i, m in enumerate(unknown)}
    return {m: METHOD_COLORS.get(m) or extra[m] for m in methods}


def _with_title(plot: ggplot, title: str | None) -> ggplot:
    return plot + ggtitle(title) if title else plot


def _percentile(q: float) -> str:
    """``0.99`` -> ``"99th percentile"``, ``0.995`` -> ``"99.5th percentile"``."""
    return f"{100 * q:g}th percentile"


# --------------------------------------------------------------------------------------------
# embeddings
# --------------------------------------------------------------------------------------------


def plot_embedding(
    table: pd.DataFrame,
    color: str,
    *,
    facet: str | None = "panel",
    title: str | None = None,
    diverging: bool = False,
    point_size: float = 0.3,
    legend_point_size: float = 2.5,
    limit_quantile: float = 1.0,
    legend_title: str | None = None,
    high_on_top: bool = False,
    from_zero: bool = False,
) -> ggplot:
    """Cells in 2-D embeddings (e.g. UMAPs of MrVI's u and z), coloured by one variable.

    Parameters
    ----------
    table
        One row per cell and embedding: columns ``x``, ``y``, the ``facet`` column (e.g. values
        ``"MrVI u"``, ``"MrVI z"``; one facet each, free scales) and the ``color`` column. Rows
        with a missing coordinate or facet are dropped.
    color
        Column to colour by. Numeric (not bool) columns get a continuous scale (viridis); any
        other column (strings, categories, bools) a discrete palette, in the order of the
        categories for a categorical column, ``A, B, C, Other`` for the cell subsets, sorted
        otherwise. Missing (and, for numeric
        columns, infinite) values are drawn in light grey underneath the other points.
    facet
        Column naming the embedding of each row (facets in category or first-appearance order);
        ``None`` for a single panel.
    title
        Plot title.
    diverging
        Numeric colour only: a blue-white-red scale centred at 0 with symmetric limits
        ``(-m, m)``, ``m`` the ``limit_quantile`` quantile of the absolute finite values (for
        DA log ratios).
    point_size
        Size of the points.
    legend_point_size
        Size of the points in a discrete legend.
    limit_quantile
        Numeric colour only: the colour scale spans values up to this quantile (of the absolute
        values with ``diverging``); values beyond are drawn in the end colours (a few extreme
        cells do not wash out the rest), and the legend title says so when any value is beyond.
        1.0: the full range.
    legend_title
        Title of the colour legend (default: the ``color`` column's name).
    high_on_top
        Numeric colour only: draw the cells in increasing order of the value, so that the
        highest values are on top (expression of a gene, as the paper's Fig. 5d).
    from_zero
        Numeric colour without ``diverging`` only: the colour scale starts at 0, not at the
        smallest value (for non-negative magnitudes such as effect sizes, so that small
        differences do not look large).

    Returns
    -------
    The plot. Points are drawn in a random order (seeded, so deterministic) so that no
    category systematically hides another, or by value with ``high_on_top``.
    """
    what = "plot_embedding"
    required = ["x", "y", color] + ([facet] if facet is not None else [])
    _check_table(table, required, what)
    col = table[color]
    numeric = pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)
    if diverging and not numeric:
        msg = f"{what}: diverging=True needs a numeric colour column, {color!r} is {col.dtype}"
        raise ValueError(msg)
    if not 0.0 < limit_quantile <= 1.0:
        msg = f"{what}: limit_quantile must lie in (0, 1], got {limit_quantile}"
        raise ValueError(msg)

    df = pd.DataFrame(
        {
            "x": _numeric(table, "x", what).to_numpy(),
            "y": _numeric(table, "y", what).to_numpy(),
        }
    )
    if numeric:
        values = col.to_numpy(dtype=np.float64, na_value=np.nan)
        missing = ~np.isfinite(values)
        df["value"] = np.where(missing, np.nan, values)
    else:
        missing = col.isna().to_numpy()
        levels = _levels(col, sort=True)
        df["value"] = pd.Categorical(col.astype(str).where(~missing), categories=levels)
    if facet is not None:
        df["facet"] = pd.Categorical(table[facet].astype(str), categories=_levels(table[facet]))
    keep = np.isfinite(df["x"]) & np.isfinite(df["y"])
    if facet is not None:
        keep &= df["facet"].notna()
    df = df[keep]
    if len(df) == 0:
        msg = f"{what}: no row has finite x and y" + (f" and a {facet!r}" if facet else "")
        raise ValueError(msg)

    if high_on_top and not numeric:
        msg = f"{what}: high_on_top=True needs a numeric colour column, {color!r} is {col.dtype}"
        raise ValueError(msg)
    order = np.random.default_rng(0).permutation(len(df))
    if high_on_top:
        order = order[np.argsort(df["value"].to_numpy()[order], kind="stable")]
    df = df.iloc[order].reset_index(drop=True)
    is_na = df["value"].isna().to_numpy()

    plot = ggplot(mapping=aes("x", "y"))
    clip_note = ""
    if is_na.any():
        plot += geom_point(data=df[is_na], color=NA_COLOR, size=point_size, stroke=0)
    if (~is_na).any():
        plot += geom_point(data=df[~is_na], mapping=aes(color="value"), size=point_size, stroke=0)
        if not numeric:
            levels = list(df["value"].cat.categories)
            plot += scale_color_manual(values=discrete_colors(levels), breaks=levels)
            plot += guides(color=guide_legend(override_aes={"size": legend_point_size, "alpha": 1}))
        elif diverging:
            finite = df.loc[~is_na, "value"].to_numpy()
            m = float(np.quantile(np.abs(finite), limit_quantile))
            m = m if m > 0 else 1.0
            plot += scale_color_gradient2(
                low="#2166AC",
                mid="#F2F2F2",
                high="#B2182B",
                midpoint=0.0,
                limits=(-m, m),
                oob=squish,
            )
            if (np.abs(finite) > m).any():
                clip_note = f"(clipped at ±{m:.3g},\n{_percentile(limit_quantile)}\nof |value|)"
        elif limit_quantile < 1.0:
            finite = df.loc[~is_na, "value"].to_numpy()
            hi = float(np.quantile(finite, limit_quantile))
            lo = 0.0 if from_zero else float(finite.min())
            plot += scale_color_cmap(
                cmap_name="viridis", limits=(lo, hi if hi > lo else lo + 1.0), oob=squish
            )
            if (finite > hi).any():
                clip_note = f"(clipped at {hi:.3g},\n{_percentile(limit_quantile)})"
        elif from_zero:
            hi = float(df.loc[~is_na, "value"].max())
            plot += scale_color_cmap(cmap_name="viridis", limits=(0.0, hi if hi > 0 else 1.0))
        else:
            plot += scale_color_cmap(cmap_name="viridis")
    if facet is not None:
        plot += facet_wrap("facet", scales="free")
    legend = color if legend_title is None else legend_title
    plot += labs(x="", y="", color=f"{legend}\n{clip_note}" if clip_note else legend)
    plot += theme_mrvi()
    plot += theme(axis_text=element_blank(), axis_ticks=element_blank(), panel_grid=element_blank())
    return _with_title(plot, title)


# --------------------------------------------------------------------------------------------
# sample distances and dendrograms
# --------------------------------------------------------------------------------------------


def _check_linkage(linkage: np.ndarray | Sequence[Sequence[float]], n: int | None) -> np.ndarray:
    """Return the validated linkage matrix (over ``n`` observations when ``n`` is given)."""
    z = np.asarray(linkage, dtype=np.float64)
    if z.ndim != 2 or z.shape[1] != 4 or z.shape[0] < 1:
        msg = f"linkage must be a scipy linkage matrix of shape (n - 1, 4), got shape {z.shape}"
        raise ValueError(msg)
    if n is not None and z.shape[0] != n - 1:
        msg = f"linkage is over {z.shape[0] + 1} observations but there are {n} samples"
        raise ValueError(msg)
    try:
        hierarchy.is_valid_linkage(z, throw=True, name="linkage")
    except (TypeError, ValueError) as err:
        raise ValueError(str(err)) from err
    return z


def dendrogram_segments(
    linkage: np.ndarray | Sequence[Sequence[float]], labels: Sequence[str]
) -> pd.DataFrame:
    """Line segments of the dendrogram of a linkage matrix, leaves at x = 0, ..., n - 1.

    Parameters
    ----------
    linkage
        A scipy linkage matrix (``scipy.cluster.hierarchy.linkage``) over ``n`` observations.
    labels
        The ``n`` observation labels, in the order of the linkage's observations.

    Returns
    -------
    DataFrame with columns ``x``, ``y``, ``xend``, ``yend``: three segments per merge (a
    vertical segment up from each child and the horizontal bar between them, at the merge height
    ``linkage[k, 2]``), as ``scipy.cluster.hierarchy.dendrogram`` draws them. Leaf ``i`` is at
    x = its position in ``scipy.cluster.hierarchy.leaves_list(linkage)``, y = 0; a merge is at
    the midpoint of its children. ``attrs["leaves"]`` holds the labels in leaf order.
    """
    labels = [str(lb) for lb in labels]
    z = _check_linkage(linkage, len(labels))
    n = len(labels)
    order = hierarchy.leaves_list(z)
    node_x = np.empty(2 * n - 1)
    node_y = np.zeros(2 * n - 1)
    node_x[order] = np.arange(n, dtype=np.float64)
    rows = []
    for k, (a, b, height, _) in enumerate(z):
        a, b = int(a), int(b)
        xa, ya, xb, yb = node_x[a], node_y[a], node_x[b], node_y[b]
        rows += [(xa, ya, xa, height), (xa, height, xb, height), (xb, yb, xb, height)]
        node_x[n + k], node_y[n + k] = (xa + xb) / 2.0, height
    segments = pd.DataFrame(rows, columns=["x", "y", "xend", "yend"], dtype=np.float64)
    segments.attrs["leaves"] = [labels[i] for i in order]
    return segments


#: Sequential colour maps of the numeric annotation tracks (one per track, in turn).
_TRACK_CMAPS = ("Blues", "Oranges", "Purples", "Greens", "Reds", "Greys")
#: Numeric annotation tracks are drawn in at most this many quantile bins.
_TRACK_BINS = 4
#: Distance between the annotation bars, in tiles (bars are 0.8 wide: room for their names).
_TRACK_STEP = 1.3
#: Samples above which the annotation bars of a heatmap widen (one tile wide up to it).
_BAR_SAMPLES = 40
#: Samples above which a heatmap leaves out the sample names (unreadable at any size).
_MAX_NAMED_SAMPLES = 150


def _format_number(v: float) -> str:
    return f"{v:.0f}" if float(v).is_integer() else f"{v:.3g}"


def _track_levels(
    values: pd.Series, numeric_index: int, palette_offset: int = 0
) -> tuple[pd.Series, dict[str, str], bool]:
    """Return a track's level per sample (index), each level's colour, and if it was binned.

    A track whose present values are mostly numbers (at least half, two or more distinct) is
    coloured along a sequential map (the ``numeric_index``-th of :data:`_TRACK_CMAPS`), one shade
    per value up to :data:`_TRACK_BINS` values, else binned into quantile ranges (``"2-8"``); its
    other values (``Healthy``) get greys. A categorical track's sorted levels get the discrete palette (the
    first track) or, from ``palette_offset`` on, the palette followed by evenly spaced hues, so
    that two categorical tracks never share a colour.
    """
    from matplotlib import colormaps

    present = values.dropna().astype(str)
    numbers = pd.to_numeric(present, errors="coerce")
    if numbers.notna().sum() >= max(2, len(present) / 2) and numbers.nunique() >= 2:
        valid = numbers.dropna()
        level = present.copy()
        if numbers.nunique() > _TRACK_BINS:
            bins = pd.qcut(valid, _TRACK_BINS, duplicates="drop")
            intervals = list(bins.cat.categories)
            lows = [valid[bins == iv].min() for iv in intervals]
            highs = [valid[bins == iv].max() for iv in intervals]
            names = [
                _format_number(lo) if lo == hi else f"{_format_number(lo)}-{_format_number(hi)}"
                for lo, hi in zip(lows, highs, strict=True)
            ]
            level[bins.index] = [names[intervals.index(iv)] for iv in bins]
        else:  # few values (e.g. doses): one shade per value, in numeric order
            names = [_format_number(v) for v in sorted(valid.unique())]
            level[valid.index] = [_format_number(v) for v in valid]
        cmap = colormaps[_TRACK_CMAPS[numeric_index % len(_TRACK_CMAPS)]]
        shades = np.linspace(0.3, 0.9, len(names))
        colors = {n: _hex(cmap(float(t))) for n, t in zip(names, shades, strict=True)}
        others = sorted(set(level[numbers.isna()]))
        greys = ["#BDBDBD", "#8C8C8C", "#D9D9D9", "#636363"]
        colors |= {o: greys[i % len(greys)] for i, o in enumerate(others)}
        return level, colors, True
    levels = sorted(set(present))
    if palette_offset == 0:
        return present, discrete_colors(levels), False
    pool = list(DISCRETE_PALETTE) + _hues(palette_offset + len(levels))
    colors = dict(zip(levels, pool[palette_offset:], strict=False))
    return present, colors, False


def _hex(rgba: Sequence[float]) -> str:
    return "#" + "".join(f"{round(255 * c):02X}" for c in rgba[:3])


def _group_bars(
    ordered: Sequence[str],
    tracks: Sequence[tuple[str, Mapping[str, object]]],
    title: str,
    *,
    top: bool,
    text_size: float,
    unit: float = 1.0,
) -> list:
    """Layers of the annotation bars of :func:`plot_distance_heatmap` and their legend.

    One bar per track left of the rows, :data:`_TRACK_STEP` tiles apart (the first track nearest
    the matrix, with its name above it when there are several); with ``top``, the first track also above the columns. The
    distances own the fill scale, so each level's tiles get a fixed fill (one layer per level)
    and the legend comes from invisible points with a colour scale of the same colours; with
    several tracks its entries are ``"<track>: <level>"``. ``unit``: the bars' width and spacing
    in tiles (more than 1 for many samples, so that the bars stay visible).
    """
    n = len(ordered)
    pos = np.arange(1, n + 1, dtype=np.float64)
    frames, colors, n_numeric, n_categorical = [], {}, 0, 0
    for k, (name, mapping) in enumerate(tracks):
        values = pd.Series([mapping.get(s) for s in ordered], index=list(ordered), dtype=object)
        values = values.where(values.notna() & (values.astype(str) != "nan"))
        if not values.notna().any():
            msg = f"plot_distance_heatmap: no sample of the matrix has a {name}"
            raise ValueError(msg)
        level, track_colors, numeric = _track_levels(values, n_numeric, n_categorical)
        n_numeric += int(numeric)
        n_categorical += 0 if numeric else len(track_colors)
        prefix = f"{name}: " if len(tracks) > 1 else ""
        entry = level.reindex(list(ordered)).map(lambda v, p=prefix: None if pd.isna(v) else p + v)
        colors |= {prefix + lv: c for lv, c in track_colors.items()}
        x = round(0.5 - unit * (0.6 + _TRACK_STEP * k), 9)
        frames.append(
            pd.DataFrame(
                {"x": x, "y": pos[::-1], "group": entry.to_numpy(), "w": 0.8 * unit, "h": 1.0}
            )
        )
        if top and k == 0:
            frames.append(
                pd.DataFrame(
                    {
                        "x": pos,
                        "y": round(n + 0.5 + 0.6 * unit, 9),
                        "group": entry.to_numpy(),
                        "w": 1.0,
                        "h": 0.8 * unit,
                    }
                )
            )
    bars = pd.concat(frames, ignore_index=True).dropna(subset=["group"])
    levels = list(colors)
    bars["group"] = pd.Categorical(bars["group"].astype(str), categories=levels)
    layers: list = [
        geom_tile(
            aes(x="x", y="y", width="w", height="h"),
            data=bars[bars["group"] == lv],
            inherit_aes=False,
            fill=colors[lv],
        )
        for lv in levels
        if (bars["group"] == lv).any()
    ]
    if len(tracks) > 1:
        names = pd.DataFrame(
            {
                "x": [round(0.5 - unit * (0.6 + _TRACK_STEP * k), 9) for k in range(len(tracks))],
                "y": n + 0.5 + 0.2 * unit,
                "label": [t for t, _ in tracks],
            }
        )
        layers.append(
            geom_text(
                aes(x="x", y="y", label="label"),
                data=names,
                inherit_aes=False,
                angle=90,
                ha="center",
                va="bottom",
                size=text_size,
            )
        )
    shown = [lv for lv in levels if (bars["group"] == lv).any()]
    layers += [
        geom_point(aes(x="x", y="y", color="group"), data=bars, inherit_aes=False, alpha=0.0),
        scale_color_manual(values={lv: colors[lv] for lv in shown}, breaks=shown, name=title),
        guides(color=guide_legend(override_aes={"alpha": 1.0, "size": 4, "shape": "s"})),
    ]
    return layers


def plot_distance_heatmap(
    table: pd.DataFrame,
    linkage: np.ndarray | Sequence[Sequence[float]] | None = None,
    *,
    title: str | None = None,
    label: str | None = None,
    cmap: str = "viridis",
    dendrogram_height: float = 0.25,
    axis_text_size: float = 6.0,
    limits: tuple[float, float] | None = None,
    groups: Mapping[str, str] | None = None,
    group_title: str = "group",
    annotations: Mapping[str, Mapping[str, object]] | None = None,
) -> ggplot:
    """Heatmap of one sample-by-sample distance matrix, with its dendrogram above.

    Parameters
    ----------
    table
        Long matrix: columns ``sample_x``, ``sample_y``, ``distance``, one row per pair (at most
        once each; missing pairs are left blank, NaN distances grey). Every ``sample_y`` must
        also be a ``sample_x``.
    linkage
        Optional scipy linkage matrix over the samples in their order of first appearance in
        ``sample_x``. With it, both axes follow its leaf order
        (``scipy.cluster.hierarchy.leaves_list``) and the dendrogram is drawn above the heatmap;
        without it, the samples keep their order of first appearance.
    title
        Plot title.
    label
        Title of the colour bar (default ``"distance"``).
    cmap
        Name of the matplotlib sequential colour map of the distances.
    dendrogram_height
        Height of the dendrogram as a fraction of the heatmap's height.
    axis_text_size
        Font size of the sample names (left out above 150 samples, where they cannot be read).
    limits
        Range of the colour scale (values beyond are drawn in the end colours): give several
        heatmaps the same limits to compare them. Default: the matrix's own range.
    groups
        Sample -> group label (e.g. each subject's planted group): a bar of group colours is
        drawn left of the rows and above the columns, with its legend (titled ``group_title``).
        Samples without a group are left blank in the bars.
    group_title
        Title of the group legend.
    annotations
        Track name -> (sample -> value): more bars left of the rows, one per track, beyond the
        ``groups`` bar (e.g. age, days since onset, status); tracks of mostly numbers are drawn
        in quantile bins along a sequential colour map. One legend lists every track's levels
        (``"<track>: <level>"``; titled ``group_title``, or ``"Annotations"`` without groups).

    Returns
    -------
    One plot with square tiles: ``sample_x`` left to right, ``sample_y`` top to bottom in the
    same order (the first sample at the top left). The x and y axes are categorical; their
    categories (``plot.data["sample_x"].cat.categories``) are the sample order. The group bars
    are at x = -0.1 (rows) and y = n + 1.1 (columns), the dendrogram above them.
    """
    what = "plot_distance_heatmap"
    _check_table(table, ["sample_x", "sample_y", "distance"], what)
    sx = table["sample_x"].astype(str)
    sy = table["sample_y"].astype(str)
    samples = list(dict.fromkeys(sx))
    unknown = sorted(set(sy) - set(samples))
    if unknown:
        msg = f"{what}: sample_y values {unknown[:5]} never appear in sample_x"
        raise ValueError(msg)
    if pd.DataFrame({"x": sx, "y": sy}).duplicated().any():
        msg = f"{what}: a (sample_x, sample_y) pair appears more than once"
        raise ValueError(msg)
    n = len(samples)

    segments = None
    if linkage is not None:
        segments = dendrogram_segments(_check_linkage(linkage, n), samples)
        ordered = list(segments.attrs["leaves"])
    else:
        ordered = samples
    df = pd.DataFrame(
        {
            "sample_x": pd.Categorical(sx, categories=ordered),
            "sample_y": pd.Categorical(sy, categories=ordered[::-1]),
            "distance": _numeric(table, "distance", what).to_numpy(),
        }
    )

    plot = ggplot(df) + geom_tile(aes("sample_x", "sample_y", fill="distance"))
    top_row = n + 0.5  # upper edge of what is drawn so far
    unit = max(1.0, n / _BAR_SAMPLES)  # annotation bars in tiles: visible however many samples
    tracks = ([(group_title, groups)] if groups is not None else []) + list(
        (annotations or {}).items()
    )
    if tracks:
        legend = group_title if groups is not None and not annotations else "Annotations"
        plot += _group_bars(
            ordered, tracks, legend, top=groups is not None, text_size=axis_text_size, unit=unit
        )
        if groups is not None:
            top_row = n + 0.5 + unit  # the column bar's upper edge
        if len(tracks) > 1:
            longest = max(len(t) for t, _ in tracks)
            top_row = max(top_row, n + 0.5 + 0.2 * unit + 0.12 * unit * longest)
    if segments is not None:
        # Discrete positions are 1..n: leaves at x = 1..n, the dendrogram stacked above the top
        # row (y = n + 0.5, or the group bar's n + 1.5), its height a fraction of the heatmap's.
        top = float(segments[["y", "yend"]].to_numpy().max())
        base = top_row + 0.02 * n
        scale = dendrogram_height * n / top if top > 0 else 0.0
        dendro = pd.DataFrame(
            {
                "x": segments["x"] + 1.0,
                "xend": segments["xend"] + 1.0,
                "y": base + scale * segments["y"],
                "yend": base + scale * segments["yend"],
            }
        )
        plot += geom_segment(
            aes(x="x", y="y", xend="xend", yend="yend"),
            data=dendro,
            inherit_aes=False,
            size=0.4,
            color="#333333",
        )
    plot += scale_x_discrete(expand=(0, 0))
    plot += scale_y_discrete(expand=(0, 0.1))
    if limits is not None:
        lo, hi = (float(v) for v in limits)
        if not hi > lo:
            msg = f"{what}: limits must be increasing, got {limits}"
            raise ValueError(msg)
        plot += scale_fill_cmap(cmap_name=cmap, na_value=NA_COLOR, limits=(lo, hi), oob=squish)
    else:
        plot += scale_fill_cmap(cmap_name=cmap, na_value=NA_COLOR)
    plot += coord_fixed(ratio=1.0)
    plot += labs(x="", y="", fill=label if label is not None else "distance")
    plot += theme_mrvi()
    names_shown = n <= _MAX_NAMED_SAMPLES
    plot += theme(
        axis_text_x=element_text(size=axis_text_size, rotation=90, ha="center", va="top")
        if names_shown
        else element_blank(),
        axis_text_y=element_text(size=axis_text_size) if names_shown else element_blank(),
        axis_ticks=element_blank(),
        panel_grid=element_blank(),
        panel_border=element_blank(),
    )
    return _with_title(plot, title)


# --------------------------------------------------------------------------------------------
# benchmark curves and scatters
# --------------------------------------------------------------------------------------------


def plot_pr_curves(
    table: pd.DataFrame,
    *,
    title: str | None = None,
    step: bool = True,
    prevalence: float | None = None,
    labels: Mapping[str, str] | None = None,
) -> ggplot:
    """Precision-recall curves of the DA methods, the AUC of each in the legend.

    Parameters
    ----------
    table
        Columns ``method`` (method id), ``recall``, ``precision`` (one row per curve point, as
        ``sklearn.metrics.precision_recall_curve``) and ``auc`` (the method's area, the same on
        each of its rows). Points are drawn by decreasing recall (stable, so ties keep their
        order); rows with missing recall or precision are dropped.
    title
        Plot title.
    step
        Step lines (horizontal then vertical, as scikit-learn's ``PrecisionRecallDisplay``);
        ``False`` joins the points with straight lines (the trapezoids of the AUC).
    prevalence
        Fraction of positives: the precision of a method without skill (random ranking), drawn
        as a dotted horizontal line labelled "no skill". ``None``: no line.
    labels
        Display names of some method ids, replacing :func:`method_label`'s.

    Returns
    -------
    The plot: one colour per method (:data:`METHOD_COLORS`; ``*_per_dimension`` methods, another
    estimator of the same method, dashed), legend labels such as ``"MrVI (AUC 0.912)"``, both
    axes from 0 to 1.
    """
    what = "plot_pr_curves"
    _check_table(table, ["method", "recall", "precision", "auc"], what)
    if prevalence is not None and not 0.0 < prevalence < 1.0:
        msg = f"{what}: prevalence must lie in (0, 1), got {prevalence}"
        raise ValueError(msg)
    df = pd.DataFrame(
        {
            "method": table["method"].astype(str).to_numpy(),
            "recall": _numeric(table, "recall", what).to_numpy(),
            "precision": _numeric(table, "precision", what).to_numpy(),
            "auc": _numeric(table, "auc", what).to_numpy(),
        }
    )
    aucs = _constant_per(df, "method", "auc", what)
    methods = method_order(df["method"])
    names = {m: (labels or {}).get(m, method_label(m)) for m in methods}
    legend = [
        f"{names[m]} (AUC {aucs[m]:.3f})" if np.isfinite(aucs[m]) else names[m] for m in methods
    ]
    linetypes = {m: "dashed" if m.endswith("_per_dimension") else "solid" for m in methods}
    df = df[df["recall"].notna() & df["precision"].notna()].copy()
    df["method"] = pd.Categorical(df["method"], categories=methods)
    df = df.sort_values(["method", "recall"], ascending=[True, False], kind="stable")

    line = geom_step(direction="hv", size=0.8) if step else geom_path(size=0.8)
    plot = ggplot(df, aes("recall", "precision", color="method", linetype="method"))
    if prevalence is not None:
        plot += geom_hline(yintercept=prevalence, linetype="dotted", color="#666666", size=0.6)
        plot += annotate(
            "text",
            x=0.02,
            y=prevalence,
            label=f"no skill (prevalence {prevalence:.3f})",
            ha="left",
            va="bottom",
            size=7,
            color="#444444",
        )
    plot += line
    plot += scale_color_manual(values=_method_palette(methods), breaks=methods, labels=legend)
    plot += scale_linetype_manual(values=linetypes, breaks=methods, labels=legend)
    plot += scale_x_continuous(breaks=np.linspace(0, 1, 6))
    plot += scale_y_continuous(breaks=np.linspace(0, 1, 6))
    plot += coord_cartesian(xlim=(0, 1), ylim=(0, 1))
    plot += labs(x="Recall", y="Precision", color="", linetype="")
    plot += theme_mrvi()
    plot += theme(legend_position="bottom", legend_direction="vertical")
    return _with_title(plot, title)


def plot_lfc_scatter(
    table: pd.DataFrame,
    *,
    title: str | None = None,
    scales: str = "fixed",
    point_size: float = 0.6,
    alpha: float = 0.5,
    x_label: str = "DESeq2 pseudobulk log2 fold change",
    y_label: str = "method's log2 fold change",
) -> ggplot:
    """Gene-wise LFCs of each method against the DESeq2 pseudobulk LFCs.

    Parameters
    ----------
    table
        Columns ``method`` (method id), ``lfc`` (the method's LFC of a gene), ``reference_lfc``
        (DESeq2's LFC of the same gene) and ``r`` (the method's Pearson correlation, the same on
        each of its rows). Rows with a missing LFC are dropped.
    title
        Plot title.
    scales
        Facet scales, as ``plotnine.facet_wrap``: ``"fixed"`` (default), ``"free"``,
        ``"free_x"`` or ``"free_y"``.
    point_size, alpha
        Size and opacity of the points.
    x_label, y_label
        Axis titles.

    Returns
    -------
    The plot: one facet per method (titled with its display name), the y = x line dashed, and
    ``"r = 0.89"`` (two decimals) in the top left corner of each facet.
    """
    what = "plot_lfc_scatter"
    _check_table(table, ["method", "lfc", "reference_lfc", "r"], what)
    df = pd.DataFrame(
        {
            "method": table["method"].astype(str).to_numpy(),
            "lfc": _numeric(table, "lfc", what).to_numpy(),
            "reference_lfc": _numeric(table, "reference_lfc", what).to_numpy(),
            "r": _numeric(table, "r", what).to_numpy(),
        }
    )
    rs = _constant_per(df, "method", "r", what)
    methods = method_order(df["method"])
    labels = [method_label(m) for m in methods]
    df = df[np.isfinite(df["lfc"]) & np.isfinite(df["reference_lfc"])].copy()
    if len(df) == 0:
        msg = f"{what}: no row has finite lfc and reference_lfc"
        raise ValueError(msg)
    df["facet"] = pd.Categorical(df["method"].map(method_label), categories=labels)
    df["method"] = pd.Categorical(df["method"], categories=methods)

    # Annotation in the top left corner of each facet (of the shared or the facet's range).
    free_x = scales in ("free", "free_x")
    free_y = scales in ("free", "free_y")
    ann = []
    for m, label in zip(methods, labels, strict=True):
        sub = df[df["method"] == m]
        if len(sub) == 0:
            continue
        xs = sub if free_x else df
        ys = sub if free_y else df
        text = f"r = {rs[m]:.2f}" if np.isfinite(rs[m]) else "r = n/a"
        ann.append((label, float(xs["reference_lfc"].min()), float(ys["lfc"].max()), text))
    ann_df = pd.DataFrame(ann, columns=["facet", "x", "y", "text"])
    ann_df["facet"] = pd.Categorical(ann_df["facet"], categories=labels)

    plot = (
        ggplot(df, aes("reference_lfc", "lfc"))
        + geom_abline(intercept=0.0, slope=1.0, linetype="dashed", color="#666666", size=0.5)
        + geom_point(aes(color="method"), size=point_size, alpha=alpha, stroke=0)
        + geom_text(
            aes(x="x", y="y", label="text"),
            data=ann_df,
            inherit_aes=False,
            ha="left",
            va="top",
            size=8,
        )
        + scale_color_manual(values=_method_palette(methods), guide=None)
        + facet_wrap("facet", scales=scales)
        + labs(x=x_label, y=y_label)
        + theme_mrvi()
    )
    return _with_title(plot, title)


def _group_values(
    table: pd.DataFrame, group: str, value: str, what: str, *, sort: bool
) -> pd.DataFrame:
    """Return the rows with a finite value and a group: ``group`` (categorical) and ``value``.

    Groups in :func:`_levels` order; a ValueError naming ``what`` when no row is left.
    """
    _check_table(table, [group, value], what)
    values = _numeric(table, value, what).to_numpy()
    keep = np.isfinite(values) & table[group].notna().to_numpy()
    if not keep.any():
        msg = f"{what}: no row has a finite {value!r} and a {group!r}"
        raise ValueError(msg)
    levels = _levels(table[group][keep], sort=sort)
    return pd.DataFrame(
        {
            "group": pd.Categorical(table[group][keep].astype(str), categories=levels),
            "value": values[keep],
        }
    )


def plot_distribution(
    table: pd.DataFrame,
    group: str,
    value: str,
    *,
    title: str | None = None,
    hline: float | None = 0.0,
    x_label: str | None = None,
    y_label: str | None = None,
    limit_quantiles: tuple[float, float] | None = None,
) -> ggplot:
    """Distribution of a value per group (e.g. DA log ratios per cell subset): violin + box.

    Parameters
    ----------
    table
        Columns ``group`` and ``value`` (numeric; rows with a missing value are dropped).
    group
        Column of the groups, one violin each (category order for a categorical column,
        else ``A, B, C, Other`` when the groups are the cell subsets, else first appearance).
    value
        Numeric column of the values.
    title
        Plot title.
    hline
        Height of a dashed horizontal reference line; ``None`` for none.
    x_label, y_label
        Axis titles (default: the column names).
    limit_quantiles
        ``(low, high)`` quantiles of all values that bound the value axis (e.g. ``(0.005,
        0.995)``), so that a few extreme values do not flatten the violins. The densities and
        boxes are still computed from every value (the axis zooms, nothing is dropped) and a
        caption says how many values lie outside. ``None``: the full range.

    Returns
    -------
    The plot: a violin (scaled to equal width) per group with at least two distinct values,
    filled with the group's colour, and a narrow box plot (no outlier points) inside.
    """
    what = "plot_distribution"
    df = _group_values(table, group, value, what, sort=False)
    levels = list(df["group"].cat.categories)
    colors = discrete_colors(levels)
    plot = ggplot(df, aes("group", "value"))
    if hline is not None:
        plot += geom_hline(yintercept=float(hline), linetype="dashed", color="#666666", size=0.5)
    # A density needs two distinct values: other groups get the box plot only.
    n_distinct = df.groupby("group", observed=True)["value"].transform("nunique")
    plot += geom_violin(
        aes(fill="group"), data=df[n_distinct >= 2], scale="width", alpha=0.7, size=0.3
    )
    plot += geom_boxplot(width=0.15, outlier_alpha=0.0, fill="white", size=0.3)
    plot += scale_fill_manual(values=colors, guide=None)
    caption = None
    if limit_quantiles is not None:
        q_lo, q_hi = limit_quantiles
        if not 0.0 <= q_lo < q_hi <= 1.0:
            msg = f"{what}: limit_quantiles must be 0 <= low < high <= 1, got {limit_quantiles}"
            raise ValueError(msg)
        lo, hi = (float(v) for v in np.quantile(df["value"], [q_lo, q_hi]))
        if hline is not None:
            lo, hi = min(lo, float(hline)), max(hi, float(hline))
        pad = 0.05 * (hi - lo) if hi > lo else 1.0
        outside = int(((df["value"] < lo) | (df["value"] > hi)).sum())
        plot += coord_cartesian(ylim=(lo - pad, hi + pad))
        caption = textwrap.fill(
            f"Axis clipped to the {100 * q_lo:g}-{100 * q_hi:g} % quantiles of all values: "
            f"{outside:,} of {len(df):,} lie outside (violins and boxes use every value).",
            80,
        )
    plot += labs(x=group if x_label is None else x_label, y=value if y_label is None else y_label)
    if caption:
        plot += labs(caption=caption)
    plot += theme_mrvi()
    if caption:
        plot += theme(plot_caption=element_text(size=6.5, ha="left", color="#444444"))
    return _with_title(plot, title)


# --------------------------------------------------------------------------------------------
# tables
# --------------------------------------------------------------------------------------------


def _format_value(v: float, digits: int) -> str:
    if not np.isfinite(v):
        return "–"
    if abs(v) >= 10**digits:
        return f"{v:.0f}"
    return f"{v:.{digits}g}"


def plot_metric_table(
    table: pd.DataFrame,
    *,
    title: str | None = None,
    digits: int = 3,
    lower_is_better: Collection[str] = LOWER_IS_BETTER,
    text_size: float = 7.0,
) -> ggplot:
    """Benchmark summary as a coloured table: methods as rows, metrics as columns.

    Parameters
    ----------
    table
        Tidy metrics: columns ``method`` (method id), ``metric`` and ``value`` (numeric, NaN
        allowed), each (method, metric) pair at most once. Absent pairs show as missing.
    title
        Plot title.
    digits
        Significant digits of the printed values (values of ``10**digits`` and more are printed
        as integers).
    lower_is_better
        Metrics whose best value is the smallest (e.g. a Robinson-Foulds distance): their column
        is marked ↓ (the others ↑) and their fill reversed, so that a darker tile always means a
        better method.
    text_size
        Font size of the values.

    Returns
    -------
    The plot: rows in the canonical method order (display names, the first at the top),
    metric columns in order of first appearance, titled by :func:`metric_label` (display name
    and direction); the fill of a tile is the value rescaled to 0..1 within its metric (min to
    max). A column with fewer than two distinct values is not shaded (white: nothing to rank);
    missing values are printed ``"–"`` on grey. A subtitle explains the arrows and the shading.
    """
    what = "plot_metric_table"
    _check_table(table, ["method", "metric", "value"], what)
    df = pd.DataFrame(
        {
            "method": table["method"].astype(str).to_numpy(),
            "metric": table["metric"].astype(str).to_numpy(),
            "value": _numeric(table, "value", what).to_numpy(),
        }
    )
    if df.duplicated(["method", "metric"]).any():
        msg = f"{what}: a (method, metric) pair appears more than once"
        raise ValueError(msg)
    methods = method_order(df["method"])
    metrics = list(dict.fromkeys(df["metric"]))
    grid = pd.MultiIndex.from_product([methods, metrics], names=["method", "metric"])
    df = df.set_index(["method", "metric"]).reindex(grid).reset_index()
    df["value"] = df["value"].where(np.isfinite(df["value"]))

    lo = df.groupby("metric")["value"].transform("min")
    hi = df.groupby("metric")["value"].transform("max")
    span = hi - lo
    fill = (df["value"] - lo) / span.where(span > 0)  # NaN: missing, or nothing to rank
    flip = df["metric"].isin(list(lower_is_better))
    df["fill"] = fill.where(~flip, 1.0 - fill)
    df["text"] = [_format_value(v, digits) for v in df["value"].to_numpy()]
    labels = [method_label(m) for m in methods]
    df["method_label"] = pd.Categorical(df["method"].map(method_label), categories=labels[::-1])
    columns = [metric_label(m, lower_is_better=lower_is_better) for m in metrics]
    df["metric_label"] = pd.Categorical(
        df["metric"].map(dict(zip(metrics, columns, strict=True))), categories=columns
    )
    df["metric"] = pd.Categorical(df["metric"], categories=metrics)
    missing = df["value"].isna()

    plot = (
        ggplot(df, aes("metric_label", "method_label"))
        + geom_tile(fill="white", color="white", size=0.8)
        + geom_tile(aes(fill="fill"), data=df[df["fill"].notna()], color="white", size=0.8)
        + geom_tile(data=df[missing], fill=NA_COLOR, color="white", size=0.8)
        + geom_text(aes(label="text"), size=text_size, color="#222222")
        + scale_fill_gradient(
            low="#F7FBFF", high="#6BAED6", limits=(0.0, 1.0), na_value=NA_COLOR, guide=None
        )
        + scale_x_discrete(expand=(0, 0))
        + scale_y_discrete(expand=(0, 0))
        + labs(
            x="",
            y="",
            subtitle="↑ higher is better, ↓ lower is better; darker = better within a column",
        )
        + theme_mrvi()
        + theme(
            axis_ticks=element_blank(),
            panel_grid=element_blank(),
            panel_border=element_blank(),
            axis_text_x=element_text(rotation=30, ha="right"),
            plot_subtitle=element_text(size=7, color="#444444", ha="left"),
        )
    )
    return _with_title(plot, title)


def plot_runtime(table: pd.DataFrame, *, title: str | None = None) -> ggplot:
    """Wall time and peak memory of the workflow's rules, as horizontal bars.

    Parameters
    ----------
    table
        Columns ``rule``, ``seconds`` (wall time) and ``max_rss_mib`` (peak resident memory,
        MiB), one row per rule or per job (e.g. from Snakemake's benchmark files; non-numeric
        entries such as ``"-"`` count as missing). Jobs of a rule are aggregated: the sum of
        their seconds, the maximum of their memory.
    title
        Plot title.

    Returns
    -------
    The plot: two facets (``"wall time (s)"``, ``"peak memory (MiB)"``) with free value axes,
    one bar per rule, rules sorted by total wall time (the longest at the top). ``plot.data``
    holds the aggregated table in long form (columns ``rule``, ``quantity``, ``value``).
    """
    what = "plot_runtime"
    _check_table(table, ["rule", "seconds", "max_rss_mib"], what)
    df = pd.DataFrame(
        {
            "rule": table["rule"].astype(str).to_numpy(),
            "seconds": pd.to_numeric(table["seconds"], errors="coerce").to_numpy(np.float64),
            "max_rss_mib": pd.to_numeric(table["max_rss_mib"], errors="coerce").to_numpy(
                np.float64
            ),
        }
    )
    per_rule = df.groupby("rule", sort=False).agg(
        seconds=("seconds", lambda s: s.sum(min_count=1)),
        max_rss_mib=("max_rss_mib", "max"),
    )
    per_rule = per_rule.sort_values("seconds", ascending=True, kind="stable", na_position="first")
    quantities = {"seconds": "wall time (s)", "max_rss_mib": "peak memory (MiB)"}
    long = (
        per_rule.reset_index()
        .melt(id_vars="rule", value_vars=list(quantities), var_name="quantity")
        .assign(quantity=lambda d: d["quantity"].map(quantities))
    )
    long["rule"] = pd.Categorical(long["rule"], categories=list(per_rule.index))
    long["quantity"] = pd.Categorical(long["quantity"], categories=list(quantities.values()))
    long = long[long["value"].notna()].reset_index(drop=True)
    if len(long) == 0:
        msg = f"{what}: no numeric seconds or max_rss_mib"
        raise ValueError(msg)

    plot = (
        ggplot(long, aes("rule", "value"))
        + geom_col(fill=METHOD_COLORS["mrvi"], width=0.7)
        + coord_flip()
        + facet_wrap("quantity", scales="free_x")
        + scale_y_continuous(expand=(0, 0, 0.05, 0))
        + labs(x="", y="")
        + theme_mrvi()
        + theme(panel_grid_major_y=element_blank())
    )
    return _with_title(plot, title)


# --------------------------------------------------------------------------------------------
# cohort panels: alluvial flows, per-group values
# --------------------------------------------------------------------------------------------


def _smoothstep(t: np.ndarray) -> np.ndarray:
    return t * t * (3.0 - 2.0 * t)


def plot_alluvial(
    table: pd.DataFrame,
    left: str,
    right: str,
    *,
    weight: str = "n",
    min_fraction: float = 0.01,
    left_order: Sequence[str] | None = None,
    right_order: Sequence[str] | None = None,
    title: str | None = None,
    left_title: str | None = None,
    right_title: str | None = None,
) -> ggplot:
    """Alluvial (Sankey) diagram of how the categories of ``left`` flow into those of ``right``.

    Parameters
    ----------
    table
        One row per (left, right) pair (or per cell, with ``weight`` a column of ones): columns
        ``left``, ``right`` and the numeric ``weight``; pairs are summed.
    left, right
        Columns of the two categorical axes (e.g. author cell types and stratification
        clusters).
    weight
        Column of the pairs' weights (cell counts).
    min_fraction
        Pairs below this fraction of the total weight are dropped (the paper's 1 %); the caption
        says how much was dropped.
    left_order, right_order
        Order of the categories top to bottom (default: left by decreasing weight, right by the
        weighted mean position of its inflows, which keeps crossings few). Categories not listed
        follow in the default order.
    title, left_title, right_title
        Plot title and the axes' titles (default: the column names).

    Returns
    -------
    The plot: a stacked bar per axis (categories separated by small gaps, labelled with their
    kept weight), ribbons between them with smooth (smoothstep) edges, filled by the left
    category.
    """
    what = "plot_alluvial"
    _check_table(table, [left, right, weight], what)
    if not 0.0 <= min_fraction < 1.0:
        msg = f"{what}: min_fraction must lie in [0, 1), got {min_fraction}"
        raise ValueError(msg)
    w = _numeric(table, weight, what)
    pairs = (
        pd.DataFrame({"l": table[left].astype(str), "r": table[right].astype(str), "w": w})
        .dropna()
        .groupby(["l", "r"], sort=False, as_index=False)["w"]
        .sum()
    )
    total = float(pairs["w"].sum())
    if total <= 0:
        msg = f"{what}: the weights sum to {total}"
        raise ValueError(msg)
    kept = pairs[pairs["w"] >= min_fraction * total].copy()
    if kept.empty:
        msg = f"{what}: every pair is below {min_fraction:.1%} of the total"
        raise ValueError(msg)
    dropped = total - float(kept["w"].sum())

    def order(column: str, given: Sequence[str] | None, default: list[str]) -> list[str]:
        present = list(dict.fromkeys(kept[column]))
        first = [str(c) for c in (given or []) if str(c) in present]
        return first + [c for c in default if c not in first and c in present]

    l_sizes = kept.groupby("l")["w"].sum()
    l_levels = order("l", left_order, sorted(l_sizes.index, key=lambda c: (-l_sizes[c], c)))
    # each right category at the weighted mean position of its inflows: few crossings
    position = kept["l"].map(l_levels.index) * kept["w"]
    barycentre = position.groupby(kept["r"]).sum() / kept.groupby("r")["w"].sum()
    r_levels = order("r", right_order, sorted(barycentre.index, key=lambda c: (barycentre[c], c)))
    gap = 0.02 * float(kept["w"].sum())

    def stack(levels: list[str], sizes: pd.Series) -> dict[str, float]:
        tops, y = {}, 0.0
        for c in levels:
            tops[c] = y  # distance from the top
            y += float(sizes[c]) + gap
        return tops

    l_top = stack(l_levels, kept.groupby("l")["w"].sum())
    r_top = stack(r_levels, kept.groupby("r")["w"].sum())
    height = max(
        max(l_top[c] + kept.loc[kept["l"] == c, "w"].sum() for c in l_levels),
        max(r_top[c] + kept.loc[kept["r"] == c, "w"].sum() for c in r_levels),
    )
    kept["li"] = kept["l"].map(l_levels.index)
    kept["ri"] = kept["r"].map(r_levels.index)
    # within a left bar, flows in the order of their right category, and vice versa
    l_off = kept.sort_values(["li", "ri"]).groupby("l")["w"].cumsum() - kept["w"]
    r_off = kept.sort_values(["ri", "li"]).groupby("r")["w"].cumsum() - kept["w"]
    kept["l_start"] = [l_top[c] for c in kept["l"]] + l_off.reindex(kept.index)
    kept["r_start"] = [r_top[c] for c in kept["r"]] + r_off.reindex(kept.index)
    bar = 0.06
    t = np.linspace(0.0, 1.0, 40)
    s = _smoothstep(t)
    ribbons = []
    for i, row in enumerate(kept.itertuples()):
        top = row.l_start + (row.r_start - row.l_start) * s
        ribbons.append(
            pd.DataFrame(
                {
                    "x": bar + t * (1.0 - 2 * bar),
                    "ymax": height - top,
                    "ymin": height - top - row.w,
                    "flow": i,
                    "fill": row.l,
                }
            )
        )
    flows = pd.concat(ribbons, ignore_index=True)
    flows["fill"] = pd.Categorical(flows["fill"], categories=l_levels)
    colors = discrete_colors(l_levels)

    def bars(levels: list[str], tops: dict[str, float], col: str, x0: float) -> pd.DataFrame:
        sizes = kept.groupby(col)["w"].sum()
        return pd.DataFrame(
            {
                "xmin": x0,
                "xmax": x0 + bar,
                "ymax": [height - tops[c] for c in levels],
                "ymin": [height - tops[c] - sizes[c] for c in levels],
                "label": [f"{c} ({int(round(sizes[c])):,})" for c in levels],
                "category": levels,
            }
        )

    lb = bars(l_levels, l_top, "l", 0.0)
    rb = bars(r_levels, r_top, "r", 1.0 - bar)
    plot = (
        ggplot()
        + geom_ribbon(
            aes(x="x", ymin="ymin", ymax="ymax", group="flow", fill="fill"),
            data=flows,
            alpha=0.55,
            size=0,
        )
        + geom_rect(
            aes(xmin="xmin", xmax="xmax", ymin="ymin", ymax="ymax", fill="category"),
            data=lb.assign(category=pd.Categorical(lb["category"], categories=l_levels)),
            color="#333333",
            size=0.2,
        )
        + geom_rect(
            aes(xmin="xmin", xmax="xmax", ymin="ymin", ymax="ymax"),
            data=rb,
            fill="#666666",
            color="#333333",
            size=0.2,
        )
        + geom_text(
            aes(x="xmin", y="(ymin + ymax) / 2", label="label"),
            data=lb.assign(xmin=-0.02),
            ha="right",
            size=7,
        )
        + geom_text(
            aes(x="xmax", y="(ymin + ymax) / 2", label="label"),
            data=rb.assign(xmax=1.02),
            ha="left",
            size=7,
        )
        + annotate(
            "text", x=bar / 2, y=height * 1.03, label=left_title or left, size=8, ha="center"
        )
        + annotate(
            "text", x=1 - bar / 2, y=height * 1.03, label=right_title or right, size=8, ha="center"
        )
        + scale_fill_manual(values=colors, breaks=l_levels, guide=None)
        + scale_x_continuous(limits=(-0.55, 1.45))
        + labs(x="", y="")
        + theme_mrvi()
        + theme(
            axis_text=element_blank(),
            axis_ticks=element_blank(),
            panel_grid=element_blank(),
            panel_border=element_blank(),
        )
    )
    if dropped > 0:
        plot += labs(
            caption=f"Pairs under {min_fraction:.0%} of all {int(round(total)):,} cells are "
            f"not shown ({int(round(dropped)):,} cells)."
        )
        plot += theme(plot_caption=element_text(size=6.5, ha="left", color="#444444"))
    return _with_title(plot, title)


def plot_group_values(
    table: pd.DataFrame,
    group: str,
    value: str,
    *,
    title: str | None = None,
    subtitle: str | None = None,
    x_label: str | None = None,
    y_label: str | None = None,
    seed: int = 0,
) -> ggplot:
    """One value per sample, by sample group: box (5-25-50-75-95th percentiles) and the samples.

    Parameters
    ----------
    table
        One row per sample: the ``group`` column and the numeric ``value`` (rows with a missing
        value or group are dropped).
    group, value
        Columns of the groups (category order for a categorical column, else sorted) and the
        values.
    title, subtitle
        Plot title and a line under it (e.g. the test's p-value).
    x_label, y_label
        Axis titles (default: the column names).
    seed
        Seed of the horizontal jitter of the points.

    Returns
    -------
    The plot, as the paper's box plots: the box spans the quartiles around the median, the
    whiskers the 5th to 95th percentiles; every sample is a point.
    """
    df = _group_values(table, group, value, "plot_group_values", sort=True)
    levels = list(df["group"].cat.categories)
    q = df.groupby("group", observed=True)["value"].quantile([0.05, 0.25, 0.5, 0.75, 0.95])
    boxes = q.unstack().reset_index()
    boxes.columns = ["group", "ymin", "lower", "middle", "upper", "ymax"]
    boxes["group"] = pd.Categorical(boxes["group"].astype(str), categories=levels)
    rng = np.random.default_rng(seed)
    df["x"] = df["group"].cat.codes.to_numpy() + 1 + rng.uniform(-0.15, 0.15, len(df))
    colors = discrete_colors(levels)
    plot = (
        ggplot()
        + geom_boxplot(
            aes(
                x="group",
                ymin="ymin",
                lower="lower",
                middle="middle",
                upper="upper",
                ymax="ymax",
                fill="group",
            ),
            data=boxes,
            stat="identity",
            width=0.5,
            alpha=0.5,
            size=0.4,
        )
        + geom_point(aes(x="x", y="value", color="group"), data=df, size=1.8, alpha=0.9)
        + scale_fill_manual(values=colors, guide=None)
        + scale_color_manual(values=colors, guide=None)
        + labs(x=x_label or group, y=y_label or value)
        + theme_mrvi()
    )
    if subtitle:
        title = f"{title}\n{subtitle}" if title else subtitle
    return _with_title(plot, title)


# --------------------------------------------------------------------------------------------
# saving
# --------------------------------------------------------------------------------------------


def save_figure(
    plot: ggplot | Compose,
    path: str | Path,
    *,
    width: float = 6.0,
    height: float = 4.0,
    dpi: int = 150,
) -> Path:
    """Write a plot to a PNG, PDF or SVG file (chosen by the suffix), quietly.

    Parameters
    ----------
    plot
        The plot, or a composition of plots (``p1 | p2``, ``p1 / p2``).
    path
        Output file; its suffix (``.png``, ``.pdf`` or ``.svg``, any case) sets the format.
        Missing parent folders are created.
    width, height
        Size in inches.
    dpi
        Resolution of PNGs.

    Returns
    -------
    ``path`` as a :class:`~pathlib.Path`.

    Raises
    ------
    ValueError
        For any other suffix.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FIGURE_SUFFIXES:
        msg = f"save_figure: unsupported file suffix {path.suffix!r}; use one of {FIGURE_SUFFIXES}"
        raise ValueError(msg)
    path.parent.mkdir(parents=True, exist_ok=True)
    kwargs = {"metadata": _SAVE_METADATA[suffix]} if suffix in _SAVE_METADATA else {}
    if isinstance(plot, Compose):
        # a composition takes its size from the theme of its last plot
        figure = (plot + theme(figure_size=(width, height), dpi=dpi)).draw()
        figure.savefig(path, format=suffix[1:], dpi=dpi, **kwargs)
        import matplotlib.pyplot as plt

        plt.close(figure)
        return path
    plot.save(
        path,
        format=suffix[1:],
        width=width,
        height=height,
        units="in",
        dpi=dpi,
        verbose=False,
        **kwargs,
    )
    return path
