"""Readers of the raw inputs of a dataset entry's ``source``: one entry point, :func:`read_source`.

``simulate`` sources are the simulated base the workflow wrote; ``h5ad`` sources are read by
:func:`read_h5ad_counts` (cells and genes subset while reading, the raw counts located);
``tenx_mtx_tar`` is a 10x Genomics Cell Ranger archive of a MatrixMarket matrix (the PBMC 68k
download), read by :func:`read_10x_mtx_tar`; ``scp_bundles`` are Broad Single Cell Portal
expression bundles with the portal's cell metadata (the IBD atlas), read by
:func:`read_scp_bundles`. :func:`read_sample_metadata` joins a per-sample table onto the cells.

A file that cannot be read at all (empty, truncated, an HTML page saved in its place, another
format, damaged) raises :class:`UnreadableInputError`, whose message names the file, the likely
cause and, for a download under ``resources/``, how to fetch it again (:func:`unreadable`).
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import lzma
import re
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import scanpy as sc
from anndata.io import read_elem, sparse_dataset
from scipy import io as spio
from scipy import sparse

from mrvi_repro.settings.data import (
    AUTO_COUNTS,
    DEFAULT_MATRIX_DIR,
    H5adSource,
    SampleMetadataSpec,
    ScpBundlesSource,
    SimulationParams,
    SubsetSpec,
    TenxMtxTarSource,
)

from .contract import DataContractError, count_problems
from .download import content_problem

if TYPE_CHECKING:
    from collections.abc import Sequence

logger = logging.getLogger(__name__)

#: Files of a Cell Ranger 1.x/2.x matrix folder (``genes.tsv``: Ensembl ID and symbol per line).
MTX_MEMBERS = ("matrix.mtx", "genes.tsv", "barcodes.tsv")


class ArchiveError(ValueError):
    """A 10x archive lacks a file the reader needs, or holds it as something else than a file."""


class UnreadableInputError(ValueError):
    """An input file cannot be read, or holds nothing: the message says why and what to do.

    Raised for an empty, truncated or damaged file, a file of another format (an HTML error or
    sign-in page saved in its place, for one) and an ``.h5ad`` file without a cell.
    """


def unreadable(path: str | Path, statement: str) -> UnreadableInputError:
    """Build the error for an input that cannot be used: the file, what is wrong, what to do.

    Parameters
    ----------
    path
        The file.
    statement
        What is wrong, e.g. ``"cannot be read as an .h5ad file: it is empty (0 bytes)"``.

    Returns
    -------
    UnreadableInputError
        Message ``<path>: <statement>.`` followed, for a file under ``resources/``, by how to
        fetch it again (delete it and, if its lock line was recorded from this copy, that line),
        and for a file under ``results/`` by how to rebuild it.
    """
    path = Path(path)
    return UnreadableInputError(f"{path}: {statement}.{_how_to_replace(path)}")


def read_h5ad(path: str | Path) -> ad.AnnData:
    """Read a whole ``.h5ad`` file (:func:`anndata.read_h5ad`), naming what is wrong if it cannot.

    Parameters
    ----------
    path
        The file.

    Returns
    -------
    The AnnData.

    Raises
    ------
    UnreadableInputError
        If the file is empty, truncated, not HDF5 (an HTML page, say), not an AnnData or damaged.
    """
    path = Path(path)
    with _open_h5ad(path) as f:
        _require_anndata(f, path)
    try:
        return ad.read_h5ad(path)
    except (OSError, RuntimeError, KeyError) as err:
        raise unreadable(path, _h5ad_cause(path, err)) from err


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
    UnreadableInputError
        If the archive is empty, truncated, damaged or not an archive, or its files cannot be
        parsed.
    DataContractError
        If the matrix holds non-integer, negative or NaN values.
    """
    path = Path(path)
    folder = _member_name(matrix_dir)
    _check_content(path, "a .tar.gz archive")
    with tempfile.TemporaryDirectory(prefix="mrvi_10x_") as tmp:
        try:
            _extract_10x_members(path, folder, matrix_dir, Path(tmp))
        except _ARCHIVE_ERRORS as err:
            cause = f"{type(err).__name__}: {err}"
            msg = (
                f"cannot be read as a .tar.gz archive: it is truncated or damaged ({cause}; an "
                "interrupted download or copy?)"
            )
            raise unreadable(path, msg) from err
        try:
            adata = sc.read_10x_mtx(tmp, var_names="gene_symbols", make_unique=True)
        except (ValueError, IndexError, pd.errors.ParserError) as err:
            msg = (
                f"the files {folder}/{{{','.join(MTX_MEMBERS)}}} of the archive cannot be parsed "
                f"({type(err).__name__}: {err}): the archive is damaged or not a Cell Ranger "
                "matrix"
            )
            raise unreadable(path, msg) from err
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


#: What reading a damaged, truncated or foreign archive raises (tarfile, gzip, zlib, xz).
_ARCHIVE_ERRORS = (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, lzma.LZMAError)


def _extract_10x_members(path: Path, folder: str, matrix_dir: str, tmp: Path) -> None:
    """Copy the archive's ``<folder>/{matrix.mtx,genes.tsv,barcodes.tsv}`` into ``tmp``."""
    wanted = {f"{folder}/{name}" if folder else name: name for name in MTX_MEMBERS}
    with tarfile.open(path, mode="r:*") as tar:
        members = {_member_name(m.name): m for m in tar.getmembers()}
        missing = sorted(set(wanted) - set(members))
        if missing:
            held = sorted(n for n, m in members.items() if m.isfile())
            shown = ", ".join(held[:20]) + (f" ... ({len(held)} files)" if len(held) > 20 else "")
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
            with source, (tmp / name).open("wb") as dest:
                shutil.copyfileobj(source, dest, length=1 << 20)


#: Cells read at a time from an ``.h5ad`` matrix (bounds the memory of the reading itself).
H5AD_ROW_CHUNK = 20_000

#: Rows of each candidate matrix inspected by ``counts_layer: auto``.
COUNTS_PROBE_ROWS = 2_000


class SchemaError(ValueError):
    """An input file lacks a column (or layer) its dataset entry needs; the message names it."""


def read_h5ad_counts(
    path: str | Path, counts_layer: str | None = None, subset: SubsetSpec | None = None
) -> ad.AnnData:
    """Read the raw counts of an ``.h5ad`` file, keeping only the cells and genes ``subset`` keeps.

    ``obs`` and ``var`` are read first; the count matrix is then read in blocks of
    :data:`H5AD_ROW_CHUNK` cells, each reduced to the kept cells and genes at once, so a
    multi-gigabyte file (the 7 GB COVID-19 file, of which the paper keeps one site) needs memory
    for the kept part only. Layers other than the counts, ``obsm`` and ``uns`` are not read.

    Parameters
    ----------
    path
        The ``.h5ad`` file.
    counts_layer
        ``None``: ``X``; a layer name; ``"auto"``: the first of ``X``, ``layers['counts']``,
        ``layers['raw']``, the other layers and ``.raw`` whose first cells hold non-negative
        integers (logged; ``.raw`` brings its own genes).
    subset
        Cells (``obs`` column values) and genes (name prefixes dropped) to keep.

    Returns
    -------
    Kept cells x kept genes, the counts in ``X`` (CSR float32), ``obs`` and ``var`` as in the file.

    Raises
    ------
    UnreadableInputError
        If the file is empty, truncated, not HDF5 (an HTML page, say), not an AnnData, damaged, or
        holds no cell.
    SchemaError
        If a column of ``subset.obs`` or the named layer does not exist (naming what does).
    DataContractError
        If the chosen matrix does not hold raw counts, or no matrix does (``auto``).
    """
    path = Path(path)
    with _open_h5ad(path) as f:
        _require_anndata(f, path)
        try:
            obs = read_elem(f["obs"])
            if len(obs) == 0:
                statement = (
                    "the file is empty: it holds no cell (obs has 0 rows), so there is nothing to "
                    "read" + (", let alone to subset" if subset is not None and subset.obs else "")
                )
                raise unreadable(path, statement)
            rows = _kept_rows(obs, subset, path)
            where, elem, var = _counts_matrix(f, path, counts_layer, rows)
            cols = _kept_genes(var.index, subset)
            x = _read_block_rows(elem, rows, cols)
        except (OSError, RuntimeError, KeyError) as err:
            raise unreadable(path, _h5ad_cause(path, err)) from err
    problems = count_problems(x, where=f"{path.name}:{where}")
    if problems:
        raise DataContractError(problems)
    logger.info(
        "read %s: %d of %d cells, %d of %d genes, counts from %s",
        path.name,
        int(rows.sum()),
        len(rows),
        int(cols.sum()),
        len(cols),
        where,
    )
    return ad.AnnData(X=x, obs=obs.loc[rows].copy(), var=var.loc[cols].copy())


def _kept_rows(obs: pd.DataFrame, subset: SubsetSpec | None, path: Path) -> np.ndarray:
    """Boolean mask of the cells ``subset.obs`` keeps (all cells without it), logging each filter."""
    if not len(obs):
        msg = f"{path.name}: holds no cell (obs has 0 rows), so there is nothing to subset"
        raise SchemaError(msg)
    rows = np.ones(len(obs), dtype=bool)
    for column, values in (subset.obs if subset is not None else {}).items():
        if column not in obs.columns:
            msg = (
                f"{path.name}: obs has no column {column!r} (needed by subset.obs); its columns "
                f"are {list(obs.columns)}"
            )
            raise SchemaError(msg)
        present = set(obs[column].astype(str).unique())
        absent = sorted(set(values) - present)
        if absent:
            logger.warning("subset.obs.%s: values %s do not occur in the file", column, absent)
        keep = np.asarray(obs[column].astype(str).isin(values))
        logger.info(
            "subset %s in %s: kept %d of %d cells (dropped: %s)",
            column,
            list(values),
            int((rows & keep).sum()),
            int(rows.sum()),
            obs.loc[rows & ~keep, column].astype(str).value_counts().to_dict(),
        )
        rows &= keep
    if not rows.any():
        msg = f"{path.name}: subset.obs keeps no cell"
        raise SchemaError(msg)
    return rows


def _kept_genes(names: pd.Index, subset: SubsetSpec | None) -> np.ndarray:
    """Boolean mask of the genes ``subset.drop_var_prefixes`` keeps, logging each prefix's drops."""
    cols = np.ones(len(names), dtype=bool)
    for prefix in subset.drop_var_prefixes if subset is not None else ():
        dropped = np.asarray(names.astype(str).str.startswith(prefix))
        if dropped.any():
            logger.info("dropped %d genes whose names start with %r", int(dropped.sum()), prefix)
        cols &= ~dropped
    return cols


def _counts_matrix(
    f: h5py.File, path: Path, counts_layer: str | None, rows: np.ndarray
) -> tuple[str, Any, pd.DataFrame]:
    """Find the matrix that holds the raw counts: (description, h5py element, its var)."""
    var = read_elem(f["var"])
    layers = list(f["layers"].keys()) if "layers" in f else []
    if counts_layer is None:
        if "X" not in f:
            msg = f"{path.name}: X is not stored; the counts must be read from a layer: {layers}"
            raise SchemaError(msg)
        return "X", f["X"], var
    if counts_layer != AUTO_COUNTS:
        if counts_layer not in layers:
            msg = f"{path.name}: counts_layer {counts_layer!r} is not a layer; layers are {layers}"
            raise SchemaError(msg)
        return f"layers[{counts_layer!r}]", f["layers"][counts_layer], var
    ordered = [n for n in ("counts", "raw") if n in layers] + [
        n for n in layers if n not in ("counts", "raw")
    ]
    candidates = [("X", f["X"], var)] if "X" in f else []
    candidates += [(f"layers[{n!r}]", f["layers"][n], var) for n in ordered]
    if "raw" in f and "X" in f["raw"]:
        candidates.append((".raw.X", f["raw"]["X"], read_elem(f["raw"]["var"])))
    probe = np.zeros(len(rows), dtype=bool)
    probe[np.flatnonzero(rows)[:COUNTS_PROBE_ROWS]] = True
    rejected = []
    for where, elem, cand_var in candidates:
        block = _read_block_rows(elem, probe, np.ones(len(cand_var), dtype=bool))
        problems = count_problems(block, where=where)
        if not problems:
            if rejected:
                logger.info("raw counts not in %s", "; ".join(rejected))
            logger.info("counts_layer auto: raw counts found in %s", where)
            return where, elem, cand_var
        rejected.append(problems[0])
    raise DataContractError(
        [f"{path.name}: no matrix holds raw counts (counts_layer auto):", *rejected]
    )


def _read_block_rows(elem: Any, rows: np.ndarray, cols: np.ndarray) -> sparse.csr_matrix:
    """Kept rows and columns of a dense or sparse h5ad matrix, read in row blocks, as CSR float32."""
    is_sparse = isinstance(elem, h5py.Group)
    matrix = sparse_dataset(elem) if is_sparse else elem
    n = len(rows)
    blocks = []
    for start in range(0, n, H5AD_ROW_CHUNK):
        keep = rows[start : start + H5AD_ROW_CHUNK]
        if not keep.any():
            continue
        block = matrix[start : start + len(keep)]
        block = sparse.csr_matrix(block)[np.flatnonzero(keep)][:, np.flatnonzero(cols)]
        blocks.append(block.astype(np.float32))
    return (
        sparse.vstack(blocks, format="csr")
        if blocks
        else sparse.csr_matrix((0, int(cols.sum())), dtype=np.float32)
    )


#: Columns the portal metadata of a Single Cell Portal study always has.
SCP_ID_COLUMN = "NAME"


def read_scp_metadata(path: str | Path) -> pd.DataFrame:
    """Read a Single Cell Portal metadata file: header, the ``TYPE`` row, one row per cell.

    The ``TYPE`` row (``group`` or ``numeric`` per column) is dropped and used to type the columns:
    ``numeric`` columns become numbers, ``group`` columns categories. Rows are indexed by ``NAME``.

    Raises
    ------
    SchemaError
        If there is no ``NAME`` column or cell IDs repeat.
    """
    path = Path(path)
    table = read_tsv(
        path, "a tab-separated table", dtype=str, keep_default_na=False, na_values=[""]
    )
    if SCP_ID_COLUMN not in table.columns:
        msg = f"{path.name}: no {SCP_ID_COLUMN!r} column; its columns are {list(table.columns)}"
        raise SchemaError(msg)
    types: dict[str, str] = {}
    if len(table) and str(table.iloc[0][SCP_ID_COLUMN]).upper() == "TYPE":
        types = {c: str(v).lower() for c, v in table.iloc[0].items()}
        table = table.iloc[1:]
    table = table.set_index(SCP_ID_COLUMN)
    if not table.index.is_unique:
        dup = table.index[table.index.duplicated()].unique()[:5].tolist()
        msg = f"{path.name}: cell IDs repeat in {SCP_ID_COLUMN!r} (e.g. {dup})"
        raise SchemaError(msg)
    for column in table.columns:
        if types.get(column) == "numeric":
            table[column] = pd.to_numeric(table[column], errors="coerce")
        else:
            table[column] = table[column].astype("category")
    table.index.name = None
    return table


def mtx_header(path: str | Path, n_entries: int = 1000) -> tuple[str, int, int, int, bool]:
    """Read a MatrixMarket file's header and first entries without reading the matrix.

    Returns
    -------
    (field, rows, columns, non-zeros, integer): the header's field (``integer``, ``real``...),
    the size line, and whether the first ``n_entries`` values are whole numbers (``False`` for a
    ``pattern`` matrix, which holds none).

    Raises
    ------
    UnreadableInputError
        If the file does not start as a MatrixMarket coordinate file or an entry is no number.
    """
    path = Path(path)
    with path.open("rb") as fh:
        banner = fh.readline().decode("latin-1").lower().split()
        if len(banner) < 4 or banner[0] != "%%matrixmarket" or banner[2] != "coordinate":
            raise unreadable(path, "is not a MatrixMarket coordinate file (its first line)")
        line = fh.readline()
        while line.startswith(b"%") or (line and not line.strip()):
            line = fh.readline()
        try:
            rows, cols, nnz = (int(v) for v in line.split())
        except ValueError as err:
            raise unreadable(path, "has no MatrixMarket size line (rows columns entries)") from err
        whole = banner[3] != "pattern"  # a pattern matrix holds no values at all
        for _ in range(n_entries if whole else 0):
            entry = fh.readline().split()
            if len(entry) < 3:
                break
            try:
                whole = whole and float(entry[2]).is_integer()
            except ValueError as err:
                statement = f"has an entry that is not a number ({entry[2][:20]!r})"
                raise unreadable(path, statement) from err
    return banner[3].lower(), rows, cols, nnz, whole


def _count_lines(path: Path) -> int:
    """Count the non-blank lines of a text file (what pandas reads as rows without a header)."""
    with path.open("rb") as fh:
        return sum(1 for line in fh if line.strip())


def check_scp_bundles(source: ScpBundlesSource, files: Mapping[str, str | Path]) -> None:
    """Check the placed bundle files against each other before any matrix is read.

    In seconds, from each matrix's MatrixMarket header and first entries and the line counts of
    its features and barcodes: every bundle's matrix is genes x cells with as many rows as its
    features and columns as its barcodes (a file of another bundle, or a truncated one, shows
    here), and holds whole numbers (the portal's normalised ``.scp.matrix.mtx`` saved under the
    raw file's name does not). Logs each bundle's size.

    Raises
    ------
    UnreadableInputError
        If a file is empty, an HTML page or not a MatrixMarket file (for the matrix).
    SchemaError
        Naming every bundle whose files disagree and what to replace.
    """
    problems = []
    for bundle in source.bundles:
        keys = source.bundle_files(bundle)
        _check_content(Path(files[keys["features"]]), "a features table")
        _check_content(Path(files[keys["barcodes"]]), "a barcodes list")
        _check_content(Path(files[keys["matrix"]]), "a MatrixMarket file")
        field, rows, cols, nnz, whole = mtx_header(files[keys["matrix"]])
        n_features = _count_lines(Path(files[keys["features"]]))
        n_barcodes = _count_lines(Path(files[keys["barcodes"]]))
        logger.info(
            "bundle %s: %s is %d genes x %d cells, %d entries (%s); %d features, %d barcodes",
            bundle,
            keys["matrix"],
            rows,
            cols,
            nnz,
            field,
            n_features,
            n_barcodes,
        )
        if (rows, cols) != (n_features, n_barcodes):
            problems.append(
                f"{keys['matrix']} is {rows} genes x {cols} cells but {keys['features']} has "
                f"{n_features} lines and {keys['barcodes']} {n_barcodes}: files of another "
                "bundle, or an incomplete download"
            )
        if field == "pattern":
            problems.append(
                f"{keys['matrix']} is a pattern matrix (no values): the workflow needs "
                f"{bundle}.scp.raw.mtx with its raw counts"
            )
        elif not whole:
            problems.append(
                f"{keys['matrix']} holds fractional values ({field}): the normalised "
                f"{bundle}.scp.matrix.mtx saved under the raw file's name? The workflow needs "
                f"{bundle}.scp.raw.mtx (raw counts)"
            )
    if problems:
        msg = "the IBD bundles placed do not fit together:\n  " + "\n  ".join(problems)
        raise SchemaError(msg)


def read_scp_bundles(
    source: ScpBundlesSource, files: Mapping[str, str | Path] | Sequence[str | Path]
) -> ad.AnnData:
    """Read Single Cell Portal expression bundles (genes x cells MatrixMarket) and their metadata.

    The files are checked against each other first (:func:`check_scp_bundles`, seconds); then
    each bundle's ``.scp.raw.mtx`` is read with its features (Ensembl ID, symbol) and barcodes;
    the bundles are joined on the genes all of them measure (logged: the IBD atlas's colon and
    ileum bundles list 28,663 and 28,923 genes), and cells get their row of the portal metadata
    (:func:`read_scp_metadata`); cells without one are dropped and counted in the log.

    Parameters
    ----------
    source
        The parsed source.
    files
        Path of every registry key of :meth:`ScpBundlesSource.resources`, or the paths in that
        order.

    Returns
    -------
    Cells x shared genes: counts in ``X`` (CSR), ``obs`` the metadata plus ``bundle``, ``var``
    indexed by symbol (made unique) with ``gene_ids``.

    Raises
    ------
    SchemaError
        If a bundle's files disagree (matrix shape vs features/barcodes), a matrix holds fractional
        values, or no cell has metadata.
    DataContractError
        If a matrix does not hold raw counts.
    """
    if not isinstance(files, Mapping):
        files = dict(zip(source.resources(), files, strict=True))
    check_scp_bundles(source, files)
    parts = []
    for bundle in source.bundles:
        keys = source.bundle_files(bundle)
        features = read_tsv(files[keys["features"]], "a features table", header=None, dtype=str)
        barcodes = read_tsv(files[keys["barcodes"]], "a barcodes list", header=None, dtype=str)[0]
        matrix = read_mtx(files[keys["matrix"]])
        if matrix.shape != (len(features), len(barcodes)):
            msg = (
                f"bundle {bundle}: {keys['matrix']} is {matrix.shape[0]} x {matrix.shape[1]} "
                f"(genes x cells) but {keys['features']} lists {len(features)} genes and "
                f"{keys['barcodes']} {len(barcodes)} cells"
            )
            raise SchemaError(msg)
        x = sparse.csr_matrix(matrix.T, dtype=np.float32)
        problems = count_problems(x, where=keys["matrix"])
        if problems:
            raise DataContractError(problems)
        symbols = features[1] if features.shape[1] > 1 else features[0]
        var = pd.DataFrame({"gene_symbols": symbols.to_numpy()}, index=features[0].to_numpy())
        part = ad.AnnData(X=x, obs=pd.DataFrame(index=barcodes.to_numpy()), var=var)
        part.obs["bundle"] = bundle
        logger.info("bundle %s: %d cells x %d genes", bundle, part.n_obs, part.n_vars)
        parts.append(part)
    shared = set.intersection(*(set(p.var_names) for p in parts))
    union = set.union(*(set(p.var_names) for p in parts))
    if len(shared) < len(union):
        logger.info(
            "kept the %d genes measured in every bundle (%d measured in some only)",
            len(shared),
            len(union) - len(shared),
        )
    adata = ad.concat(parts, join="inner", merge="first", index_unique=None)
    adata.obs["bundle"] = adata.obs["bundle"].astype("category")
    if not adata.obs_names.is_unique:
        msg = "cell IDs repeat across bundles"
        raise SchemaError(msg)
    metadata = read_scp_metadata(files[source.metadata])
    has_meta = adata.obs_names.isin(metadata.index)
    if not has_meta.any():
        msg = (
            f"no cell of the bundles has a row in {source.metadata} (cell IDs such as "
            f"{list(adata.obs_names[:3])} vs {list(metadata.index[:3])})"
        )
        raise SchemaError(msg)
    if not has_meta.all():
        logger.info("dropped %d of %d cells without metadata", int((~has_meta).sum()), adata.n_obs)
        adata = adata[has_meta].copy()
    unused = int((~metadata.index.isin(adata.obs_names)).sum())
    if unused:
        logger.info("%d metadata rows name cells of no bundle read", unused)
    adata.obs = adata.obs.join(metadata)
    adata.var["gene_ids"] = adata.var_names.to_numpy()
    adata.var_names = adata.var.pop("gene_symbols").astype(str).to_numpy()
    adata.var_names_make_unique()
    adata.X = sparse.csr_matrix(adata.X)
    return adata


def read_sample_metadata(
    adata: ad.AnnData, spec: SampleMetadataSpec, path: str | Path
) -> ad.AnnData:
    """Join a tab-separated table of per-sample (or per-donor) covariates onto ``adata.obs``.

    Raises
    ------
    SchemaError
        If ``spec.join_key`` is missing from the table or from ``obs``, a key repeats in the table, a
        column would overwrite an ``obs`` column, a value of ``obs[join_key]`` has no row (naming
        them), or a column of ``spec.values`` is missing or holds another value
        (:func:`check_table_values`).
    """
    path = Path(path)
    table = read_tsv(
        path, "a tab-separated table", dtype=str, keep_default_na=False, na_values=[""]
    )
    for what, columns in ((path.name, table.columns), ("obs", adata.obs.columns)):
        if spec.join_key not in columns:
            msg = f"sample_metadata: {what} has no column {spec.join_key!r}; its columns are {list(columns)}"
            raise SchemaError(msg)
    if table[spec.join_key].duplicated().any():
        dup = table.loc[table[spec.join_key].duplicated(), spec.join_key].unique()[:5].tolist()
        msg = f"sample_metadata: {path.name} has several rows for {spec.join_key} {dup}"
        raise SchemaError(msg)
    check_table_values(table, spec.values, what=path.name, key=spec.join_key)
    clash = sorted(set(table.columns) - {spec.join_key} & set(adata.obs.columns))
    if clash:
        msg = f"sample_metadata: columns {clash} of {path.name} already exist in obs"
        raise SchemaError(msg)
    keys = adata.obs[spec.join_key].astype(str)
    missing = sorted(set(keys) - set(table[spec.join_key]))
    if missing:
        msg = (
            f"sample_metadata: {len(missing)} value(s) of obs[{spec.join_key!r}] have no row in "
            f"{path.name}: {missing[:5]}"
        )
        raise SchemaError(msg)
    table = table.set_index(spec.join_key)
    for column in table.columns:
        values = table[column].reindex(keys.to_numpy())
        numeric = pd.to_numeric(values, errors="coerce")
        adata.obs[column] = (
            numeric.to_numpy()
            if numeric.notna().sum() == values.notna().sum()
            else pd.Categorical(values.to_numpy())
        )
    logger.info(
        "joined %d columns of %s on %s: %s",
        table.shape[1],
        path.name,
        spec.join_key,
        list(table.columns),
    )
    return adata


def check_table_values(
    table: pd.DataFrame, allowed: Mapping[str, Sequence[str]], *, what: str, key: str
) -> None:
    """Check that each column of ``allowed`` is in ``table`` and holds only its allowed values.

    Parameters
    ----------
    table
        The table, values as strings (empty cells missing).
    allowed
        Column -> allowed values.
    what
        The table's name, for the message.
    key
        The column naming the rows (shown for each offending row).

    Raises
    ------
    SchemaError
        Naming, per column, the missing column or the rows (by ``key``) with an empty or other
        value, and the allowed values.
    """
    problems = []
    for column, values in allowed.items():
        if column not in table.columns:
            problems.append(f"no column {column!r} (its columns: {list(table.columns)})")
            continue
        cells = table[column]
        bad = cells.isna() | ~cells.astype(str).isin(list(values))
        if bad.any():
            shown = ", ".join(
                f"{k}: {v!r}" for k, v in zip(table.loc[bad, key][:5], cells[bad][:5], strict=True)
            )
            more = f" and {int(bad.sum()) - 5} more" if bad.sum() > 5 else ""
            problems.append(
                f"column {column!r} must hold one of {list(values)}; {int(bad.sum())} row(s) do "
                f"not ({shown}{more})"
            )
    if problems:
        msg = f"{what}: " + "; ".join(problems)
        raise SchemaError(msg)


def read_source(
    source: SimulationParams | H5adSource | TenxMtxTarSource | ScpBundlesSource,
    path: str | Path | Mapping[str, str | Path],
    subset: SubsetSpec | None = None,
) -> ad.AnnData:
    """Read the raw input of a dataset entry, by the kind of its ``source``.

    Parameters
    ----------
    source
        The parsed ``source`` of the entry (:attr:`DatasetSpec.source`).
    path
        Its file (the simulated base, the ``.h5ad`` file, the downloaded archive), or for
        ``scp_bundles`` the path of each of its registry keys.
    subset
        Cells and genes to keep (:attr:`DatasetSpec.subset`); ``h5ad`` sources apply it while
        reading, the others after.

    Returns
    -------
    The raw dataset, for :func:`preprocess_dataset`.
    """
    if isinstance(source, H5adSource):
        return read_h5ad_counts(path, source.counts_layer, subset)
    if isinstance(source, ScpBundlesSource):
        adata = read_scp_bundles(source, path)
    elif isinstance(source, TenxMtxTarSource):
        adata = read_10x_mtx_tar(path, source.matrix_dir)
    elif isinstance(source, SimulationParams):
        adata = read_h5ad(path)
    else:
        msg = f"unknown source {source!r}"
        raise TypeError(msg)
    return apply_subset(adata, subset)


def apply_subset(adata: ad.AnnData, subset: SubsetSpec | None) -> ad.AnnData:
    """Keep the cells and genes ``subset`` keeps (an in-memory AnnData), logging what goes."""
    if subset is None:
        return adata
    rows = _kept_rows(adata.obs, subset, Path("data"))
    cols = _kept_genes(adata.var_names, subset)
    return adata[rows, cols].copy() if not (rows.all() and cols.all()) else adata


def read_tsv(path: str | Path, kind: str, **options: Any) -> pd.DataFrame:
    """Read a tab-separated file with :func:`pandas.read_csv`, naming what is wrong if it cannot.

    Parameters
    ----------
    path
        The file.
    kind
        What it should be, for the message (``"a features table"``).
    **options
        Passed to :func:`pandas.read_csv` (``sep`` is a tab).

    Raises
    ------
    UnreadableInputError
        If the file is empty, an HTML page, or cannot be parsed.
    """
    path = Path(path)
    _check_content(path, kind)
    try:
        return pd.read_csv(path, sep="\t", **options)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as err:
        statement = (
            f"cannot be read as {kind}: {type(err).__name__}: {err} (a damaged or incomplete "
            "file, or another file saved under this name?)"
        )
        raise unreadable(path, statement) from err


def read_mtx(path: str | Path) -> Any:
    """Read a MatrixMarket file (:func:`scipy.io.mmread`), naming what is wrong if it cannot.

    Raises
    ------
    UnreadableInputError
        If the file is empty, an HTML page, not MatrixMarket, or truncated.
    """
    path = Path(path)
    _check_content(path, "a MatrixMarket file")
    try:
        return spio.mmread(path, spmatrix=False)
    except (ValueError, IndexError, OSError, EOFError) as err:
        statement = (
            f"cannot be read as a MatrixMarket file: {type(err).__name__}: {err} (a truncated or "
            "damaged file: an interrupted download or copy?)"
        )
        raise unreadable(path, statement) from err


@contextlib.contextmanager
def _open_h5ad(path: Path) -> Iterator[h5py.File]:
    """Open an ``.h5ad`` file with h5py; a file that is not one raises UnreadableInputError."""
    _check_content(path, "an .h5ad file")
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise unreadable(path, _h5ad_cause(path, err)) from err
    with f:
        yield f


def _require_anndata(f: h5py.File, path: Path) -> None:
    """Refuse an HDF5 file without the groups every AnnData has (``obs``, ``var``)."""
    missing = [key for key in ("obs", "var") if key not in f]
    if missing:
        statement = (
            f"cannot be read as an .h5ad file: it is an HDF5 file but not an AnnData (no "
            f"{' or '.join(map(repr, missing))}; it holds {sorted(f.keys())})"
        )
        raise unreadable(path, statement)


_TRUNCATED = re.compile(r"truncated file: eof = (\d+).*stored_eof = (\d+)")


def _h5ad_cause(path: Path, err: BaseException) -> str:
    """Say why an HDF5 file that starts right cannot be read, from h5py's error."""
    text = str(err)
    match = _TRUNCATED.search(text)
    if match:
        have, want = (int(g) for g in match.groups())
        return (
            f"cannot be read as an .h5ad file: it is truncated, {have:,} of the {want:,} bytes its "
            "HDF5 header announces (an interrupted download or copy?)"
        )
    return (
        f"cannot be read as an .h5ad file: it is damaged ({type(err).__name__}: {text}; an "
        "incomplete copy or a disk error?)"
    )


def _check_content(path: Path, kind: str) -> None:
    """Refuse a file that is empty, an HTML page or not in the format its name promises."""
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(64)
    except OSError as err:
        raise unreadable(path, f"cannot be opened ({err.strerror or err})") from err
    problem = content_problem(path.name, head, size)
    if problem is None:
        return
    if problem.startswith("it is empty") or "too short" in problem:
        origin = "an interrupted download or copy?"
    elif "HTML page" in problem:
        origin = "an error or sign-in page saved in its place?"
    else:
        origin = f"another file saved under this name? it starts with {head[:24]!r}"
    raise unreadable(path, f"cannot be read as {kind}: {problem} ({origin})")


def _how_to_replace(path: Path) -> str:
    """How to get a good copy of a file the workflow downloads or writes (or ``""``)."""
    folders = path.parts[:-1]
    if "resources" in folders:
        at = len(folders) - 1 - folders[::-1].index("resources")
        name = "/".join(path.parts[at + 1 :])
        try:
            size = str(path.stat().st_size)
        except OSError:
            size = "this file's size"
        return (
            f" It is the downloaded resource {name!r}. To fetch it again, delete it (rm {path}) "
            "and run the workflow again: rule download downloads it anew and checks it against "
            f"the line of {name!r} in the lock file (config/downloads.lock.tsv unless the config "
            f"key downloads.lock names another). If that line's size is {size}, the size of this "
            "file, the line was recorded from this bad copy: delete the line too, or the new "
            "download is refused as not matching it. For a file placed by hand, first replace "
            f"the copy in the manual folder (resources/manual/{name})."
        )
    if "results" in folders:
        return " It is written by the workflow: delete it and run the workflow again to rebuild it."
    return ""


def _member_name(name: str) -> str:
    """Normalise a member name: no ``./`` parts, no leading or trailing slash (``./a/b/`` -> ``a/b``)."""
    return "/".join(p for p in PurePosixPath(name).parts if p not in {".", "/"})
