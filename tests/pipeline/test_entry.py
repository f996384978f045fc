import dataclasses
from pathlib import Path

import pytest
import yaml

from mrvi_repro.baselines import MiloConfig, MiloDEConfig
from mrvi_repro.model import MrVIConfig, SCVIConfig, TrainConfig
from mrvi_repro.pipeline import (
    AnalysisSpec,
    BaselinesSpec,
    CompositionSpec,
    DASpec,
    DatasetSpec,
    DESeq2Spec,
    DESpec,
    DistancesSpec,
    IntegrationSpec,
    MiloDESpec,
    MiloSpec,
    MrVISpec,
    PCASpec,
    SCVISpec,
    SpecError,
    StratifySpec,
    check_schema,
)
from mrvi_repro.settings.data import (
    CovidRecipe,
    H5adSource,
    HVGParams,
    IbdRecipe,
    SampleMetadataSpec,
    SciplexRecipe,
    ScpBundlesSource,
    SemisyntheticParams,
    SimulationParams,
    SubsetSpec,
    TenxMtxTarSource,
)
from mrvi_repro.settings.figures import CohortClaimsSpec, Fig3Spec, Fig5Spec, StenosisClaimsSpec

MINIMAL = {"source": {"kind": "simulate"}, "sample_key": "sample"}


def schema(repo, name):
    return yaml.safe_load((repo / "workflow" / "schemas" / name).read_text())


def defaults(cls):
    out = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            value = f.default
        elif f.default_factory is not dataclasses.MISSING:
            value = f.default_factory()
        else:
            continue
        out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


# nested sections (checked by their own case); baselines.scvi.train is mrvi.train by $ref
SECTIONS = (
    {"source", "subset", "sample_metadata", "recipe", "hvg", "semisynthetic", "mrvi", "model"}
    | {"train"}
    | {
        "baselines",
        "scvi",
        "pca",
        "composition",
        "deseq2",
        "milo",
        "milode",
        "config",
    }
    | {"analysis", "distances", "da", "de", "stratify", "integration", "comparisons"}
    | {"figures", "compartments", "claims"}
)


# The schema lists every field of these dataclasses (the mrvi section's MrVIConfig and TrainConfig
# included) with its default: a field added, renamed or re-defaulted on one side only fails here.
@pytest.mark.parametrize(
    ("cls", "where"),
    [
        (DatasetSpec, ()),
        (SimulationParams, ("$defs", "simulate_source")),
        (H5adSource, ("$defs", "h5ad_source")),
        (TenxMtxTarSource, ("$defs", "tenx_mtx_tar_source")),
        (ScpBundlesSource, ("$defs", "scp_bundles_source")),
        (SubsetSpec, ("properties", "subset")),
        (SampleMetadataSpec, ("properties", "sample_metadata")),
        (CovidRecipe, ("$defs", "covid_recipe")),
        (Fig3Spec, ("$defs", "fig3")),
        (CohortClaimsSpec, ("$defs", "fig3", "properties", "claims")),
        (Fig5Spec, ("$defs", "fig5")),
        (StenosisClaimsSpec, ("$defs", "fig5", "properties", "claims")),
        (SciplexRecipe, ("$defs", "sciplex_recipe")),
        (IbdRecipe, ("$defs", "ibd_recipe")),
        (HVGParams, ("properties", "hvg")),
        (SemisyntheticParams, ("properties", "semisynthetic")),
        (MrVISpec, ("properties", "mrvi")),
        (MrVIConfig, ("properties", "mrvi", "properties", "model")),
        (TrainConfig, ("properties", "mrvi", "properties", "train")),
        (BaselinesSpec, ("properties", "baselines")),
        (AnalysisSpec, ("properties", "analysis")),
        (DistancesSpec, ("properties", "analysis", "properties", "distances")),
        (DASpec, ("properties", "analysis", "properties", "da")),
        (DESpec, ("properties", "analysis", "properties", "de")),
        (StratifySpec, ("properties", "analysis", "properties", "stratify")),
        (IntegrationSpec, ("properties", "analysis", "properties", "integration")),
        (SCVISpec, ("properties", "baselines", "properties", "scvi")),
        (SCVIConfig, ("properties", "baselines", "properties", "scvi", "properties", "model")),
        (PCASpec, ("properties", "baselines", "properties", "pca")),
        (CompositionSpec, ("properties", "baselines", "properties", "composition")),
        (DESeq2Spec, ("properties", "baselines", "properties", "deseq2")),
        (MiloSpec, ("properties", "baselines", "properties", "milo")),
        (MiloConfig, ("properties", "baselines", "properties", "milo", "properties", "config")),
        (MiloDESpec, ("properties", "baselines", "properties", "milode")),
        (
            MiloDEConfig,
            ("properties", "baselines", "properties", "milode", "properties", "config"),
        ),
    ],
)
def test_schema_and_dataclasses_agree(repo, cls, where):
    node = schema(repo, "dataset.schema.yaml")
    for key in where:
        node = node[key]
    assert node.get("additionalProperties") is False
    props = {k: v for k, v in node["properties"].items() if k != "kind"}
    fields = {f.name for f in dataclasses.fields(cls)} - {"name"}
    assert set(props) == fields
    for name, value in defaults(cls).items():
        if name in SECTIONS:  # nested sections: checked by their own case
            continue
        assert props[name].get("default") == value, name
    for name, prop in props.items():
        assert prop.get("description"), f"{name} has no description"


def test_minimal_entry_gets_defaults():
    spec = DatasetSpec.from_dict("x", MINIMAL)
    assert spec.source == SimulationParams()
    assert spec.hvg == HVGParams() and spec.semisynthetic is None
    assert spec.mrvi == MrVISpec() and spec.mrvi.model == MrVIConfig() and spec.mrvi.seed == 0


def test_mrvi_section_is_parsed():
    entry = {
        **MINIMAL,
        "mrvi": {
            "model": {"n_latent_u": 5, "prior": "isotropic"},
            "train": {"lr": 3e-3},
            "seed": 4,
        },
    }
    spec = DatasetSpec.from_dict("x", entry)
    assert spec.mrvi.model == MrVIConfig(n_latent_u=5, prior="isotropic")
    assert spec.mrvi.train == TrainConfig(lr=3e-3) and spec.mrvi.seed == 4


def test_mrvi_variants_are_the_mrvi_section_with_keys_changed():
    entry = {
        **MINIMAL,
        "labels_key": "cell_type",
        "mrvi": {"model": {"n_latent_u": 5}, "train": {"lr": 3e-3, "max_epochs": 7}, "seed": 4},
        "mrvi_variants": {
            "celltype_prior": {"model": {"prior": "celltype"}},
            "longer": {"train": {"max_epochs": 20}, "seed": 1},
        },
    }
    spec = DatasetSpec.from_dict("x", entry)
    prior = spec.with_mrvi_variant("celltype_prior").mrvi
    assert prior.model == MrVIConfig(n_latent_u=5, prior="celltype")  # nested keys merged
    assert prior.train == spec.mrvi.train and prior.seed == 4
    longer = spec.with_mrvi_variant("longer").mrvi
    assert longer.train == TrainConfig(lr=3e-3, max_epochs=20) and longer.seed == 1
    assert spec.mrvi.model == MrVIConfig(n_latent_u=5)  # the main fit is unchanged
    with pytest.raises(KeyError, match="no MrVI variant 'nope'"):
        spec.with_mrvi_variant("nope")
    del entry["labels_key"]
    with pytest.raises(SpecError, match="mrvi_variants.celltype_prior.model.prior 'celltype'"):
        DatasetSpec.from_dict("x", entry)
    bad = {**MINIMAL, "mrvi_variants": {"v": {"model": {"prior": "flat"}}}}
    with pytest.raises(SpecError, match="mrvi_variants.v.model"):
        DatasetSpec.from_dict("x", bad)


@pytest.mark.parametrize(
    ("entry", "match"),
    [
        ({**MINIMAL, "sampel_key": "s"}, r"dataset 'x': unknown key\(s\) \['sampel_key'\]"),
        (
            {**MINIMAL, "source": {"kind": "simulate", "ncells": 5}},
            r"source: unknown key\(s\) \['ncells'\]",
        ),
        ({**MINIMAL, "semisynthetic": {"rate": 1}}, r"semisynthetic: unknown key\(s\) \['rate'\]"),
        ({"source": {"kind": "simulate"}}, r"missing required key\(s\) \['sample_key'\]"),
        (
            {**MINIMAL, "source": {"kind": "zarr"}},
            r"source.kind must be one of \['simulate', 'h5ad', 'tenx_mtx_tar', 'scp_bundles'\]",
        ),
        (
            {**MINIMAL, "source": {"kind": "tenx_mtx_tar"}},
            r"source: missing required key\(s\) \['resource'\]",
        ),
        (
            {
                **MINIMAL,
                "source": {"kind": "tenx_mtx_tar", "resource": "a.tgz", "matrix_dir": "../x"},
            },
            "matrix_dir must be a relative path inside the archive",
        ),
        ({**MINIMAL, "source": {"kind": "h5ad"}}, "give exactly one of path .* and resource"),
        (
            {**MINIMAL, "source": {"kind": "h5ad", "path": "a.h5ad", "resource": "a.h5ad"}},
            "give exactly one of path",
        ),
        ({**MINIMAL, "recipe": {"kind": "atac"}}, r"recipe.kind must be one of \['covid'"),
        (
            {
                **MINIMAL,
                "recipe": {
                    "kind": "sciplex",
                    "cell_line": "A549",
                    "plate_table": "t.txt",
                    "cell_cycle_genes": "g.txt",
                },
            },
            "recipe 'sciplex' needs an h5ad source",
        ),
        (
            {
                **MINIMAL,
                "source": {"kind": "h5ad", "path": "a.h5ad"},
                "recipe": {
                    "kind": "sciplex",
                    "cell_line": "HeLa",
                    "plate_table": "t.txt",
                    "cell_cycle_genes": "g.txt",
                },
            },
            r"cell_line 'HeLa' is not among cell_lines \['A549', 'K562', 'MCF7'\]",
        ),
        ({**MINIMAL, "subset": {"obs": {"Site": []}}}, "every column needs at least one value"),
        ({**MINIMAL, "sample_metadata": {"join_key": "donor"}}, "give exactly one of path"),
        ({**MINIMAL, "semisynthetic": {"subsample_rates": [1.0]}}, "one per replicate rank"),
        ({**MINIMAL, "mrvi": {"modle": {}}}, r"dataset 'x': mrvi: unknown key\(s\) \['modle'\]"),
        (
            {**MINIMAL, "mrvi": {"model": {"n_latnet": 5}}},
            r"mrvi.model: model config: unknown key\(s\) \['n_latnet'\]",
        ),
        (
            {**MINIMAL, "mrvi": {"train": {"max_epoch": 5}}},
            r"mrvi.train: train config: unknown key\(s\) \['max_epoch'\]",
        ),
        ({**MINIMAL, "mrvi": {"model": {"prior": "gauss"}}}, "mrvi.model: prior must be 'mog'"),
        (
            {**MINIMAL, "mrvi": {"model": {"n_latent": 4, "n_latent_u": 8}}},
            r"mrvi.model: n_latent \(4\) must be >= n_latent_u \(8\)",
        ),
        ({**MINIMAL, "mrvi": {"train": {"train_size": 1.5}}}, "mrvi.train: train_size must lie"),
        ({**MINIMAL, "mrvi": {"seed": "one"}}, "mrvi.seed must be an integer"),
        (
            {**MINIMAL, "mrvi": {"model": {"prior": "celltype"}}},
            "mrvi.model.prior 'celltype' needs a labels_key",
        ),
    ],
)
def test_bad_entries(entry, match):
    with pytest.raises(SpecError, match=match):
        DatasetSpec.from_dict("x", entry)


def test_batch_key_equal_to_the_sample_key_is_refused():
    with pytest.raises(SpecError) as info:
        DatasetSpec.from_dict("x", {**MINIMAL, "batch_key": "sample"})
    assert str(info.value) == (
        "dataset 'x': batch_key 'sample' is the sample_key 'sample'; the batch (nuisance) must be "
        "another obs column than the samples: name another column, or leave batch_key out"
    )


def test_scvi_batch_key_is_its_own_and_not_the_sample_key():
    spec = DatasetSpec.from_dict("x", {**MINIMAL, "baselines": {"scvi": {"batch_key": "site"}}})
    assert spec.baselines.scvi.batch_key == "site"
    assert DatasetSpec.from_dict("x", MINIMAL).baselines.scvi.batch_key is None
    with pytest.raises(SpecError, match=r"baselines.scvi.batch_key 'sample' is the sample_key"):
        DatasetSpec.from_dict("x", {**MINIMAL, "baselines": {"scvi": {"batch_key": "sample"}}})


@pytest.mark.parametrize("section", ["mrvi", "baselines"])
def test_training_on_every_cell_with_early_stopping_is_refused(section):
    train = {"train": {"train_size": 1.0}}
    entry = {**MINIMAL, section: train if section == "mrvi" else {"scvi": train}}
    where = "mrvi" if section == "mrvi" else "baselines.scvi"
    with pytest.raises(SpecError) as info:
        DatasetSpec.from_dict("x", entry)
    assert str(info.value) == (
        f"dataset 'x': {where}.train: train_size 1.0 leaves no validation cells, and "
        "early_stopping watches the validation ELBO: set early_stopping to false (training then "
        "runs max_epochs epochs) or train_size below 1 (e.g. 0.9)"
    )
    train["train"]["early_stopping"] = False
    spec = DatasetSpec.from_dict("x", entry)
    fit = spec.mrvi if section == "mrvi" else spec.baselines.scvi
    assert fit.train.train_size == 1.0 and not fit.train.early_stopping


def test_schema_errors_name_the_key(repo, tmp_path):
    path = repo / "workflow" / "schemas" / "dataset.schema.yaml"
    bad = {**MINIMAL, "source": {"kind": "simulate", "n_cels": 3}, "hvg": {"n_top_genes": "many"}}
    with pytest.raises(SpecError) as info:
        check_schema(bad, path, where="dataset entry 'x'")
    msg = str(info.value)
    assert "source: Additional properties are not allowed ('n_cels' was unexpected)" in msg
    assert "hvg.n_top_genes: 'many' is not of type 'integer'" in msg
    bad = {**MINIMAL, "mrvi": {"model": {"n_latnet": 5}, "train": {"lr": "fast"}, "sed": 1}}
    with pytest.raises(SpecError) as info:
        check_schema(bad, path, where="dataset entry 'x'")
    msg = str(info.value)
    assert "mrvi: Additional properties are not allowed ('sed' was unexpected)" in msg
    assert "mrvi.model: Additional properties are not allowed ('n_latnet' was unexpected)" in msg
    assert "mrvi.train.lr: 'fast' is not of type 'number'" in msg
    config = repo / "workflow" / "schemas" / "config.schema.yaml"
    with pytest.raises(SpecError, match="'bogus' was unexpected"):
        check_schema({"datasets": ["a.yaml"], "bogus": 1}, config, where="config")


def test_shipped_config_and_entries_are_valid(repo):
    config = yaml.safe_load((repo / "config" / "config.yaml").read_text())
    check_schema(config, repo / "workflow" / "schemas" / "config.schema.yaml", where="config")
    for path in config["datasets"]:
        entry_path = repo / path
        entry = yaml.safe_load(entry_path.read_text())
        check_schema(entry, repo / "workflow" / "schemas" / "dataset.schema.yaml", where=path)
        DatasetSpec.from_yaml(entry_path)
    for entry_path in Path(repo / "config" / "datasets").glob("*.yaml"):
        DatasetSpec.from_yaml(entry_path)
