"""DESeq2 on per-sample pseudobulks (pydeseq2): the reference gene-wise LFCs of the benchmark.

Paper: Methods "Benchmark" (DE: the LFCs of MrVI and miloDE are compared with DESeq2's). The
paper's code ran pydeseq2 on 8,000 single cells of subset A
(``bin/produce_figures_pbmc68k_for_subsample.py`` in YosefLab/mrvi-reproducibility, branch
``expand_res``); this project uses the pseudobulk version (issue 5), the usual reference for
gene-wise LFCs between subjects: counts summed per sample within a cell group, design
``~ nuisance + covariate``, ``poscounts`` size factors (robust to the many zeros of small
pseudobulks) and a Wald test of the covariate contrast.

Against R: where DESeq2's parametric dispersion trend ``a / mean + b`` fits the gene-wise
estimates poorly, R's DESeq2 replaces it by a local fit (its message "a local regression fit was
automatically substituted"); pydeseq2 keeps the parametric trend. On the default run's
reference pseudobulk (Leiden group 0, ``covariate_1_G1``, 32 samples, 1,000 genes), DESeq2
1.38.3 fell back to the local fit and pydeseq2 0.5.4's trend lay 2.4x above it at the median
gene; the final dispersions, shrunk towards the trend, were 1.36x R's at the median gene. The
gene-wise estimates, size factors and base means agree; LFCs correlate at r 0.9999, p-values are
slightly larger (median 1.03x) and the calls slightly conservative (28 at ``padj < 0.05``
against R's 29, all 28 among R's).
"""

from __future__ import annotations

import logging
import warnings
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import sparse
from threadpoolctl import threadpool_limits

from mrvi_repro.data.contract import per_sample

from ._checks import check_counts, check_obs_keys, natural_order

if TYPE_CHECKING:
    from anndata import AnnData

logger = logging.getLogger(__name__)

#: Columns of the table returned by :func:`pseudobulk_deseq2`, in order.
DESEQ2_COLUMNS = ("gene", "log2_fold_change", "lfc_se", "stat", "pvalue", "padj", "base_mean")

_COVARIATE, _NUISANCE = "covariate", "nuisance"


def pseudobulk(
    adata: AnnData, *, sample_key: str, mask: np.ndarray | None = None
) -> tuple[pd.DataFrame, pd.Series]:
    """Sum the raw counts of each sample's cells (optionally only the cells in ``mask``).

    Parameters
    ----------
    adata
        Raw counts in ``X`` (dense or sparse).
    sample_key
        ``obs`` column naming each cell's sample.
    mask
        Boolean mask over cells; ``None`` uses every cell.

    Returns
    -------
    counts
        Samples x genes integer table (samples with at least one cell, sorted by name).
    n_cells
        Cells summed per sample.
    """
    mask = np.ones(adata.n_obs, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    samples = adata.obs[sample_key].astype(str).to_numpy()[mask]
    names, codes = np.unique(samples, return_inverse=True)
    x = adata.X[np.flatnonzero(mask)]
    indicator = sparse.csr_matrix(
        (np.ones(codes.size), (codes, np.arange(codes.size))), shape=(names.size, codes.size)
    )
    summed = indicator @ x
    summed = summed.toarray() if sparse.issparse(summed) else np.asarray(summed)
    counts = pd.DataFrame(
        np.rint(summed).astype(np.int64), index=names, columns=adata.var_names.astype(str)
    )
    n_cells = pd.Series(np.bincount(codes, minlength=names.size), index=names, name="n_cells")
    return counts, n_cells


def pseudobulk_deseq2(
    adata: AnnData,
    *,
    sample_key: str,
    group_key: str | None = None,
    group: str | None = None,
    covariate: str,
    nuisance_key: str | None = None,
    contrast: tuple[str, str] | None = None,
    min_cells: int = 3,
    n_cpus: int = 1,
) -> pd.DataFrame:
    """Test every gene for a sample-covariate effect with DESeq2 on per-sample pseudobulks.

    Parameters
    ----------
    adata
        Raw counts in ``X`` (data contract); ``obs`` holds the keys below.
    sample_key
        ``obs`` column of the sample (the pseudobulk unit).
    group_key, group
        Restrict to the cells with ``obs[group_key] == group`` (e.g. one Leiden cluster); with
        ``group=None`` every cell is used.
    covariate
        Sample-level ``obs`` column tested (categorical; constant within each sample).
    nuisance_key
        Optional sample-level ``obs`` column (e.g. batch) added to the design before the covariate:
        ``~ nuisance + covariate``.
    contrast
        ``(tested, reference)`` levels of the covariate; the LFC is ``log2(tested / reference)``.
        ``None`` needs a covariate with exactly two levels and takes the first (categorical order,
        else sorted) as the reference.
    min_cells
        Samples with fewer cells in the group are left out of the test (logged, and listed in
        ``attrs['dropped_samples']`` of the result).
    n_cpus
        Worker processes of pydeseq2 (use the rule's threads; 1 inside parallel jobs).

    Returns
    -------
    One row per gene, in the order of ``adata.var_names``, with columns :data:`DESEQ2_COLUMNS`
    (``base_mean``: mean of the size-factor-normalised pseudobulk counts). Genes with no counts
    in the tested samples, and those that DESeq2's Cook's/independent filtering sets aside, have
    NaN statistics (``padj``), as in DESeq2. ``attrs`` records the contrast, the design, the
    samples used per level and the dropped samples.

    Raises
    ------
    ValueError
        For an unknown key, a group with no cells, a covariate or nuisance that varies within a
        sample, non-count data, an unknown contrast level, fewer than 2 samples in a contrasted
        level, or a design that is not of full rank (nuisance confounded with the covariate).
    """
    from pydeseq2.dds import DeseqDataSet
    from pydeseq2.default_inference import DefaultInference
    from pydeseq2.ds import DeseqStats

    if group is not None and group_key is None:
        msg = "group was given without group_key"
        raise ValueError(msg)
    if min_cells < 1:
        msg = f"min_cells must be >= 1 (got {min_cells})"
        raise ValueError(msg)
    check_obs_keys(
        adata,
        sample_key=sample_key,
        group_key=group_key,
        covariate=covariate,
        nuisance_key=nuisance_key,
    )
    if group is None:
        mask = np.ones(adata.n_obs, dtype=bool)
        where = "all cells"
    else:
        labels = adata.obs[group_key].astype(str)
        mask = (labels == str(group)).to_numpy()
        where = f"obs[{group_key!r}] == {group!r}"
        if not mask.any():
            msg = (
                f"no cells with {where}; obs[{group_key!r}] has the values "
                f"{natural_order(adata.obs[group_key])}"
            )
            raise ValueError(msg)
    check_counts(adata.X[np.flatnonzero(mask)], where=f"X ({where})")

    meta = pd.DataFrame({_COVARIATE: per_sample(adata, sample_key, covariate).astype(str)})
    if nuisance_key is not None:
        meta[_NUISANCE] = per_sample(adata, sample_key, nuisance_key).astype(str)
    levels = natural_order(adata.obs[covariate])

    counts, n_cells = pseudobulk(adata, sample_key=sample_key, mask=mask)
    dropped = n_cells.index[n_cells < min_cells].tolist()
    if dropped:
        logger.info(
            "pseudobulk (%s): leaving out %d sample(s) with fewer than %d cells: %s",
            where,
            len(dropped),
            min_cells,
            dropped,
        )
    keep = n_cells.index[n_cells >= min_cells]
    counts, meta = counts.loc[keep], meta.loc[keep]

    if contrast is None:
        if len(levels) != 2:
            msg = (
                f"covariate {covariate!r} has {len(levels)} levels {levels}; pass "
                "contrast=(tested, reference)"
            )
            raise ValueError(msg)
        contrast = (levels[1], levels[0])
    tested, reference = (str(c) for c in contrast)
    unknown = [c for c in (tested, reference) if c not in levels]
    if unknown or tested == reference:
        msg = f"contrast {contrast!r} must name two distinct levels of {covariate!r}: {levels}"
        raise ValueError(msg)
    per_level = meta[_COVARIATE].value_counts()
    too_few = {c: int(per_level.get(c, 0)) for c in (tested, reference) if per_level.get(c, 0) < 2}
    if too_few:
        msg = (
            f"DESeq2 needs at least 2 samples per contrasted level of {covariate!r} with >= "
            f"{min_cells} cells in {where}; got {too_few}"
        )
        raise ValueError(msg)

    design = f"~ {_NUISANCE} + {_COVARIATE}" if nuisance_key is not None else f"~ {_COVARIATE}"
    inference = DefaultInference(n_cpus=n_cpus)
    # The per-gene fits are tiny: multithreaded BLAS only adds contention (measured 2-4x slower
    # on 2 busy cores). With n_cpus > 1 the parallelism is pydeseq2's worker processes.
    with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="blas"):
        # pydeseq2 warns on genes with all-zero counts (their results are NaN) and on
        # formulaic's handling of string columns; both are expected here
        warnings.simplefilter("ignore", UserWarning)
        # pydeseq2 0.5.4 calls Series.drop(inplace=True), which pandas 3.1 deprecates
        warnings.filterwarnings("ignore", message="The inplace keyword", module="pydeseq2")
        dds = DeseqDataSet(
            counts=counts,
            metadata=meta,
            design=design,
            size_factors_fit_type="poscounts",
            refit_cooks=True,
            inference=inference,
            quiet=True,
        )
        x_design = np.asarray(dds.obsm["design_matrix"], dtype=float)
        rank = np.linalg.matrix_rank(x_design)
        if rank < x_design.shape[1] or x_design.shape[0] <= x_design.shape[1]:
            msg = (
                f"design {design!r} (covariate={covariate!r}, nuisance_key={nuisance_key!r}) has "
                f"{x_design.shape[1]} coefficients of rank {rank} for {x_design.shape[0]} "
                "samples; the nuisance may be confounded with the covariate or there are too "
                "few samples"
            )
            raise ValueError(msg)
        dds.deseq2()
        stats = DeseqStats(
            dds, contrast=[_COVARIATE, tested, reference], inference=inference, quiet=True
        )
        stats.summary()
    res = stats.results_df.reindex(adata.var_names.astype(str))
    table = pd.DataFrame(
        {
            "gene": adata.var_names.astype(str).to_numpy(),
            "log2_fold_change": res["log2FoldChange"].to_numpy(dtype=float),
            "lfc_se": res["lfcSE"].to_numpy(dtype=float),
            "stat": res["stat"].to_numpy(dtype=float),
            "pvalue": res["pvalue"].to_numpy(dtype=float),
            "padj": res["padj"].to_numpy(dtype=float),
            "base_mean": res["baseMean"].to_numpy(dtype=float),
        }
    )
    table.attrs = {
        "covariate": covariate,
        "contrast": [tested, reference],
        "design": f"~ {nuisance_key} + {covariate}" if nuisance_key else f"~ {covariate}",
        "group_key": group_key,
        "group": None if group is None else str(group),
        "n_samples": {
            str(k): int(v) for k, v in meta[_COVARIATE].value_counts().sort_index().items()
        },
        "dropped_samples": list(map(str, dropped)),
    }
    return table
