"""Connectivity-map clusters of sci-Plex drugs from their LINCS L1000 signatures (Fig. 4d's truth).

The paper scores how well a sample representation groups drugs that act alike by a silhouette
against clusters of the sci-Plex drugs built from an independent source: their L1000 signatures
in the same cell line. The inputs are the iLINCS exports the download registry names
(``l1000/A549_sig_batch_{1..6}.xls`` with ``l1000/A549_sig_meta_batch_{1..6}.xls``;
``l1000/MCF7_sig_batch_{1..5}.xls`` with ``l1000/MCF7_sig_meta.xls``; iLINCS has no K562). They
are tab-separated text despite the ``.xls`` name: the signature files hold one row per signature
and landmark gene (:data:`SIGNATURE_COLUMNS`), the metadata files one row per signature
(:data:`METADATA_COLUMNS`), joined on ``signatureID`` = ``SignatureId``.

The steps (:func:`cmap_clusters` runs them all):

1. :func:`match_perturbagens`: L1000 perturbagen names -> sci-Plex ``product_name`` (exact on a
   normalised name, else the best :class:`difflib.SequenceMatcher` ratio >= 0.9; the paper's three
   false matches ``Estradiol``, ``sirolimus``, ``YC1`` dropped).
2. :func:`choose_signatures`: one signature per drug, its exemplar if it has one, else its first.
3. :func:`signed_deg_sets`: per signature, Benjamini-Hochberg over its genes; the signed DE genes
   are those with ``|Value_LogDiffExp| >= 0.5`` and adjusted p-value ``<= 0.05`` (``GENE:up`` and
   ``GENE:down`` are different elements).
4. :func:`jaccard_similarity`: Jaccard index of the signed sets between drugs.
5. :func:`similarity_clusters`: similarities below 0.1 set to 0, Leiden (RB configuration model,
   resolution 0.9, weighted, seeded) on the rest, singleton clusters dropped.
"""

from __future__ import annotations

import difflib
import logging
import re
import unicodedata
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.stats import false_discovery_control

from .readers import SchemaError, read_tsv

logger = logging.getLogger(__name__)

#: Columns of an iLINCS signature export that are read (one row per signature x gene).
SIGNATURE_COLUMNS = ("signatureID", "Name_GeneSymbol", "Value_LogDiffExp", "Significance_pvalue")
#: Columns of an iLINCS signature-metadata export that are read (one row per signature).
METADATA_COLUMNS = ("SignatureId", "Perturbagen", "is_exemplar")
#: Perturbagens the paper dropped as false fuzzy matches of sci-Plex drugs.
PAPER_FALSE_MATCHES = ("Estradiol", "sirolimus", "YC1")
#: Suffix of a gene's element in a signed DE-gene set, by the sign of its log fold change.
UP, DOWN = ":up", ":down"

#: Salt and form words dropped from the end of a drug name before comparing names
#: (``SNS-314 Mesylate`` is ``SNS-314``).
_SALT_WORDS = frozenset(
    {
        "acetate",
        "besylate",
        "citrate",
        "dihydrochloride",
        "dimesylate",
        "fumarate",
        "hcl",
        "hydrate",
        "hydrobromide",
        "hydrochloride",
        "lactate",
        "maleate",
        "mesylate",
        "monohydrate",
        "phosphate",
        "potassium",
        "salt",
        "sodium",
        "succinate",
        "sulfate",
        "tartrate",
        "tosylate",
    }
)
_PARENS = re.compile(r"\(([^()]*)\)")
_TRUE = frozenset({"1", "1.0", "true", "t", "yes", "y"})


# --- reading ------------------------------------------------------------------------------------


def _require(path: Path, columns: Sequence[str], required: Sequence[str], kind: str) -> None:
    missing = [c for c in required if c not in columns]
    if missing:
        msg = (
            f"{path}: {kind} lacks column(s) {missing}; its columns are {list(columns)} "
            f"(expected {list(required)}: the iLINCS export of {kind}s)"
        )
        raise SchemaError(msg)


def _header(path: Path, kind: str) -> list[str]:
    return list(read_tsv(path, f"an iLINCS {kind} export (tab-separated)", nrows=0).columns)


def read_l1000_metadata(paths: Sequence[str | Path]) -> pd.DataFrame:
    """Read iLINCS signature-metadata exports: one row per signature, in file order.

    Parameters
    ----------
    paths
        The metadata files (``*_sig_meta*.xls``, tab-separated), read in this order.

    Returns
    -------
    Columns ``SignatureId`` (str), ``Perturbagen`` (str) and ``is_exemplar`` (bool: ``1``,
    ``true``, ``yes`` in any case; anything else, empty included, is false). A signature listed
    twice with the same perturbagen is kept once.

    Raises
    ------
    SchemaError
        If a file lacks one of :data:`METADATA_COLUMNS` (naming the file and its columns).
    ValueError
        If a signature is listed with two different perturbagens, or no file names a signature.
    UnreadableInputError
        If a file is empty, an HTML page or cannot be parsed.
    """
    frames = []
    for path in map(Path, paths):
        _require(path, _header(path, "metadata"), METADATA_COLUMNS, "signature metadata")
        frame = read_tsv(
            path,
            "an iLINCS metadata export (tab-separated)",
            usecols=list(METADATA_COLUMNS),
            dtype=str,
            keep_default_na=False,
        )
        frames.append(frame)
        logger.info("%s: %d signature(s)", path, len(frame))
    if not frames or sum(len(f) for f in frames) == 0:
        msg = f"no signature in the L1000 metadata file(s) {[str(p) for p in paths]}"
        raise ValueError(msg)
    meta = pd.concat(frames, ignore_index=True)
    meta["SignatureId"] = meta["SignatureId"].str.strip()
    meta["Perturbagen"] = meta["Perturbagen"].str.strip()
    meta["is_exemplar"] = meta["is_exemplar"].str.strip().str.lower().isin(_TRUE)
    meta = meta.drop_duplicates(["SignatureId", "Perturbagen"])
    twice = meta["SignatureId"][meta["SignatureId"].duplicated()]
    if len(twice):
        examples = meta[meta["SignatureId"].isin(twice.iloc[:3])]
        msg = (
            f"{twice.nunique()} signature(s) of the L1000 metadata are listed with different "
            f"perturbagens, e.g. {examples[['SignatureId', 'Perturbagen']].values.tolist()}"
        )
        raise ValueError(msg)
    return meta.reset_index(drop=True)


def read_l1000_signatures(
    paths: Sequence[str | Path],
    *,
    known: Collection[str] | None = None,
    keep: Collection[str] | None = None,
) -> pd.DataFrame:
    """Read iLINCS signature exports: one row per signature x gene.

    Parameters
    ----------
    paths
        The signature files (``*_sig_batch_*.xls``, tab-separated), read in this order.
    known
        Signature IDs the metadata lists; a signature of the files outside it is an error (the
        signature and metadata exports of different searches). ``None``: not checked.
    keep
        Signature IDs to keep (the others are dropped as each file is read, which bounds the
        memory a cell line's exports need); ``None``: all.

    Returns
    -------
    The columns :data:`SIGNATURE_COLUMNS`: ``signatureID`` and ``Name_GeneSymbol`` as strings,
    the two values as floats. Rows whose fold change or p-value is not a number are dropped
    (logged).

    Raises
    ------
    SchemaError
        If a file lacks one of :data:`SIGNATURE_COLUMNS` (naming the file and its columns).
    ValueError
        If a file holds signatures that ``known`` lacks.
    UnreadableInputError
        If a file is empty, an HTML page or cannot be parsed.
    """
    known_set = None if known is None else set(map(str, known))
    keep_set = None if keep is None else set(map(str, keep))
    frames = []
    for path in map(Path, paths):
        _require(path, _header(path, "signature"), SIGNATURE_COLUMNS, "signature")
        frame = read_tsv(
            path,
            "an iLINCS signature export (tab-separated)",
            usecols=list(SIGNATURE_COLUMNS),
            dtype={"signatureID": str, "Name_GeneSymbol": str},
        )
        frame["signatureID"] = frame["signatureID"].str.strip()
        ids = pd.unique(frame["signatureID"])
        if known_set is not None:
            unknown = [i for i in ids if i not in known_set]
            if unknown:
                msg = (
                    f"{path}: {len(unknown)} of its {len(ids)} signatures have no row in the "
                    f"L1000 metadata file(s), e.g. {unknown[:3]}: are the signature and metadata "
                    "exports of the same iLINCS search?"
                )
                raise ValueError(msg)
        logger.info("%s: %d signature(s), %d row(s)", path, len(ids), len(frame))
        if keep_set is not None:
            frame = frame[frame["signatureID"].isin(keep_set)]
        frames.append(frame)
    if not frames:
        msg = "no L1000 signature file given"
        raise ValueError(msg)
    table = pd.concat(frames, ignore_index=True)
    for column in ("Value_LogDiffExp", "Significance_pvalue"):
        table[column] = pd.to_numeric(table[column], errors="coerce")
    bad = table[["Value_LogDiffExp", "Significance_pvalue"]].isna().any(axis=1)
    if bad.any():
        logger.warning("dropped %d L1000 row(s) without a fold change or p-value", int(bad.sum()))
        table = table[~bad].reset_index(drop=True)
    return table


def read_l1000(
    signature_paths: Sequence[str | Path], metadata_paths: Sequence[str | Path]
) -> pd.DataFrame:
    """Read one cell line's iLINCS signature and metadata exports, joined.

    Parameters
    ----------
    signature_paths
        The signature files (``<CL>_sig_batch_<i>.xls``).
    metadata_paths
        The metadata files (``<CL>_sig_meta_batch_<i>.xls`` or ``<CL>_sig_meta.xls``).

    Returns
    -------
    One row per signature x gene: :data:`SIGNATURE_COLUMNS` plus ``Perturbagen`` and
    ``is_exemplar`` of the signature.

    Raises
    ------
    SchemaError
        If a file lacks a column (naming the file and its columns).
    ValueError
        If a signature file holds a signature the metadata does not list, or nothing is read.
    """
    meta = read_l1000_metadata(metadata_paths)
    table = read_l1000_signatures(signature_paths, known=meta["SignatureId"])
    _warn_without_data(meta, table)
    joined = table.merge(
        meta.rename(columns={"SignatureId": "signatureID"}), on="signatureID", how="left"
    )
    logger.info(
        "L1000: %d signature(s) of %d perturbagen(s)",
        joined["signatureID"].nunique(),
        joined["Perturbagen"].nunique(),
    )
    return joined


def _warn_without_data(meta: pd.DataFrame, table: pd.DataFrame) -> None:
    missing = ~meta["SignatureId"].isin(set(table["signatureID"]))
    if missing.any():
        logger.warning(
            "%d signature(s) of the L1000 metadata have no data in the signature files, e.g. %s",
            int(missing.sum()),
            meta["SignatureId"][missing].iloc[:3].tolist(),
        )


# --- matching names -------------------------------------------------------------------------------


def normalise_name(name: str) -> str:
    """Reduce a drug name for comparison: lower case, letters and digits only.

    Parenthesised parts are removed (``Glesatinib?(MGCD265)`` -> ``glesatinib``), and so are
    trailing salt words (``SNS-314 Mesylate`` -> ``sns314``; :data:`_SALT_WORDS`).
    """
    text = unicodedata.normalize("NFKD", str(name)).lower()
    words = re.findall(r"[a-z0-9]+", _PARENS.sub(" ", text))
    while len(words) > 1 and words[-1] in _SALT_WORDS:
        words.pop()
    return "".join(words)


def name_aliases(name: str) -> list[str]:
    """List the normalised forms a drug name matches by: the name, then parenthesised parts.

    ``Glesatinib?(MGCD265)`` -> ``["glesatinib", "mgcd265"]``; parts shorter than 3 characters
    once normalised (``(+)``, ``(S)``) are not aliases.
    """
    out = [normalise_name(name)]
    for part in _PARENS.findall(unicodedata.normalize("NFKD", str(name))):
        alias = normalise_name(part)
        if len(alias) >= 3 and alias not in out:
            out.append(alias)
    return [a for a in out if a]


def _best_match(aliases: Sequence[str], targets: Sequence[str], floor: float) -> tuple[float, int]:
    """Find the best SequenceMatcher ratio of ``aliases`` to ``targets``: (ratio, target index).

    ``(0.0, -1)`` when no pair reaches ``floor``; a tie goes to the first target.
    """
    best, where = 0.0, -1
    for a in aliases:
        matcher = difflib.SequenceMatcher(None, b=a, autojunk=False)
        for k, t in enumerate(targets):
            matcher.set_seq1(t)
            bar = max(best, floor)
            if matcher.real_quick_ratio() < bar or matcher.quick_ratio() < bar:
                continue
            ratio = matcher.ratio()
            if ratio >= bar and (ratio > best or (ratio == best and k < where)):
                best, where = ratio, k
    return best, where


def match_perturbagens(
    perturbagens: Iterable[str],
    products: Iterable[str],
    *,
    min_ratio: float = 0.9,
    exclude: Iterable[str] = PAPER_FALSE_MATCHES,
) -> dict[str, str]:
    """Match L1000 perturbagen names to sci-Plex product names.

    A perturbagen matches a product exactly when one of their :func:`name_aliases` is equal
    (case, punctuation, a parenthesised part and trailing salt words ignored). Otherwise it matches
    the product with the best :class:`difflib.SequenceMatcher` ratio between their aliases if that
    ratio is at least ``min_ratio`` (the paper's fuzzy score >= 90 out of 100). A product matched
    exactly keeps only its exact matches; one matched only fuzzily keeps its best-scoring
    perturbagen(s). Pairs where either name is in ``exclude`` (compared normalised) are dropped.

    Parameters
    ----------
    perturbagens
        L1000 perturbagen names (duplicates are ignored).
    products
        sci-Plex ``product_name`` values (duplicates are ignored; the first product wins a tie).
    min_ratio
        Least SequenceMatcher ratio (0-1) of a fuzzy match.
    exclude
        Names never matched, L1000 or sci-Plex side (the paper's false matches by default).

    Returns
    -------
    Perturbagen -> product, in the order of ``perturbagens``; several perturbagens may map to one
    product.

    Raises
    ------
    ValueError
        If ``min_ratio`` is not within (0, 1].
    """
    if not 0.0 < min_ratio <= 1.0:
        msg = f"min_ratio must be within (0, 1] (a SequenceMatcher ratio), got {min_ratio}"
        raise ValueError(msg)
    excluded = {normalise_name(n) for n in exclude}
    names = list(dict.fromkeys(str(p) for p in perturbagens))
    prods = list(dict.fromkeys(str(p) for p in products))
    alias_of = {p: name_aliases(p) for p in prods}
    by_alias: dict[str, str] = {}
    for product, aliases in alias_of.items():
        for alias in aliases:
            by_alias.setdefault(alias, product)
    all_aliases = list(by_alias)

    exact: dict[str, str] = {}
    fuzzy: dict[str, tuple[str, float]] = {}
    for name in names:
        aliases = name_aliases(name)
        hit = next((by_alias[a] for a in aliases if a in by_alias), None)
        if hit is not None:
            exact[name] = hit
            continue
        ratio, where = _best_match(aliases, all_aliases, min_ratio)
        if where >= 0:
            fuzzy[name] = (by_alias[all_aliases[where]], ratio)

    matched = set(exact.values())
    best_ratio: dict[str, float] = {}
    for product, ratio in fuzzy.values():
        best_ratio[product] = max(best_ratio.get(product, 0.0), ratio)
    kept_fuzzy = {
        name: (product, ratio)
        for name, (product, ratio) in fuzzy.items()
        if product not in matched and ratio == best_ratio[product]
    }
    for name, (product, ratio) in fuzzy.items():
        if name not in kept_fuzzy:
            logger.info(
                "L1000 perturbagen %r not matched to %r (ratio %.3f): the product has a better "
                "match",
                name,
                product,
                ratio,
            )
    out: dict[str, str] = {}
    for name in names:
        product = exact.get(name) or kept_fuzzy.get(name, (None, 0.0))[0]
        if product is None:
            continue
        if normalise_name(name) in excluded or normalise_name(product) in excluded:
            logger.info("L1000 perturbagen %r -> %r dropped: an excluded name", name, product)
            continue
        out[name] = product
    for name, (product, ratio) in kept_fuzzy.items():
        if name in out:
            logger.info(
                "L1000 perturbagen %r matched %r fuzzily (ratio %.3f)", name, product, ratio
            )
    logger.info(
        "matched %d L1000 perturbagen(s) to %d of %d sci-Plex product(s) (%d fuzzily)",
        len(out),
        len(set(out.values())),
        len(prods),
        sum(1 for n in out if n in kept_fuzzy),
    )
    return out


# --- one signature per drug --------------------------------------------------------------------


def choose_signatures(metadata: pd.DataFrame, matches: Mapping[str, str]) -> pd.DataFrame:
    """One signature per matched drug: its first exemplar signature, else its first signature.

    Parameters
    ----------
    metadata
        A table with ``SignatureId`` (or ``signatureID``), ``Perturbagen`` and ``is_exemplar``
        (:func:`read_l1000_metadata`, or the long table of :func:`read_l1000`); "first" is the
        table's row order (the order of the export files).
    matches
        Perturbagen -> sci-Plex product (:func:`match_perturbagens`); the signatures of all the
        perturbagens matched to one product compete.

    Returns
    -------
    One row per product (in the order of first appearance): ``product_name``, ``signatureID``,
    ``Perturbagen``, ``is_exemplar``.

    Raises
    ------
    SchemaError
        If a column is missing.
    ValueError
        If no signature belongs to a matched perturbagen.
    """
    meta = metadata.rename(columns={"SignatureId": "signatureID"})
    missing = [c for c in ("signatureID", "Perturbagen", "is_exemplar") if c not in meta.columns]
    if missing:
        msg = f"the L1000 metadata lacks column(s) {missing}; its columns are {list(meta.columns)}"
        raise SchemaError(msg)
    meta = meta.drop_duplicates("signatureID")[["signatureID", "Perturbagen", "is_exemplar"]]
    meta = meta[meta["Perturbagen"].isin(list(matches))].copy()
    if meta.empty:
        msg = "no L1000 signature belongs to a perturbagen matched to a sci-Plex product"
        raise ValueError(msg)
    meta["product_name"] = meta["Perturbagen"].map(matches)
    meta["order"] = np.arange(len(meta))
    meta["rank"] = np.where(meta["is_exemplar"].astype(bool), 0, 1)
    chosen = (
        meta.sort_values(["rank", "order"], kind="stable")
        .drop_duplicates("product_name")
        .sort_values("order")
    )
    several = meta["product_name"].value_counts()
    logger.info(
        "chose one L1000 signature for each of %d drug(s): %d exemplar(s); %d drug(s) had "
        "several signatures",
        len(chosen),
        int(chosen["is_exemplar"].astype(bool).sum()),
        int((several > 1).sum()),
    )
    return chosen[["product_name", "signatureID", "Perturbagen", "is_exemplar"]].reset_index(
        drop=True
    )


# --- signed DE genes and their similarity ---------------------------------------------------------


def signed_deg_sets(
    signatures: pd.DataFrame,
    *,
    by: str = "product_name",
    min_abs_lfc: float = 0.5,
    max_padj: float = 0.05,
) -> dict[str, frozenset[str]]:
    """Signed DE genes of each signature, after Benjamini-Hochberg over its genes.

    Parameters
    ----------
    signatures
        One row per signature x gene: ``by``, ``Name_GeneSymbol``, ``Value_LogDiffExp``,
        ``Significance_pvalue``; each ``by`` value is one signature (one drug).
    by
        The column naming the signature (the sci-Plex product, or ``signatureID``).
    min_abs_lfc
        Least ``|Value_LogDiffExp|`` of a DE gene.
    max_padj
        Largest BH-adjusted p-value of a DE gene (:func:`scipy.stats.false_discovery_control`,
        over the genes of the one signature).

    Returns
    -------
    ``by`` value -> the set of ``GENE:up`` / ``GENE:down`` elements (:data:`UP`, :data:`DOWN`: by
    the sign of the fold change), in order of first appearance.

    Raises
    ------
    SchemaError
        If a column is missing.
    ValueError
        If a p-value is outside [0, 1].
    """
    columns = [by, "Name_GeneSymbol", "Value_LogDiffExp", "Significance_pvalue"]
    missing = [c for c in columns if c not in signatures.columns]
    if missing:
        msg = (
            f"the L1000 signatures lack column(s) {missing}; "
            f"their columns are {list(signatures.columns)}"
        )
        raise SchemaError(msg)
    out: dict[str, frozenset[str]] = {}
    for key, group in signatures.groupby(by, sort=False, observed=True):
        p = group["Significance_pvalue"].to_numpy(dtype=float)
        if p.size and (np.nanmin(p) < 0 or np.nanmax(p) > 1):
            msg = (
                f"L1000 signature {key!r} has p-values outside [0, 1] "
                f"(from {np.nanmin(p)} to {np.nanmax(p)})"
            )
            raise ValueError(msg)
        padj = false_discovery_control(p, method="bh") if p.size else p
        lfc = group["Value_LogDiffExp"].to_numpy(dtype=float)
        hit = (np.abs(lfc) >= min_abs_lfc) & (padj <= max_padj)
        genes = group["Name_GeneSymbol"].astype(str).to_numpy()[hit]
        signs = np.where(lfc[hit] > 0, UP, DOWN)
        out[str(key)] = frozenset(g + s for g, s in zip(genes, signs, strict=True))
    sizes = np.array([len(s) for s in out.values()])
    if sizes.size:
        logger.info(
            "signed DE genes of %d L1000 signature(s): median %g, range %d-%d; %d with none",
            sizes.size,
            float(np.median(sizes)),
            int(sizes.min()),
            int(sizes.max()),
            int((sizes == 0).sum()),
        )
    return out


def jaccard_similarity(sets: Mapping[str, Collection[str]]) -> pd.DataFrame:
    """Jaccard index ``|A & B| / |A | B|`` between every two sets.

    Parameters
    ----------
    sets
        Name -> set of elements (:func:`signed_deg_sets`).

    Returns
    -------
    Square DataFrame, index and columns the names in the order of ``sets``; two empty sets have
    similarity 0 (so an empty set's diagonal entry is 0, any other set's 1).
    """
    names = list(sets)
    vocab: dict[str, int] = {}
    rows, cols = [], []
    for i, name in enumerate(names):
        for element in sets[name]:
            rows.append(i)
            cols.append(vocab.setdefault(element, len(vocab)))
    member = sparse.csr_matrix(
        (np.ones(len(rows)), (rows, cols)), shape=(len(names), max(len(vocab), 1))
    )
    member.data[:] = 1.0  # a repeated element counts once
    inter = np.asarray((member @ member.T).todense())
    size = np.diag(inter)
    union = size[:, None] + size[None, :] - inter
    sim = np.divide(inter, union, out=np.zeros_like(inter, dtype=float), where=union > 0)
    return pd.DataFrame(sim, index=pd.Index(names, name="product_name"), columns=names)


def similarity_clusters(
    similarity: pd.DataFrame,
    *,
    clip: float = 0.1,
    resolution: float = 0.9,
    seed: int = 0,
) -> pd.Series:
    """Leiden clusters of a similarity matrix, singletons dropped.

    Similarities below ``clip`` are set to 0; the others (off the diagonal) are the edge weights
    of an undirected graph on the rows, partitioned by :func:`leidenalg.find_partition` with
    :class:`leidenalg.RBConfigurationVertexPartition` at ``resolution`` and ``seed``.

    Parameters
    ----------
    similarity
        Square, symmetric, with the same labels on rows and columns (:func:`jaccard_similarity`).
    clip
        Similarities below it are no edge.
    resolution
        Resolution of the RB configuration model.
    seed
        Seed of Leiden.

    Returns
    -------
    Row label -> cluster label (``"1"``, ``"2"``, ... by decreasing size, ties by the first
    member's row), for the rows of clusters with at least two members, in row order; named
    ``cluster``.

    Raises
    ------
    ValueError
        If the matrix is not square and symmetric with matching labels, or holds a NaN.
    """
    import igraph as ig
    import leidenalg

    labels = list(similarity.index)
    values = similarity.to_numpy(dtype=float)
    if values.shape != (len(labels), len(labels)) or list(similarity.columns) != labels:
        msg = (
            f"the similarity matrix must be square with the same labels on rows and columns; "
            f"got shape {values.shape}"
        )
        raise ValueError(msg)
    if np.isnan(values).any() or not np.allclose(values, values.T):
        msg = "the similarity matrix must be symmetric and without NaN"
        raise ValueError(msg)
    weights = np.where(values >= clip, values, 0.0)
    np.fill_diagonal(weights, 0.0)
    i, j = np.nonzero(np.triu(weights, k=1))
    graph = ig.Graph(n=len(labels), edges=list(zip(i.tolist(), j.tolist(), strict=True)))
    graph.es["weight"] = weights[i, j].tolist()
    partition = leidenalg.find_partition(
        graph,
        leidenalg.RBConfigurationVertexPartition,
        weights="weight",
        resolution_parameter=resolution,
        seed=seed,
    )
    membership = np.asarray(partition.membership)
    clusters = [np.flatnonzero(membership == c) for c in np.unique(membership)]
    kept = sorted((c for c in clusters if c.size >= 2), key=lambda c: (-c.size, c.min()))
    label = np.full(len(labels), "", dtype=object)
    for k, members in enumerate(kept, start=1):
        label[members] = str(k)
    out = pd.Series(label, index=pd.Index(labels, name=similarity.index.name), name="cluster")
    out = out[out != ""]
    logger.info(
        "%d cluster(s) of %d drug(s) (sizes %s) from %d edge(s) >= %g; %d singleton(s) dropped",
        len(kept),
        len(out),
        [int(c.size) for c in kept],
        len(i),
        clip,
        len(clusters) - len(kept),
    )
    return out


# --- the whole step -----------------------------------------------------------------------------


def cmap_clusters(
    signature_paths: Sequence[str | Path],
    metadata_paths: Sequence[str | Path],
    products: Iterable[str],
    *,
    min_ratio: float = 0.9,
    exclude: Iterable[str] = PAPER_FALSE_MATCHES,
    min_abs_lfc: float = 0.5,
    max_padj: float = 0.05,
    clip: float = 0.1,
    resolution: float = 0.9,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.Series]:
    """Connectivity-map clusters of sci-Plex drugs in one cell line, from its iLINCS exports.

    Reads the metadata, matches perturbagens to ``products`` (:func:`match_perturbagens`), reads
    the signatures of the matched perturbagens only (:func:`read_l1000_signatures`), picks one per
    drug (:func:`choose_signatures`), then :func:`signed_deg_sets`, :func:`jaccard_similarity` and
    :func:`similarity_clusters`. The keyword arguments are those of these functions.

    Parameters
    ----------
    signature_paths, metadata_paths
        The cell line's iLINCS exports (``<CL>_sig_batch_<i>.xls``, ``<CL>_sig_meta*.xls``).
    products
        sci-Plex ``product_name`` values to match.

    Returns
    -------
    similarity
        Jaccard similarity of the signed DE-gene sets (not clipped), square, indexed by product
        name in the order of ``products`` (the paper's ``<CL>_deg_sim.csv``).
    clusters
        Product name -> cluster label (``"1"``, ``"2"``, ... by decreasing size), singletons left
        out (the paper's ``<CL>_cluster_labels.csv``).

    Raises
    ------
    SchemaError
        If a file lacks a column.
    ValueError
        If the signature and metadata files do not match, or no perturbagen matches a product.
    """
    products = list(dict.fromkeys(str(p) for p in products))
    meta = read_l1000_metadata(metadata_paths)
    logger.info(
        "L1000 metadata: %d signature(s) of %d perturbagen(s)",
        len(meta),
        meta["Perturbagen"].nunique(),
    )
    matches = match_perturbagens(
        meta["Perturbagen"].unique(), products, min_ratio=min_ratio, exclude=exclude
    )
    if not matches:
        msg = (
            f"no L1000 perturbagen of {[str(p) for p in metadata_paths]} matches one of the "
            f"{len(products)} sci-Plex products (e.g. {products[:3]}); right cell line and files?"
        )
        raise ValueError(msg)
    candidates = meta[meta["Perturbagen"].isin(list(matches))]
    table = read_l1000_signatures(
        signature_paths, known=meta["SignatureId"], keep=candidates["SignatureId"]
    )
    _warn_without_data(candidates, table)
    candidates = candidates[candidates["SignatureId"].isin(set(table["signatureID"]))]
    if candidates.empty:
        msg = "none of the L1000 signatures of the matched drugs has data in the signature files"
        raise ValueError(msg)
    chosen = choose_signatures(candidates, matches)
    table = table.merge(chosen[["signatureID", "product_name"]], on="signatureID")
    sets = signed_deg_sets(table, min_abs_lfc=min_abs_lfc, max_padj=max_padj)
    sets = {p: sets[p] for p in products if p in sets}
    similarity = jaccard_similarity(sets)
    clusters = similarity_clusters(similarity, clip=clip, resolution=resolution, seed=seed)
    return similarity, clusters
