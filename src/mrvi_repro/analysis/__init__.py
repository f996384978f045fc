"""Analyses of a fitted MrVI at single-cell resolution: distances, stratification, DE, DA.

Also admissibility. The workflow's rules call them through :mod:`mrvi_repro.pipeline`.
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
from ._de import Contrast, contrast_matrices, design_matrix, differential_expression
from ._distances import iter_local_distances, local_sample_distances
from ._stratify import sample_groups, stratify_cells

__all__ = [
    "DA_ESTIMATORS",
    "AdmissibilityReference",
    "Contrast",
    "admissibility",
    "admissibility_reference",
    "aggregated_log_probs",
    "contrast_matrices",
    "da_variable",
    "differential_abundance",
    "differential_abundance_binary",
    "design_matrix",
    "differential_expression",
    "group_log_ratio",
    "grouped_distance_array",
    "iter_local_distances",
    "local_sample_distances",
    "posterior_log_densities",
    "sample_groups",
    "sample_log_densities",
    "stratify_cells",
]
