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
