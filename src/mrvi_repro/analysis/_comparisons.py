"""Comparative analyses on MrVI's outputs: cluster-level DA, sample-group tests, gene modules.

* :func:`cluster_abundance_test`: the paper's cluster-level differential abundance test (Methods,
  "Assessing compositional and expressional sample differences"): for a cluster A, the per-cell
  log ratios log q_A - log q_B of the cells in A against those of the cells not in A, a two-sided
  two-sample (Welch) t-test against the composite null that the mean difference is at most
  delta = 0.1 in absolute value, so that large numbers of cells do not make negligible differences
  significant.
* :func:`compare_sample_groups`: Mann-Whitney U test of a numeric sample covariate between two
  groups of samples (e.g. days since symptom onset between the donor groups of a cluster's
  dendrogram; the paper's Fig. 3d and Extended Data Fig. 1).
* :func:`select_samples`: a subset of samples by covariate values, as a dataset entry names one.
* :func:`gene_modules` and :func:`module_activity`: genes clustered by their per-cell LFC
  profiles (PCA, kNN graph, Leiden at resolution 0.25, as the reference code for Fig. 3f) and each
  module's mean LFC per cell (what Fig. 3f draws on u). The LFCs may be a lazily indexed xarray
  (e.g. opened from zarr): they are read a block of cells at a time and never whole when there are
  more cells than ``max_cells``.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

import anndata as ad
import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from mrvi_repro._graph import knn_graph, leiden

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

logger = logging.getLogger(__name__)

#: Columns of :func:`cluster_abundance_test`'s table.
CLUSTER_TEST_COLUMNS = (
    "cluster",
    "n_cells",
    "mean_in",
    "mean_out",
    "difference",
    "t",
    "df",
    "pvalue",
    "padj",
    "direction",
    "significant",
)


def cluster_abundance_test(
    log_ratio: np.ndarray,
    clusters: Any,
    *,
    delta: float = 0.1,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Cluster-level differential abundance: Welch t-test of log ratios against |Delta| <= delta.

    For every cluster A, Delta is the mean log ratio of the cells in A minus that of the cells not
    in A. The composite null hypothesis is |Delta| <= ``delta`` (the paper uses 0.1), the
    alternative |Delta| > ``delta``. The statistic is ``t = (|Delta_hat| - delta) / SE`` with the
    Welch standard error ``SE = sqrt(s_in^2 / n_in + s_out^2 / n_out)`` and the p-value is
    ``P(T_df >= t)`` with the Welch-Satterthwaite degrees of freedom: the test is one-sided at the
    boundary of the null nearer to the estimate (Delta = +delta for a positive estimate, -delta for
    a negative one). The other tail, ``P(T_df <= (-|Delta_hat| - delta) / SE)``, is left out; it is
    at most ``P(T_df >= delta / SE)``, negligible whenever the test can reject. With
    ``delta = 0`` the p-value is half the usual two-sided Welch p-value.

    Parameters
    ----------
    log_ratio
        Per-cell log ratios (1-D), e.g. ``differential_abundance(...)["log_ratio"]``. Cells whose
        log ratio is NaN (or infinite) are dropped, and counted in the log.
    clusters
        Per-cell cluster labels (array-like of the same length). A categorical keeps its category
        order (and its empty categories, as rows with no test); otherwise the sorted labels. Cells
        with a missing label are dropped.
    delta
        Half-width of the null interval, in log-ratio units (>= 0).
    alpha
        Level of ``significant`` (on ``padj``).

    Returns
    -------
    One row per cluster, columns :data:`CLUSTER_TEST_COLUMNS`: ``cluster`` (str), ``n_cells`` (in
    the cluster, after dropping), ``mean_in``, ``mean_out``, ``difference`` (mean_in - mean_out),
    ``t`` (the interval-null statistic above), ``df``, ``pvalue``, ``padj`` (Benjamini-Hochberg
    over the clusters tested), ``direction`` ("enriched" when the difference is positive,
    "depleted" otherwise) and ``significant`` (padj < alpha). Clusters with fewer than 2 cells
    inside or outside get NaN statistics and are not significant. ``attrs`` hold ``delta``,
    ``alpha`` and ``n_dropped``.

    Raises
    ------
    ValueError
        Lengths differ, ``log_ratio`` is not 1-D, ``delta`` < 0 or ``alpha`` outside (0, 1).
    """
    x = np.asarray(log_ratio, dtype=np.float64)
    if x.ndim != 1:
        msg = f"log_ratio must be 1-D (one value per cell), got shape {x.shape}"
        raise ValueError(msg)
    labels = pd.Categorical(clusters)
    if len(labels) != len(x):
        msg = f"clusters has {len(labels)} labels for {len(x)} log ratios"
        raise ValueError(msg)
    if not delta >= 0:
        msg = f"delta must be >= 0, got {delta}"
        raise ValueError(msg)
    if not 0 < alpha < 1:
        msg = f"alpha must lie in (0, 1), got {alpha}"
        raise ValueError(msg)
    codes = np.asarray(labels.codes)
    finite = np.isfinite(x)
    keep = finite & (codes >= 0)
    n_dropped = int(len(x) - keep.sum())
    if n_dropped:
        logger.info(
            "cluster_abundance_test: dropped %d of %d cells (%d non-finite log ratios, %d "
            "without a cluster)",
            n_dropped,
            len(x),
            int((~finite).sum()),
            int((codes < 0).sum()),
        )
    x, codes = x[keep], codes[keep]
    k = len(labels.categories)
    shift = float(x.mean()) if len(x) else 0.0  # against cancellation in the sums of squares
    xc = x - shift
    n_in = np.bincount(codes, minlength=k).astype(np.float64)
    s_in = np.bincount(codes, weights=xc, minlength=k)
    ss_in = np.bincount(codes, weights=xc * xc, minlength=k)
    n_out, s_out, ss_out = len(x) - n_in, xc.sum() - s_in, float(xc @ xc) - ss_in

    with np.errstate(invalid="ignore", divide="ignore"):
        mean_in = np.where(n_in > 0, s_in / n_in, np.nan)
        mean_out = np.where(n_out > 0, s_out / n_out, np.nan)
        var_in = np.maximum(ss_in - s_in * mean_in, 0.0) / (n_in - 1)
        var_out = np.maximum(ss_out - s_out * mean_out, 0.0) / (n_out - 1)
        difference = mean_in - mean_out
        a, b = var_in / n_in, var_out / n_out
        se = np.sqrt(a + b)
        df = (a + b) ** 2 / (a**2 / (n_in - 1) + b**2 / (n_out - 1))
        t = (np.abs(difference) - delta) / se
    tested = (n_in >= 2) & (n_out >= 2)
    degenerate = tested & (se == 0)  # no spread on either side: the difference is exact
    t = np.where(degenerate, np.where(np.abs(difference) > delta, np.inf, -np.inf), t)
    df = np.where(degenerate, n_in + n_out - 2, df)
    pvalue = np.where(tested, stats.t.sf(t, np.where(tested, df, 1.0)), np.nan)
    t, df = np.where(tested, t, np.nan), np.where(tested, df, np.nan)
    difference = np.where(n_in * n_out > 0, difference, np.nan)
    padj = np.full(k, np.nan)
    if tested.any():
        padj[tested] = stats.false_discovery_control(pvalue[tested], method="bh")
    table = pd.DataFrame(
        {
            "cluster": [str(c) for c in labels.categories],
            "n_cells": n_in.astype(np.int64),
            "mean_in": mean_in + shift,
            "mean_out": mean_out + shift,
            "difference": difference,
            "t": t,
            "df": df,
            "pvalue": pvalue,
            "padj": padj,
            "direction": np.where(
                np.isnan(difference), "", np.where(difference > 0, "enriched", "depleted")
            ),
            "significant": np.nan_to_num(padj, nan=1.0) < alpha,
        }
    )
    table.attrs.update({"delta": float(delta), "alpha": float(alpha), "n_dropped": n_dropped})
    logger.info(
        "cluster_abundance_test: %d clusters, %d tested, %d significant (delta %g, alpha %g)",
        k,
        int(tested.sum()),
        int(table["significant"].sum()),
        delta,
        alpha,
    )
    return table


def _as_str(value: Any) -> str:
    """Format a covariate value as the string it is compared by (1.0 -> "1", True -> "True")."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if (
        isinstance(value, (float, np.floating))
        and math.isfinite(value)
        and float(value).is_integer()
    ):
        return str(int(value))
    if isinstance(value, (np.integer, np.floating)):
        return str(value.item())
    return str(value)


def _sorted_levels(values: pd.Series) -> list[Any]:
    """Distinct non-missing values, sorted as they are (numbers numerically) or else as strings."""
    unique = list(pd.unique(values.dropna()))
    try:
        return sorted(unique)
    except TypeError:
        return sorted(unique, key=_as_str)


def compare_sample_groups(
    values: pd.Series,
    groups: pd.Series,
    *,
    group_a: Any = None,
    group_b: Any = None,
) -> pd.DataFrame:
    """Mann-Whitney U test (two-sided) of a numeric sample covariate between two sample groups.

    Parameters
    ----------
    values
        The covariate, indexed by sample (its ``name`` names it in the result).
    groups
        Each sample's group, indexed by sample (e.g. one cluster of
        :func:`~mrvi_repro.analysis.sample_groups`). Samples of ``values`` absent here count as
        missing.
    group_a, group_b
        The two groups, compared as strings (so 1, 1.0 and "1" are the same group). By default the
        only two groups: sorted, ``group_b`` the first and ``group_a`` the second (as
        :func:`~mrvi_repro.analysis.differential_abundance`); with more than two groups both must
        be named (one is enough with exactly two).

    Returns
    -------
    A one-row table: ``covariate``, ``group_a``, ``group_b``, ``n_a``, ``n_b``, ``median_a``,
    ``median_b``, ``u`` (the U statistic of group A) and ``pvalue``. Samples with a missing value
    or group are dropped (``attrs["n_dropped"]``, logged).

    Raises
    ------
    ValueError
        Duplicated samples, non-numeric values, fewer than two groups, an unknown group, or more
        than two groups and the two to compare not named.
    """
    name = "value" if values.name is None else str(values.name)
    for what, series in (("values", values), ("groups", groups)):
        if series.index.has_duplicates:
            dup = list(series.index[series.index.duplicated()].unique()[:5])
            msg = f"{what} has duplicated samples, e.g. {dup}"
            raise ValueError(msg)
    try:
        numbers = pd.to_numeric(values, errors="raise").astype(np.float64)
    except (TypeError, ValueError) as err:
        msg = f"covariate {name!r} is not numeric: {err}"
        raise ValueError(msg) from err
    group = groups.reindex(values.index)
    keep = numbers.notna() & group.notna()
    n_dropped = int((~keep).sum())
    if n_dropped:
        logger.info(
            "compare_sample_groups(%s): dropped %d of %d samples with a missing value or group",
            name,
            n_dropped,
            len(values),
        )
    numbers, group = numbers[keep], group[keep].map(_as_str)
    levels = [_as_str(v) for v in _sorted_levels(groups.reindex(values.index)[keep])]
    chosen = [None if g is None else _as_str(g) for g in (group_a, group_b)]
    for g in chosen:
        if g is not None and g not in levels:
            msg = f"group {g!r} has no sample with a value of {name!r}; groups are {levels}"
            raise ValueError(msg)
    if len(levels) < 2:
        msg = f"compare_sample_groups needs two groups with values of {name!r}; found {levels}"
        raise ValueError(msg)
    a, b = chosen
    if a is None and b is None:
        if len(levels) != 2:
            msg = f"{len(levels)} groups {levels}: name group_a and group_b"
            raise ValueError(msg)
        b, a = levels
    elif a is None or b is None:
        if len(levels) != 2:
            msg = f"{len(levels)} groups {levels}: name both group_a and group_b"
            raise ValueError(msg)
        given = a if a is not None else b
        other = levels[1 - levels.index(given)]
        a, b = (given, other) if a is not None else (other, given)
    if a == b:
        msg = f"group_a and group_b are the same group, {a!r}"
        raise ValueError(msg)
    x, y = numbers[group == a].to_numpy(), numbers[group == b].to_numpy()
    result = stats.mannwhitneyu(x, y, alternative="two-sided")
    table = pd.DataFrame(
        {
            "covariate": [name],
            "group_a": [a],
            "group_b": [b],
            "n_a": [len(x)],
            "n_b": [len(y)],
            "median_a": [float(np.median(x))],
            "median_b": [float(np.median(y))],
            "u": [float(result.statistic)],
            "pvalue": [float(result.pvalue)],
        }
    )
    table.attrs["n_dropped"] = n_dropped
    return table


def select_samples(
    samples: pd.DataFrame,
    *,
    include: Mapping[str, Sequence[Any]] | None = None,
    exclude: Mapping[str, Sequence[Any]] | None = None,
) -> list[str]:
    """Select the samples whose covariates match ``include`` and not ``exclude``.

    Values are compared as strings (1, 1.0 and "1" alike; True as "True"), so that values read
    from YAML match columns of any type.

    Parameters
    ----------
    samples
        One row per sample (index: sample ids), columns the sample covariates.
    include
        Column -> accepted values: a sample is kept when its value is among them for every column.
    exclude
        Column -> rejected values: a sample is dropped when its value is among them for any column.

    Returns
    -------
    The sample ids kept (as strings), in the order of ``samples``.

    Raises
    ------
    KeyError
        A column that ``samples`` does not have (the message lists the columns).
    ValueError
        A value that no sample has (the message lists the column's values), duplicated sample
        ids, or nothing left.
    """
    if samples.index.has_duplicates:
        dup = list(samples.index[samples.index.duplicated()].unique()[:5])
        msg = f"samples has duplicated ids, e.g. {dup}"
        raise ValueError(msg)
    keep = np.ones(len(samples), dtype=bool)
    for kind, rules in (("include", include), ("exclude", exclude)):
        for column, wanted in (rules or {}).items():
            if column not in samples.columns:
                msg = f"{kind}: {column!r} is not a sample covariate; columns are {list(samples.columns)}"
                raise KeyError(msg)
            if isinstance(wanted, (str, bytes)) or not hasattr(wanted, "__iter__"):
                wanted = [wanted]
            observed = samples[column].map(_as_str, na_action="ignore")
            present = set(observed.dropna())
            wanted_str = [_as_str(v) for v in wanted]
            missing = [v for v in wanted_str if v not in present]
            if missing:
                existing = [_as_str(v) for v in _sorted_levels(samples[column])]
                msg = f"{kind}: no sample has {column} = {missing}; its values are {existing}"
                raise ValueError(msg)
            match = observed.isin(wanted_str).to_numpy()
            keep &= match if kind == "include" else ~match
    if not keep.any():
        msg = f"no sample left after include={dict(include or {})}, exclude={dict(exclude or {})}"
        raise ValueError(msg)
    chosen = [str(s) for s in samples.index[keep]]
    logger.info("select_samples: %d of %d samples", len(chosen), len(samples))
    return chosen


def _cell_gene(lfc: xr.DataArray) -> xr.DataArray:
    """``lfc`` with dims (cell, gene), or a clear error."""
    if not isinstance(lfc, xr.DataArray) or set(lfc.dims) != {"cell", "gene"}:
        dims = getattr(lfc, "dims", None)
        msg = (
            f"lfc must be an xarray.DataArray with dims (cell, gene), got dims {dims}; select one "
            "comparison first, e.g. lfc.sel(covariate=...)"
        )
        raise ValueError(msg)
    return lfc.transpose("cell", "gene")


def _gene_names(lfc: xr.DataArray) -> list[str]:
    if "gene" in lfc.coords:
        return [str(g) for g in lfc["gene"].values]
    return [str(i) for i in range(lfc.sizes["gene"])]


def _read_cells(lfc: xr.DataArray, cells: np.ndarray, block: int) -> np.ndarray:
    """Read the rows ``cells`` (sorted positions) of a (cell, gene) array, ``block`` at a time."""
    out = np.empty((len(cells), lfc.sizes["gene"]), dtype=np.float32)
    contiguous = len(cells) > 0 and cells[-1] - cells[0] + 1 == len(cells)
    for start in range(0, len(cells), block):
        rows = cells[start : start + block]
        index = slice(int(rows[0]), int(rows[-1]) + 1) if contiguous else rows
        out[start : start + len(rows)] = np.asarray(lfc.isel(cell=index).values)
    return out


def gene_modules(
    lfc: xr.DataArray,
    *,
    n_neighbors: int = 15,
    resolution: float = 0.25,
    n_pcs: int = 50,
    max_cells: int = 20_000,
    block: int = 4096,
    seed: int = 0,
) -> pd.Series:
    """Modules of genes with similar per-cell LFC profiles (Fig. 3f).

    Genes are the observations and cells the features: each gene's LFCs over the cells (at most
    ``max_cells`` of them, a seeded random subset in the original order when there are more) are
    centred per cell (PCA's centring; not standardised, so the LFC scale is kept), embedded by PCA,
    connected in a kNN graph and clustered by Leiden (:mod:`mrvi_repro._graph`), as the reference
    code did with resolution 0.25.

    Parameters
    ----------
    lfc
        Per-cell LFCs of one comparison, dims (cell, gene), e.g. ``differential_expression(...,
        lfc=True)["lfc"].sel(covariate=...)``. May be lazily indexed (opened from zarr or netCDF):
        only the chosen cells are read, ``block`` at a time. Cells with a non-finite LFC are left
        out (counted in the log).
    n_neighbors
        Neighbours of each gene in the kNN graph, the gene included; fewer than the genes.
    resolution
        Leiden resolution.
    n_pcs
        Principal components; capped at min(genes - 1, cells used).
    max_cells
        Most cells used as features; memory is about ``max_cells`` x genes x 4 bytes.
    block
        Cells read at a time.
    seed
        Seed of the cell subset, the PCA solver, the kNN search and Leiden.

    Returns
    -------
    Each gene's module (index: gene names, name ``module``): a categorical of "1", "2", ... with
    "1" the largest module. ``attrs`` hold the parameters and ``n_cells_used``, ``n_pcs_used``.
    """
    from sklearn.decomposition import PCA

    lfc = _cell_gene(lfc)
    n_cells, n_genes = lfc.sizes["cell"], lfc.sizes["gene"]
    if n_neighbors < 2 or n_neighbors >= n_genes:
        msg = f"n_neighbors = {n_neighbors} must lie between 2 and the number of genes - 1 ({n_genes - 1})"
        raise ValueError(msg)
    if max_cells < 1 or block < 1:
        msg = f"max_cells and block must be >= 1, got {max_cells} and {block}"
        raise ValueError(msg)
    if n_cells > max_cells:
        rng = np.random.default_rng(seed)
        cells = np.sort(rng.choice(n_cells, size=max_cells, replace=False))
    else:
        cells = np.arange(n_cells)
    logger.info("gene_modules: reading %d of %d cells x %d genes", len(cells), n_cells, n_genes)
    x = _read_cells(lfc, cells, block)
    finite = np.isfinite(x).all(1)
    if not finite.all():
        logger.info("gene_modules: left out %d cells with non-finite LFCs", int((~finite).sum()))
        x = x[finite]
    if len(x) == 0:
        msg = "gene_modules: no cell has finite LFCs for every gene"
        raise ValueError(msg)
    features = np.ascontiguousarray(x.T)  # genes x cells
    del x
    k = min(n_pcs, n_genes - 1, features.shape[1])
    if k < 1:
        msg = f"gene_modules: cannot embed {n_genes} genes over {features.shape[1]} cells"
        raise ValueError(msg)
    if k < n_pcs:
        logger.info("gene_modules: n_pcs capped at %d (was %d)", k, n_pcs)
    pca = PCA(n_components=k, random_state=seed)
    scores = pca.fit_transform(features).astype(np.float32)
    logger.info(
        "gene_modules: %d PCs explain %.3f of the variance",
        k,
        float(pca.explained_variance_ratio_.sum()),
    )
    genes = _gene_names(lfc)
    graph = ad.AnnData(obs=pd.DataFrame(index=pd.Index(genes, dtype=object)))
    graph.obsm["X_gene_pca"] = scores
    knn_graph(graph, n_neighbors=n_neighbors, use_rep="X_gene_pca", seed=seed)
    clusters = leiden(graph, resolution=resolution, seed=seed)
    relabel = {c: str(int(c) + 1) for c in clusters.cat.categories}
    modules = pd.Series(
        pd.Categorical(
            clusters.astype(str).map(relabel).to_numpy(), categories=list(relabel.values())
        ),
        index=pd.Index(genes, name="gene"),
        name="module",
    )
    modules.attrs.update(
        {
            "n_neighbors": int(n_neighbors),
            "resolution": float(resolution),
            "n_pcs_used": int(k),
            "n_cells_used": int(features.shape[1]),
            "seed": int(seed),
        }
    )
    logger.info(
        "gene_modules: %d modules of sizes %s",
        len(relabel),
        modules.value_counts(sort=False).to_dict(),
    )
    return modules


def module_activity(lfc: xr.DataArray, modules: pd.Series, *, block: int = 4096) -> xr.DataArray:
    """Each module's mean LFC per cell (the activity drawn on u in Fig. 3f).

    Parameters
    ----------
    lfc
        Per-cell LFCs, dims (cell, gene), possibly lazily indexed: read ``block`` cells (and only
        the modules' genes) at a time, so memory is ``block`` x genes.
    modules
        Gene -> module (index: gene names, e.g. :func:`gene_modules`). Genes without a module
        (missing label) are ignored; every labelled gene must be in ``lfc``.
    block
        Cells per read.

    Returns
    -------
    DataArray ``module_activity`` (cell, module), float64: the plain mean of the module's genes'
    LFCs (NaN where one of them is NaN), with an ``n_genes`` coordinate on module. Modules follow
    the categories' order for a categorical ``modules``, else their sorted labels.
    """
    lfc = _cell_gene(lfc)
    if block < 1:
        msg = f"block must be >= 1, got {block}"
        raise ValueError(msg)
    genes = _gene_names(lfc)
    position = {g: i for i, g in enumerate(genes)}
    if modules.index.has_duplicates:
        dup = list(modules.index[modules.index.duplicated()].unique()[:5])
        msg = f"modules has duplicated genes, e.g. {dup}"
        raise ValueError(msg)
    labelled = modules.dropna()
    names = [str(g) for g in labelled.index]
    missing = [g for g in names if g not in position]
    if missing:
        msg = f"{len(missing)} genes of modules are not in lfc, e.g. {missing[:5]}"
        raise KeyError(msg)
    if isinstance(modules.dtype, pd.CategoricalDtype):
        order = [c for c in modules.cat.categories if (labelled == c).any()]
    else:
        order = _sorted_levels(labelled)
    label_names = [_as_str(m) for m in order]
    columns = np.array([position[g] for g in names], dtype=np.int64)
    used = np.unique(columns)  # read only the modules' genes, in lfc's order
    local = np.searchsorted(used, columns)
    members = [local[(labelled == m).to_numpy()] for m in order]
    n_cells = lfc.sizes["cell"]
    out = np.empty((n_cells, len(order)), dtype=np.float64)
    gene_index = slice(None) if len(used) == len(genes) else used
    for start in range(0, n_cells, block):
        stop = min(start + block, n_cells)
        part = np.asarray(lfc.isel(cell=slice(start, stop), gene=gene_index).values, np.float64)
        for j, cols in enumerate(members):
            out[start:stop, j] = part[:, cols].mean(1)
    coords: dict[str, Any] = {
        "module": label_names,
        "n_genes": ("module", np.array([len(c) for c in members], dtype=np.int64)),
    }
    if "cell" in lfc.coords:
        coords["cell"] = lfc["cell"].values
    return xr.DataArray(out, dims=("cell", "module"), coords=coords, name="module_activity")
