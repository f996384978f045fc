"""PBMC 68k stand-in: the 10x Cell Ranger 1.1.0 archive of one donor's PBMCs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mrvi_repro.data.simulate import simulate_base
from mrvi_repro.settings.data import SimulationParams

from ._common import TRUTH_FILES, barcodes, write_10x_archive, write_truth

PBMC68K_KEY = "pbmc68k/fresh_68k_pbmc_donor_a_filtered_gene_bc_matrices.tar.gz"


def write_pbmc68k_standin(
    root: str | Path, *, n_cells: int = 2500, n_genes: int = 500, seed: int = 0
) -> list[str]:
    """Write the PBMC 68k download's stand-in under ``root`` (``pbmc68k/..._matrices.tar.gz``).

    A Cell Ranger 1.x archive (:func:`write_10x_archive`: ``filtered_matrices_mex/hg19/`` with
    ``matrix.mtx``, ``genes.tsv``, ``barcodes.tsv``) of ``n_cells`` simulated PBMCs of one donor
    (:func:`~mrvi_repro.data.simulate.simulate_base`, six cell types with sub-states), gene symbols
    with five ``MT-`` genes and one repeated symbol, barcodes with the ``-1`` suffix. There is no
    sample structure to plant: the semi-synthetic construction of the workflow makes it.

    Truth (``pbmc68k/standin_truth.json``): ``cell_type`` and ``substate`` per barcode.

    Returns
    -------
    The registry key written.
    """
    rng = np.random.default_rng(seed)
    base = simulate_base(SimulationParams(n_cells=n_cells, n_genes=n_genes, n_samples=1, seed=seed))
    symbols = [f"GENE{i}" for i in range(n_genes)]
    symbols[:5] = ["MT-ND1", "MT-ND2", "MT-CO1", "MT-CO2", "MT-ATP6"]
    symbols[11] = symbols[10]  # Cell Ranger 1.x genes.tsv repeats some symbols
    cells = [f"{b}-1" for b in barcodes(n_cells, rng, length=14)]
    path = Path(root) / PBMC68K_KEY
    path.parent.mkdir(parents=True, exist_ok=True)
    write_10x_archive(path, base.X, [f"ENSG{i:011d}" for i in range(n_genes)], symbols, cells)
    truth = {
        "dataset": "pbmc68k",
        "seed": seed,
        "files": [PBMC68K_KEY],
        "truth_file": TRUTH_FILES["pbmc68k"],
        "cell_type": dict(zip(cells, base.obs["cell_type"].astype(str), strict=True)),
        "substate": dict(zip(cells, base.obs["substate"].astype(str), strict=True)),
    }
    write_truth(root, "pbmc68k", truth)
    return [PBMC68K_KEY]
