"""bench/train_throughput.py end to end at a tiny size (two short subprocess runs).

The subprocesses share the bench tests' JAX setup (``conftest.py``): low XLA optimisation and a
persistent compilation cache, so the second run (same shapes) compiles nothing.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "bench" / "train_throughput.py"
TINY = {"n_cells": 600, "n_genes": 100, "n_samples": 4, "n_batches": 2, "seed": 0}
SCHEDULE = ["--epochs", "2", "--batch-size", "64", "--seed", "0"]
POSITIVE = (
    "cells_per_s",
    "first_epoch_s",
    "steady_epoch_s",
    "peak_rss_mb",
    "rss_before_fit_mb",
    "fit_s",
    "val_neg_elbo",
    "n_params",
)


def _run(args: list[str], env: dict[str, str]) -> dict:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    lines = proc.stdout.splitlines()
    assert len(lines) == 1, f"expected one JSON line on stdout, got {proc.stdout!r}"
    return json.loads(lines[0])


def _check(record: dict) -> None:
    for key in POSITIVE:
        value = record[key]
        assert isinstance(value, int | float) and math.isfinite(value) and value > 0, (key, value)
    assert record["n_cells"] == 600 and record["n_genes"] == 100
    assert record["n_samples"] == 4 and record["n_batches"] == 2
    assert record["n_train"] == 540 and record["n_val"] == 60
    assert record["epochs"] == 2 and record["batch_size"] == 64
    assert len(record["epoch_s"]) == 2 and record["steady_epoch_s"] == record["epoch_s"][1]
    assert record["cells_per_s"] == pytest.approx(540 / record["steady_epoch_s"])
    assert record["peak_rss_mb"] >= record["rss_before_fit_mb"]
    phases = record["rss_phases_mb"]
    assert list(phases) == ["before_fit", "data_ready", "compiled", "epoch_1", "last_epoch"]
    hwm = [p["hwm"] for p in phases.values()]
    assert hwm == sorted(hwm) and hwm[-1] <= record["peak_rss_mb"]
    assert record["jax_version"] and record["platform"] == "cpu"
    assert record["epoch_s_includes_validation"] is True


@pytest.fixture(scope="module")
def simulated(env):
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in TINY.items() if k != "seed"]
    return _run([*flags, *SCHEDULE], env)


def test_simulated_run(simulated):
    _check(simulated)
    assert simulated["data"] == "simulated"
    assert simulated["simulate_s"] > 0


def test_given_files_same_as_simulated(bench_script, simulated, env, tmp_path):
    h5ad, idx = bench_script("train_throughput").write_dataset(tmp_path, **TINY)
    assert np.load(idx).size == 540
    record = _run(["--h5ad", str(h5ad), "--train-indices", str(idx), *SCHEDULE], env)
    _check(record)
    assert record["data"] == str(h5ad) and record["simulate_s"] is None
    # The same simulation and split as the script's own: the same model, the same ELBO.
    assert record["val_neg_elbo"] == pytest.approx(simulated["val_neg_elbo"], rel=1e-6)
