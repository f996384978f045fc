"""Analyses of a fitted MrVI at single-cell resolution: sample distances, DA, DE, admissibility."""

from ._abundance import (
    admissibility,
    aggregated_log_probs,
    differential_abundance,
    differential_abundance_binary,
    sample_log_densities,
)
from ._de import design_matrix, differential_expression
from ._distances import grouped_distance_array, local_sample_distances

__all__ = [
    "admissibility",
    "aggregated_log_probs",
    "differential_abundance",
    "differential_abundance_binary",
    "design_matrix",
    "differential_expression",
    "grouped_distance_array",
    "local_sample_distances",
    "sample_log_densities",
]
