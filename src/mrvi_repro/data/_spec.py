"""Typed dataset entries: the Python side of ``workflow/schemas/dataset.schema.yaml``.

Snakemake validates each dataset entry against the JSON schema when the workflow loads; the package
parses the same entry into frozen dataclasses so that it can be used (and tested) without Snakemake.
Unknown keys are rejected on both sides, and a test keeps the schema's keys and defaults equal to the
dataclasses' fields and defaults (the ``mrvi`` section's included: ``MrVIConfig`` and ``TrainConfig``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from mrvi_repro.model._config import MrVIConfig, TrainConfig

from ._semisynthetic import SemisyntheticParams
from ._simulate import SimulationParams


class SpecError(ValueError):
    """A dataset entry is malformed (unknown or missing key, wrong kind)."""


@dataclass(frozen=True)
class H5adSource:
    """A local ``.h5ad`` file with raw counts in ``X`` or in ``layers[counts_layer]``."""

    path: str
    counts_layer: str | None = None


@dataclass(frozen=True)
class HVGParams:
    """Highly-variable-gene selection (scanpy ``highly_variable_genes`` on counts)."""

    n_top_genes: int = 3000
    flavor: str = "seurat_v3"
    batch_key: str | None = None


@dataclass(frozen=True)
class MrVISpec:
    """How to fit MrVI to a dataset: architecture, training schedule and seed."""

    model: MrVIConfig = field(default_factory=MrVIConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    seed: int = 0

    @classmethod
    def from_dict(cls, entry: dict[str, Any] | None, where: str = "mrvi") -> MrVISpec:
        """Parse the ``mrvi`` section of a dataset entry.

        Raises
        ------
        SpecError
            Naming the unknown key or the bad value.
        """
        entry = dict(entry or {})
        _check_keys(cls, entry, where)
        try:
            model = MrVIConfig.from_dict(entry.get("model"))
        except (TypeError, ValueError) as err:
            raise SpecError(f"{where}.model: {err}") from err
        try:
            train = TrainConfig.from_dict(entry.get("train"))
        except (TypeError, ValueError) as err:
            raise SpecError(f"{where}.train: {err}") from err
        seed = entry.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int):
            msg = f"{where}.seed must be an integer (got {seed!r})"
            raise SpecError(msg)
        return cls(model=model, train=train, seed=seed)


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset entry of the workflow config.

    ``source`` says where the counts come from; the keys name the ``obs`` columns of the data
    contract (DESIGN.md §4); ``semisynthetic`` (optional) plants the paper's semi-synthetic DE/DA
    effects, which creates the sample key and the covariates; ``mrvi`` says how to fit MrVI.
    """

    name: str
    source: SimulationParams | H5adSource
    sample_key: str
    description: str = ""
    batch_key: str | None = None
    labels_key: str | None = None
    sample_covariates: tuple[str, ...] = ()
    min_cells_per_sample: int = 10
    hvg: HVGParams = field(default_factory=HVGParams)
    semisynthetic: SemisyntheticParams | None = None
    mrvi: MrVISpec = field(default_factory=MrVISpec)

    @classmethod
    def from_dict(cls, name: str, entry: dict[str, Any]) -> DatasetSpec:
        """Parse a dataset entry (as written in ``config/datasets/<name>.yaml``).

        Raises
        ------
        SpecError
            Naming the offending key.
        """
        where = f"dataset {name!r}"
        entry = dict(entry)
        _check_keys(cls, entry, where, skip={"name"})
        source = dict(entry.pop("source"))
        kind = source.pop("kind", None)
        if kind == "simulate":
            entry["source"] = _build(SimulationParams, source, f"{where}: source")
        elif kind == "h5ad":
            entry["source"] = _build(H5adSource, source, f"{where}: source")
        else:
            msg = f"{where}: source.kind must be 'simulate' or 'h5ad' (got {kind!r})"
            raise SpecError(msg)
        if "hvg" in entry:
            entry["hvg"] = _build(HVGParams, entry["hvg"] or {}, f"{where}: hvg")
        if entry.get("semisynthetic") is not None:
            semi = dict(entry["semisynthetic"])
            for key in ("subset_ranks", "subsample_rates"):
                if key in semi:
                    semi[key] = tuple(semi[key])
            entry["semisynthetic"] = _build(SemisyntheticParams, semi, f"{where}: semisynthetic")
        if "sample_covariates" in entry:
            entry["sample_covariates"] = tuple(entry["sample_covariates"])
        if "mrvi" in entry:
            entry["mrvi"] = MrVISpec.from_dict(entry["mrvi"], f"{where}: mrvi")
            if entry["mrvi"].model.prior == "celltype" and entry.get("labels_key") is None:
                msg = f"{where}: mrvi.model.prior 'celltype' needs a labels_key"
                raise SpecError(msg)
        return cls(name=name, **entry)

    @classmethod
    def from_yaml(cls, path: str | Path, name: str | None = None) -> DatasetSpec:
        """Read a dataset entry file; the name defaults to the file's stem."""
        path = Path(path)
        with path.open() as fh:
            entry = yaml.safe_load(fh)
        if not isinstance(entry, dict):
            msg = f"{path}: a dataset entry must be a mapping, got {type(entry).__name__}"
            raise SpecError(msg)
        return cls.from_dict(name or path.stem, entry)


def check_schema(instance: object, schema: str | Path, *, where: str) -> None:
    """Validate a config object against a JSON schema (YAML file), naming every offending key.

    Parameters
    ----------
    instance
        Parsed YAML (config or dataset entry).
    schema
        Path of the JSON schema, written in YAML.
    where
        What the instance is, for the message (``"config"``, ``"dataset 'covid' (path)"``).

    Raises
    ------
    SpecError
        One line per violation: the key path and what is wrong with it.
    """
    with Path(schema).open() as fh:
        validator = jsonschema.Draft202012Validator(yaml.safe_load(fh))
    errors = sorted(
        validator.iter_errors(instance), key=lambda e: [str(p) for p in e.absolute_path]
    )
    if errors:
        lines = [
            f"  - {'.'.join(map(str, e.absolute_path)) or '(top level)'}: {e.message}"
            for e in errors
        ]
        raise SpecError(f"{where} is invalid:\n" + "\n".join(lines))


def _check_keys(cls: type, entry: dict[str, Any], where: str, skip: set[str] = frozenset()) -> None:
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in skip}
    unknown = sorted(set(entry) - set(fields))
    if unknown:
        msg = f"{where}: unknown key(s) {unknown}; allowed: {sorted(fields)}"
        raise SpecError(msg)
    missing = sorted(
        n
        for n, f in fields.items()
        if f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
        and n not in entry
    )
    if missing:
        msg = f"{where}: missing required key(s) {missing}"
        raise SpecError(msg)


def _build(cls: type, entry: dict[str, Any], where: str) -> Any:
    _check_keys(cls, entry, where)
    try:
        return cls(**entry)
    except (TypeError, ValueError) as err:
        raise SpecError(f"{where}: {err}") from err
