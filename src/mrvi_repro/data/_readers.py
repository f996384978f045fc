"""Readers of the raw inputs of a dataset entry's ``source``: one entry point, :func:`read_source`.

``simulate`` (the simulated base the workflow wrote) and ``h5ad`` sources are AnnData files;
``tenx_mtx_tar`` is a 10x Genomics Cell Ranger archive of a MatrixMarket matrix (the PBMC 68k
download), read by :func:`read_10x_mtx_tar`.
"""

from __future__ import annotations

import logging
import shutil
import tarfile
import tempfile
from pathlib import Path, PurePosixPath

import anndata as ad
import numpy as np
import scanpy as sc
from scipy import sparse

from ._simulate import SimulationParams
from ._spec import DEFAULT_MATRIX_DIR, H5adSource, TenxMtxTarSource
from ._validate import DataContractError, count_problems

logger = logging.getLogger(__name__)

#: Files of a Cell Ranger 1.x/2.x matrix folder (``genes.tsv``: Ensembl ID and symbol per line).
MTX_MEMBERS = ("matrix.mtx", "genes.tsv", "barcodes.tsv")


class ArchiveError(ValueError):
    """A 10x archive lacks a file the reader needs, or holds it as something else than a file."""


def read_10x_mtx_tar(path: str | Path, matrix_dir: str = DEFAULT_MATRIX_DIR) -> ad.AnnData:
    """Read a Cell Ranger 1.x/2.x matrix folder straight from its ``.tar.gz`` archive.

    Only ``<matrix_dir>/{matrix.mtx,genes.tsv,barcodes.tsv}`` are taken from the archive, each
    written under its own base name into a temporary folder (member names never choose where a file
    goes, so the archive cannot write outside it), then read with :func:`scanpy.read_10x_mtx`:
    gene symbols as ``var_names`` (made unique with ``-1``, ``-2``... suffixes), Ensembl IDs in
    ``var['gene_ids']``, barcodes as ``obs_names``.

    Parameters
    ----------
    path
        The archive (``.tar``, ``.tar.gz``, ``.tgz``; compression is detected).
    matrix_dir
        Folder of the three files inside the archive (a leading ``./`` in member names is ignored).

    Returns
    -------
    Cells x genes, raw counts in ``X`` as CSR ``int32``.

    Raises
    ------
    ArchiveError
        If a file is missing (naming the expected members and what the archive holds) or is not a
        regular file.
    DataContractError
        If the matrix holds non-integer, negative or NaN values.
    """
    path = Path(path)
    folder = _member_name(matrix_dir)
    wanted = {f"{folder}/{name}" if folder else name: name for name in MTX_MEMBERS}
    with tempfile.TemporaryDirectory(prefix="mrvi_10x_") as tmp:
        with tarfile.open(path, mode="r:*") as tar:
            members = {_member_name(m.name): m for m in tar.getmembers()}
            missing = sorted(set(wanted) - set(members))
            if missing:
                held = sorted(n for n, m in members.items() if m.isfile())
                shown = ", ".join(held[:20]) + (
                    f" ... ({len(held)} files)" if len(held) > 20 else ""
                )
                msg = (
                    f"{path}: the archive lacks {missing}; expected {sorted(wanted)} "
                    f"(matrix_dir {matrix_dir!r}); it holds: {shown or 'no files'}"
                )
                raise ArchiveError(msg)
            for member_name, name in wanted.items():
                member = members[member_name]
                source = tar.extractfile(member) if member.isfile() else None
                if source is None:
                    msg = f"{path}: archive member {member.name!r} is not a regular file"
                    raise ArchiveError(msg)
                with source, (Path(tmp) / name).open("wb") as dest:
                    shutil.copyfileobj(source, dest, length=1 << 20)
        adata = sc.read_10x_mtx(tmp, var_names="gene_symbols", make_unique=True)
    problems = count_problems(adata.X, where=f"{path}:{folder}/matrix.mtx")
    if problems:
        raise DataContractError(problems)
    adata.X = sparse.csr_matrix(adata.X).astype(np.int32)
    logger.info(
        "read %s (%s): %d cells x %d genes, %d non-zero counts",
        path.name,
        folder,
        adata.n_obs,
        adata.n_vars,
        adata.X.nnz,
    )
    return adata


def read_source(
    source: SimulationParams | H5adSource | TenxMtxTarSource, path: str | Path
) -> ad.AnnData:
    """Read the raw input of a dataset entry, by the kind of its ``source``.

    Parameters
    ----------
    source
        The parsed ``source`` of the entry (:attr:`DatasetSpec.source`).
    path
        Its file: the simulated base, the ``.h5ad`` file or the downloaded archive.

    Returns
    -------
    The raw dataset, for :func:`preprocess_dataset`.
    """
    if isinstance(source, TenxMtxTarSource):
        return read_10x_mtx_tar(path, source.matrix_dir)
    if isinstance(source, SimulationParams | H5adSource):
        return ad.read_h5ad(path)
    msg = f"unknown source {source!r}"
    raise TypeError(msg)


def _member_name(name: str) -> str:
    """Normalise a member name: no ``./`` parts, no leading or trailing slash (``./a/b/`` -> ``a/b``)."""
    return "/".join(p for p in PurePosixPath(name).parts if p not in {".", "/"})
