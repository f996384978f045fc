"""Typed dataset entries: the Python side of ``workflow/schemas/dataset.schema.yaml``.

Snakemake validates each dataset entry against the JSON schema when the workflow loads; the package
parses the same entry into frozen dataclasses so that it can be used (and tested) without Snakemake.
Unknown keys are rejected on both sides, and a test keeps the schema's keys and defaults equal to the
dataclasses' fields and defaults (the ``mrvi`` section's included: ``MrVIConfig`` and ``TrainConfig``;
likewise the ``baselines`` and ``analysis`` sections').
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import jsonschema
import yaml

from mrvi_repro.settings.baselines import MiloConfig, MiloDEConfig
from mrvi_repro.settings.data import (
    RECIPE_KINDS,
    SOURCE_KINDS,
    CovidRecipe,
    ExpectedCounts,
    H5adSource,
    HVGParams,
    IbdRecipe,
    SampleMetadataSpec,
    SciplexRecipe,
    SciplexScreen,
    ScpBundlesSource,
    SemisyntheticParams,
    SimulationParams,
    SubsetSpec,
    TenxMtxTarSource,
)
from mrvi_repro.settings.figures import Fig3Spec, Fig4Spec, Fig5Spec, FiguresSpec
from mrvi_repro.settings.model import MrVIConfig, SCVIConfig, TrainConfig
from mrvi_repro.settings.names import DA_ESTIMATORS, LINKAGE_METHODS, REPRESENTATION_KEYS

from ._comparison_spec import ComparisonsSpec, ContrastSpec


class SpecError(ValueError):
    """A dataset entry is malformed (unknown or missing key, wrong kind)."""


def _field_class(cls: type, name: str) -> type:
    """Class of the default value of dataclass field ``name`` (what its default factory builds)."""
    field_ = next(f for f in dataclasses.fields(cls) if f.name == name)
    return type(field_.default_factory())


class _FitSection:
    """A model-fit section of a dataset entry: ``model``, ``train``, ``seed`` and its own keys.

    Keys besides those three are passed as they are; ``model`` is parsed into the config dataclass that the ``model`` field's default builds,
    ``train`` into :class:`TrainConfig`.
    """

    @classmethod
    def from_dict(cls, entry: dict[str, Any] | None, where: str) -> Self:
        """Parse the section.

        Raises
        ------
        SpecError
            Naming the unknown key or the bad value.
        """
        entry = dict(entry or {})
        _check_keys(cls, entry, where)
        config_cls = _field_class(cls, "model")
        try:
            model = config_cls.from_dict(entry.get("model"))
        except (TypeError, ValueError) as err:
            raise SpecError(f"{where}.model: {err}") from err
        try:
            train = TrainConfig.from_dict(entry.get("train"))
        except (TypeError, ValueError) as err:
            raise SpecError(f"{where}.train: {err}") from err
        extra = {k: v for k, v in entry.items() if k not in ("model", "train", "seed")}
        seed = _seed(entry.get("seed", 0), f"{where}.seed")
        return cls(model=model, train=train, seed=seed, **extra)


@dataclass(frozen=True)
class MrVISpec(_FitSection):
    """How to fit MrVI to a dataset (the ``mrvi`` section): architecture, training, seed."""

    model: MrVIConfig = field(default_factory=MrVIConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    seed: int = 0


@dataclass(frozen=True)
class SCVISpec(_FitSection):
    """How to fit scVI for the composition-scVI baseline (``baselines.scvi``), as MrVI's.

    ``batch_key``: the ``obs`` column given to scVI's decoder as the nuisance (default: the
    entry's ``batch_key``; the paper's IBD comparison used the tissue).
    """

    model: SCVIConfig = field(default_factory=SCVIConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    seed: int = 0
    batch_key: str | None = None


@dataclass(frozen=True)
class PCASpec:
    """The composition-PCA representation: PCA of log-normalised counts."""

    n_comps: int = 50

    def __post_init__(self) -> None:
        if self.n_comps < 1:
            msg = f"n_comps must be >= 1 (got {self.n_comps})"
            raise ValueError(msg)


#: Cluster choices of the composition baselines (see :class:`CompositionSpec`).
COMPOSITION_CLUSTERS = ("auto", "labels", "leiden")


@dataclass(frozen=True)
class CompositionSpec:
    """Composition baselines: clusters, then Leiden subclusters within each (paper's settings).

    ``clusters``: ``"labels"`` uses the entry's ``labels_key`` (the paper's ``clusterkey``),
    ``"leiden"`` Leiden clusters at ``cluster_resolution`` on the representation's kNN graph (the
    paper's ``leiden1``), ``"auto"`` the labels when the entry has a ``labels_key``, else Leiden.
    """

    clusters: str = "auto"
    cluster_resolution: float = 1.0
    subcluster_resolution: float = 1.0
    n_neighbors: int = 30

    def __post_init__(self) -> None:
        if self.clusters not in COMPOSITION_CLUSTERS:
            msg = f"clusters must be one of {list(COMPOSITION_CLUSTERS)} (got {self.clusters!r})"
            raise ValueError(msg)
        if min(self.cluster_resolution, self.subcluster_resolution) <= 0 or self.n_neighbors < 2:
            msg = (
                "cluster_resolution and subcluster_resolution must be > 0 and n_neighbors >= 2 "
                f"(got {self.cluster_resolution}, {self.subcluster_resolution}, "
                f"{self.n_neighbors})"
            )
            raise ValueError(msg)


@dataclass(frozen=True)
class DESeq2Spec:
    """DESeq2 on per-sample pseudobulks of one cell group, per two-valued sample covariate.

    ``group``: a value of the entry's ``labels_key`` (cells tested), or ``"all"``.
    ``covariates``: sample covariates tested (``None``: the entry's ``sample_covariates``); those
    without exactly two values are skipped. ``batch_in_design``: add the entry's ``batch_key`` to
    the design as the nuisance. ``min_cells``: samples with fewer cells in the group are left out.
    """

    group: str = "all"
    covariates: tuple[str, ...] | None = None
    batch_in_design: bool = True
    min_cells: int = 3

    def __post_init__(self) -> None:
        object.__setattr__(self, "group", str(self.group))
        if self.covariates is not None:
            object.__setattr__(self, "covariates", tuple(self.covariates))
        if self.min_cells < 1:
            msg = f"min_cells must be >= 1 (got {self.min_cells})"
            raise ValueError(msg)


class _NhoodSection:
    """A neighbourhood baseline's section: ``config``, ``covariates`` and ``representation``.

    ``config`` holds the method's own settings dataclass (:class:`mrvi_repro.baselines.MiloConfig`
    or :class:`~mrvi_repro.baselines.MiloDEConfig`, the ``config`` field's default), which checks
    them. ``covariates``: sample covariates tested one at a time (``None``: the entry's
    ``sample_covariates``); those without exactly two values are skipped. ``representation``: the
    cell representation of ``representations.h5ad`` the neighbourhoods are built on (one of
    :data:`~mrvi_repro.settings.names.REPRESENTATION_KEYS`).
    """

    def __post_init__(self) -> None:
        _set_covariates(self)
        if self.representation not in REPRESENTATION_KEYS:
            msg = (
                f"representation must be one of {list(REPRESENTATION_KEYS)} "
                f"(got {self.representation!r})"
            )
            raise ValueError(msg)

    @classmethod
    def from_dict(cls, entry: dict[str, Any] | None, where: str) -> Self:
        """Parse the section.

        Raises
        ------
        SpecError
            Naming the unknown key or the bad value.
        """
        entry = dict(entry or {})
        _check_keys(cls, entry, where)
        config_cls = _field_class(cls, "config")
        entry["config"] = _build(config_cls, entry.get("config") or {}, f"{where}.config")
        try:
            return cls(**entry)
        except (TypeError, ValueError) as err:
            raise SpecError(f"{where}: {err}") from err


@dataclass(frozen=True)
class MiloSpec(_NhoodSection):
    """Milo differential abundance (rule milo): settings, covariates tested, representation."""

    config: MiloConfig = field(default_factory=MiloConfig)
    covariates: tuple[str, ...] | None = None
    representation: str = "pca"


@dataclass(frozen=True)
class MiloDESpec(_NhoodSection):
    """miloDE differential expression (rule milode): settings, covariates tested, representation."""

    config: MiloDEConfig = field(default_factory=MiloDEConfig)
    covariates: tuple[str, ...] | None = None
    representation: str = "pca"


@dataclass(frozen=True)
class BaselinesSpec:
    """The baselines of a dataset: scVI, PCA, composition distances, DESeq2 pseudobulk, Milo, miloDE.

    ``seed`` seeds the PCA solver, the kNN searches and Leiden (scVI has its own).
    """

    scvi: SCVISpec = field(default_factory=SCVISpec)
    pca: PCASpec = field(default_factory=PCASpec)
    composition: CompositionSpec = field(default_factory=CompositionSpec)
    deseq2: DESeq2Spec = field(default_factory=DESeq2Spec)
    milo: MiloSpec = field(default_factory=MiloSpec)
    milode: MiloDESpec = field(default_factory=MiloDESpec)
    seed: int = 0

    @classmethod
    def from_dict(cls, entry: dict[str, Any] | None, where: str = "baselines") -> BaselinesSpec:
        """Parse the ``baselines`` section of a dataset entry.

        Raises
        ------
        SpecError
            Naming the unknown key or the bad value.
        """
        entry = dict(entry or {})
        _check_keys(cls, entry, where)
        return cls(
            scvi=SCVISpec.from_dict(entry.get("scvi"), f"{where}.scvi"),
            pca=_build(PCASpec, entry.get("pca") or {}, f"{where}.pca"),
            composition=_build(
                CompositionSpec, entry.get("composition") or {}, f"{where}.composition"
            ),
            deseq2=_build(DESeq2Spec, entry.get("deseq2") or {}, f"{where}.deseq2"),
            milo=MiloSpec.from_dict(entry.get("milo"), f"{where}.milo"),
            milode=MiloDESpec.from_dict(entry.get("milode"), f"{where}.milode"),
            seed=_seed(entry.get("seed", 0), f"{where}.seed"),
        )


@dataclass(frozen=True)
class DistancesSpec:
    """Local sample distances (rule sample_distances).

    ``mc_samples``: 0 (distances at u's mean) or at least 2 (Monte-Carlo-normalised, see
    :func:`mrvi_repro.analysis.local_sample_distances`).
    """

    mc_samples: int = 0

    def __post_init__(self) -> None:
        if self.mc_samples < 0 or self.mc_samples == 1:
            msg = f"mc_samples must be 0 or at least 2 (got {self.mc_samples})"
            raise ValueError(msg)


@dataclass(frozen=True)
class DASpec:
    """MrVI's differential abundance (rule differential_abundance).

    ``estimators``: the density estimates of the aggregated posteriors to compute, each written to
    ``analysis/da.nc`` (:data:`mrvi_repro.settings.names.DA_ESTIMATORS`): ``mixture`` (the
    full-dimensional mixture of the Methods, as ``log_ratio_<covariate>``) and ``per_dimension``
    (the paper-era product of 1-D mixtures, as ``log_ratio_<covariate>_per_dimension``).
    """

    estimators: tuple[str, ...] = ("mixture",)

    def __post_init__(self) -> None:
        object.__setattr__(self, "estimators", tuple(self.estimators))
        unknown = [e for e in self.estimators if e not in DA_ESTIMATORS]
        if not self.estimators or unknown or len(set(self.estimators)) < len(self.estimators):
            msg = (
                f"estimators must be distinct values among {list(DA_ESTIMATORS)}, at least one "
                f"(got {list(self.estimators)})"
            )
            raise ValueError(msg)


@dataclass(frozen=True)
class DESpec:
    """MrVI's differential expression (rule differential_expression).

    ``covariates``: sample covariates fitted jointly in one design (the multivariate analysis;
    ``None``: all the entry's ``sample_covariates``). ``mc_samples``: draws of u per cell.
    ``lfc``: also decode per-gene LFCs, kept as means per ``labels_key`` group (one group ``all``
    without labels). ``lam``: ridge penalty. ``contrasts``: what to report (each ``a`` vs ``b``
    of a fitted categorical covariate, e.g. inflamed vs non-inflamed, or a numeric slope;
    ``()``: every design column against its covariate's first level).
    """

    covariates: tuple[str, ...] | None = None
    mc_samples: int = 50
    lfc: bool = True
    lam: float = 0.0
    contrasts: tuple[ContrastSpec, ...] = ()

    def __post_init__(self) -> None:
        _set_covariates(self)
        if self.mc_samples < 1 or self.lam < 0:
            msg = f"mc_samples must be >= 1 and lam >= 0 (got {self.mc_samples}, {self.lam})"
            raise ValueError(msg)
        contrasts = []
        for i, item in enumerate(self.contrasts or ()):
            if isinstance(item, dict):
                try:
                    item = ContrastSpec(**item)
                except TypeError as err:
                    raise ValueError(f"contrasts[{i}]: {err}") from err
            if not isinstance(item, ContrastSpec):
                msg = f"contrasts[{i}] must be {{covariate, a, b}}, got {item!r}"
                raise ValueError(msg)
            if self.covariates is not None and item.covariate not in self.covariates:
                msg = (
                    f"contrasts[{i}]: {item.covariate!r} is not among the fitted covariates "
                    f"{list(self.covariates)}"
                )
                raise ValueError(msg)
            contrasts.append(item)
        object.__setattr__(self, "contrasts", tuple(contrasts))


@dataclass(frozen=True)
class IntegrationSpec:
    """The integration metrics (rule integration_metrics; Supp. Fig. 2, Extended Data Fig. 5).

    ``batch_key``: the ``obs`` column whose groups the metrics should find mixed (default: the
    entry's ``batch_key``, or the samples without one); the paper's IBD metrics used the tissue.
    """

    batch_key: str | None = None


@dataclass(frozen=True)
class StratifySpec:
    """Exploratory stratification of cells by their distance matrices (rule stratify_cells).

    PCA of the upper triangles (``n_pcs``), ``n_neighbors``-NN graph, Leiden at ``resolution``
    (the paper's 0.005 suits hundreds of thousands of cells; small data may need more), then a
    ``method`` dendrogram of the samples per cell cluster, cut into ``n_sample_groups`` groups.
    """

    n_pcs: int = 50
    n_neighbors: int = 15
    resolution: float = 0.005
    method: str = "ward"
    n_sample_groups: int = 3
    mc_samples: int = 0

    def __post_init__(self) -> None:
        if min(self.n_pcs, self.n_neighbors, self.n_sample_groups) < 1 or self.resolution <= 0:
            msg = (
                "n_pcs, n_neighbors and n_sample_groups must be >= 1 and resolution > 0 (got "
                f"{self.n_pcs}, {self.n_neighbors}, {self.n_sample_groups}, {self.resolution})"
            )
            raise ValueError(msg)
        if self.method not in LINKAGE_METHODS:
            msg = f"method must be one of {list(LINKAGE_METHODS)} (got {self.method!r})"
            raise ValueError(msg)
        DistancesSpec(self.mc_samples)


@dataclass(frozen=True)
class AnalysisSpec:
    """Settings of MrVI's analyses (``workflow/rules/analysis.smk``)."""

    distances: DistancesSpec = field(default_factory=DistancesSpec)
    da: DASpec = field(default_factory=DASpec)
    de: DESpec = field(default_factory=DESpec)
    stratify: StratifySpec = field(default_factory=StratifySpec)
    integration: IntegrationSpec = field(default_factory=IntegrationSpec)

    @classmethod
    def from_dict(cls, entry: dict[str, Any] | None, where: str = "analysis") -> AnalysisSpec:
        """Parse the ``analysis`` section of a dataset entry.

        Raises
        ------
        SpecError
            Naming the unknown key or the bad value.
        """
        entry = dict(entry or {})
        _check_keys(cls, entry, where)
        parts = {
            "distances": DistancesSpec,
            "da": DASpec,
            "de": DESpec,
            "stratify": StratifySpec,
            "integration": IntegrationSpec,
        }
        return cls(**{k: _build(c, entry.get(k) or {}, f"{where}.{k}") for k, c in parts.items()})


def _figures(entry: dict[str, Any], where: str) -> FiguresSpec:
    """Parse the ``figures`` section against the parsed entry (its covariates, comparisons)."""
    try:
        requested = FiguresSpec.requested(entry.get("figures"), f"{where}: figures")
        comparisons = entry.get("comparisons") or ComparisonsSpec()
        covariates = tuple(entry.get("sample_covariates", ()))
        figures: dict[str, Fig3Spec | Fig4Spec | Fig5Spec] = {}
        if "fig3" in requested:
            figures["fig3"] = Fig3Spec.parse(
                requested["fig3"],
                f"{where}: figures.fig3",
                sample_covariates=covariates,
                sample_groups={g.name: g.compare for g in comparisons.sample_groups},
                da=[c.name for c in comparisons.da],
                de_with_modules=[c.name for c in comparisons.de if c.modules is not None],
            )
        if "fig4" in requested:
            figures["fig4"] = Fig4Spec.parse(
                requested["fig4"], f"{where}: figures.fig4", sample_covariates=covariates
            )
        if "fig5" in requested:
            analysis = entry.get("analysis") or AnalysisSpec()
            figures["fig5"] = Fig5Spec.parse(
                requested["fig5"],
                f"{where}: figures.fig5",
                sample_covariates=covariates,
                de=[c.name for c in comparisons.de],
                da=[c.name for c in comparisons.da],
                effects=[c.covariate for c in analysis.de.contrasts],
            )
    except ValueError as err:
        raise SpecError(str(err)) from err
    for name, needs in (("fig3", "cell types of panels a, c"), ("fig5", "panels b, e")):
        if name in figures and entry.get("labels_key") is None:
            msg = f"{where}: figures [{name}] need a labels_key ({needs})"
            raise SpecError(msg)
    return FiguresSpec(**figures)


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset entry of the workflow config.

    ``source`` says where the counts come from; ``subset`` which cells and genes are kept,
    ``recipe`` the paper's dataset-specific step, ``sample_metadata`` a table of per-sample
    covariates joined onto the cells; the keys name the ``obs`` columns of the data contract
    (:mod:`mrvi_repro.data.contract`); samples with fewer than ``min_cells_per_sample`` cells are an error, or dropped
    (logged) with ``drop_small_samples``; ``semisynthetic`` (optional) plants the paper's
    semi-synthetic DE/DA effects, which creates the sample key and the covariates; ``expected``
    the sizes the source reports (cells, samples, participants), which preprocessing checks and
    reports (:func:`mrvi_repro.data.preprocess.count_check`); ``mrvi`` says
    how to fit MrVI (``mrvi_variants``: further named fits, each the ``mrvi`` section with some keys
    changed, scored beside it in the integration metrics), ``analysis`` how to analyse it and
    ``baselines`` how to run the baselines;
    ``comparisons`` names the DE and DA comparisons and the sample groups derived from the
    stratification (:mod:`mrvi_repro.pipeline._comparison_spec`); ``figures`` the paper's
    figures drawn from them (:mod:`mrvi_repro.settings.figures`).
    """

    name: str
    source: SimulationParams | H5adSource | TenxMtxTarSource | ScpBundlesSource
    sample_key: str
    description: str = ""
    subset: SubsetSpec | None = None
    sample_metadata: SampleMetadataSpec | None = None
    recipe: CovidRecipe | SciplexRecipe | IbdRecipe | None = None
    batch_key: str | None = None
    labels_key: str | None = None
    sample_covariates: tuple[str, ...] = ()
    min_cells_per_sample: int = 10
    drop_small_samples: bool = False
    hvg: HVGParams = field(default_factory=HVGParams)
    semisynthetic: SemisyntheticParams | None = None
    expected: ExpectedCounts | None = None
    mrvi: MrVISpec = field(default_factory=MrVISpec)
    mrvi_variants: dict[str, MrVISpec] = field(default_factory=dict)
    baselines: BaselinesSpec = field(default_factory=BaselinesSpec)
    analysis: AnalysisSpec = field(default_factory=AnalysisSpec)
    comparisons: ComparisonsSpec = field(default_factory=ComparisonsSpec)
    figures: FiguresSpec = field(default_factory=FiguresSpec)

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
        if entry.get("batch_key") is not None and entry["batch_key"] == entry["sample_key"]:
            msg = (
                f"{where}: batch_key {entry['batch_key']!r} is the sample_key "
                f"{entry['sample_key']!r}; the batch (nuisance) must be another obs column than "
                "the samples: name another column, or leave batch_key out"
            )
            raise SpecError(msg)
        source = dict(entry.pop("source"))
        kind = source.pop("kind", None)
        if not isinstance(kind, str) or kind not in SOURCE_KINDS:
            msg = f"{where}: source.kind must be one of {list(SOURCE_KINDS)} (got {kind!r})"
            raise SpecError(msg)
        entry["source"] = _build(SOURCE_KINDS[kind], source, f"{where}: source")
        if entry.get("subset") is not None:
            entry["subset"] = _build(SubsetSpec, entry["subset"], f"{where}: subset")
        if entry.get("expected") is not None:
            entry["expected"] = _build(ExpectedCounts, entry["expected"], f"{where}: expected")
        if entry.get("sample_metadata") is not None:
            entry["sample_metadata"] = _build(
                SampleMetadataSpec, entry["sample_metadata"], f"{where}: sample_metadata"
            )
        if entry.get("recipe") is not None:
            recipe = dict(entry["recipe"])
            recipe_kind = recipe.pop("kind", None)
            if not isinstance(recipe_kind, str) or recipe_kind not in RECIPE_KINDS:
                msg = f"{where}: recipe.kind must be one of {list(RECIPE_KINDS)} (got {recipe_kind!r})"
                raise SpecError(msg)
            entry["recipe"] = _build(RECIPE_KINDS[recipe_kind], recipe, f"{where}: recipe")
            if recipe_kind == "sciplex" and not isinstance(entry["source"], H5adSource):
                msg = f"{where}: recipe 'sciplex' needs an h5ad source (the sci-Plex 3 file)"
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
        raw_mrvi = dict(entry.get("mrvi") or {})
        if "mrvi" in entry:
            entry["mrvi"] = MrVISpec.from_dict(entry["mrvi"], f"{where}: mrvi")
        if entry.get("mrvi_variants") is not None:
            entry["mrvi_variants"] = {
                str(name): MrVISpec.from_dict(
                    merge_entry(raw_mrvi, overrides or {}), f"{where}: mrvi_variants.{name}"
                )
                for name, overrides in entry["mrvi_variants"].items()
            }
        else:
            entry.pop("mrvi_variants", None)
        fits = {"mrvi": entry.get("mrvi", MrVISpec())}
        fits.update({f"mrvi_variants.{k}": v for k, v in entry.get("mrvi_variants", {}).items()})
        for key, fit in fits.items():
            if fit.model.prior == "celltype" and entry.get("labels_key") is None:
                msg = f"{where}: {key}.model.prior 'celltype' needs a labels_key"
                raise SpecError(msg)
        if "baselines" in entry:
            entry["baselines"] = BaselinesSpec.from_dict(entry["baselines"], f"{where}: baselines")
            _check_baselines(entry, where)
        if "analysis" in entry:
            entry["analysis"] = AnalysisSpec.from_dict(entry["analysis"], f"{where}: analysis")
            de = entry["analysis"].de
            fitted = de.covariates or tuple(entry.get("sample_covariates", ()))
            unknown = sorted(set(de.covariates or ()) - set(entry.get("sample_covariates", ())))
            if unknown:
                msg = (
                    f"{where}: analysis.de.covariates {unknown} are not among the sample_covariates"
                )
                raise SpecError(msg)
            off = [c.covariate for c in de.contrasts if c.covariate not in fitted]
            if off:
                msg = (
                    f"{where}: analysis.de.contrasts on {off}: not among the fitted {list(fitted)}"
                )
                raise SpecError(msg)
        if entry.get("comparisons") is not None:
            try:
                entry["comparisons"] = ComparisonsSpec.parse(
                    entry["comparisons"],
                    f"{where}: comparisons",
                    sample_covariates=tuple(entry.get("sample_covariates", ())),
                )
            except ValueError as err:
                raise SpecError(str(err)) from err
        else:
            entry.pop("comparisons", None)
        entry["figures"] = _figures(entry, where)
        return cls(name=name, **entry)

    def with_mrvi_variant(self, name: str) -> DatasetSpec:
        """Return the entry with the ``mrvi`` section of variant ``name`` (what its rules fit)."""
        if name not in self.mrvi_variants:
            msg = (
                f"dataset {self.name!r} has no MrVI variant {name!r}: {sorted(self.mrvi_variants)}"
            )
            raise KeyError(msg)
        return dataclasses.replace(self, mrvi=self.mrvi_variants[name])

    def resources(self) -> list[str]:
        """Every download-registry key the entry reads.

        The source, sample metadata, recipe files, the gene sets of the comparisons and the
        files of the screen figure (Connectivity Map exports, gene sets).
        """
        keys: list[str] = []
        if isinstance(self.source, ScpBundlesSource):
            keys += self.source.resources()
        elif getattr(self.source, "resource", None) is not None:
            keys.append(self.source.resource)
        if self.sample_metadata is not None and self.sample_metadata.resource is not None:
            keys.append(self.sample_metadata.resource)
        if isinstance(self.recipe, SciplexRecipe):
            keys += [self.recipe.plate_table, self.recipe.cell_cycle_genes]
        keys += [c.gsea.gene_sets for c in self.comparisons.de if c.gsea is not None]
        fig4 = self.figures.fig4
        if fig4 is not None:
            keys += list(fig4.cmap.resources) if fig4.cmap is not None else []
            keys += [fig4.gene_sets] if fig4.gene_sets is not None else []
        return list(dict.fromkeys(keys))

    def sciplex_screen(self) -> SciplexScreen | None:
        """Return the shared sci-Plex screen step this entry needs (``None`` without one)."""
        if not isinstance(self.recipe, SciplexRecipe):
            return None
        recipe = self.recipe
        return SciplexScreen(
            source=self.source,
            plate_table=recipe.plate_table,
            hvg=self.hvg,
            subset=self.subset,
            cell_lines=recipe.cell_lines,
            deg_padj=recipe.deg_padj,
            deg_min_lfc=recipe.deg_min_lfc,
            deg_min_genes=recipe.deg_min_genes,
        )

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


def merge_entry(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Return ``base`` with ``overrides`` applied, nested mappings merged key by key.

    Lists and other values are replaced. Used for ``mrvi_variants`` and the workflow's stand-in
    overrides of whole entries.
    """
    out = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_entry(out[key], value)
        else:
            out[key] = value
    return out


def _check_baselines(entry: dict[str, Any], where: str) -> None:
    """Check the baselines settings that depend on other keys of the entry."""
    spec: BaselinesSpec = entry["baselines"]
    if spec.scvi.batch_key is not None and spec.scvi.batch_key == entry["sample_key"]:
        msg = (
            f"{where}: baselines.scvi.batch_key {spec.scvi.batch_key!r} is the sample_key; scVI's "
            "nuisance must be another obs column than the samples"
        )
        raise SpecError(msg)
    labels = entry.get("labels_key")
    if labels is None and spec.composition.clusters == "labels":
        msg = f"{where}: baselines.composition.clusters 'labels' needs a labels_key"
        raise SpecError(msg)
    if labels is None and spec.deseq2.group != "all":
        msg = f"{where}: baselines.deseq2.group {spec.deseq2.group!r} needs a labels_key"
        raise SpecError(msg)
    known = set(entry.get("sample_covariates", ()))
    for name in ("deseq2", "milo", "milode"):
        unknown = sorted(set(getattr(spec, name).covariates or ()) - known)
        if unknown:
            msg = (
                f"{where}: baselines.{name}.covariates {unknown} are not among the "
                "sample_covariates"
            )
            raise SpecError(msg)


def _set_covariates(section: Any) -> None:
    """Make a section's ``covariates`` a tuple; refuse an empty list (``None`` means all)."""
    if section.covariates is not None:
        object.__setattr__(section, "covariates", tuple(section.covariates))
        if not section.covariates:
            msg = "covariates must name at least one sample covariate (or be null)"
            raise ValueError(msg)


def _seed(seed: object, where: str) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int):
        msg = f"{where} must be an integer (got {seed!r})"
        raise SpecError(msg)
    return seed


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
