"""The runner shared by the full-size chain benchmarks (covid_fullsize.py, sciplex_fullsize.py):
write the entry and the config, run Snakemake on them, tabulate the rules' benchmark files."""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
from collections.abc import Callable
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


def main(
    doc: str,
    dataset: str,
    *,
    entry: Callable[[Path, int, int | None], dict[str, Any]],
    default_targets: Callable[[], list[str]],
    write: Callable[[Path, argparse.Namespace], None],
    write_arguments: Callable[[argparse.ArgumentParser], None],
) -> int:
    """The command line of a full-size script: ``write DIR``, ``run DIR`` or ``table DIR``.

    ``write`` writes the generated files (its options added by ``write_arguments``); ``run``
    runs the workflow on ``entry(DIR, epochs, de_mc_samples)`` (targets: those given, else
    ``default_targets()``); ``table`` prints :func:`benchmark_table`.
    """
    parser = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["write", "run", "table"])
    parser.add_argument("folder", type=Path)
    write_arguments(parser)
    add_run_arguments(parser)
    args = parser.parse_intermixed_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    if args.command == "write":
        write(args.folder, args)
        return 0
    if args.command == "run":
        chosen = entry(args.folder, args.epochs, args.de_mc_samples)
        return run_chain(
            args.folder,
            dataset,
            chosen,
            cores=args.cores,
            targets=args.targets or default_targets(),
            forcerun=args.forcerun,
        )
    print(benchmark_table(args.folder, dataset))
    return 0


def scaled_main(
    doc: str,
    dataset: str,
    *,
    entry: Callable[[Path, int, int | None], dict[str, Any]],
    target: str,
    write: Callable[..., None],
    umis: float,
) -> int:
    """:func:`main` for a script whose ``write(folder, *, umis, seed, scale)`` draws a share
    ``scale`` of the published cells with ``umis`` UMIs per cell on average."""

    def arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--umis-per-cell", type=float, default=umis)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--scale", type=float, default=1.0)

    return main(
        doc,
        dataset,
        entry=entry,
        default_targets=lambda: [target],
        write=lambda folder, a: write(folder, umis=a.umis_per_cell, seed=a.seed, scale=a.scale),
        write_arguments=arguments,
    )
