"""Benchmark metrics: DA precision-recall, DE LFC correlation, sample-tree recovery, integration.

Pure functions on arrays, Series, DataFrames and DataArrays; :func:`summary_table` collects their
values into the tidy ``method`` / ``metric`` / ``value`` frame of the figures.
"""

from ._benchmark import (
    DA_COVARIATE,
    DE_COVARIATE,
    LFC_COLUMNS,
    PR_COLUMNS,
    TREE_COLUMNS,
    SemisyntheticTruth,
    da_benchmark,
    da_scores,
    de_benchmark,
    de_lfcs,
    top_split,
    tree_benchmark,
)
from ._claims import (
    CLAIM_COLUMNS,
    SEMISYNTHETIC_CLAIMS,
    VERDICT_COLUMNS,
    Claim,
    claims_over_seeds,
    claims_table,
    summary_values,
)
from ._integration import (
    INTEGRATION_COLUMNS,
    INTEGRATION_METRICS,
    LABEL_METRICS,
    integration_metrics,
)
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
from ._semisynthetic import (
    collect_summary,
    semisynthetic_da_metrics,
    semisynthetic_de_metrics,
    semisynthetic_tree_metrics,
)

__all__ = [
    "CLAIM_COLUMNS",
    "SEMISYNTHETIC_CLAIMS",
    "VERDICT_COLUMNS",
    "Claim",
    "claims_over_seeds",
    "claims_table",
    "summary_values",
    "DA_COVARIATE",
    "DE_COVARIATE",
    "INTEGRATION_COLUMNS",
    "INTEGRATION_METRICS",
    "LABEL_METRICS",
    "LFC_COLUMNS",
    "PR_COLUMNS",
    "TREE_COLUMNS",
    "SemisyntheticTruth",
    "collect_summary",
    "da_benchmark",
    "da_scores",
    "de_benchmark",
    "de_lfcs",
    "integration_metrics",
    "semisynthetic_da_metrics",
    "semisynthetic_de_metrics",
    "semisynthetic_tree_metrics",
    "top_split",
    "tree_benchmark",
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
