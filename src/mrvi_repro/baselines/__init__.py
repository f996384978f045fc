"""Baselines the paper compares MrVI with: composition distances and DESeq2 pseudobulk."""

from ._composition import composition_distances, composition_subclusters, pca_representation
from ._deseq2 import DESEQ2_COLUMNS, pseudobulk, pseudobulk_deseq2

__all__ = [
    "DESEQ2_COLUMNS",
    "composition_distances",
    "composition_subclusters",
    "pca_representation",
    "pseudobulk",
    "pseudobulk_deseq2",
]
