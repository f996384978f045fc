"""The ``comparisons`` section of a dataset entry: named DE and DA comparisons, derived sample groups.

An entry names the comparisons its figures and its analyst need (``config/README.md``,
"Comparisons"):

* ``sample_groups``: sample covariates derived from the stratification: the samples' Ward groups in
  the stratification cluster that holds most of the named cells (e.g. the myeloid cluster of
  Fig. 3d), optionally ordered by a numeric sample covariate and compared on others (Mann-Whitney
  U, Extended Data Fig. 1);
* ``de``: per-cell DE with covariates fitted jointly, one contrast to report, a sample subset, a
  cell subset, the admissibility filter (on by default), per-cell LFCs streamed to disk, gene
  modules and GSEA;
* ``da``: per-cell DA between two sets of samples (two sets of values of a sample covariate) with
  the paper's cluster-level test.

Every name is checked against the entry when it is parsed (sample covariates, derived groups);
values (levels, labels) are checked against the data when the rule runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mrvi_repro.settings.names import DA_ESTIMATORS

#: The cell-selection key that names a derived sample-group set: its stratification cluster.
CLUSTER_OF = "cluster_of"


def _values(mapping: dict[str, Any] | None, what: str) -> dict[str, tuple[str, ...]]:
    """``{column: [values]}`` with every value as text (YAML numbers and booleans included)."""
    out = {}
    for column, values in dict(mapping or {}).items():
        if isinstance(values, str | int | float | bool):
            values = [values]
        if not values:
            msg = f"{what}.{column} lists no values"
            raise ValueError(msg)
        out[str(column)] = tuple(str(v) for v in values)
    return out


@dataclass(frozen=True)
class SampleSelection:
    """Samples kept by their covariates: ``include`` all of, ``exclude`` any of (column -> values)."""

    include: dict[str, tuple[str, ...]] = field(default_factory=dict)
    exclude: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def parse(cls, entry: dict[str, Any] | None, where: str) -> SampleSelection:
        """Parse ``{include: {col: [values]}, exclude: {...}}``."""
        entry = dict(entry or {})
        unknown = sorted(set(entry) - {"include", "exclude"})
        if unknown:
            msg = f"{where}: unknown key(s) {unknown}; allowed: ['exclude', 'include']"
            raise ValueError(msg)
        return cls(
            _values(entry.get("include"), f"{where}.include"),
            _values(entry.get("exclude"), f"{where}.exclude"),
        )

    @property
    def columns(self) -> set[str]:
        """The sample covariates the selection reads."""
        return set(self.include) | set(self.exclude)


@dataclass(frozen=True)
class SampleGroupsSpec:
    """A sample covariate derived from the stratification (rule ``sample_groups``).

    ``cells``: ``{obs column: [values]}``; the stratification cluster holding most of these cells
    is the one whose mean sample distance matrix is cut into ``n_groups`` Ward groups. The groups
    are named ``g1``, ``g2``, ... in the dendrogram's leaf order, or, with ``order_by``, by the
    increasing median of that numeric sample covariate (groups where most samples have no number
    last). ``compare``: numeric sample covariates
    compared between every two groups (Mann-Whitney U).
    """

    name: str
    cells: dict[str, tuple[str, ...]]
    n_groups: int = 3
    order_by: str | None = None
    compare: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "cells", _values(self.cells, "cells"))
        object.__setattr__(self, "compare", tuple(self.compare))
        if not self.cells:
            msg = "cells must name at least one obs column and its values"
            raise ValueError(msg)
        if self.n_groups < 2:
            msg = f"n_groups must be at least 2 (got {self.n_groups})"
            raise ValueError(msg)


@dataclass(frozen=True)
class ModulesSpec:
    """Gene modules from the per-cell LFC profiles (Fig. 3f): kNN graph of genes, Leiden."""

    resolution: float = 0.25
    n_neighbors: int = 15
    max_cells: int = 20_000

    def __post_init__(self) -> None:
        if self.resolution <= 0 or self.n_neighbors < 1 or self.max_cells < 1:
            msg = "resolution must be > 0, n_neighbors and max_cells >= 1"
            raise ValueError(msg)


@dataclass(frozen=True)
class GseaSpec:
    """Preranked GSEA of a comparison's mean LFCs over its cells against a GMT resource."""

    gene_sets: str
    min_size: int = 5
    max_size: int = 500

    def __post_init__(self) -> None:
        if not 1 <= self.min_size <= self.max_size:
            msg = f"need 1 <= min_size <= max_size (got {self.min_size}, {self.max_size})"
            raise ValueError(msg)


@dataclass(frozen=True)
class ContrastSpec:
    """What a DE comparison reports: ``a`` vs ``b`` of a categorical, or a numeric slope."""

    covariate: str
    a: str | None = None
    b: str | None = None

    def __post_init__(self) -> None:
        for end in ("a", "b"):
            value = getattr(self, end)
            if value is not None:
                object.__setattr__(self, end, str(value))


@dataclass(frozen=True)
class DEComparisonSpec:
    """A named DE comparison (rule ``de_comparison``).

    ``covariates`` are fitted jointly; ``contrast`` says what to report (default: the first
    covariate, two-valued, or numeric); ``samples`` and ``cells`` select the regression's samples
    and the analysed cells (``cells`` may name ``cluster_of: <sample_groups name>``, that set's
    stratification cluster); ``admissibility`` drops each cell's out-of-distribution samples (the
    Methods' filter, on by default). Per-cell LFCs are written to a zarr store and their means per
    ``labels_key`` group to the result; ``modules`` clusters genes by their per-cell LFCs and
    ``gsea`` ranks the genes by their mean LFC over the analysed cells.
    """

    name: str
    covariates: tuple[str, ...]
    contrast: ContrastSpec | None = None
    samples: SampleSelection = field(default_factory=SampleSelection)
    cells: dict[str, tuple[str, ...]] = field(default_factory=dict)
    admissibility: bool = True
    mc_samples: int = 50
    modules: ModulesSpec | None = None
    gsea: GseaSpec | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "covariates", tuple(self.covariates))
        if not self.covariates:
            msg = "covariates must name at least one sample covariate"
            raise ValueError(msg)
        if self.contrast is None:
            object.__setattr__(self, "contrast", ContrastSpec(self.covariates[0]))
        if self.contrast.covariate not in self.covariates:
            msg = (
                f"contrast.covariate {self.contrast.covariate!r} is not among the fitted "
                f"covariates {list(self.covariates)}"
            )
            raise ValueError(msg)
        if self.mc_samples < 1:
            msg = f"mc_samples must be >= 1 (got {self.mc_samples})"
            raise ValueError(msg)


@dataclass(frozen=True)
class DAComparisonSpec:
    """A named DA comparison (rule ``da_comparison``): samples with ``a`` vs with ``b``.

    ``a`` and ``b``: values of the sample covariate ``covariate`` (default: its two values,
    second vs first); ``samples``/``cells`` as in DE. ``cluster_test``: the paper's cluster-level
    test per group of the ``groupby`` obs column (default: ``labels_key``), composite null
    |difference| <= ``delta``.
    """

    name: str
    covariate: str
    a: tuple[str, ...] | None = None
    b: tuple[str, ...] | None = None
    samples: SampleSelection = field(default_factory=SampleSelection)
    cells: dict[str, tuple[str, ...]] = field(default_factory=dict)
    estimator: str = "mixture"
    groupby: str | None = None
    delta: float = 0.1

    def __post_init__(self) -> None:
        for end in ("a", "b"):
            value = getattr(self, end)
            if value is not None:
                if isinstance(value, str | int | float | bool):
                    value = [value]
                object.__setattr__(self, end, tuple(str(v) for v in value))
        if (self.a is None) != (self.b is None):
            msg = "name both a and b, or neither (then the covariate's two values)"
            raise ValueError(msg)
        if self.a is not None and set(self.a) & set(self.b):
            msg = f"a and b share values: {sorted(set(self.a) & set(self.b))}"
            raise ValueError(msg)
        if self.estimator not in DA_ESTIMATORS:
            msg = f"estimator must be one of {list(DA_ESTIMATORS)} (got {self.estimator!r})"
            raise ValueError(msg)
        if self.delta < 0:
            msg = f"delta must be >= 0 (got {self.delta})"
            raise ValueError(msg)


@dataclass(frozen=True)
class ComparisonsSpec:
    """The entry's named comparisons and derived sample groups."""

    sample_groups: tuple[SampleGroupsSpec, ...] = ()
    de: tuple[DEComparisonSpec, ...] = ()
    da: tuple[DAComparisonSpec, ...] = ()

    @classmethod
    def parse(
        cls,
        entry: dict[str, Any] | None,
        where: str,
        *,
        sample_covariates: tuple[str, ...],
    ) -> ComparisonsSpec:
        """Parse the section and check every covariate it names against the entry.

        A derived group's name may be used like a sample covariate by the comparisons (and in
        ``cells: {cluster_of: name}``). Raises ``ValueError`` naming the offending item.
        """
        entry = dict(entry or {})
        unknown = sorted(set(entry) - {"sample_groups", "de", "da"})
        if unknown:
            msg = f"{where}: unknown key(s) {unknown}; allowed: ['da', 'de', 'sample_groups']"
            raise ValueError(msg)
        groups = tuple(
            _item(SampleGroupsSpec, g, f"{where}.sample_groups[{i}]")
            for i, g in enumerate(entry.get("sample_groups") or [])
        )
        derived = {g.name for g in groups}
        known = set(sample_covariates) | derived
        for i, g in enumerate(groups):
            at = f"{where}.sample_groups[{i}] ({g.name})"
            if g.name in sample_covariates:
                msg = f"{at}: the name is already a sample covariate"
                raise ValueError(msg)
            for column in (g.order_by, *g.compare):
                if column is not None and column not in sample_covariates:
                    msg = f"{at}: {column!r} is not among the sample_covariates"
                    raise ValueError(msg)
        de = tuple(
            _item(DEComparisonSpec, d, f"{where}.de[{i}]")
            for i, d in enumerate(entry.get("de") or [])
        )
        da = tuple(
            _item(DAComparisonSpec, d, f"{where}.da[{i}]")
            for i, d in enumerate(entry.get("da") or [])
        )
        names = [c.name for c in (*groups, *de, *da)]
        for kind, items in (("de", de), ("da", da)):
            seen = [c.name for c in items]
            if len(set(seen)) != len(seen):
                msg = f"{where}.{kind}: names must differ (got {seen})"
                raise ValueError(msg)
        for c in (*de, *da):
            at = f"{where}: comparison {c.name!r}"
            used = set(getattr(c, "covariates", ())) | {getattr(c, "covariate", None)} - {None}
            used |= c.samples.columns
            bad = sorted(used - known)
            if bad:
                msg = f"{at}: {bad} are neither sample_covariates nor derived sample_groups"
                raise ValueError(msg)
            if CLUSTER_OF in c.cells:
                chosen = c.cells[CLUSTER_OF]
                if len(chosen) != 1 or chosen[0] not in derived:
                    msg = f"{at}: cells.{CLUSTER_OF} must name one sample_groups set {sorted(derived)}"
                    raise ValueError(msg)
        if any("/" in n or not n for n in names):
            msg = f"{where}: names must be non-empty and contain no '/' (got {names})"
            raise ValueError(msg)
        return cls(groups, de, da)

    def de_named(self, name: str) -> DEComparisonSpec:
        """Return the DE comparison called ``name``."""
        return _named(self.de, name, "DE")

    def da_named(self, name: str) -> DAComparisonSpec:
        """Return the DA comparison called ``name``."""
        return _named(self.da, name, "DA")

    def needs_sample_groups(self, comparison: DEComparisonSpec | DAComparisonSpec) -> bool:
        """Whether a comparison reads the derived sample groups."""
        derived = {g.name for g in self.sample_groups}
        used = set(getattr(comparison, "covariates", ())) | {getattr(comparison, "covariate", "")}
        used |= comparison.samples.columns | set(comparison.cells.get(CLUSTER_OF, ()))
        return bool(used & derived)


def _named(items: tuple[Any, ...], name: str, kind: str) -> Any:
    for item in items:
        if item.name == name:
            return item
    msg = f"no {kind} comparison named {name!r}; names: {[i.name for i in items]}"
    raise KeyError(msg)


def _item(cls: type, entry: dict[str, Any], where: str) -> Any:
    entry = dict(entry or {})
    if cls is DEComparisonSpec:
        if entry.get("contrast") is not None:
            entry["contrast"] = _item(ContrastSpec, entry["contrast"], f"{where}.contrast")
        for key, sub in (("modules", ModulesSpec), ("gsea", GseaSpec)):
            if entry.get(key) is not None:
                entry[key] = _item(
                    sub, entry[key] if entry[key] is not True else {}, f"{where}.{key}"
                )
    if cls in (DEComparisonSpec, DAComparisonSpec):
        entry["samples"] = SampleSelection.parse(entry.get("samples"), f"{where}.samples")
        entry["cells"] = _values(entry.get("cells"), f"{where}.cells")
    names = set(cls.__dataclass_fields__)
    unknown = sorted(set(entry) - names)
    if unknown:
        msg = f"{where}: unknown key(s) {unknown}; allowed: {sorted(names)}"
        raise ValueError(msg)
    try:
        return cls(**entry)
    except TypeError as err:
        raise ValueError(f"{where}: {err}") from err
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from err
