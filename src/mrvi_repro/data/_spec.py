"""Typed dataset entries: the Python side of ``workflow/schemas/dataset.schema.yaml``.

Snakemake validates each dataset entry against the JSON schema when the workflow loads; the package
parses the same entry into frozen dataclasses so that it can be used (and tested) without Snakemake.
Unknown keys are rejected on both sides, and a test keeps the schema's keys and defaults equal to the
dataclasses' fields and defaults (the ``mrvi`` section's included: ``MrVIConfig`` and ``TrainConfig``;
likewise the ``baselines`` and ``analysis`` sections').
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import jsonschema
import yaml

from mrvi_repro.model._config import MrVIConfig, SCVIConfig, TrainConfig

from ._semisynthetic import SemisyntheticParams
from ._simulate import SimulationParams

if TYPE_CHECKING:
    from mrvi_repro.baselines import MiloConfig, MiloDEConfig


class SpecError(ValueError):
    """A dataset entry is malformed (unknown or missing key, wrong kind)."""


#: ``counts_layer`` value that makes the reader look for the raw counts (:func:`locate_counts`).
AUTO_COUNTS = "auto"


def _check_file_choice(section: Any) -> None:
    """Refuse a section that names both or neither of ``path`` and ``resource``."""
    if (section.path is None) == (section.resource is None):
        msg = "give exactly one of path (a local file) and resource (a download registry key)"
        raise ValueError(msg)


@dataclass(frozen=True)
class H5adSource:
    """An ``.h5ad`` file: a local ``path`` or a ``resource`` of the download registry.

    ``counts_layer``: where the raw counts are: ``None`` (``X``), a layer name, or ``"auto"`` (the
    first of ``X``, ``layers['counts']``, ``layers['raw']``, the other layers and ``.raw`` whose
    values are non-negative integers; published files often hold normalised values in ``X``).
    """

    path: str | None = None
    resource: str | None = None
    counts_layer: str | None = None

    def __post_init__(self) -> None:
        _check_file_choice(self)


@dataclass(frozen=True)
class ScpBundlesSource:
    """Broad Single Cell Portal expression bundles (the IBD atlas, SCP1884) and their metadata.

    Each bundle ``B`` is three registry resources under ``directory``: ``B.scp.raw.mtx`` (raw
    counts, genes x cells), ``B.scp.features.tsv`` (Ensembl ID and symbol per line, no header) and
    ``B.scp.barcodes.tsv`` (cell IDs); ``metadata`` is the portal's cell table (tab-separated,
    header line, then the portal's ``TYPE`` row, then one row per cell keyed by ``NAME``).
    """

    bundles: tuple[str, ...]
    metadata: str
    directory: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "bundles", tuple(self.bundles))
        if not self.bundles or len(set(self.bundles)) != len(self.bundles):
            msg = f"bundles must be a non-empty list of distinct names (got {list(self.bundles)})"
            raise ValueError(msg)

    def bundle_files(self, bundle: str) -> dict[str, str]:
        """Registry keys of a bundle's ``matrix``, ``features`` and ``barcodes`` files."""
        prefix = f"{self.directory.rstrip('/')}/" if self.directory else ""
        return {
            part: f"{prefix}{bundle}.scp.{suffix}"
            for part, suffix in (
                ("matrix", "raw.mtx"),
                ("features", "features.tsv"),
                ("barcodes", "barcodes.tsv"),
            )
        }

    def resources(self) -> list[str]:
        """Every registry key the source reads: the bundles' files, then the metadata."""
        keys = [k for b in self.bundles for k in self.bundle_files(b).values()]
        return [*keys, self.metadata]


#: Folder of the matrix in a Cell Ranger 1.1.0 ``filtered_gene_bc_matrices`` archive (PBMC 68k).
DEFAULT_MATRIX_DIR = "filtered_matrices_mex/hg19"


@dataclass(frozen=True)
class TenxMtxTarSource:
    """A 10x Genomics Cell Ranger archive (``.tar.gz``) of a MatrixMarket matrix folder.

    ``resource``: the archive's key in the download registry (its path under ``resources/``);
    ``matrix_dir``: the folder of ``matrix.mtx``, ``genes.tsv`` and ``barcodes.tsv`` inside it.
    """

    resource: str
    matrix_dir: str = DEFAULT_MATRIX_DIR

    def __post_init__(self) -> None:
        parts = self.matrix_dir.split("/")
        if self.matrix_dir.startswith("/") or ".." in parts:
            msg = f"matrix_dir must be a relative path inside the archive (got {self.matrix_dir!r})"
            raise ValueError(msg)
        if not self.resource:
            msg = "resource must name a download registry key"
            raise ValueError(msg)


#: Source kinds of a dataset entry and the dataclass each is parsed into.
SOURCE_KINDS: dict[str, type] = {
    "simulate": SimulationParams,
    "h5ad": H5adSource,
    "tenx_mtx_tar": TenxMtxTarSource,
    "scp_bundles": ScpBundlesSource,
}


@dataclass(frozen=True)
class SubsetSpec:
    """Cells and genes kept before anything else (the paper's dataset-specific filters).

    ``obs``: column -> values kept (a cell is kept when every listed column has one of its
    values); ``drop_var_prefixes``: genes whose name starts with one of these are dropped (the
    COVID-19 data's ``AB`` antibody features). An ``.h5ad`` source is subset while it is read, so
    only the kept cells' counts are ever loaded.
    """

    obs: dict[str, tuple[str, ...]] = field(default_factory=dict)
    drop_var_prefixes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        obs = {str(k): tuple(str(v) for v in vals) for k, vals in self.obs.items()}
        if any(not vals for vals in obs.values()):
            msg = f"subset.obs: every column needs at least one value (got {obs})"
            raise ValueError(msg)
        object.__setattr__(self, "obs", obs)
        object.__setattr__(self, "drop_var_prefixes", tuple(self.drop_var_prefixes))


@dataclass(frozen=True)
class SampleMetadataSpec:
    """A table of per-sample (or per-donor) covariates joined onto the cells.

    ``resource`` (a download registry key) or ``path``: a tab-separated file with a header;
    ``join_key``: the column shared by the table and ``obs`` (the sample key, a donor column...).
    Every value of ``obs[join_key]`` must have a row; the table's other columns are added to
    ``obs``.
    """

    join_key: str
    resource: str | None = None
    path: str | None = None

    def __post_init__(self) -> None:
        _check_file_choice(self)


@dataclass(frozen=True)
class CovidRecipe:
    """COVID-19 PBMCs (Stephenson et al. 2021): ``age_int`` parsed from ``Age_interval``.

    ``Age_interval`` holds strings such as ``"(20, 29]"``; ``age_int`` is the interval's lower
    bound as an integer (the paper's age covariate).
    """

    age_column: str = "Age_interval"


#: sci-Plex 3 cell lines (``obs['cell_type']`` of the published file).
SCIPLEX_CELL_LINES = ("A549", "K562", "MCF7")


@dataclass(frozen=True)
class SciplexRecipe:
    """sci-Plex 3 (Srivatsan et al. 2020), one cell line of the paper's filtered screen.

    Shared by the cell lines (rule ``sciplex_screen``, run once per distinct setting): each cell
    gets its ``plate_oligo`` from ``plate_table`` (Science Table S3); per cell line, drug-dose
    groups are tested against ``Vehicle_0`` (t-test on log1p counts, Benjamini-Hochberg) and a drug
    is kept when one of its doses has at least ``deg_min_genes`` genes with padj <= ``deg_padj``
    and |log fold change| >= ``deg_min_lfc`` in any of ``cell_lines``; vehicle cells are kept; the
    entry's ``hvg`` selection runs on the kept cells of all cell lines (``hvg.batch_key``
    ``cell_type``). Per cell line: cells of ``cell_line`` with at least ``min_genes`` detected
    genes, the cell-cycle phase (scanpy ``score_genes_cell_cycle``; ``cell_cycle_genes``: S-phase
    genes first, ``n_s_genes`` of them, then G2/M) and ``<cell_line>_deg_product``.
    """

    cell_line: str
    plate_table: str
    cell_cycle_genes: str
    cell_lines: tuple[str, ...] = SCIPLEX_CELL_LINES
    deg_padj: float = 0.05
    deg_min_lfc: float = 0.5
    deg_min_genes: int = 3000
    min_genes: int = 50
    n_s_genes: int = 43

    def __post_init__(self) -> None:
        object.__setattr__(self, "cell_lines", tuple(self.cell_lines))
        if self.cell_line not in self.cell_lines:
            msg = f"cell_line {self.cell_line!r} is not among cell_lines {list(self.cell_lines)}"
            raise ValueError(msg)
        if not 0 < self.deg_padj <= 1 or self.deg_min_lfc < 0:
            msg = f"need 0 < deg_padj <= 1 and deg_min_lfc >= 0 (got {self.deg_padj}, {self.deg_min_lfc})"
            raise ValueError(msg)
        if min(self.deg_min_genes, self.min_genes, self.n_s_genes) < 1:
            msg = "deg_min_genes, min_genes and n_s_genes must be >= 1"
            raise ValueError(msg)


@dataclass(frozen=True)
class IbdRecipe:
    """IBD / Crohn's atlas (Kong et al. 2023): donor of each biosample and the combined nuisance.

    ``donor_column`` is kept from the metadata or built from ``biosample_column`` (the part
    before its first ``_``); the values of ``nuisance_columns`` are joined into one column named
    by joining their names with ``_`` (``Layer_Chem``).
    """

    biosample_column: str = "biosample_id"
    donor_column: str = "donor_id"
    nuisance_columns: tuple[str, ...] = ("Layer", "Chem")

    def __post_init__(self) -> None:
        object.__setattr__(self, "nuisance_columns", tuple(self.nuisance_columns))
        if not self.nuisance_columns:
            msg = "nuisance_columns must name at least one column"
            raise ValueError(msg)


@dataclass(frozen=True)
class SciplexScreen:
    """The sci-Plex screen step shared by the cell-line entries (rule ``sciplex_screen``).

    What it depends on: the published file (``source``, ``subset``), Table S3, the cell lines
    screened together, the DE-gene thresholds and the HVG selection (see :class:`SciplexRecipe`).
    Entries with equal screens share one run, in a folder named by :meth:`key`.
    """

    source: H5adSource
    plate_table: str
    hvg: HVGParams
    subset: SubsetSpec | None = None
    cell_lines: tuple[str, ...] = SCIPLEX_CELL_LINES
    deg_padj: float = 0.05
    deg_min_lfc: float = 0.5
    deg_min_genes: int = 3000

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (rule params; :meth:`from_dict` inverts it)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))  # tuples -> lists

    @classmethod
    def from_dict(cls, entry: dict[str, Any]) -> SciplexScreen:
        """Rebuild a screen from :meth:`to_dict`'s output."""
        entry = dict(entry)
        entry["source"] = H5adSource(**entry["source"])
        entry["hvg"] = HVGParams(**entry["hvg"])
        entry["subset"] = None if entry.get("subset") is None else SubsetSpec(**entry["subset"])
        entry["cell_lines"] = tuple(entry["cell_lines"])
        return cls(**entry)

    def key(self) -> str:
        """Short digest of the settings: the folder of the screen's output."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]


#: Recipe kinds of a dataset entry (the paper's dataset-specific steps) and their dataclasses.
RECIPE_KINDS: dict[str, type] = {"covid": CovidRecipe, "sciplex": SciplexRecipe, "ibd": IbdRecipe}


@dataclass(frozen=True)
class HVGParams:
    """Highly-variable-gene selection (scanpy ``highly_variable_genes`` on counts)."""

    n_top_genes: int = 3000
    flavor: str = "seurat_v3"
    batch_key: str | None = None


def _field_class(cls: type, name: str) -> type:
    """Class of the default value of dataclass field ``name`` (what its default factory builds)."""
    field_ = next(f for f in dataclasses.fields(cls) if f.name == name)
    return type(field_.default_factory())


class _FitSection:
    """A model-fit section of a dataset entry: ``model``, ``train`` and ``seed``.

    ``model`` is parsed into the config dataclass that the ``model`` field's default builds,
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
        return cls(model=model, train=train, seed=_seed(entry.get("seed", 0), f"{where}.seed"))


@dataclass(frozen=True)
class MrVISpec(_FitSection):
    """How to fit MrVI to a dataset (the ``mrvi`` section): architecture, training, seed."""

    model: MrVIConfig = field(default_factory=MrVIConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    seed: int = 0


@dataclass(frozen=True)
class SCVISpec(_FitSection):
    """How to fit scVI for the composition-scVI baseline (``baselines.scvi``), as MrVI's."""

    model: SCVIConfig = field(default_factory=SCVIConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    seed: int = 0


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


#: Cell representations the neighbourhood baselines (Milo, miloDE) can run on: the ``obsm`` of
#: ``representations.h5ad`` (:data:`mrvi_repro.baselines.REPRESENTATION_KEYS`).
BASELINE_REPRESENTATIONS = ("pca", "scvi")


def _milo_config(**settings: Any) -> MiloConfig:
    # imported here: mrvi_repro.baselines imports this package
    from mrvi_repro.baselines import MiloConfig

    return MiloConfig(**settings)


def _milode_config(**settings: Any) -> MiloDEConfig:
    from mrvi_repro.baselines import MiloDEConfig

    return MiloDEConfig(**settings)


class _NhoodSection:
    """A neighbourhood baseline's section: ``config``, ``covariates`` and ``representation``.

    ``config`` holds the method's own settings dataclass (:class:`mrvi_repro.baselines.MiloConfig`
    or :class:`~mrvi_repro.baselines.MiloDEConfig`, the ``config`` field's default), which checks
    them. ``covariates``: sample covariates tested one at a time (``None``: the entry's
    ``sample_covariates``); those without exactly two values are skipped. ``representation``: the
    cell representation of ``representations.h5ad`` the neighbourhoods are built on (one of
    :data:`BASELINE_REPRESENTATIONS`).
    """

    def __post_init__(self) -> None:
        _set_covariates(self)
        if self.representation not in BASELINE_REPRESENTATIONS:
            msg = (
                f"representation must be one of {list(BASELINE_REPRESENTATIONS)} "
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

    config: MiloConfig = field(default_factory=_milo_config)
    covariates: tuple[str, ...] | None = None
    representation: str = "pca"


@dataclass(frozen=True)
class MiloDESpec(_NhoodSection):
    """miloDE differential expression (rule milode): settings, covariates tested, representation."""

    config: MiloDEConfig = field(default_factory=_milode_config)
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
class DESpec:
    """MrVI's differential expression (rule differential_expression).

    ``covariates``: sample covariates fitted jointly in one design (the multivariate analysis;
    ``None``: all the entry's ``sample_covariates``). ``mc_samples``: draws of u per cell.
    ``lfc``: also decode per-gene LFCs, kept as means per ``labels_key`` group (one group ``all``
    without labels). ``lam``: ridge penalty.
    """

    covariates: tuple[str, ...] | None = None
    mc_samples: int = 50
    lfc: bool = True
    lam: float = 0.0

    def __post_init__(self) -> None:
        _set_covariates(self)
        if self.mc_samples < 1 or self.lam < 0:
            msg = f"mc_samples must be >= 1 and lam >= 0 (got {self.mc_samples}, {self.lam})"
            raise ValueError(msg)


#: Linkage methods of the sample dendrograms (``scipy.cluster.hierarchy.linkage``; centroid and
#: median assume Euclidean inputs, which distance matrices between samples are).
LINKAGE_METHODS = ("ward", "average", "complete", "single", "weighted", "centroid", "median")


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
    de: DESpec = field(default_factory=DESpec)
    stratify: StratifySpec = field(default_factory=StratifySpec)

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
        parts = {"distances": DistancesSpec, "de": DESpec, "stratify": StratifySpec}
        return cls(**{k: _build(c, entry.get(k) or {}, f"{where}.{k}") for k, c in parts.items()})


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset entry of the workflow config.

    ``source`` says where the counts come from; ``subset`` which cells and genes are kept,
    ``recipe`` the paper's dataset-specific step, ``sample_metadata`` a table of per-sample
    covariates joined onto the cells; the keys name the ``obs`` columns of the data contract
    (DESIGN.md §4); samples with fewer than ``min_cells_per_sample`` cells are an error, or dropped
    (logged) with ``drop_small_samples``; ``semisynthetic`` (optional) plants the paper's
    semi-synthetic DE/DA effects, which creates the sample key and the covariates; ``mrvi`` says
    how to fit MrVI, ``analysis`` how to analyse it and ``baselines`` how to run the baselines.
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
    mrvi: MrVISpec = field(default_factory=MrVISpec)
    baselines: BaselinesSpec = field(default_factory=BaselinesSpec)
    analysis: AnalysisSpec = field(default_factory=AnalysisSpec)

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
        if not isinstance(kind, str) or kind not in SOURCE_KINDS:
            msg = f"{where}: source.kind must be one of {list(SOURCE_KINDS)} (got {kind!r})"
            raise SpecError(msg)
        entry["source"] = _build(SOURCE_KINDS[kind], source, f"{where}: source")
        if entry.get("subset") is not None:
            entry["subset"] = _build(SubsetSpec, entry["subset"], f"{where}: subset")
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
        if "mrvi" in entry:
            entry["mrvi"] = MrVISpec.from_dict(entry["mrvi"], f"{where}: mrvi")
            if entry["mrvi"].model.prior == "celltype" and entry.get("labels_key") is None:
                msg = f"{where}: mrvi.model.prior 'celltype' needs a labels_key"
                raise SpecError(msg)
        if "baselines" in entry:
            entry["baselines"] = BaselinesSpec.from_dict(entry["baselines"], f"{where}: baselines")
            _check_baselines(entry, where)
        if "analysis" in entry:
            entry["analysis"] = AnalysisSpec.from_dict(entry["analysis"], f"{where}: analysis")
            covariates = entry["analysis"].de.covariates or ()
            unknown = sorted(set(covariates) - set(entry.get("sample_covariates", ())))
            if unknown:
                msg = (
                    f"{where}: analysis.de.covariates {unknown} are not among the sample_covariates"
                )
                raise SpecError(msg)
        return cls(name=name, **entry)

    def resources(self) -> list[str]:
        """Every download-registry key the entry reads (source, sample metadata, recipe files)."""
        keys: list[str] = []
        if isinstance(self.source, ScpBundlesSource):
            keys += self.source.resources()
        elif getattr(self.source, "resource", None) is not None:
            keys.append(self.source.resource)
        if self.sample_metadata is not None and self.sample_metadata.resource is not None:
            keys.append(self.sample_metadata.resource)
        if isinstance(self.recipe, SciplexRecipe):
            keys += [self.recipe.plate_table, self.recipe.cell_cycle_genes]
        return keys

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


def _check_baselines(entry: dict[str, Any], where: str) -> None:
    """Check the baselines settings that depend on other keys of the entry."""
    spec: BaselinesSpec = entry["baselines"]
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
