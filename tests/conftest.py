"""Shared fixtures: small simulated datasets, built once per test session."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from mrvi_repro._jax_cache import CACHE_ENV
from mrvi_repro.data.semisynthetic import make_semisynthetic
from mrvi_repro.data.simulate import simulate_base
from mrvi_repro.settings.data import SemisyntheticParams, SimulationParams
from mrvi_repro.testing.standins import write_10x_archive

REPO = Path(__file__).resolve().parents[1]

# One persistent compilation cache for the session: the tests and every Snakemake job they start
# (which inherits the environment) compile each kernel once. Set before mrvi_repro.model is
# imported (on import it turns the cache on); a cache named in the environment already is kept.
if not os.environ.get(CACHE_ENV):
    os.environ[CACHE_ENV] = tempfile.mkdtemp(prefix="mrvi-repro-jax-cache-")
    atexit.register(shutil.rmtree, os.environ[CACHE_ENV], ignore_errors=True)

#: A base small enough for fast tests but with every feature of the default one.
TINY_SIM = SimulationParams(n_cells=3000, n_genes=600, n_cell_types=6, n_samples=4, seed=1)


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def tiny_base():
    return simulate_base(TINY_SIM)


@pytest.fixture(scope="session")
def tiny_semi(tiny_base):
    return make_semisynthetic(tiny_base, SemisyntheticParams(seed=3))


@pytest.fixture(scope="session")
def tiny_semi_mrvi(tiny_semi):
    """MrVI fitted to the tiny semi-synthetic dataset (40 epochs, default architecture)."""
    from mrvi_repro.model import MrVI, TrainConfig

    return MrVI.fit(
        tiny_semi, sample_key="sample_assignment", train=TrainConfig(max_epochs=40), seed=0
    )


@pytest.fixture(scope="session")
def write_10x_tar():
    """``write_10x_tar(path, counts, gene_ids, symbols, barcodes, *, matrix_dir=None, skip=())``:
    a stand-in of the PBMC 68k download (counts: cells x genes, sparse)."""
    return write_10x_archive
