"""The `figures` section of a dataset entry: defaults from the entry, and clear errors."""

from __future__ import annotations

import copy

import pytest
import yaml

from mrvi_repro.pipeline import DatasetSpec, SpecError

ENTRY = {
    "source": {"kind": "simulate"},
    "sample_key": "patient",
    "labels_key": "cell_type",
    "sample_covariates": ["Status", "days", "age"],
    "comparisons": {
        "sample_groups": [
            {"name": "donors", "cells": {"cell_type": ["CD14"]}, "compare": ["days", "age"]}
        ],
        "de": [
            {"name": "plain", "covariates": ["Status"]},
            {"name": "groups", "covariates": ["donors"], "modules": {"resolution": 0.5}},
        ],
        "da": [
            {"name": "status", "covariate": "Status"},
            {"name": "between", "covariate": "donors"},
        ],
    },
}


def parse(figures, **changes):
    entry = copy.deepcopy(ENTRY) | {"figures": figures} | changes
    return DatasetSpec.from_dict("c", entry).figures


def test_defaults_come_from_the_entry():
    fig = parse({"fig3": {"case": "Covid", "control": "Healthy"}}).fig3
    assert (fig.condition, fig.case, fig.control) == ("Status", "Covid", "Healthy")
    assert fig.sample_groups == "donors" and fig.onset == "days"  # the set's first compare
    assert fig.annotations == ("Status", "days", "age")
    assert fig.da == ("status", "between")
    assert fig.de == "groups"  # the first DE comparison with modules
    assert fig.max_points == 100_000 and fig.claims.fewer_in_case == ()


def test_no_figures_section_asks_for_none():
    spec = DatasetSpec.from_dict("c", copy.deepcopy(ENTRY))
    assert spec.figures.fig3 is None and spec.figures.names == ()


def test_the_covid_entry_asks_for_the_papers_fig3(repo):
    entry = yaml.safe_load((repo / "config" / "datasets" / "covid.yaml").read_text())
    fig = DatasetSpec.from_dict("covid", entry).figures.fig3
    assert (fig.condition, fig.case, fig.control, fig.onset) == (
        "Status",
        "Covid",
        "Healthy",
        "days_from_onset",
    )
    assert fig.da == ("covid_vs_healthy_myeloid", "covid_groups_myeloid")
    assert fig.claims.fewer_in_case == ("CD16", "DCs")
    assert set(fig.compartments) == {"myeloid", "T/NK", "B"}


@pytest.mark.parametrize(
    ("figures", "changes", "match"),
    [
        (["fig3"], {}, "set 'case'"),
        (["fig9"], {}, r"unknown figure\(s\) \['fig9'\]"),
        (
            {"fig3": {"case": "a", "control": "b", "colour": 1}},
            {},
            r"unknown key\(s\) \['colour'\]",
        ),
        ({"fig3": {"case": "a", "control": "a"}}, {}, "case and control must differ"),
        (
            {"fig3": {"case": "a", "control": "b", "condition": "Sex"}},
            {},
            r"condition \['Sex'\] not among the sample_covariates",
        ),
        (
            {"fig3": {"case": "a", "control": "b", "onset": "age_years"}},
            {},
            "not among the compare covariates of sample_groups 'donors'",
        ),
        (
            {"fig3": {"case": "a", "control": "b", "da": ["nope"]}},
            {},
            r"da \['nope'\] not among the DA comparisons",
        ),
        (
            {"fig3": {"case": "a", "control": "b", "de": "plain"}},
            {},
            r"de \['plain'\] not among the DE comparisons with modules",
        ),
        (
            {"fig3": {"case": "a", "control": "b", "claims": {"more_in_case": ["B"]}}},
            {},
            r"claims: unknown key\(s\) \['more_in_case'\]",
        ),
        ({"fig3": {"case": "a", "control": "b"}}, {"labels_key": None}, "need a labels_key"),
        ({"fig3": {"case": "a", "control": "b"}}, {"comparisons": None}, "sample_groups set"),
    ],
)
def test_bad_figures_are_refused_with_the_reason(figures, changes, match):
    with pytest.raises(SpecError, match=match):
        parse(figures, **changes)


# --- fig4: the perturbation-screen figure -----------------------------------------------------

SCREEN = {
    "source": {"kind": "simulate"},
    "sample_key": "product_dose",
    "labels_key": "_dummy",
    "sample_covariates": ["product_name", "dose", "pathway", "target"],
}
FIG4 = {"reference": "Vehicle_0", "product": "product_name", "dose": "dose", "pathway": "pathway"}


def parse_screen(**fig4):
    entry = copy.deepcopy(SCREEN) | {"figures": {"fig4": FIG4 | fig4}}
    return DatasetSpec.from_dict("s", entry)


def test_fig4_defaults_and_resources():
    spec = parse_screen(
        cmap={"signatures": ["l1000/a.xls"], "metadata": ["l1000/m.xls"]},
        gene_sets="genesets/h.gmt",
        claims={"enriched": [{"samples": {"target": ["HDAC"]}, "gene_sets": ["H_1"]}]},
    )
    fig = spec.figures.fig4
    assert spec.figures.names == ("fig4",)
    assert (fig.top_fraction, fig.n_clusters, fig.n_permutations, fig.phase) == (
        0.2,
        8,
        100,
        "phase",
    )
    assert fig.cmap.dose == "10000" and fig.cmap.exclude == ("Estradiol", "sirolimus", "YC1")
    assert fig.claims.enriched[0].direction == "either"
    assert {"l1000/a.xls", "l1000/m.xls", "genesets/h.gmt"} <= set(spec.resources())


def test_the_sciplex_entries_ask_for_fig4(repo):
    for line, cmap in (("A549", 6), ("MCF7", 5), ("K562", 0)):
        entry = yaml.safe_load((repo / "config" / "datasets" / f"sciplex_{line}.yaml").read_text())
        fig = DatasetSpec.from_dict(line, entry).figures.fig4
        assert fig.reference == "Vehicle_0" and fig.top_fraction == 0.2
        assert (len(fig.cmap.signatures) if fig.cmap else 0) == cmap


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"reference": None}, "set 'reference'"),
        ({"colour": "x"}, r"unknown key\(s\) \['colour'\]"),
        ({"pathway": "moa"}, r"\['moa'\] not among the sample_covariates"),
        ({"top_fraction": 1.5}, r"top_fraction must lie in \(0, 1\]"),
        ({"claims": {"mostly": [{"drug": ["X"]}]}}, r"\['drug'\] not among"),
        ({"claims": {"one_cluster": ["X"]}}, "give {sample covariate: .values.}"),
        ({"claims": {"enriched": [{"samples": {"target": ["X"]}}]}}, "gene_sets must name"),
        (
            {
                "claims": {
                    "enriched": [
                        {"samples": {"target": ["X"]}, "gene_sets": ["A"], "direction": "sideways"}
                    ]
                }
            },
            "direction must be one of",
        ),  # fmt: skip
        ({"de": {"mc_samples": 0}}, "mc_samples, max_cells and max_genes must be >= 1"),
        ({"cmap": {"signatures": ["a"]}}, "fig4"),
    ],
)
def test_bad_fig4_settings_are_refused_with_the_reason(changes, match):
    with pytest.raises(SpecError, match=match):
        parse_screen(**changes)


def test_a_figure_not_asked_for_is_an_error_that_says_how_to_ask():
    spec = parse_screen()
    assert spec.figures.require("fig4", "s") is spec.figures.fig4
    with pytest.raises(
        ValueError, match=r"dataset 's' does not ask for fig3: add `figures: \{fig3"
    ):
        spec.figures.require("fig3", "s")
    with pytest.raises(ValueError, match="does not ask for fig9"):
        spec.figures.require("fig9", "s")


# --- fig5: the disease-behaviour figure ------------------------------------------------------

FIG5_ENTRY = {
    "source": {"kind": "simulate"},
    "sample_key": "biosample",
    "labels_key": "cell_type",
    "sample_covariates": ["Type", "behavior", "procedure"],
    "analysis": {
        "de": {
            "covariates": ["Type", "behavior"],
            "contrasts": [
                {"covariate": "Type", "a": "Infl", "b": "NonI"},
                {"covariate": "behavior", "a": "B2", "b": "B1"},
            ],
        }
    },
    "comparisons": {
        "de": [{"name": "b2", "covariates": ["behavior", "Type"]}],
        "da": [{"name": "b2", "covariate": "behavior", "a": "B2", "b": "B1"}],
    },
}


def parse5(fig5, **changes):
    entry = copy.deepcopy(FIG5_ENTRY) | {"figures": {"fig5": fig5}} | changes
    return DatasetSpec.from_dict("ibd", entry).figures.fig5


def test_fig5_defaults_come_from_the_entry():
    fig = parse5({"collection": "procedure", "claims": {"strongest": "Pericytes"}})
    assert (fig.de, fig.da) == ("b2", "b2")
    assert fig.effects == ("Type", "behavior")  # every reported contrast of analysis.de
    assert fig.focus == "Pericytes"  # the claims' strongest label
    assert fig.coarse == {} and fig.lfc_genes == ()


def test_fig5_coarse_labels_and_genes_are_parsed():
    fig = parse5(
        {
            "collection": "procedure",
            "coarse": {"Stromal": {"bundle": ["CO_STR", "TI_STR"]}, "Immune": {"bundle": "IMM"}},
            "expression_gene": "CDH11",
            "lfc_genes": ["CDH11", "LUM"],
            "claims": {"up_in_a": "CDH11", "unique_to_strongest": ["TGFBI"]},
        }
    )
    assert fig.coarse == {
        "Stromal": {"bundle": ("CO_STR", "TI_STR")},
        "Immune": {"bundle": ("IMM",)},
    }
    assert fig.genes == ("CDH11", "LUM", "TGFBI")


def test_the_ibd_entry_asks_for_the_papers_fig5(repo):
    entry = yaml.safe_load((repo / "config" / "datasets" / "ibd.yaml").read_text())
    spec = DatasetSpec.from_dict("ibd", entry)
    fig = spec.figures.fig5
    assert (fig.collection, fig.inflammation, fig.de, fig.da) == (
        "procedure",
        "Type",
        "b2_vs_b1_stromal",
        "b2_vs_b1_stromal",
    )
    assert fig.effects == ("Type", "behavior") and fig.expression_gene == "CDH11"
    assert fig.claims.strongest == "Pericytes HIGD1B STEAP4" == fig.focus
    contrasts = [(c.covariate, c.a, c.b) for c in spec.analysis.de.contrasts]
    assert contrasts == [("Type", "Infl", "NonI"), ("behavior", "B2", "B1")]
    assert spec.analysis.integration.batch_key == "Site"  # Extended Data Fig. 5
    assert spec.comparisons.da_named("b2_vs_b1_stromal").delta == 1.0  # Extended Data Fig. 7c
    # Extended Data Fig. 7b: the endothelial subclusters without the lymphatic ones, top 3
    sub = fig.subclusters
    assert (sub.match, sub.exclude, sub.n_markers) == ("endothelial", ("lymphatic",), 3)
    assert sub.chosen(
        ["Endothelial cells CD36", "Lymphatic endothelial cells", "Pericytes RGS5", "endothelial x"]
    ) == ["Endothelial cells CD36", "endothelial x"]


@pytest.mark.parametrize(
    ("fig5", "changes", "match"),
    [
        ({}, {}, "set 'collection'"),
        ({"collection": "site"}, {}, r"collection \['site'\] not among the sample_covariates"),
        ({"collection": "procedure", "de": "other"}, {}, r"de \['other'\] not among"),
        ({"collection": "procedure", "effects": ["procedure"]}, {}, "analysis.de.contrasts"),
        ({"collection": "procedure", "coarse": {"S": []}}, {}, r"coarse\.S: give"),
        ({"collection": "procedure"}, {"analysis": {}}, "needs analysis.de.contrasts"),
        ({"collection": "procedure"}, {"labels_key": None}, "need a labels_key"),
        ({"collection": "procedure", "claims": {"weakest": "x"}}, {}, r"unknown key\(s\)"),
        ({"collection": "procedure", "subclusters": {"exclude": ["x"]}}, {}, "match"),
        ({"collection": "procedure", "subclusters": {"match": "E", "top": 3}}, {}, "unknown key"),
        (
            {"collection": "procedure", "subclusters": {"match": "E", "n_markers": 0}},
            {},
            "n_markers",
        ),
        ({"collection": "procedure", "subclusters": "endothelial"}, {}, "subclusters must be"),
    ],
)
def test_bad_fig5_settings_are_refused_with_the_reason(fig5, changes, match):
    with pytest.raises(SpecError, match=match):
        parse5(fig5, **changes)


def test_a_contrast_on_a_covariate_not_fitted_is_refused():
    entry = copy.deepcopy(FIG5_ENTRY)
    entry["analysis"]["de"]["contrasts"].append({"covariate": "procedure"})
    with pytest.raises(SpecError, match="not among the fitted covariates"):
        DatasetSpec.from_dict("ibd", entry)
