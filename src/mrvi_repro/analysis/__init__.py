"""Analyses of a fitted MrVI at single-cell resolution: distances, stratification, DE, DA.

Also admissibility, and the comparative analyses on their outputs: the cluster-level DA test,
sample-group tests and subsets, gene modules and GSEA. The workflow's rules call them through
:mod:`mrvi_repro.pipeline`.
"""

from mrvi_repro._groups import grouped_distance_array
from mrvi_repro.settings.names import DA_ESTIMATORS, da_variable

from ._abundance import (
    AdmissibilityReference,
    admissibility,
    admissibility_reference,
    aggregated_log_probs,
    differential_abundance,
    differential_abundance_binary,
    group_log_ratio,
    posterior_log_densities,
    sample_log_densities,
)
from ._comparisons import (
    cluster_abundance_test,
    compare_sample_groups,
    gene_modules,
    module_activity,
    select_samples,
)
from ._de import Contrast, contrast_matrices, design_matrix, differential_expression
from ._distances import iter_local_distances, local_sample_distances
from ._gsea import gsea_prerank, overrepresentation, read_gmt
from ._markers import marker_genes
from ._screen import cluster_de, cluster_enrichment, de_gene_lists, screen_clusters
from ._stratify import sample_groups, stratify_cells

__all__ = [
    "DA_ESTIMATORS",
    "AdmissibilityReference",
    "Contrast",
    "admissibility",
    "cluster_de",
    "cluster_enrichment",
    "de_gene_lists",
    "overrepresentation",
    "screen_clusters",
    "admissibility_reference",
    "aggregated_log_probs",
    "cluster_abundance_test",
    "compare_sample_groups",
    "contrast_matrices",
    "da_variable",
    "design_matrix",
    "differential_abundance",
    "differential_abundance_binary",
    "differential_expression",
    "gene_modules",
    "group_log_ratio",
    "grouped_distance_array",
    "gsea_prerank",
    "iter_local_distances",
    "local_sample_distances",
    "marker_genes",
    "module_activity",
    "posterior_log_densities",
    "read_gmt",
    "sample_groups",
    "sample_log_densities",
    "select_samples",
    "stratify_cells",
]
