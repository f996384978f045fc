"""IBD stand-in: Single Cell Portal bundles, metadata and donor table, with B2 and inflammation effects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mrvi_repro.data.simulate import PBMC_CELL_TYPES

from ._common import (
    TRUTH_FILES,
    draw_composition,
    mtx_bytes,
    pick_genes,
    scale_expression,
    shares_with,
    simulate_pool,
    write_truth,
)
from .genes import IBD_B2_PERICYTE, IBD_B2_STROMAL, IBD_INFLAMMATION, IBD_MARKERS

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
#: ``Celltype`` labels per compartment: (label, share in the compartment, simulated type drawn
#: from). The stromal labels follow the fine annotation of Kong et al. as the paper names them
#: (HIGD1B+STEAP4+ pericytes, LTC4S+ and CD36+ endothelial cells, ADAMDEC1+ fibroblasts,
#: lymphatic endothelial cells); the exact portal strings were not checked.
IBD_CELL_TYPES: dict[str, tuple[tuple[str, float, str], ...]] = {
    "EPI": (
        ("Enterocytes TMIGD1 MEP1A", 0.35, "Platelet"),
        ("Goblet cells MUC2 TFF1", 0.25, "Type 9"),
        ("Stem cells OLFM4", 0.25, "Type 10"),
        ("Tuft cells", 0.15, "Type 11"),
    ),
    "IMM": (
        ("T cells CD4", 0.25, "CD4 T"),
        ("T cells CD8", 0.15, "CD8 T"),
        ("NK cells", 0.08, "NK"),
        ("B cells", 0.12, "B"),
        ("Plasma cells", 0.15, "DC"),
        ("Macrophages", 0.17, "CD14 Mono"),
        ("Monocytes", 0.08, "FCGR3A Mono"),
    ),
    "STR": (
        ("Fibroblasts ADAMDEC1", 0.16, "Type 12"),
        ("Fibroblasts SFRP2 SLPI", 0.14, "Type 13"),
        ("Myofibroblasts GREM1 GREM2", 0.12, "Type 14"),
        ("Pericytes HIGD1B STEAP4", 0.10, "Type 15"),
        ("Pericytes RERGL NTRK2", 0.08, "Type 16"),
        ("Endothelial cells CD36", 0.16, "Type 17"),
        ("Endothelial cells LTC4S SEMA3G", 0.12, "Type 18"),
        ("Lymphatic endothelial cells", 0.12, "Type 19"),
    ),
}
#: Stromal abundance in B2 donors: odds factor per label (the others 1).
IBD_B2_ABUNDANCE = {
    "Fibroblasts ADAMDEC1": 2.0,
    "Endothelial cells LTC4S SEMA3G": 0.5,
    "Lymphatic endothelial cells": 0.5,
}
BEHAVIOURS = ("B1", "B2", "B3")


def _pool_types() -> list[str]:
    names = [t[0] for t in PBMC_CELL_TYPES]
    return names + [f"Type {k + 1}" for k in range(len(names), 19)]


def write_ibd_standin(
    root: str | Path,
    *,
    bundles: tuple[str, ...] = IBD_BUNDLES,
    donors_per_behavior: int = 4,
    n_controls: int = 4,
    n_surgical: int = 1,
    cells_per_sample: int = 14,
    stromal_cells_per_sample: int = 30,
    n_genes: int = 220,
    b2_fold: float = 3.0,
    pericyte_fold: float = 4.0,
    inflammation_fold: float = 3.0,
    seed: int = 0,
) -> list[str]:
    """Write the IBD atlas stand-ins under ``root/ibd/``: expression bundles, metadata, donor table.

    Per bundle: ``<B>.scp.raw.mtx`` (MatrixMarket integer counts, genes x cells),
    ``<B>.scp.features.tsv`` (Ensembl ID, symbol; no header; colon and ileum bundles list
    slightly different genes, as the real ones do, and one symbol repeats) and
    ``<B>.scp.barcodes.tsv``. ``scp_metadata_combined.v2.txt``: tab-separated, header, the
    portal's ``TYPE`` row, one row per cell (:data:`IBD_METADATA`; the first two cells of the
    bundles have no row). ``donor_covariates.tsv``: the per-donor table a user compiles from the
    paper's supplement (``donor_id``, ``behavior`` B1/B2/B3 or ``control``, ``procedure``
    surgical/biopsy). Biosample IDs start with the donor.

    Planted structure (seeded): ``donors_per_behavior`` Crohn's donors of each behaviour B1, B2,
    B3 and ``n_controls`` controls; ``n_surgical`` of the B2 and of the B3 donors are surgical,
    the rest biopsies. Every donor has four biosamples, colon and ileum x ``a`` / ``b``
    (``Type`` ``NonI`` / ``Infl`` for Crohn's donors, ``Heal`` for controls), each with about
    ``cells_per_sample`` epithelial and immune and ``stromal_cells_per_sample`` stromal cells
    (1.5x as many stromal cells in surgical samples). Compartments differ by four marker genes
    each (:data:`~.genes.IBD_MARKERS`, 6x). In stromal cells of B2 donors
    :data:`~.genes.IBD_B2_STROMAL` (CDH11, ...) is ``b2_fold`` x higher, and in their
    ``Pericytes HIGD1B STEAP4`` :data:`~.genes.IBD_B2_PERICYTE` is ``pericyte_fold`` x higher;
    B1, B3 and controls carry neither. Stromal composition of B2 donors:
    :data:`IBD_B2_ABUNDANCE` (more ADAMDEC1+ fibroblasts, fewer LTC4S+ and lymphatic endothelial
    cells). In every cell of inflamed biosamples :data:`~.genes.IBD_INFLAMMATION` is
    ``inflammation_fold`` x higher. Folds vary by exp(N(0, 0.1)) per donor (B2) or biosample
    (inflammation).

    Truth (``ibd/standin_truth.json``): ``donors`` (behaviour, procedure, chemistry, sex),
    ``groups`` (biosample -> behaviour), ``samples`` (per biosample: donor, behaviour, procedure,
    ``Type``, site, cells per compartment, planted folds), ``compartments`` (-> ``Celltype``
    labels), ``programs`` (name -> genes, direction, fold, the column and groups it is up in and
    against, the labels it applies to), ``markers``, ``abundance``, ``cells_without_metadata``.

    Returns
    -------
    The registry keys written.
    """
    rng = np.random.default_rng(seed)
    behaviours = [b for b in BEHAVIOURS for _ in range(donors_per_behavior)]
    behaviours += ["control"] * n_controls
    n_donors = len(behaviours)
    behaviours = [behaviours[i] for i in rng.permutation(n_donors)]
    donors = [f"N{10 + i}" for i in range(n_donors)]
    procedure = ["biopsy"] * n_donors
    for b in ("B2", "B3"):
        for d in [d for d in range(n_donors) if behaviours[d] == b][:n_surgical]:
            procedure[d] = "surgical"
    # chemistry balanced within each behaviour (a nuisance, not confounded with the groups)
    chem = [""] * n_donors
    for b in (*BEHAVIOURS, "control"):
        offset = int(rng.integers(3))
        for k, d in enumerate(d for d in range(n_donors) if behaviours[d] == b):
            chem[d] = ("v1", "v2", "v3")[(k + offset) % 3]
    sex = rng.choice(["male", "female"], size=n_donors)

    regions = sorted({b.split("_")[0] for b in bundles}, key=["CO", "TI"].index)
    samples: list[dict[str, Any]] = []
    for d, donor in enumerate(donors):
        for region in regions:
            for inflamed in (False, True):
                kind = "Heal" if behaviours[d] == "control" else ("Infl" if inflamed else "NonI")
                samples.append(
                    {
                        "biosample_id": f"{donor}_{region}{'b' if inflamed else 'a'}",
                        "donor": d,
                        "region": region,
                        "Type": kind,
                    }
                )
    shares = {c: {t[0]: t[1] for t in types} for c, types in IBD_CELL_TYPES.items()}
    b2_stromal = shares_with(shares["STR"], IBD_B2_ABUNDANCE)
    compositions: dict[tuple[int, str], dict[str, int]] = {}
    for s, sample in enumerate(samples):
        d = sample["donor"]
        for bundle in bundles:
            region, compartment = bundle.split("_")
            if region != sample["region"]:
                continue
            n = stromal_cells_per_sample if compartment == "STR" else cells_per_sample
            if compartment == "STR" and procedure[d] == "surgical":
                n = round(1.5 * n)
            n = max(12, n + int(rng.integers(-2, 3)))
            target = (
                b2_stromal
                if compartment == "STR" and behaviours[d] == "B2"
                else shares[compartment]
            )
            compositions[s, bundle] = draw_composition(target, n, rng, concentration=100.0)

    pool_types = _pool_types()
    code_of = {t[0]: pool_types.index(t[2]) for types in IBD_CELL_TYPES.values() for t in types}
    need = [0] * len(pool_types)
    for comp in compositions.values():
        for label, n in comp.items():
            need[code_of[label]] += n
    pool = simulate_pool(need, n_genes=n_genes, seed=seed, n_substates=2)

    # genes: colon and ileum bundles each lack a few; planted genes are measured in both
    all_genes = [f"ENSG{i:011d}" for i in range(n_genes)]
    all_symbols = [f"GENE{i}" for i in range(n_genes)]
    missing = {"CO": {i for i in range(n_genes) if i % 37 == 0}}
    missing["TI"] = {i for i in range(n_genes) if i % 37 == 1}
    used = missing["CO"] | missing["TI"] | {6, 7}
    compartment_codes = {c: [code_of[t[0]] for t in types] for c, types in IBD_CELL_TYPES.items()}
    marker_genes = {
        c: pick_genes(pool.profile[codes].mean(axis=0), len(IBD_MARKERS[c]), rng, exclude=used)
        for c, codes in compartment_codes.items()
    }
    stromal_expr = pool.profile[compartment_codes["STR"]].mean(axis=0)
    pericyte_expr = pool.profile[code_of["Pericytes HIGD1B STEAP4"]]
    program_genes = {
        "b2_stromal": pick_genes(stromal_expr, len(IBD_B2_STROMAL), rng, exclude=used),
        "b2_pericyte": pick_genes(pericyte_expr, len(IBD_B2_PERICYTE), rng, exclude=used),
        "inflammation": pick_genes(
            pool.profile.mean(axis=0), len(IBD_INFLAMMATION), rng, exclude=used
        ),
    }
    program_symbols = {
        "b2_stromal": IBD_B2_STROMAL,
        "b2_pericyte": IBD_B2_PERICYTE,
        "inflammation": IBD_INFLAMMATION,
    }
    for c, genes in marker_genes.items():
        for g, symbol in zip(genes, IBD_MARKERS[c], strict=True):
            all_symbols[g] = symbol
    for name, genes in program_genes.items():
        for g, symbol in zip(genes, program_symbols[name], strict=True):
            all_symbols[g] = symbol
    all_symbols[7] = all_symbols[6]  # a repeated symbol, as in real feature files

    donor_fold = {d: float(b2_fold * np.exp(rng.normal(0, 0.1))) for d in range(n_donors)}
    pericyte_donor_fold = {
        d: float(pericyte_fold * np.exp(rng.normal(0, 0.1))) for d in range(n_donors)
    }
    sample_folds: dict[str, dict[str, float]] = {s["biosample_id"]: {} for s in samples}
    keys, meta_rows = [], []
    folder = Path(root) / "ibd"
    folder.mkdir(parents=True, exist_ok=True)
    n_cells_of: dict[str, dict[str, int]] = {s["biosample_id"]: {} for s in samples}
    for bundle in bundles:
        region, compartment = bundle.split("_")
        chunks, labels, owners = [], [], []
        for s in range(len(samples)):
            if (s, bundle) not in compositions:
                continue
            for label, n in compositions[s, bundle].items():
                chunks.append(pool.take(code_of[label], n))
                labels += [label] * n
                owners += [s] * n
        index = np.concatenate(chunks)
        labels_arr, owners_arr = np.array(labels), np.array(owners)
        counts = pool.counts[index].copy()
        expected = pool.profile[pool.cell_type[index]]
        scale_expression(
            counts, expected, np.arange(len(index)), marker_genes[compartment], 6.0, rng
        )
        for s, sample in enumerate(samples):
            rows = np.flatnonzero(owners_arr == s)
            if rows.size == 0:
                continue
            bid, d = sample["biosample_id"], sample["donor"]
            n_cells_of[bid][compartment] = int(rows.size)
            if sample["Type"] == "Infl":
                fold = sample_folds[bid].setdefault(
                    "inflammation", float(inflammation_fold * np.exp(rng.normal(0, 0.1)))
                )
                scale_expression(counts, expected, rows, program_genes["inflammation"], fold, rng)
            if behaviours[d] == "B2" and compartment == "STR":
                sample_folds[bid]["b2_stromal"] = donor_fold[d]
                sample_folds[bid]["b2_pericyte"] = pericyte_donor_fold[d]
                scale_expression(
                    counts, expected, rows, program_genes["b2_stromal"], donor_fold[d], rng
                )
                peri = rows[labels_arr[rows] == "Pericytes HIGD1B STEAP4"]
                scale_expression(
                    counts,
                    expected,
                    peri,
                    program_genes["b2_pericyte"],
                    pericyte_donor_fold[d],
                    rng,
                )
        names = []
        for k, (s, label) in enumerate(zip(owners_arr, labels_arr, strict=True)):
            sample = samples[s]
            d = sample["donor"]
            cell = f"{sample['biosample_id']}_{compartment}_{k:04d}"
            names.append(cell)
            control = behaviours[d] == "control"
            meta_rows.append(
                {
                    "NAME": cell,
                    "biosample_id": sample["biosample_id"],
                    "donor_id": donors[d],
                    "n_genes": int((counts[k] > 0).sum()),
                    "n_counts": int(counts[k].sum()),
                    "Chem": chem[d],
                    "Site": region,
                    "Type": sample["Type"],
                    "Layer": "E" if compartment == "EPI" else "L",
                    "Celltype": label,
                    "disease": "PATO_0000461" if control else "MONDO_0005011",
                    "disease__ontology_label": "normal" if control else "Crohn disease",
                    "organ": "UBERON_0001155" if region == "CO" else "UBERON_0002116",
                    "organ__ontology_label": "colon" if region == "CO" else "ileum",
                    "library_preparation_protocol": f"10x 3' {chem[d]}",
                    "species": "NCBITaxon_9606",
                    "species__ontology_label": "Homo sapiens",
                    "sex": sex[d],
                }
            )
        gene_idx = [i for i in range(n_genes) if i not in missing[region]]
        files = {
            f"{bundle}.scp.raw.mtx": mtx_bytes(counts[:, gene_idx].T).decode(),
            f"{bundle}.scp.features.tsv": "".join(
                f"{all_genes[i]}\t{all_symbols[i]}\n" for i in gene_idx
            ),
            f"{bundle}.scp.barcodes.tsv": "".join(f"{n}\n" for n in names),
        }
        for name, text in files.items():
            (folder / name).write_text(text)
            keys.append(f"ibd/{name}")
    meta = pd.DataFrame(meta_rows)[list(IBD_METADATA)]
    without = meta["NAME"].iloc[:2].tolist()
    meta = meta.iloc[2:]  # two cells of the bundles without metadata
    type_row = pd.DataFrame([IBD_METADATA])
    pd.concat([type_row, meta.astype(str)]).to_csv(
        folder / "scp_metadata_combined.v2.txt", sep="\t", index=False
    )
    pd.DataFrame({"donor_id": donors, "behavior": behaviours, "procedure": procedure}).to_csv(
        folder / "donor_covariates.tsv", sep="\t", index=False
    )
    keys += ["ibd/scp_metadata_combined.v2.txt", "ibd/donor_covariates.tsv"]

    str_labels = [t[0] for t in IBD_CELL_TYPES["STR"]]
    all_labels = [t[0] for types in IBD_CELL_TYPES.values() for t in types]
    truth = {
        "dataset": "ibd",
        "seed": seed,
        "files": keys,
        "truth_file": TRUTH_FILES["ibd"],
        "sample_key": "biosample_id",
        "labels_key": "Celltype",
        "donors": {
            donor: {
                "behavior": behaviours[d],
                "procedure": procedure[d],
                "Chem": chem[d],
                "sex": str(sex[d]),
            }
            for d, donor in enumerate(donors)
        },
        "groups": {s["biosample_id"]: behaviours[s["donor"]] for s in samples},
        "samples": {
            s["biosample_id"]: {
                "donor": donors[s["donor"]],
                "behavior": behaviours[s["donor"]],
                "procedure": procedure[s["donor"]],
                "Type": s["Type"],
                "Site": s["region"],
                "n_cells": n_cells_of[s["biosample_id"]],
                "program_fold": sample_folds[s["biosample_id"]],
            }
            for s in samples
        },
        "compartments": {c: [t[0] for t in types] for c, types in IBD_CELL_TYPES.items()},
        "programs": {
            "b2_stromal": {
                "genes": list(IBD_B2_STROMAL),
                "direction": "up",
                "fold": b2_fold,
                "column": "behavior",
                "groups": ["B2"],
                "versus": ["B1", "B3", "control"],
                "labels": str_labels,
                "compartment": "STR",
            },
            "b2_pericyte": {
                "genes": list(IBD_B2_PERICYTE),
                "direction": "up",
                "fold": pericyte_fold,
                "column": "behavior",
                "groups": ["B2"],
                "versus": ["B1", "B3", "control"],
                "labels": ["Pericytes HIGD1B STEAP4"],
                "compartment": "STR",
            },
            "inflammation": {
                "genes": list(IBD_INFLAMMATION),
                "direction": "up",
                "fold": inflammation_fold,
                "column": "Type",
                "groups": ["Infl"],
                "versus": ["NonI", "Heal"],
                "labels": all_labels,
                "compartment": "all",
            },
        },
        "fold_sd_log": 0.1,
        "markers": {"genes": {c: list(g) for c, g in IBD_MARKERS.items()}, "fold": 6.0},
        "abundance": [
            {
                "labels_key": "Celltype",
                "compartment": "STR",
                "labels": [label],
                "factor": factor,
                "factor_on": "odds against the other stromal labels",
                "in": {"behavior": ["B2"]},
                "versus": {"behavior": ["B1", "B3", "control"]},
                "shares": {"B2": b2_stromal, "other": shares["STR"]},
            }
            for label, factor in IBD_B2_ABUNDANCE.items()
        ],
        "surgical_stromal_factor": 1.5,
        "cells_without_metadata": without,
    }
    write_truth(root, "ibd", truth)
    return keys
