"""Settings of the data stage: sources, subsets, recipes, HVG selection, simulation, construction.

Frozen dataclasses that check their values on construction; standard library only, so that a
dataset entry (:class:`mrvi_repro.pipeline.DatasetSpec`) can be parsed without importing anndata,
scanpy or JAX.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class SimulationParams:
    """Parameters of :func:`simulate_base`; see its docstring."""

    n_cells: int = 10_000
    n_genes: int = 2_000
    n_cell_types: int = 6
    n_substates: int = 3
    n_programs: int = 3
    n_samples: int = 8
    n_batches: int = 1
    batch_effect_sd: float = 0.3
    median_library_size: float = 2_500.0
    library_size_sd: float = 0.45
    seed: int = 0

    def __post_init__(self) -> None:
        problems = []
        for name in ("n_cells", "n_genes", "n_cell_types", "n_substates", "n_samples", "n_batches"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1 (got {getattr(self, name)})")
        if self.n_programs < 0:
            problems.append(f"n_programs must be >= 0 (got {self.n_programs})")
        if self.n_genes < 50:
            problems.append(f"n_genes must be >= 50 to hold the gene programs (got {self.n_genes})")
        if self.n_batches > self.n_samples:
            problems.append(
                f"n_batches ({self.n_batches}) cannot exceed n_samples ({self.n_samples}): "
                "samples are nested in batches"
            )
        if self.median_library_size <= 0 or self.library_size_sd < 0 or self.batch_effect_sd < 0:
            problems.append("median_library_size must be > 0 and the standard deviations >= 0")
        if problems:
            raise ValueError("invalid simulation parameters: " + "; ".join(problems))


@dataclass(frozen=True)
class SemisyntheticParams:
    """Parameters of :func:`make_semisynthetic` (defaults: the paper's reference code)."""

    resolution: float = 0.1
    n_neighbors: int = 15
    n_pcs: int = 50
    n_subclusters: int = 8
    n_replicates: int = 4
    n_genes_subclustering: int = 500
    subset_ranks: tuple[int, int, int] = (0, 1, 3)
    subsample_rates: tuple[float, ...] = (0.7, 0.8, 0.9, 1.0)
    strong_rate_max: float = 0.8
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "subset_ranks", tuple(int(r) for r in self.subset_ranks))
        object.__setattr__(self, "subsample_rates", tuple(float(r) for r in self.subsample_rates))
        problems = []
        if self.n_subclusters < 2 or self.n_replicates < 1:
            problems.append("n_subclusters must be >= 2 and n_replicates >= 1")
        if len(self.subsample_rates) != self.n_replicates:
            problems.append(
                f"subsample_rates has {len(self.subsample_rates)} entries; it needs one per "
                f"replicate rank (n_replicates = {self.n_replicates})"
            )
        if any(not 0.0 < r <= 1.0 for r in self.subsample_rates):
            problems.append(
                f"subsample_rates must lie in (0, 1] (got {list(self.subsample_rates)})"
            )
        if (
            len(self.subset_ranks) != 3
            or len(set(self.subset_ranks)) != 3
            or min(self.subset_ranks) < 0
        ):
            problems.append(
                f"subset_ranks must be 3 distinct cluster size ranks for A, B, C (got {list(self.subset_ranks)})"
            )
        if (
            self.resolution <= 0
            or self.n_neighbors < 2
            or self.n_pcs < 2
            or self.n_genes_subclustering < 2
        ):
            problems.append(
                "resolution must be > 0 and n_neighbors, n_pcs, n_genes_subclustering >= 2"
            )
        if problems:
            raise ValueError("invalid semi-synthetic parameters: " + "; ".join(problems))

    @property
    def n_subjects(self) -> int:
        """Number of synthetic subjects (subclusters x replicates)."""
        return self.n_subclusters * self.n_replicates

    def as_dict(self) -> dict[str, object]:
        """Plain-dict view (lists for tuples) for storing in ``uns``."""
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


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
    ``obs``. ``values``: column -> the values it may hold (a table compiled by hand is checked
    before it is used: a missing column, an empty cell or any other value is an error naming the
    rows).
    """

    join_key: str
    resource: str | None = None
    path: str | None = None
    values: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_file_choice(self)
        if any(isinstance(vals, str) for vals in self.values.values()):
            msg = f"sample_metadata.values: give each column a list of values (got {self.values})"
            raise ValueError(msg)
        values = {str(k): tuple(str(v) for v in vals) for k, vals in self.values.items()}
        if any(not vals for vals in values.values()):
            msg = f"sample_metadata.values: every column needs at least one value (got {values})"
            raise ValueError(msg)
        object.__setattr__(self, "values", values)


@dataclass(frozen=True)
class CovidRecipe:
    """COVID-19 PBMCs (Stephenson et al. 2021): ``age_int`` and ``days_from_onset`` per patient.

    ``Age_interval`` holds strings such as ``"(20, 29]"``; ``age_int`` is the interval's lower
    bound as an integer (the paper's age covariate). ``Days_from_onset`` (days since symptom
    onset, the paper's DSS) varies within the patients sampled twice; ``days_from_onset`` is each
    patient's earliest numeric value (as a string, so constant within the ``patient_column``
    samples), or the column's own value (``Healthy``, ``Not_known``) for a patient without one.
    """

    age_column: str = "Age_interval"
    onset_column: str = "Days_from_onset"
    patient_column: str = "patient_id"


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
    """Highly-variable-gene selection (scanpy ``highly_variable_genes`` on counts).

    ``keep``: genes kept besides the ``n_top_genes`` most variable ones (those the figures and
    claims read, which must be model genes whether or not they rank among the top).
    """

    n_top_genes: int = 3000
    flavor: str = "seurat_v3"
    batch_key: str | None = None
    keep: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "keep", tuple(str(g) for g in self.keep))


@dataclass(frozen=True)
class ExpectedCounts:
    """The sizes a dataset entry should have after preprocessing, as its source reports them.

    Compared with what preprocessing produced by
    :func:`mrvi_repro.data.preprocess.count_check`, which logs every quantity and warns about each
    that differs by more than ``tolerance`` (relative; the paper rounds, e.g. "463,000 cells").
    Every number is optional (``None``: not reported). ``input_cells``: cells read, before any
    preprocessing (the semi-synthetic base); ``cells``, ``genes``, ``samples``: the preprocessed
    data; ``participants``: distinct values of ``participant_key`` (default: the sample key);
    ``participant_groups``: column -> value -> number of participants with that value (e.g.
    ``{behavior: {B2: 11}}``); ``source``: where the numbers come from; ``note``: what is known
    about a difference (shown with it in the log and the report).
    """

    cells: int | None = None
    input_cells: int | None = None
    genes: int | None = None
    samples: int | None = None
    participants: int | None = None
    participant_key: str | None = None
    participant_groups: dict[str, dict[str, int]] = field(default_factory=dict)
    tolerance: float = 0.01
    source: str = ""
    note: str = ""

    def __post_init__(self) -> None:
        groups = {
            str(col): {str(v): n for v, n in (vals or {}).items()}
            for col, vals in self.participant_groups.items()
        }
        object.__setattr__(self, "participant_groups", groups)
        numbers = [self.cells, self.input_cells, self.genes, self.samples, self.participants]
        numbers += [n for vals in groups.values() for n in vals.values()]
        if any(
            n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 0)
            for n in numbers
        ):
            msg = f"expected counts must be whole numbers >= 0 (got {numbers})"
            raise ValueError(msg)
        if not 0 <= self.tolerance < 1:
            msg = f"expected.tolerance must be in [0, 1) (got {self.tolerance})"
            raise ValueError(msg)
