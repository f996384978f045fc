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
