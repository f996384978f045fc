"""The sci-Plex A549 chain of Fig. 4 at the published file's size, on generated files (no download).

Usage::

    .venv/bin/python bench/sciplex_fullsize.py write DIR [--umis-per-cell 1500 --seed 0]
    .venv/bin/python bench/sciplex_fullsize.py run DIR [--epochs 2 --cores 2 --de-mc-samples N
        --forcerun RULE ...] [-- TARGET ...]
    .venv/bin/python bench/sciplex_fullsize.py table DIR

``write`` writes, under ``DIR/resources/`` (where the workflow's ``download`` rule puts them, so
nothing is fetched), every file the ``sciplex_A549`` entry and its Fig. 4 read, at the published
shapes: ``sciplex/Srivatsan_2019_raw.h5ad`` (581,777 cells x 58,347 genes, the 16 ``obs``
columns of the published file, counts in ``X`` as CSR float32; A549 143,000 cells, K562 146,767,
MCF7 292,010; 188 drugs x 4 doses x 2 replicates and 13,004 vehicle cells, split by cell line),
the plate table (Science Table S3), the cell-cycle gene list, the A549 iLINCS L1000 exports (6
signature and 6 metadata batches: the 188 drugs and 500 other perturbagens x 978 landmark genes)
and a GMT of 50 gene sets. 92 drugs act: 10 programs of 5,000 up and 5,000 down genes among the
20,000 most expressed, their log fold change growing with log10(dose); every cell has a
cell-cycle phase whose genes are 3x higher. Counts are drawn cell by cell from the block's gene
distribution (``--umis-per-cell`` UMIs on average, log-normal across cells) and written chunk by
chunk (h5py; never a dense matrix, never the whole CSR in memory).

``run`` writes ``DIR/config.yaml`` and ``DIR/sciplex_A549.yaml`` (the shipped entry with
``source.path`` pointing at the file, ``--epochs`` epochs of MrVI and scVI without early stopping,
and ``recipe.deg_min_genes`` :data:`DEG_MIN_GENES`: the filter keeps the acting drugs; its cost
does not depend on the threshold) and runs
the Snakemake chain of Fig. 4 in ``DIR`` (default target: ``fig4``, which includes the shared
screen step, preprocessing, MrVI, the latents, the sample distances at S = 369, the
stratification's streaming PCA, the composition baselines, the CMap clusters, the clusters' DE
and enrichment, the metrics with 100 permutations, the panels and the claims). ``table`` prints
each rule's wall time, peak memory and CPU time from its Snakemake ``benchmark:`` file as
Markdown.
"""

from __future__ import annotations

import copy
import logging
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "bench"))

from _fullsize import scaled_main  # noqa: E402

from mrvi_repro.testing.standins.genes import TIROSH_G2M_GENES, TIROSH_S_GENES  # noqa: E402
from mrvi_repro.testing.standins.l1000 import (  # noqa: E402
    L1000_METADATA_COLUMNS,
    L1000_SIGNATURE_COLUMNS,
)
from mrvi_repro.testing.standins.sciplex import SCIPLEX_OBS_ALL  # noqa: E402

logger = logging.getLogger("sciplex_fullsize")

FILE = "sciplex/Srivatsan_2019_raw.h5ad"
PLATES = "sciplex/aax6234-srivatsan-table-s3.txt"
CELL_CYCLE = "genesets/regev_lab_cell_cycle_genes.txt"
GMT = "genesets/h.all.v2023.2.Hs.symbols.gmt"
#: Cells per cell line of the published file (581,777 in all).
LINES = {"A549": 143_000, "K562": 146_767, "MCF7": 292_010}
N_GENES = 58_347
N_DRUGS, N_ACTIVE, N_PROGRAMS = 188, 92, 10
#: Genes up (and as many down) in each program, and its natural-log fold change at 10,000 nM.
PROGRAM_GENES, PROGRAM_LOG_FOLD = 5_000, 2.5
#: DE genes a drug-dose needs in the run's DE-gene filter (``recipe.deg_min_genes``). scanpy's
#: t-test calls a gene DE whenever a drug-dose group has no count of it while the vehicle has
#: some (zero variance in the group): on the generated A549 cells (about 190 per group) the 96
#: drugs without effect reach 6,032-10,685 such DE genes, the 92 acting ones 10,296-12,590 at
#: their top dose; 12,000 keeps exactly the 92 (measured on the generated file; see
#: bench/RESULTS.md).
DEG_MIN_GENES = 12_000
DOSES = (10, 100, 1000, 10000)
N_VEHICLE = 13_004
PATHWAYS = (
    "Epigenetic regulation",
    "Tyrosine kinase signaling",
    "Cell cycle regulation",
    "DNA damage & DNA repair",
    "JAK/STAT signaling",
    "Nuclear receptor signaling",
    "Protein folding & Protein degradation",
    "PKC signaling",
    "Metabolic regulation",
    "Apoptotic regulation",
)
N_LANDMARKS, N_DECOYS = 978, 500


def _drugs(rng: np.random.Generator) -> pd.DataFrame:
    """188 drugs: name, pathway, target, program (the first 92 act; None for the others)."""
    names = [f"Drug{i:03d}" for i in range(N_DRUGS)]
    program = [i % N_PROGRAMS if i < N_ACTIVE else None for i in range(N_DRUGS)]
    pathway = [
        PATHWAYS[p] if p is not None else PATHWAYS[int(rng.integers(len(PATHWAYS)))]
        for p in program
    ]
    return pd.DataFrame(
        {
            "name": names,
            "program": program,
            "pathway": pathway,
            "target": [f"T{p}" for p in program],
        }
    )


def write(folder: Path, *, umis: float, seed: int, scale: float = 1.0) -> None:
    """Write every file of the chain under ``folder/resources`` (see the module docstring).

    ``scale``: a share of the published cells (for a quick check of the script; 1 = full size).
    """
    import anndata as ad
    import h5py

    rng = np.random.default_rng(seed)
    res = folder / "resources"
    for key in (FILE, PLATES, CELL_CYCLE):
        (res / key).parent.mkdir(parents=True, exist_ok=True)
    drugs = _drugs(rng)
    s_genes, g2m_genes = list(TIROSH_S_GENES), list(TIROSH_G2M_GENES)
    names = s_genes + g2m_genes
    names += [f"GENE{i:05d}" for i in range(len(names), N_GENES)]
    base = rng.lognormal(0.0, 2.0, N_GENES)
    base[: len(s_genes) + len(g2m_genes)] = np.quantile(base, 0.98)  # cell-cycle genes expressed
    top = np.argsort(base)[::-1][:20_000]
    programs = [rng.choice(top, 2 * PROGRAM_GENES, replace=False) for _ in range(N_PROGRAMS)]
    line_profiles = {line: base * rng.lognormal(0.0, 0.3, N_GENES) for line in LINES}
    phase_genes = {"S": np.arange(len(s_genes)), "G2M": np.arange(len(s_genes), len(names[:97]))}

    # cells: per line, vehicle and drug x dose x replicate blocks
    rows = []
    for line, n_full in LINES.items():
        n_line = round(n_full * scale)
        n_vehicle = round(N_VEHICLE * n_full / sum(LINES.values()) * scale)
        n_blocks = N_DRUGS * len(DOSES) * 2
        sizes = rng.multinomial(n_line - n_vehicle, np.full(n_blocks, 1 / n_blocks))
        k = 0
        for rep in ("rep1", "rep2"):
            rows.append(
                (line, "Vehicle", 0, rep, n_vehicle // 2 + (rep == "rep1") * (n_vehicle % 2))
            )
            for drug in drugs["name"]:
                for dose in DOSES:
                    rows.append((line, drug, dose, rep, int(sizes[k])))
                    k += 1
        logger.info("%s: %d cells, %.0f per drug-dose-replicate", line, n_line, sizes.mean())
    blocks = pd.DataFrame(rows, columns=["cell_type", "product_name", "dose", "replicate", "n"])
    n_cells = int(blocks["n"].sum())
    rep_of = np.repeat(np.arange(len(blocks)), blocks["n"].to_numpy())
    obs = blocks.iloc[rep_of][["cell_type", "product_name", "dose", "replicate"]].reset_index(
        drop=True
    )
    info = drugs.set_index("name")
    obs["dose"] = obs["dose"].astype(float)
    dose_int = obs["dose"].astype(int)
    obs["product_dose"] = obs["product_name"] + "_" + dose_int.astype(str)
    obs["dose_character"] = dose_int.astype(str)
    obs["dose_pattern"] = dose_int.map({0: "0", 10: "1", 100: "2", 1000: "3", 10000: "4"})
    vehicle = obs["product_name"] == "Vehicle"
    pathway = obs["product_name"].map(info["pathway"]).where(~vehicle, "Vehicle")
    obs["pathway"] = pathway
    obs["pathway_level_1"] = pathway
    obs["pathway_level_2"] = pathway
    obs["target"] = obs["product_name"].map(info["target"]).where(~vehicle, "Vehicle")
    obs["vehicle"] = vehicle.astype(float)
    phases = rng.choice(["G1", "S", "G2M"], n_cells, p=[0.5, 0.25, 0.25])
    for column in ("g1s_score", "g2m_score", "proliferation_index", "size_factor"):
        obs[column] = rng.normal(0, 1, n_cells).astype(np.float32)
    obs = obs[list(SCIPLEX_OBS_ALL)]
    for column in obs.columns:
        if obs[column].dtype == object:
            obs[column] = obs[column].astype("category")
    obs.index = [f"cell{i:07d}_{c}" for i, c in enumerate(obs["cell_type"])]
    var = pd.DataFrame(
        {
            "id": [f"ENSG{i:011d}.1" for i in range(N_GENES)],
            "num_cells_expressed-0-0": np.zeros(N_GENES, dtype=np.int64),
            "num_cells_expressed-1-0": np.zeros(N_GENES, dtype=np.int64),
            "num_cells_expressed-1": np.zeros(N_GENES, dtype=np.int64),
        },
        index=names,
    )
    path = res / FILE
    ad.AnnData(obs=obs, var=var).write_h5ad(path)

    totals = np.maximum(100, rng.lognormal(np.log(umis) - 0.125, 0.5, n_cells)).astype(np.int64)
    program_of = obs["product_name"].map(info["program"]).to_numpy()
    lf_of = np.where(
        obs["dose"].to_numpy() > 0,
        PROGRAM_LOG_FOLD * np.log10(np.maximum(obs["dose"].to_numpy(), 1)) / 4,
        0,
    )
    start = time.perf_counter()
    with h5py.File(path, "r+") as f:
        if "X" in f:
            del f["X"]
        g = f.create_group("X")
        g.attrs.update({"encoding-type": "csr_matrix", "encoding-version": "0.1.0"})
        g.attrs["shape"] = np.array([n_cells, N_GENES], dtype=np.int64)
        g.create_dataset("data", shape=(0,), maxshape=(None,), dtype=np.float32, chunks=(1 << 20,))
        g.create_dataset("indices", shape=(0,), maxshape=(None,), dtype=np.int32, chunks=(1 << 20,))
        indptr = np.zeros(n_cells + 1, dtype=np.int64)
        line_arr = obs["cell_type"].astype(str).to_numpy()
        chunk = 20_000
        for lo in range(0, n_cells, chunk):
            hi = min(lo + chunk, n_cells)
            keys = (
                pd.DataFrame(
                    {
                        "line": line_arr[lo:hi],
                        "block": rep_of[lo:hi],
                        "phase": phases[lo:hi],
                    }
                )
                .groupby(["line", "block", "phase"])
                .indices
            )
            rows_, cols = [], []
            for (line, _block, phase), local in keys.items():
                prof = line_profiles[line].copy()
                p = program_of[lo + local[0]]
                if p is not None and not (isinstance(p, float) and np.isnan(p)):
                    lf = lf_of[lo + local[0]]
                    genes = programs[int(p)]
                    prof[genes[:PROGRAM_GENES]] *= np.exp(lf)
                    prof[genes[PROGRAM_GENES:]] *= np.exp(-lf)
                if phase != "G1":
                    prof[phase_genes[phase]] *= 3.0
                cum = np.cumsum(prof)
                cum /= cum[-1]
                draws = totals[lo + local]
                rows_.append(np.repeat(local, draws))
                cols.append(np.searchsorted(cum, rng.random(int(draws.sum()))))
            key = np.concatenate(rows_).astype(np.int64) * N_GENES + np.concatenate(cols)
            key, counts = np.unique(key, return_counts=True)
            cell = key // N_GENES
            per_cell = np.bincount(cell, minlength=hi - lo)
            indptr[lo + 1 : hi + 1] = indptr[lo] + np.cumsum(per_cell)
            n0 = g["data"].shape[0]
            g["data"].resize((n0 + len(counts),))
            g["data"][n0:] = counts.astype(np.float32)
            g["indices"].resize((n0 + len(counts),))
            g["indices"][n0:] = (key % N_GENES).astype(np.int32)
            if lo // chunk % 5 == 0:
                logger.info(
                    "cells %d-%d of %d: %.0f non-zeros per cell, %.0f s",
                    lo,
                    hi,
                    n_cells,
                    per_cell.mean(),
                    time.perf_counter() - start,
                )
        g.create_dataset("indptr", data=indptr)
    logger.info(
        "wrote %s: %d cells x %d genes, %.0f non-zeros per cell, %.2f GB, %.0f s",
        path,
        n_cells,
        N_GENES,
        indptr[-1] / n_cells,
        path.stat().st_size / 1e9,
        time.perf_counter() - start,
    )

    plates = []
    for i, line in enumerate(LINES):
        for j, rep in enumerate(("rep1", "rep2")):
            for name in ["Vehicle", *drugs["name"]]:
                for dose in (0,) if name == "Vehicle" else DOSES:
                    plates.append(
                        (
                            f"P{2 * i + j}_{dose % 7}",
                            line,
                            dose,
                            "" if name == "Vehicle" else name,
                            rep,
                            "S1",
                        )
                    )
    table = pd.DataFrame(
        plates, columns=["plate_oligo", "cell_type", "dose", "name", "replicate", "catalog_number"]
    )
    with (res / PLATES).open("w") as fh:
        fh.write("Table S3. Plate layout (generated)\n")
        table.to_csv(fh, sep="\t", index=False)
    (res / CELL_CYCLE).write_text("".join(f"{g}\n" for g in s_genes + g2m_genes))
    _write_l1000(res, drugs, rng)
    sets = {
        f"HALLMARK_PROGRAM_{p}_UP": [names[i] for i in programs[p][:200]] for p in range(N_PROGRAMS)
    }
    sets |= {
        f"HALLMARK_RANDOM_{k:02d}": list(rng.choice(names[:20_000], 100, replace=False))
        for k in range(40)
    }
    (res / GMT).write_text(
        "".join(f"{n}\tgenerated\t" + "\t".join(v) + "\n" for n, v in sets.items())
    )


def _write_l1000(res: Path, drugs: pd.DataFrame, rng: np.random.Generator) -> None:
    """A549 iLINCS exports: one exemplar signature per drug and per decoy, 978 landmark genes."""
    genes = [f"LM{i:04d}" for i in range(N_LANDMARKS)]
    patterns = [rng.choice(N_LANDMARKS, 120, replace=False) for _ in range(N_PROGRAMS)]
    perturbagens = list(drugs["name"]) + [f"BRD-K{i:08d}" for i in range(N_DECOYS)]
    program = list(drugs["program"]) + [None] * N_DECOYS
    ids = [f"LINCSCP_{i:06d}" for i in range(len(perturbagens))]
    (res / "l1000").mkdir(parents=True, exist_ok=True)
    n_batches = 6
    for b in range(n_batches):
        chosen = range(b, len(perturbagens), n_batches)
        sig_rows, meta_rows = [], []
        for i in chosen:
            lfc = rng.normal(0, 0.2, N_LANDMARKS)
            p = program[i]
            if p is not None and not (isinstance(p, float) and np.isnan(p)):
                lfc[patterns[int(p)][:60]] += 1.5
                lfc[patterns[int(p)][60:]] -= 1.5
            pval = np.where(np.abs(lfc) > 1.0, 1e-6, rng.uniform(0.05, 1, N_LANDMARKS))
            sig_rows.append(
                pd.DataFrame(
                    {
                        "signatureID": ids[i],
                        "ID_geneid": np.arange(N_LANDMARKS),
                        "Name_GeneSymbol": genes,
                        "Value_LogDiffExp": lfc,
                        "Significance_pvalue": pval,
                    }
                )
            )
            meta_rows.append((ids[i], perturbagens[i], "A549", "10 uM", "24 h", 1))
        pd.concat(sig_rows)[list(L1000_SIGNATURE_COLUMNS)].to_csv(
            res / f"l1000/A549_sig_batch_{b + 1}.xls", sep="\t", index=False
        )
        pd.DataFrame(meta_rows, columns=list(L1000_METADATA_COLUMNS)).to_csv(
            res / f"l1000/A549_sig_meta_batch_{b + 1}.xls", sep="\t", index=False
        )


def entry(folder: Path, epochs: int, de_mc_samples: int | None = None) -> dict:
    """The shipped sciplex_A549 entry on the generated file, ``epochs`` epochs."""
    shipped = yaml.safe_load((REPO / "config" / "datasets" / "sciplex_A549.yaml").read_text())
    out = copy.deepcopy(shipped)
    out["description"] = f"BENCH (generated, published shape) of: {shipped['description']}"
    out["source"] = {
        "kind": "h5ad",
        "path": str((folder / "resources" / FILE).resolve()),
        "counts_layer": None,
    }
    out["recipe"]["deg_min_genes"] = DEG_MIN_GENES
    out["mrvi"]["train"].update(max_epochs=epochs, early_stopping=False, n_epochs_kl_warmup=1)
    train = {"max_epochs": epochs, "early_stopping": False, "n_epochs_kl_warmup": 1}
    out.setdefault("baselines", {}).setdefault("scvi", {})["train"] = train
    out["figures"]["fig4"]["claims"] = {}
    if de_mc_samples is not None:
        out["figures"]["fig4"].setdefault("de", {})["mc_samples"] = de_mc_samples
    return out


if __name__ == "__main__":
    sys.exit(
        scaled_main(__doc__, "sciplex_A549", entry=entry, target="fig4", write=write, umis=1_500.0)
    )
