"""The COVID-19 chain of Fig. 3 at the published file's size, on a generated file (no download).

Usage::

    .venv/bin/python bench/covid_fullsize.py write DIR [--n-cells 647366 --n-features 24929
        --n-kept 418768 --umis-per-cell 1300 --seed 0]
    .venv/bin/python bench/covid_fullsize.py run DIR [--epochs 2 --cores 2 --de-mc-samples N
        --forcerun RULE ...] [-- TARGET ...]
    .venv/bin/python bench/covid_fullsize.py table DIR

``write`` writes ``DIR/haniffa21.processed.h5ad`` in the published schema (the 23 ``obs``
columns of ``haniffa21.processed.h5ad``, ``var['feature_types']``, ``X`` log-normalised and the
counts in ``layers['raw']``, both CSR float32) at the published shape: 647,366 cells x 24,929
features (the last 192 ``AB_*`` antibody features), 418,768 cells of 55 Newcastle COVID-19 and
healthy patients (the cells the entry keeps) and the rest from other sites and statuses. Counts
are drawn cell by cell from each cell type's gene distribution (``--umis-per-cell`` UMIs on
average, log-normal across cells), so each cell has about 1,000 non-zero features, as 10x PBMCs
do; the interferon and late programs of the stand-in are planted in the myeloid cells of early
and late COVID-19 patients. The file is written chunk by chunk (h5py, never a dense matrix,
never the whole CSR in memory).

``run`` writes ``DIR/config.yaml`` and ``DIR/covid.yaml`` (the shipped ``config/datasets/
covid.yaml`` with ``source.path`` pointing at the file, ``--epochs`` training epochs of MrVI and
of scVI without early stopping, and no GSEA, whose gene sets would be a download) and runs the
Snakemake chain of Fig. 3 in ``DIR`` (default targets: preprocessing, fit, latents, distances,
stratification, donor groups, both DA comparisons and the DE comparison with per-cell LFCs in the
myeloid cells, the 2-D embeddings; ``-- fig3`` adds scVI, PCA, the integration metrics, the
panels and the claims). ``table`` prints each rule's wall time and peak memory from its Snakemake
``benchmark:`` file as Markdown.
"""

from __future__ import annotations

import argparse
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

from _fullsize import main  # noqa: E402

from mrvi_repro.testing.standins.covid import COVID_OBS, SEVERITY  # noqa: E402

logger = logging.getLogger("covid_fullsize")

FILE = "haniffa21.processed.h5ad"
#: initial_clustering labels of the published file and their share of PBMCs (approximate).
LABELS = {
    "CD14": 0.16,
    "CD16": 0.05,
    "DCs": 0.02,
    "pDC": 0.01,
    "CD4": 0.25,
    "CD8": 0.12,
    "NK_16hi": 0.09,
    "NK_56hi": 0.02,
    "MAIT": 0.03,
    "gdT": 0.02,
    "B_cell": 0.12,
    "Plasmablast": 0.02,
    "Platelets": 0.04,
    "HSC": 0.01,
    "Lymph_prolif": 0.01,
    "Mono_prolif": 0.01,
    "RBC": 0.02,
}
MYELOID = ("CD14", "CD16", "DCs", "Mono_prolif")
N_AB = 192
#: Genes of the planted programs (names from the stand-in; the first genes of the file).
INTERFERON = ("IFI27", "GBP1", "IFITM3", "ISG15", "MX1", "IFI6", "IFI44L", "IFIT1", "IFIT3")
LATE = ("CSF3R", "LGALS2", "HLA-DRA", "HLA-DRB1", "CD74", "TNF", "NFKBIZ", "NFKBIA", "IER3")

#: The chain of Fig. 3 (targets of ``run`` by default), as paths under results/covid/.
CHAIN = (
    "data/preprocessed.h5ad",
    "model/mrvi_latent.h5ad",
    "analysis/sample_distances.nc",
    "analysis/stratification.nc",
    "comparisons/sample_groups.tsv",
    "comparisons/da/covid_vs_healthy_myeloid/da.nc",
    "comparisons/da/covid_groups_myeloid/da.nc",
    "comparisons/de/covid_groups_myeloid/de.nc",
    "figures/data/umap.tsv.gz",
)


def _patients(n_cells: int, n_kept: int, rng: np.random.Generator) -> pd.DataFrame:
    """One row per patient: site, status, group, days from onset, cells (summing to n_cells)."""
    kept = [("Ncl", "Covid", "early")] * 17 + [("Ncl", "Covid", "late")] * 17
    kept += [("Ncl", "Healthy", "healthy")] * 21
    others = [("Cambridge", "Covid", "other")] * 40 + [("Sanger", "Healthy", "other")] * 20
    others += [("Ncl", "Non_covid", "other")] * 10 + [("Ncl", "LPS", "other")] * 5
    table = pd.DataFrame(kept + others, columns=["Site", "Status", "group"])

    def split(total: int, k: int) -> np.ndarray:
        w = rng.lognormal(0.0, 0.4, k)
        sizes = np.floor(total * w / w.sum()).astype(int)
        sizes[: total - sizes.sum()] += 1
        return sizes

    table["n_cells"] = np.concatenate(
        [split(n_kept, len(kept)), split(n_cells - n_kept, len(others))]
    )
    table["patient_id"] = [f"P{i:03d}" for i in range(len(table))]
    days = []
    for group, status in zip(table["group"], table["Status"], strict=True):
        if group == "early":
            days.append(str(int(rng.integers(2, 9))))
        elif group == "late":
            days.append(str(int(rng.integers(15, 31))))
        elif status == "Covid":
            days.append(str(int(rng.integers(2, 31))))
        else:
            days.append(status)
    table["Days_from_onset"] = days
    return table


def write(
    folder: Path, *, n_cells: int, n_features: int, n_kept: int, umis: float, seed: int
) -> Path:
    """Write the published-shape file (see the module docstring); return its path."""
    import anndata as ad
    import h5py

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / FILE
    n_genes = n_features - N_AB
    patients = _patients(n_cells, n_kept, rng)
    labels = list(LABELS)
    shares = np.array(list(LABELS.values()))
    shares /= shares.sum()
    # gene distributions: a shared log-normal base, 300 marker genes up 8x per label
    base = rng.lognormal(0.0, 1.6, n_features)
    base[n_genes:] *= 0.05  # antibody-derived features: few counts in the gene-expression lanes
    profiles = np.tile(base, (len(labels), 1))
    for k in range(len(labels)):
        profiles[k, rng.choice(n_genes, 300, replace=False)] *= 8.0
    programs = {
        "early": np.arange(len(INTERFERON)),
        "late": np.arange(len(INTERFERON), len(INTERFERON) + len(LATE)),
    }
    per_patient = pd.DataFrame(
        {
            "Sex": rng.choice(["Male", "Female"], len(patients)),
            "Age_interval": [
                f"({a}, {a + 9}]" for a in rng.choice(range(20, 90, 10), len(patients))
            ],
            "Smoker": rng.choice(["Non-smoker", "Smoker", "Unknown"], len(patients)),
            "Outcome": rng.choice(["Home", "unknown", "Death"], len(patients)),
            "Worst_Clinical_Status": [
                str(rng.choice(SEVERITY)) if s == "Covid" else s for s in patients["Status"]
            ],
        }
    )
    patients = pd.concat([patients, per_patient], axis=1)
    # cells in patient order, labels drawn per patient (COVID-19: half the CD16 and DC odds)
    label_of, patient_of = [], []
    for p, row in patients.iterrows():
        w = shares.copy()
        if row["Status"] == "Covid":
            w[[labels.index("CD16"), labels.index("DCs")]] *= 0.5
        label_of.append(rng.choice(len(labels), row["n_cells"], p=w / w.sum()))
        patient_of.append(np.full(row["n_cells"], p))
    label_of = np.concatenate(label_of)
    patient_of = np.concatenate(patient_of)

    obs = patients.drop(columns=["group", "n_cells"]).iloc[patient_of].reset_index(drop=True)
    obs["sample_id"] = obs["patient_id"] + "_a"
    status = obs["Status"].to_numpy()
    obs["Collection_Day"] = "D0"
    obs["Resample"] = "Initial"
    obs["Swab_result"] = np.where(status == "Covid", "Positive", "Negative")
    obs["Status_on_day_collection"] = obs["Worst_Clinical_Status"].to_numpy()
    obs["Status_on_day_collection_summary"] = obs["Worst_Clinical_Status"].to_numpy()
    obs["time_after_LPS"] = np.where(status == "LPS", "10h", "nan")
    obs["initial_clustering"] = np.array(labels)[label_of]
    obs["full_clustering"] = obs["initial_clustering"].to_numpy()
    totals = np.maximum(50, rng.lognormal(np.log(umis) - 0.125, 0.5, n_cells)).astype(np.int64)
    obs["total_counts"] = totals.astype(np.float32)
    obs["total_counts_mt"] = (totals * 0.03).astype(np.float32)
    obs["pct_counts_mt"] = np.float32(3.0)
    obs["n_genes"] = 0  # set below from the counts
    obs["n_genes_by_counts"] = 0
    obs.index = [f"cell{i:07d}-{s}" for i, s in enumerate(obs["sample_id"])]

    names = list(INTERFERON) + list(LATE)
    names += [f"GENE{i:05d}" for i in range(len(names), n_genes)]
    names += [f"AB_{i:03d}" for i in range(N_AB)]
    var = pd.DataFrame(
        {
            "feature_types": pd.Categorical(
                ["Gene Expression"] * n_genes + ["Antibody Capture"] * N_AB
            )
        },
        index=names,
    )
    shell = ad.AnnData(obs=obs[[c for c in COVID_OBS if c in obs.columns]].copy(), var=var)
    for column in shell.obs.columns:
        if shell.obs[column].dtype == object:
            shell.obs[column] = shell.obs[column].astype("category")
    shell.write_h5ad(path)

    n_genes_per_cell = np.zeros(n_cells, dtype=np.int64)
    start = time.perf_counter()
    with h5py.File(path, "r+") as f:
        groups = {}
        for key in ("X", "layers/raw"):
            if key in f:
                del f[key]
            g = f.create_group(key)
            g.attrs.update({"encoding-type": "csr_matrix", "encoding-version": "0.1.0"})
            g.attrs["shape"] = np.array([n_cells, n_features], dtype=np.int64)
            g.create_dataset(
                "data", shape=(0,), maxshape=(None,), dtype=np.float32, chunks=(1 << 20,)
            )
            g.create_dataset(
                "indices", shape=(0,), maxshape=(None,), dtype=np.int32, chunks=(1 << 20,)
            )
            groups[key] = g
        indptr = np.zeros(n_cells + 1, dtype=np.int64)
        chunk = 20_000
        for lo in range(0, n_cells, chunk):
            hi = min(lo + chunk, n_cells)
            rows, cols = [], []
            blocks = (
                pd.DataFrame({"p": patient_of[lo:hi], "t": label_of[lo:hi]})
                .groupby(["p", "t"])
                .indices
            )
            for (p, t), local in blocks.items():
                prof = profiles[t].copy()
                group = patients.at[p, "group"]
                if group in programs and labels[t] in MYELOID:
                    prof[programs[group]] *= 4.0
                cum = np.cumsum(prof)
                cum /= cum[-1]
                draws = totals[lo + local]
                genes = np.searchsorted(cum, rng.random(int(draws.sum())))
                rows.append(np.repeat(local, draws))
                cols.append(genes)
            key = np.concatenate(rows).astype(np.int64) * n_features + np.concatenate(cols)
            key, counts = np.unique(key, return_counts=True)
            cell = key // n_features
            gene = (key % n_features).astype(np.int32)
            per_cell = np.bincount(cell, minlength=hi - lo)
            n_genes_per_cell[lo:hi] = per_cell
            indptr[lo + 1 : hi + 1] = indptr[lo] + np.cumsum(per_cell)
            lib = np.bincount(cell, weights=counts, minlength=hi - lo)
            normalised = np.log1p(counts / lib[cell] * 1e4).astype(np.float32)
            for name, values in (("layers/raw", counts.astype(np.float32)), ("X", normalised)):
                g = groups[name]
                n0 = g["data"].shape[0]
                g["data"].resize((n0 + len(values),))
                g["data"][n0:] = values
                g["indices"].resize((n0 + len(values),))
                g["indices"][n0:] = gene
            if lo // chunk % 5 == 0:
                logger.info(
                    "cells %d-%d of %d: %.0f non-zeros per cell, %.0f s",
                    lo,
                    hi,
                    n_cells,
                    per_cell.mean(),
                    time.perf_counter() - start,
                )
        for g in groups.values():
            g.create_dataset("indptr", data=indptr)
        f["obs"]["n_genes"][...] = n_genes_per_cell
        f["obs"]["n_genes_by_counts"][...] = n_genes_per_cell
    logger.info(
        "wrote %s: %d cells x %d features, %.0f non-zeros per cell, %.2f GB, %.0f s",
        path,
        n_cells,
        n_features,
        indptr[-1] / n_cells,
        path.stat().st_size / 1e9,
        time.perf_counter() - start,
    )
    return path


def entry(folder: Path, epochs: int, de_mc_samples: int | None = None) -> dict:
    """The shipped covid entry on the generated file, ``epochs`` epochs, no GSEA.

    ``de_mc_samples``: draws of u per cell in the DE comparisons instead of the entry's (the
    per-draw cost is then extrapolated; ``None``: the entry's).
    """
    shipped = yaml.safe_load((REPO / "config" / "datasets" / "covid.yaml").read_text())
    out = copy.deepcopy(shipped)
    out["description"] = f"BENCH (generated, published shape) of: {shipped['description']}"
    out["source"] = {"kind": "h5ad", "path": str((folder / FILE).resolve()), "counts_layer": "auto"}
    out["mrvi"]["train"].update(max_epochs=epochs, early_stopping=False, n_epochs_kl_warmup=1)
    train = {"max_epochs": epochs, "early_stopping": False, "n_epochs_kl_warmup": 1}
    out.setdefault("baselines", {}).setdefault("scvi", {})["train"] = train
    for item in out["comparisons"]["de"]:
        item.pop("gsea", None)
        if de_mc_samples is not None:
            item["mc_samples"] = de_mc_samples
    return out


def _write_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n-cells", type=int, default=647_366)
    parser.add_argument("--n-features", type=int, default=24_929)
    parser.add_argument("--n-kept", type=int, default=418_768)
    parser.add_argument("--umis-per-cell", type=float, default=1_300.0)
    parser.add_argument("--seed", type=int, default=0)


def _write(folder: Path, a: argparse.Namespace) -> None:
    write(
        folder,
        n_cells=a.n_cells,
        n_features=a.n_features,
        n_kept=a.n_kept,
        umis=a.umis_per_cell,
        seed=a.seed,
    )


if __name__ == "__main__":
    sys.exit(
        main(
            __doc__,
            "covid",
            entry=entry,
            default_targets=lambda: [f"results/covid/{p}" for p in CHAIN],
            write=_write,
            write_arguments=_write_arguments,
        )
    )
