# All workflow Python lives here: config validation, dataset entries, wildcard constraints and the
# get_*() input/param functions. Rule files hold rules only.

from pathlib import Path

import yaml
from snakemake.exceptions import WorkflowError

from mrvi_repro.data import DatasetSpec, SpecError, check_schema

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
    """Read, schema-validate and parse one dataset entry; relative source paths are resolved."""
    name = Path(path).stem
    file = resolve_path(path)
    if not file.exists():
        raise WorkflowError(f"dataset {name!r}: entry file {path!r} not found")
    entry = yaml.safe_load(file.read_text())
    try:
        check_schema(
            entry, SCHEMAS / "dataset.schema.yaml", where=f"dataset entry {str(file)!r}"
        )
        DatasetSpec.from_dict(name, entry)
    except SpecError as err:
        raise WorkflowError(str(err)) from None
    if entry["source"]["kind"] == "h5ad":
        entry["source"]["path"] = str(resolve_path(entry["source"]["path"]).resolve())
    return name, entry


def load_datasets(paths):
    """Dataset name (entry file stem) -> entry, refusing two entries with one name."""
    datasets = {}
    for path in paths:
        name, entry = load_dataset_entry(path)
        if name in datasets:
            raise WorkflowError(
                f"two dataset entry files are named {name!r}: names must be unique"
            )
        datasets[name] = entry
    return datasets


DATASETS = load_datasets(config["datasets"])
SIMULATED = [n for n, e in DATASETS.items() if e["source"]["kind"] == "simulate"]


wildcard_constraints:
    dataset="|".join(DATASETS),


def get_dataset_entry(wildcards):
    """The parsed-ready dataset entry (a plain dict) of a {dataset}."""
    return DATASETS[wildcards.dataset]


def get_data_entry(wildcards):
    """The dataset entry without its model sections: params of the data rules, so that changing
    how a model is fitted does not rerun the simulation and the preprocessing."""
    return {k: v for k, v in DATASETS[wildcards.dataset].items() if k != "mrvi"}


def get_base_input(wildcards):
    """Raw counts of a dataset: the simulated base, or the user's .h5ad."""
    source = DATASETS[wildcards.dataset]["source"]
    if source["kind"] == "simulate":
        return f"results/{wildcards.dataset}/raw/base.h5ad"
    return source["path"]


def get_analysis_params(wildcards):
    """What the analyses of a dataset use from its entry: the label key and sample covariates."""
    entry = DATASETS[wildcards.dataset]
    return {
        "groupby": entry.get("labels_key"),
        "covariates": list(entry.get("sample_covariates", [])),
    }


def get_final_outputs():
    """Targets of `rule all`: every stage's final files for every dataset."""
    files = (
        "data/preprocessed.h5ad",
        "data/samples.tsv",
        "model/mrvi_history.tsv",
        "model/mrvi_latent.h5ad",
        "analysis/sample_distances.nc",
        "analysis/da.nc",
    )
    return [f"results/{name}/{f}" for name in DATASETS for f in files]
