"""bench/compile_cache.py end to end at a tiny size: off, cold and warm runs of each step."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "bench" / "compile_cache.py"


def test_each_step_runs_off_cold_and_warm(env):
    args = ["--n-cells", "300", "--n-genes", "50", "--n-samples", "4", "--rounds", "1"]
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *args, "--analyses", "distances"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    lines = proc.stdout.splitlines()
    rows = [json.loads(line) for line in lines if line.startswith("{")]
    assert [(r["step"], r["mode"]) for r in rows] == [
        (step, mode) for step in ("train", "distances") for mode in ("off", "cold", "warm")
    ]
    for r in rows:
        assert r["wall_s"] > 0
        assert (
            (r["compile_s"] > 0 and r["first_epoch_s"] > r["compile_s"])
            if r["step"] == "train"
            else r["seconds"] > 0
        )
    table = [line for line in lines if line.startswith("| train") or line.startswith("| distances")]
    assert len(table) == 6


def test_bad_arguments_are_refused():
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--analyses", "nope"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2 and "unknown: ['nope']" in proc.stderr
