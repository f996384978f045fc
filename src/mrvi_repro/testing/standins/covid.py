"""COVID-19 stand-in: ``covid/haniffa21.processed.h5ad`` with donor groups planted in myeloid cells."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
from scipy import sparse

from mrvi_repro.data.simulate import PBMC_CELL_TYPES

from ._common import (
    TRUTH_FILES,
    barcodes,
    draw_composition,
    pick_genes,
    scale_expression,
    shares_with,
    simulate_pool,
    spread_sizes,
    write_truth,
)
from .genes import COVID_INTERFERON, COVID_LATE

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
#: Cell types: (``initial_clustering``, compartment, ``full_clustering`` labels by sub-state,
#: simulated type it is drawn from, share in healthy donors). ``CD14``, ``CD16``, ``CD4``, ``CD8``,
#: ``DCs``, ``B_cell`` and the fine labels ``C1_CD16_mono``, ``DC2``, ``pDC``, ``Treg``,
#: ``CD4.Naive``, ``CD4.IL22``, ``CD8.Prolif``, ``NK_56hi``, ``B_switched_memory`` are spelled as
#: in the published file; the coarse ``pDC`` and ``NK_16hi`` and the other fine labels follow
#: its naming but were not checked.
COVID_CELL_TYPES: tuple[tuple[str, str, tuple[str, ...], str, float], ...] = (
    ("CD14", "myeloid", ("CD14_mono", "CD83_CD14_mono", "CD14_mono"), "CD14 Mono", 0.20),
    ("CD16", "myeloid", ("CD16_mono", "C1_CD16_mono", "CD16_mono"), "FCGR3A Mono", 0.08),
    ("DCs", "myeloid", ("DC2", "DC1", "DC3"), "DC", 0.05),
    ("pDC", "myeloid", ("pDC", "pDC", "pDC"), "Platelet", 0.03),
    ("CD4", "t_nk", ("CD4.Naive", "CD4.IL22", "Treg"), "CD4 T", 0.27),
    ("CD8", "t_nk", ("CD8.Naive", "CD8.EM", "CD8.Prolif"), "CD8 T", 0.14),
    ("NK_16hi", "t_nk", ("NK_16hi", "NK_56hi", "NK_16hi"), "NK", 0.10),
    ("B_cell", "b", ("B_naive", "B_switched_memory", "B_immature"), "B", 0.13),
)
#: Patients outside the kept Newcastle COVID-19 / healthy set: (Site, Status).
COVID_OTHER_PATIENTS = (
    ("Cambridge", "Covid"),
    ("Cambridge", "Covid"),
    ("Sanger", "Healthy"),
    ("Ncl", "Non_covid"),
    ("Ncl", "LPS"),
)
#: Days from onset of the first sample: early and late donor groups (inclusive ranges).
COVID_DAYS = {"early": (2, 8), "late": (15, 30)}
SEVERITY = ("Asymptomatic", "Mild", "Moderate", "Severe", "Critical", "Death")


def write_covid_standin(
    root: str | Path,
    *,
    n_early: int = 8,
    n_late: int = 8,
    n_healthy: int = 8,
    cells_per_patient: int = 100,
    n_genes: int = 600,
    program_fold: float = 4.0,
    abundance_factor: float = 0.5,
    late_cd16_factor: float = 2.0,
    seed: int = 0,
) -> list[str]:
    """Write ``covid/haniffa21.processed.h5ad`` under ``root`` in the published schema, with truth.

    File: ``X`` is log1p of counts normalised to 1e4 (not counts, as in the published file);
    ``layers['raw']`` the integer counts of genes and antibodies; genes then five ``AB_*`` antibody
    features (``var['feature_types']`` ``Gene Expression`` / ``Antibody Capture``,
    ``var['n_cells']``); all 23 ``obs`` columns as categoricals (numbers as in the file).

    Planted structure (seeded): Newcastle (``Site`` ``Ncl``) patients in three groups, ``n_early``
    COVID-19 patients with ``Days_from_onset`` 2-8, ``n_late`` with 15-30 and ``n_healthy``
    healthy; five more patients outside the kept set (Cambridge and Sanger sites, ``Non_covid``,
    ``LPS``). In myeloid cells only (``initial_clustering`` ``CD14``, ``CD16``, ``DCs``, ``pDC``)
    the interferon program (:data:`~.genes.COVID_INTERFERON`) is ``program_fold`` x higher in
    early patients and the late program (:data:`~.genes.COVID_LATE`) ``program_fold`` x higher
    in late patients (per patient the fold varies by a factor exp(N(0, 0.1))); T/NK and B cells
    and healthy patients carry neither. COVID-19 patients have the odds of ``CD16`` and ``DCs``
    cells multiplied by ``abundance_factor``; the ``CD16`` odds of late patients are
    ``late_cd16_factor`` x those of early patients (the two around ``abundance_factor``: the
    shift toward non-classical monocytes with later onset of Fig. 3e). Two Newcastle patients (one early, one late) have
    two samples (``sample_id`` ``<patient>_a`` / ``_b``, the second 4 days later). Kept patients
    have distinct numbers of cells around ``cells_per_patient``; the others half as many.

    Truth (``covid/haniffa21.standin_truth.json``, :func:`read_standin_truth`): ``groups``
    (patient_id -> ``early`` / ``late`` / ``healthy`` / ``excluded``), ``samples`` (per patient:
    group, site, status, days from onset per sample, cells, planted fold per program),
    ``compartments`` (compartment -> ``initial_clustering`` labels), ``full_to_initial``,
    ``programs`` (name -> genes, direction, fold, the groups it is up in and against, the labels
    it applies to), ``abundance`` (labels, factor, statuses, planted shares).

    Returns
    -------
    The registry key written (``covid/haniffa21.processed.h5ad``).
    """
    rng = np.random.default_rng(seed)
    n_kept = n_early + n_late + n_healthy
    groups = ["early"] * n_early + ["late"] * n_late + ["healthy"] * n_healthy
    statuses = ["Covid"] * (n_early + n_late) + ["Healthy"] * n_healthy
    sites = ["Ncl"] * n_kept
    for site, status in COVID_OTHER_PATIENTS:
        groups.append("excluded")
        statuses.append(status)
        sites.append(site)
    n_patients = len(groups)
    numbers = rng.permutation(n_patients)
    ids = [f"AP{k + 1}" if k % 4 == 0 else f"MH{8919300 + 7 * k}" for k in numbers]
    sizes = np.concatenate(
        [
            spread_sizes(cells_per_patient, n_kept, rng, low=12),
            np.maximum(12, cells_per_patient // 2 + rng.integers(-5, 6, n_patients - n_kept)),
        ]
    )
    days: list[list[str]] = []
    for group, status in zip(groups, statuses, strict=True):
        if group in COVID_DAYS:
            lo, hi = COVID_DAYS[group]
            days.append([str(int(rng.integers(lo, hi + 1)))])
        elif status == "Covid":
            days.append([str(int(rng.integers(2, 31)))])
        else:
            days.append([status])
    twice = [groups.index("early"), groups.index("late")] if n_early and n_late else []
    for p in twice:
        days[p].append(str(int(days[p][0]) + 4))

    healthy_shares = {t[0]: t[4] for t in COVID_CELL_TYPES}
    covid_shares = shares_with(healthy_shares, {"CD16": abundance_factor, "DCs": abundance_factor})
    half = float(np.sqrt(late_cd16_factor))
    onset_shares = {
        group: shares_with(healthy_shares, {"CD16": abundance_factor * f, "DCs": abundance_factor})
        for group, f in (("early", 1.0 / half), ("late", half))
    }
    compositions = [
        draw_composition(
            onset_shares.get(g, covid_shares) if s == "Covid" else healthy_shares,
            int(n),
            rng,
            concentration=300.0,
        )
        for s, g, n in zip(statuses, groups, sizes, strict=True)
    ]
    pool_order = [t[0] for t in PBMC_CELL_TYPES]  # simulate_base's types, in its order
    code_of = {t[0]: pool_order.index(t[3]) for t in COVID_CELL_TYPES}
    need = [0] * len(pool_order)
    for comp in compositions:
        for label, n in comp.items():
            need[code_of[label]] += n
    pool = simulate_pool(need, n_genes=n_genes, seed=seed)

    cells, labels, patient_of = [], [], []
    for p, comp in enumerate(compositions):
        for label, n in comp.items():
            cells.append(pool.take(code_of[label], n))
            labels += [label] * n
            patient_of += [p] * n
    index = np.concatenate(cells)
    labels_arr = np.array(labels)
    patient_arr = np.array(patient_of)
    counts = pool.counts[index].copy()
    expected = pool.profile[pool.cell_type[index]]

    compartment = {t[0]: t[1] for t in COVID_CELL_TYPES}
    myeloid = [t[0] for t in COVID_CELL_TYPES if t[1] == "myeloid"]
    myeloid_codes = [code_of[label] for label in myeloid]
    used: set[int] = set()
    expression = pool.profile[myeloid_codes].mean(axis=0)
    program_genes = {
        "interferon": pick_genes(expression, len(COVID_INTERFERON), rng, exclude=used),
        "late": pick_genes(expression, len(COVID_LATE), rng, exclude=used),
    }
    symbols_of = {"interferon": COVID_INTERFERON, "late": COVID_LATE}
    up_in = {"interferon": "early", "late": "late"}
    in_myeloid = np.isin(labels_arr, myeloid)
    folds: dict[int, dict[str, float]] = {}
    for p, group in enumerate(groups):
        folds[p] = {}
        for program, g in up_in.items():
            if group != g:
                continue
            fold = float(program_fold * np.exp(rng.normal(0.0, 0.1)))
            rows = np.flatnonzero((patient_arr == p) & in_myeloid)
            scale_expression(counts, expected, rows, program_genes[program], fold, rng)
            folds[p][program] = round(fold, 4)

    gene_names = [f"G{i + 1:04d}" for i in range(n_genes)]
    for program, genes in program_genes.items():
        for g, symbol in zip(genes, symbols_of[program], strict=True):
            gene_names[g] = symbol

    # obs
    n_cells = counts.shape[0]
    per_patient = pd.DataFrame(
        {
            "patient_id": ids,
            "Site": sites,
            "Status": statuses,
            "Sex": rng.choice(["Male", "Female"], size=n_patients),
            "Age_interval": [f"({a}, {a + 9}]" for a in rng.choice(range(20, 90, 10), n_patients)],
            "Smoker": rng.choice(["Non-smoker", "Smoker", "Unknown"], size=n_patients),
            "Outcome": rng.choice(["Home", "unknown", "Death"], size=n_patients),
        }
    )
    per_patient["Worst_Clinical_Status"] = [
        str(rng.choice(SEVERITY)) if s == "Covid" else s for s in statuses
    ]
    obs = per_patient.iloc[patient_arr].reset_index(drop=True)
    second = np.zeros(n_cells, dtype=bool)
    for p in twice:
        rows = np.flatnonzero(patient_arr == p)
        second[rng.choice(rows, size=rows.size // 2, replace=False)] = True
    obs["sample_id"] = [
        f"{pid}_{'b' if s else 'a'}" for pid, s in zip(obs["patient_id"], second, strict=True)
    ]
    status = obs["Status"].to_numpy()
    obs["Collection_Day"] = np.where(second, "D7", "D0")
    obs["Resample"] = np.where(second, "Resample", "Initial")
    obs["Swab_result"] = np.where(status == "Covid", "Positive", "Negative")
    obs["Status_on_day_collection"] = obs["Worst_Clinical_Status"].to_numpy()
    obs["Status_on_day_collection_summary"] = obs["Worst_Clinical_Status"].to_numpy()
    obs["Days_from_onset"] = [days[p][int(s)] for p, s in zip(patient_arr, second, strict=True)]
    obs["time_after_LPS"] = np.where(status == "LPS", "10h", "nan")
    obs["initial_clustering"] = labels_arr
    full_of = {t[0]: t[2] for t in COVID_CELL_TYPES}
    substate = pool.substate[index]
    obs["full_clustering"] = [
        full_of[lab][s % 3] for lab, s in zip(labels_arr, substate, strict=True)
    ]
    genes_lib = counts.sum(axis=1)
    obs["n_genes"] = (counts > 0).sum(axis=1)
    obs["n_genes_by_counts"] = obs["n_genes"]
    obs["total_counts"] = genes_lib.astype(np.float32)
    obs["total_counts_mt"] = (genes_lib * 0.03).astype(np.float32)
    obs["pct_counts_mt"] = np.float32(3.0)
    obs = obs[list(COVID_OBS)]
    for column in obs.columns:
        if obs[column].dtype == object:
            obs[column] = obs[column].astype("category")
    obs.index = [f"{b}-{s}" for b, s in zip(barcodes(n_cells, rng), obs["sample_id"], strict=True)]

    # counts, X, var
    n_ab = 5
    ab = rng.poisson(rng.gamma(2.0, 10.0, size=n_ab), size=(n_cells, n_ab))
    raw = sparse.csr_matrix(np.hstack([counts, ab]).astype(np.float32))
    lib = np.asarray(raw.sum(axis=1)).ravel()
    x = sparse.csr_matrix(sparse.diags(1e4 / np.maximum(lib, 1)) @ raw).log1p()
    symbols = [*gene_names, "AB_CD3", "AB_CD4", "AB_CD8", "AB_CD14", "AB_CD19"]
    var = pd.DataFrame(
        {
            "feature_types": pd.Categorical(
                ["Gene Expression"] * n_genes + ["Antibody Capture"] * n_ab
            ),
            "n_cells": np.asarray((raw > 0).sum(axis=0)).ravel(),
        },
        index=symbols,
    )
    adata = ad.AnnData(X=x.astype(np.float32), obs=obs, var=var, layers={"raw": raw})
    key = "covid/haniffa21.processed.h5ad"
    (Path(root) / key).parent.mkdir(parents=True, exist_ok=True)
    adata.write_h5ad(Path(root) / key)

    samples: dict[str, Any] = {}
    for p, pid in enumerate(ids):
        samples[pid] = {
            "group": groups[p],
            "Site": sites[p],
            "Status": statuses[p],
            "sample_ids": [f"{pid}_a", f"{pid}_b"] if p in twice else [f"{pid}_a"],
            "Days_from_onset": days[p],
            "n_cells": int(sizes[p]),
            "program_fold": folds[p],
        }
    versus = {"early": ["late", "healthy"], "late": ["early", "healthy"]}
    truth = {
        "dataset": "covid",
        "seed": seed,
        "files": [key],
        "truth_file": TRUTH_FILES["covid"],
        "sample_key": "patient_id",
        "kept": {"Site": ["Ncl"], "Status": ["Covid", "Healthy"]},
        "groups": {pid: groups[p] for p, pid in enumerate(ids)},
        "group_days_from_onset": {k: list(v) for k, v in COVID_DAYS.items()},
        "samples": samples,
        "labels_key": "initial_clustering",
        "compartments": {
            c: [t[0] for t in COVID_CELL_TYPES if t[1] == c] for c in ("myeloid", "t_nk", "b")
        },
        "full_to_initial": {f: t[0] for t in COVID_CELL_TYPES for f in t[2]},
        "programs": {
            program: {
                "genes": list(symbols_of[program]),
                "direction": "up",
                "fold": program_fold,
                "fold_sd_log": 0.1,
                "groups": [up_in[program]],
                "versus": versus[up_in[program]],
                "labels_key": "initial_clustering",
                "labels": myeloid,
                "compartment": "myeloid",
            }
            for program in up_in
        },
        "abundance": [
            {
                "labels_key": "initial_clustering",
                "labels": ["CD16", "DCs"],
                "factor": abundance_factor,
                "factor_on": "odds against the other labels",
                "in": {"Status": ["Covid"]},
                "versus": {"Status": ["Healthy"]},
                "shares": {"Covid": covid_shares, "Healthy": healthy_shares},
            },
            {
                "labels_key": "initial_clustering",
                "labels": ["CD16"],
                "factor": late_cd16_factor,
                "factor_on": "odds against the other labels, late vs early COVID-19 patients",
                "in": {"group": ["late"]},
                "versus": {"group": ["early"]},
                "shares": onset_shares,
            },
        ],
        "compartment_of": compartment,
    }
    write_truth(root, "covid", truth)
    return [key]
