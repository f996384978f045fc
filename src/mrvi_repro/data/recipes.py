"""The paper's dataset-specific steps (an entry's ``recipe``): COVID-19, sci-Plex 3, IBD.

Each function takes the raw AnnData (counts in ``X``, after the entry's ``subset``) and returns it
with the columns the paper's analyses use; what a step removes is logged with counts. The published
files are those of the paper's data-availability statement (``config/downloads.yaml`` lists each URL
with what is known of its layout); the recipes follow the paper's code (YosefLab/mrvi-reproducibility:
``bin/preprocess.py``, ``conf/datasets/*.json``, ``notebooks/sciplex_preprocess.py``).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scanpy as sc
from scipy import sparse

from .readers import SchemaError, read_tsv

if TYPE_CHECKING:
    from collections.abc import Iterable

    import anndata as ad

    from mrvi_repro.settings.data import CovidRecipe, IbdRecipe, SciplexRecipe, SciplexScreen

logger = logging.getLogger(__name__)

#: ``obs`` columns of the published sci-Plex 3 file that the recipe reads.
SCIPLEX_OBS = ("cell_type", "dose", "product_name", "product_dose", "replicate")
#: Columns of Science Table S3 that the plate join reads (after its title line).
SCIPLEX_PLATE_COLUMNS = ("plate_oligo", "cell_type", "dose", "name", "replicate")
#: Drug names of Table S3 spelled differently in the h5ad file (the paper's code renames them).
SCIPLEX_NAME_FIXES = {"Glesatinib(MGCD265)": "Glesatinib?(MGCD265)", "SNS-314 Mesylate": "SNS-314"}
#: Vehicle product and its ``product_dose`` (the reference group of the DE-gene filter).
VEHICLE, VEHICLE_DOSE = "Vehicle", "Vehicle_0"
#: Constant label of the sci-Plex entries (the paper's ``_dummy``: one cell population).
DUMMY_LABEL = "_dummy"

_AGE = re.compile(r"^\s*[\(\[]\s*(\d+)")


def require_columns(obs: pd.DataFrame, columns: Iterable[str], *, what: str) -> None:
    """Raise :class:`SchemaError` naming each column of ``columns`` that ``obs`` lacks."""
    missing = [c for c in columns if c not in obs.columns]
    if missing:
        msg = f"{what} lacks column(s) {missing}; its columns are {list(obs.columns)}"
        raise SchemaError(msg)


def covid_covariates(adata: ad.AnnData, recipe: CovidRecipe) -> ad.AnnData:
    """Add ``age_int`` and ``days_from_onset`` (see :class:`~mrvi_repro.settings.data.CovidRecipe`).

    ``age_int``: the lower bound of the ``Age_interval`` strings (``"(20, 29]"`` -> 20).
    ``days_from_onset``: per patient, the earliest numeric ``Days_from_onset`` (a patient sampled
    twice has two), as a string; a patient with no numeric value keeps its first value
    (``Healthy``, ``Not_known``).

    Raises
    ------
    SchemaError
        If a column is missing or an age value is not an interval.
    """
    require_columns(
        adata.obs,
        [recipe.age_column, recipe.onset_column, recipe.patient_column],
        what="the COVID-19 data's obs",
    )
    patients = adata.obs[recipe.patient_column].astype(str)
    raw = adata.obs[recipe.onset_column].astype(str)
    days = pd.to_numeric(raw, errors="coerce")
    earliest = days.groupby(patients.to_numpy()).min()
    first = raw.groupby(patients.to_numpy()).first()
    per_patient = pd.Series(
        [
            first[p] if np.isnan(d) else f"{d:g}"
            for p, d in zip(earliest.index, earliest.to_numpy(), strict=True)
        ],
        index=earliest.index,
    )
    adata.obs["days_from_onset"] = pd.Categorical(patients.map(per_patient).to_numpy())
    logger.info(
        "days_from_onset (earliest %s per %s): %d patients with a number of days, others %s",
        recipe.onset_column,
        recipe.patient_column,
        int(earliest.notna().sum()),
        sorted(per_patient[earliest.isna()].unique()),
    )
    values = adata.obs[recipe.age_column].astype(str)
    parsed = values.str.extract(_AGE, expand=False)
    bad = sorted(values[parsed.isna()].unique())
    if bad:
        msg = f"obs[{recipe.age_column!r}] has values that are not intervals like '(20, 29]': {bad[:5]}"
        raise SchemaError(msg)
    adata.obs["age_int"] = parsed.astype(int).to_numpy()
    logger.info("age_int from %s: %s", recipe.age_column, sorted(adata.obs["age_int"].unique()))
    return adata


def ibd_covariates(adata: ad.AnnData, recipe: IbdRecipe) -> ad.AnnData:
    """Add the IBD atlas's derived columns: the donor of each biosample and the combined nuisance.

    ``recipe.donor_column`` is taken from the metadata when present, else built as the part of
    ``biosample_id`` before its first ``_`` (the portal's sample IDs start with the donor);
    ``"_".join(recipe.nuisance_columns)`` joins those columns' values (``Layer_Chem``: tissue
    layer and 10x chemistry, the nuisance of an earlier configuration of the paper).
    """
    require_columns(
        adata.obs,
        [recipe.biosample_column, *recipe.nuisance_columns],
        what="the IBD metadata",
    )
    if recipe.donor_column not in adata.obs.columns:
        donors = adata.obs[recipe.biosample_column].astype(str).str.split("_").str[0]
        adata.obs[recipe.donor_column] = pd.Categorical(donors.to_numpy())
        logger.info(
            "%s from the prefix of %s: %d donors",
            recipe.donor_column,
            recipe.biosample_column,
            adata.obs[recipe.donor_column].nunique(),
        )
    name = "_".join(recipe.nuisance_columns)
    combined = adata.obs[list(recipe.nuisance_columns)].astype(str).agg("_".join, axis=1)
    adata.obs[name] = pd.Categorical(combined.to_numpy())
    logger.info("%s: %s", name, adata.obs[name].value_counts().to_dict())
    return adata


def read_plate_table(path: str | Path) -> pd.DataFrame:
    """Read Science Table S3 of Srivatsan et al. 2020 (a title line, then a tab-separated table).

    Drug names are aligned with the h5ad file's (:data:`SCIPLEX_NAME_FIXES`; an empty name is the
    vehicle) and doses made numbers.

    Raises
    ------
    SchemaError
        If a column of :data:`SCIPLEX_PLATE_COLUMNS` is missing.
    UnreadableInputError
        If the file is empty, an HTML page, or cannot be parsed.
    """
    table = read_tsv(path, "Table S3", header=1, dtype=str, keep_default_na=False)
    require_columns(table, SCIPLEX_PLATE_COLUMNS, what=f"plate table {Path(path).name}")
    table["name"] = table["name"].replace(SCIPLEX_NAME_FIXES).replace("", VEHICLE)
    table["dose"] = pd.to_numeric(table["dose"], errors="raise").astype(float)
    return table


def sciplex_plates(adata: ad.AnnData, table: pd.DataFrame) -> ad.AnnData:
    """Give each cell the ``plate_oligo`` of its (cell line, dose, drug, replicate) in Table S3.

    Cells whose combination is not in the table are dropped (logged); a combination listed with
    several plates takes the last one, as the paper's row-by-row assignment did.
    """
    keys = ["cell_type", "dose", "product_name", "replicate"]
    table = table.rename(columns={"name": "product_name"})[[*keys, "plate_oligo"]]
    n_rows = len(table)
    table = table.drop_duplicates(keys, keep="last")
    if len(table) < n_rows:
        logger.info(
            "plate table: %d rows repeat a combination (last one kept)", n_rows - len(table)
        )
    obs = adata.obs[keys].astype(str)
    obs["dose"] = adata.obs["dose"].astype(float).to_numpy()
    table = table.astype({k: str for k in keys if k != "dose"})
    merged = obs.reset_index(names="_cell").merge(table, on=keys, how="left")
    plate = merged.set_index("_cell")["plate_oligo"].reindex(adata.obs_names)
    missing = plate.isna().to_numpy()
    if missing.any():
        examples = obs.loc[missing].drop_duplicates().head(3).to_dict("records")
        logger.info(
            "plate_oligo: dropped %d of %d cells whose combination is not in the plate table "
            "(e.g. %s)",
            int(missing.sum()),
            adata.n_obs,
            examples,
        )
    if missing.all():
        msg = "no cell's (cell_type, dose, product_name, replicate) is in the plate table"
        raise SchemaError(msg)
    adata = adata[~missing].copy()
    adata.obs["plate_oligo"] = pd.Categorical(plate[~missing].to_numpy())
    logger.info("plate_oligo: %d plates", adata.obs["plate_oligo"].nunique())
    return adata


def deg_counts(adata: ad.AnnData, *, padj: float, min_lfc: float, min_cells: int = 2) -> pd.Series:
    """Count the DE genes of each drug-dose group against the vehicle, in one cell line.

    scanpy ``rank_genes_groups`` (t-test, Benjamini-Hochberg) on log1p counts, each
    ``product_dose`` group against ``Vehicle_0``; a DE gene has padj <= ``padj`` and
    |log fold change| >= ``min_lfc``. Groups with fewer than ``min_cells`` cells are not tested
    (count 0, logged).
    """
    sizes = adata.obs["product_dose"].astype(str).value_counts()
    if sizes.get(VEHICLE_DOSE, 0) < min_cells:
        msg = f"the cell line has {sizes.get(VEHICLE_DOSE, 0)} {VEHICLE_DOSE} cells; the DE-gene filter needs them"
        raise SchemaError(msg)
    groups = [g for g, n in sizes.items() if g != VEHICLE_DOSE and n >= min_cells]
    untested = sorted(g for g, n in sizes.items() if g != VEHICLE_DOSE and n < min_cells)
    if untested:
        logger.info("%d drug-dose groups with < %d cells not tested", len(untested), min_cells)
    counts = pd.Series(0, index=[g for g in sizes.index if g != VEHICLE_DOSE], dtype=int)
    if not groups:
        return counts
    logged = adata[adata.obs["product_dose"].astype(str).isin([*groups, VEHICLE_DOSE])].copy()
    logged.obs["product_dose"] = logged.obs["product_dose"].astype(str).astype("category")
    logged.X = sparse.csr_matrix(logged.X, dtype=np.float32).log1p()
    sc.tl.rank_genes_groups(
        logged,
        groupby="product_dose",
        groups=groups,
        reference=VEHICLE_DOSE,
        method="t-test",
        corr_method="benjamini-hochberg",
    )
    result = logged.uns["rank_genes_groups"]
    for group in groups:
        padj_g = np.asarray(result["pvals_adj"][group], dtype=float)
        lfc_g = np.asarray(result["logfoldchanges"][group], dtype=float)
        counts[group] = int(((padj_g <= padj) & (np.abs(lfc_g) >= min_lfc)).sum())
    return counts


def sciplex_screen(adata: ad.AnnData, screen: SciplexScreen, plate_table: str | Path) -> ad.AnnData:
    """Filter the sci-Plex 3 screen as the paper did, for the three cell-line datasets at once.

    Steps: ``plate_oligo`` from Table S3 (:func:`sciplex_plates`); per cell line of
    ``screen.cell_lines`` the DE genes of every drug-dose group (:func:`deg_counts`); drugs with
    at least ``deg_min_genes`` DE genes at some dose in some cell line are kept, with all vehicle
    cells; ``obs['<CL>_deg_product']`` and ``obs['<CL>_deg_product_dose']`` ("True"/"False") say
    which drug and drug-dose passed in each cell line; ``_dummy`` = "1". (The paper then selects
    5,000 seurat_v3 HVGs with ``batch_key`` ``cell_type`` on the kept cells:
    :func:`mrvi_repro.data.preprocess.build_sciplex_screen`.)

    Raises
    ------
    SchemaError
        If an ``obs`` column of :data:`SCIPLEX_OBS` or a plate-table column is missing.
    """
    require_columns(adata.obs, SCIPLEX_OBS, what="the sci-Plex data's obs")
    lines = adata.obs["cell_type"].astype(str)
    absent = sorted(set(screen.cell_lines) - set(lines))
    if absent:
        msg = f"cell lines {absent} do not occur in obs['cell_type'] ({sorted(set(lines))})"
        raise SchemaError(msg)
    keep_lines = lines.isin(screen.cell_lines).to_numpy()
    if not keep_lines.all():
        logger.info("dropped %d cells of other cell lines", int((~keep_lines).sum()))
        adata = adata[keep_lines].copy()
    adata = sciplex_plates(adata, read_plate_table(plate_table))
    product = adata.obs["product_name"].astype(str)
    product_dose = adata.obs["product_dose"].astype(str)
    kept: set[str] = set()
    for line in screen.cell_lines:
        in_line = (adata.obs["cell_type"].astype(str) == line).to_numpy()
        counts = deg_counts(adata[in_line], padj=screen.deg_padj, min_lfc=screen.deg_min_lfc)
        passed_dose = set(counts.index[counts >= screen.deg_min_genes])
        passed = {d.rsplit("_", 1)[0] for d in passed_dose}
        kept |= passed
        adata.obs[f"{line}_deg_product"] = pd.Categorical(product.isin(passed).astype(str))
        adata.obs[f"{line}_deg_product_dose"] = pd.Categorical(
            product_dose.isin(passed_dose).astype(str)
        )
        logger.info(
            "%s: %d of %d drug-dose groups have >= %d DE genes (max %d); drugs passing: %d",
            line,
            len(passed_dose),
            len(counts),
            screen.deg_min_genes,
            int(counts.max()) if len(counts) else 0,
            len(passed),
        )
    keep = (product.isin(kept) | (product == VEHICLE)).to_numpy()
    logger.info(
        "DE-gene filter: kept %d drugs (+ vehicle), %d of %d cells",
        len(kept),
        int(keep.sum()),
        adata.n_obs,
    )
    if not keep.any():
        msg = "the DE-gene filter keeps no cell"
        raise SchemaError(msg)
    adata = adata[keep].copy()
    adata.obs[DUMMY_LABEL] = pd.Categorical(["1"] * adata.n_obs)
    return adata


def read_cell_cycle_genes(path: str | Path, n_s_genes: int) -> tuple[list[str], list[str]]:
    """S-phase and G2/M genes from a one-symbol-per-line list (Tirosh et al.: 43 S, then G2/M)."""
    genes = [g.strip() for g in Path(path).read_text().splitlines() if g.strip()]
    if len(genes) <= n_s_genes:
        msg = f"{Path(path).name}: {len(genes)} genes, need more than the {n_s_genes} S-phase genes"
        raise SchemaError(msg)
    return genes[:n_s_genes], genes[n_s_genes:]


def sciplex_cell_line(
    adata: ad.AnnData, recipe: SciplexRecipe, cell_cycle_genes: str | Path
) -> ad.AnnData:
    """One cell line of the screen: its cells with >= ``min_genes`` genes, and their cell-cycle phase.

    Phase: counts normalised to 1e5, log1p, scaled, then scanpy ``score_genes_cell_cycle``
    (``S_score``, ``G2M_score``, ``phase``); ``X`` keeps the counts.
    """
    in_line = (adata.obs["cell_type"].astype(str) == recipe.cell_line).to_numpy()
    adata = adata[in_line].copy()
    logger.info("cell line %s: %d cells", recipe.cell_line, adata.n_obs)
    n_genes = np.asarray((adata.X > 0).sum(axis=1)).ravel()
    few = n_genes < recipe.min_genes
    if few.any():
        logger.info(
            "dropped %d cells with fewer than %d detected genes", int(few.sum()), recipe.min_genes
        )
        adata = adata[~few].copy()
    s_genes, g2m_genes = read_cell_cycle_genes(cell_cycle_genes, recipe.n_s_genes)
    s_found = [g for g in s_genes if g in adata.var_names]
    g2m_found = [g for g in g2m_genes if g in adata.var_names]
    logger.info(
        "cell-cycle genes among the %d genes: %d of %d S, %d of %d G2/M",
        adata.n_vars,
        len(s_found),
        len(s_genes),
        len(g2m_found),
        len(g2m_genes),
    )
    if not s_found or not g2m_found:
        msg = "no S-phase or no G2/M gene of the cell-cycle list is among the selected genes"
        raise SchemaError(msg)
    scored = adata.copy()
    sc.pp.normalize_total(scored, target_sum=1e5)
    sc.pp.log1p(scored)
    scored.X = scored.X.toarray()  # scaling centres every gene: dense cells x HVGs, float32
    sc.pp.scale(scored)
    sc.tl.score_genes_cell_cycle(scored, s_genes=s_found, g2m_genes=g2m_found)
    for column in ("S_score", "G2M_score", "phase"):
        adata.obs[column] = scored.obs[column].to_numpy()
    adata.obs["phase"] = adata.obs["phase"].astype("category")
    logger.info("phase: %s", adata.obs["phase"].value_counts().to_dict())
    return adata
