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
    from collections.abc import Iterator, Mapping, Sequence
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
    ranked = set(values.index)
    library: dict[str, list[str]] = {}
    too_small, too_large = [], []
    for name, genes in gene_sets.items():
        present = [g for g in dict.fromkeys(genes) if g in ranked]
        if len(present) < min_size:
            too_small.append(str(name))
        elif len(present) > max_size:
            too_large.append(str(name))
        else:
            library[str(name)] = present
    if too_small or too_large:
        logger.info(
            "gsea_prerank: %d of %d sets not tested (%d with < %d genes in the ranking, e.g. "
            "%s; %d with > %d)",
            len(too_small) + len(too_large),
            len(gene_sets),
            len(too_small),
            min_size,
            too_small[:3],
            len(too_large),
            max_size,
        )
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
