"""Gene set enrichment analysis of a ranked list of genes (preranked GSEA, the paper's Fig. 4f).

The enrichment scores are those of GSEA (Subramanian et al. 2005; weighted Kolmogorov-Smirnov
running sum, weight |score|); the p-values come from blitzgsea (Lachmann et al. 2022), which fits
gamma distributions to null enrichment scores at a few anchor set sizes and interpolates between
them, giving analytic p-values (down to tiny values, with no permutation floor) in a second or two
per ranking. It was chosen over gseapy and decoupler because it is already installed (a dependency
of pertpy, so no new dependency), maintained, and fast enough for the hundreds of rankings a study's
comparisons give.

blitzgsea 1.3.54 has global side effects that :func:`gsea_prerank` contains: it seeds Python's and
NumPy's global random generators, changes NumPy's error state and mpmath's precision, and its
single-process path passes one argument too few to its calibration function (its multi-process path
forks, which is unsafe once JAX is loaded). The call therefore runs single-process with that
argument supplied, and the global states are restored afterwards; it is not thread-safe.
"""

from __future__ import annotations

import contextlib
import io
import logging
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping, Sequence
    from types import ModuleType

logger = logging.getLogger(__name__)

#: Columns of :func:`gsea_prerank`'s table.
GSEA_COLUMNS = ("gene_set", "size", "es", "nes", "pvalue", "fdr", "direction", "leading_edge")


def read_gmt(path: str | Path) -> dict[str, list[str]]:
    """Gene sets from a GMT file (MSigDB's format).

    One set per line, tab-separated: the set's name, a description (ignored), then its genes.
    Blank lines and empty fields (trailing tabs) are skipped; a gene listed twice in a set is kept
    once.

    Parameters
    ----------
    path
        The GMT file.

    Returns
    -------
    Set name -> genes, in the file's order.

    Raises
    ------
    ValueError
        An empty file, a line with no gene (or no tab), or a set name given twice; the message
        names the line.
    """
    path = Path(path)
    sets: dict[str, list[str]] = {}
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            fields = line.rstrip("\r\n").split("\t")
            name = fields[0].strip()
            genes = [g.strip() for g in fields[2:] if g.strip()]
            if not name or not genes:
                msg = (
                    f"{path}, line {number}: expected 'name<TAB>description<TAB>gene...' with at "
                    f"least one gene, got {line.strip()[:80]!r}"
                )
                raise ValueError(msg)
            if name in sets:
                msg = f"{path}, line {number}: gene set {name!r} appears twice"
                raise ValueError(msg)
            sets[name] = list(dict.fromkeys(genes))
    if not sets:
        msg = f"{path}: no gene set (the file is empty)"
        raise ValueError(msg)
    logger.info("read_gmt: %d gene sets from %s", len(sets), path)
    return sets


def sets_within(
    gene_sets: Mapping[str, Sequence[str]],
    universe: Iterable[str],
    min_size: int,
    max_size: int,
    what: str,
) -> dict[str, list[str]]:
    """Restrict the gene sets to ``universe``; keep those with ``min_size`` to ``max_size`` genes.

    Genes are matched case-sensitively and kept once, in the set's order; the sets left out are
    counted in the log (``what`` names the caller).
    """
    universe = set(universe)
    library: dict[str, list[str]] = {}
    too_small, too_large = [], []
    for name, genes in gene_sets.items():
        present = [g for g in dict.fromkeys(genes) if g in universe]
        if len(present) < min_size:
            too_small.append(str(name))
        elif len(present) > max_size:
            too_large.append(str(name))
        else:
            library[str(name)] = present
    if too_small or too_large:
        logger.info(
            "%s: %d of %d sets not tested (%d with < %d genes in the universe, e.g. %s; %d with "
            "> %d)",
            what,
            len(too_small) + len(too_large),
            len(gene_sets),
            len(too_small),
            min_size,
            too_small[:3],
            len(too_large),
            max_size,
        )
    return library


@contextlib.contextmanager
def _contained(blitz: ModuleType, mp_prec: int) -> Iterator[io.StringIO]:
    """Run blitzgsea single-process, silently, restoring the global state it changes."""
    import mpmath

    original = blitz.estimate_anchor

    def estimate_anchor(*args: Any, ks_disable: bool = True) -> Any:
        # 1.3.54's processes=1 path omits ks_disable; the KS test only feeds verbose messages
        return original(*args, ks_disable) if len(args) == 7 else original(*args)

    # blitzgsea seeds the legacy global generators: theirs to restore
    py_state, np_state = random.getstate(), np.random.get_state()  # noqa: NPY002
    out = io.StringIO()
    blitz.estimate_anchor = estimate_anchor
    try:
        with np.errstate(), contextlib.redirect_stdout(out):
            yield out
    finally:
        blitz.estimate_anchor = original
        random.setstate(py_state)
        np.random.set_state(np_state)  # noqa: NPY002
        mpmath.mp.prec = mp_prec  # dps follows


def gsea_prerank(
    scores: pd.Series,
    gene_sets: Mapping[str, Sequence[str]],
    *,
    min_size: int = 5,
    max_size: int = 500,
    permutations: int = 1000,
    center: bool = True,
    seed: int = 0,
) -> pd.DataFrame:
    """Preranked GSEA of a gene score (e.g. a comparison's mean LFC) with blitzgsea.

    Parameters
    ----------
    scores
        Gene -> score (index: gene names, unique); genes are ranked by decreasing score. Missing
        scores are dropped (logged).
    gene_sets
        Set name -> genes (e.g. :func:`read_gmt`). Names are matched to the ranking
        case-sensitively; genes not in the ranking are ignored.
    min_size, max_size
        Sets with fewer than ``min_size`` or more than ``max_size`` genes in the ranking are not
        tested (logged).
    permutations
        Random sets per anchor size for blitzgsea's null fit.
    center
        Subtract the mean score first (blitzgsea's default): "up" then means above the average
        gene.
    seed
        Seed of the null; the same seed gives the same table.

    Returns
    -------
    One row per tested set, by increasing p-value: ``gene_set``, ``size`` (genes in the
    ranking), ``es`` (enrichment score), ``nes`` (blitzgsea's normalised score: the standard
    normal quantile of the p-value, with the sign of ``es``), ``pvalue`` (two-sided), ``fdr``
    (Benjamini-Hochberg over the tested sets), ``direction`` ("up" for a positive ``es``, i.e. a
    positive ``nes``, else "down") and ``leading_edge`` (the set's genes from the top of the
    ranking to the running sum's peak, for "down" from the bottom to its trough, most extreme
    first, comma-joined). Empty (with these columns) when no set is tested.

    Raises
    ------
    ValueError
        Duplicated genes in ``scores``, fewer than two scored genes, or sizes out of order.
    """
    if not 1 <= min_size <= max_size:
        msg = f"need 1 <= min_size <= max_size, got {min_size} and {max_size}"
        raise ValueError(msg)
    values = pd.to_numeric(scores, errors="raise").astype(np.float64)
    values.index = values.index.astype(str)
    n_missing = int(values.isna().sum())
    if n_missing:
        logger.info("gsea_prerank: dropped %d genes with a missing score", n_missing)
        values = values.dropna()
    if values.index.has_duplicates:
        dup = list(values.index[values.index.duplicated()].unique()[:5])
        msg = f"scores has duplicated genes, e.g. {dup}"
        raise ValueError(msg)
    if len(values) < 2:
        msg = f"gsea_prerank needs at least 2 scored genes, got {len(values)}"
        raise ValueError(msg)
    library = sets_within(gene_sets, values.index, min_size, max_size, "gsea_prerank")
    if not library:
        logger.warning("gsea_prerank: no gene set left to test")
        return pd.DataFrame({c: [] for c in GSEA_COLUMNS})

    import mpmath

    mp_prec = mpmath.mp.prec
    import blitzgsea as blitz  # sets mpmath's precision on import: restored below

    with _contained(blitz, mp_prec) as printed:
        signature = pd.DataFrame({"i": values.index.to_numpy(), "v": values.to_numpy()})
        result = blitz.gsea(
            signature,
            library,
            permutations=permutations,
            min_size=min_size,
            max_size=max_size,
            processes=1,
            signature_cache=False,
            seed=seed,
            center=center,
            verbose=False,
            progress=False,
        )
        # the leading edge, from the same ranking (blitzgsea's own leaves out the peak's gene)
        ordered = signature.sort_values("v", ascending=False).set_index("i")
        v = ordered["v"].to_numpy()
        abs_signature = np.abs(v - v.mean() if center else v)
        rank = {g: i for i, g in enumerate(ordered.index)}
        edges, es_check = {}, {}
        for name in result.index:
            running, es = blitz.enrichment_score(abs_signature, rank, library[name])
            hits = np.sort([rank[g] for g in library[name]])
            if es > 0:
                edge = hits[hits <= int(np.argmax(running))]
            else:
                edge = hits[hits >= int(np.argmin(running))][::-1]
            edges[name] = ",".join(ordered.index[edge])
            es_check[name] = es
    if printed.getvalue():
        logger.debug("blitzgsea wrote: %s", printed.getvalue().strip())
    es_ref = result["es"].to_numpy()
    if not np.allclose([es_check[n] for n in result.index], es_ref):
        msg = "gsea_prerank: leading-edge running sums disagree with blitzgsea's scores"
        raise RuntimeError(msg)
    table = pd.DataFrame(
        {
            "gene_set": result.index.astype(str),
            "size": result["geneset_size"].astype(np.int64).to_numpy(),
            "es": es_ref,
            "nes": result["nes"].to_numpy(dtype=np.float64),
            "pvalue": np.minimum(result["pval"].to_numpy(dtype=np.float64), 1.0),
            "fdr": np.minimum(result["fdr"].to_numpy(dtype=np.float64), 1.0),
            "direction": np.where(es_ref > 0, "up", "down"),
            "leading_edge": [edges[n] for n in result.index],
        }
    )
    table = table.sort_values(["pvalue", "gene_set"], kind="stable").reset_index(drop=True)
    logger.info(
        "gsea_prerank: %d sets tested on %d genes, %d with fdr < 0.05",
        len(table),
        len(values),
        int((table["fdr"] < 0.05).sum()),
    )
    return table


#: Columns of :func:`overrepresentation`'s table.
ORA_COLUMNS = ("gene_set", "size", "n_genes", "overlap", "pvalue", "fdr", "genes")


def overrepresentation(
    genes: Iterable[str],
    gene_sets: Mapping[str, Sequence[str]],
    universe: Sequence[str],
    *,
    min_size: int = 5,
    max_size: int = 500,
) -> pd.DataFrame:
    """Over-representation of a gene list in each gene set (one-sided hypergeometric test).

    The enrichment of a DE gene set (e.g. a cluster's up-regulated genes, Fig. 4f) as Enrichr
    and ``gseapy.enrich`` test it: with N genes in ``universe``, K of them in the set and n in
    the list, the p-value of k or more of the list in the set is the hypergeometric survival
    function (:func:`scipy.stats.hypergeom`); FDR by Benjamini-Hochberg over the tested sets.

    Parameters
    ----------
    genes
        The gene list (genes outside ``universe`` are an error: they could not have been found).
    gene_sets
        Set name -> genes (e.g. :func:`read_gmt`), restricted to ``universe``.
    universe
        Every gene that could have been in the list (e.g. the model's genes).
    min_size, max_size
        Sets with fewer or more genes in the universe are not tested (logged).

    Returns
    -------
    One row per tested set, by increasing p-value: ``gene_set``, ``size`` (genes of the set in
    the universe), ``n_genes`` (the list's length), ``overlap``, ``pvalue``, ``fdr`` and
    ``genes`` (the overlap, comma-joined). Empty (with these columns) for an empty list or when
    no set is tested.

    Raises
    ------
    ValueError
        Genes outside the universe, a universe with duplicates, or sizes out of order.
    """
    from scipy import stats

    if not 1 <= min_size <= max_size:
        msg = f"need 1 <= min_size <= max_size, got {min_size} and {max_size}"
        raise ValueError(msg)
    universe_index = pd.Index([str(g) for g in universe])
    if universe_index.has_duplicates:
        msg = f"universe has duplicated genes, e.g. {list(universe_index[universe_index.duplicated()][:5])}"
        raise ValueError(msg)
    listed = list(dict.fromkeys(str(g) for g in genes))
    outside = [g for g in listed if g not in set(universe_index)]
    if outside:
        msg = f"{len(outside)} genes of the list are not in the universe, e.g. {outside[:5]}"
        raise ValueError(msg)
    library = sets_within(gene_sets, universe_index, min_size, max_size, "overrepresentation")
    if not listed or not library:
        return pd.DataFrame({c: [] for c in ORA_COLUMNS})
    chosen = set(listed)
    n_universe, n_list = len(universe_index), len(listed)
    rows = []
    for name, members in library.items():
        hits = [g for g in members if g in chosen]
        p = float(stats.hypergeom.sf(len(hits) - 1, n_universe, len(members), n_list))
        rows.append((name, len(members), n_list, len(hits), min(p, 1.0), ",".join(hits)))
    table = pd.DataFrame(
        rows, columns=["gene_set", "size", "n_genes", "overlap", "pvalue", "genes"]
    )
    table.insert(5, "fdr", stats.false_discovery_control(table["pvalue"].to_numpy()))
    return table.sort_values(["pvalue", "gene_set"], kind="stable").reset_index(drop=True)
