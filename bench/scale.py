"""MrVI at a million cells: one streamed training epoch and the memory-bounded analyses.

Usage::

    .venv/bin/python bench/scale.py [--n-cells 1000000 --n-genes 2000 --n-samples 64
        --n-cell-types 8 --n-batches 2 --batch-size 128 --epochs 1 --de-cells 50000
        --de-mc-samples 50 --da-max-cells-per-sample 256 --seed 0] [--json RECORD.json]

A smoke test: ``--n-cells 20000`` (a minute or two). Log lines go to stderr; a Markdown table of
the steps goes to stdout, and the whole record (per step and the run's settings) to ``--json``.

Steps, in one process, each timed (wall seconds) and measured (``peak_rss_mb``: the process's
high-water RSS during the step, Linux ``VmHWM`` reset just before it, so it includes everything
already held, the counts above all; ``rss_before_mb``: the RSS when the step starts):

``simulate``
    Negative-binomial counts built chunk by chunk straight into CSR (see :func:`simulate_sparse`);
    never a dense cells x genes array.
``fit``
    ``MrVI.fit`` with the default architecture, ``max_epochs=--epochs``, no early stopping,
    ``n_epochs_kl_warmup=--n-epochs-kl-warmup`` (default 0: with the default warm-up of 20 epochs
    a single epoch would train with KL weight 0, and the posteriors of u that DA uses would
    collapse to points) and ``max_dense_gib=--max-dense-gib`` (default: TrainConfig's, 2 GiB): at
    a million cells x 2,000 genes the dense float32 copy would be 7.5 GiB, so the minibatches are
    streamed from the CSR matrix. Compilation included.
``distances``
    :func:`local_sample_distances` of every cell, averaged per cell type (groups x S x S).
``de``
    :func:`differential_expression` on a seeded random subset of ``--de-cells`` cells: the binary
    sample covariate ``group``, ``--de-mc-samples`` draws of u per cell, LFCs averaged per cell
    type.
``da``
    :func:`differential_abundance_binary` for ``group`` on every cell, each sample's aggregated
    posterior from at most ``--da-max-cells-per-sample`` of its cells.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import sparse

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import package_version, peak_rss_mb, reset_peak_rss, rss_mb

if TYPE_CHECKING:
    from collections.abc import Callable

    import anndata as ad

LOG = logging.getLogger("scale")

#: Cells drawn at a time by the simulator (bounds its dense working arrays: chunk x genes).
SIM_CHUNK = 10_000


def simulate_sparse(
    n_cells: int,
    n_genes: int,
    n_samples: int,
    *,
    n_cell_types: int = 8,
    n_batches: int = 2,
    median_library_size: float = 2_000.0,
    seed: int = 0,
    chunk: int = SIM_CHUNK,
) -> ad.AnnData:
    """Simulate NB counts with cell types, batches and planted sample effects, as CSR.

    Genes have heavy-tailed base abundances and NB dispersions; each cell type has its own up and
    down marker programs; each batch a gene-wise log-normal scaling; each sample small gene-wise
    effects of its own. Samples are nested in batches (sample i in batch i mod n_batches); the
    binary sample covariate ``group`` is ``g1`` for the second half of the samples and ``g0`` for
    the first, so it is crossed with the batches. Planted group effects: in ``g1`` samples cell
    type 0 raises 2 % of the genes (log-fold 1; expression) and cell type 1 is three times as
    frequent (abundance). Library sizes are log-normal. Counts go chunk by chunk into one CSR
    matrix (float32 holding integers); memory: the CSR plus one chunk x genes block.

    Returns
    -------
    AnnData with ``obs`` columns ``sample``, ``batch``, ``group``, ``cell_type``.
    """
    import anndata as ad

    rng = np.random.default_rng(seed)
    g, k, s = n_genes, n_cell_types, n_samples
    base = rng.normal(0.0, 1.3, size=g)
    theta = np.exp(rng.normal(np.log(4.0), 0.6, size=g))
    type_fx = np.zeros((k, g))
    for t in range(k):
        up = rng.choice(g, size=max(2, g * 3 // 100), replace=False)
        down = rng.choice(g, size=max(2, g * 15 // 1000), replace=False)
        type_fx[t, up] += np.abs(rng.normal(2.0, 0.5, size=up.size))
        type_fx[t, down] -= np.abs(rng.normal(1.5, 0.5, size=down.size))
    batch_fx = rng.normal(0.0, 0.3, size=(n_batches, g)) if n_batches > 1 else np.zeros((1, g))
    sample_fx = rng.normal(0.0, 0.1, size=(s, g))
    de_fx = np.zeros(g)
    de_fx[rng.choice(g, size=max(2, g // 50), replace=False)] = 1.0
    group = np.arange(s) >= s // 2
    batch_of = np.arange(s) % n_batches
    weight = 1.0 / np.arange(1, k + 1) ** 0.7
    props = np.tile(weight, (s, 1))
    if k > 1:
        props[group, 1] *= 3.0
    props = np.stack([rng.dirichlet(200.0 * p / p.sum()) for p in props])
    cum = props.cumsum(1)
    type_size = rng.normal(0.0, 0.25, size=k)

    # CSR buffers: capacity from the first chunk's density (+50 %); pages never written are never
    # resident, and the buffers grow (a copy) only if the estimate falls short.
    data = indices = np.empty(0)
    indptr = np.zeros(n_cells + 1, dtype=np.int64)
    cell_type = np.empty(n_cells, dtype=np.int64)
    sample = rng.integers(s, size=n_cells)
    nnz = 0
    for start in range(0, n_cells, chunk):
        stop = min(start + chunk, n_cells)
        smp = sample[start:stop]
        ct = (rng.random(stop - start)[:, None] > cum[smp]).sum(1).clip(max=k - 1)
        cell_type[start:stop] = ct
        logits = base + type_fx[ct] + batch_fx[batch_of[smp]] + sample_fx[smp]
        logits += ((ct == 0) & group[smp])[:, None] * de_fx
        logits -= logits.max(1, keepdims=True)
        prop = np.exp(logits)
        prop /= prop.sum(1, keepdims=True)
        lib = np.exp(rng.normal(np.log(median_library_size) + type_size[ct], 0.45))
        mu = lib[:, None] * prop
        counts = rng.negative_binomial(theta, theta / (theta + mu))
        rows, cols = np.nonzero(counts)
        if start == 0:
            capacity = int(len(rows) / (stop - start) * n_cells * 1.5) + 1
            data, indices = np.empty(capacity, np.float32), np.empty(capacity, np.int32)
        if nnz + len(rows) > len(data):
            capacity = int((nnz + len(rows)) * n_cells / stop * 1.1) + 1
            LOG.info("growing the CSR buffers to %d entries", capacity)
            data, indices = np.resize(data, capacity), np.resize(indices, capacity)
        data[nnz : nnz + len(rows)] = counts[rows, cols]
        indices[nnz : nnz + len(rows)] = cols
        indptr[start + 1 : stop + 1] = nnz + np.cumsum(np.bincount(rows, minlength=stop - start))
        nnz += len(rows)
        if (start // chunk) % 10 == 0:
            LOG.info("simulated %d / %d cells (%d non-zeros)", stop, n_cells, nnz)
    x = sparse.csr_matrix((data[:nnz], indices[:nnz], indptr), shape=(n_cells, g))
    width = len(str(s))
    names = np.array([f"s{i + 1:0{width}d}" for i in range(s)])
    obs = pd.DataFrame(
        {
            "sample": pd.Categorical(names[sample], categories=names),
            "batch": pd.Categorical([f"b{i + 1}" for i in batch_of[sample]]),
            "group": pd.Categorical(np.where(group[sample], "g1", "g0")),
            "cell_type": pd.Categorical([f"type_{t}" for t in cell_type]),
        },
        index=pd.Index([f"c{i}" for i in range(n_cells)]),
    )
    var = pd.DataFrame(index=pd.Index([f"G{i + 1}" for i in range(g)]))
    return ad.AnnData(X=x, obs=obs, var=var)


def _measured(steps: list[dict[str, Any]], name: str, fn: Callable[[], Any]) -> Any:
    """Run ``fn`` as step ``name``: append its seconds and RSS to ``steps``; return its result."""
    before = rss_mb()
    reset_peak_rss()
    LOG.info("step %s: start (RSS %.0f MiB)", name, before)
    start = time.perf_counter()
    out = fn()
    record = {
        "step": name,
        "seconds": time.perf_counter() - start,
        "peak_rss_mb": peak_rss_mb(),
        "rss_before_mb": before,
    }
    steps.append(record)
    LOG.info("step %s: %.1f s, peak RSS %.0f MiB", name, record["seconds"], record["peak_rss_mb"])
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Simulate, fit, analyse; return the record (steps, sizes, settings, a few outcomes)."""
    import jax

    from mrvi_repro import __version__
    from mrvi_repro.analysis import (
        differential_abundance_binary,
        differential_expression,
        local_sample_distances,
    )
    from mrvi_repro.model import MrVI, TrainConfig

    steps: list[dict[str, Any]] = []
    adata = _measured(
        steps,
        "simulate",
        lambda: simulate_sparse(
            args.n_cells,
            args.n_genes,
            args.n_samples,
            n_cell_types=args.n_cell_types,
            n_batches=args.n_batches,
            seed=args.seed,
        ),
    )
    x = adata.X
    csr_gib = (x.data.nbytes + x.indices.nbytes + x.indptr.nbytes) / 1024**3
    train = TrainConfig(
        max_epochs=args.epochs,
        batch_size=args.batch_size,
        early_stopping=False,
        n_epochs_kl_warmup=args.n_epochs_kl_warmup,
        max_dense_gib=args.max_dense_gib,
    )
    streamed = train.streams(adata.n_obs, adata.n_vars)
    model = _measured(
        steps,
        "fit",
        lambda: MrVI.fit(
            adata, sample_key="sample", batch_key="batch", train=train, seed=args.seed
        ),
    )
    distances = _measured(
        steps, "distances", lambda: local_sample_distances(model, adata, groupby="cell_type")
    )
    n_de = min(args.de_cells, adata.n_obs)
    de_rows = np.sort(np.random.default_rng(args.seed).choice(adata.n_obs, n_de, replace=False))

    def de() -> Any:
        subset = adata[de_rows].copy()  # CSR rows of the subset only
        return differential_expression(
            model,
            subset,
            covariates=["group"],
            mc_samples=args.de_mc_samples,
            lfc=True,
            lfc_groupby="cell_type",
            seed=args.seed,
        )

    de_out = _measured(steps, "de", de)
    da = _measured(
        steps,
        "da",
        lambda: differential_abundance_binary(
            model,
            adata,
            ["group"],
            max_cells_per_sample=args.da_max_cells_per_sample,
            seed=args.seed,
        ),
    )
    cell_type = adata.obs["cell_type"].astype(str).to_numpy()
    ratio = da["log_ratio_group"].to_numpy()
    de_type = cell_type[de_rows]
    effect = de_out["effect_size"].to_numpy()[:, 0]
    hist = model.history
    device = jax.devices()[0]
    return {
        "n_cells": int(adata.n_obs),
        "n_genes": int(adata.n_vars),
        "n_samples": int(adata.obs["sample"].nunique()),
        "n_cell_types": args.n_cell_types,
        "n_batches": args.n_batches,
        "nnz": int(x.nnz),
        "csr_gib": csr_gib,
        "dense_float32_gib": adata.n_obs * adata.n_vars * 4 / 1024**3,
        "streamed": bool(streamed),
        "max_dense_gib": train.max_dense_gib,
        "epochs": int(len(hist)),
        "n_epochs_kl_warmup": args.n_epochs_kl_warmup,
        "batch_size": args.batch_size,
        "compile_s": model.compile_seconds,
        "epoch_s": [float(v) for v in model.epoch_seconds],
        "train_loss": float(hist["train_loss"].iloc[-1]),
        "val_neg_elbo": float(hist["val_neg_elbo"].iloc[-1]),
        "distance_groups": list(map(str, distances["group"].values)),
        "mean_distance": float(np.nanmean(distances.values)),
        "de_cells": n_de,
        "de_mc_samples": args.de_mc_samples,
        "de_mean_effect_type_0": float(effect[de_type == "type_0"].mean()),
        "de_mean_effect_others": float(effect[de_type != "type_0"].mean()),
        "da_max_cells_per_sample": args.da_max_cells_per_sample,
        "da_mean_log_ratio_type_1": float(np.mean(ratio[cell_type == "type_1"])),
        "da_mean_log_ratio_others": float(np.mean(ratio[cell_type != "type_1"])),
        "steps": steps,
        "peak_rss_mb": max(s["peak_rss_mb"] for s in steps),
        "seed": args.seed,
        "mrvi_repro_version": __version__,
        "jax_version": jax.__version__,
        "jaxlib_version": package_version("jaxlib"),
        "python_version": platform.python_version(),
        "platform": jax.default_backend(),
        "device": getattr(device, "device_kind", str(device)),
        "machine": platform.platform(),
        "cpu_count": os.cpu_count(),
    }


def table(record: dict[str, Any]) -> str:
    """Return the steps as a Markdown table (seconds, RSS before, peak RSS)."""
    lines = ["| step | seconds | RSS before MiB | peak RSS MiB |", "|---|---|---|---|"]
    for s in record["steps"]:
        lines.append(
            f"| {s['step']} | {s['seconds']:.1f} | {s['rss_before_mb']:,.0f} | "
            f"{s['peak_rss_mb']:,.0f} |"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line (``None`` reads ``sys.argv``)."""
    from mrvi_repro.model import TrainConfig

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-cells", type=int, default=1_000_000)
    p.add_argument("--n-genes", type=int, default=2_000)
    p.add_argument("--n-samples", type=int, default=64)
    p.add_argument("--n-cell-types", type=int, default=8)
    p.add_argument("--n-batches", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument(
        "--n-epochs-kl-warmup",
        type=int,
        default=0,
        help="KL warm-up epochs (default 0: the one epoch trains the full ELBO)",
    )
    p.add_argument("--de-cells", type=int, default=50_000, help="cells of the DE subset")
    p.add_argument("--de-mc-samples", type=int, default=50, help="draws of u per cell in DE")
    p.add_argument("--da-max-cells-per-sample", type=int, default=256)
    p.add_argument(
        "--max-dense-gib",
        type=float,
        default=TrainConfig.max_dense_gib,
        help="TrainConfig.max_dense_gib: stream minibatches above this dense size (0: always)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", help="write the record here")
    args = p.parse_args(argv)
    for name in ("n_cells", "n_genes", "n_samples", "n_cell_types", "n_batches", "batch_size"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.n_cells < 100 or args.n_genes < 50 or args.n_samples < 2 or args.n_cell_types < 2:
        p.error("need at least 100 cells, 50 genes, 2 samples and 2 cell types")
    if args.n_batches > args.n_samples:
        p.error("--n-batches cannot exceed --n-samples (samples are nested in batches)")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the table, write the JSON record; return the exit status."""
    args = parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(message)s"
    )
    record = run(args)
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=1) + "\n")
    print(table(record), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
