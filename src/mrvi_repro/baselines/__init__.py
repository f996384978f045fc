"""Baselines the paper compares MrVI with: composition distances, DESeq2 pseudobulk, Milo, miloDE.

The workflow's rules call them through :mod:`mrvi_repro.pipeline`.
"""

from mrvi_repro.settings.baselines import MiloConfig, MiloDEConfig

from ._checks import check_obs_keys, natural_order
from ._composition import composition_distances, composition_subclusters, pca_representation
from ._deseq2 import DESEQ2_COLUMNS, pseudobulk, pseudobulk_deseq2
from ._milo import milo_da
from ._milode import MILODE_COLUMNS, MiloDEResult, assign_neighbourhoods, milode

__all__ = [
    "DESEQ2_COLUMNS",
    "MILODE_COLUMNS",
    "MiloConfig",
    "MiloDEConfig",
    "MiloDEResult",
    "assign_neighbourhoods",
    "check_obs_keys",
    "composition_distances",
    "composition_subclusters",
    "milo_da",
    "milode",
    "natural_order",
    "pca_representation",
    "pseudobulk",
    "pseudobulk_deseq2",
]
