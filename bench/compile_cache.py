"""Time fresh processes with the persistent compilation cache off, cold and warm.

Usage::

    .venv/bin/python bench/compile_cache.py [--n-cells 10000 --n-genes 2000 --n-samples 32
        --rounds 5 --analyses distances,da --seed 0]

What a workflow job does, one process each: ``train`` (``bench/train_throughput.py`` on the same
data, 1 epoch: initialisation, compilation, the first epoch) and each analysis of ``--analyses``
(``bench/posthoc.py --one``: load data and model, run it). Each runs in three modes, in turn, for
``--rounds`` rounds:

* ``off``: no cache (``MRVI_REPRO_JAX_CACHE`` unset), what every job paid before the cache;
* ``cold``: a new empty cache folder (compiles and writes every kernel);
* ``warm``: the folder the cold run filled (loads every kernel).

Prints one JSON line per run (``step``, ``mode``, ``round``, ``wall_s`` of the whole process and,
for ``train``, ``compile_s`` and ``first_epoch_s`` from its record; for an analysis its
``seconds``), then a Markdown table of the medians per step and mode. Data: 5 cell types, 2
batches (``train_throughput.write_dataset``); the analyses' model is trained once (5 epochs).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from posthoc import ANALYSES, prepare

from mrvi_repro._jax_cache import CACHE_ENV

HERE = Path(__file__).resolve().parent
MODES = ("off", "cold", "warm")


def _run(cmd: list[str], cache: Path | None) -> tuple[float, dict[str, Any]]:
    """Run ``cmd`` (its last stdout line is JSON) with the cache in ``cache``; (wall s, record)."""
    env = {k: v for k, v in os.environ.items() if k not in (CACHE_ENV, "JAX_COMPILATION_CACHE_DIR")}
    if cache is not None:
        env[CACHE_ENV] = str(cache)
    start = time.perf_counter()
    out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    wall = time.perf_counter() - start
    if out.returncode != 0:
        msg = f"{' '.join(cmd)} failed with status {out.returncode}"
        raise RuntimeError(msg)
    return wall, json.loads(out.stdout.strip().splitlines()[-1])


def steps(folder: Path, analyses: list[str], seed: int) -> dict[str, list[str]]:
    """The command of each step (training, then one per analysis)."""
    train = [
        sys.executable,
        str(HERE / "train_throughput.py"),
        "--h5ad",
        str(folder / "data.h5ad"),
        "--train-indices",
        str(folder / "train_indices.npy"),
        "--epochs",
        "1",
        "--seed",
        str(seed),
    ]
    out = {"train": train}
    for name in analyses:
        out[name] = [
            sys.executable,
            str(HERE / "posthoc.py"),
            "--one",
            name,
            "--folder",
            str(folder),
        ]
    return out


def record(step: str, mode: str, rnd: int, wall: float, rec: dict[str, Any]) -> dict[str, Any]:
    """One run's figures."""
    row: dict[str, Any] = {"step": step, "mode": mode, "round": rnd, "wall_s": round(wall, 2)}
    if step == "train":
        row["compile_s"] = round(rec["compile_s"], 2)
        row["first_epoch_s"] = round(rec["first_epoch_s"], 2)
    else:
        row["seconds"] = round(rec["seconds"], 2)
    return row


def table(rows: list[dict[str, Any]]) -> str:
    """Markdown table of the medians per step and mode."""
    lines = [
        "| step | mode | process wall s | compile s (train) | first epoch s (train) / analysis s |",
        "|---|---|---|---|---|",
    ]
    for step in dict.fromkeys(r["step"] for r in rows):
        for mode in MODES:
            runs = [r for r in rows if r["step"] == step and r["mode"] == mode]
            if not runs:
                continue
            med = {
                k: statistics.median(r[k] for r in runs)
                for k in runs[0]
                if k.endswith("_s") or k == "seconds"
            }
            inner = med.get("first_epoch_s", med.get("seconds"))
            comp = f"{med['compile_s']:.2f}" if "compile_s" in med else ""
            lines.append(f"| {step} | {mode} | {med['wall_s']:.2f} | {comp} | {inner:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; return the exit status."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-cells", type=int, default=10_000)
    p.add_argument("--n-genes", type=int, default=2_000)
    p.add_argument("--n-samples", type=int, default=32)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--analyses", default="distances,da", help=f"comma-separated, of {ANALYSES}")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    names = [a for a in args.analyses.split(",") if a]
    unknown = sorted(set(names) - set(ANALYSES))
    if unknown or args.rounds < 1:
        p.error(f"--rounds must be >= 1 and --analyses of {ANALYSES} (unknown: {unknown})")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "data"
        folder.mkdir()
        prep = argparse.Namespace(
            n_cells=args.n_cells,
            n_genes=args.n_genes,
            n_samples=args.n_samples,
            seed=args.seed,
            epochs=5,
            h5ad=None,
            mc_samples=0,
            ref_cells=None,
        )
        prepare(prep, folder)  # data.h5ad, train_indices.npy and the analyses' model
        commands = steps(folder, names, args.seed)
        for rnd in range(1, args.rounds + 1):
            for step, cmd in commands.items():
                cache = Path(tmp) / f"cache-{step}-{rnd}"
                for mode in MODES:
                    wall, rec = _run(cmd, None if mode == "off" else cache)
                    row = record(step, mode, rnd, wall, rec)
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
