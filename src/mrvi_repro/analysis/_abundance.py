"""Aggregated posteriors in u: differential abundance and the admissibility (out-of-distribution) filter.

Paper, Methods "Assessing compositional and expressional sample differences": q_s(u) is the
equal-weight mixture of the posteriors q(u | x_n) of the cells of sample s. The log density of every
query cell's posterior mean under every sample's mixture is one pass of matrix products over
(query chunk x reference chunk) blocks, reduced per sample on the device (log-sum-exp for the
mixture, max for admissibility): no loop over samples, memory bounded by the block.

Two density estimates of q_s (:data:`DA_ESTIMATORS`):

* ``"mixture"`` (the default): the mixture of the cells' full-dimensional diagonal Gaussians, as
  the Methods define it and the fixed reference computes it;
* ``"per_dimension"``: the product over latent dimensions of 1-D mixtures,
  prod_d (1/|s|) sum_j N(u_d; mu_jd, sigma_jd). This is not the mixture's density (it factorises
  what the mixture couples across dimensions). The paper-era scvi-tools MrVI computed it by mistake:
  its mixture's components were a batch of univariate Normals (no ``to_event``), so the mixing
  happened per dimension before the log densities were summed (scvi-tools issue 3188,
  https://github.com/scverse/scvi-tools/issues/3188, fixed in pull request 3189), and this is
  what produced the paper's Fig. 2e. Kept to reproduce that figure; same blocks, with a
  (queries x references x dims) array per block instead of a matrix product.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from functools import cache, partial
from typing import TYPE_CHECKING, Literal

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import xarray as xr

from mrvi_repro._jax_cache import CachedKernel
from mrvi_repro.data.contract import per_sample
from mrvi_repro.settings.names import DA_ESTIMATORS, da_variable

if TYPE_CHECKING:
    from collections.abc import Sequence

    import anndata as ad

    from mrvi_repro.model import MrVI

logger = logging.getLogger(__name__)

_LOG_2PI = math.log(2 * math.pi)
#: Cells per block of the DA log ratio's masks (block x samples arrays).
_RATIO_BLOCK = 65_536


#: Reference cells per tile: each sample's reference cells are laid out in whole tiles (the last
#: one padded), so the reduction over a sample's cells is a reshape, not a scatter.
TILE = 64
#: Seconds between progress lines of a long :func:`sample_log_densities`.
PROGRESS_EVERY_S = 60.0


def _reduce_tiles(
    logp: jax.Array, tile_sample: jax.Array, n_samples: int, reduce: str
) -> jax.Array:
    """Per-sample reduction of ``logp`` (query, tiles, tile, ...) over its references.

    Each tile (axis 2) is reduced by max or log-sum-exp, then the tiles of each sample
    (``tile_sample``, -1 for a padding tile) by a segment reduction: (query, samples, ...).
    """
    tile_top = logp.max(2)  # (query, tiles, ...)
    if reduce == "max":
        tile_val = tile_top
    else:
        safe = jnp.where(jnp.isfinite(tile_top), tile_top, 0.0)
        tile_sum = jnp.exp(logp - jnp.expand_dims(safe, 2)).sum(2)
        tile_val = jnp.where(jnp.isfinite(tile_top), jnp.log(tile_sum) + safe, -jnp.inf)
    tile_val = jnp.moveaxis(tile_val, 1, 0)  # (tiles, query, ...): segments on the leading axis
    seg = jnp.where(tile_sample < 0, n_samples, tile_sample)  # padding -> a dropped segment
    top = jax.ops.segment_max(tile_val, seg, num_segments=n_samples + 1)[:n_samples]
    if reduce == "max":
        return jnp.moveaxis(top, 0, 1)
    safe = jnp.where(jnp.isfinite(top), top, 0.0)
    total = jax.ops.segment_sum(
        jnp.exp(tile_val - safe[seg.clip(max=n_samples - 1)]), seg, num_segments=n_samples + 1
    )[:n_samples]
    return jnp.moveaxis(jnp.where(jnp.isfinite(top), jnp.log(total) + safe, -jnp.inf), 0, 1)


def _block(
    query: jax.Array,
    query_id: jax.Array,
    mean: jax.Array,
    scale: jax.Array,
    ref_id: jax.Array,
    tile_sample: jax.Array,
    n_samples: int,
    reduce: str,
    per_dimension: bool = False,
) -> jax.Array:
    """Per-sample reduction (log-sum-exp or max) of log N(query; mean_j, scale_j) over a block.

    The block's references are whole tiles of one sample each (``tile_sample``, -1 for a padding
    tile); ``ref_id`` -1 marks a padding slot and a reference cell with the query's id is left out.
    Each tile is reduced by a reshape; only the few tiles are then reduced per sample. Returns
    (query, samples), or with ``per_dimension`` the reduction of each dimension's 1-D log density
    separately, (query, samples, dims).
    """
    n_tiles = tile_sample.shape[0]
    invalid = (ref_id[None, :] == -1) | (query_id[:, None] == ref_id[None, :])
    if per_dimension:
        dev = (query[:, None, :] - mean[None]) / scale[None]
        logp = -0.5 * (dev * dev + _LOG_2PI) - jnp.log(scale)[None]  # (query, refs, dims)
        logp = jnp.where(invalid[..., None], -jnp.inf, logp)
        logp = logp.reshape(query.shape[0], n_tiles, -1, query.shape[1])
        return _reduce_tiles(logp, tile_sample, n_samples, reduce)
    prec = 1.0 / (scale * scale)
    const = (mean * mean * prec).sum(-1) + 2.0 * jnp.log(scale).sum(-1) + mean.shape[1] * _LOG_2PI
    logp = -0.5 * ((query * query) @ prec.T - 2.0 * query @ (mean * prec).T + const[None, :])
    logp = jnp.where(invalid, -jnp.inf, logp).reshape(query.shape[0], n_tiles, -1)
    return _reduce_tiles(logp, tile_sample, n_samples, reduce)


@cache
def _block_kernel(n_samples: int, reduce: str, per_dimension: bool) -> CachedKernel:
    """:func:`_block` compiled for these settings, its executables found without tracing."""
    fn = partial(_block, n_samples=n_samples, reduce=reduce, per_dimension=per_dimension)
    return CachedKernel(
        jax.jit(fn), name=f"{__name__}._block", key=(n_samples, reduce, per_dimension)
    )


def _tiles(ref_sample: np.ndarray, n_samples: int, tile: int) -> tuple[np.ndarray, np.ndarray]:
    """Lay references out sample by sample in whole tiles.

    Returns slot -> reference row (-1: padding) and tile -> sample.
    """
    counts = np.bincount(ref_sample, minlength=n_samples)
    n_tiles = -(-counts // tile)  # ceil
    order = np.argsort(ref_sample, kind="stable")
    first_slot = np.repeat(np.concatenate([[0], np.cumsum(n_tiles)[:-1]]) * tile, counts)
    rank = np.arange(len(order)) - np.repeat(np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
    slots = np.full(int(n_tiles.sum()) * tile, -1, dtype=np.int64)
    slots[first_slot + rank] = order
    return slots, np.repeat(np.arange(n_samples), n_tiles).astype(np.int32)


def sample_log_densities(
    query: np.ndarray,
    mean: np.ndarray,
    scale: np.ndarray,
    ref_sample: np.ndarray,
    n_samples: int,
    *,
    reduce: Literal["logsumexp", "max"] = "logsumexp",
    per_dimension: bool = False,
    query_id: np.ndarray | None = None,
    ref_id: np.ndarray | None = None,
    block: int = 2048,
) -> np.ndarray:
    """Log-sum-exp (or max) over each sample's reference cells of log N(query; mean_j, diag scale_j^2).

    Parameters
    ----------
    query
        Points, (queries, d).
    mean, scale, ref_sample
        Reference Gaussians, (refs, d) each, and the sample code (0..n_samples-1) of each.
    n_samples
        Number of samples (columns of the result).
    reduce
        ``"logsumexp"`` (the un-normalised log mixture density) or ``"max"``.
    per_dimension
        Log-sum-exp only: reduce each dimension's 1-D log densities log N(query_d; mean_jd,
        scale_jd) separately and return the sum over dimensions of the results (the un-normalised
        log of the product of 1-D mixtures: the ``"per_dimension"`` estimator of
        :data:`DA_ESTIMATORS`).
    query_id, ref_id
        Optional ids (non-negative): a reference with the query's id is excluded (for
        leave-self-out scores).
    block
        Queries and references per device block (memory: block x block floats; with
        ``per_dimension``, block / d queries per block, so the same).

    Returns
    -------
    (queries, n_samples) array; -inf where a sample has no (remaining) reference cell.
    """
    if per_dimension and reduce != "logsumexp":
        msg = f"per_dimension needs reduce='logsumexp' (got {reduce!r})"
        raise ValueError(msg)
    query = np.asarray(query, np.float32)
    ref_sample = np.asarray(ref_sample, dtype=np.int64)
    nq, n_dims = query.shape[0], (query.shape[1] if query.ndim == 2 else 1)
    # ids only matter when both are given; -2 and the references' own rows never match
    qid = np.full(nq, -2) if query_id is None or ref_id is None else np.asarray(query_id)
    rid = np.arange(len(mean)) if query_id is None or ref_id is None else np.asarray(ref_id)
    out = np.full((nq, n_samples), -np.inf, dtype=np.float64)
    counts = np.bincount(ref_sample, minlength=n_samples)
    if nq == 0 or counts.sum() == 0:
        return out
    tile = int(min(TILE, counts.max()))
    slots, tile_sample = _tiles(ref_sample, n_samples, tile)
    tb = max(1, min(block // tile, len(tile_sample)))  # tiles per block
    qb = min(max(1, block // n_dims) if per_dimension else block, nq)
    # the reference blocks, on the device once (together the size of the references)
    ref_blocks = []
    for t0 in range(0, len(tile_sample), tb):
        picked = np.arange(t0, t0 + tb)
        ts = np.where(
            picked < len(tile_sample), tile_sample[picked.clip(max=len(tile_sample) - 1)], -1
        )
        sl = np.where(
            (picked < len(tile_sample))[:, None],
            slots.reshape(-1, tile)[picked.clip(max=len(tile_sample) - 1)],
            -1,
        ).ravel()
        rows = sl.clip(min=0)
        ref_blocks.append(
            (
                jnp.asarray(mean[rows], jnp.float32),
                jnp.asarray(np.where((sl >= 0)[:, None], scale[rows], 1.0), jnp.float32),
                jnp.asarray(np.where(sl >= 0, rid[rows], -1)),
                jnp.asarray(ts.astype(np.int32)),
            )
        )
    # a block of queries at a time, accumulated over the reference blocks in order; progress
    # logged once a minute for long runs (the atlas's admissibility: 10^5-10^6 cells each way)
    kernel = _block_kernel(int(n_samples), reduce, bool(per_dimension))
    start = last = time.perf_counter()
    for q0 in range(0, nq, qb):
        if time.perf_counter() - last > PROGRESS_EVERY_S:
            last = time.perf_counter()
            logger.info(
                "sample densities (%s): %d / %d query cells against %d reference cells, %.0f s",
                reduce,
                q0,
                nq,
                int(counts.sum()),
                last - start,
            )
        n = min(qb, nq - q0)
        qrows = np.arange(q0, q0 + qb).clip(max=nq - 1)
        q, ids = jnp.asarray(query[qrows]), jnp.asarray(qid[qrows])
        acc = np.full((n, n_samples, n_dims) if per_dimension else (n, n_samples), -np.inf)
        for args in ref_blocks:
            part = kernel(q, ids, *args)
            part = np.asarray(part, dtype=np.float64)[:n]
            acc = np.maximum(acc, part) if reduce == "max" else np.logaddexp(acc, part)
        out[q0 : q0 + n] = acc.sum(-1) if per_dimension else acc
    return out


def _sample_covariate(adata: ad.AnnData, sample_key: str, covariate: str) -> pd.Series:
    """Return the covariate's value (as text) per sample; refuse one varying within a sample."""
    if covariate not in adata.obs.columns:
        msg = f"unknown covariate {covariate!r}; obs columns are: {list(adata.obs.columns)}"
        raise KeyError(msg)
    return per_sample(adata, sample_key, covariate).astype(str)


def reference_cells(
    own: np.ndarray, n_samples: int, max_cells: int | None, seed: int
) -> np.ndarray:
    """Rows of up to ``max_cells`` cells per sample (seeded; all with ``None``), sorted."""
    if max_cells is None:
        return np.arange(len(own))
    if max_cells < 1:
        msg = f"max_cells_per_sample must be positive or None, got {max_cells}"
        raise ValueError(msg)
    rng = np.random.default_rng(seed)
    picks = [rng.permutation(np.flatnonzero(own == s))[:max_cells] for s in range(n_samples)]
    return np.sort(np.concatenate(picks).astype(np.int64))


def _check_estimator(estimator: str) -> None:
    if estimator not in DA_ESTIMATORS:
        msg = f"unknown DA estimator {estimator!r}; choose one of {list(DA_ESTIMATORS)}"
        raise ValueError(msg)


def posterior_log_densities(
    mean: np.ndarray,
    scale: np.ndarray,
    own: np.ndarray,
    n_samples: int,
    *,
    estimator: str = "mixture",
    ref: np.ndarray | None = None,
    query: np.ndarray | None = None,
) -> np.ndarray:
    """Return log q_s(mean_n) for every cell n and sample s from the cells' posteriors.

    Parameters
    ----------
    mean, scale
        Every cell's posterior q(u | x) (cells, d): its mean (where it is evaluated) and scale.
    own
        Every cell's sample code (0..n_samples-1).
    n_samples
        Number of samples (columns of the result).
    estimator
        One of :data:`DA_ESTIMATORS`: the equal-weight mixture of the reference cells'
        posteriors (``"mixture"``) or the product over dimensions of 1-D mixtures
        (``"per_dimension"``; see the module docstring).
    ref
        Rows of the reference cells that make up each q_s (default: all cells).
    query
        Rows of the cells where the densities are evaluated (default: all cells).

    Returns
    -------
    (queries, n_samples) array; -inf for a sample without reference cells.
    """
    _check_estimator(estimator)
    own = np.asarray(own, dtype=np.int64)
    ref = np.arange(len(own)) if ref is None else np.asarray(ref)
    per_dimension = estimator == "per_dimension"
    counts = np.bincount(own[ref], minlength=n_samples)
    points = mean if query is None else mean[np.asarray(query)]
    logp = sample_log_densities(
        points, mean[ref], scale[ref], own[ref], n_samples, per_dimension=per_dimension
    )
    # the mixture's weight 1/|s| once; each dimension's 1-D mixture has its own
    n_norm = np.shape(mean)[1] if per_dimension else 1
    with np.errstate(divide="ignore"):
        # in place (cells x samples is the output's size); a sample without cells stays -inf
        logp -= n_norm * np.where(counts > 0, np.log(counts), 0.0)[None, :]
    return logp


def aggregated_log_probs(
    model: MrVI,
    adata: ad.AnnData,
    *,
    estimator: str = "mixture",
    max_cells_per_sample: int | None = None,
    seed: int = 0,
    batch_size: int = 1024,
    cells: np.ndarray | None = None,
) -> np.ndarray:
    """Return log q_s(u_n): each cell's posterior mean under each sample's aggregated posterior.

    (cells, samples); -inf for a sample with no cells in ``adata``. q_s is the equal-weight
    mixture of the posteriors of all of s's cells, or of a seeded random subset of at most
    ``max_cells_per_sample`` of them: the cost is cells x mixture components, so at hundreds of
    thousands of cells a subset (an unbiased Monte-Carlo estimate of the density) keeps it linear.
    ``estimator``: which density estimate of q_s (:func:`posterior_log_densities`). ``cells``:
    boolean mask of the cells to evaluate (default: all; every cell still defines its q_s), the
    rows of the result.
    """
    _check_estimator(estimator)
    mean, scale = model.posterior_u(adata, batch_size=batch_size)
    own = model.registry.codes(adata, "sample")
    n_samples = len(model.registry.samples)
    ref = reference_cells(own, n_samples, max_cells_per_sample, seed)
    query = None if cells is None else np.flatnonzero(_cell_mask(cells, adata.n_obs))
    return posterior_log_densities(
        mean, scale, own, n_samples, estimator=estimator, ref=ref, query=query
    )


def _cell_mask(cells: np.ndarray, n_obs: int) -> np.ndarray:
    """Validate a boolean mask over the cells."""
    mask = np.asarray(cells)
    if mask.dtype != bool or mask.shape != (n_obs,):
        msg = f"cells must be a boolean mask of the {n_obs} cells (got {mask.dtype}, {mask.shape})"
        raise ValueError(msg)
    if not mask.any():
        msg = "cells selects no cell"
        raise ValueError(msg)
    return mask


def group_log_ratio(
    log_probs: np.ndarray,
    own: np.ndarray,
    member_a: np.ndarray,
    member_b: np.ndarray,
    *,
    omit_own_sample: bool = True,
) -> np.ndarray:
    """Per-cell log q_A - log q_B from every cell's log q_s (cells x samples).

    q_A is the equal-weight mixture of the q_s of the samples in ``member_a`` (boolean per sample)
    that have cells (``own``: each cell's sample code), likewise q_B; with ``omit_own_sample`` a
    cell's own sample is left out of its group. Computed a block of cells at a time, so the masks
    are block x samples, not cells x samples. float32, NaN where a group has no sample left.
    """
    own = np.asarray(own, dtype=np.int64)
    has_cells = np.bincount(own, minlength=log_probs.shape[1]) > 0

    def group_log_density(member: np.ndarray, rows: slice) -> np.ndarray:
        part = log_probs[rows]
        mask = np.broadcast_to(member & has_cells, part.shape).copy()
        if omit_own_sample:
            mask[np.arange(len(part)), own[rows]] = False
        masked = np.where(mask, part, -np.inf)
        with np.errstate(divide="ignore"):
            return np.logaddexp.reduce(masked, axis=1) - np.log(mask.sum(1))

    ratio = np.empty(len(own), dtype=np.float32)
    for start in range(0, len(own), _RATIO_BLOCK):
        rows = slice(start, start + _RATIO_BLOCK)
        with np.errstate(invalid="ignore"):
            ratio[rows] = group_log_density(member_a, rows) - group_log_density(member_b, rows)
    return ratio


def differential_abundance(
    model: MrVI,
    adata: ad.AnnData,
    *,
    covariate: str,
    group_a: Sequence[str] | None = None,
    group_b: Sequence[str] | None = None,
    samples: Sequence[str] | None = None,
    estimator: str = "mixture",
    omit_own_sample: bool = True,
    keep_log_probs: bool = False,
    log_probs: np.ndarray | None = None,
    max_cells_per_sample: int | None = None,
    seed: int = 0,
    batch_size: int = 1024,
    cells: np.ndarray | None = None,
) -> xr.Dataset:
    """Per-cell log ratio of the aggregated posteriors of two groups of samples.

    log q_A(u_n) - log q_B(u_n), with q_A the equal-weight mixture of the samples' aggregated
    posteriors q_s (Methods) and u_n the cell's posterior mean; the cell's own sample is left out
    of its group (``omit_own_sample``), as in the fixed reference.

    Parameters
    ----------
    model, adata
        A fitted MrVI and the cells (all cells of a sample define its q_s).
    covariate
        Sample-level ``obs`` column (constant within each sample).
    group_a, group_b
        Covariate values of the two groups; by default the two values of a binary covariate
        (sorted: B is the first, A the second, so the ratio is "second vs first").
    samples
        Only these samples may join the groups (default: all samples of the model).
    estimator
        Density estimate of each q_s, one of :data:`DA_ESTIMATORS`: ``"mixture"`` (the default,
        the Methods' mixture) or ``"per_dimension"`` (the paper-era product of 1-D mixtures; see
        the module docstring).
    omit_own_sample
        Leave the cell's own sample out of its group's mixture.
    keep_log_probs
        Also return log q_s(u_n) for every cell and sample (cells x samples floats).
    log_probs
        :func:`aggregated_log_probs` of ``model`` and ``adata`` (with this ``estimator``) when
        already computed (they do not depend on the covariate); computed here otherwise.
    max_cells_per_sample, seed
        Aggregated posteriors from at most this many seeded random cells per sample (see
        :func:`aggregated_log_probs`; ``None``, the default: all cells, as the paper).
    batch_size
        Cells per device chunk of the encoder.
    cells
        Boolean mask of the cells whose log ratio is computed (default: all). Every cell of a
        sample still defines its q_s; only the evaluation is restricted, so the cost falls with
        the share of cells asked for. ``log_probs``, when given, are of these cells.

    Returns
    -------
    Dataset with ``log_ratio`` (cell) and, if asked, ``log_probs`` (cell, sample).
    """
    _check_estimator(estimator)
    sample_key = model.registry.sample_key
    values = _sample_covariate(adata, sample_key, covariate)
    if samples is not None:
        values = values[values.index.astype(str).isin([str(s) for s in samples])]
    levels = sorted(values.unique())
    if group_a is None and group_b is None:
        if len(levels) != 2:
            msg = (
                f"covariate {covariate!r} has {len(levels)} values {levels[:6]}; "
                "name group_a and group_b"
            )
            raise ValueError(msg)
        group_b, group_a = [levels[0]], [levels[1]]
    group_a, group_b = list(group_a or []), list(group_b or [])
    fitted = list(model.registry.samples)
    members = {}
    for name, group in (("group_a", group_a), ("group_b", group_b)):
        chosen = [s for s in fitted if values.get(s) in set(group)]
        if not chosen:
            msg = f"{name} {group} of covariate {covariate!r} has no samples (values: {levels})"
            raise ValueError(msg)
        members[name] = np.isin(fitted, chosen)
    own = model.registry.codes(adata, "sample")
    names = np.asarray(adata.obs_names, dtype=str)
    if cells is not None:
        mask = _cell_mask(cells, adata.n_obs)
        own, names = own[mask], names[mask]
    logp = (
        aggregated_log_probs(
            model,
            adata,
            estimator=estimator,
            max_cells_per_sample=max_cells_per_sample,
            seed=seed,
            batch_size=batch_size,
            cells=cells,
        )
        if log_probs is None
        else np.asarray(log_probs)
    )
    ratio = group_log_ratio(
        logp, own, members["group_a"], members["group_b"], omit_own_sample=omit_own_sample
    )
    ds = xr.Dataset(
        {"log_ratio": ("cell", ratio)},
        coords={"cell": names},
        attrs={
            "covariate": covariate,
            "group_a": group_a,
            "group_b": group_b,
            "estimator": estimator,
        },
    )
    if keep_log_probs:
        ds["log_probs"] = (("cell", "sample"), logp.astype(np.float32))
        ds = ds.assign_coords(sample=fitted)
    return ds


def differential_abundance_binary(
    model: MrVI,
    adata: ad.AnnData,
    covariates: Sequence[str],
    *,
    estimators: Sequence[str] = ("mixture",),
    max_cells_per_sample: int | None = None,
    seed: int = 0,
    batch_size: int = 1024,
) -> xr.Dataset:
    """Run :func:`differential_abundance` for every two-valued covariate and every estimator.

    Returns one Dataset with a variable per binary covariate and estimator, named by
    :func:`~mrvi_repro.settings.names.da_variable` (``log_ratio_<covariate>`` for the mixture,
    ``log_ratio_<covariate>_per_dimension`` for the per-dimension estimator; attrs ``covariate``,
    ``estimator``, ``group_a``, ``group_b``); covariates with other numbers of values are skipped,
    and logged. ``max_cells_per_sample`` and ``seed`` as in :func:`aggregated_log_probs`.
    """
    estimators = list(dict.fromkeys(estimators))
    if not estimators:
        msg = "estimators must name at least one DA estimator"
        raise ValueError(msg)
    for estimator in estimators:
        _check_estimator(estimator)
    sample_key = model.registry.sample_key
    out = xr.Dataset(
        coords={"cell": np.asarray(adata.obs_names, dtype=str)},
        attrs={
            "max_cells_per_sample": -1 if max_cells_per_sample is None else max_cells_per_sample,
            "estimators": ",".join(estimators),  # netCDF attributes hold no string lists
        },
    )
    binary = {}
    for cov in covariates:
        levels = sorted(_sample_covariate(adata, sample_key, cov).unique())
        if len(levels) != 2:
            logger.info("DA: skipping %r (%d values, not two)", cov, len(levels))
            continue
        binary[cov] = levels
    for estimator in estimators:
        log_probs = None  # shared by all covariates, computed once per estimator
        for cov, levels in binary.items():
            if log_probs is None:
                log_probs = aggregated_log_probs(
                    model,
                    adata,
                    estimator=estimator,
                    max_cells_per_sample=max_cells_per_sample,
                    seed=seed,
                    batch_size=batch_size,
                )
            da = differential_abundance(
                model, adata, covariate=cov, estimator=estimator, log_probs=log_probs
            )
            name = da_variable(cov, estimator)
            out[name] = da["log_ratio"]
            out[name].attrs.update(
                {
                    "covariate": cov,
                    "estimator": estimator,
                    "group_a": levels[1],
                    "group_b": levels[0],
                }
            )
            logger.info(
                "DA for %r (%s estimator): log q(%s) - log q(%s) per cell",
                cov,
                estimator,
                levels[1],
                levels[0],
            )
    return out


@dataclass(frozen=True)
class AdmissibilityReference:
    """The admissibility rule's reference: each sample's reference cells and the threshold.

    Built once by :func:`admissibility_reference`; :meth:`mask` then scores any block of cells,
    so a caller that works a chunk of cells at a time never holds cells x samples.
    """

    mean: np.ndarray
    scale: np.ndarray
    own: np.ndarray
    n_samples: int
    threshold: float
    quantile: float

    def log_ratio(self, query: np.ndarray) -> np.ndarray:
        """Score minus threshold, (queries, samples): the best log density over s's references."""
        scores = sample_log_densities(
            query, self.mean, self.scale, self.own, self.n_samples, reduce="max"
        )
        return scores - self.threshold

    def mask(self, query: np.ndarray) -> np.ndarray:
        """Whether each sample is admissible for each query point (posterior means), (queries, S)."""
        return self.log_ratio(query) > 0


def admissibility_reference(
    model: MrVI,
    adata: ad.AnnData,
    *,
    quantile: float = 0.05,
    max_cells_per_sample: int = 5000,
    seed: int = 0,
    batch_size: int = 1024,
    posterior: tuple[np.ndarray, np.ndarray] | None = None,
    threshold_cells: int | None = 50_000,
) -> AdmissibilityReference:
    """Build the "ball" admissibility rule of the paper's Methods, ready to score cells.

    For each sample, up to ``max_cells_per_sample`` of its cells (seeded) are its reference. A
    cell's score for sample s is the largest log N(u_n; mu_j, sigma_j) over s's reference cells j;
    the threshold is the ``quantile`` of the same score of the reference cells for their own
    sample with themselves left out, pooled over samples. ``posterior``: the cells' posterior
    means and scales when already computed.

    ``threshold_cells``: the quantile is taken over at most this many reference cells (a seeded
    uniform subsample, each still scored against every reference cell; ``None``: all). Scoring
    costs reference cells x reference cells: for the IBD atlas's 720,633 that is about half an
    hour on 2 cores, for an estimate of a 5 % quantile that 50,000 cells give to about 0.1
    percentage point. Data with fewer reference cells are scored in full, as before.
    """
    if not 0.0 < quantile < 1.0:
        msg = f"quantile must lie in (0, 1) (got {quantile})"
        raise ValueError(msg)
    n_samples = len(model.registry.samples)
    mean, scale = posterior or model.posterior_u(adata, batch_size=batch_size)
    own = model.registry.codes(adata, "sample")
    ref = reference_cells(own, n_samples, max_cells_per_sample, seed)
    args = (mean[ref], scale[ref], own[ref], n_samples)
    queries = ref
    if threshold_cells is not None and len(ref) > threshold_cells:
        rng = np.random.default_rng([seed, len(ref)])
        queries = np.sort(rng.choice(ref, threshold_cells, replace=False))
        logger.info(
            "admissibility threshold from %d of the %d reference cells", len(queries), len(ref)
        )
    within = sample_log_densities(mean[queries], *args, reduce="max", query_id=queries, ref_id=ref)[
        np.arange(len(queries)), own[queries]
    ]
    within = within[np.isfinite(within)]
    if within.size == 0:
        msg = "no sample has two cells: admissibility needs at least two cells in some sample"
        raise ValueError(msg)
    threshold = float(np.quantile(within, quantile))
    return AdmissibilityReference(*args, threshold=threshold, quantile=quantile)


def admissibility(
    model: MrVI,
    adata: ad.AnnData,
    *,
    quantile: float = 0.05,
    max_cells_per_sample: int = 5000,
    seed: int = 0,
    batch_size: int = 1024,
) -> xr.Dataset:
    """Which samples are in distribution for each cell (the "ball" rule with a pooled quantile).

    The rule of :func:`admissibility_reference`, applied to every cell of ``adata``: sample s is
    admissible for cell n if its score exceeds the threshold. Cells x samples: for large data,
    score blocks of cells with :meth:`AdmissibilityReference.mask` instead (as DE does).

    Returns
    -------
    Dataset with ``log_ratio`` (score minus threshold) and ``is_admissible`` (cell, sample), and the
    threshold in ``attrs``.
    """
    posterior = model.posterior_u(adata, batch_size=batch_size)
    rule = admissibility_reference(
        model,
        adata,
        quantile=quantile,
        max_cells_per_sample=max_cells_per_sample,
        seed=seed,
        posterior=posterior,
    )
    log_ratio = rule.log_ratio(posterior[0])
    return xr.Dataset(
        {
            "log_ratio": (("cell", "sample"), log_ratio.astype(np.float32)),
            "is_admissible": (("cell", "sample"), log_ratio > 0),
        },
        coords={
            "cell": np.asarray(adata.obs_names, dtype=str),
            "sample": list(model.registry.samples),
        },
        attrs={"threshold": rule.threshold, "quantile": quantile},
    )
