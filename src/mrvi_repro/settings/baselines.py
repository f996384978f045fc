"""Settings of the neighbourhood baselines (Milo, miloDE); standard library only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class MiloConfig:
    """Settings of :func:`milo_da` (defaults: the paper's ``run_milo.R``).

    Attributes
    ----------
    k
        Neighbours per cell of the kNN graph (the cell itself not counted), R's ``buildGraph(k)``.
    n_dims
        Leading dimensions of the representation used (R's ``d``).
    prop
        Fraction of cells sampled as candidate neighbourhood index cells (before refinement).
    seed
        Seed of the index-cell sampling.
    solver
        pertpy's GLM solver: ``"pydeseq2"`` (no R needed) or ``"edger"`` (needs rpy2 and R edgeR).
    """

    k: int = 30
    n_dims: int = 30
    prop: float = 0.1
    seed: int = 0
    solver: Literal["pydeseq2", "edger"] = "pydeseq2"

    def __post_init__(self) -> None:
        problems = []
        if self.k < 2 or self.n_dims < 1:
            problems.append(f"k must be >= 2 and n_dims >= 1 (got {self.k}, {self.n_dims})")
        if not 0.0 < self.prop <= 1.0:
            problems.append(f"prop must lie in (0, 1] (got {self.prop})")
        if self.solver not in ("pydeseq2", "edger"):
            problems.append(f"solver must be 'pydeseq2' or 'edger' (got {self.solver!r})")
        if problems:
            raise ValueError("invalid Milo settings: " + "; ".join(problems))


@dataclass(frozen=True)
class MiloDEConfig:
    """Settings of :func:`milode` (defaults: the paper's ``run_milode.R``, miloDE's defaults).

    Attributes
    ----------
    k
        Neighbours per cell of the kNN graph (the cell itself not counted).
    k_init
        Neighbours of the graph used to refine the index cells; miloDE uses ``min(k, k_init)``.
    n_dims
        Leading dimensions of the representation used (miloDE's ``d``).
    prop
        Fraction of cells sampled as candidate index cells.
    order
        1: a neighbourhood is the index cell and its neighbours; 2: also their neighbours.
    filtering
        Remove redundant neighbourhoods by greedy set cover.
    min_n_cells_per_sample
        Samples with fewer cells in a neighbourhood are left out of its test.
    min_count
        ``filterByExpr``'s ``min.count`` (0 turns gene filtering off).
    legacy_ql
        edgeR < 4, as in the paper's environment: the legacy quasi-likelihood method and the
        legacy span of ``estimateDisp``'s dispersion trend (False: edgeR >= 4's defaults).
    seed
        Seed of the index-cell sampling.
    """

    k: int = 20
    k_init: int = 50
    n_dims: int = 30
    prop: float = 0.2
    order: int = 2
    filtering: bool = True
    min_n_cells_per_sample: int = 3
    min_count: float = 3.0
    legacy_ql: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        problems = []
        if self.k < 1 or self.k_init < 1 or self.n_dims < 1:
            problems.append(
                f"k, k_init and n_dims must be >= 1 (got {self.k}, {self.k_init}, {self.n_dims})"
            )
        if not 0.0 < self.prop <= 1.0:
            problems.append(f"prop must lie in (0, 1] (got {self.prop})")
        if self.order not in (1, 2):
            problems.append(f"order must be 1 or 2 (got {self.order})")
        if self.min_n_cells_per_sample < 1 or self.min_count < 0:
            problems.append(
                "min_n_cells_per_sample must be >= 1 and min_count >= 0 (got "
                f"{self.min_n_cells_per_sample}, {self.min_count})"
            )
        if problems:
            raise ValueError("invalid miloDE settings: " + "; ".join(problems))
