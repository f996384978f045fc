"""Baselines the paper compares MrVI with: composition distances, DESeq2 pseudobulk, Milo, miloDE."""

from ._composition import composition_distances, composition_subclusters, pca_representation
from ._deseq2 import DESEQ2_COLUMNS, pseudobulk, pseudobulk_deseq2
from ._milo import MiloConfig, milo_da
from ._milode import MILODE_COLUMNS, MiloDEConfig, MiloDEResult, assign_neighbourhoods, milode
from ._workflow import (
    DESEQ2_TABLE_COLUMNS,
    MILODE_TABLE_COLUMNS,
    REPRESENTATION_KEYS,
    baseline_representations,
    composition_baseline,
    deseq2_baseline,
    milo_baseline,
    milode_baseline,
)

__all__ = [
    "DESEQ2_COLUMNS",
    "DESEQ2_TABLE_COLUMNS",
    "MILODE_COLUMNS",
    "MILODE_TABLE_COLUMNS",
    "MiloConfig",
    "MiloDEConfig",
    "MiloDEResult",
    "REPRESENTATION_KEYS",
    "assign_neighbourhoods",
    "baseline_representations",
    "composition_baseline",
    "composition_distances",
    "composition_subclusters",
    "deseq2_baseline",
    "milo_baseline",
    "milo_da",
    "milode",
    "milode_baseline",
    "pca_representation",
    "pseudobulk",
    "pseudobulk_deseq2",
]
