"""One registry resource's stand-in file at a time: what the workflow's stand-in mode runs.

With ``standins:`` in the workflow config (``config/standins.yaml``), rule ``standin_resource``
writes each file an entry reads (its download-registry key) from the stand-in writer that makes
it, instead of downloading it: the real entries then run offline, end to end. The writers are
seeded and deterministic, so the files of one dataset written by separate jobs are consistent.

The MSigDB Hallmark file's stand-in (:data:`HALLMARK_KEY`) is a GMT of the programs planted in the
COVID-19, sci-Plex and IBD stand-ins (named ``STANDIN_<DATASET>_<PROGRAM>``), plus decoy sets of
random genes of the same datasets, so that GSEA on a stand-in can be checked for calling the
planted set.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ._common import read_standin_truth
from .covid import write_covid_standin
from .ibd import write_ibd_standin
from .l1000 import write_l1000_standin
from .pbmc68k import write_pbmc68k_standin
from .sciplex import write_sciplex_standin

#: The registry key of the MSigDB Hallmark gene sets (GSEA of the comparisons).
HALLMARK_KEY = "genesets/h.all.v2023.2.Hs.symbols.gmt"

#: Registry keys written by a writer other than their first folder's name.
_OWNERS = {"genesets/regev_lab_cell_cycle_genes.txt": "sciplex", HALLMARK_KEY: "genesets"}


def write_geneset_standin(root: str | Path, *, seed: int = 0, n_decoys: int = 20) -> list[str]:
    """Write the Hallmark stand-in: the planted programs of the stand-ins and decoy sets.

    Returns the registry key written (:data:`HALLMARK_KEY`).
    """
    sets: dict[str, list[str]] = {}
    universe: set[str] = set()
    with tempfile.TemporaryDirectory() as tmp:
        write_covid_standin(tmp, seed=seed)
        write_sciplex_standin(tmp, seed=seed)
        write_ibd_standin(tmp, seed=seed)
        for dataset in ("covid", "sciplex", "ibd"):
            for name, program in read_standin_truth(tmp, dataset)["programs"].items():
                for part in ("genes", "genes_up", "genes_down"):
                    if part in program:
                        suffix = {"genes": "", "genes_up": "_UP", "genes_down": "_DN"}[part]
                        key = f"STANDIN_{dataset.upper()}_{name.upper()}{suffix}"
                        sets[key] = list(program[part])
                        universe.update(program[part])
    rng = np.random.default_rng(seed)
    pool = sorted(universe)
    for i in range(n_decoys):
        sets[f"STANDIN_DECOY_{i + 1:02d}"] = list(rng.choice(pool, 15, replace=False))
    path = Path(root) / HALLMARK_KEY
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"{name}\tstand-in gene set\t" + "\t".join(genes) for name, genes in sets.items()]
    path.write_text("\n".join(lines) + "\n")
    return [HALLMARK_KEY]


#: Stand-in writer by name (:func:`standin_writer` maps a registry key to one).
RESOURCE_WRITERS = {
    "pbmc68k": write_pbmc68k_standin,
    "covid": write_covid_standin,
    "sciplex": write_sciplex_standin,
    "ibd": write_ibd_standin,
    "genesets": write_geneset_standin,
    "l1000": write_l1000_standin,
}


def standin_writer(key: str) -> str:
    """Name of the stand-in writer that makes registry key ``key``.

    Raises
    ------
    KeyError
        For a key no writer makes, naming the keys that have stand-ins.
    """
    owner = _OWNERS.get(key, key.split("/", 1)[0])
    if owner not in RESOURCE_WRITERS:
        msg = (
            f"no stand-in for resource {key!r}: stand-ins exist for the files under "
            f"{sorted(k for k in RESOURCE_WRITERS if k != 'genesets')}/ and {sorted(_OWNERS)}"
        )
        raise KeyError(msg)
    return owner


def write_standin_files(
    paths: dict[str, str | Path], *, seed: int = 0, sizes: dict[str, Any] | None = None
) -> None:
    """Write the stand-ins of several registry keys of one writer to their paths.

    Parameters
    ----------
    paths
        Registry key (``covid/haniffa21.processed.h5ad``, ``ibd/CO_STR.scp.raw.mtx``, ...) ->
        where to put its file. All keys must be made by one writer (:func:`standin_writer`).
    seed
        Seed of the writer.
    sizes
        Keyword arguments of the writer (e.g. ``{"cells_per_patient": 60}``).

    Raises
    ------
    KeyError
        For a key without a stand-in, keys of several writers, or a key the writer does not make.
    """
    owners = {standin_writer(k) for k in paths}
    if len(owners) != 1:
        msg = f"keys of one writer expected, got keys of {sorted(owners)}"
        raise KeyError(msg)
    (owner,) = owners
    first = Path(next(iter(paths.values())))
    first.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=first.parent) as tmp:
        written = RESOURCE_WRITERS[owner](tmp, seed=seed, **(sizes or {}))
        for key, path in paths.items():
            if key not in written:
                msg = f"the {owner!r} stand-in writes {written}, not {key!r}"
                raise KeyError(msg)
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(Path(tmp) / key), path)
