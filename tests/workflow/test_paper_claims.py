"""The paper's qualitative claims on the semi-synthetic benchmark, checked on the default config.

One run of the default workflow (10,000 simulated PBMC-like cells, the paper's construction and
settings) up to the metric summary; each claim of Results "Retrieving known sample effects on a
semi-synthetic dataset" is one test. Claims that do not hold on this data are strict xfails whose
reason says what was found (bench/RESULTS.md, "Semi-synthetic benchmark"): they fail loudly the
day they start to hold. Slow: about 5 minutes on 2 cores.
"""

from __future__ import annotations

import pandas as pd
import pytest

pytestmark = [pytest.mark.workflow, pytest.mark.slow]


@pytest.fixture(scope="module")
def default_run(repo, tmp_path_factory, snakemake):
    """The default config's metric files: (summary as {(method, metric): value}, trees table)."""
    work = tmp_path_factory.mktemp("default")
    target = "results/semisynthetic/metrics/summary.tsv"
    # the target first: --configfile takes every value that follows it
    rc, out = snakemake(
        repo,
        target,
        "--cores",
        "2",
        "--directory",
        work,
        "--configfile",
        repo / "config" / "config.yaml",
        timeout=1800,
    )
    if rc != 0:  # not an AssertionError: the xfails below must not swallow a broken run
        raise RuntimeError(f"the default workflow failed:\n{out[-5000:]}")
    summary = pd.read_csv(work / target, sep="\t")
    values = {(m, k): v for m, k, v in summary.itertuples(index=False)}
    trees = pd.read_csv(work / "results/semisynthetic/metrics/trees.tsv", sep="\t")
    return values, trees


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="DA PR-AUC MrVI 0.668 < Milo 0.812: the aggregated-posterior mixture (paper Methods, "
    "fixed reference math) is a kernel density estimate with bandwidth = the posterior scale "
    "(~0.1, the spacing of the 30 nearest cells), so log ratios in unaffected cells scatter by "
    "+-0.95 around the +-0.2 planted effect; the paper-era package's per-dimension mixture, "
    "which produced Fig. 2e, scores 0.899 on the same model (bench/da_estimators.py); the "
    "reference scvi-tools 1.4.2 MrVI trained on the same file scores 0.665 with its own "
    "differential_abundance and 0.929 per dimension (bench/reference_da.py)",
)
def test_mrvi_da_beats_milo(default_run):
    values, _ = default_run
    assert values["mrvi", "da_pr_auc"] > values["milo", "da_pr_auc"]


def test_mrvi_per_dimension_da_beats_milo(default_run):
    # the paper's Fig. 2e as the paper computed it: the paper-era per-dimension estimator
    # (analysis.da.estimators of the default entry); 0.961 vs Milo 0.817 on the default run
    values, _ = default_run
    assert values["mrvi_per_dimension", "da_pr_auc"] > values["milo", "da_pr_auc"]


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="DE Pearson r MrVI 0.88 < miloDE 0.92 against DESeq2 pseudobulk: MrVI's decoded LFCs "
    "are shrunk non-linearly (slope ~0.6, large effects most) while miloDE's per-neighbourhood "
    "edgeR pseudobulks estimate the same quantity as the DESeq2 pseudobulk reference; the "
    "reference MrVI trained on the same file gives r 0.882 / 0.885 (seeds 0 / 1; "
    "bench/reference_claims.py)",
)
def test_mrvi_de_beats_milode(default_run):
    values, _ = default_run
    assert values["mrvi", "de_pearson_r"] > values["milode", "de_pearson_r"]


def test_mrvi_de_correlates_with_the_reference(default_run):
    values, _ = default_run
    assert values["mrvi", "de_pearson_r"] >= 0.8


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="the Ward tree of MrVI's subset-A matrix joins group 1 (the most distant group in the "
    "matrix) with group 2 before the root: Ward's size-weighted merge cost on a non-Euclidean "
    "matrix; average or complete linkage of the same matrix recover the planted root split; the "
    "reference MrVI's Ward and average trees miss it too (bench/reference_claims.py)",
)
def test_mrvi_recovers_the_planted_top_split(default_run):
    values, _ = default_run
    assert values["mrvi", "top_split"] == 1.0


def test_mrvi_distances_carry_the_hierarchy_best(default_run):
    values, _ = default_run
    for baseline in ("composition_pca", "composition_scvi"):
        assert values["mrvi", "cophenetic_r"] > values[baseline, "cophenetic_r"]


def test_mrvi_distances_are_small_where_nothing_was_planted(default_run):
    _, trees = default_run
    mine = trees[(trees["method"] == "mrvi") & (trees["metric"] == "inter_ratio")]
    others = mine[mine["subset"] != "A"]
    assert len(others) >= 3 and (others["value"] < 0.5).all(), others


def test_u_keeps_cell_types(default_run):
    values, _ = default_run
    assert values["mrvi", "silhouette_label"] > values["pca", "silhouette_label"]


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="silhouette_batch of u 0.848 < PCA 0.962, but the metric's value under random sample "
    "labels depends on the embedding (u 0.847, 50-D PCA 0.954 with samples permuted within cell "
    "types): it cannot rank embeddings of different dimension here; within subset A, u scores "
    "below its random level (0.839 vs 0.873): u still carries some of the planted subclusters",
)
def test_u_mixes_samples_better_than_pca(default_run):
    values, _ = default_run
    assert values["mrvi", "silhouette_batch"] > values["pca", "silhouette_batch"]
