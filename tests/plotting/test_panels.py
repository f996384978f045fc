"""Tests of mrvi_repro.plotting: every panel saves, validates its table and shows what it should."""

from __future__ import annotations

import ast
import struct
import warnings
from pathlib import Path

import matplotlib.text
import numpy as np
import pandas as pd
import pytest
from plotnine import ggplot
from scipy.cluster import hierarchy
from scipy.spatial.distance import pdist, squareform

from mrvi_repro import plotting
from mrvi_repro.plotting import (
    METHOD_COLORS,
    METHOD_LABELS,
    SUBSET_COLORS,
    dendrogram_segments,
    discrete_colors,
    method_label,
    method_order,
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
    theme_mrvi,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# --- small tables ---------------------------------------------------------------------------


def embedding_table(n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    table = pd.DataFrame(
        {
            "x": rng.normal(size=2 * n),
            "y": rng.normal(size=2 * n),
            "panel": ["MrVI u"] * n + ["MrVI z"] * n,
            "subset": rng.choice(["Other", "C", "A", "B"], size=2 * n),
            "log_ratio": rng.normal(scale=2.0, size=2 * n),
        }
    )
    table.loc[:4, "subset"] = None
    table.loc[:2, "log_ratio"] = np.nan
    return table


def distance_table(k: int = 7) -> tuple[pd.DataFrame, np.ndarray, list[str]]:
    rng = np.random.default_rng(1)
    points = rng.normal(size=(k, 3))
    dist = squareform(pdist(points))
    names = [f"sample_{i}" for i in range(k)]
    table = pd.DataFrame(
        [(names[i], names[j], dist[i, j]) for i in range(k) for j in range(k)],
        columns=["sample_x", "sample_y", "distance"],
    )
    return table, hierarchy.linkage(pdist(points), method="average"), names


def pr_table() -> pd.DataFrame:
    rng = np.random.default_rng(2)
    rows = []
    for method, auc in [("milo", 0.6543), ("mrvi", 0.91249), ("my_method", 0.5)]:
        recall = np.sort(rng.random(8))[::-1]
        recall[-1] = 0.0
        precision = np.clip(rng.random(8) + 0.2, 0, 1)
        rows.append(pd.DataFrame({"method": method, "recall": recall, "precision": precision}))
        rows[-1]["auc"] = auc
    return pd.concat(rows, ignore_index=True)


def lfc_table() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    ref = rng.normal(size=50)
    return pd.concat(
        [
            pd.DataFrame(
                {"method": m, "lfc": ref * a + rng.normal(size=50), "reference_lfc": ref, "r": r}
            )
            for m, a, r in [("mrvi", 1.0, 0.8912), ("milode", 0.3, 0.25)]
        ],
        ignore_index=True,
    )


def distribution_table() -> pd.DataFrame:
    rng = np.random.default_rng(4)
    return pd.DataFrame(
        {"subset": rng.choice(["Other", "B", "A", "C"], size=200), "lr": rng.normal(size=200)}
    )


def metric_table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "method": ["milo", "mrvi", "mrvi", "milo", "composition_pca"],
            "metric": ["DA AUC", "DA AUC", "RF", "RF", "RF"],
            "value": [0.7, 0.91234, 0.25, np.nan, 0.75],
        }
    )


def sample_groups(k: int = 7) -> dict[str, str]:
    # sample_6 has no group: a blank in the bars
    return {f"sample_{i}": f"G{i % 3 + 1}" for i in range(k - 1)}


def sample_annotations(k: int = 7) -> dict[str, dict[str, object]]:
    # a numeric track with a non-number (healthy samples), and a categorical one
    days = {f"sample_{i}": str(2 + 3 * i) for i in range(k - 2)}
    days |= {f"sample_{k - 2}": "Healthy", f"sample_{k - 1}": "Healthy"}
    status = {f"sample_{i}": "Covid" if i < k - 2 else "Healthy" for i in range(k)}
    return {"days": days, "status": status}


def alluvial_table() -> pd.DataFrame:
    # cells: B -> cluster 2; CD14/CD16 -> cluster 0; T -> cluster 1; a few strays
    return pd.DataFrame(
        {
            "label": ["CD14", "CD16", "T", "B", "T", "CD14"],
            "cluster": ["0", "0", "1", "2", "0", "2"],
            "n": [500.0, 150.0, 800.0, 300.0, 40.0, 5.0],
        }
    )


def group_values_table() -> pd.DataFrame:
    return pd.DataFrame(
        {"group": ["g1"] * 6 + ["g2"] * 6 + ["g3"], "days": [*range(2, 8), *range(15, 21), np.nan]}
    )


def runtime_table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "rule": ["fit_mrvi", "milo", "fit_mrvi", "simulate"],
            "seconds": [100.0, 30.0, 60.0, 5.0],
            "max_rss_mib": [2000.0, 500.0, 3000.0, 100.0],
        }
    )


def drawn_texts(plot: ggplot) -> list[str]:
    figure = plot.draw()
    return [t.get_text() for t in figure.findobj(matplotlib.text.Text) if t.get_text()]


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == PNG_MAGIC
    return struct.unpack(">II", header[16:24])


BUILDERS = {
    "embedding_categorical": lambda: plot_embedding(embedding_table(), "subset", title="subsets"),
    "embedding_numeric": lambda: plot_embedding(embedding_table(), "log_ratio"),
    "embedding_diverging": lambda: plot_embedding(embedding_table(), "log_ratio", diverging=True),
    "heatmap": lambda: plot_distance_heatmap(distance_table()[0], title="d"),
    "heatmap_linkage": lambda: plot_distance_heatmap(*distance_table()[:2], label="MrVI"),
    "heatmap_groups": lambda: plot_distance_heatmap(
        *distance_table()[:2], groups=sample_groups(), limits=(0.0, 5.0)
    ),
    "pr_curves": lambda: plot_pr_curves(pr_table()),
    "pr_curves_no_skill": lambda: plot_pr_curves(pr_table(), prevalence=0.3),
    "lfc_scatter": lambda: plot_lfc_scatter(lfc_table()),
    "distribution": lambda: plot_distribution(distribution_table(), "subset", "lr", title="DA"),
    "distribution_clipped": lambda: plot_distribution(
        distribution_table(), "subset", "lr", limit_quantiles=(0.01, 0.99)
    ),
    "heatmap_annotations": lambda: plot_distance_heatmap(
        *distance_table()[:2], groups=sample_groups(), annotations=sample_annotations()
    ),
    "alluvial": lambda: plot_alluvial(alluvial_table(), "label", "cluster", title="flows"),
    "group_values": lambda: plot_group_values(
        group_values_table(), "group", "days", title="onset", subtitle="p = 0.01"
    ),
    "metric_table": lambda: plot_metric_table(metric_table()),
    "runtime": lambda: plot_runtime(runtime_table()),
}


# --- saving ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(BUILDERS))
def test_every_panel_saves_a_png(name, tmp_path):
    plot = BUILDERS[name]()
    assert isinstance(plot, ggplot)
    path = tmp_path / "sub" / f"{name}.png"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "Saving ..." message, no removed-rows warning
        assert save_figure(plot, path, width=3.0, height=2.0, dpi=100) == path
    assert path.stat().st_size > 1000
    assert png_size(path) == (300, 200)


@pytest.mark.parametrize("suffix", [".pdf", ".svg", ".PNG"])
def test_save_figure_other_formats(suffix, tmp_path):
    path = save_figure(BUILDERS["runtime"](), tmp_path / f"runtime{suffix}", width=3, height=2)
    head = path.read_bytes()[:200]
    expected = {".pdf": b"%PDF", ".svg": b"<svg", ".PNG": PNG_MAGIC}[suffix]
    assert expected in head if suffix == ".svg" else head.startswith(expected)


@pytest.mark.parametrize("suffix", [".jpg", ".txt", ""])
def test_save_figure_rejects_other_suffixes(suffix, tmp_path):
    with pytest.raises(ValueError, match="suffix"):
        save_figure(BUILDERS["runtime"](), tmp_path / f"figure{suffix}")
    assert not list(tmp_path.iterdir())


# --- validation -----------------------------------------------------------------------------

CALLS = {
    "embedding": (lambda t: plot_embedding(t, "subset"), embedding_table, "panel"),
    "heatmap": (plot_distance_heatmap, lambda: distance_table()[0], "distance"),
    "pr_curves": (plot_pr_curves, pr_table, "auc"),
    "lfc_scatter": (plot_lfc_scatter, lfc_table, "reference_lfc"),
    "distribution": (lambda t: plot_distribution(t, "subset", "lr"), distribution_table, "lr"),
    "metric_table": (plot_metric_table, metric_table, "metric"),
    "runtime": (plot_runtime, runtime_table, "max_rss_mib"),
}


@pytest.mark.parametrize("name", list(CALLS))
def test_missing_column_is_named(name):
    function, make_table, column = CALLS[name]
    table = make_table().drop(columns=column)
    with pytest.raises(ValueError, match="missing required column") as err:
        function(table)
    message = str(err.value)
    assert repr(column) in message.split(";")[0]
    for present in table.columns:  # the columns present are listed too
        assert repr(present) in message.split(";")[1]


@pytest.mark.parametrize("name", list(CALLS))
def test_empty_table_is_rejected(name):
    function, make_table, _ = CALLS[name]
    with pytest.raises(ValueError, match="empty"):
        function(make_table().iloc[:0])


def test_non_dataframe_is_rejected():
    with pytest.raises(TypeError, match="DataFrame"):
        plot_runtime(runtime_table().to_dict())


def test_non_numeric_value_column_is_rejected():
    table = distribution_table().assign(lr="high")
    with pytest.raises(ValueError, match="'lr' must be numeric"):
        plot_distribution(table, "subset", "lr")


# --- theme ----------------------------------------------------------------------------------


def test_method_labels_and_colors():
    assert METHOD_LABELS["mrvi"] == "MrVI"
    assert METHOD_LABELS["composition_scvi"] == "Composition (scVI)"
    assert METHOD_LABELS["deseq2"] == "DESeq2 pseudobulk"
    assert METHOD_LABELS["mrvi_per_dimension"] == "MrVI, per-dimension DA"
    assert method_label("milode") == "miloDE"
    assert method_label("unknown_method") == "unknown_method"
    assert set(METHOD_COLORS) == set(METHOD_LABELS)
    assert len(set(METHOD_COLORS.values())) == len(METHOD_COLORS)
    assert method_order(["x", "milo", "mrvi", "x", "a"]) == ["mrvi", "milo", "x", "a"]


def test_discrete_colors():
    assert discrete_colors(["Other", "A"]) == {"Other": SUBSET_COLORS["Other"], "A": "#D55E00"}
    many = discrete_colors([f"c{i}" for i in range(30)])
    assert len(set(many.values())) == 30
    assert theme_mrvi(12) is not None


def test_module_imports_no_stage():
    """Plotting draws tables: of the package it imports only the shared names of settings/ and
    the floor below it, metrics/ (the cohort figure's tests)."""

    def allowed(module: str) -> bool:
        return not module.startswith("mrvi_repro") or module.startswith(
            ("mrvi_repro.settings", "mrvi_repro.metrics")
        )

    folder = Path(plotting.__file__).parent
    for source in folder.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert node.level <= 1, f"{source.name} imports from a parent package"
                assert allowed(node.module or ""), source.name
            elif isinstance(node, ast.Import):
                assert all(allowed(a.name) for a in node.names), source.name


# --- embeddings -----------------------------------------------------------------------------


def test_embedding_categorical():
    table = embedding_table()
    plot = plot_embedding(table, "subset")
    na_layer, value_layer = plot.layers
    assert na_layer.geom.aes_params["color"] == plotting.NA_COLOR
    assert len(na_layer.geom.data) == 5  # the 5 cells without a subset, drawn first
    assert len(value_layer.geom.data) == len(table) - 5
    scale = plot.scales.get_scales("color")
    assert list(scale.breaks) == ["A", "B", "C", "Other"]
    assert scale.palette(4) == {k: SUBSET_COLORS[k] for k in ["A", "B", "C", "Other"]}
    assert plot.guides.color.override_aes["size"] > 1
    # shuffled deterministically: not the input order, the same order every time
    data = value_layer.geom.data
    again = plot_embedding(table, "subset").layers[1].geom.data
    pd.testing.assert_frame_equal(data, again)
    assert not data["x"].is_monotonic_increasing
    kept = table[table["subset"].notna()]
    assert not np.array_equal(data["x"].to_numpy(), kept["x"].to_numpy())
    assert sorted(data["x"]) == sorted(kept["x"])
    assert list(data["facet"].cat.categories) == ["MrVI u", "MrVI z"]


def test_embedding_numeric_and_diverging():
    table = embedding_table()
    numeric = plot_embedding(table, "log_ratio")
    assert len(numeric.layers) == 2
    assert type(numeric.scales.get_scales("color")).__name__ == "scale_color_cmap"
    diverging = plot_embedding(table, "log_ratio", diverging=True)
    low, high = diverging.scales.get_scales("color").limits
    m = np.nanmax(np.abs(table["log_ratio"]))
    assert low == pytest.approx(-m) and high == pytest.approx(m)
    with pytest.raises(ValueError, match="numeric"):
        plot_embedding(table, "subset", diverging=True)
    # robust limits: an extreme cell does not set the scale
    spiked = table.copy()
    spiked.loc[spiked.index[0], "log_ratio"] = 1e3
    robust = plot_embedding(spiked, "log_ratio", diverging=True, limit_quantile=0.9)
    low, high = robust.scales.get_scales("color").limits
    q = np.nanquantile(np.abs(spiked["log_ratio"]), 0.9)
    assert high == pytest.approx(q) and low == pytest.approx(-q) and q < 10
    clipped = plot_embedding(spiked, "log_ratio", limit_quantile=0.9)
    assert clipped.scales.get_scales("color").limits[1] == pytest.approx(
        np.nanquantile(spiked["log_ratio"], 0.9)
    )
    with pytest.raises(ValueError, match="limit_quantile"):
        plot_embedding(table, "log_ratio", limit_quantile=0.0)


def test_embedding_without_facet_and_bool_colour():
    table = embedding_table().assign(flag=lambda d: d["log_ratio"] > 0)
    plot = plot_embedding(table, "flag", facet=None)
    assert list(plot.scales.get_scales("color").breaks) == ["False", "True"]
    assert plot.facet.__class__.__name__ == "facet_null"


# --- heatmap and dendrogram -----------------------------------------------------------------


def test_dendrogram_segments_match_scipy():
    table, linkage, names = distance_table(9)
    segments = dendrogram_segments(linkage, names)
    assert list(segments.columns) == ["x", "y", "xend", "yend"]
    assert len(segments) == 3 * (len(names) - 1)
    leaves = hierarchy.leaves_list(linkage)
    assert segments.attrs["leaves"] == [names[i] for i in leaves]
    # horizontal bars: one per merge, at the merge heights
    bars = segments[segments["y"] == segments["yend"]]
    np.testing.assert_allclose(np.sort(bars["y"]), np.sort(linkage[:, 2]))
    # each leaf hangs from its first merge at the x of its position in leaves_list
    position = {leaf: float(i) for i, leaf in enumerate(leaves)}
    for a, b, height, _ in linkage:
        for child in (int(a), int(b)):
            if child < len(names):
                match = segments[
                    (segments["x"] == position[child])
                    & (segments["xend"] == position[child])
                    & (segments["y"] == 0.0)
                    & np.isclose(segments["yend"], height)
                ]
                assert len(match) == 1
    assert segments[["x", "xend"]].to_numpy().min() == 0.0
    assert segments[["x", "xend"]].to_numpy().max() == len(names) - 1
    # agrees with scipy's own drawing coordinates (leaves at 5, 15, ...)
    drawn = hierarchy.dendrogram(linkage, no_plot=True)
    scipy_x = np.sort((np.asarray(drawn["icoord"]).ravel() - 5.0) / 10.0)
    ours_x = np.sort(np.concatenate([segments[["x", "xend"]].to_numpy().ravel()]))
    # scipy draws 4 points per U (x of left leg twice, right leg twice); ours 6 ends per U
    np.testing.assert_allclose(np.unique(scipy_x), np.unique(ours_x))


def test_dendrogram_segments_validate():
    _, linkage, names = distance_table(5)
    with pytest.raises(ValueError, match="observations"):
        dendrogram_segments(linkage, names[:-1])
    with pytest.raises(ValueError, match="shape"):
        dendrogram_segments(np.zeros((3, 3)), names[:4])


def test_heatmap_order_follows_linkage():
    table, linkage, names = distance_table()
    plot = plot_distance_heatmap(table, linkage)
    expected = [names[i] for i in hierarchy.leaves_list(linkage)]
    assert expected != names  # the test would not tell otherwise
    assert list(plot.data["sample_x"].cat.categories) == expected
    assert list(plot.data["sample_y"].cat.categories) == expected[::-1]  # first row on top
    segments = [layer for layer in plot.layers if type(layer.geom).__name__ == "geom_segment"]
    assert len(segments) == 1
    dendro = segments[0].geom.data
    assert dendro[["y", "yend"]].to_numpy().min() > len(names) + 0.5  # above the top row
    assert sorted(set(dendro["x"]))[0] == 1.0  # discrete positions 1..n


def test_heatmap_shared_limits_and_group_bars():
    table, linkage, names = distance_table()
    groups = sample_groups()
    plot = plot_distance_heatmap(
        table, linkage, limits=(0.0, 5.0), groups=groups, group_title="Subject group"
    )
    fill = plot.scales.get_scales("fill")
    assert fill.limits == (0.0, 5.0)  # the caller's range, not the matrix's own
    # one fixed-fill tile layer per group: a bar left of the rows (x = 0) and one above (y = n + 1)
    bars = [
        la
        for la in plot.layers
        if type(la.geom).__name__ == "geom_tile" and "fill" in la.geom.aes_params
    ]
    assert [la.geom.aes_params["fill"] for la in bars] == [
        discrete_colors(["G1", "G2", "G3"])[g] for g in ("G1", "G2", "G3")
    ]
    cells = pd.concat([la.geom.data for la in bars])
    n = len(names)
    assert len(cells) == 2 * (n - 1)  # sample_6 has no group
    rows, columns = cells[cells["x"] == -0.1], cells[cells["x"] != -0.1]
    blank = n - list(plot.data["sample_x"].cat.categories).index("sample_6")  # its row's y
    assert set(rows["y"]) == set(range(1, n + 1)) - {blank}
    assert (columns["y"] == n + 1.1).all()
    # a gap between the bars and the matrix: the row bar ends left of 0.5, the column bar above
    assert (rows["x"] + rows["w"] / 2).max() < 0.5 and (
        columns["y"] - columns["h"] / 2
    ).min() > n + 0.5
    # the group legend, and the dendrogram above the column bar
    color = plot.scales.get_scales("color")
    assert list(color.breaks) == ["G1", "G2", "G3"] and color.name == "Subject group"
    dendro = next(la for la in plot.layers if type(la.geom).__name__ == "geom_segment")
    assert dendro.geom.data[["y", "yend"]].to_numpy().min() > n + 1.5
    assert "Subject group" in drawn_texts(plot)
    with pytest.raises(ValueError, match="limits must be increasing"):
        plot_distance_heatmap(table, limits=(1.0, 1.0))
    with pytest.raises(ValueError, match="no sample of the matrix has a group"):
        plot_distance_heatmap(table, groups={"other": "G1"})


def test_heatmap_without_linkage_keeps_first_appearance():
    table, linkage, names = distance_table()
    shuffled = table.sample(frac=1.0, random_state=0)
    plot = plot_distance_heatmap(shuffled, label="MrVI distance")
    expected = list(dict.fromkeys(shuffled["sample_x"]))
    assert list(plot.data["sample_x"].cat.categories) == expected
    assert not any(type(layer.geom).__name__ == "geom_segment" for layer in plot.layers)
    assert plot.labels.fill == "MrVI distance"
    with pytest.raises(ValueError, match="observations"):
        plot_distance_heatmap(table, linkage[:-1])
    with pytest.raises(ValueError, match="more than once"):
        plot_distance_heatmap(pd.concat([table, table.iloc[:1]]))


# --- curves and scatters --------------------------------------------------------------------


def test_pr_curve_legend_labels():
    plot = plot_pr_curves(pr_table())
    expected = ["MrVI (AUC 0.912)", "Milo (AUC 0.654)", "my_method (AUC 0.500)"]
    scale = plot.scales.get_scales("color")
    assert list(scale.labels) == expected
    assert list(scale.breaks) == ["mrvi", "milo", "my_method"]
    assert scale.palette(3)["mrvi"] == METHOD_COLORS["mrvi"]
    texts = drawn_texts(plot)
    assert all(label in texts for label in expected)
    assert type(plot.layers[0].geom).__name__ == "geom_step"
    # each method's points by decreasing recall
    for _, group in plot.data.groupby("method", observed=True):
        assert group["recall"].is_monotonic_decreasing


def test_pr_curve_no_skill_line_and_estimators():
    table = pr_table().replace({"my_method": "mrvi_per_dimension"})
    plot = plot_pr_curves(table, prevalence=0.345, labels={"mrvi": "MrVI, mixture DA"})
    hline = next(la for la in plot.layers if type(la.geom).__name__ == "geom_hline")
    assert hline.geom.data["yintercept"].tolist() == [0.345]  # precision of a random ranking
    texts = drawn_texts(plot)
    assert "no skill (prevalence 0.345)" in texts
    assert "MrVI, mixture DA (AUC 0.912)" in texts
    assert "MrVI, per-dimension DA (AUC 0.500)" in texts
    linetype = plot.scales.get_scales("linetype")
    assert linetype.palette(3)["mrvi_per_dimension"] == "dashed"
    assert linetype.palette(3)["mrvi"] == "solid"
    # no line unless asked; a prevalence outside (0, 1) is refused
    plain = plot_pr_curves(pr_table())
    assert not any(type(la.geom).__name__ == "geom_hline" for la in plain.layers)
    with pytest.raises(ValueError, match="prevalence"):
        plot_pr_curves(pr_table(), prevalence=1.5)


def test_pr_curve_auc_must_be_constant():
    table = pr_table()
    table.loc[0, "auc"] = 0.1
    with pytest.raises(ValueError, match="constant per method"):
        plot_pr_curves(table)


def test_lfc_scatter_facets_and_annotations():
    plot = plot_lfc_scatter(lfc_table())
    assert list(plot.data["facet"].cat.categories) == ["MrVI", "miloDE"]
    texts = drawn_texts(plot)
    assert "r = 0.89" in texts and "r = 0.25" in texts
    assert "MrVI" in texts and "miloDE" in texts
    # axis titles say the unit: log2 fold changes
    assert "DESeq2 pseudobulk log2 fold change" in texts
    assert "method's log2 fold change" in texts
    abline = plot.layers[0]
    assert abline.geom.aes_params["linetype"] == "dashed"
    assert abline.geom.data[["intercept", "slope"]].to_numpy().tolist() == [[0.0, 1.0]]


def test_distribution_axis_clipped_to_quantiles():
    table = distribution_table()
    table.loc[0, "lr"] = -25.0  # an outlier that would flatten every violin
    plot = plot_distribution(
        table, "subset", "lr", limit_quantiles=(0.005, 0.995), x_label="Cell subset", y_label="DA"
    )
    lo, hi = np.quantile(table["lr"], [0.005, 0.995])
    ylim = plot.coordinates.limits.y
    assert ylim[0] > -25.0 and ylim[0] < lo and ylim[1] > hi and ylim[1] - ylim[0] < 10
    assert len(plot.data) == len(table)  # nothing dropped: the axis zooms
    texts = drawn_texts(plot)
    assert any(t.startswith("Axis clipped to the 0.5-99.5 % quantiles") for t in texts)
    assert "Cell subset" in texts and "DA" in texts
    with pytest.raises(ValueError, match="limit_quantiles"):
        plot_distribution(table, "subset", "lr", limit_quantiles=(0.9, 0.1))


def test_distribution_orders_subsets():
    plot = plot_distribution(distribution_table(), "subset", "lr", hline=None)
    assert list(plot.data["group"].cat.categories) == ["A", "B", "C", "Other"]
    assert [type(la.geom).__name__ for la in plot.layers] == ["geom_violin", "geom_boxplot"]
    with_line = plot_distribution(distribution_table(), "subset", "lr", hline=0.5)
    assert type(with_line.layers[0].geom).__name__ == "geom_hline"


# --- tables ---------------------------------------------------------------------------------


def test_metric_table_with_nan():
    plot = plot_metric_table(metric_table(), lower_is_better=["RF"])
    data = plot.data.set_index(["method", "metric"])
    assert len(data) == 3 * 2  # the absent (composition_pca, DA AUC) pair is filled in
    assert data.loc[("mrvi", "DA AUC"), "text"] == "0.912"
    assert data.loc[("milo", "RF"), "text"] == "–"
    assert np.isnan(data.loc[("milo", "RF"), "fill"])
    assert data.loc[("composition_pca", "DA AUC"), "text"] == "–"
    # fill rescaled within each metric; RF reversed (lower is better)
    assert data.loc[("mrvi", "DA AUC"), "fill"] == 1.0
    assert data.loc[("milo", "DA AUC"), "fill"] == 0.0
    assert data.loc[("mrvi", "RF"), "fill"] == 1.0
    assert data.loc[("composition_pca", "RF"), "fill"] == 0.0
    assert list(plot.data["method_label"].cat.categories) == [
        "Composition (PCA)",
        "Milo",
        "MrVI",
    ]  # reversed: MrVI on the top row
    assert plot.scales.get_scales("fill").na_value == plotting.NA_COLOR
    texts = drawn_texts(plot)
    assert "–" in texts and "0.912" in texts
    # each column says its direction
    assert "DA AUC ↑" in texts and "RF ↓" in texts
    assert any("lower is better" in t for t in texts)


def test_metric_table_does_not_shade_one_value_columns():
    table = pd.DataFrame(
        {
            "method": ["mrvi", "milo", "mrvi", "milo", "mrvi"],
            "metric": ["da_pr_auc", "da_pr_auc", "rf_distance", "rf_distance", "silhouette_sample"],
            "value": [0.9, 0.8, 0.5, 0.5, 0.7],
        }
    )
    plot = plot_metric_table(table)
    data = plot.data.set_index(["method", "metric"])
    assert np.isnan(data.loc[("mrvi", "silhouette_sample"), "fill"])  # one value: unshaded
    assert np.isnan(data.loc[("mrvi", "rf_distance"), "fill"])  # all equal: nothing to rank
    assert data.loc[("mrvi", "da_pr_auc"), "fill"] == 1.0
    shaded = next(la for la in plot.layers if "fill" in la.mapping)
    assert set(shaded.geom.data["metric"].astype(str)) == {"da_pr_auc"}
    assert list(plot.data["metric_label"].cat.categories) == [
        "DA PR-AUC ↑",
        "Robinson-Foulds ↓",
        "silhouette sample ↑",
    ]


def test_metric_table_rejects_duplicates():
    table = pd.concat([metric_table(), metric_table().iloc[:1]])
    with pytest.raises(ValueError, match="more than once"):
        plot_metric_table(table)


def test_runtime_aggregates_jobs_per_rule():
    plot = plot_runtime(runtime_table())
    data = plot.data
    time = data[data["quantity"] == "wall time (s)"].set_index("rule")["value"]
    memory = data[data["quantity"] == "peak memory (MiB)"].set_index("rule")["value"]
    assert time["fit_mrvi"] == 160.0  # 100 + 60
    assert memory["fit_mrvi"] == 3000.0  # max(2000, 3000)
    assert time["milo"] == 30.0
    # sorted by time, the longest last (the top bar after coord_flip)
    assert list(data["rule"].cat.categories) == ["simulate", "milo", "fit_mrvi"]
    assert list(data["quantity"].cat.categories) == ["wall time (s)", "peak memory (MiB)"]


def test_distribution_group_without_density_gets_box_only(tmp_path):
    table = pd.DataFrame({"g": ["A", "A", "A", "B", "C", "C"], "v": [1.0, 2, 3, 4, 5, 5]})
    plot = plot_distribution(table, "g", "v")
    violin = next(la for la in plot.layers if type(la.geom).__name__ == "geom_violin")
    assert set(violin.geom.data["group"]) == {"A"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "only one value" density warning
        save_figure(plot, tmp_path / "d.png", width=2, height=2, dpi=50)


# --- cohort panels --------------------------------------------------------------------------


def test_heatmap_annotation_tracks():
    table, linkage, names = distance_table()
    plot = plot_distance_heatmap(
        table, linkage, groups=sample_groups(), annotations=sample_annotations()
    )
    bars = [
        la
        for la in plot.layers
        if type(la.geom).__name__ == "geom_tile" and "fill" in la.geom.aes_params
    ]
    cells = pd.concat([la.geom.data.assign(fill=la.geom.aes_params["fill"]) for la in bars])
    n = len(names)
    # groups nearest the matrix (x = -0.1, and above the columns), then days, then status
    rows = cells[cells["y"] <= n]
    assert np.allclose(sorted(rows["x"].unique()), [-2.7, -1.4, -0.1])
    days = rows[np.isclose(rows["x"], -1.4)].set_index("group")
    # 5 numbers in 4 quantile bins along one sequential map, the 2 healthy samples in grey
    numeric = [g for g in days.index.unique() if "Healthy" not in g]
    assert len(numeric) == 4 and all(g.startswith("days: ") for g in numeric)
    assert days.loc["days: Healthy", "fill"].iloc[0] == "#BDBDBD"
    assert len(days.loc[["days: Healthy"]]) == 2
    status = rows[np.isclose(rows["x"], -2.7)]
    assert set(status["group"]) == {"status: Covid", "status: Healthy"}
    # one legend of every track's levels, and the tracks' names drawn above their bars
    color = plot.scales.get_scales("color")
    assert color.name == "Annotations"
    assert {"status: Covid", "days: Healthy"} <= set(color.breaks)
    texts = drawn_texts(plot)
    assert {"days", "status"} <= set(texts)


def test_alluvial_flows_conserve_cells_and_drop_small_pairs():
    plot = plot_alluvial(alluvial_table(), "label", "cluster", left_order=["B"])
    ribbons = next(la for la in plot.layers if type(la.geom).__name__ == "geom_ribbon")
    flows = ribbons.geom.data
    widths = (flows["ymax"] - flows["ymin"]).groupby(flows["flow"]).agg(["min", "max"])
    # each flow keeps its width from left to right; 5 flows kept (the 5-cell pair is under 1 %)
    np.testing.assert_allclose(widths["min"], widths["max"])
    assert sorted(widths["min"].round(6)) == [40.0, 150.0, 300.0, 500.0, 800.0]
    texts = drawn_texts(plot)
    assert "B (300)" in texts and "0 (690)" in texts
    caption = next(t for t in texts if t.startswith("Pairs under"))
    assert "1,795" in caption and "(5 cells)" in caption
    # B first on the left (the order given), then by size; clusters at their inflows' mean
    # position: 2 (from B), 1 (from T), 0 (from CD14, CD16 and a few T)
    left, right = (la.geom.data for la in plot.layers if type(la.geom).__name__ == "geom_rect")
    assert list(left.sort_values("ymax", ascending=False)["category"]) == ["B", "T", "CD14", "CD16"]
    assert list(right.sort_values("ymax", ascending=False)["category"]) == ["2", "1", "0"]
    with pytest.raises(ValueError, match="every pair is below 99.0% of the total"):
        plot_alluvial(alluvial_table(), "label", "cluster", min_fraction=0.99)


def test_group_values_boxes_span_the_papers_percentiles():
    plot = plot_group_values(group_values_table(), "group", "days", subtitle="p = 0.01")
    box = next(la for la in plot.layers if type(la.geom).__name__ == "geom_boxplot").geom.data
    g1 = box[box["group"] == "g1"].iloc[0]
    values = np.arange(2, 8)
    assert g1["middle"] == np.median(values)
    assert g1["ymin"] == np.quantile(values, 0.05) and g1["ymax"] == np.quantile(values, 0.95)
    # the sample without a value is dropped: no g3 box; every sample is a point
    assert list(box["group"]) == ["g1", "g2"]
    points = next(la for la in plot.layers if type(la.geom).__name__ == "geom_point").geom.data
    assert len(points) == 12
    assert any("p = 0.01" in t for t in drawn_texts(plot))
