"""Aggregated posteriors in u: differential abundance and the admissibility (out-of-distribution) filter.

Paper, Methods "Assessing compositional and expressional sample differences": q_s(u) is the
equal-weight mixture of the posteriors q(u | x_n) of the cells of sample s. The log density of every
query cell's posterior mean under every sample's mixture is one pass of matrix products over
(query chunk x reference chunk) blocks, reduced per sample on the device (log-sum-exp for the
mixture, max for admissibility): no loop over samples, memory bounded by the block.
"""

from __future__ import annotations

import logging
import math
from functools import partial
from typing import TYPE_CHECKING, Literal

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import xarray as xr

from mrvi_repro.data.contract import per_sample

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


@partial(jax.jit, static_argnames=("n_samples", "reduce"))
def _block(
    query: jax.Array,
    query_id: jax.Array,
    mean: jax.Array,
    scale: jax.Array,
    ref_id: jax.Array,
    tile_sample: jax.Array,
    n_samples: int,
    reduce: str,
) -> jax.Array:
    """Per-sample reduction (log-sum-exp or max) of log N(query; mean_j, scale_j) over a block.

    The block's references are whole tiles of one sample each (``tile_sample``, -1 for a padding
    tile); ``ref_id`` -1 marks a padding slot and a reference cell with the query's id is left out.
    Each tile is reduced by a reshape; only the few tiles are then reduced per sample.
    """
    n_tiles = tile_sample.shape[0]
    prec = 1.0 / (scale * scale)
    const = (mean * mean * prec).sum(-1) + 2.0 * jnp.log(scale).sum(-1) + mean.shape[1] * _LOG_2PI
    logp = -0.5 * ((query * query) @ prec.T - 2.0 * query @ (mean * prec).T + const[None, :])
    invalid = (ref_id[None, :] == -1) | (query_id[:, None] == ref_id[None, :])
    logp = jnp.where(invalid, -jnp.inf, logp).reshape(query.shape[0], n_tiles, -1)
    tile_top = logp.max(-1)  # (query, tiles)
    if reduce == "max":
        tile_val = tile_top
    else:
        safe = jnp.where(jnp.isfinite(tile_top), tile_top, 0.0)
        tile_sum = jnp.exp(logp - safe[..., None]).sum(-1)
        tile_val = jnp.where(jnp.isfinite(tile_top), jnp.log(tile_sum) + safe, -jnp.inf)
    seg = jnp.where(tile_sample < 0, n_samples, tile_sample)  # padding -> a dropped segment
    top = jax.ops.segment_max(tile_val.T, seg, num_segments=n_samples + 1)[:n_samples]
    if reduce == "max":
        return top.T
    safe = jnp.where(jnp.isfinite(top), top, 0.0)
    total = jax.ops.segment_sum(
        jnp.exp(tile_val.T - safe[seg.clip(max=n_samples - 1)]), seg, num_segments=n_samples + 1
    )[:n_samples]
    return jnp.where(jnp.isfinite(top), jnp.log(total) + safe, -jnp.inf).T


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
    query_id, ref_id
        Optional ids (non-negative): a reference with the query's id is excluded (for
        leave-self-out scores).
    block
        Queries and references per device block (memory: block x block floats).

    Returns
    -------
    (queries, n_samples) array; -inf where a sample has no (remaining) reference cell.
    """
    query = np.asarray(query, np.float32)
    ref_sample = np.asarray(ref_sample, dtype=np.int64)
    nq = len(query)
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
    qb = min(block, nq)
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
        args = (
            jnp.asarray(mean[rows], jnp.float32),
            jnp.asarray(np.where((sl >= 0)[:, None], scale[rows], 1.0), jnp.float32),
            jnp.asarray(np.where(sl >= 0, rid[rows], -1)),
            jnp.asarray(ts.astype(np.int32)),
        )
        for q0 in range(0, nq, qb):
            qrows = np.arange(q0, q0 + qb).clip(max=nq - 1)
            part = _block(
                jnp.asarray(query[qrows]), jnp.asarray(qid[qrows]), *args, n_samples, reduce
            )
            part = np.asarray(part, dtype=np.float64)[: min(qb, nq - q0)]
            cur = out[q0 : q0 + len(part)]
            out[q0 : q0 + len(part)] = (
                np.maximum(cur, part) if reduce == "max" else np.logaddexp(cur, part)
            )
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


def aggregated_log_probs(
    model: MrVI,
    adata: ad.AnnData,
    *,
    max_cells_per_sample: int | None = None,
    seed: int = 0,
    batch_size: int = 1024,
) -> np.ndarray:
    """Return log q_s(u_n): each cell's posterior mean under each sample's aggregated posterior.

    (cells, samples); -inf for a sample with no cells in ``adata``. q_s is the equal-weight
    mixture of the posteriors of all of s's cells, or of a seeded random subset of at most
    ``max_cells_per_sample`` of them: the cost is cells x mixture components, so at hundreds of
    thousands of cells a subset (an unbiased Monte-Carlo estimate of the density) keeps it linear.
    """
    mean, scale = model.posterior_u(adata, batch_size=batch_size)
    own = model.registry.codes(adata, "sample")
    n_samples = len(model.registry.samples)
    ref = reference_cells(own, n_samples, max_cells_per_sample, seed)
    counts = np.bincount(own[ref], minlength=n_samples)
    logp = sample_log_densities(mean, mean[ref], scale[ref], own[ref], n_samples)
    with np.errstate(divide="ignore"):
        # in place (cells x samples is the output's size); a sample without cells stays -inf
        logp -= np.where(counts > 0, np.log(counts), 0.0)[None, :]
    return logp


def differential_abundance(
    model: MrVI,
    adata: ad.AnnData,
    *,
    covariate: str,
    group_a: Sequence[str] | None = None,
    group_b: Sequence[str] | None = None,
    omit_own_sample: bool = True,
    keep_log_probs: bool = False,
    log_probs: np.ndarray | None = None,
    max_cells_per_sample: int | None = None,
    seed: int = 0,
    batch_size: int = 1024,
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
    omit_own_sample
        Leave the cell's own sample out of its group's mixture.
    keep_log_probs
        Also return log q_s(u_n) for every cell and sample (cells x samples floats).
    log_probs
        :func:`aggregated_log_probs` of ``model`` and ``adata`` when already computed (they do
        not depend on the covariate); computed here otherwise.
    max_cells_per_sample, seed
        Aggregated posteriors from at most this many seeded random cells per sample (see
        :func:`aggregated_log_probs`; ``None``, the default: all cells, as the paper).
    batch_size
        Cells per device chunk of the encoder.

    Returns
    -------
    Dataset with ``log_ratio`` (cell) and, if asked, ``log_probs`` (cell, sample).
    """
    sample_key = model.registry.sample_key
    values = _sample_covariate(adata, sample_key, covariate)
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
    samples = list(model.registry.samples)
    members = {}
    for name, group in (("group_a", group_a), ("group_b", group_b)):
        chosen = [s for s in samples if values.get(s) in set(group)]
        if not chosen:
            msg = f"{name} {group} of covariate {covariate!r} has no samples (values: {levels})"
            raise ValueError(msg)
        members[name] = np.isin(samples, chosen)
    own = model.registry.codes(adata, "sample")
    counts = np.bincount(own, minlength=len(samples))
    logp = (
        aggregated_log_probs(
            model,
            adata,
            max_cells_per_sample=max_cells_per_sample,
            seed=seed,
            batch_size=batch_size,
        )
        if log_probs is None
        else np.asarray(log_probs)
    )

    def group_log_density(member: np.ndarray, rows: slice) -> np.ndarray:
        part = logp[rows]
        mask = np.broadcast_to(member & (counts > 0), part.shape).copy()
        if omit_own_sample:
            mask[np.arange(len(part)), own[rows]] = False
        masked = np.where(mask, part, -np.inf)
        with np.errstate(divide="ignore"):
            return np.logaddexp.reduce(masked, axis=1) - np.log(mask.sum(1))

    # a block of cells at a time: the masks are block x samples, not cells x samples
    ratio = np.empty(len(own), dtype=np.float32)
    for start in range(0, len(own), _RATIO_BLOCK):
        rows = slice(start, start + _RATIO_BLOCK)
        with np.errstate(invalid="ignore"):
            ratio[rows] = group_log_density(members["group_a"], rows) - group_log_density(
                members["group_b"], rows
            )
    ds = xr.Dataset(
        {"log_ratio": ("cell", ratio)},
        coords={"cell": np.asarray(adata.obs_names, dtype=str)},
        attrs={"covariate": covariate, "group_a": group_a, "group_b": group_b},
    )
    if keep_log_probs:
        ds["log_probs"] = (("cell", "sample"), logp.astype(np.float32))
        ds = ds.assign_coords(sample=samples)
    return ds


def differential_abundance_binary(
    model: MrVI,
    adata: ad.AnnData,
    covariates: Sequence[str],
    *,
    max_cells_per_sample: int | None = None,
    seed: int = 0,
    batch_size: int = 1024,
) -> xr.Dataset:
    """Run :func:`differential_abundance` for every two-valued covariate among ``covariates``.

    Returns one Dataset with a variable ``log_ratio_<covariate>`` (cell) per binary covariate
    (covariates with other numbers of values are skipped, and logged). ``max_cells_per_sample``
    and ``seed`` as in :func:`aggregated_log_probs`.
    """
    sample_key = model.registry.sample_key
    out = xr.Dataset(
        coords={"cell": np.asarray(adata.obs_names, dtype=str)},
        attrs={
            "max_cells_per_sample": -1 if max_cells_per_sample is None else max_cells_per_sample
        },
    )
    log_probs = None  # shared by all covariates, computed once
    for cov in covariates:
        levels = sorted(_sample_covariate(adata, sample_key, cov).unique())
        if len(levels) != 2:
            logger.info("DA: skipping %r (%d values, not two)", cov, len(levels))
            continue
        if log_probs is None:
            log_probs = aggregated_log_probs(
                model,
                adata,
                max_cells_per_sample=max_cells_per_sample,
                seed=seed,
                batch_size=batch_size,
            )
        da = differential_abundance(model, adata, covariate=cov, log_probs=log_probs)
        out[f"log_ratio_{cov}"] = da["log_ratio"]
        out[f"log_ratio_{cov}"].attrs.update(
            {"covariate": cov, "group_a": levels[1], "group_b": levels[0]}
        )
        logger.info("DA for %r: log q(%s) - log q(%s) per cell", cov, levels[1], levels[0])
    return out


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

    For each sample, up to ``max_cells_per_sample`` of its cells (seeded) are its reference. A cell's
    score for sample s is the largest log N(u_n; mu_j, sigma_j) over s's reference cells j; the
    threshold is the ``quantile`` of the same score of every reference cell for its own sample with
    itself left out, pooled over samples. Sample s is admissible for cell n if the score exceeds it.

    Returns
    -------
    Dataset with ``log_ratio`` (score minus threshold) and ``is_admissible`` (cell, sample), and the
    threshold in ``attrs``.
    """
    if not 0.0 < quantile < 1.0:
        msg = f"quantile must lie in (0, 1) (got {quantile})"
        raise ValueError(msg)
    samples = list(model.registry.samples)
    mean, scale = model.posterior_u(adata, batch_size=batch_size)
    own = model.registry.codes(adata, "sample")
    ref = reference_cells(own, len(samples), max_cells_per_sample, seed)
    args = (mean[ref], scale[ref], own[ref], len(samples))
    scores = sample_log_densities(mean, *args, reduce="max")
    within = sample_log_densities(mean[ref], *args, reduce="max", query_id=ref, ref_id=ref)[
        np.arange(len(ref)), own[ref]
    ]
    within = within[np.isfinite(within)]
    if within.size == 0:
        msg = "no sample has two cells: admissibility needs at least two cells in some sample"
        raise ValueError(msg)
    threshold = float(np.quantile(within, quantile))
    log_ratio = scores - threshold
    return xr.Dataset(
        {
            "log_ratio": (("cell", "sample"), log_ratio.astype(np.float32)),
            "is_admissible": (("cell", "sample"), log_ratio > 0),
        },
        coords={"cell": np.asarray(adata.obs_names, dtype=str), "sample": samples},
        attrs={"threshold": threshold, "quantile": quantile},
    )
