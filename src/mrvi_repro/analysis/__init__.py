"""Analyses of a fitted MrVI at single-cell resolution: distances, stratification, DE, DA.

Also admissibility, and the functions the workflow's analysis rules call (``mrvi_*``).
"""

from ._abundance import (
    admissibility,
    aggregated_log_probs,
    differential_abundance,
    differential_abundance_binary,
    sample_log_densities,
)
from ._de import design_matrix, differential_expression
from ._distances import grouped_distance_array, iter_local_distances, local_sample_distances
from ._stratify import sample_groups, stratify_cells
from ._workflow import mrvi_da, mrvi_de, mrvi_distances, mrvi_stratification

__all__ = [
    "admissibility",
    "aggregated_log_probs",
    "differential_abundance",
    "differential_abundance_binary",
    "design_matrix",
    "differential_expression",
    "grouped_distance_array",
    "iter_local_distances",
    "local_sample_distances",
    "mrvi_da",
    "mrvi_de",
    "mrvi_distances",
    "mrvi_stratification",
    "sample_groups",
    "sample_log_densities",
    "stratify_cells",
]
