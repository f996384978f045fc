import pytest

from mrvi_repro.pipeline import (
    AnalysisSpec,
    DASpec,
    DatasetSpec,
    DESpec,
    SpecError,
    StratifySpec,
)

ENTRY = {"source": {"kind": "simulate"}, "sample_key": "s", "sample_covariates": ["a", "b"]}


def test_defaults_and_parsing():
    assert DatasetSpec.from_dict("x", ENTRY).analysis == AnalysisSpec()
    spec = DatasetSpec.from_dict(
        "x",
        {
            **ENTRY,
            "analysis": {
                "distances": {"mc_samples": 10},
                "da": {"estimators": ["per_dimension", "mixture"]},
                "de": {"covariates": ["b"], "mc_samples": 20, "lfc": False},
                "stratify": {"resolution": 0.1, "method": "average"},
            },
        },
    ).analysis
    assert spec.distances.mc_samples == 10
    assert spec.da == DASpec(estimators=("per_dimension", "mixture"))
    assert AnalysisSpec().da.estimators == ("mixture",)
    assert spec.de == DESpec(covariates=("b",), mc_samples=20, lfc=False)
    assert spec.stratify == StratifySpec(resolution=0.1, method="average")


@pytest.mark.parametrize(
    ("analysis", "match"),
    [
        ({"dist": {}}, r"analysis: unknown key\(s\) \['dist'\]"),
        ({"de": {"draws": 5}}, r"analysis.de: unknown key\(s\) \['draws'\]"),
        ({"distances": {"mc_samples": 1}}, "mc_samples must be 0 or at least 2"),
        ({"de": {"mc_samples": 0}}, "mc_samples must be >= 1"),
        ({"da": {"estimators": ["kde"]}}, r"analysis.da: estimators must be distinct values"),
        ({"da": {"estimators": []}}, "estimators must be distinct values"),
        ({"da": {"estimators": ["mixture", "mixture"]}}, "estimators must be distinct values"),
        ({"da": {"estimator": "mixture"}}, r"analysis.da: unknown key\(s\) \['estimator'\]"),
        ({"de": {"covariates": []}}, "at least one sample covariate"),
        ({"de": {"covariates": ["c"]}}, r"analysis.de.covariates \['c'\] are not among"),
        ({"stratify": {"method": "wards"}}, "method must be one of"),
        ({"stratify": {"resolution": 0}}, "resolution > 0"),
    ],
)
def test_bad_analysis_sections_are_named(analysis, match):
    with pytest.raises(SpecError, match=match):
        DatasetSpec.from_dict("x", {**ENTRY, "analysis": analysis})
