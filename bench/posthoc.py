"""Time the MrVI analyses on simulated data: one JSON line per analysis on stdout.

Usage::

    .venv/bin/python bench/posthoc.py [--n-cells 10000 --n-samples 32 --n-genes 2000 --seed 0
        --epochs 5 --mc-samples 50 --analyses distances,distances_cells,da,admissibility,de,...]

Simulates counts (``simulate_base``, 5 cell types, 2 batches; or takes ``--h5ad``, with obs columns
``sample``, ``batch``, ``cell_type`` and the binary sample covariate ``group``), trains a short
MrVI (``--epochs``; the analyses' cost does not depend on how well it is trained) and saves data
and model to a temporary folder. Then each analysis runs in a fresh Python process that loads both, as a workflow
rule does, and prints ``{"analysis", "seconds", "peak_rss_mb", "loaded_rss_mb", ...}``:

* ``seconds``: the analysis call alone, its kernels' compilation included;
* ``loaded_rss_mb``: the process's RSS after importing, loading the data and the model;
* ``peak_rss_mb``: the process's high-water RSS during the analysis (Linux ``VmHWM``, reset just
  before it), so it includes what was loaded; ``peak_rss_mb - loaded_rss_mb`` is the analysis's own.

Analyses: ``distances`` (mean local sample distances per cell type), ``distances_cells`` (the same
plus every cell's matrix streamed to a temporary zarr store), ``distances_mc`` (Monte-Carlo-
normalised, 10 draws), ``da`` (one binary covariate), ``admissibility``, ``de`` (one binary
covariate, ``--mc-samples`` draws of u per cell, all cells), ``de_lfc`` (the same with per-gene
LFCs averaged per cell type), ``stratify`` (PCA of every cell's matrix, kNN, Leiden, Ward).
Log lines go to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import peak_rss_mb, reset_peak_rss, rss_mb
from train_throughput import write_dataset

ANALYSES = (
    "distances",
    "distances_cells",
    "distances_mc",
    "da",
    "admissibility",
    "de",
    "de_lfc",
    "stratify",
)
DEFAULT = "distances,distances_cells,da,admissibility,de"


def prepare(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    """Write (or take) the data, fit a short model and save it; return what every record carries.

    The simulated data is :func:`train_throughput.write_dataset`'s (5 cell types, 2 batches, the
    binary sample covariate ``group``), so that ``compare_reference.py`` can give the reference
    the very same file through ``--h5ad``.
    """
    import anndata as ad

    from mrvi_repro.model import MrVI, TrainConfig

    start = time.perf_counter()
    if args.h5ad is None:
        write_dataset(
            folder,
            n_cells=args.n_cells,
            n_genes=args.n_genes,
            n_samples=args.n_samples,
            n_batches=2,
            seed=args.seed,
        )
    else:
        (folder / "data.h5ad").symlink_to(Path(args.h5ad).resolve())
    adata = ad.read_h5ad(folder / "data.h5ad")
    train = TrainConfig(max_epochs=args.epochs, batch_size=256, early_stopping=False)
    model = MrVI.fit(adata, sample_key="sample", batch_key="batch", train=train, seed=args.seed)
    model.save(folder / "model")
    logging.info("prepared in %.1f s", time.perf_counter() - start)
    return {
        "n_cells": adata.n_obs,
        "n_samples": int(adata.obs["sample"].nunique()),
        "n_genes": adata.n_vars,
        "mc_samples": args.mc_samples,
        "ref_cells": args.ref_cells,
        "seed": args.seed,
    }


def run_one(name: str, folder: Path, mc_samples: int, ref_cells: int | None) -> dict[str, Any]:
    """Load data and model in this process, run one analysis, measure it."""
    import anndata as ad

    from mrvi_repro import analysis
    from mrvi_repro.model import MrVI

    adata, model = ad.read_h5ad(folder / "data.h5ad"), MrVI.load(folder / "model")
    calls = {
        "distances": lambda: analysis.local_sample_distances(model, adata, groupby="cell_type"),
        "distances_cells": lambda: analysis.local_sample_distances(
            model, adata, groupby="cell_type", cell_store=folder / "cells.zarr"
        ),
        "distances_mc": lambda: analysis.local_sample_distances(
            model, adata, groupby="cell_type", mc_samples=10
        ),
        "da": lambda: analysis.differential_abundance(
            model, adata, covariate="group", max_cells_per_sample=ref_cells
        ),
        "admissibility": lambda: analysis.admissibility(
            model, adata, max_cells_per_sample=ref_cells or 5000
        ),
        "de": lambda: analysis.differential_expression(
            model, adata, covariates=["group"], mc_samples=mc_samples
        ),
        "de_lfc": lambda: analysis.differential_expression(
            model,
            adata,
            covariates=["group"],
            mc_samples=mc_samples,
            lfc=True,
            lfc_groupby="cell_type",
        ),
        "stratify": lambda: analysis.stratify_cells(model, adata),
    }
    loaded = rss_mb()
    reset_peak_rss()
    start = time.perf_counter()
    calls[name]()
    return {
        "analysis": name,
        "seconds": time.perf_counter() - start,
        "peak_rss_mb": peak_rss_mb(),
        "loaded_rss_mb": loaded,
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; return the exit status."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-cells", type=int, default=10_000)
    p.add_argument("--n-samples", type=int, default=32)
    p.add_argument("--n-genes", type=int, default=2_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--mc-samples", type=int, default=50, help="draws of u per cell in DE")
    p.add_argument("--analyses", default=DEFAULT, help=f"comma-separated, of {ANALYSES}")
    p.add_argument("--h5ad", help="analyse this AnnData (obs: sample, batch, cell_type, group)")
    p.add_argument(
        "--ref-cells",
        type=int,
        help="cells per sample in DA's aggregated posteriors (default: all) and admissibility's "
        "references (default: 5000)",
    )
    p.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one analysis in this process
    p.add_argument("--folder", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(message)s")
    if args.one:
        record = run_one(args.one, Path(args.folder), args.mc_samples, args.ref_cells)
        print(json.dumps(record), flush=True)
        return 0
    names = [a for a in args.analyses.split(",") if a]
    unknown = sorted(set(names) - set(ANALYSES))
    if unknown:
        p.error(f"unknown analyses {unknown}; choose from {ANALYSES}")
    with tempfile.TemporaryDirectory() as tmp:
        common = prepare(args, Path(tmp))
        for name in names:
            cmd = [sys.executable, __file__, "--one", name, "--folder", tmp]
            cmd += ["--mc-samples", str(args.mc_samples)]
            if args.ref_cells is not None:
                cmd += ["--ref-cells", str(args.ref_cells)]
            out = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=os.environ)
            if out.returncode != 0:
                print(f"analysis {name} failed with status {out.returncode}", file=sys.stderr)
                return out.returncode
            record = json.loads(out.stdout.strip().splitlines()[-1])
            print(json.dumps({**record, **common}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
