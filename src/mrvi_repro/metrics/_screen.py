"""The sci-Plex drug-screen metrics of the paper's Fig. 4d (Supplementary Information B.1).

Pure functions of a sample x sample distance matrix, so that any method's matrix (MrVI's, a
baseline's, a new method's) gets the same scores:

* :func:`intra_drug_percentile`: the average percentile of intra-drug distances, "how much closer
  samples with the same drug and different doses are to each other relative to other samples"
  (lower is better). Every pair of samples is ranked among all pairs; the percentiles of the pairs
  with the same product and different doses are averaged. ``doses=(1000, 10000)`` gives the
  paper's variant restricted to the two top doses.
* :func:`cmap_silhouette`: the silhouette of the Connectivity Map clusters (the 10,000 nM samples
  of the drugs in a CMap cluster) on the distances, ``sklearn.metrics.silhouette_score(...,
  metric="precomputed")`` rescaled to ``(s + 1) / 2`` in [0, 1] (higher is better).
* :func:`permutation_scores` and :func:`permutation_interval`: the baseline of the figure, the
  95 % interval of a metric over (by default 100) random relabellings of the samples of a matrix
  (the paper permutes MrVI's inferred matrix).
* :func:`split_sample_names`: product and dose of sci-Plex sample names ``<product>_<dose>``.

A matrix is an ``xarray.DataArray`` with dims ``(sample_x, sample_y)`` and sample-name coords
(the project's convention), a ``pandas.DataFrame`` whose index names the samples, or a numpy array
with the sample names passed as ``samples=``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from numbers import Real
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr
from scipy.stats import rankdata

from ._claims import Claim

if TYPE_CHECKING:
    from mrvi_repro.settings.figures import ScreenClaimsSpec

logger = logging.getLogger(__name__)

DistanceInput = np.ndarray | pd.DataFrame | xr.DataArray
PerSample = pd.Series | Sequence | np.ndarray

#: Dims of the sample distance matrices (``mrvi_repro``'s convention).
SAMPLE_DIMS = ("sample_x", "sample_y")


# --------------------------------------------------------------------------------------------
# input checks
# --------------------------------------------------------------------------------------------


def _distance_matrix(
    distances: DistanceInput, samples: Sequence | None = None
) -> tuple[np.ndarray, list[str]]:
    """Check a sample distance matrix; return it as floats and its sample names (as text).

    Square, finite, 2 samples at least, unique names, one name per row. A DataArray's (or
    DataFrame's) second axis is reordered to its first when both name the same samples.
    """
    if isinstance(distances, xr.DataArray | pd.DataFrame):
        if samples is not None:
            msg = "pass samples= only with a numpy matrix; a DataArray/DataFrame names its own"
            raise ValueError(msg)
        if distances.ndim != 2:
            msg = f"the distance matrix must be 2-D, got {distances.ndim} dims"
            raise ValueError(msg)
        if isinstance(distances, xr.DataArray):
            dx, dy = distances.dims
            if dx not in distances.coords or dy not in distances.coords:
                msg = f"the distance DataArray needs sample-name coords on {distances.dims}"
                raise ValueError(msg)
            rows = [str(s) for s in distances[dx].values]
            cols = [str(s) for s in distances[dy].values]
        else:
            rows = [str(s) for s in distances.index]
            cols = [str(s) for s in distances.columns]
        d = np.asarray(distances.to_numpy(), dtype=np.float64)
        names = rows
    else:
        if samples is None:
            msg = "a numpy distance matrix needs its sample names (samples=)"
            raise ValueError(msg)
        d = np.asarray(distances, dtype=np.float64)
        names = [str(s) for s in samples]
        cols = names
    if d.ndim != 2 or d.shape[0] != d.shape[1]:
        msg = f"distances must be a square matrix, got shape {d.shape}"
        raise ValueError(msg)
    if d.shape[0] < 2:
        msg = "a distance matrix needs at least 2 samples"
        raise ValueError(msg)
    if not np.isfinite(d).all():
        msg = "distances must be finite"
        raise ValueError(msg)
    if len(names) != d.shape[0]:
        msg = f"{len(names)} sample names for a {d.shape[0]} x {d.shape[1]} matrix"
        raise ValueError(msg)
    if len(set(names)) != len(names):
        dup = sorted(pd.Index(names)[pd.Index(names).duplicated()].unique())
        msg = f"sample names must be unique (duplicated: {dup[:5]})"
        raise ValueError(msg)
    if cols != names:
        if sorted(cols) != sorted(names) or len(set(cols)) != len(cols):
            msg = "the matrix's two axes do not name the same samples"
            raise ValueError(msg)
        pos = {s: i for i, s in enumerate(cols)}
        d = d[:, [pos[s] for s in names]]
    return d, names


def _symmetric(d: np.ndarray) -> np.ndarray:
    """``(d + d.T) / 2`` with a zero diagonal."""
    s = (d + d.T) / 2
    np.fill_diagonal(s, 0.0)
    return s


def _per_sample(values: PerSample, names: Sequence[str], what: str) -> np.ndarray:
    """One value per sample of ``names``: a Series aligned by name, else in the matrix's order."""
    if isinstance(values, pd.Series):
        index = values.index.astype(str)
        if not index.is_unique:
            msg = f"{what} has duplicated samples in its index"
            raise ValueError(msg)
        v = pd.Series(values.to_numpy(), index=index)
        missing = [s for s in names if s not in v.index]
        if missing:
            msg = f"{what} lacks samples of the matrix: {missing[:5]}"
            raise ValueError(msg)
        out = v.reindex(list(names)).to_numpy()
    else:
        out = np.asarray(values)
        if out.shape != (len(names),):
            msg = f"{what} must have one entry per sample ({len(names)}), got shape {out.shape}"
            raise ValueError(msg)
    if pd.isna(out).any():
        msg = f"{what} is missing (NaN) for some samples"
        raise ValueError(msg)
    return out


def split_sample_names(samples: Sequence, sep: str = "_") -> pd.DataFrame:
    """Product and dose of sample names ``<product><sep><dose>`` (e.g. ``Dacinostat_10000``).

    Split at the last ``sep``, so products may contain it. Returns a DataFrame indexed by the
    names (as text) with columns ``product`` (text) and ``dose`` (float); raises ``ValueError``
    on a name without ``sep`` or with a non-numeric dose.
    """
    rows = {}
    for name in (str(s) for s in samples):
        product, found, dose = name.rpartition(sep)
        try:
            value = float(dose)
        except ValueError:
            value = None
        if not found or not product or value is None:
            msg = f"sample name {name!r} is not '<product>{sep}<dose>' with a numeric dose"
            raise ValueError(msg)
        rows[name] = (product, value)
    return pd.DataFrame.from_dict(rows, orient="index", columns=["product", "dose"])


# --------------------------------------------------------------------------------------------
# intra-drug distance percentile
# --------------------------------------------------------------------------------------------


def intra_drug_percentile(
    distances: DistanceInput,
    product: PerSample,
    dose: PerSample,
    *,
    samples: Sequence | None = None,
    doses: Collection | None = None,
    exclude: Collection = (),
) -> float:
    """Average percentile of the distances between samples of one product at different doses.

    The matrix is symmetrised (``(D + D.T) / 2``); each unordered pair of distinct samples is one
    distance, ranked among all ``M = S (S - 1) / 2`` such distances (ties get their average rank)
    and turned into the percentile ``(rank - 1) / (M - 1)`` in [0, 1]: the smallest distance of
    the matrix scores 0, the largest 1. The score is the mean percentile over the pairs of samples
    with the same product and different doses (the same over ordered pairs, as the matrix is
    symmetric). Lower is better: a product's doses are nearer each other than other samples are.

    Parameters
    ----------
    distances
        Sample distances: a DataArray (``sample_x``, ``sample_y``) with sample-name coords, a
        DataFrame indexed by sample, or a numpy array with ``samples``.
    product, dose
        Each sample's product and dose: a Series indexed by sample name (aligned by name; extra
        samples are ignored) or an array in the matrix's sample order (before ``exclude``).
        :func:`split_sample_names` gives both from names ``<product>_<dose>``.
    samples
        The sample names of a numpy ``distances`` (only then).
    doses
        When given, only the pairs whose two doses both are among ``doses`` are averaged (the
        paper's top-two-dose variant is ``doses=(1000, 10000)``; values compare as ``dose``'s, so
        match their type). The ranking still uses every pair of the matrix.
    exclude
        Samples removed from the matrix before ranking, so that their distances are neither
        ranked nor averaged. The default keeps every sample: the reference sample (vehicle,
        ``Vehicle_0``), having a single dose, forms no pair, but its distances to the drugs stay
        in the ranking universe, as in the paper. Names must be samples of the matrix.

    Returns
    -------
    The average percentile, in [0, 1].

    Raises
    ------
    ValueError
        On an invalid matrix or per-sample values, an unknown ``exclude`` name, fewer than 3
        samples left (a single distance has no percentile), or no pair to average.
    """
    d, names = _distance_matrix(distances, samples)
    prod = _per_sample(product, names, "product")
    dos = _per_sample(dose, names, "dose")
    drop = {str(s) for s in exclude}
    unknown = sorted(drop.difference(names))
    if unknown:
        msg = f"exclude names samples not in the matrix: {unknown[:5]}"
        raise ValueError(msg)
    keep = np.array([s not in drop for s in names])
    d, prod, dos = d[np.ix_(keep, keep)], prod[keep], dos[keep]
    n = d.shape[0]
    if n < 3:
        msg = f"the percentile needs at least 3 samples (2 distances), {n} left"
        raise ValueError(msg)
    iu, ju = np.triu_indices(n, k=1)
    values = _symmetric(d)[iu, ju]
    percentile = (rankdata(values, method="average") - 1.0) / (values.size - 1.0)
    pairs = (prod[iu] == prod[ju]) & (dos[iu] != dos[ju])
    if doses is not None:
        allowed = pd.Index(list(doses))
        pairs &= pd.Index(dos[iu]).isin(allowed) & pd.Index(dos[ju]).isin(allowed)
    if not pairs.any():
        msg = "no pair of samples with the same product and different doses"
        if doses is not None:
            msg += f" among doses {sorted(doses)}"
        raise ValueError(msg)
    return float(percentile[pairs].mean())


# --------------------------------------------------------------------------------------------
# Connectivity Map silhouette
# --------------------------------------------------------------------------------------------


def cmap_silhouette(
    distances: DistanceInput,
    labels: Mapping | pd.Series,
    *,
    samples: Sequence | None = None,
) -> float:
    """Silhouette of the Connectivity Map clusters on the distances, rescaled to ``(s + 1) / 2``.

    ``sklearn.metrics.silhouette_score(D, labels, metric="precomputed")`` over the labelled
    samples only, ``D`` being the matrix symmetrised (``(D + D.T) / 2``) with a zero diagonal
    (sklearn requires both of a precomputed matrix). A sample alone in its cluster has
    silhouette 0 (sklearn's convention). The rescaling maps [-1, 1] to [0, 1]; higher is better.

    Parameters
    ----------
    distances
        Sample distances: a DataArray (``sample_x``, ``sample_y``) with sample-name coords, a
        DataFrame indexed by sample, or a numpy array with ``samples``.
    labels
        Sample name -> CMap cluster, for the samples scored (the paper: the 10,000 nM samples of
        the drugs in a Connectivity Map cluster). Samples of the matrix without a label (absent,
        ``None`` or NaN) are ignored; labels compare as text.
    samples
        The sample names of a numpy ``distances`` (only then).

    Returns
    -------
    ``(s + 1) / 2`` in [0, 1], ``s`` the mean silhouette of the labelled samples.

    Raises
    ------
    ValueError
        On an invalid matrix, negative distances, a label naming a sample not in the matrix,
        fewer than 3 labelled samples, fewer than 2 clusters, or as many clusters as labelled
        samples (sklearn needs ``2 <= clusters <= labelled samples - 1``).
    """
    from sklearn.metrics import silhouette_score

    d, names = _distance_matrix(distances, samples)
    lab = pd.Series(labels, dtype=object) if not isinstance(labels, pd.Series) else labels
    lab = lab[lab.notna()]
    lab.index = lab.index.astype(str)
    if not lab.index.is_unique:
        msg = "labels has duplicated samples"
        raise ValueError(msg)
    unknown = sorted(set(lab.index).difference(names))
    if unknown:
        msg = f"labels name samples not in the matrix (drop them first): {unknown[:5]}"
        raise ValueError(msg)
    idx = np.array([i for i, s in enumerate(names) if s in lab.index], dtype=int)
    groups = lab.reindex([names[i] for i in idx]).astype(str).to_numpy()
    n, k = idx.size, np.unique(groups).size
    if n < 3:
        msg = f"the silhouette needs at least 3 labelled samples, got {n}"
        raise ValueError(msg)
    if k < 2:
        msg = f"the silhouette needs at least 2 clusters, got {k}"
        raise ValueError(msg)
    if k >= n:
        msg = f"the silhouette needs fewer clusters ({k}) than labelled samples ({n})"
        raise ValueError(msg)
    sub = _symmetric(d[np.ix_(idx, idx)])
    if (sub < 0).any():
        msg = "distances must be non-negative"
        raise ValueError(msg)
    s = float(silhouette_score(sub, groups, metric="precomputed"))
    return (s + 1.0) / 2.0


# --------------------------------------------------------------------------------------------
# permutation baseline
# --------------------------------------------------------------------------------------------


def permutation_scores(
    distances: DistanceInput,
    metric: Callable[[xr.DataArray], float],
    *,
    samples: Sequence | None = None,
    n_permutations: int = 100,
    seed: int | np.random.Generator = 0,
) -> np.ndarray:
    """Evaluate a metric on random relabellings of a matrix's samples (the permutation baseline).

    For each permutation ``p`` (the ``k``-th is the ``k``-th ``rng.permutation(S)`` of
    ``rng = numpy.random.default_rng(seed)``), the matrix ``D[p][:, p]`` keeps the original sample
    names in the original order, so each name now carries another sample's distances; ``metric``
    is evaluated on it. Deterministic for an integer seed.

    Parameters
    ----------
    distances
        Sample distances: a DataArray (``sample_x``, ``sample_y``) with sample-name coords, a
        DataFrame indexed by sample, or a numpy array with ``samples``.
    metric
        Called with each permuted matrix as a DataArray (dims ``sample_x``, ``sample_y``, coords
        the sample names), returns a number; e.g.
        ``lambda d: intra_drug_percentile(d, product, dose)``.
    samples
        The sample names of a numpy ``distances`` (only then).
    n_permutations
        Number of permutations (the paper: 100).
    seed
        Seed of ``numpy.random.default_rng``, or a Generator (then advanced).

    Returns
    -------
    Float array of length ``n_permutations``: the metric on each permuted matrix.
    """
    if isinstance(n_permutations, bool) or not isinstance(n_permutations, int | np.integer):
        msg = f"n_permutations must be an integer, got {n_permutations!r}"
        raise ValueError(msg)
    if n_permutations < 1:
        msg = f"n_permutations must be at least 1, got {n_permutations}"
        raise ValueError(msg)
    d, names = _distance_matrix(distances, samples)
    rng = np.random.default_rng(seed)
    coords = {SAMPLE_DIMS[0]: names, SAMPLE_DIMS[1]: names}
    out = np.empty(int(n_permutations), dtype=np.float64)
    for k in range(int(n_permutations)):
        p = rng.permutation(d.shape[0])
        permuted = xr.DataArray(d[np.ix_(p, p)], dims=SAMPLE_DIMS, coords=coords)
        out[k] = float(metric(permuted))
    return out


def permutation_interval(
    values: Sequence[float] | np.ndarray, level: float = 0.95
) -> tuple[float, float]:
    """Central interval of permutation values: the (2.5 %, 97.5 %) quantiles by default.

    ``numpy.quantile`` (linear interpolation) at ``(1 - level) / 2`` and ``(1 + level) / 2``.

    Parameters
    ----------
    values
        Metric values, e.g. from :func:`permutation_scores`; finite, at least one.
    level
        Coverage of the interval, in (0, 1).

    Returns
    -------
    ``(low, high)``.
    """
    if isinstance(level, bool) or not isinstance(level, Real) or not 0 < float(level) < 1:
        msg = f"level must be in (0, 1), got {level!r}"
        raise ValueError(msg)
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        msg = "no values to take an interval of"
        raise ValueError(msg)
    if not np.isfinite(v).all():
        msg = "permutation values must be finite"
        raise ValueError(msg)
    tail = (1.0 - float(level)) / 2.0
    low, high = np.quantile(v, [tail, 1.0 - tail])
    return float(low), float(high)


# --------------------------------------------------------------------------------------------
# the screen's scores per method (Fig. 4d) and the claims of Fig. 4
# --------------------------------------------------------------------------------------------

#: The two metrics of Fig. 4d and whether higher is better.
SCREEN_METRICS = {"intra_drug_percentile": False, "cmap_silhouette": True}
#: Columns of :func:`screen_metric_table`.
SCREEN_METRIC_COLUMNS = ("method", "metric", "value", "lower", "upper", "n_samples")
#: Name of the permutation baseline in the tables.
RANDOM = "random"
#: Smallest share of a selection's retained samples in clusters made mostly of it.
MOSTLY_SHARE = 0.75
#: FDR at which a gene set counts as enriched.
ENRICHMENT_FDR = 0.05


@dataclass(frozen=True)
class ScreenResults:
    """What the workflow wrote for an entry's screen figure, loaded (the figure and its claims).

    Attributes
    ----------
    obs
        Per cell: the sample (column ``sample_key``) and the cell-cycle phase (index: cells).
    sample_key
        The column of ``obs`` naming each cell's sample.
    samples
        Per sample: the figure's sample covariates.
    clusters
        The retained samples and their clusters (rule ``screen_clusters``).
    distances
        MrVI's pooled sample distance matrix.
    stratification
        The stratification (its per-cell PCA of the distance matrices: panel c).
    de
        The clusters' DE against the reference.
    enrichment
        The enrichment of the clusters' DE genes.
    metrics
        Fig. 4d's table (rule ``screen_metrics``).
    """

    obs: pd.DataFrame
    sample_key: str
    samples: pd.DataFrame
    clusters: pd.DataFrame
    distances: xr.DataArray
    stratification: xr.Dataset
    de: xr.Dataset
    enrichment: pd.DataFrame
    metrics: pd.DataFrame


def pooled_distances(distances: xr.DataArray) -> xr.DataArray:
    """One sample matrix from per-group ones: the mean over ``group`` weighted by its cells.

    ``distances``: (group, sample_x, sample_y) with an ``n_cells`` coordinate on group (MrVI's
    and the composition baselines' layout), or already (sample_x, sample_y). A group where a
    pair is NaN (a sample without cells there) does not count for that pair; a pair NaN in every
    group stays NaN.
    """
    if "group" not in distances.dims:
        return distances
    weights = xr.DataArray(np.asarray(distances["n_cells"].values, dtype=np.float64), dims="group")
    if not float(weights.sum()) > 0:
        msg = "the groups hold no cell"
        raise ValueError(msg)
    present = weights.where(distances.notnull(), 0.0)  # a group without a sample: no weight
    total = present.sum("group")
    pooled = (distances.fillna(0.0) * weights).sum("group") / total.where(total > 0)
    return pooled.drop_vars("n_cells", errors="ignore").transpose(*SAMPLE_DIMS)


def cmap_sample_labels(
    product: pd.Series, dose: pd.Series, clusters: pd.Series, at_dose: float
) -> pd.Series:
    """Sample -> Connectivity Map cluster, for the samples at ``at_dose`` of clustered drugs.

    ``product`` and ``dose``: per sample (index: sample names); ``clusters``: drug -> cluster.
    """
    doses = pd.to_numeric(dose, errors="coerce")
    at = doses.index[np.isclose(doses.to_numpy(dtype=float), float(at_dose))]
    names = product.reindex(at).astype(str)
    labels = names.map(clusters.astype(str))
    return labels.dropna()


def screen_metric_table(
    matrices: Mapping[str, xr.DataArray],
    product: pd.Series,
    dose: pd.Series,
    *,
    cmap_labels: pd.Series | None = None,
    permuted: str = "mrvi",
    n_permutations: int = 100,
    seed: int = 0,
) -> pd.DataFrame:
    """Score every method's sample matrix on Fig. 4d's metrics, with the permutation baseline.

    Parameters
    ----------
    matrices
        Method -> its sample distance matrix (:func:`pooled_distances` applied; each scored on
        its own samples).
    product, dose
        Per sample (index: sample names): the drug and the dose.
    cmap_labels
        :func:`cmap_sample_labels` (``None``: no Connectivity Map data, the silhouette is not
        computed).
    permuted
        The method whose matrix is permuted for the baseline (the paper permutes MrVI's).
    n_permutations, seed
        The permutations.

    Returns
    -------
    :data:`SCREEN_METRIC_COLUMNS`: one row per method and metric (``lower`` / ``upper`` empty),
    and per metric a row :data:`RANDOM` with the permutations' median as ``value`` and their
    95 % interval; ``n_samples``: the samples scored (pairs' samples, or labelled samples).
    """
    if permuted not in matrices:
        msg = f"permuted {permuted!r} is not among the methods {sorted(matrices)}"
        raise ValueError(msg)
    rows = []

    def metrics_of(names: list[str]) -> dict[str, tuple[Callable[[xr.DataArray], float], int]]:
        prod, dos = product.reindex(names), dose.reindex(names)
        out: dict[str, tuple[Callable[[xr.DataArray], float], int]] = {
            "intra_drug_percentile": (
                lambda d: intra_drug_percentile(d, prod, dos),
                int(prod.duplicated(keep=False).sum()),
            )
        }
        if cmap_labels is not None:
            labels = cmap_labels[cmap_labels.index.isin(names)]
            out["cmap_silhouette"] = (lambda d: cmap_silhouette(d, labels), len(labels))
        return out

    for method, matrix in matrices.items():
        matrix = pooled_distances(matrix)
        names = [str(s) for s in matrix["sample_x"].values]
        for metric, (fn, n) in metrics_of(names).items():
            rows.append((method, metric, fn(matrix), np.nan, np.nan, n))
            if method == permuted:
                values = permutation_scores(matrix, fn, n_permutations=n_permutations, seed=seed)
                low, high = permutation_interval(values)
                rows.append((RANDOM, metric, float(np.median(values)), low, high, n))
    return pd.DataFrame(rows, columns=list(SCREEN_METRIC_COLUMNS))


def _describe(selection: Mapping[str, Sequence[str]]) -> str:
    return "; ".join(f"{k} {', '.join(v)}" for k, v in selection.items())


def _selected(samples: pd.DataFrame, selection: Mapping[str, Sequence[str]]) -> pd.Index:
    """Return the samples whose covariates take one of the listed values, for each one listed."""
    keep = np.ones(len(samples), dtype=bool)
    for column, values in selection.items():
        col = samples[column]
        wanted = pd.to_numeric(pd.Series(list(values)), errors="coerce")
        if pd.api.types.is_numeric_dtype(col) and wanted.notna().all():  # 10000 == 10000.0
            numbers = col.to_numpy(dtype=float)
            keep &= np.isclose(numbers[:, None], wanted.to_numpy()[None, :]).any(axis=1)
        else:
            keep &= col.astype(str).isin([str(v) for v in values]).to_numpy()
    return samples.index[keep]


def _majority_clusters(clusters: pd.Series, members: pd.Index) -> list[str]:
    """Clusters (of retained samples) more than half made of ``members``."""
    out = []
    for cluster, inside in clusters.groupby(clusters.to_numpy()):
        if inside.index.isin(members).mean() > 0.5:
            out.append(str(cluster))
    return out


def screen_summary(
    metrics: pd.DataFrame,
    clusters: pd.DataFrame,
    samples: pd.DataFrame,
    enrichment: pd.DataFrame,
    claims: ScreenClaimsSpec,
) -> pd.DataFrame:
    """Return the numbers behind the screen's claims: a ``method`` / ``metric`` / ``value`` table.

    From Fig. 4d's :func:`screen_metric_table` every method's value, and the permutation
    interval's ends as methods ``random_low`` / ``random_high``; from the retained samples'
    clusters (:func:`~mrvi_repro.analysis.screen_clusters`; ``samples``: the sample covariates,
    indexed by sample) ``one_cluster_<i>`` (share of the ``i``-th selection's retained samples in
    its most common cluster; NaN with fewer than two), ``mostly_<i>`` (share of its retained
    samples in clusters made mostly of it) and ``enriched_<i>`` (the smallest FDR of the listed
    gene sets, in the direction asked, in the clusters made mostly of the selection, or its most
    common cluster when none is).
    """
    rows = [(m, k, v) for m, k, v in metrics[["method", "metric", "value"]].itertuples(False)]
    for row in metrics[metrics["method"] == RANDOM].itertuples():
        rows += [("random_low", row.metric, row.lower), ("random_high", row.metric, row.upper)]
    table = clusters.set_index(clusters["sample"].astype(str))
    retained = table.loc[table["retained"].astype(bool), "cluster"].astype(str)
    samples = samples.copy()
    samples.index = samples.index.astype(str)

    def retained_of(selection: Mapping[str, Sequence[str]]) -> pd.Series:
        return retained[retained.index.isin(_selected(samples, selection))]

    for i, selection in enumerate(claims.one_cluster):
        inside = retained_of(selection)
        share = inside.value_counts().iloc[0] / len(inside) if len(inside) >= 2 else np.nan
        rows.append(("mrvi", f"one_cluster_{i}", float(share)))
    for i, selection in enumerate(claims.mostly):
        inside = retained_of(selection)
        majority = _majority_clusters(retained, inside.index)
        share = inside.isin(majority).mean() if len(inside) else np.nan
        rows.append(("mrvi", f"mostly_{i}", float(share)))
    for i, item in enumerate(claims.enriched):
        inside = retained_of(item.samples)
        where = _majority_clusters(retained, inside.index)
        if not where and len(inside):
            where = [str(inside.value_counts().index[0])]
        directions = ["up", "down"] if item.direction == "either" else [item.direction]
        hits = enrichment[
            enrichment["cluster"].astype(str).isin(where)
            & enrichment["direction"].isin(directions)
            & enrichment["gene_set"].isin(item.gene_sets)
        ]
        tested = enrichment["gene_set"].isin(item.gene_sets).any()
        if not tested:
            logger.warning(
                "enriched claim %d: none of %s was tested (not in the gene sets, or too few of "
                "their genes among the model's): not computed",
                i,
                list(item.gene_sets),
            )
        best = float(hits["fdr"].min()) if len(hits) else (1.0 if where else np.nan)
        best = best if tested else np.nan
        rows.append(("mrvi", f"enriched_{i}", best))
    return pd.DataFrame(rows, columns=["method", "metric", "value"])


def screen_claim_list(claims: ScreenClaimsSpec, metrics: pd.DataFrame) -> list[Claim]:
    """Return the paper's Fig. 4 statements as :class:`~mrvi_repro.metrics.Claim` checks."""
    out = []
    scored = set(metrics["metric"])
    for metric, higher in SCREEN_METRICS.items():
        if metric not in scored:
            continue
        word = "above" if higher else "below"
        for other in sorted(set(metrics.loc[metrics["metric"] == metric, "method"])):
            if other in ("mrvi", RANDOM):
                continue
            out.append(
                Claim(
                    f"{metric}_mrvi_vs_{other}",
                    f"MrVI's {metric.replace('_', ' ')} {word} {other}'s",
                    "MrVI better than both composition baselines (Fig. 4d)",
                    ("mrvi", metric),
                    (other, metric),
                    higher_is_better=higher,
                )
            )
        out.append(
            Claim(
                f"{metric}_mrvi_vs_random",
                f"MrVI's {metric.replace('_', ' ')} {word} the 95 % interval of permutations of "
                "its matrix",
                "MrVI outside the random interval (Fig. 4d)",
                ("mrvi", metric),
                ("random_high" if higher else "random_low", metric),
                higher_is_better=higher,
            )
        )
    for i, selection in enumerate(claims.one_cluster):
        out.append(
            Claim(
                f"one_cluster_{i}",
                f"All retained samples of {_describe(selection)} fall into one cluster",
                "all doses of trametinib, and of YM155, each one cluster (Fig. 4e)",
                ("mrvi", f"one_cluster_{i}"),
                1.0 - 1e-9,
            )
        )
    for i, selection in enumerate(claims.mostly):
        out.append(
            Claim(
                f"mostly_{i}",
                f"At least {MOSTLY_SHARE:.0%} of the retained samples of {_describe(selection)} "
                "lie in clusters made mostly of them",
                "clusters 1, 3 and 4 consist mostly of HDAC inhibitors (Fig. 4e)",
                ("mrvi", f"mostly_{i}"),
                MOSTLY_SHARE - 1e-9,
            )
        )
    for i, item in enumerate(claims.enriched):
        out.append(
            Claim(
                f"enriched_{i}",
                f"A cluster of {_describe(item.samples)} has its {item.direction} DE genes "
                f"enriched in {' or '.join(item.gene_sets)} (FDR < {ENRICHMENT_FDR})",
                "metabolism down in the HDAC clusters, p53 in the cell-cycle cluster, KRAS in "
                "the trametinib cluster (Fig. 4f)",
                ("mrvi", f"enriched_{i}"),
                ENRICHMENT_FDR,
                higher_is_better=False,
            )
        )
    return out
