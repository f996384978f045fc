"""The paper's cohort statements (Fig. 3, Extended Data Fig. 1, Supp. Fig. 2) checked on our outputs.

:class:`CohortResults` holds what the workflow wrote for one cohort entry (the stratification,
its derived donor groups, the named DA and DE comparisons, the integration metrics), loaded;
:func:`cohort_summary` turns it into numbers (``method``, ``metric``, ``value``) and
:func:`cohort_claims` into the claims table of ``metrics/claims.tsv``: claim, what the paper
reports, our value, the signed margin and whether it holds (empty when the number cannot be
computed, e.g. a label absent from the data). The entry's ``figures.fig3`` settings
(:class:`~mrvi_repro.settings.figures.Fig3Spec`) say which covariates, labels and genes the
claims are about.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mrvi_repro.analysis import compare_sample_groups

from ._claims import Claim, claims_with_missing
from ._metrics import intra_cluster_distance_ratio

if TYPE_CHECKING:
    import xarray as xr

    from mrvi_repro.settings.figures import Fig3Spec

logger = logging.getLogger(__name__)

#: Weights of the integration score (scib's overall score: 0.6 biology, 0.4 mixing).
BIO_WEIGHT = 0.6
#: The integration metrics of biology conservation (the rest measure sample mixing).
BIO_METRICS = ("silhouette_label", "isolated_labels", "nmi_kmeans", "ari_kmeans")
#: Threshold of the claims that are tests.
ALPHA = 0.05
#: Smallest effect a directional claim counts: a mean DA log ratio or a module's mean LFC beyond
#: it (the default delta of the paper's DA cluster test, |difference| <= 0.1 being "no change";
#: for log2 fold changes, 7 %), so that a value near zero does not make a claim hold.
MIN_EFFECT = 0.1


@dataclass(frozen=True)
class CohortResults:
    """The workflow's outputs for one cohort entry, loaded (``pipeline.figures`` reads them).

    Attributes
    ----------
    obs
        Per cell (index: cell name): the ``labels_key`` and ``sample_key`` columns.
    labels_key, sample_key
        The cell-type and the sample columns of ``obs``.
    samples
        Per sample (index: sample name): the sample covariates.
    stratification
        ``analysis/stratification.nc``.
    groups
        Sample -> derived group of the figure's ``sample_groups`` set (``g1``, ``g2``, ...).
    group_cluster
        The stratification cluster those groups were cut from.
    da, da_tests
        DA comparison name -> its ``da.nc`` and its ``cluster_test.tsv``.
    de, modules
        The figure's DE comparison (``de.nc``, with ``module_activity``) and ``modules.tsv``.
    integration
        ``metrics/integration.tsv``.
    """

    obs: pd.DataFrame
    labels_key: str
    sample_key: str
    samples: pd.DataFrame
    stratification: xr.Dataset
    groups: pd.Series
    group_cluster: str
    da: Mapping[str, xr.Dataset]
    da_tests: Mapping[str, pd.DataFrame]
    de: xr.Dataset
    modules: pd.DataFrame
    integration: pd.DataFrame


def cell_clusters(stratification: xr.Dataset) -> pd.Series:
    """Return each cell's stratification cluster (``cell_cluster`` of ``stratification.nc``).

    Both as text: index the cell names, values the cluster names.
    """
    return pd.Series(
        stratification["cell_cluster"].values.astype(str),
        index=stratification["cell"].values.astype(str),
    )


def case_groups(results: CohortResults, spec: Fig3Spec) -> tuple[str, str] | None:
    """Return the two largest groups of mostly-case samples, earlier onset first; ``None`` below two.

    A group is a case group when most of its samples have ``condition == case``; the two with
    the most samples are returned, ordered by their median ``onset`` (NaN last).
    """
    condition = results.samples[spec.condition].astype(str).reindex(results.groups.index)
    is_case = (condition == spec.case).groupby(results.groups).mean()
    cases = [str(g) for g in is_case.index[is_case > 0.5]]
    if len(cases) < 2:
        return None
    sizes = results.groups.value_counts()
    two = sorted(cases, key=lambda g: (-sizes[g], g))[:2]
    onset = pd.to_numeric(results.samples[spec.onset], errors="coerce")
    medians = {g: onset.reindex(results.groups.index[results.groups == g]).median() for g in two}
    early, late = sorted(two, key=lambda g: (np.isnan(medians[g]), medians[g], g))
    return early, late


def onset_test(results: CohortResults, spec: Fig3Spec) -> pd.Series | None:
    """Mann-Whitney U test of ``onset`` between the two case groups (later vs earlier group).

    A row of :func:`~mrvi_repro.analysis.compare_sample_groups` (``group_a`` the later group);
    ``None`` without two case groups.
    """
    pair = case_groups(results, spec)
    if pair is None:
        return None
    early, late = pair
    values = pd.to_numeric(results.samples[spec.onset], errors="coerce").rename(spec.onset)
    return compare_sample_groups(values, results.groups, group_a=late, group_b=early).iloc[0]


def separation_test(
    matrix: xr.DataArray, labels: pd.Series, *, n_permutations: int = 999, seed: int = 0
) -> tuple[float, float]:
    """Whether samples of a label are nearer each other than to the others, with a p-value.

    The statistic is :func:`~mrvi_repro.metrics.intra_cluster_distance_ratio` (mean over samples
    of nearest same-label over nearest other-label distance; below 1 when the labels separate);
    the p-value is the share of label permutations with a ratio as low or lower (one-sided,
    ``(1 + k) / (1 + n_permutations)``).

    Parameters
    ----------
    matrix
        Sample distances (``sample_x``, ``sample_y``).
    labels
        Sample -> label; samples of the matrix without a label are left out.
    """
    samples = [str(s) for s in matrix["sample_x"].values if str(s) in labels.index]
    d = matrix.sel(sample_x=samples, sample_y=samples).values.astype(np.float64)
    g = labels.reindex(samples).astype(str).to_numpy()
    observed = intra_cluster_distance_ratio(d, g)
    rng = np.random.default_rng(seed)
    null = np.array(
        [intra_cluster_distance_ratio(d, rng.permutation(g)) for _ in range(n_permutations)]
    )
    pvalue = (1.0 + float((null <= observed).sum())) / (1.0 + n_permutations)
    return observed, pvalue


def contrast_ends(de: xr.Dataset) -> tuple[str, str]:
    """Return ``(a, b)`` of a DE comparison's reported contrast (``"<covariate>: <a> vs <b>"``)."""
    label = str(de["covariate"].values[0])
    a, _, b = label.split(": ", 1)[-1].partition(" vs ")
    return a, b


def mean_lfc(de: xr.Dataset) -> pd.Series:
    """Return a DE comparison's mean LFC per gene over its cells (its groups weighted by size).

    ``de``: the comparison's dataset with ``lfc`` (covariate, group, gene) and ``n_cells``
    (group); its first (only) contrast.
    """
    lfc = de["lfc"].isel(covariate=0).values
    weights = de["n_cells"].values.astype(float)
    mean = np.nansum(lfc * weights[:, None], 0) / weights.sum()
    return pd.Series(mean, index=de["gene"].values.astype(str))


def module_of(modules: pd.DataFrame, genes: tuple[str, ...]) -> str | None:
    """Return the gene module holding most of ``genes`` (``None`` when none of them is in a module)."""
    by_gene = modules.assign(module=modules["module"].astype(str)).set_index("gene")["module"]
    present = [g for g in genes if g in by_gene.index]
    if not present:
        return None
    return str(by_gene[present].mode().sort_values().iloc[0])


def _da_label_means(
    results: CohortResults, name: str, labels: tuple[str, ...], sign: float
) -> dict[str, float]:
    """Mean DA log ratio of each label's cells in comparison ``name``, times ``sign``."""
    table = results.da_tests[name].assign(cluster=lambda t: t["cluster"].astype(str))
    means = table.set_index("cluster")["mean_in"]
    return {label: sign * float(means.get(label, np.nan)) for label in labels}


def _integration_scores(integration: pd.DataFrame) -> dict[str, float]:
    """Per method: 0.6 x mean of the label metrics + 0.4 x mean of the mixing metrics."""
    scores = {}
    for method, rows in integration.groupby("method", sort=False):
        values = rows.set_index("metric")["value"].astype(float)
        bio = values[values.index.isin(BIO_METRICS)].mean()
        mix = values[~values.index.isin(BIO_METRICS)].mean()
        scores[str(method)] = BIO_WEIGHT * bio + (1 - BIO_WEIGHT) * mix
    return scores


def _comparison_of(results: CohortResults, spec: Fig3Spec, covariate: str) -> str | None:
    """Return the figure's first DA comparison of ``covariate`` (by its ``covariate`` attribute)."""
    for name in spec.da:
        if results.da[name].attrs.get("covariate") == covariate:
            return name
    return None


def cohort_summary(
    results: CohortResults, spec: Fig3Spec, *, n_permutations: int = 999, seed: int = 0
) -> pd.DataFrame:
    """Return the numbers behind the cohort claims: a ``method`` / ``metric`` / ``value`` table.

    Metrics (method ``mrvi`` unless said): ``integration_score`` per method of the integration
    table; ``n_clusters`` of the stratification and ``compartment_clusters`` (distinct majority
    clusters of the ``compartments`` found in the data, ``n_compartments`` of them);
    ``condition_ratio`` / ``condition_pvalue`` (:func:`separation_test` of ``condition`` in the
    group cluster's matrix); ``onset_pvalue`` (:func:`onset_test`); ``da_case_<label>`` (mean DA
    log ratio, cases vs controls) and ``da_later_<label>`` (later vs earlier case group);
    ``early_module_lfc`` (mean LFC, earlier vs later group, of the module of the
    ``early_module_genes``) and ``n_gene_modules``.
    """
    rows: list[tuple[str, str, float]] = []
    for method, score in _integration_scores(results.integration).items():
        rows.append((method, "integration_score", score))
    clusters = cell_clusters(results.stratification)
    rows.append(("mrvi", "n_clusters", float(clusters.nunique())))
    labels = results.obs[results.labels_key].astype(str).reindex(clusters.index)
    majority = {}
    for name, members in spec.compartments.items():
        inside = clusters[labels.isin(members).to_numpy()]
        if len(inside):
            majority[name] = str(inside.value_counts().index[0])
    logger.info("majority stratification cluster of each compartment: %s", majority)
    rows.append(("mrvi", "n_compartments", float(len(majority))))
    rows.append(
        ("mrvi", "compartment_clusters", float(len(set(majority.values()))) if majority else np.nan)
    )
    matrix = results.stratification["distance"].sel(cluster=results.group_cluster)
    condition = results.samples[spec.condition].astype(str)
    ratio, pvalue = separation_test(
        matrix,
        condition[condition.isin([spec.case, spec.control])],
        n_permutations=n_permutations,
        seed=seed,
    )
    rows += [("mrvi", "condition_ratio", ratio), ("mrvi", "condition_pvalue", pvalue)]
    test = onset_test(results, spec)
    rows.append(("mrvi", "onset_pvalue", float(test["pvalue"]) if test is not None else np.nan))
    case_da = _comparison_of(results, spec, spec.condition)
    if case_da is not None:
        a = results.da[case_da].attrs.get("group_a", "")
        sign = 1.0 if a == spec.case else -1.0 if a == spec.control else np.nan
        for label, value in _da_label_means(
            results, case_da, spec.claims.fewer_in_case, sign
        ).items():
            rows.append(("mrvi", f"da_case_{label}", value))
    pair = case_groups(results, spec)
    group_da = _comparison_of(results, spec, spec.sample_groups)
    if group_da is not None and pair is not None:
        a, b = results.da[group_da].attrs.get("group_a"), results.da[group_da].attrs.get("group_b")
        sign = 1.0 if (a, b) == (pair[1], pair[0]) else -1.0 if (a, b) == pair else np.nan
        later = _da_label_means(results, group_da, spec.claims.more_in_later_group, sign)
        for label, value in later.items():
            rows.append(("mrvi", f"da_later_{label}", value))
    rows.append(("mrvi", "n_gene_modules", float(results.modules["module"].nunique())))
    module = module_of(results.modules, spec.claims.early_module_genes)
    if module is not None and pair is not None:
        a, b = contrast_ends(results.de)
        sign = 1.0 if (a, b) == pair else -1.0 if (a, b) == (pair[1], pair[0]) else np.nan
        lfc = results.modules.loc[results.modules["module"].astype(str) == module, "mean_lfc"]
        rows.append(("mrvi", "early_module_lfc", sign * float(lfc.mean())))
    return pd.DataFrame(rows, columns=["method", "metric", "value"])


def cohort_claim_list(spec: Fig3Spec, summary: pd.DataFrame) -> list[Claim]:
    """Return the paper's Fig. 3 statements as :class:`~mrvi_repro.metrics.Claim` checks on the summary."""
    values = dict(
        zip(zip(summary["method"], summary["metric"], strict=True), summary["value"], strict=True)
    )
    cond = f"{spec.condition} {spec.case} vs {spec.control}"
    claims = [
        Claim(
            f"u_integrates_better_than_{method}",
            f"u's integration score (0.6 x labels kept + 0.4 x samples mixed) above {method}'s",
            "u above PCA and scVI (Supp. Fig. 2)",
            ("mrvi", "integration_score"),
            (method, "integration_score"),
        )
        for method in ("scvi", "pca")
    ]
    n_compartments = values.get(("mrvi", "n_compartments"), 0.0)
    if n_compartments >= 2:
        claims.append(
            Claim(
                "one_cluster_per_compartment",
                f"The stratification puts the {int(n_compartments)} compartments "
                f"({', '.join(spec.compartments)}) in as many clusters (distinct majority clusters)",
                "three clusters: myeloid, T/NK, B (Fig. 3c)",
                ("mrvi", "compartment_clusters"),
                n_compartments - 0.5,
            )
        )
    claims += [
        Claim(
            "condition_separates_samples",
            f"In the {spec.sample_groups} cluster's distances, {spec.case} samples are nearer "
            f"each other than to {spec.control} ones (permutation p < {ALPHA})",
            "cases and controls separate (Fig. 3d)",
            ("mrvi", "condition_pvalue"),
            ALPHA,
            higher_is_better=False,
        ),
        Claim(
            "case_groups_differ_in_onset",
            f"The two {spec.case} groups of {spec.sample_groups} differ in {spec.onset} "
            f"(Mann-Whitney U p < {ALPHA})",
            "p < 0.05 (Extended Data Fig. 1)",
            ("mrvi", "onset_pvalue"),
            ALPHA,
            higher_is_better=False,
        ),
    ]
    claims += [
        Claim(
            f"fewer_{label}_in_case",
            f"{label} cells depleted in {cond} (mean DA log ratio below -{MIN_EFFECT:g})",
            "decrease of CD16+ monocytes and DCs (Fig. 3e)",
            ("mrvi", f"da_case_{label}"),
            -MIN_EFFECT,
            higher_is_better=False,
        )
        for label in spec.claims.fewer_in_case
    ]
    claims += [
        Claim(
            f"more_{label}_in_later_group",
            f"{label} cells enriched in the {spec.case} group with the later {spec.onset} "
            f"(mean DA log ratio above {MIN_EFFECT:g})",
            "shift toward CD16+ monocytes with higher DSS (Fig. 3e)",
            ("mrvi", f"da_later_{label}"),
            MIN_EFFECT,
        )
        for label in spec.claims.more_in_later_group
    ]
    if spec.claims.early_module_genes:
        claims.append(
            Claim(
                "early_module_up_early",
                f"The gene module of {', '.join(spec.claims.early_module_genes)} is up in the "
                f"{spec.case} group with the earlier {spec.onset} (mean LFC above {MIN_EFFECT:g})",
                "interferon module up in the group with lower DSS (Fig. 3f)",
                ("mrvi", "early_module_lfc"),
                MIN_EFFECT,
            )
        )
    return claims


def cohort_claims(summary: pd.DataFrame, spec: Fig3Spec) -> pd.DataFrame:
    """Return the claims table (:data:`~mrvi_repro.metrics.CLAIM_COLUMNS`) of a :func:`cohort_summary`.

    Every claim has a row: one whose number could not be computed (a label or gene absent
    from the data, fewer than two case groups) has an empty ``ours``, ``margin`` and ``holds``.
    """
    return claims_with_missing(summary, cohort_claim_list(spec, summary))
