"""Cost of one DE comparison with per-cell LFCs, against the number of cells (issue 17).

For each size, one process simulates N cells, G genes and S samples with two sample groups and
fits MrVI for one epoch (the cost of DE does not depend on training); a fresh process then loads
both (so its peak RSS is the data, the model and the DE) and runs
:func:`mrvi_repro.analysis.differential_expression` as rule ``de_comparison`` runs it: one contrast, the admissibility rule scored a chunk of cells at a time,
per-cell LFCs streamed to a zarr store and their means per cell type. Reports wall time of the DE
call, peak RSS of that process, its RSS after loading and the size of the LFC store.

The per-cell LFCs are N x G floats (50k x 2k: 400 MB); peak memory should not grow with N.

Usage::

    python bench/de_comparison_cost.py --cells 10000 50000 --genes 2000 --samples 32 --mc 10
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def prepare(n_cells: int, n_genes: int, n_samples: int, folder: Path) -> None:
    """Simulate the data, fit MrVI for one epoch and save both under ``folder``."""
    from mrvi_repro.data.simulate import simulate_base
    from mrvi_repro.model import MrVI, TrainConfig, write_model
    from mrvi_repro.settings.data import SimulationParams

    adata = simulate_base(
        SimulationParams(n_cells=n_cells, n_genes=n_genes, n_samples=n_samples, seed=0)
    )
    samples = sorted(adata.obs["sample"].astype(str).unique())
    half = dict(zip(samples, ["a", "b"] * len(samples), strict=False))
    adata.obs["group"] = adata.obs["sample"].astype(str).map(half)
    model = MrVI.fit(adata, sample_key="sample", train=TrainConfig(max_epochs=1), seed=0)
    adata.write_h5ad(folder / "data.h5ad")
    write_model(model, folder / "model")


def one(folder: Path, mc: int) -> dict:
    """Load the prepared data and model in this (fresh) process and run the DE comparison."""
    import anndata as ad
    import numpy as np

    from mrvi_repro.analysis import Contrast, admissibility_reference, differential_expression
    from mrvi_repro.model import MrVI

    adata = ad.read_h5ad(folder / "data.h5ad")
    model = MrVI.load(folder / "model")
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    store = folder / "lfc.zarr"
    start = time.perf_counter()
    rule = admissibility_reference(model, adata)
    de = differential_expression(
        model,
        adata,
        covariates=["group"],
        contrasts=[Contrast("group", "b", "a")],
        admissible=rule,
        mc_samples=mc,
        lfc=True,
        lfc_store=store,
        lfc_groupby="cell_type",
    )
    seconds = time.perf_counter() - start
    size = sum(f.stat().st_size for f in store.rglob("*") if f.is_file())
    n_cells, n_genes = adata.shape
    return {
        "cells": n_cells,
        "genes": n_genes,
        "samples": len(model.registry.samples),
        "mc_samples": mc,
        "de_seconds": round(seconds, 1),
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2, 2),
        "rss_after_load_gib": round(rss_before, 2),
        "lfc_store_mib": round(size / 1024**2, 1),
        "lfc_dense_gib": round(n_cells * n_genes * 4 / 1024**3, 2),
        "n_admissible_mean": round(float(np.mean(de["n_admissible"].values)), 1),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cells", type=int, nargs="+", default=[10_000, 50_000])
    p.add_argument("--genes", type=int, default=2000)
    p.add_argument("--samples", type=int, default=32)
    p.add_argument("--mc", type=int, default=10, help="draws of u per cell")
    p.add_argument("--step", choices=["prepare", "de"], help=argparse.SUPPRESS)
    p.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.step == "prepare":
        prepare(args.cells[0], args.genes, args.samples, args.folder)
        return 0
    if args.step == "de":
        print(json.dumps(one(args.folder, args.mc)))
        return 0
    for n in args.cells:
        with tempfile.TemporaryDirectory() as tmp:
            base = [sys.executable, __file__, "--folder", tmp, "--cells", str(n)]
            prep = ["--step", "prepare", "--genes", str(args.genes), "--samples", str(args.samples)]
            subprocess.run(base + prep, check=True, capture_output=True)
            run = subprocess.run(
                [*base, "--step", "de", "--mc", str(args.mc)],
                check=True,
                capture_output=True,
                text=True,
            )
            print(run.stdout.strip().splitlines()[-1], flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
