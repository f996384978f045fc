"""Datasets: simulation, the semi-synthetic construction, preprocessing and the data contract."""

from ._preprocess import counts_to_x, preprocess_dataset, sample_table, select_hvgs
from ._semisynthetic import SUBSETS, SemisyntheticParams, leiden_clusters, make_semisynthetic
from ._simulate import PBMC_CELL_TYPES, SimulationParams, simulate_base
from ._spec import DatasetSpec, H5adSource, HVGParams, MrVISpec, SpecError, check_schema
from ._validate import DataContractError, count_problems, per_sample, validate_adata

__all__ = [
    "PBMC_CELL_TYPES",
    "SUBSETS",
    "DataContractError",
    "DatasetSpec",
    "H5adSource",
    "HVGParams",
    "MrVISpec",
    "SemisyntheticParams",
    "SimulationParams",
    "SpecError",
    "check_schema",
    "count_problems",
    "counts_to_x",
    "leiden_clusters",
    "make_semisynthetic",
    "per_sample",
    "preprocess_dataset",
    "sample_table",
    "select_hvgs",
    "simulate_base",
    "validate_adata",
]
