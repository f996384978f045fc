# Job resources that grow with the data, shared by the rule files (included before them).
#
# Every rule declares threads, mem_mb and runtime (minutes). A rule whose memory or run time grows
# with the number of cells computes them from the total size of its input files (Snakemake's
# `input.size_mb`, known once the inputs exist; a dry run shows <TBD> before): `grow(floor, per_mb)` is
# max(floor, per_mb x input MB), times the attempt number (a job rerun by `--retries` after running
# out of memory or time asks for twice as much). The floors are the values the rules had before,
# so runs of the default size ask for what they always did (there the measured peaks are 0.2-1.5
# GB for a 26 MB preprocessed file: bench/RESULTS.md). The factors are rough, generous linear
# bounds for larger data, not fits: they assume peak memory of at most a few times the input
# (MrVI's analyses peaked at 1.6-3.1 GB for 200,000 cells) and run time linear in the cells.
# Memory is what a cluster scheduler reserves; a local run (`--cores`) ignores it unless
# `--resources mem_mb=...` is given.

import math
import os

# JAX reserves 75 % of a GPU's memory when it starts unless told not to; jobs that share a GPU (or
# a GPU node) then fail. Set here, before any job starts, so that every executor passes it on (the
# SLURM plugin submits with --export=ALL and each job reads this file again); a value set by the
# user wins.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")


def grow(floor, per_mb):
    """Resource callable: ``max(floor, per_mb * input MB) * attempt``, rounded up."""

    def size(wildcards, input, attempt):
        return math.ceil(max(floor, per_mb * input.size_mb) * attempt)

    return size


def _n_obs(path):
    """Number of cells of an .h5ad file (the shape of its X), read without loading it; ``None``
    when it cannot be read (a dry run before the file exists)."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            x = f["X"]
            return int(x.attrs["shape"][0]) if "shape" in x.attrs else int(x.shape[0])
    except (OSError, KeyError):
        return None


def fit_runtime(floor, per_mb_epoch, *, model="mrvi", variant=False):
    """Run time (minutes) of a fit: ``max(floor, per_mb_epoch x input MB x max_epochs)``, times
    the attempt (`max_epochs` of the entry's `mrvi.train`, the variant's, or, for `model="scvi"`,
    `baselines.scvi.train`). Training time grows with cells x genes (the preprocessed file's size)
    and epochs: 148 s (MrVI) and 143 s (scVI) per epoch for the published-shape COVID-19 data
    (891 MB, 2 cores; bench/RESULTS.md), i.e. 0.0028 min per MB and epoch; the factor given is
    about twice that."""

    def size(wildcards, input, attempt):
        spec = SPECS[wildcards.dataset]
        name = getattr(wildcards, "variant", None) if variant else None
        if name in spec.mrvi_variants:
            spec = spec.with_mrvi_variant(name)
        fit = spec.baselines.scvi if model == "scvi" else spec.mrvi
        epochs = fit.train.max_epochs
        if (
            epochs is None
        ):  # the reference's heuristic, from the number of cells (400 at most)
            n_obs = _n_obs(input[0]) if len(input) else None
            epochs = 400 if n_obs is None else fit.train.epochs_for(n_obs)
        return math.ceil(max(floor, per_mb_epoch * input.size_mb * epochs) * attempt)

    return size


def simulated_mem_mb(wildcards, attempt):
    """Memory of `simulate_base`: 1.5 GB of process plus about 10 bytes per simulated count
    (sparse chunks, then one stacked copy), at least 4,000 MB; times the attempt."""
    source = DATASETS[wildcards.dataset]["source"]
    counts = source.get("n_cells", 10_000) * source.get("n_genes", 2_000)
    return math.ceil(max(4000, 1500 + 10 * counts / 1e6) * attempt)


def simulated_runtime(wildcards, attempt):
    """Run time (minutes) of `simulate_base`: about 1 minute per 10^8 counts, at least 30."""
    source = DATASETS[wildcards.dataset]["source"]
    counts = source.get("n_cells", 10_000) * source.get("n_genes", 2_000)
    return math.ceil(max(30, counts / 1e8) * attempt)


# Throughput of MrVI's DE on 2 cores (bench/RESULTS.md), in cells x samples x draws per minute,
# half the measured: with per-gene LFCs of 10,000 genes 33,500/s (COVID-19 myeloid comparison,
# 55 samples) and 54,800/s (IBD stromal comparison, 225 samples); effect sizes only 171,000/s
# (IBD, all 720,633 cells). Admissibility scores (threshold cells + analysed cells) x reference
# cells pairs: 2.2e8/s measured (IBD), counted here at half.
DE_WORK_PER_MINUTE = {True: 1.0e6, False: 5.1e6}
ADMISSIBILITY_PAIRS_PER_MINUTE = 6.6e9


def de_runtime(floor, per_mb, *, comparison=False):
    """Run time (minutes) of a DE rule, times the attempt: the larger of `grow(floor, per_mb)`
    and its work, cells x samples x draws over the throughput above plus the admissibility
    scores of a comparison that asks for them. The work is read from the preprocessed file's obs
    (`de_workload`) once it exists; before (a dry run) the size-based figure alone."""

    def size(wildcards, input, attempt):
        by_size = max(floor, per_mb * input.size_mb)
        h5ad = getattr(input, "h5ad", None)
        if h5ad is None or not os.path.exists(h5ad):
            return math.ceil(by_size * attempt)
        from mrvi_repro.pipeline.workload import de_workload

        spec = SPECS[wildcards.dataset]
        name = wildcards.comparison if comparison else None
        work = de_workload(h5ad, spec, name)
        lfc = True if comparison else spec.analysis.de.lfc
        units = work["cells"] * work["samples"] * work["draws"]
        minutes = units / DE_WORK_PER_MINUTE[lfc]
        if comparison and spec.comparisons.de_named(name).admissibility:
            n_obs = _n_obs(h5ad) or work["cells"]
            refs = min(n_obs, 5000 * work["samples"])
            pairs = (min(refs, 50_000) + work["cells"]) * refs
            minutes += pairs / ADMISSIBILITY_PAIRS_PER_MINUTE
        return math.ceil(max(by_size, minutes) * attempt)

    return size
