"""Marker genes of cell labels from their expression (Extended Data Fig. 7b's dot plot)."""

from __future__ import annotations

import logging

import anndata as ad
import numpy as np
import pandas as pd
from scipy import sparse

logger = logging.getLogger(__name__)


def marker_genes(adata: ad.AnnData, groupby: str, n_markers: int = 3) -> pd.DataFrame:
    """Rank each group's marker genes against the other groups and tabulate a dot plot.

    scanpy's ``rank_genes_groups`` (Wilcoxon rank-sum, each group against the rest) on
    ``adata.X``, which must hold log-normalised expression (e.g. log1p of library-size-scaled
    counts); a group's markers are its ``n_markers`` genes with the largest scores that are up
    in it (positive log fold change).

    Parameters
    ----------
    adata
        Cells x genes, log-normalised expression in ``X`` (dense or sparse), ``obs[groupby]``.
    groupby
        Column of ``obs`` with the groups (at least two with two or more cells).
    n_markers
        Markers per group.

    Returns
    -------
    One row per group and marker gene of any group (the dot plot's cells): ``group``, ``gene``,
    ``marker_of`` (the group the gene marks; the best-ranked one if several), ``rank`` (1 = top
    within ``marker_of``), ``score`` (Wilcoxon z-score of ``marker_of``), ``fraction`` (share of
    the group's cells with expression above 0) and ``mean`` (mean expression in the group).
    Groups in the column's category order (sorted names if it is not categorical); rows by
    group, then genes by ``marker_of`` and rank.

    Raises
    ------
    ValueError
        If ``groupby`` is not a column or fewer than two groups have two cells.
    """
    import scanpy as sc

    if groupby not in adata.obs:
        msg = f"no obs column {groupby!r} to rank markers by"
        raise ValueError(msg)
    column = adata.obs[groupby]
    groups = column.astype(str)
    sizes = groups.value_counts()
    order = (
        [str(c) for c in column.cat.categories if str(c) in sizes.index]
        if isinstance(column.dtype, pd.CategoricalDtype)
        else sorted(sizes.index)
    )
    kept = [g for g in order if sizes[g] >= 2]
    if len(kept) < 2:
        msg = f"marker genes need two groups of at least two cells (sizes: {sizes.to_dict()})"
        raise ValueError(msg)
    within = groups.isin(kept).to_numpy()
    ranked = ad.AnnData(
        X=adata.X[within],
        obs=pd.DataFrame(
            {"group": pd.Categorical(groups[within], categories=kept)},
            index=adata.obs_names[within].astype(str),
        ),
        var=pd.DataFrame(index=adata.var_names.astype(str)),
    )
    sc.tl.rank_genes_groups(ranked, "group", method="wilcoxon", use_raw=False, tie_correct=True)
    result = ranked.uns["rank_genes_groups"]
    rows = []
    for group in kept:
        table = pd.DataFrame(
            {
                "gene": np.asarray(result["names"][group], dtype=str),
                "score": np.asarray(result["scores"][group], dtype=float),
                "lfc": np.asarray(result["logfoldchanges"][group], dtype=float),
            }
        )
        table = table[table["lfc"] > 0].head(n_markers)
        rows += [
            (group, g, r + 1, s)
            for r, (g, s) in enumerate(zip(table["gene"], table["score"], strict=True))
        ]
    tops = pd.DataFrame(rows, columns=["marker_of", "gene", "rank", "score"])
    tops = tops.drop_duplicates("gene", keep="first")
    columns = adata.var_names.get_indexer(tops["gene"])
    x = adata.X[:, columns]
    x = x.toarray() if sparse.issparse(x) else np.asarray(x)
    out = []
    for group in kept:
        mask = (groups == group).to_numpy()
        part = x[mask]
        out.append(
            tops.assign(group=group, fraction=(part > 0).mean(axis=0), mean=part.mean(axis=0))
        )
    dot = pd.concat(out, ignore_index=True)
    logger.info(
        "markers of %d groups (%d cells): %s",
        len(kept),
        int(ranked.n_obs),
        {g: tops.loc[tops["marker_of"] == g, "gene"].tolist() for g in kept},
    )
    return dot[["group", "gene", "marker_of", "rank", "score", "fraction", "mean"]]
