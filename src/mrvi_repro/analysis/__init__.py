"""Analyses of a fitted MrVI at single-cell resolution: sample distances, DA, DE, admissibility."""

from ._abundance import (
    admissibility,
    differential_abundance,
    differential_abundance_binary,
    sample_log_densities,
)
from ._de import design_matrix, differential_expression
from ._distances import local_sample_distances

__all__ = [
    "admissibility",
    "differential_abundance",
    "differential_abundance_binary",
    "design_matrix",
    "differential_expression",
    "local_sample_distances",
    "sample_log_densities",
]
