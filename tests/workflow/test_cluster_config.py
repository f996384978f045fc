"""Cluster readiness without a cluster: the profiles parse and every rule asks for threads, memory
and run time (the SLURM profiles turn them into sbatch options)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import yaml

pytestmark = pytest.mark.workflow

#: Rules whose memory and run time grow with the size of their inputs (workflow/rules/resources.smk).
SIZE_DEPENDENT = {
    "preprocess_dataset",
    "sciplex_screen",
    "fit_mrvi",
    "latent_mrvi",
    "sample_distances",
    "stratify_cells",
    "differential_abundance",
    "differential_expression",
    "fit_scvi",
    "representations",
    "composition_distances",
    "deseq2_pseudobulk",
    "milo",
    "milode",
    "integration_metrics",
    "embeddings_2d",
}

#: Loads the workflow through Snakemake's API (the default config) and writes, per rule, whether it
#: runs anything, its declared threads and resources, and mem_mb / runtime evaluated at an input of
#: 0 MB and 10 GB (attempt 1) and at 0 MB on attempt 2.
DUMP_RULES = """
import inspect, json, sys
from pathlib import Path
from types import SimpleNamespace

from snakemake.api import SnakemakeApi
from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings

repo, workdir, out_path = map(Path, sys.argv[1:4])
with SnakemakeApi(OutputSettings(quiet=None)) as api:
    wf = api.workflow(
        resource_settings=ResourceSettings(),
        config_settings=ConfigSettings(configfiles=[repo / "config" / "config.yaml"]),
        snakefile=repo / "Snakefile",
        workdir=workdir,
    )._workflow
    wildcards = SimpleNamespace(
        dataset=next(iter(wf.globals["DATASETS"])),
        resource=next(iter(wf.globals["REGISTRY"]), "none"),
        rep="pca",
    )
    out = {}
    for rule in wf.rules:
        info = rule.ruleinfo
        declared = dict(info.resources[1]) if info.resources else {}
        values = {}
        for key in ("mem_mb", "runtime"):
            value = declared.get(key)
            if callable(value):
                params = inspect.signature(value).parameters

                def call(size_mb, attempt, value=value, params=params):
                    kwargs = {"input": SimpleNamespace(size_mb=size_mb), "attempt": attempt}
                    kwargs = {k: v for k, v in kwargs.items() if k in params}
                    return value(wildcards, **kwargs)

                values[key] = [call(0, 1), call(10_000, 1), call(0, 2)]
            elif value is not None:
                values[key] = [value] * 3
        out[rule.name] = {
            "norun": rule.norun,
            "threads": info.threads,
            "resources": sorted(declared),
            "callable": sorted(k for k, v in declared.items() if callable(v)),
            "values": values,
        }
Path(out_path).write_text(json.dumps(out))
"""


@pytest.fixture(scope="module")
def rules(repo, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rules")
    out = tmp / "rules.json"
    res = subprocess.run(
        [sys.executable, "-c", DUMP_RULES, str(repo), str(tmp), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    return json.loads(out.read_text())


def test_every_rule_declares_threads_memory_and_runtime(rules):
    jobs = {name: r for name, r in rules.items() if not r["norun"]}
    assert {"fit_mrvi", "fit_scvi", "preprocess_dataset", "download"} <= set(jobs)
    no_threads = [name for name, r in jobs.items() if r["threads"] is None]
    assert not no_threads, f"rules without threads: {no_threads}"
    missing = {
        name: [k for k in ("mem_mb", "runtime") if k not in r["resources"]]
        for name, r in jobs.items()
    }
    assert not {n: m for n, m in missing.items() if m}, missing
    for name, r in jobs.items():
        for key, (small, large, retry) in r["values"].items():
            assert isinstance(small, int) and small > 0, (name, key, small)
            assert large >= small and retry >= small, (name, key, r["values"])


def test_size_dependent_rules_grow_with_their_inputs(rules):
    for name in SIZE_DEPENDENT:
        r = rules[name]
        assert r["callable"] == ["mem_mb", "runtime"], (name, r)
        for key, (small, large, retry) in r["values"].items():
            # the floor for small inputs, more for 10 GB of input, twice the floor on a retry
            assert large > small and retry == 2 * small, (name, key, r["values"])
    assert rules["fit_mrvi"]["values"]["mem_mb"][0] == 16000
    assert rules["fit_mrvi"]["values"]["runtime"][0] == 240
    # training time grows with the epochs too: 0.0055 min per MB and epoch, the default's 400
    assert rules["fit_mrvi"]["values"]["runtime"][1] == 22000


def test_profiles_parse(repo):
    profiles = {p.parent.name: p for p in (repo / "profiles").glob("*/config.yaml")}
    assert {"slurm", "local-slurm", "local"} <= set(profiles)
    # not `default`: Snakemake would apply it to every run of the workflow, tests included
    assert "default" not in profiles
    conf = {name: yaml.safe_load(path.read_text()) for name, path in profiles.items()}
    for name in ("slurm", "local-slurm"):
        assert conf[name]["executor"] == "slurm"
    for rule in ("fit_mrvi", "fit_scvi"):
        assert conf["slurm"]["set-resources"][rule] == {"gpu": 1}
    assert (
        "cores" not in conf["slurm"] and "slurm_account" not in conf["slurm"]["default-resources"]
    )
    ci = conf["local-slurm"]
    assert ci["default-resources"]["slurm_partition"] == "debug"
    assert ci["slurm-status-command"] == "squeue"  # sacct hangs without slurmdbd


@pytest.mark.parametrize("profile", ["slurm", "local-slurm", "local"])
def test_snakemake_accepts_the_profile(profile, repo, tmp_path, snakemake):
    # a dry run through each profile: Snakemake (and the SLURM plugin) accept every key
    rc, out = snakemake(
        repo,
        "-n",
        "--profile",
        repo / "profiles" / profile,
        "--directory",
        tmp_path,
        "--configfile",
        repo / "config" / "config.yaml",
        "--",
        "results/semisynthetic/model/mrvi_history.tsv",
        "results/semisynthetic/model/scvi_history.tsv",
    )
    assert rc == 0, out
    fits = re.findall(r"rule (fit_\w+):\n(?:    .*\n)*?    resources: (.*)\n", out)
    assert {rule for rule, _ in fits} == {"fit_mrvi", "fit_scvi"}, out
    for _, resources in fits:
        assert ("gpu=1" in resources) == (profile == "slurm"), resources
