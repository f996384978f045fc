"""The numbers behind the disease-behaviour figure (the paper's Fig. 5) and its claims.

:class:`StenosisResults` holds what the workflow wrote for an entry asking for ``fig5`` (loaded
by :func:`mrvi_repro.pipeline.figures.load_stenosis_results`): per-cell effect sizes of the
multivariate DE, the DE comparison of the analysed subset (stromal cells, B2 vs B1) with its
per-cell LFCs of the figure's genes, the DA comparison and its cluster-level test, and normalised
expression of the figure's genes. The functions here derive what
the panels and the claims read: effect sizes as squared norms of beta, the cell types' order by
hierarchical clustering of their LFC profiles, and the claims table.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ._claims import Claim, claims_with_missing
from ._cohort import MIN_EFFECT, contrast_ends

if TYPE_CHECKING:
    import xarray as xr

    from mrvi_repro.settings.figures import Fig5Spec

logger = logging.getLogger(__name__)


def _key(name: str) -> str:
    """Return a label or gene as part of a claim's key (other characters runs -> one ``_``)."""
    return re.sub(r"[^A-Za-z0-9.+-]+", "_", name).strip("_")


@dataclass(frozen=True)
class StenosisResults:
    """An entry's outputs for the disease-behaviour figure, loaded.

    Attributes
    ----------
    obs
        Every cell (index: cell names): ``labels_key``, ``sample_key`` and ``coarse`` (the
        figure's coarse label, ``"other"`` for unmatched cells).
    labels_key, sample_key
        The entry's keys.
    samples
        Per sample (index): the sample covariates the figure reads.
    effects
        Every cell x reported contrast of the multivariate DE: squared norm of beta
        (:func:`effect_norms`).
    de
        The DE comparison's dataset: ``effect_size`` per analysed cell, ``lfc`` per label
        (contrast, group, gene) with ``n_cells``.
    lfc
        Analysed cells x the figure's genes: per-cell LFCs of the comparison's contrast.
    expression
        Analysed cells x the figure's genes: library-size-normalised, log1p expression.
    da, da_test
        The DA comparison (``log_ratio`` per cell) and its cluster-level test per label.
    markers
        The dot-plot table of the subclusters' marker genes (Extended Data Fig. 7b;
        :func:`~mrvi_repro.analysis.marker_genes`), ``None`` when not ranked.
    """

    obs: pd.DataFrame
    labels_key: str
    sample_key: str
    samples: pd.DataFrame
    effects: pd.DataFrame
    de: xr.Dataset
    lfc: pd.DataFrame
    expression: pd.DataFrame
    da: xr.Dataset
    da_test: pd.DataFrame
    markers: pd.DataFrame | None = None

    @property
    def subset(self) -> pd.Index:
        """The DE comparison's cells (the stromal cells of panels b-f)."""
        return self.lfc.index

    def labels(self, cells: pd.Index | None = None) -> pd.Series:
        """Return each cell's label (``labels_key``), for ``cells`` (default: all)."""
        labels = self.obs[self.labels_key].astype(str)
        return labels if cells is None else labels.reindex(cells)

    def sample_values(self, column: str, cells: pd.Index | None = None) -> pd.Series:
        """Return a sample covariate per cell (for ``cells``, default all)."""
        samples = self.obs[self.sample_key].astype(str)
        if cells is not None:
            samples = samples.reindex(cells)
        return samples.map(self.samples[column].astype(str))


def effect_norms(de: xr.Dataset, covariates: tuple[str, ...] | list[str]) -> pd.DataFrame:
    """Per-cell effect size of each contrast on ``covariates``: the squared norm of its beta.

    The paper's Fig. 5a effect size: sum over latent dimensions of the contrast's coefficients
    squared (``beta`` of :func:`~mrvi_repro.analysis.differential_expression`, latent units,
    averaged over draws of u).

    Returns
    -------
    Cells x contrasts (names as in the DE dataset, ``"<covariate>: <a> vs <b>"`` or
    ``"<covariate> (per unit)"``: the DE's named contrasts), in the order of ``covariates``.

    Raises
    ------
    ValueError
        When the dataset has no ``beta`` or no contrast on one of the covariates.
    """
    if "beta" not in de:
        msg = "the DE dataset has no beta (cell, covariate, latent)"
        raise ValueError(msg)
    names = [str(c) for c in de["covariate"].values]
    chosen = []
    for cov in covariates:
        found = [n for n in names if n.startswith(f"{cov}: ") or n == f"{cov} (per unit)"]
        if not found:
            msg = f"the DE dataset reports no contrast on {cov!r} (it has {names})"
            raise ValueError(msg)
        chosen += [n for n in found if n not in chosen]
    beta = de["beta"].sel(covariate=chosen).values.astype(np.float64)
    norms = np.square(beta).sum(-1)
    return pd.DataFrame(norms, index=de["cell"].values.astype(str), columns=chosen)


def label_lfc_profiles(de: xr.Dataset) -> pd.DataFrame:
    """Return labels x genes: the DE comparison's mean LFC per label (labels with cells)."""
    lfc = de["lfc"].isel(covariate=0)
    table = pd.DataFrame(
        lfc.values, index=lfc["group"].values.astype(str), columns=de["gene"].values
    )
    counts = pd.Series(de["n_cells"].values, index=table.index)
    return table[counts > 0].dropna(how="all")


def clustered_label_order(profiles: pd.DataFrame) -> list[str]:
    """Labels in the leaf order of an average-linkage clustering of their LFC profiles.

    The order of the cell types in Fig. 5e (Euclidean distances between the labels' mean LFC
    over genes, optimal leaf ordering); fewer than three labels keep their order.
    """
    from scipy.cluster.hierarchy import leaves_list, linkage

    labels = list(profiles.index)
    if len(labels) < 3:
        return labels
    x = np.nan_to_num(profiles.to_numpy(dtype=np.float64))
    order = leaves_list(linkage(x, method="average", metric="euclidean", optimal_ordering=True))
    return [labels[i] for i in order]


def da_contrast(results: StenosisResults) -> tuple[str, str, str]:
    """``(covariate, a, b)`` of the DA comparison (log q(a) - log q(b))."""
    attrs = results.da.attrs
    return (
        str(attrs.get("covariate", "")),
        str(attrs.get("group_a", "")),
        str(attrs.get("group_b", "")),
    )


def behaviour_effect(results: StenosisResults) -> str | None:
    """Return the effect-size column of the DA comparison's contrast (``behavior: B2 vs B1``).

    ``None`` when the multivariate DE reports no such contrast (the panels and the claim that
    need it then say so).
    """
    covariate, a, b = da_contrast(results)
    name = f"{covariate}: {a} vs {b}"
    return name if name in results.effects.columns else None


def stenosis_summary(results: StenosisResults, spec: Fig5Spec) -> pd.DataFrame:
    """Return the numbers behind the Fig. 5 claims: a ``method`` / ``metric`` / ``value`` table.

    Metrics (method ``mrvi``): ``da_<label>`` (mean DA log ratio, ``a`` vs ``b`` of the DA
    comparison, of the label's cells), ``strongest_rank`` (rank of ``claims.strongest`` among
    the labels by mean effect size of the behaviour contrast, 1 = strongest),
    ``strongest_ratio`` (its mean effect size over the next label's), ``lfc_<gene>`` (mean
    per-cell LFC of the DE comparison's contrast over the analysed cells, ``a`` vs ``b`` as the
    DA comparison) and ``unique_margin_<gene>`` (the gene's mean LFC in ``strongest`` minus its
    largest mean LFC in another analysed label).
    """
    rows: list[tuple[str, str, float]] = []
    means = results.da_test.assign(cluster=lambda t: t["cluster"].astype(str))
    means = means.set_index("cluster")["mean_in"]
    for label in (*spec.claims.fewer_in_a, *spec.claims.more_in_a):
        rows.append(("mrvi", f"da_{label}", float(means.get(label, np.nan))))
    column = behaviour_effect(results)
    if spec.claims.strongest is not None and column is None:
        logger.warning("no effect size of the DA comparison's contrast: %s", da_contrast(results))
    if spec.claims.strongest is not None and column is not None:
        effect = results.effects[column]
        by_label = effect.groupby(results.labels(effect.index).to_numpy()).mean()
        by_label = by_label.sort_values(ascending=False)
        logger.info("mean effect size of %s per label: %s", effect.name, by_label.head(5).to_dict())
        if spec.claims.strongest in by_label.index:
            rank = list(by_label.index).index(spec.claims.strongest) + 1
            others = by_label.drop(spec.claims.strongest)
            ratio = by_label[spec.claims.strongest] / others.iloc[0] if len(others) else np.nan
            rows += [("mrvi", "strongest_rank", float(rank)), ("mrvi", "strongest_ratio", ratio)]
    a, b = contrast_ends(results.de)
    _, da_a, da_b = da_contrast(results)
    sign = -1.0 if (a, b) == (da_b, da_a) else 1.0
    if {a, b} != {da_a, da_b}:
        logger.warning(
            "the DE comparison reports %s vs %s, the DA comparison %s vs %s: the gene claims "
            "are the DE's %s vs %s",
            *(a, b, da_a, da_b, a, b),
        )
    for gene in spec.claims.up_in_a:
        value = sign * float(results.lfc[gene].mean()) if gene in results.lfc else np.nan
        rows.append(("mrvi", f"lfc_{gene}", value))
    strongest = spec.claims.strongest
    if strongest is not None and spec.claims.unique_to_strongest:
        profiles = sign * label_lfc_profiles(results.de)
        for gene in spec.claims.unique_to_strongest:
            margin = np.nan
            if strongest in profiles.index and gene in profiles.columns and len(profiles) > 1:
                column = profiles[gene]
                margin = float(column[strongest] - column.drop(strongest).max())
            rows.append(("mrvi", f"unique_margin_{gene}", margin))
    return pd.DataFrame(rows, columns=["method", "metric", "value"])


def stenosis_claim_list(spec: Fig5Spec, a: str, b: str) -> list[Claim]:
    """Return the paper's Fig. 5 statements as checks on :func:`stenosis_summary` (a vs b)."""
    cmp = f"{a} vs {b}"
    claims = [
        Claim(
            f"fewer_{_key(label)}_in_{_key(a)}",
            f"{label} cells depleted in {cmp} (mean DA log ratio below -{MIN_EFFECT:g})",
            "fewer lymphatic and LTC4S+ endothelial cells in B2 (Fig. 5c, ED 7c)",
            ("mrvi", f"da_{label}"),
            -MIN_EFFECT,
            higher_is_better=False,
        )
        for label in spec.claims.fewer_in_a
    ]
    claims += [
        Claim(
            f"more_{_key(label)}_in_{_key(a)}",
            f"{label} cells enriched in {cmp} (mean DA log ratio above {MIN_EFFECT:g})",
            "more fibroblasts (ADAMDEC1+) in B2 (Fig. 5c, ED 7c)",
            ("mrvi", f"da_{label}"),
            MIN_EFFECT,
        )
        for label in spec.claims.more_in_a
    ]
    if spec.claims.strongest is not None:
        claims.append(
            Claim(
                "strongest_effect_in_focus",
                f"{spec.claims.strongest} cells carry the largest mean effect size of {a} "
                "(rank 1 among the labels)",
                "strongest B2 effect in a small pericyte population (Fig. 5a, ED 6c)",
                ("mrvi", "strongest_rank"),
                1.5,
                higher_is_better=False,
            )
        )
    claims += [
        Claim(
            f"{_key(gene)}_up_in_{_key(a)}",
            f"{gene} up in {cmp} in the analysed cells (mean LFC above {MIN_EFFECT:g})",
            "CDH11 up in B2 stromal cells (Fig. 5d-e)",
            ("mrvi", f"lfc_{gene}"),
            MIN_EFFECT,
        )
        for gene in spec.claims.up_in_a
    ]
    claims += [
        Claim(
            f"{_key(gene)}_up_most_in_{_key(str(spec.claims.strongest))}",
            f"{gene}'s mean LFC ({cmp}) is larger in {spec.claims.strongest} than in any other "
            "analysed label",
            "LUM, PDGFRB, TGFBI up uniquely in HIGD1B+STEAP4+ pericytes (Fig. 5e)",
            ("mrvi", f"unique_margin_{gene}"),
            0.0,
        )
        for gene in spec.claims.unique_to_strongest
    ]
    return claims


def stenosis_claims(summary: pd.DataFrame, spec: Fig5Spec, a: str, b: str) -> pd.DataFrame:
    """Return the claims table (:data:`~mrvi_repro.metrics.CLAIM_COLUMNS`) of a summary.

    A claim whose number could not be computed (a label or gene absent) reads "not computed".
    """
    return claims_with_missing(summary, stenosis_claim_list(spec, a, b))
