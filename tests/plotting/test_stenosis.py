"""The disease-behaviour figure (Fig. 5, Extended Data Figs. 6-7) drawn from a planted result set."""

from __future__ import annotations

import dataclasses
import struct

import numpy as np
import pandas as pd

from mrvi_repro.metrics import clustered_label_order, label_lfc_profiles
from mrvi_repro.plotting import figure_genes, save_figure, stenosis_figure
from mrvi_repro.settings.names import FIG5_PANELS


def _embedding(results) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    cells = results.obs.index
    return pd.DataFrame(
        {
            "cell": cells,
            "panel": "MrVI u",
            "x": rng.normal(size=len(cells)),
            "y": rng.normal(size=len(cells)),
        }
    )


def test_every_panel_is_drawn_and_saved(planted_stenosis, tmp_path):
    results, spec = planted_stenosis
    panels = stenosis_figure(results, _embedding(results), spec)
    assert list(panels) == list(FIG5_PANELS)
    for name, panel in panels.items():
        png = save_figure(
            panel.plot, tmp_path / f"{name}.png", width=panel.width, height=panel.height
        )
        width, height = struct.unpack(">II", png.read_bytes()[16:24])
        assert width >= 400 and height >= 200, (name, width, height)


def test_violins_follow_the_clustering_and_the_default_genes_are_the_strongest(planted_stenosis):
    results, spec = planted_stenosis
    panels = stenosis_figure(results, _embedding(results), spec)
    data = panels["fig5e_lfc_violins"].plot.data
    order = clustered_label_order(label_lfc_profiles(results.de))
    assert list(data["label"].cat.categories) == order
    # the endothelial types share a profile: neighbours in the order
    assert abs(order.index("Endo") - order.index("Lymph")) == 1
    # mean LFCs over the analysed cells: CDH11 1, G1 0.8 x 180/360, LUM and TGFBI 2 x 60/360
    genes = figure_genes(results.de, spec)
    assert genes["umap"] == ["CDH11", "G1"]
    assert genes["lfc"][:2] == ["CDH11", "G1"] and set(genes["lfc"][2:4]) == {"LUM", "TGFBI"}


def test_expression_is_drawn_with_high_values_on_top(planted_stenosis):
    results, spec = planted_stenosis
    panel = stenosis_figure(results, _embedding(results), spec)["fig5d_expression"]
    layer = panel.plot.layers[-1]
    values = layer._data["value"].to_numpy()  # the drawn points, in drawing order
    assert (np.diff(values) >= 0).all()


def test_missing_genes_and_labels_say_why(planted_stenosis):
    results, spec = planted_stenosis
    other = dataclasses.replace(spec, expression_gene="XIST", markers=("XIST",), focus="Glia")
    panels = stenosis_figure(results, _embedding(results), other)
    for name in ("fig5d_expression", "ed6d_markers", "ed7a_focus_expression"):
        texts = [str(layer.geom.aes_params.get("label", "")) for layer in panels[name].plot.layers]
        assert any("XIST" in t or "Glia" in t or "model gene" in t for t in texts), (name, texts)


def test_subcluster_dotplot_groups_each_labels_planted_markers(planted_stenosis):
    results, spec = planted_stenosis
    data = stenosis_figure(results, _embedding(results), spec)["ed7b_subcluster_markers"].plot.data
    genes = list(data["gene"].cat.categories)
    # columns grouped by the label they mark, in the labels' order: Endo's, then Peri's
    marks = data.drop_duplicates("gene").set_index("gene").loc[genes, "marker_of"].tolist()
    assert marks == sorted(marks, key=["Endo", "Peri"].index)
    peri = data.loc[data["marker_of"] == "Peri", "gene"].astype(str).unique()
    assert set(peri) == {"LUM", "TGFBI"} and "G1" in set(
        data.loc[data["marker_of"] == "Endo", "gene"].astype(str)
    )
    # every label x marker gene drawn, sizes in percent
    assert len(data) == 2 * len(genes) and data["percent"].between(0, 100).all()


def test_subcluster_dotplot_says_why_without_subclusters(planted_stenosis):
    results, spec = planted_stenosis
    panel = stenosis_figure(
        results, _embedding(results), dataclasses.replace(spec, subclusters=None)
    )
    texts = [
        str(layer.geom.aes_params.get("label", ""))
        for layer in panel["ed7b_subcluster_markers"].plot.layers
    ]
    assert any("subclusters" in t for t in texts)
