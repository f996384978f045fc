"""The paper's claims as checks on a metric summary, and their verdict over several seeds.

A claim compares two entries of a summary table (``method``, ``metric``, ``value``), or one entry
with a threshold: its *margin* is signed so that a positive margin means the claim holds on that
run. One run decides nothing when the margin is within the run-to-run spread, so
:func:`claims_over_seeds` gives each claim a verdict from several runs (seeds): ``holds`` when the
mean margin exceeds ``k`` standard deviations, ``fails`` when it is below minus ``k`` standard
deviations, else ``undecided``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

#: Columns of :func:`claims_table`.
CLAIM_COLUMNS = ("claim", "text", "paper", "ours", "margin", "holds")

#: Columns of :func:`claims_over_seeds`.
VERDICT_COLUMNS = ("claim", "text", "n_seeds", "n_hold", "mean_margin", "sd_margin", "verdict")

Entry = tuple[str, str]


def _number(value: float) -> str:
    """Three decimals, or three significant digits for a tiny non-zero value (a p-value, FDR)."""
    return f"{value:.3g}" if value != 0 and abs(value) < 1e-3 else f"{value:.3f}"


@dataclass(frozen=True)
class Claim:
    """One claim: ``left`` is better than ``right`` (an entry or a threshold).

    Attributes
    ----------
    key
        Short identifier.
    text
        The claim in words.
    paper
        What the paper reports for it.
    left
        ``(method, metric)`` of the summary table.
    right
        Another ``(method, metric)``, or a number.
    higher_is_better
        Whether the claim is ``left > right`` (else ``left < right``).
    """

    key: str
    text: str
    paper: str
    left: Entry
    right: Entry | float
    higher_is_better: bool = True

    def values(self, summary: Mapping[Entry, float]) -> tuple[float, float]:
        """Return the two compared values in ``summary`` ((method, metric) -> value)."""
        left = float(summary[self.left])
        right = self.right if isinstance(self.right, int | float) else summary[self.right]
        return left, float(right)

    def margin(self, summary: Mapping[Entry, float]) -> float:
        """Signed difference: positive when the claim holds on this summary."""
        left, right = self.values(summary)
        return left - right if self.higher_is_better else right - left

    def describe(self, summary: Mapping[Entry, float]) -> str:
        """Describe the compared values (``mrvi da_pr_auc 0.670 vs milo 0.820``)."""
        left, right = self.values(summary)
        name = f"{self.left[0]} {self.left[1]} {_number(left)}"
        if isinstance(self.right, int | float):
            return f"{name} vs {right:g}"
        return f"{name} vs {self.right[0]} {_number(right)}"


#: The claims of the paper's semi-synthetic benchmark (Results, Fig. 2, Supp. Fig. 2).
SEMISYNTHETIC_CLAIMS: tuple[Claim, ...] = (
    Claim(
        "da_mrvi_beats_milo",
        "MrVI's DA scores rank the planted DA cells better than Milo's (PR-AUC)",
        "MrVI above Milo (Fig. 2e)",
        ("mrvi", "da_pr_auc"),
        ("milo", "da_pr_auc"),
    ),
    Claim(
        "da_per_dimension_beats_milo",
        "As above with the paper-era per-dimension density estimate (how Fig. 2e was computed)",
        "MrVI above Milo (Fig. 2e)",
        ("mrvi_per_dimension", "da_pr_auc"),
        ("milo", "da_pr_auc"),
    ),
    Claim(
        "de_mrvi_beats_milode",
        "MrVI's subset-A LFCs correlate better with DESeq2 pseudobulk than miloDE's",
        "MrVI r above miloDE's (Fig. 2g)",
        ("mrvi", "de_pearson_r"),
        ("milode", "de_pearson_r"),
    ),
    Claim(
        "de_mrvi_correlates",
        "MrVI's subset-A LFCs correlate with DESeq2 pseudobulk (r >= 0.8)",
        "r about 0.9 (Fig. 2g)",
        ("mrvi", "de_pearson_r"),
        0.8,
    ),
    Claim(
        "tree_top_split",
        "The Ward tree of MrVI's subset-A distances recovers the planted root split",
        "recovered (Fig. 2c)",
        ("mrvi", "top_split"),
        0.5,
    ),
    Claim(
        "tree_beats_composition_pca",
        "MrVI's subset-A distances carry the planted hierarchy better than composition PCA's",
        "MrVI's matrix shows the hierarchy, the baselines' do not (Fig. 2c)",
        ("mrvi", "cophenetic_r"),
        ("composition_pca", "cophenetic_r"),
    ),
    Claim(
        "tree_beats_composition_scvi",
        "MrVI's subset-A distances carry the planted hierarchy better than composition scVI's",
        "as above (Fig. 2c)",
        ("mrvi", "cophenetic_r"),
        ("composition_scvi", "cophenetic_r"),
    ),
    Claim(
        "tree_local_to_subset_a",
        "MrVI's distances carry the planted hierarchy in subset A more than in the subsets where "
        "none was planted (cophenetic r in A above the mean elsewhere)",
        "structure in A, none in B: sample effects are cell-state specific (Fig. 2c)",
        ("mrvi", "cophenetic_r"),
        ("mrvi", "cophenetic_r_other"),
    ),
    Claim(
        "u_keeps_cell_types",
        "u separates cell types better than PCA (silhouette of labels)",
        "u keeps cell types (Supp. Fig. 2)",
        ("mrvi", "silhouette_label"),
        ("pca", "silhouette_label"),
    ),
    Claim(
        "u_mixes_samples",
        "u mixes samples within cell types better than PCA (batch silhouette)",
        "u integrates samples (Supp. Fig. 2)",
        ("mrvi", "silhouette_batch"),
        ("pca", "silhouette_batch"),
    ),
)


def summary_values(summary: pd.DataFrame) -> dict[Entry, float]:
    """Turn a summary table into ``{(method, metric): value}``."""
    return {
        (m, k): float(v) for m, k, v in summary[["method", "metric", "value"]].itertuples(False)
    }


def claims_table(summary: pd.DataFrame, claims: Iterable[Claim]) -> pd.DataFrame:
    """Check each claim on one run: the compared values, the margin and whether it holds.

    Parameters
    ----------
    summary
        A metric summary (``method``, ``metric``, ``value``).
    claims
        The claims to check; a claim whose entries the summary lacks is left out.

    Returns
    -------
    One row per claim, columns :data:`CLAIM_COLUMNS`.
    """
    values = summary_values(summary)
    rows = []
    for claim in claims:
        needed = [claim.left] + ([] if isinstance(claim.right, int | float) else [claim.right])
        if any(entry not in values for entry in needed):
            continue
        margin = claim.margin(values)
        rows.append(
            (claim.key, claim.text, claim.paper, claim.describe(values), margin, margin > 0)
        )
    return pd.DataFrame(rows, columns=list(CLAIM_COLUMNS))


def claims_over_seeds(
    summaries: Iterable[pd.DataFrame], claims: Iterable[Claim], *, k: float = 2.0
) -> pd.DataFrame:
    """Judge each claim from several runs that differ only by their seeds.

    Parameters
    ----------
    summaries
        One metric summary per run (at least two).
    claims
        The claims.
    k
        Standard deviations the mean margin must clear for ``holds`` (or ``fails``).

    Returns
    -------
    One row per claim, columns :data:`VERDICT_COLUMNS`: runs, runs where it holds, the mean and
    standard deviation (ddof 1) of its margin, and the verdict.
    """
    claims = list(claims)
    tables = [claims_table(s, claims) for s in summaries]
    if len(tables) < 2:
        msg = f"a verdict needs at least two runs (got {len(tables)})"
        raise ValueError(msg)
    rows = []
    for claim in claims:
        margins = np.array(
            [
                t.loc[t["claim"] == claim.key, "margin"].iloc[0]
                for t in tables
                if claim.key in set(t["claim"])
            ]
        )
        if len(margins) < 2:
            continue
        mean, sd = float(margins.mean()), float(margins.std(ddof=1))
        verdict = "holds" if mean > k * sd else "fails" if mean < -k * sd else "undecided"
        rows.append(
            (claim.key, claim.text, len(margins), int((margins > 0).sum()), mean, sd, verdict)
        )
    return pd.DataFrame(rows, columns=list(VERDICT_COLUMNS))


def claims_with_missing(summary: pd.DataFrame, claims: Iterable[Claim]) -> pd.DataFrame:
    """Like :func:`claims_table`, with a row for every claim, in the given order.

    A claim whose numbers the summary lacks or are not finite (a label, gene or drug absent from
    the data) gets ``ours`` "not computed" and an empty ``margin`` and ``holds``.
    """
    claims = list(claims)
    table = claims_table(summary, claims).set_index("claim")
    rows = []
    for claim in claims:
        if claim.key in table.index and np.isfinite(table.loc[claim.key, "margin"]):
            rows.append(table.loc[claim.key].to_dict() | {"claim": claim.key})
        else:
            rows.append(
                {"claim": claim.key, "text": claim.text, "paper": claim.paper}
                | {"ours": "not computed", "margin": np.nan, "holds": pd.NA}
            )
    return pd.DataFrame(rows, columns=list(CLAIM_COLUMNS))
