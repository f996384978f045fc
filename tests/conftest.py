"""Shared fixtures: small simulated datasets, built once per test session."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from scipy import sparse

from mrvi_repro.data import SemisyntheticParams, SimulationParams, make_semisynthetic, simulate_base

REPO = Path(__file__).resolve().parents[1]

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


def _write_10x_tar(path, counts, gene_ids, symbols, barcodes, *, matrix_dir=None, skip=()):
    """Write a Cell Ranger 1.x matrix archive as 10x publishes PBMC 68k: folders
    ``filtered_matrices_mex/hg19/`` holding plain ``matrix.mtx`` (integer, genes x cells),
    ``genes.tsv`` (Ensembl ID, symbol; no header) and ``barcodes.tsv``; files named in ``skip``
    are left out."""
    matrix_dir = matrix_dir or "filtered_matrices_mex/hg19"
    mtx = io.BytesIO()
    scipy.io.mmwrite(mtx, sparse.coo_matrix(np.asarray(counts.T.todense(), dtype=np.int64)))
    files = {
        "matrix.mtx": mtx.getvalue(),
        "genes.tsv": "".join(
            f"{g}\t{s}\n" for g, s in zip(gene_ids, symbols, strict=True)
        ).encode(),
        "barcodes.tsv": "".join(f"{b}\n" for b in barcodes).encode(),
    }
    with tarfile.open(path, "w:gz") as tar:
        parts = matrix_dir.split("/")
        for i in range(1, len(parts) + 1):
            info = tarfile.TarInfo("/".join(parts[:i]) + "/")
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for name, data in files.items():
            if name in skip:
                continue
            info = tarfile.TarInfo(f"{matrix_dir}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture(scope="session")
def write_10x_tar():
    """``write_10x_tar(path, counts, gene_ids, symbols, barcodes, *, matrix_dir=None, skip=())``:
    a stand-in of the PBMC 68k download (counts: cells x genes, sparse)."""
    return _write_10x_tar
