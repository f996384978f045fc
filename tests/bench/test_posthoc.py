"""bench/posthoc.py end to end at a tiny size: every analysis in its own process, one JSON line each."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "bench" / "posthoc.py"


def test_posthoc_prints_one_record_per_analysis(env):
    args = ["--n-cells", "400", "--n-samples", "4", "--n-genes", "60", "--epochs", "1"]
    args += ["--mc-samples", "2", "--analyses", "distances,da,de_lfc"]
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=400,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["analysis"] for r in records] == ["distances", "da", "de_lfc"]
    for r in records:
        assert r["n_cells"] == 400 and r["n_samples"] == 4 and r["mc_samples"] == 2
        assert math.isfinite(r["seconds"]) and r["seconds"] > 0
        assert r["peak_rss_mb"] >= r["loaded_rss_mb"] > 0


def test_unknown_analysis_is_refused():
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--analyses", "distances,nope"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2 and "unknown analyses ['nope']" in proc.stderr
