"""Train the reference MrVI (scvi-tools 1.4.2, JAX) and export what three paper claims need.

Purpose
-------
Three claims of the paper fail on our semi-synthetic benchmark (DE LFC correlation with DESeq2 in
subset A, recovery of the planted subject tree, integration of ``u``). To tell an implementation
problem from a property of the claim or of the data, this script computes the same raw quantities
with the public reference implementation trained on the same file;
``bench/score_reference_claims.py`` (our venv) scores them with our metrics.

It runs inside the reference virtual environment (Python 3.11, scvi-tools 1.4.2) and never imports
``mrvi_repro``. Training is exactly that of ``bench/reference_da.py`` (its ``train_model`` is
imported: ``n_latent=30``, ``n_latent_u=5``, mixture prior on ``u``, 400 epochs at most, batch
1024, lr 3e-3, KL warm-up 50 epochs, early stopping on ``elbo_validation`` with patience 30).

What it writes to ``--workdir``
-------------------------------
* ``model/``: the trained model (``model.save``, without the AnnData);
* ``u.npy``: posterior means of ``u`` (``get_latent_representation(use_mean=True)``), cells in
  the order of the input file; ``cells.txt`` their names;
* ``distances.nc``: ``get_local_sample_distances(groupby=<groups>, keep_cell=False)`` (mean
  representations, L2), i.e. the cell-wise sample-by-sample distance matrices averaged over the
  cells of each Leiden cluster, as a Dataset with variable ``distance`` over
  ``(group, sample_x, sample_y)`` (group labels as strings, ``n_cells`` per group);
* ``de.nc``: ``differential_expression(sample_cov_keys=[covariate], store_lfc=True)`` on the
  cells of subset A only (Leiden cluster ``--de-group``), all other arguments at the 1.4.2
  defaults (``normalize_design_matrix=True``, ``mc_samples=100``, ``batch_size=128``,
  ``eps_lfc=1e-4``, ``lambd=0``, ``delta=0.3``); variables ``lfc``, ``beta``, ``effect_size``,
  ``pvalue`` (``lfc_std`` / ``pde`` dropped);
* ``de_lfc_A.csv``: ``gene``, ``lfc``: the mean over those cells of the per-cell LFC of the
  covariate's design column. For a bool covariate the column is the indicator of ``True``, so a
  positive LFC is higher expression in the ``True`` samples;
* ``info.json``: settings, training summary and the wall time of each step.

Usage
-----
::

    bench/.reference-venv/bin/python bench/reference_claims.py \\
        --h5ad results/semisynthetic/data/preprocessed.h5ad --workdir /tmp/reference_claims
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reference_da import add_training_arguments, train_model

LOG = logging.getLogger("reference_claims")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line.

    Parameters
    ----------
    argv
        Arguments (without the program name); ``None`` reads ``sys.argv``.

    Returns
    -------
    argparse.Namespace
        The parsed arguments.
    """
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--h5ad", required=True, help="AnnData with raw counts in X (copied first)")
    p.add_argument("--workdir", required=True, help="folder for the model and the outputs")
    p.add_argument("--sample-key", default="sample_assignment")
    p.add_argument("--groupby", default="leiden", help="obs column of the distance groups")
    p.add_argument("--covariate", default="covariate_1_G1", help="DE sample covariate")
    p.add_argument("--de-group", default="0", help="value of --groupby whose cells get DE")
    add_training_arguments(p)
    p.add_argument(
        "--skip-de",
        action="store_true",
        help="stop after u and the distances (what bench/locality.py --reference-dir scores)",
    )
    p.add_argument(
        "--load-model",
        action="store_true",
        help="load <workdir>/model instead of training (re-run the exports only)",
    )
    return p.parse_args(argv)


def distances_dataset(ds: Any, groupby: str, counts: dict[str, int]) -> Any:
    """Rename the reference's grouped distances to ``distance`` (group, sample_x, sample_y).

    Parameters
    ----------
    ds
        Output of ``get_local_sample_distances(groupby=groupby, keep_cell=False)``: variable
        ``groupby`` over ``(f"{groupby}_name", sample_x, sample_y)``.
    groupby
        The grouping column.
    counts
        Number of cells per group label.

    Returns
    -------
    xarray.Dataset
        Variable ``distance``; coordinates ``group`` (strings, sorted), ``sample_x``,
        ``sample_y`` (strings) and ``n_cells`` over ``group``.
    """
    import xarray as xr

    da = ds[groupby].rename({f"{groupby}_name": "group"})
    groups = [str(g) for g in da["group"].values]
    da = da.assign_coords(
        group=groups,
        sample_x=[str(s) for s in da["sample_x"].values],
        sample_y=[str(s) for s in da["sample_y"].values],
    ).sortby("group")
    da = da.assign_coords(n_cells=("group", [counts[g] for g in da["group"].values]))
    return xr.Dataset({"distance": da.astype(np.float32)})


def run(args: argparse.Namespace, workdir: Path, tmp: Path) -> dict[str, Any]:
    """Train (or load) the model and write every export.

    Parameters
    ----------
    args
        Parsed command line.
    workdir
        Output folder.
    tmp
        Temporary folder holding the copied input and scvi-tools' logs.

    Returns
    -------
    dict
        The contents of ``info.json``.
    """
    import anndata as ad
    import pandas as pd
    import scvi

    scvi.settings.seed = args.seed
    scvi.settings.logging_dir = str(tmp / "scvi_log")
    local = tmp / Path(args.h5ad).name
    shutil.copy(args.h5ad, local)
    adata = ad.read_h5ad(local)
    LOG.info("data: %d cells x %d genes", adata.n_obs, adata.n_vars)
    timings: dict[str, float] = {}

    model_dir = workdir / "model"
    if args.load_model:
        scvi.external.MRVI.setup_anndata(
            adata, sample_key=args.sample_key, batch_key=None, backend="jax"
        )
        model = scvi.external.MRVI.load(str(model_dir), adata=adata)
        train_info = json.loads((workdir / "info.json").read_text())["training"]
    else:
        model, train_info = train_model(adata, args)
        timings["train"] = train_info["train_seconds"]
        start = time.perf_counter()
        model.save(str(model_dir), overwrite=True, save_anndata=False)
        timings["save"] = time.perf_counter() - start
    if type(model).__name__ != "JaxMRVI":
        raise RuntimeError(f"expected JaxMRVI, got {type(model).__name__}")
    if not np.array_equal(model.adata.obs_names, adata.obs_names):
        raise RuntimeError("the model's AnnData is not in input order")

    # a. posterior means of u
    start = time.perf_counter()
    u = model.get_latent_representation(adata, use_mean=True)
    timings["latent_u"] = time.perf_counter() - start
    np.save(workdir / "u.npy", np.asarray(u, dtype=np.float32))
    (workdir / "cells.txt").write_text("\n".join(map(str, adata.obs_names)) + "\n")
    LOG.info("u: %s in %.1f s", u.shape, timings["latent_u"])

    # b. local sample distances averaged per group
    start = time.perf_counter()
    ds = model.get_local_sample_distances(adata, groupby=args.groupby, keep_cell=False)
    timings["distances"] = time.perf_counter() - start
    counts = adata.obs[args.groupby].astype(str).value_counts().to_dict()
    dist = distances_dataset(ds, args.groupby, counts)
    dist.to_netcdf(workdir / "distances.nc")
    LOG.info("distances: %s in %.1f s", dict(dist.sizes), timings["distances"])

    info_base = {
        "command": " ".join(sys.argv),
        "scvi_version": scvi.__version__,
        "training": train_info,
        "timings_seconds": timings,
        "n_groups": int(dist.sizes["group"]),
    }
    if args.skip_de:
        return {**info_base, "settings": {"seed": args.seed, "skip_de": True}}

    # c. DE with LFCs on subset A's cells, every other argument at the 1.4.2 defaults
    sub = adata[adata.obs[args.groupby].astype(str) == args.de_group].copy()
    start = time.perf_counter()
    de = model.differential_expression(sub, sample_cov_keys=[args.covariate], store_lfc=True)
    timings["de"] = time.perf_counter() - start
    LOG.info("DE on %d cells in %.1f s: %s", sub.n_obs, timings["de"], dict(de.sizes))
    covs = [str(c) for c in de["covariate"].values]
    column = args.covariate if args.covariate in covs else None
    if column is None:
        raise RuntimeError(f"no design column {args.covariate!r} in {covs}")
    lfc_dim = "covariate" if "covariate" in de["lfc"].dims else "covariate_sub"
    lfc = de["lfc"].sel({lfc_dim: column}).mean("cell_name")
    pd.DataFrame({"gene": [str(g) for g in lfc["gene"].values], "lfc": lfc.values}).to_csv(
        workdir / "de_lfc_A.csv", index=False
    )
    keep = [v for v in ("lfc", "beta", "effect_size", "pvalue") if v in de]
    de_out = de[keep].assign_coords(
        cell_name=[str(c) for c in de["cell_name"].values],
        gene=[str(g) for g in de["gene"].values],
        covariate=covs,
    )
    de_out.astype(np.float32).to_netcdf(workdir / "de.nc")

    info = model.sample_info.set_index(args.sample_key)[args.covariate]
    return {
        "command": " ".join(sys.argv),
        "scvi_version": scvi.__version__,
        "settings": {
            k: getattr(args, k)
            for k in (
                "sample_key",
                "groupby",
                "covariate",
                "de_group",
                "n_latent",
                "n_latent_u",
                "max_epochs",
                "batch_size",
                "patience",
                "lr",
                "kl_warmup",
                "seed",
            )
        },
        "training": train_info,
        "timings_seconds": timings,
        "de": {
            "n_cells": int(sub.n_obs),
            "design_columns": covs,
            "design_column_values": {str(k): bool(v) for k, v in info.items()},
            "lfc_column": column,
            "lfc_dim": lfc_dim,
            "mean_abs_lfc": float(np.abs(lfc.values).mean()),
        },
        "n_groups": int(dist.sizes["group"]),
    }


def main(argv: list[str] | None = None) -> int:
    """Entry point.

    Parameters
    ----------
    argv
        Arguments (without the program name); ``None`` reads ``sys.argv``.

    Returns
    -------
    int
        Process exit status.
    """
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="reference_claims_") as tmp:
        info = run(args, workdir, Path(tmp))
    (workdir / "info.json").write_text(json.dumps(info, indent=2) + "\n")
    t = info["training"]
    print(
        f"trained {t['epochs_trained']} epochs (best validation -ELBO {t['val_neg_elbo_best']:.2f} at epoch "
        f"{t['best_epoch']}); timings: "
        + ", ".join(f"{k} {v:.1f} s" for k, v in info["timings_seconds"].items())
    )
    if "de" in info:
        print(f"DE: {info['de']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
