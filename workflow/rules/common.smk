# All workflow Python lives here: config validation, dataset entries, wildcard constraints and the
# get_*() input/param functions. Rule files hold rules only.

import re
from pathlib import Path

import yaml
from snakemake.exceptions import WorkflowError

from mrvi_repro.baselines import REPRESENTATION_KEYS
from mrvi_repro.data import (
    DOWNLOAD_DEFAULTS,
    DatasetSpec,
    RegistryError,
    SpecError,
    check_schema,
    load_registry,
)
from mrvi_repro.plotting import FIG2_PANELS

SCHEMAS = Path(workflow.basedir) / "workflow" / "schemas"

try:
    check_schema(config, SCHEMAS / "config.schema.yaml", where="config")
except SpecError as err:
    raise WorkflowError(str(err)) from None


def resolve_path(path):
    """A config path: absolute, or relative to the working directory, else to the Snakefile's folder."""
    p = Path(path)
    if p.is_absolute() or p.exists():
        return p
    alt = Path(workflow.basedir) / p
    return alt if alt.exists() else p


def load_dataset_entry(path):
    """Read, schema-validate and parse one dataset entry: (name, entry, DatasetSpec); relative
    paths of local files are resolved."""
    name = Path(path).stem
    file = resolve_path(path)
    if not file.exists():
        raise WorkflowError(f"dataset {name!r}: entry file {path!r} not found")
    entry = yaml.safe_load(file.read_text())
    try:
        check_schema(
            entry, SCHEMAS / "dataset.schema.yaml", where=f"dataset entry {str(file)!r}"
        )
        for section in ("source", "sample_metadata"):
            if (entry.get(section) or {}).get("path") is not None:
                entry[section]["path"] = str(
                    resolve_path(entry[section]["path"]).resolve()
                )
        spec = DatasetSpec.from_dict(name, entry)
    except SpecError as err:
        raise WorkflowError(str(err)) from None
    return name, entry, spec


def load_datasets(paths):
    """Dataset name (entry file stem) -> entry, and -> its parsed DatasetSpec; two entries with
    one name are refused."""
    datasets, specs = {}, {}
    for path in paths:
        name, entry, spec = load_dataset_entry(path)
        if name in datasets:
            raise WorkflowError(
                f"two dataset entry files are named {name!r}: names must be unique"
            )
        datasets[name], specs[name] = entry, spec
    return datasets, specs


DATASETS, SPECS = load_datasets(config["datasets"])

#: The download registry (config/downloads.yaml or config["downloads"]["registry"]): files from
#: outside the workflow, fetched by rule `download` into resources/.
DOWNLOADS = {**DOWNLOAD_DEFAULTS, **config.get("downloads", {})}
try:
    REGISTRY = load_registry(resolve_path(DOWNLOADS["registry"]))
except (OSError, RegistryError) as err:
    raise WorkflowError(f"download registry: {err}") from None


def check_resources(specs, registry):
    """Refuse a dataset that names a file (source, recipe or sample table) that is not in the
    download registry."""
    for name, spec in specs.items():
        for resource in spec.resources():
            if resource not in registry:
                raise WorkflowError(
                    f"dataset {name!r}: resource {resource!r} is not a key of the download "
                    f"registry {str(DOWNLOADS['registry'])!r} (keys: {sorted(registry)})"
                )


check_resources(SPECS, REGISTRY)

SIMULATED = [n for n, e in DATASETS.items() if e["source"]["kind"] == "simulate"]
#: Shared sci-Plex screen steps (rule sciplex_screen): key -> settings, and each sci-Plex
#: dataset's key. Cell-line entries with equal screen settings share one run.
SCIPLEX_SCREENS, SCIPLEX_SCREEN_OF = {}, {}
for _name, _spec in SPECS.items():
    _screen = _spec.sciplex_screen()
    if _screen is not None:
        SCIPLEX_SCREENS[_screen.key()] = _screen
        SCIPLEX_SCREEN_OF[_name] = _screen.key()
#: Datasets built by the semi-synthetic construction: scored against their planted truth (Fig. 2).
SEMISYNTHETIC = [n for n, e in DATASETS.items() if e.get("semisynthetic") is not None]


wildcard_constraints:
    dataset="|".join(DATASETS),
    rep="|".join(REPRESENTATION_KEYS),
    screen="|".join(SCIPLEX_SCREENS) or "^$",


#: Sections of a dataset entry that say how models, analyses and baselines run, not what the data is.
MODEL_SECTIONS = ("mrvi", "baselines", "analysis")


def get_data_entry(wildcards):
    """The dataset entry without its model sections: params of the data rules, so that changing
    how a model, an analysis or a baseline runs does not rerun the simulation and the preprocessing.
    """
    entry = DATASETS[wildcards.dataset]
    return {k: v for k, v in entry.items() if k not in MODEL_SECTIONS}


def get_mrvi_entry(wildcards):
    """Params of the MrVI rules: the data entry and its `mrvi` section, so that changing an
    analysis or a baseline setting does not refit MrVI."""
    entry = DATASETS[wildcards.dataset]
    return {
        **get_data_entry(wildcards),
        **{k: entry[k] for k in ("mrvi",) if k in entry},
    }


def analysis_entry(*sections):
    """Param function of an analysis rule: the MrVI entry with the named parts of its `analysis`
    section, so that a rule reruns only when what it uses changes."""

    def get(wildcards):
        analysis = DATASETS[wildcards.dataset].get("analysis") or {}
        chosen = {k: v for k, v in analysis.items() if k in sections}
        return {**get_mrvi_entry(wildcards), "analysis": chosen}

    return get


def baselines_entry(*sections):
    """Param function of a baseline rule: the dataset entry without its model sections but with
    the named keys of its `baselines` section, so that a rule reruns only when what it uses
    changes (omitted keys take their defaults when the entry is parsed).
    """

    def get(wildcards):
        baselines = DATASETS[wildcards.dataset].get("baselines") or {}
        chosen = {k: v for k, v in baselines.items() if k in sections}
        return {**get_data_entry(wildcards), "baselines": chosen}

    return get


def resource_path(key):
    """Where rule download puts a registry resource."""
    return f"resources/{key}"


def source_files(source):
    """Files of a (parsed) dataset source other than a simulated base."""
    if getattr(source, "path", None) is not None:
        return source.path
    if hasattr(source, "bundles"):
        return [resource_path(k) for k in source.resources()]
    return resource_path(source.resource)


def get_dataset_inputs(wildcards):
    """Inputs of rule preprocess_dataset: `source` (the simulated base, the downloaded or local
    file, the bundles, or for a sci-Plex cell line the shared screen), plus the recipe's
    cell-cycle genes and the sample metadata table when the entry reads them."""
    name = wildcards.dataset
    spec = SPECS[name]
    inputs = {}
    if name in SIMULATED:
        inputs["source"] = f"results/{name}/raw/base.h5ad"
    elif name in SCIPLEX_SCREEN_OF:
        inputs["source"] = (
            f"results/_shared/sciplex_screen/{SCIPLEX_SCREEN_OF[name]}/screen.h5ad"
        )
        inputs["cell_cycle_genes"] = resource_path(spec.recipe.cell_cycle_genes)
    else:
        inputs["source"] = source_files(spec.source)
    if spec.sample_metadata is not None:
        table = spec.sample_metadata
        inputs["sample_metadata"] = (
            table.path if table.path is not None else resource_path(table.resource)
        )
    return inputs


def get_screen_inputs(wildcards):
    """Inputs of rule sciplex_screen: the published sci-Plex file and Table S3."""
    screen = SCIPLEX_SCREENS[wildcards.screen]
    return {
        "source": source_files(screen.source),
        "plate_table": resource_path(screen.plate_table),
    }


def get_metric_records(wildcards):
    """Inputs of `metrics_summary`: the records of every metric rule that applies to the dataset."""
    files = ["integration.tsv"]
    if wildcards.dataset in SEMISYNTHETIC:
        files = ["da.tsv", "de.tsv", "tree.tsv", *files]
    return [f"results/{wildcards.dataset}/metrics/{f}" for f in files]


#: Rules with a benchmark file per dataset (path under benchmarks/, without .tsv), as they run
#: for every dataset; semi-synthetic datasets add SEMISYNTHETIC_BENCHMARKS.
BENCHMARKS = (
    "preprocess_dataset",
    "fit_mrvi",
    "latent_mrvi",
    "sample_distances",
    "differential_abundance",
    "differential_expression",
    "stratify_cells",
    "fit_scvi",
    "representations",
    *(f"composition_distances/{rep}" for rep in REPRESENTATION_KEYS),
    "deseq2_pseudobulk",
    "milo",
    "milode",
    "integration_metrics",
    "embeddings_2d",
)
SEMISYNTHETIC_BENCHMARKS = ("da_metrics", "de_metrics", "tree_metrics", "fig2_panels")


def get_benchmark_files(wildcards):
    """Inputs of `runtime_figure`: the benchmark files of the dataset's rules."""
    names = list(BENCHMARKS)
    if wildcards.dataset in SIMULATED:
        names.insert(0, "simulate_base")
    if wildcards.dataset in SEMISYNTHETIC:
        names += SEMISYNTHETIC_BENCHMARKS
    return [f"results/{wildcards.dataset}/benchmarks/{n}.tsv" for n in names]


def get_final_outputs():
    """Targets of `rule all`: every stage's final files for every dataset."""
    files = (
        "data/preprocessed.h5ad",
        "data/samples.tsv",
        "model/mrvi_history.tsv",
        "model/mrvi_latent.h5ad",
        "analysis/sample_distances.nc",
        "analysis/da.nc",
        "analysis/de.nc",
        "analysis/stratification.nc",
        "model/scvi_history.tsv",
        "baselines/representations.h5ad",
        *(f"baselines/composition_{rep}.nc" for rep in REPRESENTATION_KEYS),
        "baselines/deseq2.tsv",
        "baselines/milo.nc",
        "baselines/milode.nc",
        "baselines/milode.tsv",
        "metrics/summary.tsv",
        "figures/summary_metrics.png",
        "figures/integration_metrics.png",
        "figures/runtime.png",
    )
    out = [f"results/{name}/{f}" for name in DATASETS for f in files]
    out += [
        f"results/{name}/figures/{p}.png" for name in SEMISYNTHETIC for p in FIG2_PANELS
    ]
    return out
