"""The runner shared by the full-size chain benchmarks (covid_fullsize.py, sciplex_fullsize.py):
write the entry and the config, run Snakemake on them, tabulate the rules' benchmark files."""

from __future__ import annotations

import argparse
import logging
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]

logger = logging.getLogger("fullsize")


def run_chain(
    folder: Path,
    dataset: str,
    entry: dict[str, Any],
    *,
    cores: int,
    targets: list[str],
    forcerun: list[str] | None = None,
) -> int:
    """Write ``folder/<dataset>.yaml`` and ``folder/config.yaml`` (that one entry) and run the
    workflow on ``targets`` in ``folder``; return Snakemake's exit status."""
    path = folder / f"{dataset}.yaml"
    path.write_text(yaml.safe_dump(entry, sort_keys=False))
    (folder / "config.yaml").write_text(yaml.safe_dump({"datasets": [str(path)]}))
    command = [
        str(REPO / ".venv" / "bin" / "snakemake"),
        "-s",
        str(REPO / "Snakefile"),
        "--directory",
        str(folder),
        "--configfile",
        str(folder / "config.yaml"),
        "--cores",
        str(cores),
        *(["--forcerun", *forcerun] if forcerun else []),
        "--",
        *targets,
    ]
    logger.info("%s", " ".join(command))
    return subprocess.call(command)


def benchmark_table(folder: Path, dataset: str) -> str:
    """Markdown table of each rule's wall time, peak RSS and CPU time, in the order they ran.

    From the Snakemake ``benchmark:`` files of the dataset's rules (named by their path under
    ``results/<dataset>/benchmarks``) and of the shared steps under ``results/_shared`` (named
    by their rule, the first folder).
    """
    roots = [folder / "results" / dataset / "benchmarks", folder / "results" / "_shared"]
    files = [(r, p) for r in roots if r.exists() for p in r.rglob("*.tsv")]
    lines = ["| rule | wall s | peak RSS MiB | CPU s |", "|---|---|---|---|"]
    for root, path in sorted(files, key=lambda rp: rp[1].stat().st_mtime):
        if root.name == "_shared" and path.name != "benchmark.tsv":
            continue
        relative = path.relative_to(root)
        rule = relative.parts[0] if root.name == "_shared" else str(relative.with_suffix(""))
        row = pd.read_csv(path, sep="\t").iloc[0]
        lines.append(f"| {rule} | {row['s']:.0f} | {row['max_rss']:.0f} | {row['cpu_time']:.0f} |")
    return "\n".join(lines)


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the ``run`` command, the same in every full-size script."""
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--de-mc-samples", type=int, default=None)
    parser.add_argument("--forcerun", nargs="*", default=None)
    parser.add_argument("targets", nargs="*")
