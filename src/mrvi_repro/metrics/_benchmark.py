"""The semi-synthetic benchmark of the paper (Fig. 2): each method's outputs scored against the truth.

The ground truth is what :func:`mrvi_repro.data.semisynthetic.make_semisynthetic` stored in the data: per cell
``subset`` (A, B, C, Other) and ``da_cell``; per subject the covariates; in
``uns['semisynthetic']`` the subject tree (``subject_linkage`` over ``subject_order``) and the
Leiden cluster of each subset (``subset_clusters``). Three comparisons, one function each, each
returning a detail table for the figures and the tidy ``method`` / ``metric`` / ``value`` records
of the summary:

* DA (Fig. 2e): precision-recall of |log ratio| per cell (MrVI, Milo) for the strong-resampling
  covariate, truth = the cells of subsets B and C;
* DE (Fig. 2g): Pearson r of subset-A LFCs (MrVI, miloDE) against the DESeq2 pseudobulk LFCs of
  group 1 versus the rest;
* sample hierarchy (Fig. 2c): the Ward tree of each method's subset-A distance matrix against the
  planted tree (normalised Robinson-Foulds, top-level split, cophenetic correlation), and the
  same scores in the other subsets, where no hierarchy was planted.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ._metrics import (
    _curve_auc,
    cophenetic_correlation,
    inter_cluster_distance_ratio,
    intra_cluster_distance_ratio,
    lfc_pearson,
    linkage_from_distances,
    pr_curve,
    robinson_foulds,
    summary_table,
)

if TYPE_CHECKING:
    import anndata as ad
    import xarray as xr

logger = logging.getLogger(__name__)

#: The construction's sample covariates the benchmark tests: DA (strong resampling vs rest, in
#: subsets B and C) and DE (subject group 1 vs rest, in subset A).
DA_COVARIATE = "covariate_2_strong"
DE_COVARIATE = "covariate_1_G1"

#: Summary metric of the locality of sample effects: mean distance in the groups without a planted
#: hierarchy over subset A's (mean of their ``inter_ratio``).
LOCALITY = "distance_ratio_other"

#: Columns of the detail tables.
PR_COLUMNS = ("method", "recall", "precision", "auc")
LFC_COLUMNS = ("method", "gene", "lfc", "reference_lfc", "r")
TREE_COLUMNS = ("method", "group", "subset", "metric", "value")


@dataclass(frozen=True)
class SemisyntheticTruth:
    """Ground truth of a semi-synthetic dataset (see the module docstring)."""

    cells: np.ndarray
    subset: np.ndarray
    da_cell: np.ndarray
    subject_covariates: pd.DataFrame
    subject_linkage: np.ndarray
    subject_order: list[str]
    subset_clusters: dict[str, str]

    @classmethod
    def from_adata(cls, adata: ad.AnnData) -> SemisyntheticTruth:
        """Read the truth of :func:`mrvi_repro.data.semisynthetic.make_semisynthetic` from its AnnData."""
        info = adata.uns.get("semisynthetic")
        needed_obs = ("subset", "da_cell", DA_COVARIATE, DE_COVARIATE, "covariate_1")
        missing = [c for c in needed_obs if c not in adata.obs.columns]
        if info is None or missing:
            msg = (
                "not a semi-synthetic dataset: the benchmark needs the construction's "
                f"uns['semisynthetic'] and obs columns {list(needed_obs)}"
                + (f" (missing: {missing})" if missing else " (no uns['semisynthetic'])")
            )
            raise ValueError(msg)
        sample_key = str(info["sample_key"])
        covs = (
            adata.obs.groupby(sample_key, observed=True)[
                ["covariate_1", DA_COVARIATE, DE_COVARIATE]
            ]
            .first()
            .astype(str)
        )
        covs.index = covs.index.astype(str)
        return cls(
            cells=np.asarray(adata.obs_names, dtype=str),
            subset=adata.obs["subset"].astype(str).to_numpy(),
            da_cell=adata.obs["da_cell"].to_numpy().astype(bool),
            subject_covariates=covs,
            subject_linkage=np.asarray(info["subject_linkage"], dtype=np.float64),
            subject_order=[str(s) for s in info["subject_order"]],
            subset_clusters={str(k): str(v) for k, v in dict(info["subset_clusters"]).items()},
        )


def _align(values: np.ndarray, cells: np.ndarray, truth_cells: np.ndarray, name: str) -> np.ndarray:
    if not np.array_equal(cells, truth_cells):
        pos = pd.Index(cells).get_indexer(truth_cells)
        if (pos < 0).any():
            msg = f"{name}: {int((pos < 0).sum())} cells of the data are missing"
            raise ValueError(msg)
        values = values[pos]
    return values


def da_scores(
    truth: SemisyntheticTruth, results: Mapping[str, xr.Dataset], covariate: str = DA_COVARIATE
) -> dict[str, np.ndarray]:
    """Per-cell DA scores |log ratio| of each method's DA file, in the truth's cell order.

    ``results``: method -> Dataset with ``log_ratio_<covariate>`` over ``cell`` (MrVI's
    ``analysis/da.nc``, Milo's ``baselines/milo.nc``; NaN for cells Milo did not test).
    """
    out = {}
    for method, ds in results.items():
        var = f"log_ratio_{covariate}"
        if var not in ds:
            msg = (
                f"{method}: no DA for {covariate!r} (variables: {list(ds.data_vars)}); the "
                f"benchmark needs it among the method's tested covariates"
            )
            raise ValueError(msg)
        cells = np.asarray(ds["cell"].values, dtype=str)
        out[method] = np.abs(_align(ds[var].values.astype(np.float64), cells, truth.cells, method))
    return out


def da_benchmark(
    scores: Mapping[str, np.ndarray], truth: np.ndarray
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Precision-recall curves and AUCs of per-cell DA scores.

    Parameters
    ----------
    scores
        Method -> score per cell (higher: more likely DA; NaN: not scored, ranked lowest).
    truth
        Boolean per cell: the cell carries DA.

    Returns
    -------
    curves
        :data:`PR_COLUMNS`: every method's curve, its AUC repeated on each row.
    records
        Summary records ``da_pr_auc`` per method.
    """
    curves, records = [], []
    for method, s in scores.items():
        curve = pr_curve(s, truth)
        auc = _curve_auc(curve)
        curves.append(
            pd.DataFrame(
                {
                    "method": method,
                    "recall": curve["recall"],
                    "precision": curve["precision"],
                    "auc": auc,
                }
            )
        )
        records.append((method, "da_pr_auc", auc))
        logger.info("DA PR-AUC %s: %.3f", method, auc)
    return pd.concat(curves, ignore_index=True)[list(PR_COLUMNS)], summary_table(records)


def de_lfcs(
    mrvi_de: xr.Dataset,
    milode: xr.Dataset,
    deseq2: pd.DataFrame,
    *,
    group: str,
    covariate: str = DE_COVARIATE,
) -> tuple[dict[str, pd.Series], pd.Series]:
    """Return the subset-A LFCs (gene-indexed, log2) of MrVI and miloDE and the DESeq2 reference.

    Parameters
    ----------
    mrvi_de
        MrVI's ``analysis/de.nc``: ``lfc`` (covariate, group, gene), covariate coordinates named
        ``<covariate>_<level>`` (the design's columns: effect of that level vs the reference).
    milode
        miloDE's ``baselines/milode.nc``: ``lfc`` (covariate, group, gene), ``group_a`` the tested
        level of each covariate.
    deseq2
        The DESeq2 pseudobulk table (``baselines/deseq2.tsv``): ``covariate``, ``tested``,
        ``gene``, ``log2_fold_change``.
    group
        The group (Leiden cluster) of subset A in both LFC files.
    covariate
        The tested two-valued sample covariate.

    Returns
    -------
    ``({"mrvi": ..., "milode": ...}, reference)``, all for the same tested level.
    """
    ref_rows = deseq2[deseq2["covariate"] == covariate]
    if ref_rows.empty:
        msg = f"DESeq2 table has no rows for {covariate!r} (baselines.deseq2.covariates)"
        raise ValueError(msg)
    tested = str(ref_rows["tested"].iloc[0])
    reference = ref_rows.set_index("gene")["log2_fold_change"].astype(np.float64)
    if "covariate" not in milode.coords or covariate not in milode["covariate"].values:
        msg = f"miloDE did not test {covariate!r} (baselines.milode.covariates)"
        raise ValueError(msg)
    m = milode.sel(covariate=covariate)
    if str(m["group_a"].values) != tested:
        msg = f"miloDE tested level {m['group_a'].values} of {covariate!r}, DESeq2 {tested!r}"
        raise ValueError(msg)
    column = f"{covariate}_{tested}"
    if column not in mrvi_de["covariate"].values:
        msg = (
            f"MrVI DE has no design column {column!r} (columns: "
            f"{list(mrvi_de['covariate'].values)}); put {covariate!r} in analysis.de.covariates"
        )
        raise ValueError(msg)
    lfcs = {}
    for method, ds, cov in (("mrvi", mrvi_de, column), ("milode", milode, covariate)):
        if group not in ds["group"].values:
            msg = f"{method}: no LFCs for group {group!r} (groups: {list(ds['group'].values)})"
            raise ValueError(msg)
        lfcs[method] = ds["lfc"].sel(covariate=cov, group=group).to_series().astype(np.float64)
    return lfcs, reference


def de_benchmark(
    lfcs: Mapping[str, pd.Series], reference: pd.Series
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Pearson r of each method's gene LFCs against a reference's.

    Returns
    -------
    scatter
        :data:`LFC_COLUMNS`: one row per (method, gene with finite values in both), r repeated.
    records
        Summary records ``de_pearson_r`` per method.
    """
    tables, records = [], []
    for method, lfc in lfcs.items():
        corr = lfc_pearson(lfc, reference)
        both = pd.DataFrame({"lfc": lfc, "reference_lfc": reference}).dropna()
        both = both[np.isfinite(both).all(axis=1)]
        tables.append(both.rename_axis("gene").reset_index().assign(method=method, r=corr.r))
        records.append((method, "de_pearson_r", corr.r))
        logger.info("DE Pearson r %s: %.3f over %d genes", method, corr.r, corr.n)
    return pd.concat(tables, ignore_index=True)[list(LFC_COLUMNS)], summary_table(records)


def _leaves_under(linkage: np.ndarray, node: int, labels: list[str]) -> frozenset[str]:
    """Leaf labels below ``node`` of a scipy linkage (leaves are ``0 .. n - 1``)."""
    n = len(labels)
    stack, out = [node], []
    while stack:
        k = stack.pop()
        if k < n:
            out.append(labels[k])
        else:
            stack += [int(linkage[k - n, 0]), int(linkage[k - n, 1])]
    return frozenset(out)


def top_split(linkage: np.ndarray, labels: list[str]) -> frozenset[frozenset[str]]:
    """Return the root bipartition of a tree: the leaf sets of its two children."""
    root = np.asarray(linkage)[-1]
    return frozenset(_leaves_under(linkage, int(c), labels) for c in root[:2])


def tree_benchmark(
    matrices: Mapping[str, xr.DataArray], truth: SemisyntheticTruth, *, method: str = "ward"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Recovery of the planted subject tree from each method's per-group distance matrices.

    Parameters
    ----------
    matrices
        Method -> DataArray (group, sample_x, sample_y) of mean sample distances per Leiden
        cluster (MrVI's ``analysis/sample_distances.nc``, the composition baselines' files).
    truth
        The ground truth; subset A is its ``subset_clusters["A"]`` group.
    method
        Linkage of the inferred trees (Ward, as the paper).

    Returns
    -------
    table
        :data:`TREE_COLUMNS`, per method and group: ``rf_distance`` (normalised Robinson-Foulds
        against the planted tree), ``top_split`` (1 if the inferred root splits the subjects as
        the planted root, else 0), ``cophenetic_r`` (distances vs the planted tree's heights),
        ``intra_ratio`` (nearest same-group / nearest other-group subject, groups =
        ``covariate_1``; below 1 when the groups are recovered) and ``inter_ratio`` (mean
        distance over subset A's).
    records
        Summary records per method: ``rf_distance``, ``top_split`` and ``cophenetic_r`` in
        subset A, and the locality of the sample effects, as means over the groups of the other
        subsets (no hierarchy planted there): ``cophenetic_r_other`` (near 0 when the method finds
        no hierarchy where none was planted; scale-free, so it also flags a small copy of subset
        A's pattern) and ``distance_ratio_other`` (mean distance over subset A's, the
        ``inter_ratio``: near 0 when the sample effects stay in the cells that carry them).
    """
    order = truth.subject_order
    group_a = truth.subset_clusters["A"]
    subset_of = {v: k for k, v in truth.subset_clusters.items()}
    planted = top_split(truth.subject_linkage, order)
    cov1 = truth.subject_covariates.loc[order, "covariate_1"].to_numpy()
    rows, records = [], []
    for name, da in matrices.items():
        groups = [str(g) for g in da["group"].values]
        if group_a not in groups:
            msg = f"{name}: no distance matrix for subset A's group {group_a!r} (groups: {groups})"
            raise ValueError(msg)
        missing = sorted(set(order) - set(map(str, da["sample_x"].values)))
        if missing:
            msg = f"{name}: the distance matrices lack subjects {missing[:5]}"
            raise ValueError(msg)
        mats = {
            g: da.sel(group=g).sel(sample_x=order, sample_y=order).values.astype(np.float64)
            for g in groups
        }
        by_group: dict[str, dict[str, float]] = {}
        for g, d in mats.items():
            if not np.isfinite(d).all():
                logger.warning("%s: group %s has non-finite distances; skipped", name, g)
                continue
            inferred = linkage_from_distances(d, method=method)
            by_group[g] = {
                "rf_distance": robinson_foulds(inferred, truth.subject_linkage, order),
                "top_split": float(top_split(inferred, order) == planted),
                "cophenetic_r": cophenetic_correlation(d, truth.subject_linkage),
                "intra_ratio": intra_cluster_distance_ratio(d, cov1),
                "inter_ratio": inter_cluster_distance_ratio(d, mats[group_a]),
            }
            rows += [(name, g, subset_of.get(g, "Other"), k, v) for k, v in by_group[g].items()]
        if group_a not in by_group:
            msg = f"{name}: subset A's distance matrix (group {group_a!r}) is not finite"
            raise ValueError(msg)
        in_a = by_group[group_a]
        others = [v for g, v in by_group.items() if g != group_a]
        records += [(name, k, in_a[k]) for k in ("rf_distance", "top_split", "cophenetic_r")]
        for metric, key in (("cophenetic_r_other", "cophenetic_r"), (LOCALITY, "inter_ratio")):
            value = float(np.mean([v[key] for v in others])) if others else np.nan
            records.append((name, metric, value))
        logger.info(
            "%s subset A: RF %.3f, top split %s, cophenetic r %.3f; other groups: cophenetic r "
            "%.3f, distance ratio %.3f",
            name,
            in_a["rf_distance"],
            bool(in_a["top_split"]),
            in_a["cophenetic_r"],
            records[-2][2],
            records[-1][2],
        )
    return pd.DataFrame(rows, columns=list(TREE_COLUMNS)), summary_table(records)
