"""Fixtures of the Snakemake tests."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _snakemake(repo, *args, cwd=None, timeout=900):
    """Run Snakemake; return its exit code and its output (stdout and stderr together)."""
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(repo / "Snakefile"),
        *map(str, args),
    ]
    res = subprocess.run(
        cmd,
        cwd=cwd or repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )
    return res.returncode, res.stdout


@pytest.fixture(scope="session")
def snakemake():
    """``snakemake(repo, *args, cwd=None, timeout=900)`` -> (exit code, output)."""
    return _snakemake
