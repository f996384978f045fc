"""Train our MrVI and the reference MrVI (scvi-tools 1.4.2, 1.5.x) on the same data and split; print JSON.

Usage::

    .venv/bin/python bench/compare_reference.py [--n-cells 10000 --n-genes 2000 --n-samples 32
        --n-batches 2 --epochs 10 --batch-size 128 --seed 0] [--backends jax,torch,torch@1.5.1]
        [--encoder-sample-aware] [--analyses distances,da,de --de-mc-samples 100]
        [--workdir DIR] [--log FILE]

Steps
-----
1. Unless ``--backends none``: make sure each reference venv exists and imports ``scvi``;
   otherwise build it with ``bash bench/reference_env.sh DIR VERSION``. A reference is named
   ``BACKEND`` (scvi-tools 1.4.2 in ``bench/.reference-venv``, Python 3.11, JAX and CPU torch:
   about a minute, torch from the local CPU wheel) or ``BACKEND@VERSION`` (that release in
   ``bench/.reference-venv-VERSION``; from 1.5 on MrVI is torch only, on Python 3.12, with the
   registry's torch, a CUDA build that runs on the CPU: about 6 GB).
2. Simulate one dataset (``train_throughput.write_dataset``: :func:`mrvi_repro.data.simulate.simulate_base`
   with 5 cell types, seeded by ``--seed``) and write it as ``data.h5ad`` with the seeded 90 / 10
   training rows in ``train_indices.npy`` (into ``--workdir``, default a temporary folder that is
   removed afterwards).
3. Run, one after the other and each in a fresh process (so that each peak RSS is its own):
   ``bench/train_throughput.py`` (ours, this interpreter) and ``bench/reference_runner.py
   --backend B`` (its reference venv) for each reference, all with the same files, ``--epochs``,
   ``--batch-size`` and ``--seed``. Their stderr is streamed to ours (and to ``--log``), each line
   prefixed by the run's name; their stdout is one JSON line each.
4. With ``--analyses``: the reference runs also time its post-hoc calls after training (see
   ``reference_runner.time_analyses``), and ``bench/posthoc.py --h5ad`` times ours on the same
   file (a model fitted for ``--epochs``, each analysis in a fresh process); DE uses
   ``--de-mc-samples`` draws on both sides. ``analyses.speedup_by_backend`` = reference seconds /
   our seconds.
5. Print ONE JSON line: ``{"ours": {...}, "reference": {"jax": {...}, "torch@1.5.1": {...}},
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
#: The scvi-tools release of a reference named by its backend alone.
DEFAULT_VERSION = "1.4.2"
BACKENDS = ("jax", "torch")


def reference_version(name: str) -> tuple[str, str]:
    """``(backend, scvi-tools version)`` of a reference name: ``torch`` or ``torch@1.5.1``."""
    backend, _, version = name.partition("@")
    return backend, version or DEFAULT_VERSION


def reference_venv(version: str) -> Path:
    """The venv of a scvi-tools release (``bench/.reference-venv`` for the default one)."""
    return REF_VENV if version == DEFAULT_VERSION else BENCH / f".reference-venv-{version}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line (``None`` reads ``sys.argv``)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    train_throughput.add_data_args(p)
    p.add_argument(
        "--backends",
        default="jax,torch,torch@1.5.1",
        help="comma-separated references: jax or torch (scvi-tools 1.4.2), BACKEND@VERSION for "
        "another release (torch@1.5.1); 'none' runs ours only",
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
    unknown = sorted(n for n in names if reference_version(n)[0] not in BACKENDS)
    if unknown:
        p.error(
            f"unknown backend(s) {unknown}; choose from {', '.join(BACKENDS)}, optionally "
            "@VERSION (e.g. torch@1.5.1), or 'none'"
        )
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


def reference_ready(version: str) -> bool:
    """Return whether the venv of scvi-tools ``version`` exists and imports that release."""
    python = reference_venv(version) / "bin" / "python"
    if not python.exists():
        return False
    probe = subprocess.run(
        [str(python), "-c", f"import scvi, sys; sys.exit(scvi.__version__ != {version!r})"],
        capture_output=True,
        text=True,
        check=False,
    )
    return probe.returncode == 0


def ensure_reference(tee: _Tee, version: str) -> None:
    """Build the venv of scvi-tools ``version`` with ``bench/reference_env.sh`` unless ready."""
    venv = reference_venv(version)
    if reference_ready(version):
        _say(tee, f"reusing the reference venv {venv}")
        return
    _say(tee, f"building the reference venv {venv} with {BENCH / 'reference_env.sh'}")
    proc = subprocess.Popen(
        ["bash", str(BENCH / "reference_env.sh"), str(venv), version],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        tee.write(f"[reference_env] {line}")
    code = proc.wait()
    if code != 0 or not reference_ready(version):
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
    for version in dict.fromkeys(reference_version(b)[1] for b in args.backends):
        ensure_reference(tee, version)
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

        ref_extra = ["--analyses", ",".join(args.analyses)] if args.analyses else []
        ref_extra += ["--de-mc-samples", str(args.de_mc_samples)]
        reference = {b: _run_reference(b, [*common, *ref_extra], tee) for b in args.backends}

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


def _run_reference(name: str, args: list[str], tee: _Tee) -> dict[str, Any]:
    """Run ``reference_runner.py`` for the reference ``name`` in its venv."""
    backend, version = reference_version(name)
    venv = reference_venv(version)
    # The reference venv must not see our interpreter's environment.
    env = {
        k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")
    }
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    cmd = [str(venv / "bin" / "python"), str(BENCH / "reference_runner.py"), *args]
    return _run_json([*cmd, "--backend", backend], f"reference-{name}", tee, env)


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
