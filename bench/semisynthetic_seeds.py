"""The default semi-synthetic benchmark over several seeds: metric spread and the claims' verdicts.

Runs the default workflow (``config/config.yaml``) once per seed, each in its own working folder,
with every model and analysis seed of the ``semisynthetic`` entry set to that seed (MrVI, scVI,
the baselines' PCA/kNN/Leiden, Milo and miloDE index cells); the simulated base and the planted
effects keep their seeds, so the runs differ only by how the methods were fitted. Then it writes
the table of every metric (mean, sd, min, max over the seeds, each seed's value) and the verdict on
each of the paper's claims (:data:`mrvi_repro.metrics.SEMISYNTHETIC_CLAIMS`,
:func:`mrvi_repro.metrics.claims_over_seeds`) into ``bench/RESULTS.md`` between its markers, with
the commit it ran on, the machine and the date: the recorded numbers are always a script's output.

Usage (about 5 min per seed on 2 quiet cores)::

    python bench/semisynthetic_seeds.py --seeds 0 1 2 --workdir /tmp/seeds [--write]

``--summaries DIR...`` skips the runs and reads ``DIR/results/semisynthetic/metrics/summary.tsv``.
``--vary mrvi --reuse DIR`` varies MrVI's seed only: each seed's folder starts as a copy of the
finished run ``DIR`` (results and Snakemake's records), so only MrVI and what depends on it rerun
(about half the cost); the spread is then MrVI's alone, the baselines' values being fixed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

from mrvi_repro.metrics import SEMISYNTHETIC_CLAIMS, claims_over_seeds

REPO = Path(__file__).resolve().parents[1]
ENTRY = REPO / "config" / "datasets" / "semisynthetic.yaml"
SUMMARY = Path("results/semisynthetic/metrics/summary.tsv")
START, END = "<!-- semisynthetic-seeds:start -->", "<!-- semisynthetic-seeds:end -->"


def seeded_entry(seed: int, vary: str = "all") -> dict:
    """The default entry with MrVI's seed (``vary="mrvi"``) or every model and analysis seed set."""
    entry = yaml.safe_load(ENTRY.read_text())
    entry["mrvi"]["seed"] = seed
    if vary == "mrvi":
        return entry
    baselines = entry["baselines"]
    baselines["seed"] = baselines["scvi"]["seed"] = seed
    for method in ("milo", "milode"):
        baselines[method]["config"]["seed"] = seed
    return entry


def run(seed: int, workdir: Path, cores: int, vary: str = "all", reuse: Path | None = None) -> Path:
    """Run the default workflow up to the summary with ``seed``; return its working folder."""
    folder = workdir / f"seed{seed}"
    if reuse is not None and folder.resolve() != reuse.resolve():
        for part in ("results", ".snakemake"):
            shutil.rmtree(folder / part, ignore_errors=True)
            shutil.copytree(
                reuse / part,
                folder / part,
                ignore=shutil.ignore_patterns("locks", "incomplete", "log", "conda", "scripts"),
            )
    (folder / "config").mkdir(parents=True, exist_ok=True)
    entry = folder / "config" / "semisynthetic.yaml"
    entry.write_text(yaml.safe_dump(seeded_entry(seed, vary), sort_keys=False))
    config = folder / "config.yaml"
    config.write_text(yaml.safe_dump({"datasets": [str(entry)]}))
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        str(SUMMARY),
        "--cores",
        str(cores),
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(folder),
        "--configfile",
        str(config),
    ]
    if reuse is not None:  # rerun what the seed changes, not what a package edit touched
        cmd += ["--rerun-triggers", "mtime", "params", "input"]
    print(f"seed {seed}: {' '.join(cmd)}", flush=True)
    subprocess.run(cmd, check=True)
    return folder


def spread(summaries: dict[int, pd.DataFrame]) -> pd.DataFrame:
    """Mean, sd, min and max of every (method, metric) over the seeds, and each seed's value."""
    wide = pd.concat(
        {seed: s.set_index(["method", "metric"])["value"] for seed, s in summaries.items()},
        axis=1,
    )
    stats = pd.DataFrame(
        {
            "mean": wide.mean(axis=1),
            "sd": wide.std(axis=1, ddof=1),
            "min": wide.min(axis=1),
            "max": wide.max(axis=1),
        }
    )
    return pd.concat([stats, wide.add_prefix("seed ")], axis=1).reset_index()


def markdown(table: pd.DataFrame, digits: int = 3) -> str:
    """A DataFrame as a Markdown table."""
    cols = list(table.columns)
    lines = ["| " + " | ".join(map(str, cols)) + " |", "|" + "---|" * len(cols)]
    for row in table.itertuples(index=False):
        cells = [f"{v:.{digits}f}" if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def section(summaries: dict[int, pd.DataFrame], vary: str = "all") -> str:
    """The RESULTS.md section: provenance, claims' verdicts, metric spread."""
    commit = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    verdicts = claims_over_seeds(summaries.values(), SEMISYNTHETIC_CLAIMS)
    seeds = " ".join(map(str, summaries))
    return "\n".join(
        [
            START,
            f"Written by `python bench/semisynthetic_seeds.py --seeds {seeds} --vary {vary} "
            f"--write` on commit "
            f"{commit}{' (with uncommitted changes)' if dirty else ''}, "
            f"{dt.date.today().isoformat()}, {platform.machine()} Linux, {platform.python_version()}; "
            "do not edit by hand.",
            "",
            "Claims (margin: positive when the claim holds; verdict over the seeds: `holds` / "
            "`fails` when the mean margin is beyond 2 sd, else `undecided`):",
            "",
            markdown(verdicts.drop(columns="text")),
            "",
            "Every metric over the seeds:",
            "",
            markdown(spread(summaries)),
            END,
        ]
    )


def write_results(text: str, path: Path = REPO / "bench" / "RESULTS.md") -> None:
    """Replace the section between the markers of ``path`` (or add it after the title)."""
    doc = path.read_text()
    if START in doc and END in doc:
        head, rest = doc.split(START, 1)
        tail = rest.split(END, 1)[1]
        doc = head + text + tail
    else:  # a new section before the first one
        head, rest = doc.split("\n## ", 1)
        doc = f"{head}\n\n## Semi-synthetic benchmark over seeds\n\n{text}\n\n## {rest}"
    path.write_text(doc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/semisynthetic-seeds"))
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--summaries", type=Path, nargs="+", help="finished run folders")
    parser.add_argument("--vary", choices=["all", "mrvi"], default="all", help="seeds varied")
    parser.add_argument("--reuse", type=Path, help="finished run folder to start each seed from")
    parser.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    args = parser.parse_args()
    if args.summaries:
        folders = dict(zip(args.seeds, args.summaries, strict=True))
    else:
        folders = {
            seed: run(seed, args.workdir, args.cores, args.vary, args.reuse) for seed in args.seeds
        }
    summaries = {seed: pd.read_csv(folder / SUMMARY, sep="\t") for seed, folder in folders.items()}
    text = section(summaries, args.vary)
    print(text)
    if args.write:
        write_results(text)


if __name__ == "__main__":
    main()
