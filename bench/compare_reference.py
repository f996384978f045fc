"""Train our MrVI and the reference MrVI (scvi-tools 1.4.2) on the same data and split; print JSON.

Usage::

    .venv/bin/python bench/compare_reference.py [--n-cells 10000 --n-genes 2000 --n-samples 32
        --n-batches 2 --epochs 10 --batch-size 128 --seed 0] [--backends jax,torch]
        [--encoder-sample-aware] [--analyses distances,da,de --de-mc-samples 100]
        [--workdir DIR] [--log FILE]

Steps
-----
1. Unless ``--backends none``: make sure the reference venv (``bench/.reference-venv``, Python
   3.11, scvi-tools 1.4.2 with JAX and CPU torch) exists and imports ``scvi``; otherwise build it
   with ``bash bench/reference_env.sh`` (about a minute; torch comes from the local CPU wheel).
2. Simulate one dataset (``train_throughput.write_dataset``: :func:`mrvi_repro.data.simulate.simulate_base`
   with 5 cell types, seeded by ``--seed``) and write it as ``data.h5ad`` with the seeded 90 / 10
   training rows in ``train_indices.npy`` (into ``--workdir``, default a temporary folder that is
   removed afterwards).
3. Run, one after the other and each in a fresh process (so that each peak RSS is its own):
   ``bench/train_throughput.py`` (ours, this interpreter) and ``bench/reference_runner.py
   --backend B`` (reference venv) for each backend, all with the same files, ``--epochs``,
   ``--batch-size`` and ``--seed``. Their stderr is streamed to ours (and to ``--log``), each line
   prefixed by the run's name; their stdout is one JSON line each.
4. With ``--analyses``: the reference runs also time its post-hoc calls after training (see
   ``reference_runner.time_analyses``), and ``bench/posthoc.py --h5ad`` times ours on the same
   file (a model fitted for ``--epochs``, each analysis in a fresh process); DE uses
   ``--de-mc-samples`` draws on both sides. ``analyses.speedup_by_backend`` = reference seconds /
   our seconds.
5. Print ONE JSON line: ``{"ours": {...}, "reference": {"jax": {...}, "torch": {...}},
   "faster_reference": B, "ratios": {...}, ...}``.

Ratios (``ratios`` compares with the faster reference by steady-state cells/s, ``ratios_by_backend``
with each one):

* ``cells_per_s``: ours / reference (> 1: we are faster);
* ``first_epoch_s`` and ``peak_rss_mb``: ours / reference (< 1: we are faster / smaller);
* ``val_neg_elbo_diff``: ours - reference, per validation cell (< 0: our validation negative ELBO is lower, i.e. better;
  both are the per-cell negative ELBO with log x! and KL weight 1 after the same epochs).

The timing definitions of both sides (validation included in an epoch, compilation in the first
epoch, parameter initialisation outside it) are in the docstrings of the two runner scripts.
Any run that fails is recorded as ``{"error": ...}`` and the exit status is 1.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import train_throughput  # noqa: E402 - the sibling script, importable once BENCH is on the path

REF_VENV = BENCH / ".reference-venv"
REF_PYTHON = REF_VENV / "bin" / "python"
BACKENDS = ("jax", "torch")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line (``None`` reads ``sys.argv``)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    train_throughput.add_data_args(p)
    p.add_argument(
        "--backends",
        default="jax,torch",
        help="comma-separated reference backends out of jax,torch; 'none' runs ours only",
    )
    p.add_argument(
        "--analyses",
        default="",
        help="after training, also time these analyses on both sides (comma-separated, of "
        "distances,da,de: our bench/posthoc.py against the reference's post-hoc calls)",
    )
    p.add_argument("--de-mc-samples", type=int, default=100, help="draws of u in DE, both sides")
    p.add_argument("--workdir", help="keep the data files here (default: a temporary folder)")
    p.add_argument("--log", help="also write every run's stderr to this file")
    args = p.parse_args(argv)
    train_throughput.check_args(p, args)
    names = [] if args.backends.strip().lower() == "none" else args.backends.split(",")
    names = [b.strip() for b in names if b.strip()]
    unknown = sorted(set(names) - set(BACKENDS))
    if unknown:
        p.error(f"unknown backend(s) {unknown}; choose from {', '.join(BACKENDS)} or 'none'")
    args.backends = list(dict.fromkeys(names))
    args.analyses = [a for a in args.analyses.split(",") if a]
    unknown = sorted(set(args.analyses) - {"distances", "da", "de"})
    if unknown:
        p.error(f"unknown analyses {unknown}; choose from distances, da, de")
    return args


class _Tee:
    """Line sink that writes to stderr and, optionally, to a log file."""

    def __init__(self, log: str | None) -> None:
        if log:
            Path(log).parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] | None = open(log, "a", buffering=1) if log else None
        self._lock = threading.Lock()

    def write(self, line: str) -> None:
        with self._lock:
            sys.stderr.write(line)
            sys.stderr.flush()
            if self._file is not None:
                self._file.write(line)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def _say(tee: _Tee, msg: str) -> None:
    tee.write(f"[compare_reference] {msg}\n")


def reference_ready() -> bool:
    """Return whether the reference venv exists and imports scvi."""
    if not REF_PYTHON.exists():
        return False
    probe = subprocess.run(
        [str(REF_PYTHON), "-c", "import scvi"], capture_output=True, text=True, check=False
    )
    return probe.returncode == 0


def ensure_reference(tee: _Tee) -> None:
    """Build the reference venv with ``bench/reference_env.sh`` unless it is ready already."""
    if reference_ready():
        _say(tee, f"reusing the reference venv {REF_VENV}")
        return
    _say(tee, f"building the reference venv with {BENCH / 'reference_env.sh'}")
    proc = subprocess.Popen(
        ["bash", str(BENCH / "reference_env.sh"), str(REF_VENV)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        tee.write(f"[reference_env] {line}")
    code = proc.wait()
    if code != 0 or not reference_ready():
        msg = f"bench/reference_env.sh failed (exit {code}) or the venv does not import scvi"
        raise RuntimeError(msg)


def _stream(cmd: list[str], name: str, tee: _Tee, env: dict[str, str] | None = None) -> Any:
    """Run ``cmd``; stream its stderr (prefixed by ``name``); return (exit code, stdout text)."""
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, bufsize=1
    )

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            tee.write(f"[{name}] {line}")

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    assert proc.stdout is not None
    out = proc.stdout.read()
    code = proc.wait()
    thread.join()
    return code, out


def _run_json(cmd: list[str], name: str, tee: _Tee, env: dict[str, str]) -> dict[str, Any]:
    """Run one benchmark process and parse its JSON line (or record its failure)."""
    _say(tee, f"running {name}: {' '.join(cmd)}")
    start = time.perf_counter()
    code, out = _stream(cmd, name, tee, env)
    wall = time.perf_counter() - start
    lines = [ln for ln in out.splitlines() if ln.strip()]
    if code != 0 or not lines:
        _say(tee, f"{name} failed with exit code {code}")
        return {"error": f"exit code {code}", "stdout": out[-2000:], "process_wall_s": wall}
    try:
        record = json.loads(lines[-1])
    except json.JSONDecodeError as err:
        return {"error": f"no JSON on stdout ({err})", "stdout": out[-2000:]}
    record["process_wall_s"] = wall
    _say(tee, f"{name} done in {wall:.1f} s")
    return record


def _ratios(ours: dict[str, Any], ref: dict[str, Any]) -> dict[str, float | None]:
    """Ours relative to one reference record (``None`` where a figure is missing)."""

    def div(key: str) -> float | None:
        a, b = ours.get(key), ref.get(key)
        return a / b if isinstance(a, int | float) and isinstance(b, int | float) and b else None

    a, b = ours.get("val_neg_elbo"), ref.get("val_neg_elbo")
    return {
        "cells_per_s": div("cells_per_s"),
        "first_epoch_s": div("first_epoch_s"),
        "steady_epoch_s": div("steady_epoch_s"),
        "peak_rss_mb": div("peak_rss_mb"),
        "val_neg_elbo_diff": (a - b) if a is not None and b is not None else None,
    }


def run(args: argparse.Namespace, tee: _Tee) -> dict[str, Any]:
    """Prepare the reference, write the data, run every model and assemble the record."""
    if args.backends:
        ensure_reference(tee)
    with tempfile.TemporaryDirectory(prefix="mrvi_compare_") as tmp:
        workdir = Path(args.workdir) if args.workdir else Path(tmp)
        _say(tee, f"simulating {args.n_cells} cells x {args.n_genes} genes into {workdir}")
        # in a spawned child, so that this process stays small and idle while the models train
        h5ad, idx, seconds = train_throughput.simulate_in_child(args, str(workdir))
        _say(tee, f"data written in {seconds:.1f} s")
        common = [
            "--h5ad",
            str(h5ad),
            "--train-indices",
            str(idx),
            "--epochs",
            str(args.epochs),
            "--batch-size",
            str(args.batch_size),
            "--seed",
            str(args.seed),
        ]
        ours_cmd = [sys.executable, str(BENCH / "train_throughput.py"), *common]
        if args.encoder_sample_aware:
            ours_cmd.append("--encoder-sample-aware")
        ours = _run_json(ours_cmd, "ours", tee, dict(os.environ))
        ours_analyses = run_our_analyses(args, h5ad, tee) if args.analyses else {}

        # The reference venv must not see our interpreter's environment.
        ref_env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")
        }
        ref_env["PATH"] = f"{REF_VENV / 'bin'}{os.pathsep}{ref_env.get('PATH', '')}"
        ref_extra = ["--analyses", ",".join(args.analyses)] if args.analyses else []
        ref_extra += ["--de-mc-samples", str(args.de_mc_samples)]
        reference = {
            b: _run_json(
                [
                    str(REF_PYTHON),
                    str(BENCH / "reference_runner.py"),
                    *common,
                    "--backend",
                    b,
                    *ref_extra,
                ],
                f"reference-{b}",
                tee,
                ref_env,
            )
            for b in args.backends
        }

    ok = {b: r for b, r in reference.items() if r.get("cells_per_s")}
    faster = max(ok, key=lambda b: ok[b]["cells_per_s"]) if ok else None
    return {
        "n_cells": args.n_cells,
        "n_genes": args.n_genes,
        "n_samples": args.n_samples,
        "n_batches": args.n_batches,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "encoder_sample_aware": args.encoder_sample_aware,
        "data_kept_in": args.workdir,
        "ours": ours,
        "reference": reference,
        "faster_reference": faster,
        "ratios": _ratios(ours, ok[faster]) if faster and "error" not in ours else None,
        "ratios_by_backend": {b: _ratios(ours, r) for b, r in ok.items()}
        if "error" not in ours
        else {},
        "analyses": {
            "ours": ours_analyses,
            "de_mc_samples": args.de_mc_samples,
            "speedup_by_backend": {
                b: {
                    a: r["analyses"][a]["seconds"] / ours_analyses[a]["seconds"]
                    for a in args.analyses
                    if a in r.get("analyses", {}) and a in ours_analyses
                }
                for b, r in ok.items()
            },
        },
    }


def run_our_analyses(args: argparse.Namespace, h5ad: Path, tee: _Tee) -> dict[str, Any]:
    """Time our analyses on the same file with ``bench/posthoc.py`` (each in a fresh process)."""
    cmd = [sys.executable, str(BENCH / "posthoc.py"), "--h5ad", str(h5ad)]
    cmd += ["--epochs", str(args.epochs), "--seed", str(args.seed)]
    cmd += ["--mc-samples", str(args.de_mc_samples), "--analyses", ",".join(args.analyses)]
    _say(tee, f"running ours-analyses: {' '.join(cmd)}")
    code, out = _stream(cmd, "ours-analyses", tee, dict(os.environ))
    if code != 0:
        return {"error": f"exit code {code}"}
    records = [json.loads(line) for line in out.splitlines() if line.strip()]
    return {r["analysis"]: r for r in records}


def main(argv: list[str] | None = None) -> int:
    """Parse, run, and print the one JSON line; return 1 if any run failed."""
    args = parse_args(argv)
    tee = _Tee(args.log)
    try:
        record = run(args, tee)
    finally:
        tee.close()
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()
    failed = "error" in record["ours"] or any("error" in r for r in record["reference"].values())
    failed = failed or "error" in record["analyses"]["ours"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
