import numpy as np
import pandas as pd
import pytest

from mrvi_repro.metrics import (
    SEMISYNTHETIC_CLAIMS,
    Claim,
    claims_over_seeds,
    claims_table,
    summary_values,
)

CLAIMS = (
    Claim("a_beats_b", "A above B", "A above B", ("a", "auc"), ("b", "auc")),
    Claim("a_small", "A's error below 0.3", "small", ("a", "err"), 0.3, higher_is_better=False),
)


def summary(a_auc, b_auc, a_err):
    rows = [("a", "auc", a_auc), ("b", "auc", b_auc), ("a", "err", a_err)]
    return pd.DataFrame(rows, columns=["method", "metric", "value"])


def test_one_run_gives_signed_margins():
    table = claims_table(summary(0.9, 0.7, 0.4), CLAIMS).set_index("claim")
    assert table.loc["a_beats_b", "margin"] == pytest.approx(0.2)
    assert bool(table.loc["a_beats_b", "holds"])
    assert table.loc["a_small", "margin"] == pytest.approx(-0.1)
    assert not table.loc["a_small", "holds"]
    assert table.loc["a_beats_b", "ours"] == "a auc 0.900 vs b 0.700"


def test_a_claim_without_its_entries_is_left_out():
    partial = summary(0.9, 0.7, 0.4).iloc[:2]
    assert list(claims_table(partial, CLAIMS)["claim"]) == ["a_beats_b"]


def test_verdicts_follow_the_spread_over_seeds():
    rng = np.random.default_rng(0)
    runs = [summary(0.9 + rng.normal(0, 0.01), 0.7, 0.3 + rng.normal(0, 0.05)) for _ in range(5)]
    verdicts = claims_over_seeds(runs, CLAIMS).set_index("claim")
    assert verdicts.loc["a_beats_b", "verdict"] == "holds"
    assert verdicts.loc["a_beats_b", "n_hold"] == 5
    # the error straddles its threshold: no verdict
    assert verdicts.loc["a_small", "verdict"] == "undecided"
    worse = [summary(0.6 + d, 0.7, 0.5) for d in (0.0, 0.01, -0.01)]
    assert (
        claims_over_seeds(worse, CLAIMS).set_index("claim").loc["a_beats_b", "verdict"] == "fails"
    )
    with pytest.raises(ValueError, match="at least two runs"):
        claims_over_seeds(runs[:1], CLAIMS)


def test_the_semisynthetic_claims_name_metrics_of_the_summary():
    keys = [c.key for c in SEMISYNTHETIC_CLAIMS]
    assert len(set(keys)) == len(keys)
    metrics = {
        "da_pr_auc",
        "de_pearson_r",
        "top_split",
        "cophenetic_r",
        "silhouette_label",
        "silhouette_batch",
    }
    for claim in SEMISYNTHETIC_CLAIMS:
        assert claim.left[1] in metrics
    assert summary_values(summary(1, 2, 3))[("b", "auc")] == 2.0
