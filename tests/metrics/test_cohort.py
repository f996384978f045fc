"""The cohort claims (Fig. 3, Extended Data Fig. 1) on a small cohort with planted answers."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from mrvi_repro.metrics import (
    CohortResults,
    case_groups,
    cohort_claims,
    cohort_summary,
    module_of,
    onset_test,
    separation_test,
)
from mrvi_repro.settings.figures import CohortClaimsSpec, Fig3Spec

EARLY = [f"E{i}" for i in range(5)]
LATE = [f"L{i}" for i in range(5)]
HEALTHY = [f"H{i}" for i in range(5)]
SAMPLES = EARLY + LATE + HEALTHY


def planted_matrix(rng: np.random.Generator, *, structured: bool = True) -> np.ndarray:
    """Distances of points: early, late and healthy samples around three far-apart centres."""
    centres = {"E": (0.0, 0.0), "L": (4.0, 0.0), "H": (0.0, 6.0)}
    points = np.array([centres[s[0]] for s in SAMPLES]) if structured else np.zeros((15, 2))
    points = points + rng.normal(scale=0.5, size=points.shape)
    return np.sqrt(((points[:, None] - points[None]) ** 2).sum(-1))


def cohort(
    *, structured: bool = True, cd16_case: float = -0.6, module_lfc: float = -1.0
) -> CohortResults:
    rng = np.random.default_rng(0)
    samples = pd.DataFrame(
        {
            "Status": ["Covid"] * 10 + ["Healthy"] * 5,
            "days": [str(d) for d in (2, 3, 4, 5, 6, 15, 17, 19, 21, 23)] + ["Healthy"] * 5,
            "age": rng.integers(20, 80, 15),
        },
        index=SAMPLES,
    )
    groups = pd.Series(["g1"] * 5 + ["g2"] * 5 + ["g3"] * 5, index=SAMPLES)
    labels = ["CD14"] * 100 + ["CD16"] * 40 + ["CD4"] * 100 + ["B_cell"] * 60
    clusters = ["0"] * 140 + ["1"] * 100 + ["2"] * 60
    cells = [f"c{i}" for i in range(len(labels))]
    obs = pd.DataFrame(
        {"cell_type": labels, "patient": rng.choice(SAMPLES, len(labels))}, index=cells
    )
    matrices = np.stack([planted_matrix(rng, structured=structured) for _ in range(3)])
    strat = xr.Dataset(
        {
            "cell_cluster": ("cell", np.array(clusters, dtype=object)),
            "distance": (("cluster", "sample_x", "sample_y"), matrices),
        },
        coords={
            "cell": cells,
            "cluster": ["0", "1", "2"],
            "sample_x": SAMPLES,
            "sample_y": SAMPLES,
            "n_cells": ("cluster", [140, 100, 60]),
        },
    )
    da_case = xr.Dataset(attrs={"covariate": "Status", "group_a": "Covid", "group_b": "Healthy"})
    da_groups = xr.Dataset(attrs={"covariate": "group", "group_a": "g2", "group_b": "g1"})
    tests = {
        "case": pd.DataFrame({"cluster": ["CD14", "CD16"], "mean_in": [0.3, cd16_case]}),
        "groups": pd.DataFrame({"cluster": ["CD14", "CD16"], "mean_in": [-0.2, 0.4]}),
    }
    de = xr.Dataset(coords={"covariate": ["group: g2 vs g1"]})
    modules = pd.DataFrame(
        {
            "gene": ["IFI27", "GBP1", "IFITM3", "CSF3R", "TNF", "X1"],
            "module": [1, 1, 1, 2, 2, 2],
            "mean_lfc": [module_lfc, module_lfc, module_lfc, 0.8, 0.9, 0.7],
        }
    )
    integration = pd.DataFrame(
        {
            "method": ["mrvi"] * 2 + ["scvi"] * 2 + ["pca"] * 2,
            "metric": ["silhouette_label", "silhouette_batch"] * 3,
            "value": [0.9, 0.9, 0.8, 0.85, 0.6, 0.95],
        }
    )
    return CohortResults(
        obs=obs,
        labels_key="cell_type",
        sample_key="patient",
        samples=samples,
        stratification=strat,
        groups=groups,
        group_cluster="0",
        da={"case": da_case, "groups": da_groups},
        da_tests=tests,
        de=de,
        modules=modules,
        integration=integration,
    )


SPEC = Fig3Spec(
    condition="Status",
    case="Covid",
    control="Healthy",
    sample_groups="group",
    onset="days",
    annotations=("age", "days", "Status"),
    da=("case", "groups"),
    de="de",
    compartments={"myeloid": ("CD14", "CD16"), "T/NK": ("CD4",), "B": ("B_cell", "Plasma")},
    claims=CohortClaimsSpec(
        fewer_in_case=("CD16", "DCs"),
        more_in_later_group=("CD16",),
        early_module_genes=("IFI27", "GBP1", "IFITM3"),
    ),
)


def claims_of(results: CohortResults, spec: Fig3Spec = SPEC) -> pd.DataFrame:
    summary = cohort_summary(results, spec, n_permutations=199)
    return cohort_claims(summary, spec).set_index("claim")


def test_separation_test_finds_planted_groups_only():
    rng = np.random.default_rng(1)
    status = pd.Series(["Covid"] * 10 + ["Healthy"] * 5, index=SAMPLES)
    matrix = xr.DataArray(planted_matrix(rng), coords={"sample_x": SAMPLES, "sample_y": SAMPLES})
    ratio, p = separation_test(matrix, status, n_permutations=199)
    assert ratio < 0.5 and p == pytest.approx(1 / 200)
    flat = xr.DataArray(
        planted_matrix(rng, structured=False), coords={"sample_x": SAMPLES, "sample_y": SAMPLES}
    )
    ratio, p = separation_test(flat, status, n_permutations=199)
    assert ratio > 0.7 and p > 0.1


def test_case_groups_and_onset_test():
    results = cohort()
    assert case_groups(results, SPEC) == ("g1", "g2")  # g3 is healthy; g1 has the earlier onset
    test = onset_test(results, SPEC)
    assert (test["group_a"], test["group_b"]) == ("g2", "g1")
    assert test["median_a"] == 19 and test["median_b"] == 4
    assert test["pvalue"] < 0.05  # 5 vs 5 fully separated: exact p = 2 / 252
    # fewer than two mostly-case groups: no pair, no test
    merged = dataclasses.replace(results, groups=results.groups.replace({"g2": "g1"}))
    assert case_groups(merged, SPEC) is None and onset_test(merged, SPEC) is None


def test_module_of_the_named_genes():
    modules = cohort().modules
    assert module_of(modules, ("IFI27", "GBP1", "TNF")) == "1"
    assert module_of(modules, ("NOPE",)) is None


def test_every_claim_holds_on_the_planted_cohort():
    claims = claims_of(cohort())
    expected = {
        "u_integrates_better_than_scvi",
        "u_integrates_better_than_pca",
        "one_cluster_per_compartment",
        "condition_separates_samples",
        "case_groups_differ_in_onset",
        "fewer_CD16_in_case",
        "fewer_DCs_in_case",
        "more_CD16_in_later_group",
        "early_module_up_early",
    }
    assert set(claims.index) == expected
    computed = claims.drop(index="fewer_DCs_in_case")
    assert computed["holds"].astype(bool).all(), computed[["ours", "holds"]]
    # DCs are not in the data: the claim is listed, not computed
    assert claims.loc["fewer_DCs_in_case", "ours"] == "not computed"
    assert pd.isna(claims.loc["fewer_DCs_in_case", "holds"])
    # the numbers: DA of CD16 cases vs controls, module LFC early vs late (contrast g2 vs g1)
    # margins beyond the smallest effect counted (0.1)
    assert claims.loc["fewer_CD16_in_case", "margin"] == pytest.approx(0.5)
    assert claims.loc["early_module_up_early", "margin"] == pytest.approx(0.9)
    assert claims.loc["u_integrates_better_than_scvi", "margin"] == pytest.approx(
        (0.6 * 0.9 + 0.4 * 0.9) - (0.6 * 0.8 + 0.4 * 0.85)
    )


def test_claims_fail_where_the_cohort_disagrees():
    claims = claims_of(cohort(structured=False, cd16_case=0.5, module_lfc=1.0))
    for key in ("condition_separates_samples", "fewer_CD16_in_case", "early_module_up_early"):
        assert not claims.loc[key, "holds"], key  # computed (bool(NA) would raise) and False
    # the signs follow the comparisons' directions: a DA of Healthy vs Covid flips the value
    flipped = cohort()
    flipped.da["case"].attrs.update(group_a="Healthy", group_b="Covid")
    flipped.da_tests["case"]["mean_in"] *= -1
    assert claims_of(flipped).loc["fewer_CD16_in_case", "margin"] == pytest.approx(0.5)
    # an effect near zero does not count
    small = claims_of(cohort(cd16_case=-0.05, module_lfc=-0.05))
    assert not small.loc["fewer_CD16_in_case", "holds"]
    assert not small.loc["early_module_up_early", "holds"]


def test_compartments_sharing_a_cluster_fail_the_claim():
    results = cohort()
    strat = results.stratification.copy()
    strat["cell_cluster"] = ("cell", np.array(["0"] * 240 + ["2"] * 60, dtype=object))
    claims = claims_of(dataclasses.replace(results, stratification=strat))
    row = claims.loc["one_cluster_per_compartment"]
    assert not row["holds"] and row["ours"].endswith("2.000 vs 2.5")
