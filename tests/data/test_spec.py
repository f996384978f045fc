import dataclasses
from pathlib import Path

import pytest
import yaml

from mrvi_repro.data import (
    DatasetSpec,
    H5adSource,
    HVGParams,
    SemisyntheticParams,
    SimulationParams,
    SpecError,
    check_schema,
)

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


@pytest.mark.parametrize(
    ("cls", "where", "skip"),
    [
        (DatasetSpec, (), {"name", "source", "hvg", "semisynthetic"}),
        (SimulationParams, ("$defs", "simulate_source"), set()),
        (H5adSource, ("$defs", "h5ad_source"), set()),
        (HVGParams, ("properties", "hvg"), set()),
        (SemisyntheticParams, ("properties", "semisynthetic"), set()),
    ],
)
def test_schema_and_dataclasses_agree(repo, cls, where, skip):
    node = schema(repo, "dataset.schema.yaml")
    for key in where:
        node = node[key]
    props = {k: v for k, v in node["properties"].items() if k != "kind"}
    fields = {f.name for f in dataclasses.fields(cls)} - skip
    assert set(props) - {"source", "hvg", "semisynthetic"} == fields
    for name, value in defaults(cls).items():
        if name in skip:
            continue
        assert props[name].get("default") == value, name
    for name, prop in props.items():
        assert prop.get("description"), f"{name} has no description"


def test_minimal_entry_gets_defaults():
    spec = DatasetSpec.from_dict("x", MINIMAL)
    assert spec.source == SimulationParams()
    assert spec.hvg == HVGParams() and spec.semisynthetic is None


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
        ({**MINIMAL, "source": {"kind": "zarr"}}, "source.kind must be 'simulate' or 'h5ad'"),
        ({**MINIMAL, "source": {"kind": "h5ad"}}, r"source: missing required key\(s\) \['path'\]"),
        ({**MINIMAL, "semisynthetic": {"subsample_rates": [1.0]}}, "one per replicate rank"),
    ],
)
def test_bad_entries(entry, match):
    with pytest.raises(SpecError, match=match):
        DatasetSpec.from_dict("x", entry)


def test_schema_errors_name_the_key(repo, tmp_path):
    path = repo / "workflow" / "schemas" / "dataset.schema.yaml"
    bad = {**MINIMAL, "source": {"kind": "simulate", "n_cels": 3}, "hvg": {"n_top_genes": "many"}}
    with pytest.raises(SpecError) as info:
        check_schema(bad, path, where="dataset entry 'x'")
    msg = str(info.value)
    assert "source: Additional properties are not allowed ('n_cels' was unexpected)" in msg
    assert "hvg.n_top_genes: 'many' is not of type 'integer'" in msg
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
