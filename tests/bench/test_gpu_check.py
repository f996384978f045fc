"""bench/gpu_check.py: its refusal without a GPU, its step budget and its Markdown section."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "gpu_check.py"


def test_refuses_to_run_without_a_gpu(env, tmp_path):
    results = tmp_path / "RESULTS.md"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--sizes", "100", "--results", str(results)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode != 0
    assert "JAX sees no GPU" in proc.stderr and "--allow-cpu" in proc.stderr
    assert not results.exists()


def test_a_step_past_the_budget_is_stopped_and_reported(bench_script):
    gpu_check = bench_script("gpu_check")
    budget = gpu_check.Budget(2.0)
    records, error = gpu_check.run_json(
        [sys.executable, "-c", "import time; print('{\"a\": 1}', flush=True); time.sleep(30)"],
        budget,
    )
    assert records == [] and error.startswith("stopped after 2 s")
    records, error = gpu_check.run_json([sys.executable, "-c", "print('{\"a\": 1}')"], budget)
    assert error == "skipped: no time left in the budget"


def test_results_section_tabulates_every_step(bench_script):
    gpu_check = bench_script("gpu_check")
    rows = [
        {
            "step": "train",
            "n_cells": 10_000,
            "batch_size": 128,
            "epochs": 10,
            "cells_per_s": 123_456.7,
            "first_epoch_s": 3.21,
            "peak_rss_mb": 2048.4,
            "val_neg_elbo": 1928.44,
        },
        {
            "step": "train",
            "n_cells": 200_000,
            "batch_size": 1024,
            "error": "failed with exit status 1",
        },
        {
            "step": "analysis",
            "analysis": "de",
            "n_cells": 10_000,
            "mc_samples": 50,
            "seconds": 4.567,
            "peak_rss_mb": 900.0,
        },
        {
            "step": "analysis",
            "analysis": "da",
            "n_cells": 10_000,
            "mc_samples": 50,
            "seconds": 0.5,
            "peak_rss_mb": 800.0,
        },
        {"step": "workflow fit_mrvi", "seconds": 42.04, "peak_rss_mb": 3000.2, "epochs": 400},
    ]
    info = {
        "device": "NVIDIA H100 80GB HBM3",
        "date": "2026-12-07",
        "commit": "abc1234",
        "jax": "0.7.0",
        "platform": "gpu",
        "driver": "580.1",
        "cpu_count": 16,
    }
    text = gpu_check.results_section(rows, info, "bash bench/gpu_check.sh")
    assert text.startswith("## GPU check on NVIDIA H100 80GB HBM3 (2026-12-07, issue 22)")
    assert "| MrVI | 10,000 | 128 | 10 | 123,457 | 3.21 | 2,048 | 1,928.4 |" in text
    assert "| MrVI | 200,000 | 1024 | | failed with exit status 1 |" in text
    assert "| de | 10,000 | 50 | 4.57 | 900 |" in text
    assert "| da | 10,000 |  | 0.50 | 800 |" in text  # draws only for DE
    assert "42.0 s for 400 epochs, peak RSS 3000 MiB" in text
    assert "NVIDIA driver 580.1, 16 CPU cores" in text
