"""The paper's semi-synthetic benchmark construction, applicable to any AnnData of raw counts.

Paper: Methods "Semi-synthetic experiment", Fig. 2a and Extended Data Fig. 10.

1. Cluster the cells (library-size normalisation, log1p, PCA, kNN graph, Leiden). Clusters are
   ranked by size; by default the largest is subset A, the 2nd largest subset B and the 4th largest
   subset C (as in the reference code: Leiden labels 0, 1 and 3); the rest are "Other".
2. Subset A (DE, covariate 1): PCA of a random gene subset within A, Ward linkage of its cells, cut
   into ``n_subclusters`` subclusters. Each subcluster owns ``n_replicates`` subjects and its cells
   are spread uniformly over them, so subjects differ in expression in A exactly as the subclusters
   do; the Ward tree over subclusters (replicates as zero-height leaves) is the ground-truth
   hierarchy of the subjects. Subjects are numbered in the tree's leaf order.
3. Every other cell goes to a subject drawn uniformly from all of them (no signal).
4. Subsets B and C (DA, covariate 2): a subject's replicate rank r within its covariate-1 group sets
   its covariate 2; it keeps a fraction ``subsample_rates[r]`` of its subset-B cells and receives as
   many extra subset-C cells, resampled with replacement from subset C, as it lost, so its total
   stays constant (depletion of B, enrichment of C). Ranks whose rate is at most
   ``strong_rate_max`` form the "strong resampling" (starred) categories.

Ground truth stored in the result:

* ``obs``: ``leiden`` (cluster, "0" = largest), ``subset`` (A, B, C, Other), ``subcluster`` (A cells),
  the sample key (subject), ``covariate_1`` (G1..Gk), ``covariate_1_top`` (top split of the tree,
  T1/T2), ``covariate_1_G1`` (bool: group G1, the paper's DE benchmark compares it with the
  rest), ``covariate_2`` (R1..Rr), ``covariate_2_strong`` (bool), ``de_cell`` (carries DE: subset
  A), ``da_cell`` (carries DA: subsets B and C), ``resampled`` (a duplicated subset-C cell);
* ``uns['semisynthetic']``: the parameters, the subset → cluster map, the subject order, the
  subject tree as a scipy linkage matrix (``subject_linkage``, leaves in ``subject_order``) and as
  Newick (``subject_newick``), and the genes used for subclustering (``subcluster_genes``).
"""

from __future__ import annotations

import copy
import logging
from typing import TYPE_CHECKING

import anndata as ad
import numpy as np
import pandas as pd
import scanpy as sc
from scipy.cluster import hierarchy

from mrvi_repro._graph import knn_graph, leiden
from mrvi_repro.settings.data import SemisyntheticParams

if TYPE_CHECKING:
    from scipy.cluster.hierarchy import ClusterNode

logger = logging.getLogger(__name__)

SUBSETS = ("A", "B", "C", "Other")


def leiden_clusters(
    adata: ad.AnnData, *, resolution: float, n_neighbors: int, n_pcs: int, seed: int
) -> pd.Series:
    """Leiden clusters of a count matrix, labelled "0", "1", ... by decreasing size.

    Normalises a copy to the median library size, log1p, PCA (``n_pcs``, capped by the data's
    size), kNN graph and Leiden (:func:`mrvi_repro._graph.leiden`), all seeded.
    """
    tmp = ad.AnnData(X=adata.X.copy(), obs=pd.DataFrame(index=adata.obs_names))
    sc.pp.normalize_total(tmp)
    sc.pp.log1p(tmp)
    n_comps = min(n_pcs, tmp.n_obs - 1, tmp.n_vars - 1)
    if n_comps < n_pcs:
        logger.info(
            "semisynthetic.n_pcs = %d capped to %d: %d cells x %d genes",
            n_pcs,
            n_comps,
            tmp.n_obs,
            tmp.n_vars,
        )
    sc.pp.pca(tmp, n_comps=n_comps, random_state=seed)
    knn_graph(tmp, n_neighbors=n_neighbors, seed=seed)
    return leiden(tmp, resolution=resolution, seed=seed)


def _subcluster_tree(z: np.ndarray, labels: np.ndarray, k: int) -> ClusterNode:
    """Return the top of a linkage above its ``k``-cluster cut, leaves relabelled by cluster id."""
    n = z.shape[0] + 1
    top = set(range(2 * n - k, 2 * n - 1))  # node ids of the last k-1 merges
    root = hierarchy.to_tree(z)

    def build(node: ClusterNode) -> ClusterNode:
        if node.id in top:
            return hierarchy.ClusterNode(node.id, build(node.left), build(node.right), node.dist)
        return hierarchy.ClusterNode(int(labels[node.pre_order()[0]]) - 1, dist=0.0)

    return build(root)


def _subject_linkage(tree: ClusterNode, n_replicates: int) -> tuple[np.ndarray, list[int]]:
    """Linkage over subjects: replicates of a subcluster join at height 0, then the tree's merges.

    Returns the linkage and the subcluster ids in leaf order (subject ``j * R + r`` belongs to the
    ``j``-th subcluster in that order).
    """
    leaf_order = tree.pre_order()
    position = {c: j for j, c in enumerate(leaf_order)}
    rows: list[list[float]] = []
    n_subjects = len(leaf_order) * n_replicates
    next_id = n_subjects

    def emit(a: int, b: int, height: float, size: int) -> int:
        nonlocal next_id
        rows.append([a, b, height, size])
        next_id += 1
        return next_id - 1

    def walk(node: ClusterNode) -> tuple[int, int]:
        if node.is_leaf():
            first = position[node.id] * n_replicates
            cid, size = first, 1
            for r in range(1, n_replicates):
                size += 1
                cid = emit(cid, first + r, 0.0, size)
            return cid, size
        (left, nl), (right, nr) = walk(node.left), walk(node.right)
        return emit(left, right, float(node.dist), nl + nr), nl + nr

    walk(tree)
    return np.asarray(rows, dtype=float), leaf_order


def _newick(
    tree: ClusterNode, leaf_order: list[int], subjects: list[str], n_replicates: int
) -> str:
    position = {c: j for j, c in enumerate(leaf_order)}

    def walk(node: ClusterNode, parent_height: float) -> str:
        if node.is_leaf():
            first = position[node.id] * n_replicates
            leaves = ",".join(f"{subjects[first + r]}:0" for r in range(n_replicates))
            return f"({leaves})G{position[node.id] + 1}:{parent_height:.6g}"
        inner = f"{walk(node.left, node.dist)},{walk(node.right, node.dist)}"
        return f"({inner}):{parent_height - node.dist:.6g}"

    return walk(tree, tree.dist) + ";"


def make_semisynthetic(
    adata: ad.AnnData,
    params: SemisyntheticParams | None = None,
    *,
    sample_key: str = "sample_assignment",
) -> ad.AnnData:
    """Plant the paper's DE and DA sample effects into a count matrix.

    Parameters
    ----------
    adata
        Base dataset with raw counts in ``X`` (e.g. the HVG-selected PBMC 68k or a simulated base).
    params
        Construction parameters and seed.
    sample_key
        Name of the ``obs`` column that receives the synthetic subject of each cell.

    Returns
    -------
    A new AnnData (subset-B cells removed, subset-C cells duplicated) with the ground truth
    described in the module docstring.

    Raises
    ------
    ValueError
        If the clustering yields too few clusters for the requested subset ranks, or subset A is too
        small to split into ``n_subclusters`` subclusters.
    """
    p = params or SemisyntheticParams()
    rng = np.random.default_rng(p.seed)
    clusters = leiden_clusters(
        adata, resolution=p.resolution, n_neighbors=p.n_neighbors, n_pcs=p.n_pcs, seed=p.seed
    )
    sizes = clusters.value_counts().sort_index(key=lambda idx: idx.astype(int))
    logger.info(
        "Leiden (resolution %g): %d clusters, sizes %s", p.resolution, len(sizes), sizes.to_dict()
    )
    if len(sizes) <= max(p.subset_ranks):
        msg = (
            f"Leiden at resolution {p.resolution} found {len(sizes)} clusters, but subset_ranks "
            f"{list(p.subset_ranks)} needs at least {max(p.subset_ranks) + 1}; raise the resolution "
            "(semisynthetic.resolution of a dataset entry)"
        )
        raise ValueError(msg)
    label = dict(zip(("A", "B", "C"), (str(r) for r in p.subset_ranks), strict=True))
    subset = np.full(adata.n_obs, "Other", dtype=object)
    for name, cluster in label.items():
        subset[(clusters == cluster).to_numpy()] = name

    # Subset A: subclusters from Ward on a PCA of random genes.
    in_a = np.flatnonzero(subset == "A")
    if in_a.size < 2 * p.n_subclusters:
        msg = (
            f"subset A has {in_a.size} cells, too few for {p.n_subclusters} subclusters "
            "(semisynthetic.n_subclusters of a dataset entry)"
        )
        raise ValueError(msg)
    genes = np.sort(
        rng.choice(adata.n_vars, size=min(p.n_genes_subclustering, adata.n_vars), replace=False)
    )
    sub = ad.AnnData(X=adata.X[in_a][:, genes].copy())
    sc.pp.normalize_total(sub)
    sc.pp.log1p(sub)
    sc.pp.pca(sub, n_comps=min(p.n_pcs, sub.n_obs - 1, sub.n_vars - 1), random_state=p.seed)
    z = hierarchy.linkage(sub.obsm["X_pca"], method="ward")
    raw_sub = hierarchy.fcluster(z, t=p.n_subclusters, criterion="maxclust")
    if len(np.unique(raw_sub)) != p.n_subclusters:
        msg = (
            f"Ward cut of subset A gave {len(np.unique(raw_sub))} subclusters, not "
            f"{p.n_subclusters} (semisynthetic.n_subclusters of a dataset entry)"
        )
        raise ValueError(msg)
    tree = _subcluster_tree(z, raw_sub, p.n_subclusters)
    linkage, leaf_order = _subject_linkage(tree, p.n_replicates)
    group_of = {
        c: j for j, c in enumerate(leaf_order)
    }  # raw subcluster id (0-based) -> group index
    group_a = np.array([group_of[c - 1] for c in raw_sub])
    top_left = set(tree.get_left().pre_order())
    top_of_group = np.array([0 if c in top_left else 1 for c in leaf_order])

    n_sub = p.n_subjects
    width = len(str(n_sub))
    subjects = [f"S{i + 1:0{width}d}" for i in range(n_sub)]
    subject_idx = rng.integers(n_sub, size=adata.n_obs)  # uniform for every subset but A
    subject_idx[in_a] = group_a * p.n_replicates + rng.integers(p.n_replicates, size=in_a.size)
    subcluster = np.zeros(adata.n_obs, dtype=int)
    subcluster[in_a] = group_a + 1
    logger.info(
        "subset A: %d cells in %d subclusters of sizes %s -> %d subjects",
        in_a.size,
        p.n_subclusters,
        np.bincount(group_a, minlength=p.n_subclusters).tolist(),
        n_sub,
    )

    # Subsets B and C: per-subject depletion of B, enrichment of C by the same number of cells.
    rank = np.arange(n_sub) % p.n_replicates
    rate = np.asarray(p.subsample_rates)[rank]
    keep = np.ones(adata.n_obs, dtype=bool)
    pool_c = np.flatnonzero(subset == "C")
    extra_cells, extra_subjects = [], []
    for s in range(n_sub):
        cells_b = np.flatnonzero((subset == "B") & (subject_idx == s))
        n_keep = round(rate[s] * cells_b.size)
        removed = rng.choice(cells_b, size=cells_b.size - n_keep, replace=False)
        keep[removed] = False
        if removed.size and pool_c.size == 0:
            msg = "subset C is empty: nothing to resample"
            raise ValueError(msg)
        extra_cells.append(rng.choice(pool_c, size=removed.size, replace=True))
        extra_subjects.append(np.full(removed.size, s))
    extra = np.concatenate(extra_cells).astype(int)
    extra_subject = np.concatenate(extra_subjects).astype(int)
    logger.info(
        "subsets B/C: removed %d subset-B cells, added %d resampled subset-C cells",
        int((~keep).sum()),
        extra.size,
    )

    index = np.concatenate([np.flatnonzero(keep), extra])
    obs = adata.obs.iloc[index].copy()
    obs.index = np.concatenate(
        [adata.obs_names[keep], [f"{adata.obs_names[c]}-resampled{i}" for i, c in enumerate(extra)]]
    )
    out = ad.AnnData(
        X=adata.X[index], obs=obs, var=adata.var.copy(), uns=copy.deepcopy(dict(adata.uns))
    )
    subj = np.concatenate([subject_idx[keep], extra_subject])
    group = subj // p.n_replicates
    strong = rate[subj] <= p.strong_rate_max
    obs = out.obs
    obs["leiden"] = pd.Categorical(clusters.to_numpy()[index], categories=clusters.cat.categories)
    obs["subset"] = pd.Categorical(subset[index], categories=list(SUBSETS))
    obs["subcluster"] = pd.Categorical(
        [f"A{c}" if c else "none" for c in subcluster[index]],
        categories=[f"A{j + 1}" for j in range(p.n_subclusters)] + ["none"],
    )
    obs[sample_key] = pd.Categorical(np.asarray(subjects)[subj], categories=subjects)
    obs["covariate_1"] = pd.Categorical(
        [f"G{g + 1}" for g in group], categories=[f"G{j + 1}" for j in range(p.n_subclusters)]
    )
    obs["covariate_1_top"] = pd.Categorical(
        [f"T{t + 1}" for t in top_of_group[group]], categories=["T1", "T2"]
    )
    obs["covariate_1_G1"] = np.asarray(group) == 0  # the paper's DE contrast: group 1 vs rest
    obs["covariate_2"] = pd.Categorical(
        [f"R{r + 1}" for r in rank[subj]], categories=[f"R{r + 1}" for r in range(p.n_replicates)]
    )
    obs["covariate_2_strong"] = strong
    obs["de_cell"] = obs["subset"].to_numpy() == "A"
    obs["da_cell"] = np.isin(obs["subset"].to_numpy(), ["B", "C"])
    obs["resampled"] = np.arange(out.n_obs) >= keep.sum()

    out.uns["semisynthetic"] = {
        "params": p.as_dict(),
        "sample_key": sample_key,
        "subset_clusters": label,
        "subject_order": subjects,
        "subject_linkage": linkage,
        "subject_newick": _newick(tree, leaf_order, subjects, p.n_replicates),
        "subcluster_genes": adata.var_names[genes].to_numpy().astype(str),
    }
    return out
