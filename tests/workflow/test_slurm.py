"""The workflow on a real SLURM cluster: a tiny dataset from simulation to MrVI, one analysis and
the UMAP of the figures, every job submitted by `snakemake --profile profiles/local-slurm` through
sbatch, and the results identical to a local run's.

Needs a SLURM cluster with partition `debug` (SLURM_CONF pointing at it): `make slurm-test` starts
a single-node one (.ci/slurm/up.sh), runs this file and stops it. Skipped where none answers."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import xarray as xr

pytestmark = [pytest.mark.workflow, pytest.mark.slurm]

#: Seconds the SLURM run may take before `timeout` stops it (about 4 minutes on 2 cores).
SLURM_TIMEOUT = int(os.environ.get("SLURM_TEST_TIMEOUT", "900"))

#: One tiny dataset through simulation, preprocessing, MrVI, one MrVI analysis and the UMAP of the
#: figures: six jobs in five waves (each wave costs a SLURM status-poll delay).
TARGETS = [
    "results/tiny/data/samples.tsv",
    "results/tiny/model/mrvi_history.tsv",
    "results/tiny/analysis/sample_distances.nc",
    "results/tiny/figures/data/umap.tsv.gz",
]
RULES = {
    "simulate_base",
    "preprocess_dataset",
    "fit_mrvi",
    "latent_mrvi",
    "sample_distances",
    "embeddings_2d",
}


def _tiny_workflow():
    """test_workflow.py, for its tiny configs and config writer (test files are no package)."""
    path = Path(__file__).with_name("test_workflow.py")
    spec = importlib.util.spec_from_file_location("_tiny_workflow_configs", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _no_cluster(why):
    """Skip: no cluster here; fail instead under .ci/slurm/run.sh (MRVI_SLURM_REQUIRED=1)."""
    if os.environ.get("MRVI_SLURM_REQUIRED") == "1":
        pytest.fail(why)
    pytest.skip(why)


def _node_memory_mb():
    """RealMemory (MB) of the cluster's debug partition; skips the test when no cluster answers."""
    if shutil.which("sbatch") is None:
        _no_cluster("no SLURM client (sbatch) here; `make slurm-test` starts a local cluster")
    try:
        res = subprocess.run(
            ["sinfo", "-h", "-p", "debug", "-o", "%m %T"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except subprocess.TimeoutExpired:
        _no_cluster("sinfo did not answer in 60 s; `make slurm-test` starts a local cluster")
    lines = res.stdout.split()
    if res.returncode != 0 or len(lines) < 2:
        why = (res.stderr or res.stdout).strip().splitlines()[-1:] or ["no node"]
        _no_cluster(
            f"no SLURM cluster with partition debug answers ({why[0]}); "
            "`make slurm-test` starts a local one"
        )
    return int(lines[0].rstrip("+"))


def test_tiny_workflow_on_slurm_equals_a_local_run(repo, tmp_path, snakemake):
    node_mb = _node_memory_mb()
    tw = _tiny_workflow()
    semi = {
        **tw.TINY_SEMI,
        "mrvi": tw.TINY_MRVI,
        "baselines": tw.TINY_BASELINES,
        "analysis": tw.TINY_ANALYSIS,
    }
    config = tw.write_config(tmp_path, {"tiny": semi})
    local, cluster = tmp_path / "local", tmp_path / "slurm"

    # the reference: a local run, at most 2 threads per job as on the CI node (max-threads)
    start = time.monotonic()
    rc, out = snakemake(
        repo, "--cores", "2", "--directory", local, "--configfile", config, "--", *TARGETS
    )
    local_s = time.monotonic() - start
    assert rc == 0, out[-5000:]

    # the same on SLURM; `timeout -k` because a stuck executor may ignore SIGTERM. Jobs ask for
    # at most the node's memory (a smaller CI machine could never run fit_mrvi's 16 GB otherwise)
    cmd = ["timeout", "-k", "30", str(SLURM_TIMEOUT), sys.executable, "-m", "snakemake"]
    cmd += ["--snakefile", repo / "Snakefile", "--profile", repo / "profiles" / "local-slurm"]
    cmd += ["--resources", f"mem_mb={node_mb}", "--directory", cluster]
    cmd += ["--configfile", config, "--", *TARGETS]
    start = time.monotonic()
    res = subprocess.run(
        list(map(str, cmd)), cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    slurm_s = time.monotonic() - start
    out = res.stdout
    assert res.returncode == 0, f"exit {res.returncode} after {slurm_s:.0f} s\n{out[-8000:]}"
    print(f"\nslurm-test: local run {local_s:.1f} s, SLURM run {slurm_s:.1f} s")

    # every job went through sbatch: one SLURM job ID and one SLURM log per job
    n_jobs = sum(tw.jobs(out, reporting=True).values())
    submitted = re.findall(r"Job \d+ has been submitted with SLURM jobid (\d+) \(log: (\S+)\)", out)
    assert len(submitted) == n_jobs == len(RULES), out[-5000:]
    assert len({jobid for jobid, _ in submitted}) == n_jobs
    rules = set()
    for jobid, log in submitted:
        assert Path(log).is_file() and Path(log).name == f"{jobid}.log", log
        rules.add(re.search(r"/rule_(\w+?)/", log).group(1))
    assert rules == RULES
    # SLURM ran them all, with the threads, memory and time the rules ask for
    ids = ",".join(jobid for jobid, _ in submitted)
    queue = subprocess.run(
        ["squeue", "-h", "--states=all", "-j", ids, "-o", "%i|%T|%C|%m|%l"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    slurm_jobs = {row.split("|")[0]: row.split("|")[1:] for row in queue.split()}
    assert len(slurm_jobs) == n_jobs, queue
    assert {state for state, *_ in slurm_jobs.values()} == {"COMPLETED"}, queue
    fit = next(jobid for jobid, log in submitted if "/rule_fit_mrvi/" in log)
    # fit_mrvi: 2 CPUs (max-threads), its memory and run-time floors (16,000 MB, 240 min)
    assert slurm_jobs[fit][1:] == ["2", f"{min(16000, node_mb)}M", "4:00:00"], queue

    # the results are identical to the local run's: same machine, seeded, deterministic on CPU
    # (timings are only in the logs and the benchmark files)
    def both(path, read):
        return read(local / path), read(cluster / path)

    def table(path):
        return pd.read_csv(path, sep="\t")

    a, b = both("results/tiny/data/preprocessed.h5ad", ad.read_h5ad)
    assert a.X.shape == b.X.shape and (a.X != b.X).nnz == 0
    pd.testing.assert_frame_equal(a.obs, b.obs, check_exact=True)
    pd.testing.assert_frame_equal(a.var, b.var, check_exact=True)
    for path in ("data/samples.tsv", "model/mrvi_history.tsv", "figures/data/umap.tsv.gz"):
        pd.testing.assert_frame_equal(*both(f"results/tiny/{path}", table), check_exact=True)
    a, b = both("results/tiny/model/mrvi_latent.h5ad", ad.read_h5ad)
    for key in ("X_mrvi_u", "X_mrvi_z"):
        np.testing.assert_array_equal(a.obsm[key], b.obsm[key])
    xr.testing.assert_identical(
        *both("results/tiny/analysis/sample_distances.nc", xr.open_dataarray)
    )
