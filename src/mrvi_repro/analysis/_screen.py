"""A perturbation screen's samples grouped by their effects (the paper's Fig. 4e-f).

Paper, sci-Plex Results: the samples (drug x dose) are ranked by their distance to the vehicle in
the mean sample distance matrix; the top 20 % (74 of 368 in A549) are clustered hierarchically
(Ward) and each cluster's effect is described by MrVI's DE against the vehicle, then by gene-set
enrichment of its up- and down-regulated DE genes (Fig. 4f's two triangles per tile).

:func:`screen_clusters` does the ranking and the clustering on any sample distance matrix;
:func:`cluster_de` fits the DE of every cluster against the reference in one multivariate
regression (the clusters as one categorical covariate, the reference its baseline level);
:func:`de_gene_lists` and :func:`cluster_enrichment` turn the mean LFCs into DE gene lists and
their over-representation in gene sets.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr
from scipy.cluster import hierarchy

from mrvi_repro._groups import with_group_column

from ._abundance import admissibility_reference
from ._de import Contrast, differential_expression
from ._gsea import overrepresentation
from ._stratify import sample_linkage

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import anndata as ad

    from mrvi_repro.model import MrVI

logger = logging.getLogger(__name__)

#: Columns of :func:`screen_clusters`' table.
SCREEN_COLUMNS = ("sample", "distance_to_reference", "rank", "retained", "cluster", "leaf")
#: The level of the reference sample in :func:`cluster_de`'s covariate (sorts before "1", "2"...).
REFERENCE_LEVEL = "0"
#: Directions of the DE gene lists.
DIRECTIONS = ("up", "down")


def _square(distances: xr.DataArray) -> xr.DataArray:
    """Check a (sample_x, sample_y) matrix with the same sample names on both axes."""
    if distances.dims != ("sample_x", "sample_y"):
        msg = f"need a (sample_x, sample_y) distance matrix, got dims {distances.dims}"
        raise ValueError(msg)
    x = [str(s) for s in distances["sample_x"].values]
    if x != [str(s) for s in distances["sample_y"].values]:
        msg = "sample_x and sample_y must list the same samples in the same order"
        raise ValueError(msg)
    if not np.isfinite(distances.values).all():
        msg = "the distance matrix has non-finite entries"
        raise ValueError(msg)
    return distances


def screen_clusters(
    distances: xr.DataArray,
    reference: str,
    *,
    top_fraction: float = 0.2,
    n_clusters: int = 8,
    method: str = "ward",
) -> pd.DataFrame:
    """Rank the samples by distance to the reference; cluster the top ones hierarchically.

    Parameters
    ----------
    distances
        Mean sample distance matrix, dims (sample_x, sample_y) (symmetrised before use).
    reference
        The control sample (the vehicle).
    top_fraction
        Share of the other samples kept ("retained"): the ``ceil(top_fraction x (S - 1))``
        farthest from the reference (the paper's 74 of 368 at 0.2).
    n_clusters
        Clusters of the retained samples: the dendrogram of their matrix (``method`` linkage) cut
        into at most this many (``fcluster`` "maxclust"); capped at the retained samples.
    method
        Linkage method (:func:`~mrvi_repro.analysis._stratify.sample_linkage`).

    Returns
    -------
    One row per sample, by increasing ``rank`` (1 = farthest from the reference; the reference
    last with rank S): ``sample``, ``distance_to_reference``, ``rank``, ``retained`` (bool),
    ``cluster`` ("1", "2", ... in dendrogram order for retained samples, "" otherwise) and
    ``leaf`` (position in the retained samples' dendrogram, -1 otherwise).

    Raises
    ------
    ValueError
        An unknown reference, a bad matrix, ``top_fraction`` outside (0, 1], fewer than 2
        clusters or fewer than 2 retained samples.
    """
    d = _square(distances)
    samples = [str(s) for s in d["sample_x"].values]
    if reference not in samples:
        msg = f"reference {reference!r} is not a sample of the matrix ({len(samples)} samples)"
        raise ValueError(msg)
    if not 0 < top_fraction <= 1:
        msg = f"top_fraction must lie in (0, 1], got {top_fraction}"
        raise ValueError(msg)
    if n_clusters < 2:
        msg = f"n_clusters must be at least 2, got {n_clusters}"
        raise ValueError(msg)
    values = np.asarray(d.values, dtype=np.float64)
    values = (values + values.T) / 2
    ref = samples.index(reference)
    to_ref = pd.Series(values[ref], index=samples).drop(reference)
    ordered = to_ref.sort_values(ascending=False, kind="stable")
    n_keep = math.ceil(top_fraction * len(ordered))
    if n_keep < 2:
        msg = f"top_fraction {top_fraction} retains {n_keep} sample(s); at least 2 are needed"
        raise ValueError(msg)
    kept = list(ordered.index[:n_keep])
    idx = [samples.index(s) for s in kept]
    linkage = sample_linkage(values[np.ix_(idx, idx)], method=method)
    k = min(n_clusters, n_keep)
    raw = hierarchy.fcluster(linkage, t=k, criterion="maxclust")
    leaves = hierarchy.leaves_list(linkage)
    relabel: dict[int, str] = {}
    for leaf in leaves:
        relabel.setdefault(int(raw[leaf]), str(len(relabel) + 1))
    table = pd.DataFrame(
        {
            "sample": [*ordered.index, reference],
            "distance_to_reference": [*ordered.to_numpy(), 0.0],
            "rank": np.arange(1, len(samples) + 1),
        }
    )
    table["retained"] = table["sample"].isin(kept)
    cluster = dict(zip(kept, (relabel[int(r)] for r in raw), strict=True))
    leaf_of = {kept[int(leaf)]: i for i, leaf in enumerate(leaves)}
    table["cluster"] = table["sample"].map(cluster).fillna("")
    table["leaf"] = table["sample"].map(leaf_of).fillna(-1).astype(int)
    logger.info(
        "screen_clusters: %d of %d samples retained (top %.0f %% by distance to %s, cut at "
        "%.3g); %d clusters of sizes %s",
        n_keep,
        len(ordered),
        100 * top_fraction,
        reference,
        float(ordered.iloc[n_keep - 1]),
        len(relabel),
        table.loc[table["retained"], "cluster"].value_counts().sort_index().to_dict(),
    )
    return table[list(SCREEN_COLUMNS)]


def cluster_de(
    model: MrVI,
    adata: ad.AnnData,
    clusters: pd.DataFrame,
    reference: str,
    *,
    mc_samples: int = 20,
    max_cells: int = 10_000,
    admissibility: bool = True,
    seed: int = 0,
) -> xr.Dataset:
    """MrVI's DE of every sample cluster against the reference, in one regression.

    The retained samples' clusters and the reference form one categorical sample covariate (the
    reference the baseline level :data:`REFERENCE_LEVEL`), fitted on those samples only; each
    cluster's contrast against the reference is reported, with per-gene LFCs averaged over the
    analysed cells (at most ``max_cells``, a seeded subsample of all cells; each cell's draws of
    u keyed by its row, as in :func:`~mrvi_repro.analysis.differential_expression`).

    Parameters
    ----------
    model, adata
        The fitted MrVI and its data.
    clusters
        :func:`screen_clusters`' table (``sample``, ``retained``, ``cluster``).
    reference
        The reference sample.
    mc_samples
        Draws of u per cell.
    max_cells
        Cells analysed at most.
    admissibility
        Drop each cell's out-of-distribution samples (the Methods' filter; fitted on all cells).
    seed
        Seed of the cell subsample, the admissibility rule and the draws.

    Returns
    -------
    :func:`~mrvi_repro.analysis.differential_expression`'s dataset, its ``covariate``
    coordinate naming the clusters ("1", "2", ...), with ``mean_lfc`` (covariate, gene): the
    log2 fold change of each cluster against the reference averaged over the analysed cells.
    """
    table = clusters.set_index(clusters["sample"].astype(str))
    retained = table.index[table["retained"].astype(bool)].tolist()
    if reference not in table.index:
        msg = f"reference {reference!r} is not in the clusters table"
        raise ValueError(msg)
    names = sorted({str(c) for c in table.loc[retained, "cluster"]}, key=_cluster_key)
    if not names:
        msg = "no retained sample: nothing to compare with the reference"
        raise ValueError(msg)
    level = table["cluster"].astype(str).where(table["retained"].astype(bool), "other")
    level[reference] = REFERENCE_LEVEL
    sample_key = model.registry.sample_key
    cells_samples = adata.obs[sample_key].astype(str)
    with_level, column = with_group_column(
        adata, pd.Categorical(cells_samples.map(level).fillna("other").to_numpy()), "cluster"
    )
    rng = np.random.default_rng(seed)
    n = adata.n_obs
    cells = np.sort(rng.choice(n, max_cells, replace=False)) if n > max_cells else np.arange(n)
    rule = admissibility_reference(model, adata, seed=seed) if admissibility else None
    with_group, groupby = with_group_column(with_level, np.full(n, "all"), "all")
    logger.info(
        "cluster_de: %d clusters vs %s on %d retained samples, %d of %d cells, %d draws",
        len(names),
        reference,
        len(retained),
        len(cells),
        n,
        mc_samples,
    )
    de = differential_expression(
        model,
        with_group,
        covariates=[column],
        contrasts=[Contrast(column, name, REFERENCE_LEVEL, name=name) for name in names],
        samples=[*retained, reference],
        cells=cells,
        admissible=rule,
        mc_samples=mc_samples,
        lfc=True,
        lfc_groupby=groupby,
        seed=seed,
    )
    de["mean_lfc"] = de["lfc"].isel(group=0, drop=True)
    de = de.drop_vars(["lfc", "n_cells"], errors="ignore").drop_dims("group", errors="ignore")
    de.attrs.update(
        {"covariates": "sample cluster", "reference": reference, "n_cells_analysed": len(cells)}
    )
    return de


def _cluster_key(name: str) -> tuple[int, str]:
    """Sort "1", "2", ..., "10" numerically, other names after them."""
    return (int(name), "") if name.isdigit() else (10**9, name)


def de_gene_lists(
    mean_lfc: xr.DataArray, *, min_lfc: float = 0.5, max_genes: int = 200
) -> dict[tuple[str, str], list[str]]:
    """Return the up- and down-regulated DE genes of each contrast, from its mean LFCs.

    Parameters
    ----------
    mean_lfc
        Mean log2 fold changes, dims (covariate, gene).
    min_lfc
        A gene is up (down) when its LFC is at least ``min_lfc`` (at most ``-min_lfc``).
    max_genes
        At most this many genes per list, the largest |LFC| first.

    Returns
    -------
    (contrast, "up" or "down") -> genes, by decreasing |LFC|.
    """
    if min_lfc < 0 or max_genes < 1:
        msg = f"need min_lfc >= 0 and max_genes >= 1, got {min_lfc} and {max_genes}"
        raise ValueError(msg)
    genes = [str(g) for g in mean_lfc["gene"].values]
    out = {}
    for name in mean_lfc["covariate"].values:
        lfc = pd.Series(mean_lfc.sel(covariate=name).values, index=genes).dropna()
        up = lfc[lfc >= min_lfc].sort_values(ascending=False)
        down = lfc[lfc <= -min_lfc].sort_values()
        out[(str(name), "up")] = list(up.index[:max_genes])
        out[(str(name), "down")] = list(down.index[:max_genes])
    return out


def cluster_enrichment(
    mean_lfc: xr.DataArray,
    gene_sets: Mapping[str, Sequence[str]],
    *,
    min_lfc: float = 0.5,
    max_genes: int = 200,
    min_size: int = 5,
    max_size: int = 500,
) -> pd.DataFrame:
    """Over-representation of each cluster's up- and down-regulated DE genes in gene sets.

    The DE gene lists of :func:`de_gene_lists`, each tested against every gene set
    (:func:`~mrvi_repro.analysis.overrepresentation`, universe: the genes of ``mean_lfc``).

    Returns
    -------
    The tables stacked, with leading columns ``cluster`` and ``direction``; ``score`` =
    -log10(FDR) (the colour of Fig. 4f's triangles). Empty (with those columns) when no list
    has genes.
    """
    universe = [str(g) for g in mean_lfc["gene"].values]
    tables = []
    for (name, direction), genes in de_gene_lists(
        mean_lfc, min_lfc=min_lfc, max_genes=max_genes
    ).items():
        table = overrepresentation(genes, gene_sets, universe, min_size=min_size, max_size=max_size)
        tables.append(table.assign(cluster=name, direction=direction))
        logger.info(
            "cluster %s, %s (%d genes): %d sets with FDR < 0.05%s",
            name,
            direction,
            len(genes),
            int((table["fdr"] < 0.05).sum()),
            f", first {table['gene_set'].iloc[0]}" if len(table) else "",
        )
    columns = ["cluster", "direction", "gene_set", "size", "n_genes", "overlap", "pvalue", "fdr"]
    if not tables:
        return pd.DataFrame({c: [] for c in [*columns, "score", "genes"]})
    out = pd.concat(tables, ignore_index=True)
    out["score"] = -np.log10(np.clip(out["fdr"].to_numpy(dtype=float), 1e-300, 1.0))
    return out[[*columns, "score", "genes"]]
