"""The numbers and claims of the disease-behaviour figure (Fig. 5) on a planted result set."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from mrvi_repro.metrics import (
    clustered_label_order,
    effect_norms,
    label_lfc_profiles,
    stenosis_claims,
    stenosis_summary,
)


def test_effect_norms_are_squared_norms_of_the_contrasts_beta():
    beta = np.arange(2 * 3 * 2, dtype=float).reshape(2, 3, 2)  # cell, covariate, latent
    de = xr.Dataset(
        {"beta": (("cell", "covariate", "latent"), beta)},
        coords={
            "cell": ["a", "b"],
            "covariate": ["Type: Infl vs NonI", "Type2: x vs y", "behavior: B2 vs B1"],
        },
    )
    norms = effect_norms(de, ["behavior", "Type"])
    assert list(norms.columns) == ["behavior: B2 vs B1", "Type: Infl vs NonI"]
    assert norms.loc["b", "behavior: B2 vs B1"] == 10.0**2 + 11.0**2
    assert norms.loc["a", "Type: Infl vs NonI"] == 0.0**2 + 1.0**2
    # a covariate whose name begins another's is not mixed up with it
    assert list(effect_norms(de, ["Type2"]).columns) == ["Type2: x vs y"]
    with pytest.raises(ValueError, match="no contrast on 'age'"):
        effect_norms(de, ["age"])
    with pytest.raises(ValueError, match="no beta"):
        effect_norms(de.drop_vars("beta"), ["Type"])


def test_labels_with_alike_lfc_profiles_are_neighbours_in_the_order():
    profiles = pd.DataFrame(
        [[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [2.1, 0.1, 0.0], [0.1, 2.1, 0.0], [0.0, 0.0, 3.0]],
        index=["A1", "B1", "A2", "B2", "C"],
    )
    order = clustered_label_order(profiles)
    assert sorted(order) == sorted(profiles.index)
    for x, y in (("A1", "A2"), ("B1", "B2")):
        assert abs(order.index(x) - order.index(y)) == 1, order
    assert clustered_label_order(profiles.iloc[:2]) == ["A1", "B1"]


def test_every_claim_holds_on_the_planted_results(planted_stenosis):
    results, spec = planted_stenosis
    summary = stenosis_summary(results, spec)
    values = summary.set_index("metric")["value"]
    assert values["da_Lymph"] < -0.5 and values["da_Fib"] > 0.5
    assert values["strongest_rank"] == 1.0 and values["strongest_ratio"] > 3
    assert values["lfc_CDH11"] == pytest.approx(1.0, abs=0.05)
    assert values["unique_margin_LUM"] == pytest.approx(2.0, abs=0.1)
    claims = stenosis_claims(summary, spec, "B2", "B1")
    assert list(claims["claim"]) == [
        "fewer_Lymph_in_B2",
        "more_Fib_in_B2",
        "strongest_effect_in_focus",
        "CDH11_up_in_B2",
        "LUM_up_most_in_Peri",
        "TGFBI_up_most_in_Peri",
    ]
    assert claims["holds"].astype(bool).all(), claims


def test_claims_fail_where_the_results_disagree(planted_stenosis):
    results, spec = planted_stenosis
    flipped_da = results.da.copy()
    flipped_da["log_ratio"] = -flipped_da["log_ratio"]
    flipped_test = results.da_test.assign(mean_in=-results.da_test["mean_in"])
    effects = results.effects.copy()
    effects["behavior: B2 vs B1"] = effects["behavior: B2 vs B1"].iloc[::-1].to_numpy()
    other = dataclasses.replace(results, da=flipped_da, da_test=flipped_test, effects=effects)
    claims = stenosis_claims(stenosis_summary(other, spec), spec, "B2", "B1").set_index("claim")
    assert not claims.loc["fewer_Lymph_in_B2", "holds"]
    assert not claims.loc["more_Fib_in_B2", "holds"]
    assert not claims.loc["strongest_effect_in_focus", "holds"]
    # the DE comparison reported the other way round (B1 vs B2): the genes' signs follow
    de = results.de.assign_coords(covariate=["behavior: B1 vs B2"])
    turned = dataclasses.replace(results, de=de)
    claims = stenosis_claims(stenosis_summary(turned, spec), spec, "B2", "B1").set_index("claim")
    assert not claims.loc["CDH11_up_in_B2", "holds"]


def test_a_label_or_gene_absent_from_the_data_is_not_computed(planted_stenosis):
    results, spec = planted_stenosis
    claims = dataclasses.replace(
        spec.claims, fewer_in_a=("Glia",), up_in_a=("XIST",), strongest="Glia"
    )
    other = dataclasses.replace(spec, claims=claims)
    table = stenosis_claims(stenosis_summary(results, other), other, "B2", "B1")
    table = table.set_index("claim")
    for claim in ("fewer_Glia_in_B2", "XIST_up_in_B2", "strongest_effect_in_focus"):
        assert table.loc[claim, "ours"] == "not computed"


def test_label_profiles_leave_out_labels_without_cells(planted_stenosis):
    results, _ = planted_stenosis
    de = results.de.assign_coords(n_cells=("group", [0, 120, 80, 60]))
    assert list(label_lfc_profiles(de).index) == ["Fib", "Lymph", "Peri"]
