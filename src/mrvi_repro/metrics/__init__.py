"""Benchmark metrics: DA precision-recall, DE LFC correlation, sample-tree recovery, ratios.

Pure functions on arrays, Series, DataFrames and DataArrays; :func:`summary_table` collects their
values into the tidy ``method`` / ``metric`` / ``value`` frame of the figures.
"""

from ._metrics import (
    SUMMARY_COLUMNS,
    Correlation,
    cophenetic_correlation,
    inter_cluster_distance_ratio,
    intra_cluster_distance_ratio,
    lfc_pearson,
    linkage_from_distances,
    pr_auc,
    pr_curve,
    robinson_foulds,
    summary_table,
    tree_clusters,
    tree_recovery,
)

__all__ = [
    "SUMMARY_COLUMNS",
    "Correlation",
    "cophenetic_correlation",
    "inter_cluster_distance_ratio",
    "intra_cluster_distance_ratio",
    "lfc_pearson",
    "linkage_from_distances",
    "pr_auc",
    "pr_curve",
    "robinson_foulds",
    "summary_table",
    "tree_clusters",
    "tree_recovery",
]
