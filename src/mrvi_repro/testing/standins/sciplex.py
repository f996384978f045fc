"""sci-Plex 3 stand-in: the h5ad, Science Table S3 and the cell-cycle list, with pathways planted."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
from scipy import sparse

from ._common import TRUTH_FILES, pick_genes, scale_expression, simulate_pool, write_truth
from .genes import TIROSH_G2M_GENES, TIROSH_S_GENES

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
SCIPLEX_LINES = ("A549", "K562", "MCF7")
SCIPLEX_DOSES = (10, 100, 1000, 10000)
#: Drugs: (``product_name``, ``pathway``, ``pathway_level_1``, ``pathway_level_2``, ``target``,
#: planted program or None, potency, cell lines where it acts). Names as in the h5ad file (Table S3
#: spells ``Glesatinib?(MGCD265)`` and ``SNS-314`` otherwise: :data:`SCIPLEX_TABLE_NAMES`); the
#: annotation columns use the file's vocabulary (e.g. ``Epigenetics`` / ``Epigenetic regulation``
#: / ``Histone deacetylation`` / ``HDAC``). ``Resveratrol`` has no effect.
SCIPLEX_DRUGS: tuple[tuple[str, str, str, str, str, str | None, float, tuple[str, ...]], ...] = (
    ("Dacinostat", "Epigenetics", "Epigenetic regulation", "Histone deacetylation", "HDAC",
     "hdac", 1.0, SCIPLEX_LINES),
    ("Givinostat", "Epigenetics", "Epigenetic regulation", "Histone deacetylation", "HDAC",
     "hdac", 0.8, SCIPLEX_LINES),
    ("Belinostat", "Epigenetics", "Epigenetic regulation", "Histone deacetylation", "HDAC",
     "hdac", 0.9, SCIPLEX_LINES),
    ("Glesatinib?(MGCD265)", "Protein Tyrosine Kinase", "Tyrosine kinase signaling",
     "RTK activity", "MET", "rtk", 1.0, SCIPLEX_LINES),
    ("Crizotinib", "Protein Tyrosine Kinase", "Tyrosine kinase signaling", "RTK activity", "ALK",
     "rtk", 0.8, SCIPLEX_LINES),
    ("SNS-314", "Cell Cycle", "Cell cycle regulation", "Aurora kinase activity", "Aurora Kinase",
     "aurora", 1.0, ("A549",)),
    ("Barasertib", "Cell Cycle", "Cell cycle regulation", "Aurora kinase activity",
     "Aurora Kinase", "aurora", 0.9, SCIPLEX_LINES),
    ("Resveratrol", "Antioxidant", "Antioxidant", "Antioxidant", "Sirtuin", None, 0.0, ()),
)  # fmt: skip
#: Planted programs: name -> (log fold change at full potency and dose 10 uM, genes up, genes down).
SCIPLEX_PROGRAMS = {"hdac": (1.6, 40, 40), "rtk": (1.3, 40, 40), "aurora": (1.3, 40, 40)}
#: Table S3 spelling of drugs the h5ad file names otherwise.
SCIPLEX_TABLE_NAMES = {"Glesatinib?(MGCD265)": "Glesatinib(MGCD265)", "SNS-314": "SNS-314 Mesylate"}
#: Share of cells in each cell-cycle phase, and the fold of the phase's genes.
SCIPLEX_PHASES = {"G1": 0.5, "S": 0.25, "G2M": 0.25}


def dose_scale(dose: float) -> float:
    """Scale of the planted effect at ``dose`` nM: log10(dose) / 4 (0.25 ... 1; 0 at 0)."""
    return float(np.log10(dose) / 4.0) if dose > 0 else 0.0


def cell_cycle_gene_names(n_s: int = 43, n_g2m: int = 54) -> tuple[list[str], list[str]]:
    """S-phase and G2/M gene symbols of Tirosh et al. 2016 (the first ``n_s`` and ``n_g2m``)."""
    return list(TIROSH_S_GENES[:n_s]), list(TIROSH_G2M_GENES[:n_g2m])


def write_sciplex_standin(
    root: str | Path,
    *,
    cells_per_condition: int = 10,
    vehicle_cells: int = 30,
    n_genes: int = 500,
    phase_fold: float = 3.0,
    seed: int = 0,
) -> list[str]:
    """Write the sci-Plex 3 stand-ins under ``root``: the h5ad, Table S3 and the cell-cycle list.

    ``sciplex/Srivatsan_2019_raw.h5ad``: the 16 ``obs`` columns of the published file for the cell
    lines A549, K562 and MCF7 x (vehicle + :data:`SCIPLEX_DRUGS` x 4 doses) x 2 replicates, with
    ``cells_per_condition`` cells per drug, dose and replicate and ``vehicle_cells`` vehicle cells
    per replicate in each cell line; integer counts in ``X`` (float32), gene symbols as
    ``var_names`` with ``var['id']`` (versioned Ensembl IDs) and the three
    ``num_cells_expressed`` columns. ``sciplex/aax6234-srivatsan-table-s3.txt``: a title line,
    then the tab-separated plate table (``plate_oligo``, ``cell_type``, ``dose``, ``name``,
    ``replicate``, ``catalog_number``; vehicle wells with an empty name; the published file's
    spelling of two drugs). ``genesets/regev_lab_cell_cycle_genes.txt``: the 43 S then 54 G2/M
    symbols of Tirosh et al., all among the genes.

    Planted structure (seeded): each pathway's drugs share one program (:data:`SCIPLEX_PROGRAMS`:
    genes up and genes down) whose log fold change is ``log_fold x potency x log10(dose) / 4``
    (:func:`dose_scale`), so it grows with dose (10 < 100 < 1000 < 10000 nM); pathways have
    disjoint programs; ``SNS-314`` acts in A549 only; ``Resveratrol`` has no effect. Each cell
    has a cell-cycle phase (G1, S, G2M in :data:`SCIPLEX_PHASES` shares, independent of drug and
    cell line) and the phase's genes are ``phase_fold`` x higher in it. The cell lines are three
    simulated cell types.

    Truth (``sciplex/standin_truth.json``): ``drugs`` (name -> pathway columns, program, potency,
    cell lines), ``programs`` (name -> ``genes_up``, ``genes_down``, ``log_fold``,
    ``pathway_level_1``), ``doses`` and ``dose_scale``, ``phase`` (genes per phase, fold, shares,
    and ``cells``: obs name -> planted phase).

    Returns
    -------
    The registry keys written.
    """
    rng = np.random.default_rng(seed)
    conditions = [("Vehicle", 0)] + [(d[0], dose) for d in SCIPLEX_DRUGS for dose in SCIPLEX_DOSES]
    rows = [
        (line, name, dose, rep)
        for line in SCIPLEX_LINES
        for name, dose in conditions
        for rep in ("rep1", "rep2")
        for _ in range(vehicle_cells if name == "Vehicle" else cells_per_condition)
    ]
    obs = pd.DataFrame(rows, columns=["cell_type", "product_name", "dose", "replicate"])
    n_cells = len(obs)
    line_arr = obs["cell_type"].to_numpy()
    per_line = [int((line_arr == line).sum()) for line in SCIPLEX_LINES]
    pool = simulate_pool(per_line, n_genes=n_genes, seed=seed, n_substates=1, n_programs=1)
    index = np.empty(n_cells, dtype=int)
    for t, line in enumerate(SCIPLEX_LINES):
        index[line_arr == line] = pool.take(t, per_line[t])
    counts = pool.counts[index].copy()
    expected = pool.profile[pool.cell_type[index]]

    used: set[int] = set()
    expression = pool.profile.mean(axis=0)
    programs: dict[str, dict[str, Any]] = {}
    for name, (log_fold, n_up, n_down) in SCIPLEX_PROGRAMS.items():
        genes = pick_genes(expression, n_up + n_down, rng, exclude=used, band=(0.02, 0.7))
        order = rng.permutation(genes)
        programs[name] = {"up": sorted(order[:n_up]), "down": sorted(order[n_up:]), "lf": log_fold}
    s_genes, g2m_genes = cell_cycle_gene_names()
    cc = pick_genes(expression, len(s_genes) + len(g2m_genes), rng, exclude=used, band=(0.0, 1.0))
    cc = list(rng.permutation(cc))
    s_idx, g2m_idx = cc[: len(s_genes)], cc[len(s_genes) :]
    symbols = [f"G{i + 1:04d}" for i in range(n_genes)]
    for g, symbol in zip([*s_idx, *g2m_idx], [*s_genes, *g2m_genes], strict=True):
        symbols[g] = symbol

    phases = rng.choice(list(SCIPLEX_PHASES), size=n_cells, p=list(SCIPLEX_PHASES.values()))
    scale_expression(counts, expected, np.flatnonzero(phases == "S"), s_idx, phase_fold, rng)
    scale_expression(counts, expected, np.flatnonzero(phases == "G2M"), g2m_idx, phase_fold, rng)
    drug_info = {d[0]: d for d in SCIPLEX_DRUGS}
    keys = obs[["cell_type", "product_name", "dose"]].astype(str).agg("|".join, axis=1)
    for key, rows_idx in obs.groupby(keys.to_numpy()).indices.items():
        line, name, dose = key.split("|")
        info = drug_info.get(name)
        if info is None or info[5] is None or line not in info[7]:
            continue
        program = programs[info[5]]
        lf = program["lf"] * info[6] * dose_scale(float(dose))
        scale_expression(counts, expected, rows_idx, program["up"], np.exp(lf), rng)
        scale_expression(counts, expected, rows_idx, program["down"], np.exp(-lf), rng)

    counts = counts.astype(np.float32)
    obs["dose"] = obs["dose"].astype(float)
    dose_int = obs["dose"].astype(int)
    obs["product_dose"] = obs["product_name"] + "_" + dose_int.astype(str)
    obs["dose_character"] = dose_int.astype(str)
    obs["dose_pattern"] = dose_int.map({0: "0", 10: "1", 100: "2", 1000: "3", 10000: "4"})
    for column, i in (
        ("pathway", 1),
        ("pathway_level_1", 2),
        ("pathway_level_2", 3),
        ("target", 4),
    ):
        obs[column] = obs["product_name"].map(
            lambda n, i=i: drug_info[n][i] if n in drug_info else "Vehicle"
        )
    obs["vehicle"] = (obs["product_name"] == "Vehicle").astype(float)
    lib = counts.sum(axis=1)
    logged = np.log1p(counts / np.maximum(lib, 1)[:, None] * 1e4)
    for column, idx in (("g1s_score", s_idx), ("g2m_score", g2m_idx)):
        score = logged[:, idx].mean(axis=1) - logged.mean(axis=1)
        obs[column] = (score - score.mean()) / score.std()
    obs["proliferation_index"] = obs["g1s_score"] + obs["g2m_score"]
    obs["size_factor"] = lib / np.median(lib)
    obs = obs[list(SCIPLEX_OBS_ALL)]
    for column in obs.columns:
        if obs[column].dtype == object:
            obs[column] = obs[column].astype("category")
    obs.index = [f"cell{i:06d}_{lab}" for i, lab in enumerate(obs["cell_type"])]
    expressed = (counts > 0).sum(axis=0)
    var = pd.DataFrame(
        {
            "id": [f"ENSG{i:011d}.{1 + i % 3}" for i in range(n_genes)],
            "num_cells_expressed-0-0": expressed,
            "num_cells_expressed-1-0": expressed,
            "num_cells_expressed-1": expressed,
        },
        index=symbols,
    )
    root = Path(root)
    keys_out = [
        "sciplex/Srivatsan_2019_raw.h5ad",
        "sciplex/aax6234-srivatsan-table-s3.txt",
        "genesets/regev_lab_cell_cycle_genes.txt",
    ]
    for key in keys_out:
        (root / key).parent.mkdir(parents=True, exist_ok=True)
    ad.AnnData(X=sparse.csr_matrix(counts), obs=obs, var=var).write_h5ad(root / keys_out[0])
    (root / keys_out[1]).write_text(_plate_table(conditions))
    (root / keys_out[2]).write_text("".join(f"{g}\n" for g in [*s_genes, *g2m_genes]))

    truth = {
        "dataset": "sciplex",
        "seed": seed,
        "files": keys_out,
        "truth_file": TRUTH_FILES["sciplex"],
        "sample_key": "product_dose",
        "vehicle": "Vehicle_0",
        "cell_lines": list(SCIPLEX_LINES),
        "drugs": {
            d[0]: {
                "pathway": d[1],
                "pathway_level_1": d[2],
                "pathway_level_2": d[3],
                "target": d[4],
                "program": d[5],
                "potency": d[6],
                "cell_lines": list(d[7]),
            }
            for d in SCIPLEX_DRUGS
        },
        "programs": {
            name: {
                "genes_up": [symbols[g] for g in p["up"]],
                "genes_down": [symbols[g] for g in p["down"]],
                "log_fold": p["lf"],
                "pathway_level_1": next(d[2] for d in SCIPLEX_DRUGS if d[5] == name),
            }
            for name, p in programs.items()
        },
        "effect_rule": (
            "natural-log fold change of a program gene = +/- log_fold x potency x dose_scale[dose]"
            " in the drug's cell lines, 0 elsewhere and for the vehicle"
        ),
        "doses": list(SCIPLEX_DOSES),
        "dose_scale": {str(d): dose_scale(d) for d in SCIPLEX_DOSES},
        "phase": {
            "genes": {"S": s_genes, "G2M": g2m_genes},
            "fold": phase_fold,
            "shares": SCIPLEX_PHASES,
            "cells": dict(zip(obs.index, phases.tolist(), strict=True)),
        },
    }
    write_truth(root, "sciplex", truth)
    return keys_out


def _plate_table(conditions: list[tuple[str, int]]) -> str:
    """Table S3 text: a title line, then one row per cell line, replicate, drug and dose."""
    plate_rows = []
    for line_i, line in enumerate(SCIPLEX_LINES):
        for rep_i, rep in enumerate(("rep1", "rep2")):
            for name, dose in conditions:
                plate_rows.append(
                    {
                        "plate_oligo": f"P{1 + 2 * line_i + rep_i}_{'ABCD'[dose % 4]}",
                        "cell_type": line,
                        "replicate": rep,
                        "dose": dose,
                        "name": "" if name == "Vehicle" else SCIPLEX_TABLE_NAMES.get(name, name),
                        "catalog_number": "" if name == "Vehicle" else f"S{1000 + len(name)}",
                    }
                )
    text = io.StringIO()
    text.write("Table S3. Plate and well layout of the sci-Plex 3 screen\n")
    pd.DataFrame(plate_rows).to_csv(text, sep="\t", index=False)
    return text.getvalue()
