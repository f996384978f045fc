"""Analyses of a fitted MrVI at single-cell resolution: local sample distances, DA, admissibility."""

from ._abundance import (
    admissibility,
    differential_abundance,
    differential_abundance_binary,
    sample_log_densities,
)
from ._distances import local_sample_distances

__all__ = [
    "admissibility",
    "differential_abundance",
    "differential_abundance_binary",
    "local_sample_distances",
    "sample_log_densities",
]
