"""Small synthetic stand-ins of the paper's published files, in their exact formats and schemas.

The real files cannot be downloaded on machines without internet (and one needs a sign-in), so the
workflow's download, preprocessing and analysis rules of the PBMC 68k, COVID-19, sci-Plex 3 and IBD
entries are exercised on these: same file types, ``obs``/``var`` column names, categories, count
layouts and quirks (a title line in Table S3, the portal's ``TYPE`` row, log-normalised ``X`` with
counts in ``layers['raw']``, antibody features, drug names spelled differently in two files), with
simulated counts (:func:`~mrvi_repro.data.simulate.simulate_base`). The schemas are those
documented for the published files (10x Cell Ranger 1.1.0 matrices; the COVID-19 h5ad of the Sanger
COG release; sc-pert's sci-Plex h5ad and Table S3 of Srivatsan et al. 2020; the Broad Single Cell
Portal bundles of SCP1884) and the columns the paper's code reads; where a detail could not be
checked against the real file, the stand-in follows the best guess and the reader does not depend
on it.

Each dataset carries planted structure modelled on the paper's findings, so that an analysis can be
checked for recovering it: COVID-19 donor groups (early / late after onset) with interferon and
late programs in myeloid cells and fewer CD16 monocytes and DCs in COVID-19; sci-Plex drug pathways
with dose-dependent programs and a cell-cycle phase per cell; IBD B2-vs-B1 stromal programs (CDH11,
...), B2 stromal composition and an inflammation program. The writers store that truth beside the
files as JSON (:data:`TRUTH_FILES`; :func:`read_standin_truth`). They return the registry keys
they wrote (paths relative to ``root``; the truth files are not registry resources), take a seed
and are deterministic; :func:`write_standins` writes several at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ._common import TRUTH_FILES, read_standin_truth, write_10x_archive
from .covid import COVID_CELL_TYPES, COVID_OBS, write_covid_standin
from .ibd import IBD_BUNDLES, IBD_CELL_TYPES, IBD_METADATA, write_ibd_standin
from .pbmc68k import PBMC68K_KEY, write_pbmc68k_standin
from .resources import (
    HALLMARK_KEY,
    standin_writer,
    write_geneset_standin,
    write_standin_files,
)
from .sciplex import (
    SCIPLEX_DOSES,
    SCIPLEX_DRUGS,
    SCIPLEX_OBS_ALL,
    SCIPLEX_PROGRAMS,
    cell_cycle_gene_names,
    dose_scale,
    write_sciplex_standin,
)

#: The stand-in writer of each dataset.
WRITERS = {
    "pbmc68k": write_pbmc68k_standin,
    "covid": write_covid_standin,
    "sciplex": write_sciplex_standin,
    "ibd": write_ibd_standin,
}


def write_standins(
    root: str | Path,
    datasets: tuple[str, ...] = ("pbmc68k", "covid", "sciplex", "ibd"),
    *,
    seed: int = 0,
    **sizes: dict[str, Any],
) -> dict[str, list[str]]:
    """Write the stand-ins of several datasets under ``root``, each with its truth file.

    Parameters
    ----------
    root
        Folder to write under; files go to their registry keys (``covid/...``, ``ibd/...``), so
        ``root`` can serve as the download rule's ``resources/`` or its manual folder.
    datasets
        Names among :data:`WRITERS` (``pbmc68k``, ``covid``, ``sciplex``, ``ibd``).
    seed
        Seed of every writer.
    **sizes
        Per dataset, keyword arguments of its writer, e.g. ``covid={"cells_per_patient": 60}``,
        ``ibd={"bundles": ("CO_EPI", "TI_IMM")}``.

    Returns
    -------
    Per dataset, the registry keys written (paths relative to ``root``); the truth file of each
    is at ``root / TRUTH_FILES[dataset]``.

    Raises
    ------
    KeyError
        For an unknown dataset name, in ``datasets`` or ``sizes``.
    """
    unknown = sorted((set(datasets) | set(sizes)) - set(WRITERS))
    if unknown:
        msg = f"no stand-in writer for {unknown}; known: {sorted(WRITERS)}"
        raise KeyError(msg)
    written = {}
    for name in datasets:
        written[name] = WRITERS[name](root, seed=seed, **sizes.get(name, {}))
    return written


__all__ = [
    "COVID_CELL_TYPES",
    "COVID_OBS",
    "HALLMARK_KEY",
    "IBD_BUNDLES",
    "IBD_CELL_TYPES",
    "IBD_METADATA",
    "PBMC68K_KEY",
    "SCIPLEX_DOSES",
    "SCIPLEX_DRUGS",
    "SCIPLEX_OBS_ALL",
    "SCIPLEX_PROGRAMS",
    "TRUTH_FILES",
    "WRITERS",
    "cell_cycle_gene_names",
    "dose_scale",
    "read_standin_truth",
    "standin_writer",
    "write_10x_archive",
    "write_covid_standin",
    "write_geneset_standin",
    "write_ibd_standin",
    "write_pbmc68k_standin",
    "write_sciplex_standin",
    "write_standin_files",
    "write_standins",
]
