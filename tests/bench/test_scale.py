"""bench/scale.py end to end at a tiny size (one subprocess run, streaming forced on)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "bench" / "scale.py"
STEPS = ["simulate", "fit", "distances", "de", "da"]


def test_simulated_counts_are_csr_with_crossed_groups_and_batches(bench_script):
    adata = bench_script("scale").simulate_sparse(3000, 60, 6, n_cell_types=3, seed=1, chunk=700)
    x = adata.X
    assert x.format == "csr" and x.shape == (3000, 60) and x.dtype == np.float32
    assert np.all(x.data == np.round(x.data)) and x.data.min() >= 1
    assert np.asarray(x.sum(1)).min() > 0
    obs = adata.obs
    assert obs["sample"].nunique() == 6 and set(obs["cell_type"]) == {"type_0", "type_1", "type_2"}
    per_sample = obs.groupby("sample", observed=True)[["group", "batch"]].nunique()
    assert (per_sample == 1).all().all()  # sample-level covariates
    crossed = obs.drop_duplicates("sample").groupby(["group", "batch"], observed=True).size()
    assert len(crossed) == 4  # both groups in both batches
    # the planted abundance effect: type_1 is more frequent in g1 samples
    share = obs.groupby("group", observed=True)["cell_type"].apply(lambda c: (c == "type_1").mean())
    assert share["g1"] > 1.5 * share["g0"]


def test_tiny_run_streams_and_records_every_step(env, tmp_path):
    out = tmp_path / "record.json"
    args = ["--n-cells", "600", "--n-genes", "60", "--n-samples", "4", "--n-cell-types", "3"]
    args += ["--batch-size", "64", "--de-cells", "100", "--de-mc-samples", "2"]
    args += ["--da-max-cells-per-sample", "40", "--max-dense-gib", "0", "--json", str(out)]
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    record = json.loads(out.read_text())
    assert [s["step"] for s in record["steps"]] == STEPS
    for s in record["steps"]:
        assert s["seconds"] > 0 and s["peak_rss_mb"] > 0, s
    assert record["streamed"] is True and record["epochs"] == 1
    assert record["n_cells"] == 600 and record["n_samples"] == 4 and record["de_cells"] == 100
    assert math.isfinite(record["val_neg_elbo"]) and math.isfinite(
        record["da_mean_log_ratio_type_1"]
    )
    assert record["distance_groups"] == ["type_0", "type_1", "type_2"]
    table = proc.stdout.strip().splitlines()
    assert table[0].startswith("| step |") and len(table) == 2 + len(STEPS)
