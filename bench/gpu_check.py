"""Measure training and the analyses on a CUDA GPU and append the figures to bench/RESULTS.md.

Usage (``bench/gpu_check.sh`` installs the ``gpu`` extra first, then runs this)::

    .venv/bin/python bench/gpu_check.py [--sizes 10000,200000 --results bench/RESULTS.md
        --records FILE.jsonl --budget-s 420 --skip-workflow] [--allow-cpu]

Steps, each a fresh process as a workflow job is, in this order (the small size first, so a
slow GPU still reports something within the budget):

1. for each size of ``--sizes``: simulate the data once (``train_throughput.write_dataset``: 2,000
   genes, 32 samples, 2 batches, 5 cell types; 90 / 10 split), then
   ``bench/train_throughput.py`` at batch sizes 128 and 1024 (10 epochs at 10,000 cells and
   fewer, 3 epochs above: cells/s is the median of epochs 2..N), then ``bench/posthoc.py`` on the
   same file (local sample distances, DA of one covariate, DE of one covariate at
   ``--mc-samples`` draws, each in its own process after a 5-epoch fit);
2. the default workflow's ``fit_mrvi`` (``snakemake --cores all`` in a temporary folder, up to
   the semi-synthetic dataset's model), its time from the rule's ``benchmark:`` file.

A step that fails or outruns what is left of ``--budget-s`` is recorded as such and the rest
go on. Every record (the scripts' JSON lines plus ``step``) goes to ``--records`` when given;
the Markdown section (GPU, driver, JAX, commit, date, the tables) is appended to
``--results``. On a machine whose JAX sees no GPU the check stops with an error, unless
``--allow-cpu`` (for trying the script itself at tiny ``--sizes``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

LOG = logging.getLogger("gpu_check")

#: Training batch sizes measured at every size.
BATCH_SIZES = (128, 1024)
#: Analyses of ``bench/posthoc.py`` measured at every size.
ANALYSES = "distances,da,de"
#: The results of the default workflow's dataset (the semi-synthetic one of config/config.yaml).
WORKFLOW_RESULTS = Path("results/semisynthetic")


def epochs_for(n_cells: int) -> int:
    """Epochs of a throughput run: 10 up to 10,000 cells, 3 above (the median needs two)."""
    return 10 if n_cells <= 10_000 else 3


def gpu_platform(allow_cpu: bool) -> dict[str, str]:
    """The JAX backend and device this check runs on; an error when it is not a GPU."""
    import jax

    device = jax.devices()[0]
    info = {
        "platform": jax.default_backend(),
        "device": getattr(device, "device_kind", str(device)),
        "jax": jax.__version__,
    }
    if info["platform"] != "gpu" and not allow_cpu:
        msg = (
            f"JAX sees no GPU (backend {info['platform']!r}, device {info['device']!r}): install "
            "the gpu extra (bench/gpu_check.sh does, or `.venv/bin/pip install -e '.[gpu]'`) on a "
            "machine with an NVIDIA driver; --allow-cpu runs the check on the CPU anyway"
        )
        raise SystemExit(msg)
    return info


def driver_version() -> str | None:
    """The NVIDIA driver's version from ``nvidia-smi``, or ``None`` without one."""
    if shutil.which("nvidia-smi") is None:
        return None
    out = subprocess.run(
        ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout else None


def commit() -> str:
    """The checkout's commit (``unknown`` outside git)."""
    out = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.strip() or "unknown"


class Budget:
    """Seconds left of the check's wall-clock budget."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        """Seconds left (never below 0)."""
        return max(0.0, self.end - time.monotonic())


def run_json(
    cmd: list[str], budget: Budget, *, json_out: bool = True
) -> tuple[list[dict[str, Any]], str | None]:
    """Run ``cmd`` within what is left of ``budget``; its JSON stdout lines and an error or None.

    ``json_out=False``: the command's stdout is its log (Snakemake's), passed through, no records.
    """
    left = budget.left()
    if left <= 0:
        return [], "skipped: no time left in the budget"
    LOG.info("running %s (%.0f s left)", " ".join(cmd[1:]), left)
    stdout = subprocess.PIPE if json_out else None
    try:
        out = subprocess.run(cmd, stdout=stdout, text=True, timeout=left, check=False)
    except subprocess.TimeoutExpired:
        return [], f"stopped after {left:.0f} s: the budget ran out"
    lines = out.stdout.splitlines() if json_out else []
    records = [json.loads(line) for line in lines if line.startswith("{")]
    if out.returncode != 0:
        return records, f"failed with exit status {out.returncode} (its log is above)"
    return records, None


def check_size(n_cells: int, folder: Path, mc_samples: int, budget: Budget) -> list[dict[str, Any]]:
    """Simulate ``n_cells`` cells once, then time training at each batch size and the analyses."""
    from train_throughput import write_dataset

    start = time.perf_counter()
    h5ad, idx = write_dataset(
        folder, n_cells=n_cells, n_genes=2_000, n_samples=32, n_batches=2, seed=0
    )
    LOG.info("simulated %d cells in %.0f s", n_cells, time.perf_counter() - start)
    rows: list[dict[str, Any]] = []
    data = ["--h5ad", str(h5ad), "--train-indices", str(idx)]
    for batch_size in BATCH_SIZES:
        cmd = [sys.executable, str(HERE / "train_throughput.py"), *data]
        cmd += ["--epochs", str(epochs_for(n_cells)), "--batch-size", str(batch_size)]
        records, error = run_json(cmd, budget)
        step = {"step": "train", "n_cells": n_cells, "batch_size": batch_size}
        rows.extend({**r, **step} for r in records)
        if error:
            rows.append({**step, "error": error})
    cmd = [sys.executable, str(HERE / "posthoc.py"), "--h5ad", str(h5ad), "--epochs", "5"]
    cmd += ["--analyses", ANALYSES, "--mc-samples", str(mc_samples)]
    records, error = run_json(cmd, budget)
    rows.extend({**r, "step": "analysis"} for r in records)
    if error:
        rows.append({"step": "analysis", "n_cells": n_cells, "error": error})
    return rows


def check_workflow(folder: Path, budget: Budget) -> dict[str, Any]:
    """Run the default workflow up to its MrVI fit in ``folder``; the fit's time and epochs."""
    import pandas as pd

    snakemake = Path(sys.executable).with_name("snakemake")
    cmd = [str(snakemake if snakemake.exists() else "snakemake"), "-s", str(REPO / "Snakefile")]
    cmd += ["--directory", str(folder), "--configfile", str(REPO / "config" / "config.yaml")]
    cmd += ["--cores", "all", "--", str(WORKFLOW_RESULTS / "model" / "mrvi")]
    _, error = run_json(cmd, budget, json_out=False)
    step: dict[str, Any] = {"step": "workflow fit_mrvi"}
    if error:
        return {**step, "error": error}
    bench = pd.read_csv(folder / WORKFLOW_RESULTS / "benchmarks" / "fit_mrvi.tsv", sep="\t")
    history = pd.read_csv(folder / WORKFLOW_RESULTS / "model" / "mrvi_history.tsv", sep="\t")
    return {
        **step,
        "seconds": float(bench["s"].iloc[0]),
        "peak_rss_mb": float(bench["max_rss"].iloc[0]),
        "epochs": len(history),
    }


def _cell(value: Any, digits: int = 1) -> str:
    return "" if value is None else f"{value:,.{digits}f}"


def results_section(rows: list[dict[str, Any]], info: dict[str, Any], command: str) -> str:
    """The Markdown section of one check: where and when it ran, then its tables."""
    lines = [
        f"## GPU check on {info['device']} ({info['date']}, issue 22)",
        "",
        f"`{command}`, commit {info['commit']}, JAX {info['jax']} ({info['platform']} backend), "
        f"NVIDIA driver {info.get('driver') or 'n/a'}, {info['cpu_count']} CPU cores. One run of "
        "each step, each a fresh process; data simulated (2,000 genes, 32 samples, 2 batches).",
        "",
        "| training | cells | batch size | epochs | cells/s | first epoch incl. compile s | "
        "peak RSS MiB | validation -ELBO |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r["step"] != "train":
            continue
        if "error" in r:
            lines.append(f"| MrVI | {r['n_cells']:,} | {r['batch_size']} | | {r['error']} | | | |")
            continue
        lines.append(
            f"| MrVI | {r['n_cells']:,} | {r['batch_size']} | {r['epochs']} | "
            f"{_cell(r['cells_per_s'], 0)} | {_cell(r['first_epoch_s'], 2)} | "
            f"{_cell(r['peak_rss_mb'], 0)} | {_cell(r['val_neg_elbo'], 1)} |"
        )
    lines += [
        "",
        "| analysis | cells | draws | s (compile included) | peak RSS MiB |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        if r["step"] != "analysis":
            continue
        if "error" in r:
            lines.append(f"| all | {r['n_cells']:,} | | {r['error']} | |")
            continue
        draws = r["mc_samples"] if r["analysis"].startswith("de") else ""
        lines.append(
            f"| {r['analysis']} | {r['n_cells']:,} | {draws} | {_cell(r['seconds'], 2)} | "
            f"{_cell(r['peak_rss_mb'], 0)} |"
        )
    for r in rows:
        if r["step"] == "workflow fit_mrvi":
            what = r.get("error") or (
                f"{r['seconds']:.1f} s for {r['epochs']} epochs, peak RSS {r['peak_rss_mb']:.0f} MiB"
            )
            lines += ["", f"The default workflow's `fit_mrvi` (its benchmark file): {what}."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the check; return the exit status (1 when a step failed)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="10000,200000", help="comma-separated numbers of cells")
    p.add_argument("--mc-samples", type=int, default=50, help="draws of u per cell in DE")
    p.add_argument("--budget-s", type=float, default=420.0, help="wall-clock budget of all steps")
    p.add_argument("--results", default=str(HERE / "RESULTS.md"), help="Markdown file to append to")
    p.add_argument("--records", help="also write every record here (JSON lines)")
    p.add_argument("--skip-workflow", action="store_true", help="leave out the workflow's fit_mrvi")
    p.add_argument("--allow-cpu", action="store_true", help="run even when JAX sees no GPU")
    args = p.parse_args(argv)
    try:
        sizes = [int(s) for s in args.sizes.split(",") if s]
    except ValueError:
        p.error(f"--sizes must be comma-separated integers, got {args.sizes!r}")
    if not sizes or min(sizes) < 100 or args.mc_samples < 1 or args.budget_s <= 0:
        p.error("--sizes must be >= 100 cells each, --mc-samples >= 1, --budget-s > 0")
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(message)s")
    info: dict[str, Any] = gpu_platform(args.allow_cpu)
    info |= {
        "driver": driver_version(),
        "commit": commit(),
        "date": datetime.date.today().isoformat(),
        "cpu_count": os.cpu_count(),
    }
    budget = Budget(args.budget_s)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        for n_cells in sizes:
            rows += check_size(n_cells, Path(tmp) / str(n_cells), args.mc_samples, budget)
        if not args.skip_workflow:
            rows.append(check_workflow(Path(tmp) / "workflow", budget))
    if args.records:
        Path(args.records).write_text("".join(json.dumps(r) + "\n" for r in rows))
    given = argv if argv is not None else sys.argv[1:]
    command = os.environ.get("GPU_CHECK_COMMAND") or " ".join(["python bench/gpu_check.py", *given])
    section = results_section(rows, info, command.strip())
    with Path(args.results).open("a") as out:
        out.write("\n" + section)
    print(section)
    return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
