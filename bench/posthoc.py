"""Time the MrVI analyses on simulated data: one JSON line per analysis on stdout.

Usage::

    .venv/bin/python bench/posthoc.py [--n-cells 10000 --n-samples 32 --n-genes 2000 --seed 0
        --epochs 5]

Simulates counts (``simulate_base``, 5 cell types, 2 batches), trains a short MrVI (``--epochs``;
the analyses' cost does not depend on how well it is trained), then runs each analysis once on all
cells and prints ``{"analysis", "seconds", "peak_rss_mb", ...}`` per analysis. ``peak_rss_mb`` is
the process's high-water RSS during that analysis alone (Linux: reset through
``/proc/self/clear_refs`` before each one), so it includes the data and the model already loaded.
Analyses: ``distances`` (mean local sample distances per cell type), ``distances_cells`` (the same
plus every cell's matrix streamed to a temporary zarr store), ``da`` (one binary covariate),
``admissibility``, ``de`` (one binary covariate, 50 draws of u per cell, all cells). Log lines go
to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import peak_rss_mb, reset_peak_rss


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; return the exit status."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-cells", type=int, default=10_000)
    p.add_argument("--n-samples", type=int, default=32)
    p.add_argument("--n-genes", type=int, default=2_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=5)
    args = p.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(message)s")

    from mrvi_repro.analysis import (
        admissibility,
        differential_abundance,
        differential_expression,
        local_sample_distances,
    )
    from mrvi_repro.data import SimulationParams, simulate_base
    from mrvi_repro.model import MrVI, TrainConfig

    adata = simulate_base(
        SimulationParams(
            n_cells=args.n_cells,
            n_genes=args.n_genes,
            n_cell_types=5,
            n_samples=args.n_samples,
            n_batches=2,
            seed=args.seed,
        )
    )
    samples = sorted(adata.obs["sample"].astype(str).unique())
    half = {s: ("g1" if i % 2 else "g0") for i, s in enumerate(samples)}
    adata.obs["group"] = adata.obs["sample"].astype(str).map(half)
    train = TrainConfig(max_epochs=args.epochs, batch_size=256, early_stopping=False)
    model = MrVI.fit(adata, sample_key="sample", batch_key="batch", train=train, seed=args.seed)
    common = {
        "n_cells": adata.n_obs,
        "n_samples": len(samples),
        "n_genes": adata.n_vars,
        "seed": args.seed,
    }

    def timed(name: str, fn: Any) -> None:
        reset_peak_rss()
        start = time.perf_counter()
        fn()
        record = {"analysis": name, "seconds": time.perf_counter() - start}
        record.update(peak_rss_mb=peak_rss_mb(), **common)
        print(json.dumps(record), flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        timed("distances", lambda: local_sample_distances(model, adata, groupby="cell_type"))
        timed(
            "distances_cells",
            lambda: local_sample_distances(
                model, adata, groupby="cell_type", cell_store=Path(tmp) / "cells.zarr"
            ),
        )
    timed("da", lambda: differential_abundance(model, adata, covariate="group"))
    timed("admissibility", lambda: admissibility(model, adata))
    timed("de", lambda: differential_expression(model, adata, covariates=["group"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
