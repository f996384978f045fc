"""Benchmark metrics of the paper (reference implementation notes, section 3.6), as pure functions.

* DA: precision-recall curve and its area (``sklearn.metrics.precision_recall_curve`` and
  ``auc(recall, precision)``, as the paper's figure scripts), of a per-cell score (MrVI's
  |log density ratio|, Milo's |mean neighbourhood logFC|) against the cells that carry DA.
* DE: Pearson correlation of gene-wise LFCs with a reference (the DESeq2 pseudobulk LFCs).
* Sample hierarchy: normalised Robinson-Foulds distance between two rooted trees (computed from
  the clusters of their internal nodes; no ete3) and the cophenetic correlation of a distance
  matrix with a reference tree.
* The intra- and inter-cluster distance ratios of the semi-synthetic figures.
* :func:`summary_table`: the tidy ``method``, ``metric``, ``value`` frame.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Literal

import numpy as np
import pandas as pd
import xarray as xr
from scipy.cluster import hierarchy
from scipy.spatial.distance import squareform

NanPolicy = Literal["lowest", "omit", "raise"]

#: Columns of :func:`summary_table`.
SUMMARY_COLUMNS = ("method", "metric", "value")


# --------------------------------------------------------------------------------------------
# differential abundance: precision-recall
# --------------------------------------------------------------------------------------------


def _scores_and_truth(
    scores: np.ndarray | pd.Series | Sequence[float],
    truth: np.ndarray | pd.Series | Sequence[bool],
    nan_policy: NanPolicy,
) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64).ravel()
    t = np.asarray(truth).ravel()
    if s.shape != t.shape:
        msg = f"scores ({s.size}) and truth ({t.size}) must have the same length"
        raise ValueError(msg)
    if t.dtype != bool:
        if not np.isin(t, [0, 1]).all():
            msg = "truth must be boolean (or 0/1)"
            raise ValueError(msg)
        t = t.astype(bool)
    if np.isinf(s).any():
        msg = "scores must not be infinite"
        raise ValueError(msg)
    missing = np.isnan(s)
    if missing.any():
        if nan_policy == "raise":
            msg = f"{int(missing.sum())} scores are NaN (nan_policy='raise')"
            raise ValueError(msg)
        if nan_policy == "omit":
            s, t = s[~missing], t[~missing]
        elif nan_policy == "lowest":
            finite = s[~missing]
            low = finite.min() - 1.0 if finite.size else 0.0
            s = np.where(missing, low, s)
        else:
            msg = f"nan_policy must be 'lowest', 'omit' or 'raise', got {nan_policy!r}"
            raise ValueError(msg)
    if not t.any():
        msg = "truth has no positive cell: precision-recall is undefined"
        raise ValueError(msg)
    return s, t


def pr_curve(
    scores: np.ndarray | pd.Series | Sequence[float],
    truth: np.ndarray | pd.Series | Sequence[bool],
    *,
    nan_policy: NanPolicy = "lowest",
) -> pd.DataFrame:
    """Precision-recall curve of per-cell scores against the cells that truly carry the signal.

    Parameters
    ----------
    scores
        One score per cell, higher meaning "more likely positive" (the paper ranks cells by the
        *absolute* DA score: pass ``np.abs(log_ratio)``).
    truth
        Boolean (or 0/1) per cell: the cell is a true positive (for the semi-synthetic DA, a cell
        of the resampled subsets).
    nan_policy
        Cells without a score (NaN; e.g. cells in no Milo neighbourhood). ``"lowest"`` (default)
        ranks them below every scored cell, tied with each other: they stay in the denominators,
        so a method is penalised for the positives it did not score (they are recovered only at
        the last threshold, where every cell is called). ``"omit"`` drops them; ``"raise"``
        raises. Infinite scores always raise.

    Returns
    -------
    DataFrame with columns ``precision``, ``recall``, ``threshold`` as
    ``sklearn.metrics.precision_recall_curve`` (ordered by increasing threshold; the last row is the
    point recall = 0, precision = 1, whose threshold is NaN). Under ``"lowest"`` the threshold of
    the unscored cells is the substitute value (lowest finite score minus 1).
    """
    from sklearn.metrics import precision_recall_curve

    s, t = _scores_and_truth(scores, truth, nan_policy)
    precision, recall, thresholds = precision_recall_curve(t, s)
    return pd.DataFrame(
        {
            "precision": precision,
            "recall": recall,
            "threshold": np.append(thresholds.astype(np.float64), np.nan),
        }
    )


def pr_auc(
    scores: np.ndarray | pd.Series | Sequence[float],
    truth: np.ndarray | pd.Series | Sequence[bool],
    *,
    nan_policy: NanPolicy = "lowest",
) -> float:
    """Area under the precision-recall curve, ``sklearn.metrics.auc(recall, precision)``.

    The trapezoidal area of :func:`pr_curve`, as the paper's figure scripts computed it (not
    sklearn's step-wise average precision). Parameters as :func:`pr_curve`.
    """
    return _curve_auc(pr_curve(scores, truth, nan_policy=nan_policy))


def _curve_auc(curve: pd.DataFrame) -> float:
    """Trapezoidal area under a :func:`pr_curve` (``sklearn.metrics.auc(recall, precision)``)."""
    from sklearn.metrics import auc

    return float(auc(curve["recall"].to_numpy(), curve["precision"].to_numpy()))


# --------------------------------------------------------------------------------------------
# differential expression: LFC correlation
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Correlation:
    """A correlation coefficient and the number of observations it used."""

    r: float
    n: int

    def __float__(self) -> float:
        return self.r


def lfc_pearson(lfc: pd.Series, reference: pd.Series) -> Correlation:
    """Pearson correlation of gene-wise log fold changes with reference ones.

    Parameters
    ----------
    lfc
        LFC per gene, indexed by gene (e.g. MrVI's or miloDE's LFC averaged over subset-A cells).
    reference
        Reference LFC per gene, indexed by gene (the DESeq2 pseudobulk LFCs).

    Returns
    -------
    :class:`Correlation`: ``r`` over the genes present in both indices with finite values in both
    (others are dropped), and ``n`` the number of those genes; ``float(result)`` is ``r``. ``r`` is
    NaN when fewer than 2 genes remain or either side is constant over them.
    """
    for name, s in (("lfc", lfc), ("reference", reference)):
        if not isinstance(s, pd.Series):
            msg = f"{name} must be a gene-indexed pandas Series, got {type(s).__name__}"
            raise TypeError(msg)
        if not s.index.is_unique:
            msg = f"{name} has duplicated genes in its index"
            raise ValueError(msg)
    a, b = lfc.astype(np.float64).align(reference.astype(np.float64), join="inner")
    keep = np.isfinite(a.to_numpy()) & np.isfinite(b.to_numpy())
    x, y = a.to_numpy()[keep], b.to_numpy()[keep]
    n = int(keep.sum())
    if n < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return Correlation(math.nan, n)
    return Correlation(float(np.corrcoef(x, y)[0, 1]), n)


# --------------------------------------------------------------------------------------------
# sample hierarchy
# --------------------------------------------------------------------------------------------


def _square(matrix: np.ndarray | pd.DataFrame | xr.DataArray) -> tuple[np.ndarray, list | None]:
    """Square float matrix and its sample labels (from a DataFrame index / DataArray coord)."""
    labels: list | None = None
    if isinstance(matrix, xr.DataArray):
        if matrix.ndim != 2:
            msg = f"the distance DataArray must be 2-D, got dims {matrix.dims}"
            raise ValueError(msg)
        dim = matrix.dims[0]
        if dim in matrix.coords:
            labels = list(matrix.coords[dim].values)
        d = matrix.to_numpy()
    elif isinstance(matrix, pd.DataFrame):
        labels = list(matrix.index)
        d = matrix.to_numpy()
    else:
        d = np.asarray(matrix)
    d = np.asarray(d, dtype=np.float64)
    if d.ndim != 2 or d.shape[0] != d.shape[1]:
        msg = f"distances must be a square matrix, got shape {d.shape}"
        raise ValueError(msg)
    if not np.isfinite(d).all():
        msg = "distances must be finite"
        raise ValueError(msg)
    return d, labels


def _reorder(d: np.ndarray, own: list | None, labels: Sequence | None) -> np.ndarray:
    """Reorder a square matrix to ``labels`` when both it and the caller name the samples."""
    if labels is None or own is None:
        return d
    wanted = [str(x) for x in labels]
    pos = {str(x): i for i, x in enumerate(own)}
    missing = [x for x in wanted if x not in pos]
    if missing or len(wanted) != len(pos):
        msg = f"the matrix's samples do not match the labels (missing: {missing[:5]})"
        raise ValueError(msg)
    idx = np.asarray([pos[x] for x in wanted])
    return d[np.ix_(idx, idx)]


def linkage_from_distances(
    matrix: np.ndarray | pd.DataFrame | xr.DataArray, method: str = "ward"
) -> np.ndarray:
    """Scipy linkage of the samples of a square distance matrix.

    :func:`mrvi_repro.analysis._stratify.sample_linkage` (the stratification's sample trees),
    accepting a DataFrame or 2-D DataArray too: symmetrised, zero diagonal, ``method`` among
    :data:`mrvi_repro.settings.names.LINKAGE_METHODS` (Ward by default, as the paper).
    """
    from mrvi_repro.analysis._stratify import sample_linkage

    d, _ = _square(matrix)
    return sample_linkage(d, method=method)


def _check_linkage(z: np.ndarray, name: str) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2 or z.shape[1] != 4 or z.shape[0] < 1:
        msg = f"{name} must be a scipy linkage matrix (n - 1 rows, 4 columns), got {z.shape}"
        raise ValueError(msg)
    if not hierarchy.is_valid_linkage(z):
        msg = f"{name} is not a valid scipy linkage matrix"
        raise ValueError(msg)
    return z


def tree_clusters(
    linkage: np.ndarray, labels: Sequence | None = None, *, collapse_zero_length: bool = True
) -> set[frozenset]:
    """Non-trivial clusters (leaf sets of internal nodes) of a rooted tree given as a linkage.

    Parameters
    ----------
    linkage
        Scipy linkage matrix over ``n`` leaves.
    labels
        Label of each leaf (leaf ``i`` is ``labels[i]``); default ``0 .. n - 1``.
    collapse_zero_length
        Drop the clusters of nodes merged at the same height as their parent (zero-length
        branches), i.e. treat those merges as one multifurcation. The semi-synthetic ground truth
        joins the replicates of a subcluster at height 0 in an arbitrary binary order, which this
        turns into one cluster of all replicates.

    Returns
    -------
    The clusters of size 2 to ``n - 1`` (singletons and the root are shared by every tree).
    """
    z = _check_linkage(linkage, "linkage")
    n = z.shape[0] + 1
    names = list(range(n)) if labels is None else list(labels)
    if len(names) != n or len(set(names)) != n:
        msg = f"labels must be {n} distinct leaf labels, got {len(names)} ({len(set(names))} distinct)"
        raise ValueError(msg)
    members: list[frozenset] = [frozenset([names[i]]) for i in range(n)]
    parent_height = np.full(n - 1, np.inf)
    for a, b, h, _ in z:
        members.append(members[int(a)] | members[int(b)])
        for child in (int(a), int(b)):
            if child >= n:
                parent_height[child - n] = h
    out: set[frozenset] = set()
    for k in range(n - 2):  # the last row is the root
        if collapse_zero_length and z[k, 2] == parent_height[k]:
            continue
        out.add(members[n + k])
    return out


def robinson_foulds(
    linkage_a: np.ndarray,
    linkage_b: np.ndarray,
    labels: Sequence | None = None,
    labels_b: Sequence | None = None,
    *,
    collapse_zero_length: bool = True,
) -> float:
    """Normalised Robinson-Foulds distance between two rooted trees over the same leaves.

    RF = |C_a symmetric-difference C_b| / (|C_a| + |C_b|), where C are the non-trivial clusters of
    :func:`tree_clusters` (rooted trees: clusters, not unrooted bipartitions); 0 for identical
    topologies, 1 when no cluster is shared, and 0 when neither tree has a non-trivial cluster.
    For two binary trees on ``n`` leaves the denominator is ``2 (n - 2)``, ete3's maximum RF for
    rooted trees (the paper's ``compute_rf``).

    Parameters
    ----------
    linkage_a, linkage_b
        Scipy linkage matrices.
    labels
        Leaf labels of ``linkage_a`` (leaf ``i`` is ``labels[i]``); default ``0 .. n - 1``.
    labels_b
        Leaf labels of ``linkage_b``; default ``labels``. Both trees must have the same leaf set.
    collapse_zero_length
        See :func:`tree_clusters` (applies to both trees).
    """
    za = _check_linkage(linkage_a, "linkage_a")
    zb = _check_linkage(linkage_b, "linkage_b")
    if za.shape != zb.shape:
        msg = f"the trees have different numbers of leaves ({za.shape[0] + 1}, {zb.shape[0] + 1})"
        raise ValueError(msg)
    labels_b = labels if labels_b is None else labels_b
    n = za.shape[0] + 1
    la = list(range(n)) if labels is None else list(labels)
    lb = list(range(n)) if labels_b is None else list(labels_b)
    if set(la) != set(lb):
        msg = "the two trees have different leaf labels"
        raise ValueError(msg)
    ca = tree_clusters(za, la, collapse_zero_length=collapse_zero_length)
    cb = tree_clusters(zb, lb, collapse_zero_length=collapse_zero_length)
    total = len(ca) + len(cb)
    return 0.0 if total == 0 else len(ca ^ cb) / total


def cophenetic_correlation(
    matrix: np.ndarray | pd.DataFrame | xr.DataArray,
    linkage_truth: np.ndarray,
    labels: Sequence | None = None,
) -> float:
    """Correlation of a distance matrix with the cophenetic distances of a reference tree.

    ``scipy.cluster.hierarchy.cophenet(linkage_truth, condensed(matrix))[0]``: the Pearson
    correlation, over sample pairs, of the inferred distances with the heights at which the
    reference tree joins the pairs. High when the matrix carries the tree's hierarchy.

    Parameters
    ----------
    matrix
        Square distance matrix (array, DataFrame indexed by sample, or 2-D DataArray with a
        sample coordinate on its first dimension); symmetrised, diagonal ignored.
    linkage_truth
        Reference tree (e.g. ``uns['semisynthetic']['subject_linkage']``).
    labels
        Leaf labels of ``linkage_truth`` (e.g. ``uns['semisynthetic']['subject_order']``). When
        given and the matrix names its samples, the matrix is reordered to them; otherwise row
        ``i`` must be leaf ``i``.
    """
    z = _check_linkage(linkage_truth, "linkage_truth")
    d, own = _square(matrix)
    if d.shape[0] != z.shape[0] + 1:
        msg = f"matrix has {d.shape[0]} samples, the tree {z.shape[0] + 1} leaves"
        raise ValueError(msg)
    d = _reorder(d, own, labels)
    d = (d + d.T) / 2
    np.fill_diagonal(d, 0.0)
    c, _ = hierarchy.cophenet(z, squareform(d, checks=False))
    return float(c)


def tree_recovery(
    matrix: np.ndarray | pd.DataFrame | xr.DataArray,
    linkage_truth: np.ndarray,
    labels: Sequence | None = None,
    *,
    method: str = "ward",
) -> dict[str, float]:
    """Recovery of a reference sample tree from a distance matrix.

    Returns ``{"robinson_foulds": ..., "cophenetic_correlation": ...}``: the normalised RF
    distance between ``linkage_truth`` and the ``method`` tree of ``matrix``
    (:func:`linkage_from_distances`), and :func:`cophenetic_correlation`. ``matrix`` is reordered
    to ``labels`` as in :func:`cophenetic_correlation`.
    """
    d, own = _square(matrix)
    d = _reorder(d, own, labels)
    inferred = linkage_from_distances(d, method=method)
    return {
        "robinson_foulds": robinson_foulds(inferred, linkage_truth, labels),
        "cophenetic_correlation": cophenetic_correlation(d, linkage_truth),
    }


# --------------------------------------------------------------------------------------------
# distance ratios of the semi-synthetic figures
# --------------------------------------------------------------------------------------------


def intra_cluster_distance_ratio(
    matrix: np.ndarray | pd.DataFrame | xr.DataArray, groups: Sequence | np.ndarray
) -> float:
    """Mean over samples of (nearest same-group sample) / (nearest other-group sample) distance.

    The paper's ``compute_ratio`` on the positive cluster (subset A): below 1 when samples of a
    ground-truth group are closer to each other than to the other groups. ``groups`` gives each
    row's group (in the matrix's order); every group needs at least 2 samples and there must be
    at least 2 groups.
    """
    d, _ = _square(matrix)
    g = np.asarray(groups)
    if g.shape != (d.shape[0],):
        msg = f"groups must have one entry per sample ({d.shape[0]}), got shape {g.shape}"
        raise ValueError(msg)
    d = (d + d.T) / 2
    same = g[:, None] == g[None, :]
    off = ~np.eye(d.shape[0], dtype=bool)
    if not (same & off).any(axis=1).all() or not (~same).any(axis=1).all():
        msg = "every sample needs another sample of its group and one of another group"
        raise ValueError(msg)
    near_same = np.where(same & off, d, np.inf).min(axis=1)
    near_other = np.where(~same, d, np.inf).min(axis=1)
    return float(np.mean(near_same / near_other))


def _mean_off_diagonal(d: np.ndarray) -> float:
    n = d.shape[0]
    if n < 2:
        msg = "a distance matrix needs at least 2 samples"
        raise ValueError(msg)
    return float(d[~np.eye(n, dtype=bool)].mean())


def inter_cluster_distance_ratio(
    matrix: np.ndarray | pd.DataFrame | xr.DataArray,
    positive: np.ndarray | pd.DataFrame | xr.DataArray,
) -> float:
    """Mean off-diagonal distance of a cluster's matrix over that of the positive cluster's.

    The paper's inter-cluster ratio: for a cluster without planted signal (e.g. subset C or
    Other) against the positive cluster (subset A); expected below 1.
    """
    d, _ = _square(matrix)
    p, _ = _square(positive)
    den = _mean_off_diagonal(p)
    if den == 0:
        return math.nan
    return _mean_off_diagonal(d) / den


# --------------------------------------------------------------------------------------------
# summary table
# --------------------------------------------------------------------------------------------


def summary_table(
    records: Iterable[Mapping[str, object] | tuple[str, str, float]] | pd.DataFrame,
) -> pd.DataFrame:
    """Tidy metric table with exactly the columns ``method``, ``metric``, ``value``.

    Parameters
    ----------
    records
        Mappings with keys ``method``, ``metric``, ``value`` (other keys are rejected),
        ``(method, metric, value)`` tuples, or a DataFrame with those columns. ``method`` and
        ``metric`` must be non-empty strings and ``value`` a real number (bool is rejected; NaN is
        allowed, e.g. an undefined correlation); ``value`` may be a :class:`Correlation`.

    Returns
    -------
    DataFrame with columns ``method`` and ``metric`` (str) and ``value`` (float64), in input
    order. A (method, metric) pair may appear only once.
    """
    if isinstance(records, pd.DataFrame):
        if list(records.columns) != list(SUMMARY_COLUMNS):
            msg = f"columns must be {list(SUMMARY_COLUMNS)}, got {list(records.columns)}"
            raise ValueError(msg)
        records = list(records.itertuples(index=False, name=None))
    rows: list[tuple[str, str, float]] = []
    for i, rec in enumerate(records):
        if isinstance(rec, Mapping):
            if set(rec) != set(SUMMARY_COLUMNS):
                msg = f"record {i} must have keys {list(SUMMARY_COLUMNS)}, got {sorted(rec)}"
                raise ValueError(msg)
            method, metric, value = (rec[k] for k in SUMMARY_COLUMNS)
        else:
            rec = tuple(rec)
            if len(rec) != 3:
                msg = f"record {i} must be (method, metric, value), got {rec!r}"
                raise ValueError(msg)
            method, metric, value = rec
        for name, v in (("method", method), ("metric", metric)):
            if not isinstance(v, str) or not v:
                msg = f"record {i}: {name} must be a non-empty string, got {v!r}"
                raise TypeError(msg)
        if isinstance(value, Correlation):
            value = value.r
        if isinstance(value, bool | np.bool_) or not isinstance(
            value, Real | np.integer | np.floating
        ):
            msg = f"record {i}: value must be a real number, got {value!r}"
            raise TypeError(msg)
        rows.append((method, metric, float(value)))
    out = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
    out = out.astype({"method": str, "metric": str, "value": np.float64})
    dup = out.duplicated(["method", "metric"])
    if dup.any():
        first = out.loc[dup, ["method", "metric"]].iloc[0].tolist()
        msg = f"duplicated (method, metric) pair {tuple(first)}"
        raise ValueError(msg)
    return out
