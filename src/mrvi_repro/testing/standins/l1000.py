"""LINCS L1000 stand-in: the iLINCS signature and metadata exports of A549 and MCF7.

The truth the writer plants does not depend on the seed (only the genes and values do), so it is
returned by :func:`l1000_standin_truth` instead of a truth file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .sciplex import SCIPLEX_DRUGS

#: Cell lines with iLINCS exports -> (signature batches, metadata batches; 0 = one file).
L1000_LINES = {"A549": (6, 6), "MCF7": (5, 0)}
#: Columns of the signature exports (one row per signature x landmark gene).
L1000_SIGNATURE_COLUMNS = (
    "signatureID",
    "ID_geneid",
    "Name_GeneSymbol",
    "Value_LogDiffExp",
    "Significance_pvalue",
)
#: Columns of the metadata exports (one row per signature).
L1000_METADATA_COLUMNS = (
    "SignatureId",
    "Perturbagen",
    "CellLine",
    "Concentration",
    "Time",
    "is_exemplar",
)
#: How the exports spell some sci-Plex drugs, per cell line (the others keep their name): a lower
#: case name, a parenthesised part left out, a lower-case hyphenated name, a misspelling (the one
#: fuzzy match) and a salt word.
L1000_SPELLINGS = {
    "A549": {
        "Dacinostat": "dacinostat",
        "Glesatinib?(MGCD265)": "Glesatinib",
        "SNS-314": "sns-314",
        "Belinostat": "Bellinostat",
    },
    "MCF7": {
        "Dacinostat": "dacinostat",
        "Glesatinib?(MGCD265)": "Glesatinib",
        "SNS-314": "SNS-314 Mesylate",
        "Belinostat": "Bellinostat",
    },
}
#: Drugs with a noise non-exemplar signature first and their true signature later, flagged exemplar.
L1000_EXEMPLAR_AFTER_NOISE = ("Dacinostat", "Crizotinib", "Barasertib")
#: Drugs with two non-exemplar signatures: the true one first, a noise one later.
L1000_FIRST_OF_TWO = ("Belinostat",)
#: Drugs whose single signature is flagged exemplar (the others' is not).
L1000_SINGLE_EXEMPLAR = ("Givinostat",)
#: A decoy named as one of the paper's false matches, given the ``hdac`` program: it joins the
#: HDAC cluster if it is matched (the sci-Plex stand-in has no such product; add it to the products
#: to see the exclusion work).
L1000_FALSE_MATCH = ("Estradiol", "hdac")
#: Planted programs: name -> genes up, genes down, and how many genes up (down) are the down (up)
#: genes of another program, which share genes but with the opposite sign.
L1000_PROGRAMS = {"hdac": (35, 35), "rtk": (35, 35), "aurora": (35, 35)}
#: The rtk program's up genes include this many of hdac's down genes and vice versa.
L1000_OPPOSITE_SHARED = 25


def _line_plan(line: str) -> dict[str, str | None]:
    """sci-Plex drug -> the program its L1000 signature carries in ``line`` (None: random)."""
    return {d[0]: (d[5] if line in d[7] else None) for d in SCIPLEX_DRUGS}


def l1000_standin_truth() -> dict[str, Any]:
    """Return the structure :func:`write_l1000_standin` plants (the same for every seed).

    Returns
    -------
    Per cell line (``A549``, ``MCF7``): ``clusters`` (program -> sci-Plex drugs whose true
    signature carries it, at least two), ``singletons`` (matched drugs in no cluster: no program,
    or the only drug of theirs acting in that line), ``perturbagens`` (sci-Plex drug -> its name
    in the exports), ``fuzzy`` (the drugs only a fuzzy match finds). Shared:
    ``exemplar_after_noise``, ``first_of_two``, ``false_match`` (name, program), ``programs``.
    """
    out: dict[str, Any] = {}
    for line in L1000_LINES:
        plan = _line_plan(line)
        members: dict[str, list[str]] = {}
        for drug, program in plan.items():
            if program is not None:
                members.setdefault(program, []).append(drug)
        clusters = {p: m for p, m in members.items() if len(m) >= 2}
        in_cluster = {d for m in clusters.values() for d in m}
        out[line] = {
            "clusters": clusters,
            "singletons": [d for d in plan if d not in in_cluster],
            "perturbagens": {d: L1000_SPELLINGS[line].get(d, d) for d in plan},
            "fuzzy": ["Belinostat"],
        }
    out["exemplar_after_noise"] = list(L1000_EXEMPLAR_AFTER_NOISE)
    out["first_of_two"] = list(L1000_FIRST_OF_TWO)
    out["false_match"] = list(L1000_FALSE_MATCH)
    out["programs"] = sorted(L1000_PROGRAMS)
    return out


def _programs(n_genes: int, rng: np.random.Generator) -> dict[str, dict[str, np.ndarray]]:
    """Gene indices up and down of each program; rtk and hdac share genes with opposite signs."""
    free = list(rng.permutation(n_genes))
    programs: dict[str, dict[str, np.ndarray]] = {}
    for name, (n_up, n_down) in L1000_PROGRAMS.items():
        if name == "rtk":
            k = L1000_OPPOSITE_SHARED
            up = [*programs["hdac"]["down"][:k], *(free.pop() for _ in range(n_up - k))]
            down = [*programs["hdac"]["up"][:k], *(free.pop() for _ in range(n_down - k))]
        else:
            up = [free.pop() for _ in range(n_up)]
            down = [free.pop() for _ in range(n_down)]
        programs[name] = {"up": np.array(up), "down": np.array(down)}
    return programs


def _signature(
    n_genes: int,
    rng: np.random.Generator,
    *,
    up: np.ndarray | None = None,
    down: np.ndarray | None = None,
    potency: float = 1.0,
    n_random: int = 6,
) -> tuple[np.ndarray, np.ndarray]:
    """Fold changes and p-values of one signature over all genes.

    A program's genes (each kept with probability 0.9) get ``|LFC| >= 0.56`` and p <= 1e-4;
    ``n_random`` other genes a DE gene of random sign; 20 genes a large fold change with a raw
    p-value of 0.02-0.05 that Benjamini-Hochberg rejects; the rest small fold changes and uniform
    p-values.
    """
    lfc = rng.normal(0.0, 0.15, n_genes)
    p = rng.uniform(0.0, 1.0, n_genes)
    de = np.zeros(n_genes, dtype=bool)
    scale = max(potency, 0.8)
    for genes, sign in ((up, 1.0), (down, -1.0)):
        if genes is None:
            continue
        kept = genes[rng.random(genes.size) < 0.9]
        lfc[kept] = sign * scale * rng.uniform(0.7, 2.0, kept.size)
        p[kept] = 10 ** rng.uniform(-8, -4, kept.size)
        de[kept] = True
    others = np.flatnonzero(~de)
    extra = rng.choice(others, n_random + 20, replace=False)
    private, trap = extra[:n_random], extra[n_random:]
    lfc[private] = rng.choice([-1.0, 1.0], private.size) * rng.uniform(0.6, 1.5, private.size)
    p[private] = 10 ** rng.uniform(-7, -4, private.size)
    lfc[trap] = rng.choice([-1.0, 1.0], trap.size) * rng.uniform(0.6, 1.5, trap.size)
    p[trap] = rng.uniform(0.02, 0.05, trap.size)
    return lfc, p


def write_l1000_standin(
    root: str | Path,
    *,
    seed: int = 0,
    n_genes: int = 978,
    n_decoys: int = 30,
) -> list[str]:
    """Write the iLINCS L1000 exports of A549 and MCF7 under ``root`` (their registry keys).

    Files (tab-separated text named ``.xls``, as iLINCS exports them): ``l1000/A549_sig_batch_
    {1..6}.xls`` with ``l1000/A549_sig_meta_batch_{1..6}.xls`` (batch ``i`` of the metadata lists
    the signatures of signature batch ``i``), ``l1000/MCF7_sig_batch_{1..5}.xls`` with one
    ``l1000/MCF7_sig_meta.xls``. Signature files: :data:`L1000_SIGNATURE_COLUMNS`, one row per
    signature x ``n_genes`` landmark genes (symbols ``LMG001`` ...); metadata files:
    :data:`L1000_METADATA_COLUMNS`, ``is_exemplar`` 1 or 0.

    Planted structure (:func:`l1000_standin_truth`), from the sci-Plex stand-in's drugs
    (:data:`~mrvi_repro.testing.standins.sciplex.SCIPLEX_DRUGS`): a drug acting in the cell line
    carries its program (:data:`L1000_PROGRAMS`: about 63 of 70 signed genes, plus 6 private DE
    genes), so drugs sharing a program share most of their signed DE genes (Jaccard ~0.7) and
    programs none (``rtk`` and ``hdac`` share 50 genes, with opposite signs); a drug not acting
    in the line (``Resveratrol``; ``SNS-314`` outside A549) gets a random signature of 6 DE genes.
    Hence A549: ``hdac`` = Dacinostat, Givinostat, Belinostat; ``rtk`` = Glesatinib?(MGCD265),
    Crizotinib; ``aurora`` = SNS-314, Barasertib; Resveratrol alone. MCF7: ``hdac`` and ``rtk``
    as in A549; SNS-314, Barasertib and Resveratrol alone. Traps: drug names spelled otherwise
    (:data:`L1000_SPELLINGS`; ``Bellinostat`` is the one fuzzy match); a noise non-exemplar
    signature before the exemplar (:data:`L1000_EXEMPLAR_AFTER_NOISE`) and a noise second
    signature of a drug without exemplar (:data:`L1000_FIRST_OF_TWO`), 60 random DE genes each, in
    another batch; ``n_decoys`` perturbagens named ``BRD-K<8 digits>`` with random signatures and
    an ``Estradiol`` carrying the ``hdac`` program (:data:`L1000_FALSE_MATCH`); in every signature,
    20 genes with a large fold change and a raw p-value of 0.02-0.05 that fail Benjamini-Hochberg.

    Returns
    -------
    The registry keys written.
    """
    root = Path(root)
    rng = np.random.default_rng([seed, 1000])
    symbols = np.array([f"LMG{i + 1:03d}" for i in range(n_genes)])
    gene_ids = np.arange(n_genes) + 1001
    programs = _programs(n_genes, rng)
    potency = {d[0]: d[6] for d in SCIPLEX_DRUGS}
    used_ids: set[int] = set()
    keys: list[str] = []
    for line, (n_sig, n_meta) in L1000_LINES.items():
        plan = _line_plan(line)
        # (perturbagen, is_exemplar, program or None, potency, n random DE genes, placement)
        sigs: list[tuple[str, int, str | None, float, int, str]] = []
        for drug, program in plan.items():
            name = L1000_SPELLINGS[line].get(drug, drug)
            if drug in L1000_EXEMPLAR_AFTER_NOISE:
                sigs.append((name, 0, None, 1.0, 60, "early"))
                sigs.append((name, 1, program, potency[drug], 6, "late"))
            elif drug in L1000_FIRST_OF_TWO:
                sigs.append((name, 0, program, potency[drug], 6, "early"))
                sigs.append((name, 0, None, 1.0, 60, "late"))
            else:
                exemplar = int(drug in L1000_SINGLE_EXEMPLAR)
                sigs.append((name, exemplar, program, potency[drug], 6, "any"))
        sigs.append((L1000_FALSE_MATCH[0], 1, L1000_FALSE_MATCH[1], 1.0, 6, "any"))
        for _ in range(n_decoys):
            name = f"BRD-K{int(rng.integers(10**7, 10**8)):08d}"
            n_de = int(rng.integers(5, 80))
            sigs.append((name, int(rng.random() < 0.5), None, 1.0, n_de, "any"))
        anywhere = [s for s in sigs if s[5] == "any"]
        anywhere = [anywhere[k] for k in rng.permutation(len(anywhere))]
        half = len(anywhere) // 2
        first = [s for s in sigs if s[5] == "early"] + anywhere[:half]
        second = [s for s in sigs if s[5] == "late"] + anywhere[half:]
        order = [first[k] for k in rng.permutation(len(first))]
        order += [second[k] for k in rng.permutation(len(second))]

        sig_frames, meta_rows = [], []
        for name, exemplar, program, strength, n_random, _ in order:
            sid = int(rng.integers(10**5, 10**6))
            while sid in used_ids:
                sid = int(rng.integers(10**5, 10**6))
            used_ids.add(sid)
            sig_id = f"LINCSCP_{sid}"
            planted = programs[program] if program is not None else {}
            lfc, p = _signature(
                n_genes,
                rng,
                up=planted.get("up"),
                down=planted.get("down"),
                potency=strength,
                n_random=n_random,
            )
            sig_frames.append(
                pd.DataFrame(
                    {
                        "signatureID": sig_id,
                        "ID_geneid": gene_ids,
                        "Name_GeneSymbol": symbols,
                        "Value_LogDiffExp": np.round(lfc, 6),
                        "Significance_pvalue": [f"{v:.6g}" for v in p],
                    }
                )
            )
            meta_rows.append((sig_id, name, line, "10 uM", "24 h", exemplar))
        meta = pd.DataFrame(meta_rows, columns=list(L1000_METADATA_COLUMNS))
        batches = np.array_split(np.arange(len(order)), n_sig)
        for b, idx in enumerate(batches, start=1):
            key = f"l1000/{line}_sig_batch_{b}.xls"
            _write_tsv(root / key, pd.concat([sig_frames[k] for k in idx], ignore_index=True))
            keys.append(key)
            if n_meta:
                key = f"l1000/{line}_sig_meta_batch_{b}.xls"
                _write_tsv(root / key, meta.iloc[idx])
                keys.append(key)
        if not n_meta:
            key = f"l1000/{line}_sig_meta.xls"
            _write_tsv(root / key, meta)
            keys.append(key)
    return keys


def _write_tsv(path: Path, frame: pd.DataFrame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, sep="\t", index=False)
