# All workflow Python lives here: config validation, dataset entries, wildcard constraints and the
# get_*() input/param functions. Rule files hold rules only.
#
# Only light modules are imported at load time (the dataset entry, the download registry and the
# shared names: standard library, PyYAML and jsonschema), so `snakemake -n` never imports JAX,
# scanpy or plotnine; each job's adapter imports the stages it runs.

import os
import re
from pathlib import Path

import yaml
from snakemake.exceptions import WorkflowError

from mrvi_repro._jax_cache import CACHE_ENV as JAX_CACHE_ENV
from mrvi_repro.data.download import DOWNLOAD_DEFAULTS, RegistryError, load_registry
from mrvi_repro.pipeline import DatasetSpec, SpecError, check_schema, merge_entry
from mrvi_repro.settings.names import (
    FIG2_PANELS,
    FIG3_PANELS,
    FIG4_PANELS,
    FIG5_PANELS,
    REPRESENTATION_KEYS,
)

SCHEMAS = Path(workflow.basedir) / "workflow" / "schemas"

# Jobs import the package from this repository's src/ (a job in a conda environment of envs/ has
# no install of it; run with --conda-not-block-search-path-envvars so that conda keeps this).
# PYTHONPATH is set here, not required from the user, hence no `envvars:`.
_SRC = str(Path(workflow.basedir) / "src")
_PATHS = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
if _SRC not in _PATHS:
    os.environ.update(PYTHONPATH=os.pathsep.join([_SRC, *_PATHS]))

#: conda environments of the rules (paths relative to the rule files).
CONDA_ENV = "../../envs/mrvi-repro.yaml"
DOWNLOAD_ENV = "../../envs/download.yaml"

try:
    check_schema(config, SCHEMAS / "config.schema.yaml", where="config")
except SpecError as err:
    raise WorkflowError(str(err)) from None

#: The jobs' persistent XLA compilation cache (config `jax_cache`, mrvi_repro._jax_cache): passed
#: to every job in the environment; a cache the user named there already is kept.
_JAX_CACHE = config.get("jax_cache", ".jax_cache")
if _JAX_CACHE is not None and not os.environ.get(JAX_CACHE_ENV):
    os.environ.update({JAX_CACHE_ENV: str(Path(_JAX_CACHE).absolute())})


def resolve_path(path):
    """A config path: absolute, or relative to the working directory, else to the Snakefile's folder."""
    p = Path(path)
    if p.is_absolute() or p.exists():
        return p
    alt = Path(workflow.basedir) / p
    return alt if alt.exists() else p


#: Stand-in mode (config `standins`, e.g. config/standins.yaml): every file the entries read is
#: written by a stand-in writer (rules standin_<writer>, workflow/rules/standins.smk) under
#: resources/standins/ instead of downloaded; each entry gets the config's overrides for it and
#: its dataset name a suffix, so its results never mix with a real run's.
STANDINS = (
    {
        "seed": 0,
        "suffix": "_standin",
        "sizes": {},
        "overrides": {},
        **config["standins"],
    }
    if config.get("standins") is not None
    else None
)


def load_dataset_entry(path):
    """Read, schema-validate and parse one dataset entry: (name, entry, DatasetSpec); relative
    paths of local files are resolved. In stand-in mode the entry gets its overrides first.
    """
    stem = Path(path).stem
    name = stem + STANDINS["suffix"] if STANDINS else stem
    file = resolve_path(path)
    if not file.exists():
        raise WorkflowError(f"dataset {name!r}: entry file {path!r} not found")
    entry = yaml.safe_load(file.read_text())
    if STANDINS:
        entry = merge_entry(entry, STANDINS["overrides"].get(stem) or {})
        entry["description"] = (
            f"STAND-IN (synthetic data) of: {entry.get('description', stem)}"
        )
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
#: Shared sci-Plex screen steps (`sciplex_screen`): key -> settings, and each sci-Plex
#: dataset's key. Cell-line entries with equal screen settings share one run.
SCIPLEX_SCREENS, SCIPLEX_SCREEN_OF = {}, {}
for _name, _spec in SPECS.items():
    _screen = _spec.sciplex_screen()
    if _screen is not None:
        SCIPLEX_SCREENS[_screen.key()] = _screen
        SCIPLEX_SCREEN_OF[_name] = _screen.key()
#: Datasets built by the semi-synthetic construction: scored against their planted truth (Fig. 2).
SEMISYNTHETIC = [n for n, e in DATASETS.items() if e.get("semisynthetic") is not None]
#: Datasets whose entry asks for the cohort figure (`figures: [fig3]`).
FIG3 = [n for n, spec in SPECS.items() if "fig3" in spec.figures.names]
#: Datasets whose entry asks for the perturbation-screen figure (`figures: {fig4: ...}`).
FIG4 = [n for n, spec in SPECS.items() if "fig4" in spec.figures.names]
#: Datasets whose entry asks for the disease-behaviour figure (`figures: {fig5: ...}`).
FIG5 = [n for n, spec in SPECS.items() if "fig5" in spec.figures.names]
_both = sorted(n for n, spec in SPECS.items() if len(spec.figures.names) > 1)
if _both:
    raise WorkflowError(
        f"datasets {_both} ask for more than one of fig3, fig4 and fig5: an entry asks for one "
        "of them (each writes its metrics/claims.tsv)"
    )


wildcard_constraints:
    dataset="|".join(DATASETS),
    rep="|".join(REPRESENTATION_KEYS),
    screen="|".join(SCIPLEX_SCREENS) or "^$",


#: Report labels of the Fig. 2 panels that fig2_panels writes: the report lists a dataset's
#: panels by these, in the panel order of the paper, instead of by file name.
FIG2_REPORT_LABELS = {
    "fig2b_subset": ("2b.1", "u and z by cell subset"),
    "fig2b_covariate_1": ("2b.2", "u and z by covariate 1"),
    "fig2c_distances_A": ("2c.1", "sample distances, subset A"),
    "fig2c_distances_B": ("2c.2", "sample distances, subset B"),
    "fig2d_da": ("2d", "DA log ratio on u"),
    "fig2e_pr_curves": ("2e", "PR curves of DA cells"),
    "fig2f_beta_norm": ("2f", "DE effect size on u"),
    "fig2g_lfc_scatter": ("2g", "LFCs vs DESeq2 pseudobulk"),
    "supp1d_da_by_subset": ("Supp. 1d", "DA log ratio per subset"),
}
if set(FIG2_REPORT_LABELS) != set(FIG2_PANELS):
    raise WorkflowError("FIG2_REPORT_LABELS must label every panel of FIG2_PANELS")


#: Report labels of the cohort figure's panels (rule fig3_panels), in the paper's order.
FIG3_REPORT_LABELS = {
    "fig3a_cell_type": ("3a", "u and z by cell type"),
    "fig3b_condition": ("3b", "u and z by condition"),
    "fig3c_sankey": ("3c", "cell types -> stratification clusters"),
    "fig3d_distances": ("3d", "donor-group cluster's sample distances"),
    "supp3_distances_other": ("3d (Supp. 3)", "other clusters' sample distances"),
    "ed1_onset": ("ED 1", "onset of the two case groups"),
    "fig3e_da": ("3e", "DA on u"),
    "supp4_da_by_label": ("3e (Supp. 4)", "DA per cell type"),
    "fig3f_modules": ("3f.1", "DE modules on u"),
}
if set(FIG3_REPORT_LABELS) != set(FIG3_PANELS):
    raise WorkflowError("FIG3_REPORT_LABELS must label every panel of FIG3_PANELS")

#: Report labels of the screen figure's panels (rule fig4_panels), in the paper's order.
FIG4_REPORT_LABELS = {
    "fig4a_pathway": ("4a", "u and z by drug pathway"),
    "fig4b_phase": ("4b", "u and z by cell-cycle phase"),
    "fig4c_distance_pca": ("4c", "PCA of the cells' distance matrices"),
    "fig4d_metrics": ("4d", "agreement with prior knowledge"),
    "fig4e_top_distances": ("4e", "retained samples' distances and clusters"),
    "fig4f_enrichment": ("4f", "gene-set enrichment per cluster"),
    "ed2_all_distances": ("ED 2", "all samples' distances"),
}
if set(FIG4_REPORT_LABELS) != set(FIG4_PANELS):
    raise WorkflowError("FIG4_REPORT_LABELS must label every panel of FIG4_PANELS")

#: Report labels of the disease-behaviour figure's panels (rule fig5_panels), in the paper's order.
FIG5_REPORT_LABELS = {
    "fig5a_coarse": ("5a.1", "u by coarse label"),
    "fig5a_collection": ("5a.2", "u by tissue-collection method"),
    "fig5a_effect_sizes": ("5a.3", "per-cell effect sizes"),
    "fig5b_labels": ("5b", "analysed cells by fine label"),
    "fig5c_da": ("5c", "DA in the analysed cells"),
    "fig5d_expression": ("5d", "expression of one gene"),
    "fig5e_lfc_violins": ("5e", "LFC violins per cell type"),
    "fig5f_lfc_umaps": ("5f", "per-cell LFCs of two genes"),
    "ed6a_labels_behaviour": ("ED 6a", "u by fine label and behaviour"),
    "ed6b_subset_behaviour": ("ED 6b", "analysed cells by behaviour"),
    "ed6c_subset_effect": ("ED 6c", "analysed cells' behaviour effect size"),
    "ed6d_markers": ("ED 6d", "marker expression"),
    "ed6e_more_lfcs": ("ED 6e", "more per-cell LFCs"),
    "ed7a_focus_expression": ("ED 7a", "expression in the focus cell type"),
    "ed7b_subcluster_markers": ("ED 7b", "marker genes of the subclusters"),
    "ed7c_da_violins": ("ED 7c", "DA per cell type with the cluster test"),
}
if set(FIG5_REPORT_LABELS) != set(FIG5_PANELS):
    raise WorkflowError("FIG5_REPORT_LABELS must label every panel of FIG5_PANELS")


def report_labels(panel, content):
    """Labels of a report item: its panel (the sort key in the report) and what it shows."""
    return {"panel": panel, "content": content}


#: Sections of a dataset entry that say how models, analyses and baselines run, not what the data is.
MODEL_SECTIONS = (
    "mrvi",
    "mrvi_variants",
    "baselines",
    "analysis",
    "comparisons",
    "figures",
)


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


def get_variant_entry(wildcards):
    """Params of the MrVI variant rules: the MrVI entry and the one variant's overrides."""
    variants = DATASETS[wildcards.dataset].get("mrvi_variants") or {}
    return {
        **get_mrvi_entry(wildcards),
        "mrvi_variants": {wildcards.variant: variants[wildcards.variant]},
    }


def variant_names(wildcards):
    """The dataset's MrVI variants, in entry order."""
    return list(SPECS[wildcards.dataset].mrvi_variants)


def get_variant_latents(wildcards):
    """Inputs of `integration_metrics`: the latent files of the dataset's MrVI variants."""
    return [
        rules.latent_mrvi_variant.output[0].format(dataset=wildcards.dataset, variant=v)
        for v in variant_names(wildcards)
    ]


def analysis_entry(*sections):
    """Param function of an analysis rule: the MrVI entry with the named parts of its `analysis`
    section, so that a rule reruns only when what it uses changes."""

    def get(wildcards):
        analysis = DATASETS[wildcards.dataset].get("analysis") or {}
        chosen = {k: v for k, v in analysis.items() if k in sections}
        return {**get_mrvi_entry(wildcards), "analysis": chosen}

    return get


def comparisons_entry(wildcards):
    """Params of the comparison rules: the MrVI entry and its `comparisons` section."""
    entry = DATASETS[wildcards.dataset]
    return {**get_mrvi_entry(wildcards), "comparisons": entry.get("comparisons") or {}}


def _comparison_inputs(kind):
    """Input function of the `<kind>_comparison` rules. What a named comparison reads besides the model
    and the data (derived sample groups, the stratification, a gene-set resource)."""

    def get(wildcards):
        spec = SPECS[wildcards.dataset].comparisons
        comparison = (
            spec.de_named(wildcards.comparison)
            if kind == "de"
            else spec.da_named(wildcards.comparison)
        )
        inputs = {}
        if spec.needs_sample_groups(comparison):
            inputs["groups"] = rules.sample_groups.output.groups.format(**wildcards)
        if "cluster_of" in comparison.cells:
            inputs["stratification"] = rules.stratify_cells.output[0].format(
                **wildcards
            )
        if getattr(comparison, "gsea", None) is not None:
            inputs["gene_sets"] = resource_path(comparison.gsea.gene_sets)
        return inputs

    return get


de_comparison_inputs = _comparison_inputs("de")
da_comparison_inputs = _comparison_inputs("da")


def comparison_outputs(name):
    """The outputs of dataset `name`'s MrVI variants, named comparisons and sample groups."""
    spec = SPECS[name].comparisons
    files = []
    for made_by in (rules.fit_mrvi_variant, rules.latent_mrvi_variant):
        for variant in SPECS[name].mrvi_variants:
            files += expand(list(made_by.output), dataset=name, variant=variant)
    if spec.sample_groups:
        files += expand(list(rules.sample_groups.output), dataset=name)
    for kind, made_by in (("de", rules.de_comparison), ("da", rules.da_comparison)):
        for item in getattr(spec, kind):
            files += expand(list(made_by.output), dataset=name, comparison=item.name)
    return files


def comparison_benchmarks(name):
    """The benchmark files of dataset `name`'s MrVI variant and comparison rules."""
    spec = SPECS[name].comparisons
    files = []
    for made_by in (rules.fit_mrvi_variant, rules.latent_mrvi_variant):
        for variant in SPECS[name].mrvi_variants:
            files += expand(made_by.benchmark, dataset=name, variant=variant)
    if spec.sample_groups:
        files += expand(rules.sample_groups.benchmark, dataset=name)
    for kind, made_by in (("de", rules.de_comparison), ("da", rules.da_comparison)):
        for item in getattr(spec, kind):
            files += expand(made_by.benchmark, dataset=name, comparison=item.name)
    return files


def figures_entry(wildcards):
    """Params of the figure rules: the comparisons' params and the `figures` section."""
    entry = DATASETS[wildcards.dataset]
    return {**comparisons_entry(wildcards), "figures": entry.get("figures")}


def fig5_entry(wildcards):
    """Params of the fig5 rules: the figure rules' params and `analysis.de` (its contrasts are
    the effect sizes of panel a)."""
    analysis = DATASETS[wildcards.dataset].get("analysis") or {}
    de = {"de": analysis["de"]} if "de" in analysis else {}
    return {**figures_entry(wildcards), "analysis": de}


def fig3_inputs(wildcards):
    """Inputs of `fig3_panels` and `cohort_claims`: the outputs the cohort figure reads."""
    name = wildcards.dataset
    fig = fig_settings(wildcards, "fig3")

    def one(pattern, **more):
        return expand(pattern, dataset=name, **more)[0]

    return {
        "h5ad": one(rules.preprocess_dataset.output.h5ad),
        "stratification": one(rules.stratify_cells.output[0]),
        "sample_groups": one(rules.sample_groups.output.groups),
        "da": [one(rules.da_comparison.output.da, comparison=c) for c in fig.da],
        "da_tests": [
            one(rules.da_comparison.output.test, comparison=c) for c in fig.da
        ],
        "de": one(rules.de_comparison.output.de, comparison=fig.de),
        "modules": one(rules.de_comparison.output.modules, comparison=fig.de),
        "integration": one(rules.integration_metrics.output[0]),
    }


def fig3_outputs(name):
    """The files of dataset `name`'s cohort figure: panels, module table, claims, Supp. Fig. 2."""
    return [
        *expand(list(rules.fig3_panels.output), dataset=name),
        *expand(rules.cohort_claims.output, dataset=name),
        *expand(rules.metric_figures.output.integration, dataset=name),
    ]


def fig_settings(wildcards, name):
    """The `figures.<name>` settings of a dataset (a WorkflowError when it does not ask)."""
    try:
        return SPECS[wildcards.dataset].figures.require(name, wildcards.dataset)
    except ValueError as err:
        raise WorkflowError(str(err)) from err


def cmap_inputs(wildcards):
    """Inputs of `cmap_clusters`: the cell line's iLINCS signature and metadata exports."""
    cmap = fig_settings(wildcards, "fig4").cmap
    if cmap is None:
        raise WorkflowError(
            f"dataset {wildcards.dataset!r}: figures.fig4 has no cmap files"
        )
    return {
        "signatures": [resource_path(k) for k in cmap.signatures],
        "metadata": [resource_path(k) for k in cmap.metadata],
    }


def screen_gene_sets(wildcards):
    """The GMT of `figures.fig4.gene_sets` (none when not set)."""
    key = fig_settings(wildcards, "fig4").gene_sets
    return {"gene_sets": resource_path(key)} if key is not None else {}


def screen_metric_inputs(wildcards):
    """Inputs of `screen_metrics`: the CMap clusters when the entry has CMap data."""
    if fig_settings(wildcards, "fig4").cmap is None:
        return {}
    return {"cmap": expand(rules.cmap_clusters.output.clusters, **wildcards)[0]}


def fig4_outputs(name):
    """The files of dataset `name`'s screen figure: panels and claims."""
    return [
        *expand(list(rules.fig4_panels.output), dataset=name),
        *expand(rules.screen_claims.output, dataset=name),
    ]


def fig5_inputs(wildcards):
    """Inputs of `fig5_panels` and `stenosis_claims`: the outputs the figure reads."""
    name = wildcards.dataset
    fig = fig_settings(wildcards, "fig5")

    def one(pattern, **more):
        return expand(pattern, dataset=name, **more)[0]

    return {
        "h5ad": one(rules.preprocess_dataset.output.h5ad),
        "effects": one(rules.differential_expression.output[0]),
        "de": one(rules.de_comparison.output.de, comparison=fig.de),
        "lfc": one(rules.de_comparison.output.lfc, comparison=fig.de),
        "da": one(rules.da_comparison.output.da, comparison=fig.da),
        "da_test": one(rules.da_comparison.output.test, comparison=fig.da),
    }


def fig5_outputs(name):
    """The files of dataset `name`'s disease-behaviour figure: panels, claims, ED 5."""
    return [
        *expand(list(rules.fig5_panels.output), dataset=name),
        *expand(rules.stenosis_claims.output, dataset=name),
        *expand(rules.metric_figures.output.integration, dataset=name),
    ]


def figure_benchmarks(name):
    """The benchmark files of dataset `name`'s figure rules (cohort or screen figure)."""
    files = []
    if name in FIG3:
        files += expand(
            [rules.fig3_panels.benchmark, rules.cohort_claims.benchmark], dataset=name
        )
    if name in FIG4:
        made_by = [rules.screen_clusters, rules.screen_metrics, rules.fig4_panels]
        made_by += [rules.screen_claims]
        if SPECS[name].figures.fig4.cmap is not None:
            made_by.append(rules.cmap_clusters)
        files += expand([r.benchmark for r in made_by], dataset=name)
    if name in FIG5:
        files += expand(
            [rules.fig5_panels.benchmark, rules.stenosis_claims.benchmark], dataset=name
        )
    return files


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
    """Where a registry resource is put: by `download`, or by its stand-in writer in stand-in mode."""
    if STANDINS:
        return f"resources/standins/{key}"
    return expand(rules.download.output[0], resource=key)[0]


def standin_groups():
    """Stand-in writer -> the registry keys the datasets read that it makes (refusing a key that
    has no stand-in)."""
    from mrvi_repro.testing.standins import standin_writer

    groups = {}
    for name, spec in SPECS.items():
        for key in spec.resources():
            try:
                owner = standin_writer(key)
            except KeyError as err:
                raise WorkflowError(f"dataset {name!r}: {err.args[0]}") from None
            groups.setdefault(owner, [])
            if key not in groups[owner]:
                groups[owner].append(key)
    return groups


def with_rep(pattern, rep):
    """A `{rep}` rule file pattern for one representation (the `{dataset}` wildcard kept)."""
    return expand(pattern, rep=rep, allow_missing=True)[0]


def source_files(source):
    """Files of a (parsed) dataset source other than a simulated base."""
    if getattr(source, "path", None) is not None:
        return source.path
    if hasattr(source, "bundles"):
        return [resource_path(k) for k in source.resources()]
    return resource_path(source.resource)


def get_dataset_inputs(wildcards):
    """Inputs of `preprocess_dataset`: `source` (the simulated base, the downloaded or local
    file, the bundles, or for a sci-Plex cell line the shared screen), plus the recipe's
    cell-cycle genes and the sample metadata table when the entry reads them."""
    name = wildcards.dataset
    spec = SPECS[name]
    inputs = {}
    if name in SIMULATED:
        inputs["source"] = expand(rules.simulate_base.output[0], dataset=name)[0]
    elif name in SCIPLEX_SCREEN_OF:
        inputs["source"] = expand(
            rules.sciplex_screen.output[0], screen=SCIPLEX_SCREEN_OF[name]
        )[0]
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
    """Inputs of `sciplex_screen`: the published sci-Plex file and Table S3."""
    screen = SCIPLEX_SCREENS[wildcards.screen]
    return {
        "source": source_files(screen.source),
        "plate_table": resource_path(screen.plate_table),
    }


def get_metric_records(wildcards):
    """Inputs of `metrics_summary`: the records of every metric rule that applies to the dataset."""
    records = [rules.integration_metrics.output[0]]
    if wildcards.dataset in SEMISYNTHETIC:
        records = [
            rules.da_metrics.output.records,
            rules.de_metrics.output.records,
            rules.tree_metrics.output.records,
            *records,
        ]
    return expand(records, dataset=wildcards.dataset)


def get_seed(wildcards):
    """The dataset's MrVI seed (param of rules that need only a seed, e.g. the 2-D embeddings)."""
    return SPECS[wildcards.dataset].mrvi.seed


def get_screen_settings(wildcards):
    """Param of `sciplex_screen`: the shared screen's settings as plain data."""
    return SCIPLEX_SCREENS[wildcards.screen].to_dict()


def get_registry_entry(wildcards):
    """Param of `download`: the registry entry of the resource as plain data."""
    return REGISTRY[wildcards.resource].to_dict()


def dataset_rules(name):
    """The rules that run once for dataset `name`, in the order of the run-time figure.

    The one list of the per-dataset rules: the final targets are their outputs
    (`get_final_outputs`) and the run-time figure reads their benchmark files
    (`get_benchmark_files`).
    """
    names = [
        *(["simulate_base"] if name in SIMULATED else []),
        "preprocess_dataset",
        "fit_mrvi",
        "latent_mrvi",
        "sample_distances",
        "differential_abundance",
        "differential_expression",
        "stratify_cells",
        "fit_scvi",
        "representations",
        "composition_distances",
        "deseq2_pseudobulk",
        "milo",
        "milode",
        "integration_metrics",
        "embeddings_2d",
        *(
            ["da_metrics", "de_metrics", "tree_metrics", "fig2_panels"]
            if name in SEMISYNTHETIC
            else []
        ),
        "metrics_summary",
        "metric_figures",
        "runtime_figure",
    ]
    return [getattr(rules, r) for r in names]


def _expand(patterns, name):
    """Expand rule file patterns for one dataset (and every representation), in order."""
    files = expand(list(patterns), dataset=name, rep=list(REPRESENTATION_KEYS))
    return list(dict.fromkeys(files))


def get_benchmark_files(wildcards):
    """Inputs of `runtime_figure`: the benchmark files of the dataset's rules."""
    name = wildcards.dataset
    return (
        _expand([r.benchmark for r in dataset_rules(name) if r.rule.benchmark], name)
        + comparison_benchmarks(name)
        + figure_benchmarks(name)
    )


def get_final_outputs():
    """Targets of `all`: every output of every dataset's rules."""
    return [
        f
        for name in DATASETS
        for f in _expand([o for r in dataset_rules(name) for o in r.output], name)
        + comparison_outputs(name)
        + (fig3_outputs(name) if name in FIG3 else [])
        + (fig4_outputs(name) if name in FIG4 else [])
        + (fig5_outputs(name) if name in FIG5 else [])
    ]
