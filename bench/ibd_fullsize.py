"""The IBD chain of Fig. 5 at the atlas's published size, on generated files (no download).

Usage::

    .venv/bin/python bench/ibd_fullsize.py write DIR [--umis-per-cell 1100 --seed 0 --scale 1]
    .venv/bin/python bench/ibd_fullsize.py run DIR [--epochs 2 --cores 2 --de-mc-samples N
        --forcerun RULE ...] [-- TARGET ...]
    .venv/bin/python bench/ibd_fullsize.py table DIR

``write`` writes, under ``DIR/resources/ibd/`` (where the ``ibd`` entry's hand-placed files are
found, so the ``download`` rule has nothing to do), every file the entry and its Fig. 5 read, in
the Single Cell Portal layout of study SCP1884 and at its published shapes: the six bundles
``{CO,TI}_{EPI,IMM,STR}`` as ``<B>.scp.raw.mtx`` (MatrixMarket integer counts, genes x cells),
``<B>.scp.features.tsv`` (Ensembl ID, symbol) and ``<B>.scp.barcodes.tsv`` with the published
cell counts (:data:`BUNDLE_CELLS`, 720,633 in all) and gene lists (colon 28,663, ileum 28,923,
27,830 shared); ``scp_metadata_combined.v2.txt`` (the portal's columns, its ``TYPE`` row, one
row per cell) and ``donor_covariates.tsv`` (the per-donor table the README has users compile).
71 donors (28 B1, 11 B2, 7 B3 with Crohn's disease, 25 controls; 4 of the B2 and 3 of the B3
donors surgical), 225 biosamples (colon or ileum, non-inflamed or inflamed for Crohn's donors).
66 cell types (:data:`~mrvi_repro.testing.standins.ibd.IBD_CELL_TYPES`'s named ones and
numbered others), each with 200 genes 4x higher, and compartment markers 6x higher. Planted:
in the stromal cells of B2 donors the shipped Fig. 5 genes (CDH11, ADAMDEC1, COL1A1, ...) and
200 other genes 3x higher, and LUM, PDGFRB, TGFBI 4x higher in ``Pericytes HIGD1B STEAP4``
only; in inflamed biosamples an inflammation programme 3x higher; the stand-in's B2 abundance
shifts (:data:`~mrvi_repro.testing.standins.ibd.IBD_B2_ABUNDANCE`). Counts are drawn cell by
cell from the profile of its label and programmes (``--umis-per-cell`` UMIs on average,
log-normal across cells: about 800 non-zeros per cell at the default); each bundle is written
with :func:`scipy.io.mmwrite` (its non-zeros in memory, about 2 GB for the largest).

``run`` writes ``DIR/config.yaml`` and ``DIR/ibd.yaml`` (the shipped entry, ``--epochs`` epochs
of MrVI, its cell-type-guided variant and scVI without early stopping, ``--de-mc-samples`` draws
in the DE steps if given) and runs the Snakemake chain of Fig. 5 in ``DIR`` (default target:
``fig5``: preprocessing, MrVI, the variant, scVI, latents, the multivariate DE over all cells,
the stromal DE and DA comparisons, UMAPs, integration metrics, the panels and the claims).
``table`` prints each rule's wall time, peak memory and CPU time from its Snakemake
``benchmark:`` file as Markdown.
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

from mrvi_repro.testing.standins.genes import (  # noqa: E402
    IBD_B2_PERICYTE,
    IBD_B2_STROMAL,
    IBD_INFLAMMATION,
    IBD_MARKERS,
)
from mrvi_repro.testing.standins.ibd import (  # noqa: E402
    IBD_B2_ABUNDANCE,
    IBD_CELL_TYPES,
    IBD_METADATA,
)

logger = logging.getLogger("ibd_fullsize")

FOLDER = "ibd"
METADATA = "scp_metadata_combined.v2.txt"
DONORS = "donor_covariates.tsv"
#: Cells per bundle of the published atlas (720,633 in all).
BUNDLE_CELLS = {
    "CO_EPI": 97_788,
    "CO_IMM": 152_509,
    "CO_STR": 39_433,
    "TI_EPI": 154_136,
    "TI_IMM": 201_072,
    "TI_STR": 75_695,
}
#: Genes of the colon and ileum bundles' features (their union: 29,756).
REGION_GENES = {"CO": 28_663, "TI": 28_923}
N_UNION = 29_756
#: Donors by Vienna behaviour (controls: ``control``) and how many of them were operated on.
BEHAVIOUR_DONORS = {"B1": 28, "B2": 11, "B3": 7, "control": 25}
SURGICAL = {"B2": 4, "B3": 3}
N_BIOSAMPLES = 225
#: Fine cell types per compartment: the stand-in's named ones, then numbered ones up to these.
N_TYPES = {"EPI": 20, "IMM": 28, "STR": 18}
#: Fold of the planted programmes.
B2_FOLD, PERICYTE_FOLD, INFLAMMATION_FOLD, TYPE_FOLD, MARKER_FOLD = 3.0, 4.0, 3.0, 4.0, 6.0
PERICYTES = "Pericytes HIGD1B STEAP4"
#: Genes that are up in pericytes of B2 donors only (the Results' pericyte-specific genes).
PERICYTE_ONLY = ("LUM", "PDGFRB", "TGFBI")
#: The EndMT markers of Extended Data Figs. 6d and 7b: endothelial ones, then pericyte ones.
ENDOTHELIAL_MARKERS = ("PLVAP", "VAMP5", "VWA1")
PERICYTE_MARKERS = ("NOTCH3", "RGS5", "MYL9")


def shipped_entry() -> dict:
    """The shipped ``ibd`` entry (config/datasets/ibd.yaml)."""
    return yaml.safe_load((REPO / "config" / "datasets" / "ibd.yaml").read_text())


def named_genes() -> list[str]:
    """Every gene symbol a programme, a marker set or the shipped Fig. 5 names, once each."""
    fig5 = shipped_entry()["figures"]["fig5"]
    names = [
        *IBD_B2_STROMAL,
        *IBD_B2_PERICYTE,
        *IBD_INFLAMMATION,
        *(g for genes in IBD_MARKERS.values() for g in genes),
        *ENDOTHELIAL_MARKERS,
        *PERICYTE_MARKERS,
        fig5["expression_gene"],
        *fig5["lfc_genes"],
        *fig5["umap_genes"],
        *fig5["more_umap_genes"],
        *fig5["markers"],
        *fig5["focus_genes"],
    ]
    return list(dict.fromkeys(names))


def cell_types() -> dict[str, list[tuple[str, float]]]:
    """(label, share in the compartment) per compartment: the named types keep 70 % of the cells."""
    out = {}
    for compartment, named in IBD_CELL_TYPES.items():
        labels = [(label, 0.7 * share) for label, share, _ in named]
        extra = N_TYPES[compartment] - len(labels)
        kind = {"EPI": "Epithelial", "IMM": "Immune", "STR": "Stromal"}[compartment]
        labels += [(f"{kind} cells {k + 1}", 0.3 / extra) for k in range(extra)]
        out[compartment] = labels
    return out


def design(rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Donors (``donor_id``, behaviour, procedure, chemistry, sex) and biosamples (ID, donor,
    region, ``Type``): every donor has 3 biosamples, a few 4, alternating colon and ileum and,
    for Crohn's donors, non-inflamed and inflamed."""
    behaviours = [b for b, n in BEHAVIOUR_DONORS.items() for _ in range(n)]
    behaviours = [behaviours[i] for i in rng.permutation(len(behaviours))]
    donors = pd.DataFrame(
        {
            "donor_id": [f"N{100 + i}" for i in range(len(behaviours))],
            "behavior": behaviours,
            "procedure": "biopsy",
            "Chem": [("v1", "v2", "v3")[i % 3] for i in range(len(behaviours))],
            "sex": rng.choice(["male", "female"], len(behaviours)),
        }
    )
    for behaviour, n in SURGICAL.items():
        chosen = donors.index[donors["behavior"] == behaviour][:n]
        donors.loc[chosen, "procedure"] = "surgical"
    per_donor = np.full(len(donors), N_BIOSAMPLES // len(donors))
    per_donor[: N_BIOSAMPLES - per_donor.sum()] += 1
    rows = []
    for d, donor in donors.iterrows():
        for k in range(per_donor[d]):
            region = ("CO", "TI")[(k + d) % 2]
            control = donor["behavior"] == "control"
            kind = "Heal" if control else ("Infl" if (k // 2 + d) % 2 else "NonI")
            rows.append((f"{donor['donor_id']}_{region}{k}", d, region, kind))
    samples = pd.DataFrame(rows, columns=["biosample_id", "donor", "region", "Type"])
    return donors, samples


def write(folder: Path, *, umis: float, seed: int, scale: float = 1.0) -> None:
    """Write every file of the chain under ``folder/resources/ibd`` (see the module docstring).

    ``scale``: a share of the published cells (for a quick check of the script; 1 = full size).
    """
    from scipy import io as spio
    from scipy import sparse

    rng = np.random.default_rng(seed)
    out = folder / "resources" / FOLDER
    out.mkdir(parents=True, exist_ok=True)
    donors, samples = design(rng)
    types = cell_types()

    # genes: the named ones among the most expressed shared genes; colon lacks the last 1,093
    # (ileum-only), the ileum the 833 before them (colon-only)
    base = np.sort(rng.lognormal(0.0, 2.0, N_UNION))[::-1].copy()
    n_shared = REGION_GENES["CO"] + REGION_GENES["TI"] - N_UNION
    rng.shuffle(base[:n_shared])
    named = named_genes()
    symbols = [f"GENE{i:05d}" for i in range(N_UNION)]
    slots = rng.choice(np.argsort(base[:n_shared])[::-1][:2_000], len(named), replace=False)
    for slot, name in zip(slots, named, strict=True):
        symbols[slot] = name
    position = dict(zip(named, slots, strict=True))
    region_genes = {
        "CO": np.arange(REGION_GENES["CO"]),
        "TI": np.r_[np.arange(n_shared), np.arange(REGION_GENES["CO"], N_UNION)],
    }
    free = np.setdiff1d(np.arange(n_shared), slots)

    def genes(n: int) -> np.ndarray:
        return rng.choice(free, n, replace=False)

    compartment_genes = {c: genes(300) for c in types}
    for c, markers in IBD_MARKERS.items():
        compartment_genes[c] = np.r_[compartment_genes[c], [position[g] for g in markers]]
    label_genes = {label: genes(200) for labels in types.values() for label, _ in labels}
    for label in label_genes:
        if label.startswith("Endothelial"):
            extra = ENDOTHELIAL_MARKERS + (PERICYTE_MARKERS if "CD36" in label else ())
            label_genes[label] = np.r_[label_genes[label], [position[g] for g in extra]]
        if label.startswith("Pericytes"):
            label_genes[label] = np.r_[label_genes[label], [position[g] for g in PERICYTE_MARKERS]]
    b2_genes = np.r_[
        genes(200), [position[g] for g in named if g in set(IBD_B2_STROMAL) | {"ADAMDEC1"}]
    ]
    pericyte_genes = np.array([position[g] for g in PERICYTE_ONLY])
    inflammation_genes = np.r_[genes(100), [position[g] for g in IBD_INFLAMMATION]]

    def profile(compartment: str, label: str, b2: bool, inflamed: bool) -> np.ndarray:
        p = base.copy()
        p[compartment_genes[compartment]] *= MARKER_FOLD
        p[label_genes[label]] *= TYPE_FOLD
        if b2 and compartment == "STR":
            p[b2_genes] *= B2_FOLD
            if label == PERICYTES:
                p[pericyte_genes] *= PERICYTE_FOLD
        if inflamed:
            p[inflammation_genes] *= INFLAMMATION_FOLD
        return p

    meta_parts = []
    start = time.perf_counter()
    for bundle, n_full in BUNDLE_CELLS.items():
        region, compartment = bundle.split("_")
        n_cells = max(1, round(n_full * scale))
        in_region = samples.index[samples["region"] == region]
        weights = rng.lognormal(0.0, 0.5, len(in_region))
        per_sample = rng.multinomial(n_cells, weights / weights.sum())
        owner = np.repeat(in_region.to_numpy(), per_sample)
        behaviour = donors["behavior"].to_numpy()[samples["donor"].to_numpy()[owner]]
        labels = np.empty(n_cells, dtype=object)
        names, shares = zip(*types[compartment], strict=True)
        shifted = np.array(
            [s * IBD_B2_ABUNDANCE.get(n, 1.0) for n, s in zip(names, shares, strict=True)]
        )
        for s, lo, hi in zip(
            in_region, np.r_[0, np.cumsum(per_sample)[:-1]], np.cumsum(per_sample), strict=True
        ):
            b2 = donors.at[samples.at[s, "donor"], "behavior"] == "B2" and compartment == "STR"
            p = shifted if b2 else np.array(shares)
            labels[lo:hi] = rng.choice(names, hi - lo, p=p / p.sum())
        inflamed = samples["Type"].to_numpy()[owner] == "Infl"
        totals = np.maximum(200, rng.lognormal(np.log(umis) - 0.125, 0.5, n_cells)).astype(int)
        gene_index = region_genes[region]
        position_in_region = np.full(N_UNION, -1)
        position_in_region[gene_index] = np.arange(len(gene_index))
        rows, cols, vals = [], [], []
        keys = pd.DataFrame({"label": labels, "b2": behaviour == "B2", "infl": inflamed})
        for (label, b2, infl), cells in keys.groupby(["label", "b2", "infl"]).indices.items():
            p = profile(compartment, label, bool(b2), bool(infl))[gene_index]
            cum = np.cumsum(p)
            cum /= cum[-1]
            for lo in range(0, len(cells), 20_000):
                chunk = cells[lo : lo + 20_000]
                draws = totals[chunk]
                cell = np.repeat(chunk.astype(np.int64), draws)
                gene = np.searchsorted(cum, rng.random(int(draws.sum())))
                key, count = np.unique(cell * len(gene_index) + gene, return_counts=True)
                cols.append((key // len(gene_index)).astype(np.int32))
                rows.append((key % len(gene_index)).astype(np.int32))
                vals.append(count.astype(np.int32))
        col, row, val = np.concatenate(cols), np.concatenate(rows), np.concatenate(vals)
        del cols, rows, vals
        matrix = sparse.coo_array((val, (row, col)), shape=(len(gene_index), n_cells))
        barcodes = [f"{bundle}_{i:06d}" for i in range(n_cells)]
        spio.mmwrite(out / f"{bundle}.scp.raw.mtx", matrix, field="integer")
        (out / f"{bundle}.scp.features.tsv").write_text(
            "".join(f"ENSG{i:011d}\t{symbols[i]}\n" for i in gene_index)
        )
        (out / f"{bundle}.scp.barcodes.tsv").write_text("".join(f"{b}\n" for b in barcodes))
        n_genes = np.bincount(col, minlength=n_cells)
        n_counts = np.bincount(col, weights=val, minlength=n_cells)
        donor = donors.iloc[samples["donor"].to_numpy()[owner]].reset_index(drop=True)
        control = (donor["behavior"] == "control").to_numpy()
        meta_parts.append(
            pd.DataFrame(
                {
                    "NAME": barcodes,
                    "biosample_id": samples["biosample_id"].to_numpy()[owner],
                    "donor_id": donor["donor_id"].to_numpy(),
                    "n_genes": n_genes,
                    "n_counts": n_counts.astype(int),
                    "Chem": donor["Chem"].to_numpy(),
                    "Site": region,
                    "Type": samples["Type"].to_numpy()[owner],
                    "Layer": "E" if compartment == "EPI" else "L",
                    "Celltype": labels,
                    "disease": np.where(control, "PATO_0000461", "MONDO_0005011"),
                    "disease__ontology_label": np.where(control, "normal", "Crohn disease"),
                    "organ": "UBERON_0001155" if region == "CO" else "UBERON_0002116",
                    "organ__ontology_label": "colon" if region == "CO" else "ileum",
                    "library_preparation_protocol": "10x 3' " + donor["Chem"],
                    "species": "NCBITaxon_9606",
                    "species__ontology_label": "Homo sapiens",
                    "sex": donor["sex"].to_numpy(),
                }
            )
        )
        logger.info(
            "%s: %d cells x %d genes, %.0f non-zeros per cell, %.1f GB, %.0f s",
            bundle,
            n_cells,
            len(gene_index),
            len(val) / n_cells,
            (out / f"{bundle}.scp.raw.mtx").stat().st_size / 1e9,
            time.perf_counter() - start,
        )
        del col, row, val, matrix
    meta = pd.concat(meta_parts, ignore_index=True)[list(IBD_METADATA)]
    pd.concat([pd.DataFrame([IBD_METADATA]), meta.astype(str)]).to_csv(
        out / METADATA, sep="\t", index=False
    )
    donors[["donor_id", "behavior", "procedure"]].to_csv(out / DONORS, sep="\t", index=False)
    logger.info(
        "wrote %d cells of %d biosamples and %d donors under %s, %.0f s",
        len(meta),
        meta["biosample_id"].nunique(),
        meta["donor_id"].nunique(),
        out,
        time.perf_counter() - start,
    )


def entry(folder: Path, epochs: int, de_mc_samples: int | None = None) -> dict:
    """The shipped ibd entry on the generated files (found under ``folder/resources``),
    ``epochs`` epochs of every fit without early stopping."""
    del folder  # the entry's files resolve under the run folder's resources/
    shipped = shipped_entry()
    out = copy.deepcopy(shipped)
    out["description"] = f"BENCH (generated, published shape) of: {shipped['description']}"
    train = {"max_epochs": epochs, "early_stopping": False, "n_epochs_kl_warmup": 1}
    out["mrvi"]["train"].update(train)
    out.setdefault("baselines", {}).setdefault("scvi", {})["train"] = dict(train)
    if de_mc_samples is not None:
        out.setdefault("analysis", {}).setdefault("de", {})["mc_samples"] = de_mc_samples
        for comparison in out.get("comparisons", {}).get("de", []):
            comparison["mc_samples"] = de_mc_samples
    return out


if __name__ == "__main__":
    sys.exit(scaled_main(__doc__, "ibd", entry=entry, target="fig5", write=write, umis=1_100.0))
