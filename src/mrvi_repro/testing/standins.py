"""Small synthetic stand-ins of the paper's published files, in their exact formats and schemas.

The real files cannot be downloaded on machines without internet (and one needs a sign-in), so the
download and preprocessing rules of the PBMC 68k, COVID-19, sci-Plex 3 and IBD entries are
exercised on these: same file types, ``obs``/``var`` column names, categories, count layouts and
quirks (a title line in Table S3, the portal's ``TYPE`` row, log-normalised ``X`` with counts in
``layers['raw']``, antibody features, drug names spelled differently in two files), with simulated
counts. The schemas are those documented for the published files (10x Cell Ranger 1.1.0 matrices;
the COVID-19 h5ad of the Sanger COG release; sc-pert's sci-Plex h5ad and Table S3 of Srivatsan et
al. 2020; the Broad Single Cell Portal bundles of SCP1884) and the columns the paper's code reads;
where a detail could not be checked against the real file, the stand-in follows the best guess and
the reader does not depend on it.

The dataset writers return the registry keys they wrote (paths relative to ``root``) so that a
test can serve them or place them; they take a seed and are deterministic.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anndata as ad
import numpy as np
import pandas as pd
import scipy.io
from scipy import sparse

from mrvi_repro.data.simulate import simulate_base
from mrvi_repro.settings.data import SimulationParams

if TYPE_CHECKING:
    from collections.abc import Sequence

#: The 23 ``obs`` columns of ``haniffa21.processed.h5ad``, in the file's order.
COVID_OBS = (
    "sample_id",
    "n_genes",
    "n_genes_by_counts",
    "total_counts",
    "total_counts_mt",
    "pct_counts_mt",
    "full_clustering",
    "initial_clustering",
    "Resample",
    "Collection_Day",
    "Sex",
    "Age_interval",
    "Swab_result",
    "Status",
    "Smoker",
    "Status_on_day_collection",
    "Status_on_day_collection_summary",
    "Days_from_onset",
    "Site",
    "time_after_LPS",
    "Worst_Clinical_Status",
    "Outcome",
    "patient_id",
)
#: The 16 ``obs`` columns of the sci-Plex 3 file (``Srivatsan_2019_raw.h5ad``), in its order.
SCIPLEX_OBS_ALL = (
    "cell_type",
    "dose",
    "dose_character",
    "dose_pattern",
    "g1s_score",
    "g2m_score",
    "pathway",
    "pathway_level_1",
    "pathway_level_2",
    "product_dose",
    "product_name",
    "proliferation_index",
    "replicate",
    "size_factor",
    "target",
    "vehicle",
)
#: IBD atlas bundles (``{colon, terminal ileum} x {epithelial, immune, stromal}``).
IBD_BUNDLES = ("CO_EPI", "CO_IMM", "CO_STR", "TI_EPI", "TI_IMM", "TI_STR")
#: Columns of the portal metadata stand-in (``metadata/scp_metadata_combined.v2.txt``) and the
#: portal's TYPE of each.
IBD_METADATA = {
    "NAME": "TYPE",
    "biosample_id": "group",
    "donor_id": "group",
    "n_genes": "numeric",
    "n_counts": "numeric",
    "Chem": "group",
    "Site": "group",
    "Type": "group",
    "Layer": "group",
    "Celltype": "group",
    "disease": "group",
    "disease__ontology_label": "group",
    "organ": "group",
    "organ__ontology_label": "group",
    "library_preparation_protocol": "group",
    "species": "group",
    "species__ontology_label": "group",
    "sex": "group",
}


def write_10x_archive(
    path: str | Path,
    counts: Any,
    gene_ids: Sequence[str],
    symbols: Sequence[str],
    barcodes: Sequence[str],
    *,
    matrix_dir: str | None = None,
    skip: Sequence[str] = (),
) -> str | Path:
    """Write a Cell Ranger 1.x matrix archive as 10x publishes PBMC 68k (its download's stand-in).

    Folders ``filtered_matrices_mex/hg19/`` (or ``matrix_dir``) holding plain ``matrix.mtx``
    (integer, genes x cells, from ``counts``: cells x genes, sparse), ``genes.tsv`` (Ensembl ID,
    symbol; no header) and ``barcodes.tsv``; files named in ``skip`` are left out.
    """
    matrix_dir = matrix_dir or "filtered_matrices_mex/hg19"
    mtx = io.BytesIO()
    scipy.io.mmwrite(mtx, sparse.coo_matrix(np.asarray(counts.T.todense(), dtype=np.int64)))
    files = {
        "matrix.mtx": mtx.getvalue(),
        "genes.tsv": "".join(
            f"{g}\t{s}\n" for g, s in zip(gene_ids, symbols, strict=True)
        ).encode(),
        "barcodes.tsv": "".join(f"{b}\n" for b in barcodes).encode(),
    }
    with tarfile.open(path, "w:gz") as tar:
        parts = matrix_dir.split("/")
        for i in range(1, len(parts) + 1):
            info = tarfile.TarInfo("/".join(parts[:i]) + "/")
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for name, data in files.items():
            if name in skip:
                continue
            info = tarfile.TarInfo(f"{matrix_dir}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _counts(n_cells: int, n_genes: int, n_samples: int, seed: int) -> ad.AnnData:
    return simulate_base(
        SimulationParams(n_cells=n_cells, n_genes=n_genes, n_samples=n_samples, seed=seed)
    )


def write_covid_standin(
    root: str | Path,
    *,
    n_patients: int = 12,
    n_cells: int = 1800,
    n_genes: int = 300,
    seed: int = 0,
) -> list[str]:
    """Write ``covid/haniffa21.processed.h5ad`` under ``root`` in the published schema.

    ``X``: log1p of counts normalised to 1e4 (not counts, as in the published file);
    ``layers['raw']``: the integer counts of genes and antibodies; genes then five ``AB_*``
    antibody features (``var['feature_types']`` ``Gene Expression`` / ``Antibody Capture``,
    ``var['n_cells']``); all 23 ``obs`` columns as categoricals (numbers as in the file). Patients
    are spread over the sites ``Ncl``, ``Cambridge`` and ``Sanger`` and the statuses ``Covid``,
    ``Healthy``, ``Non_covid`` and ``LPS``; two Newcastle patients have two samples.
    """
    rng = np.random.default_rng(seed)
    base = _counts(n_cells, n_genes, n_patients, seed)
    n_ab = 5
    ab = rng.poisson(rng.gamma(2.0, 10.0, size=n_ab), size=(n_cells, n_ab))
    counts = sparse.hstack([base.X, sparse.csr_matrix(ab)], format="csr").astype(np.float32)
    lib = np.asarray(counts.sum(axis=1)).ravel()
    norm = sparse.diags(1e4 / np.maximum(lib, 1)) @ counts
    x = sparse.csr_matrix(norm).log1p().astype(np.float32)

    patients = [f"MH{8919000 + i}" if i % 3 else f"AP{i}" for i in range(n_patients)]
    sites = ["Ncl", "Ncl", "Cambridge", "Ncl", "Sanger", "Ncl"]
    statuses = ["Covid", "Healthy", "Covid", "Non_covid", "Covid", "LPS", "Healthy"]
    severity = {"Covid": ["Mild", "Moderate", "Severe", "Critical"], "Healthy": ["Healthy"]}
    per_patient = pd.DataFrame(
        {
            "patient_id": patients,
            "Site": [sites[i % len(sites)] for i in range(n_patients)],
            "Status": [statuses[i % len(statuses)] for i in range(n_patients)],
            "Sex": rng.choice(["Male", "Female"], size=n_patients),
            "Age_interval": [f"({a}, {a + 9}]" for a in rng.choice(range(20, 90, 10), n_patients)],
            "Smoker": rng.choice(["Non-smoker", "Smoker", "Unknown"], size=n_patients),
            "Outcome": rng.choice(["Home", "unknown", "Death"], size=n_patients),
        }
    )
    per_patient["Worst_Clinical_Status"] = [
        severity.get(s, [s])[i % len(severity.get(s, [s]))]
        for i, s in enumerate(per_patient["Status"])
    ]
    codes = base.obs["sample"].cat.codes.to_numpy()
    obs = per_patient.iloc[codes].reset_index(drop=True)
    # two Newcastle patients sampled twice (sample_id differs, patient_id does not)
    second = np.zeros(n_cells, dtype=bool)
    twice = per_patient.index[per_patient["Site"] == "Ncl"][:2]
    for p in twice:
        cells = np.flatnonzero(codes == p)
        second[cells[: len(cells) // 2]] = True
    obs["sample_id"] = [
        f"{p}_{'b' if s else 'a'}" for p, s in zip(obs["patient_id"], second, strict=True)
    ]
    status = obs["Status"].to_numpy()
    obs["Collection_Day"] = np.where(second, "D7", "D0")
    obs["Resample"] = np.where(second, "Resample", "Initial")
    obs["Swab_result"] = np.where(status == "Covid", "Positive", "Negative")
    obs["Status_on_day_collection"] = obs["Worst_Clinical_Status"].to_numpy()
    obs["Status_on_day_collection_summary"] = obs["Worst_Clinical_Status"].to_numpy()
    obs["Days_from_onset"] = np.where(
        status == "Covid", rng.integers(1, 30, n_cells).astype(str), status
    )
    obs["time_after_LPS"] = np.where(status == "LPS", "10h", "nan")
    labels = base.obs["cell_type"].astype(str).str.replace(" ", "_").to_numpy()
    obs["initial_clustering"] = labels
    obs["full_clustering"] = [
        f"{lab}.{s}" for lab, s in zip(labels, base.obs["substate"].cat.codes, strict=True)
    ]
    genes_lib = np.asarray(base.X.sum(axis=1)).ravel()
    obs["n_genes"] = np.asarray((base.X > 0).sum(axis=1)).ravel()
    obs["n_genes_by_counts"] = obs["n_genes"]
    obs["total_counts"] = genes_lib.astype(np.float32)
    obs["total_counts_mt"] = (genes_lib * 0.03).astype(np.float32)
    obs["pct_counts_mt"] = np.float32(3.0)
    obs = obs[list(COVID_OBS)]
    for column in obs.columns:
        if obs[column].dtype == object:
            obs[column] = obs[column].astype("category")
    obs.index = [f"{b}-{s}" for b, s in zip(base.obs_names, obs["sample_id"], strict=True)]

    symbols = [*base.var_names.astype(str), "AB_CD3", "AB_CD4", "AB_CD8", "AB_CD14", "AB_CD19"]
    var = pd.DataFrame(
        {
            "feature_types": pd.Categorical(
                ["Gene Expression"] * n_genes + ["Antibody Capture"] * n_ab
            ),
            "n_cells": np.asarray((counts > 0).sum(axis=0)).ravel(),
        },
        index=symbols,
    )
    adata = ad.AnnData(X=x, obs=obs, var=var, layers={"raw": counts})
    key = "covid/haniffa21.processed.h5ad"
    (Path(root) / key).parent.mkdir(parents=True, exist_ok=True)
    adata.write_h5ad(Path(root) / key)
    return [key]


#: Drugs of the sci-Plex stand-in: (product_name, planted effect size, pathway, target). The
#: first is named as in the h5ad file where Table S3 spells it ``Glesatinib(MGCD265)``.
SCIPLEX_DRUGS = (
    ("Glesatinib?(MGCD265)", 3.0, "Tyrosine kinase signaling", "MET"),
    ("SNS-314", 2.0, "Cell cycle regulation", "Aurora Kinase"),
    ("Dacinostat", 0.0, "Epigenetic regulation", "HDAC"),
)
SCIPLEX_DOSES = (10, 100, 1000, 10000)


def cell_cycle_gene_names(n_s: int = 43, n_g2m: int = 54) -> tuple[list[str], list[str]]:
    """Stand-in S-phase and G2/M gene symbols (``S_GENE01``..., ``G2M_GENE01``...)."""
    return [f"S_GENE{i + 1:02d}" for i in range(n_s)], [
        f"G2M_GENE{i + 1:02d}" for i in range(n_g2m)
    ]


def write_sciplex_standin(
    root: str | Path, *, cells_per_condition: int = 24, n_genes: int = 400, seed: int = 0
) -> list[str]:
    """Write the sci-Plex 3 stand-ins under ``root``: the h5ad, Table S3 and the cell-cycle list.

    ``sciplex/Srivatsan_2019_raw.h5ad``: the 16 ``obs`` columns of the published file for the cell
    lines A549, K562 and MCF7 x (vehicle + :data:`SCIPLEX_DRUGS` x 4 doses) x 2 replicates, integer
    counts in ``X`` (float32), gene symbols as ``var_names`` with ``var['id']`` (versioned Ensembl
    IDs) and the three ``num_cells_expressed`` columns; the first two drugs change the expression
    of many genes in a dose-dependent way (more at higher dose; the second only in A549), the third
    not at all. ``sciplex/aax6234-srivatsan-table-s3.txt``: a title line, then the tab-separated
    plate table (``plate_oligo``, ``cell_type``, ``dose``, ``name``, ``replicate``,
    ``catalog_number``; vehicle wells with an empty name; the published file's spelling of two
    drugs). ``genesets/regev_lab_cell_cycle_genes.txt``: 43 S then 54 G2/M symbols, all among the
    genes and expressed with a cycling program.
    """
    rng = np.random.default_rng(seed)
    lines = ("A549", "K562", "MCF7")
    conditions = [("Vehicle", 0)] + [(d[0], dose) for d in SCIPLEX_DRUGS for dose in SCIPLEX_DOSES]
    rows = [
        (line, name, dose, rep)
        for line in lines
        for name, dose in conditions
        for rep in ("rep1", "rep2")
        for _ in range(cells_per_condition)
    ]
    obs = pd.DataFrame(rows, columns=["cell_type", "product_name", "dose", "replicate"])
    n_cells = len(obs)
    s_genes, g2m_genes = cell_cycle_gene_names()
    base = _counts(n_cells, n_genes, 6, seed)
    symbols = [*s_genes, *g2m_genes, *base.var_names[len(s_genes) + len(g2m_genes) :]]
    mean = np.asarray(base.X.todense(), dtype=np.float64) + 0.2
    cycling = rng.random(n_cells) < 0.5
    phase_genes = np.where(rng.random(n_cells) < 0.5, 0, 1)
    for i in np.flatnonzero(cycling):
        block = slice(0, 43) if phase_genes[i] == 0 else slice(43, 97)
        mean[i, block] *= 6.0
    line_effect = {line: rng.normal(0, 0.5, n_genes) for line in lines}
    effects = {d[0]: d[1] for d in SCIPLEX_DRUGS}
    drug_genes = {
        d[0]: rng.choice(n_genes, size=n_genes // 2, replace=False) for d in SCIPLEX_DRUGS
    }
    for i, (line, name, dose) in enumerate(
        obs[["cell_type", "product_name", "dose"]].itertuples(index=False)
    ):
        mean[i] *= np.exp(line_effect[line])
        effect = effects.get(name, 0.0)
        if name == "SNS-314" and line != "A549":
            effect = 0.0
        if effect:
            scale = effect * np.log10(dose) / 4.0
            signs = np.where(np.arange(len(drug_genes[name])) % 2 == 0, 1.0, -1.0)
            mean[i, drug_genes[name]] *= np.exp(scale * signs)
    counts = rng.poisson(mean).astype(np.float32)
    obs["dose"] = obs["dose"].astype(float)
    dose_int = obs["dose"].astype(int)
    obs["product_dose"] = obs["product_name"] + "_" + dose_int.astype(str)
    obs["dose_character"] = dose_int.astype(str)
    obs["dose_pattern"] = dose_int.map({0: "0", 10: "1", 100: "2", 1000: "3", 10000: "4"})
    info = {d[0]: d for d in SCIPLEX_DRUGS}
    obs["pathway"] = obs["product_name"].map(lambda n: info[n][2] if n in info else "Vehicle")
    obs["pathway_level_1"] = obs["pathway"]
    obs["pathway_level_2"] = obs["pathway"] + " (level 2)"
    obs["target"] = obs["product_name"].map(lambda n: info[n][3] if n in info else "Vehicle")
    obs["vehicle"] = (obs["product_name"] == "Vehicle").astype(float)
    obs["g1s_score"] = rng.normal(size=n_cells)
    obs["g2m_score"] = rng.normal(size=n_cells)
    obs["proliferation_index"] = obs["g1s_score"] + obs["g2m_score"]
    obs["size_factor"] = counts.sum(axis=1) / np.median(counts.sum(axis=1))
    obs = obs[list(SCIPLEX_OBS_ALL)]
    for column in obs.columns:
        if obs[column].dtype == object:
            obs[column] = obs[column].astype("category")
    obs.index = [f"cell{i:06d}_{lab}" for i, lab in enumerate(obs["cell_type"])]
    expressed = counts > 0
    var = pd.DataFrame(
        {
            "id": [f"ENSG{i:011d}.{1 + i % 3}" for i in range(n_genes)],
            "num_cells_expressed-0-0": expressed.sum(axis=0),
            "num_cells_expressed-1-0": expressed.sum(axis=0),
            "num_cells_expressed-1": expressed.sum(axis=0),
        },
        index=symbols,
    )
    root = Path(root)
    keys = [
        "sciplex/Srivatsan_2019_raw.h5ad",
        "sciplex/aax6234-srivatsan-table-s3.txt",
        "genesets/regev_lab_cell_cycle_genes.txt",
    ]
    for key in keys:
        (root / key).parent.mkdir(parents=True, exist_ok=True)
    ad.AnnData(X=sparse.csr_matrix(counts), obs=obs, var=var).write_h5ad(root / keys[0])

    table_names = {"Glesatinib?(MGCD265)": "Glesatinib(MGCD265)", "SNS-314": "SNS-314 Mesylate"}
    plate_rows = []
    for line in lines:
        for rep_i, rep in enumerate(("rep1", "rep2")):
            for name, dose in conditions:
                plate_rows.append(
                    {
                        "plate_oligo": f"P{1 + 2 * lines.index(line) + rep_i}_{'ABCD'[dose % 4]}",
                        "cell_type": line,
                        "replicate": rep,
                        "dose": dose,
                        "name": "" if name == "Vehicle" else table_names.get(name, name),
                        "catalog_number": "" if name == "Vehicle" else f"S{1000 + len(name)}",
                    }
                )
    text = io.StringIO()
    text.write("Table S3. Plate and well layout of the sci-Plex 3 screen\n")
    pd.DataFrame(plate_rows).to_csv(text, sep="\t", index=False)
    (root / keys[1]).write_text(text.getvalue())
    (root / keys[2]).write_text("".join(f"{g}\n" for g in [*s_genes, *g2m_genes]))
    return keys


def write_ibd_standin(
    root: str | Path,
    *,
    bundles: tuple[str, ...] = IBD_BUNDLES,
    n_donors: int = 8,
    cells_per_sample: int = 40,
    n_genes: int = 220,
    seed: int = 0,
) -> list[str]:
    """Write the IBD atlas stand-ins under ``root/ibd/``: expression bundles, metadata, donor table.

    Per bundle: ``<B>.scp.raw.mtx`` (MatrixMarket integer counts, genes x cells),
    ``<B>.scp.features.tsv`` (Ensembl ID, symbol; no header; colon and ileum bundles list
    slightly different genes, as the real ones do) and ``<B>.scp.barcodes.tsv``.
    ``scp_metadata_combined.v2.txt``: tab-separated, header, the portal's ``TYPE`` row, one row
    per cell (:data:`IBD_METADATA`; two cells of the bundles have no row). ``donor_covariates.tsv``:
    the per-donor table a user compiles from the paper's supplement (``donor_id``, ``behavior``
    B1/B2/B3 or ``control``, ``procedure`` surgical/biopsy). Biosample IDs start with the donor.
    """
    rng = np.random.default_rng(seed)
    donors = [f"N{10 + i}" for i in range(n_donors)]
    disease = ["CD" if i % 3 else "control" for i in range(n_donors)]
    cd_rank = np.cumsum([d == "CD" for d in disease]) - 1
    behavior = [
        "control" if d == "control" else ("B1", "B2", "B3")[cd_rank[i] % 3]
        for i, d in enumerate(disease)
    ]
    procedure = ["surgical" if b in {"B2", "B3"} else "biopsy" for b in behavior]
    chem = [("v1", "v2", "v3")[i % 3] for i in range(n_donors)]
    sex = rng.choice(["male", "female"], size=n_donors)
    all_genes = [f"ENSG{i:011d}" for i in range(n_genes)]
    all_symbols = [f"GENE{i}" for i in range(n_genes)]
    all_symbols[7] = all_symbols[6]  # a repeated symbol, as in real feature files
    base = _counts(len(bundles) * n_donors * 2 * cells_per_sample, n_genes, 8, seed)
    keys, meta_rows = [], []
    offset = 0
    folder = Path(root) / "ibd"
    folder.mkdir(parents=True, exist_ok=True)
    for bundle in bundles:
        region, compartment = bundle.split("_")
        genes = [g for i, g in enumerate(all_genes) if not (i % 37 == (0 if region == "CO" else 1))]
        gene_idx = [all_genes.index(g) for g in genes]
        names = []
        for d, donor in enumerate(donors):
            for inflamed in (False, True):
                kind = "Heal" if disease[d] == "control" else ("Infl" if inflamed else "NonI")
                sample = f"{donor}_{region}{'b' if inflamed else 'a'}"
                for c in range(cells_per_sample):
                    cell = f"{sample}_{compartment}_{c:04d}"
                    names.append(cell)
                    meta_rows.append(
                        {
                            "NAME": cell,
                            "biosample_id": sample,
                            "donor_id": donor,
                            "Chem": chem[d],
                            "Site": region,
                            "Type": kind,
                            "Layer": "E" if compartment == "EPI" else "L",
                            "Celltype": f"{compartment.title()} {c % 3}",
                            "disease": "PATO_0000461"
                            if disease[d] == "control"
                            else "MONDO_0005011",
                            "disease__ontology_label": (
                                "normal" if disease[d] == "control" else "Crohn disease"
                            ),
                            "organ": "UBERON_0001155" if region == "CO" else "UBERON_0002116",
                            "organ__ontology_label": "colon" if region == "CO" else "ileum",
                            "library_preparation_protocol": f"10x 3' {chem[d]}",
                            "species": "NCBITaxon_9606",
                            "species__ontology_label": "Homo sapiens",
                            "sex": sex[d],
                        }
                    )
        x = base.X[offset : offset + len(names)][:, gene_idx]
        offset += len(names)
        for row, cell_counts in zip(meta_rows[-len(names) :], x, strict=True):
            row["n_genes"] = int(cell_counts.nnz)
            row["n_counts"] = int(cell_counts.sum())
        mtx = io.BytesIO()
        scipy.io.mmwrite(mtx, sparse.coo_matrix(x.T.astype(np.int64)))
        files = {
            f"{bundle}.scp.raw.mtx": mtx.getvalue().decode(),
            f"{bundle}.scp.features.tsv": "".join(
                f"{g}\t{all_symbols[all_genes.index(g)]}\n" for g in genes
            ),
            f"{bundle}.scp.barcodes.tsv": "".join(f"{n}\n" for n in names),
        }
        for name, text in files.items():
            (folder / name).write_text(text)
            keys.append(f"ibd/{name}")
    meta = pd.DataFrame(meta_rows)[list(IBD_METADATA)]
    meta = meta.iloc[2:]  # two cells of the bundles without metadata
    type_row = pd.DataFrame([IBD_METADATA])
    pd.concat([type_row, meta.astype(str)]).to_csv(
        folder / "scp_metadata_combined.v2.txt", sep="\t", index=False
    )
    pd.DataFrame({"donor_id": donors, "behavior": behavior, "procedure": procedure}).to_csv(
        folder / "donor_covariates.tsv", sep="\t", index=False
    )
    return [*keys, "ibd/scp_metadata_combined.v2.txt", "ibd/donor_covariates.tsv"]
