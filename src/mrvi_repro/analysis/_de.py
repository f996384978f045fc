"""Differential expression at single-cell resolution: a per-cell linear model of counterfactual states.

Paper, Methods "Assessing compositional and expressional sample differences" (and the reference
code, scvi-tools' JAX MrVI ``differential_expression``, scverse/scvi-tools
``src/scvi/external/mrvi/_model.py``): for each cell n and Monte-Carlo draw
m of u, the counterfactual states z_n^(s,m) of all samples s are standardised across samples and
regressed on the sample-level design (columns min-max scaled) with an intercept:
beta = (X' W_n X + lambda I)^+ X' W_n z~, with W_n the cell's admissible samples. The effect size of
covariate column k is the Wald statistic t_nk = mean_m sum_d beta_kd^2 / [(X' W_n X)^+]_kk (unit
noise variance: z~ is standardised), a chi-square on d (= n_latent) degrees of freedom under the
null; p-values are BH-adjusted over cells x covariate columns.

Deliberate difference from the reference code: it fits without an intercept and uses
sum_d ((X'WX)^(1/2) beta)^2 against a chi-square with df = number of samples. With z~ centred
across samples, that statistic's null mean is about d/2 for a balanced binary covariate (measured
here: 11-15 where nothing is planted, d = 30), far below its df of 32, so its p-values are
strongly conservative.

Contrasts (:class:`Contrast`): what is reported is a contrast of the design's columns, c'beta
with c = a - b, its Wald statistic sum_d (c'beta_d)^2 / c'(X'WX)^+ c, and its LFC as the decoded
state base + a'beta against base + b'beta. By default the contrasts are the design columns
themselves (a = the column's unit vector, b = 0): a binary covariate's second level against its
first, a numeric covariate's full range. A :class:`Contrast` names any level A against any level B
of a categorical (both against the dropped reference level), or a numeric covariate's slope per
unit. A sample subset (``samples``) fits the regression on those samples only; the admissibility
rule (:class:`~mrvi_repro.analysis.AdmissibilityReference`) drops each cell's out-of-distribution
samples, scored a chunk of cells at a time.

The draws of u are keyed by each cell's row, so the result does not depend on the chunk size.
Per-cell LFCs (cells x genes per contrast) are either averaged per cell group on the fly or
streamed to a zarr store chunk by chunk: memory does not grow with the number of cells.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from mrvi_repro._groups import group_codes
from mrvi_repro.data.contract import per_sample
from mrvi_repro.model._model import MrVAE, states_for_samples

from ._abundance import AdmissibilityReference
from ._distances import row_draws

if TYPE_CHECKING:
    from collections.abc import Sequence

    import anndata as ad

    from mrvi_repro.model import MrVI

logger = logging.getLogger(__name__)

#: Bytes of counterfactual states (draws x cells x samples x n_latent) one chunk may hold.
CHUNK_BYTES = 32 * 1024**2


def design_matrix(
    adata: ad.AnnData, sample_key: str, samples: Sequence[str], covariates: Sequence[str]
) -> pd.DataFrame:
    """Sample-level design: categoricals one-hot without their first level, numbers as they are.

    Columns are min-max scaled to [0, 1]; there is no intercept. Rows follow ``samples``.
    """
    if not covariates:
        msg = "name at least one sample covariate"
        raise ValueError(msg)
    columns = []
    for cov in covariates:
        if cov not in adata.obs.columns:
            msg = f"unknown covariate {cov!r}; obs columns are: {list(adata.obs.columns)}"
            raise KeyError(msg)
        values = per_sample(adata, sample_key, cov).reindex(list(samples))
        if values.isna().any():
            msg = f"samples without cells in the data: {list(values.index[values.isna()][:5])}"
            raise ValueError(msg)
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            columns.append(values.astype(float).rename(cov))
        else:
            dummies = pd.get_dummies(
                values.astype(str), prefix=cov, prefix_sep="_", drop_first=True
            )
            if dummies.shape[1] == 0:
                msg = f"covariate {cov!r} has a single value: nothing to compare"
                raise ValueError(msg)
            columns.append(dummies.astype(float))
    x = pd.concat(columns, axis=1)
    span = (x.max() - x.min()).replace(0.0, 1.0)
    return (x - x.min()) / span


@dataclass(frozen=True)
class Contrast:
    """A comparison to report from the jointly fitted design.

    Attributes
    ----------
    covariate
        A covariate of the design.
    level_a, level_b
        Categorical covariates: report level A against level B (strings as in the data). By
        default B is the reference level (the first in sorted order, dropped from the design)
        and A, for a two-valued covariate, the other one. Numeric covariates take neither: the
        contrast is the slope per unit of the covariate.
    name
        Label of the contrast in the output (default ``"<covariate>: <A> vs <B>"``, or
        ``"<covariate> (per unit)"``).
    """

    covariate: str
    level_a: str | None = None
    level_b: str | None = None
    name: str | None = None


def contrast_matrices(
    adata: ad.AnnData,
    sample_key: str,
    samples: Sequence[str],
    covariates: Sequence[str],
    contrasts: Sequence[Contrast],
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Coefficient vectors of each contrast over the columns of :func:`design_matrix`.

    Returns the contrasts' names and the matrices A and B (contrasts x columns): the contrast is
    the state at A'beta against the state at B'beta, in the design's (min-max scaled) units, so
    a numeric slope per unit is 1 / (max - min) of its column.

    Raises
    ------
    ValueError
        For a covariate that is not in the design, a level that no sample has, levels given for
        a numeric covariate, or a categorical with more than two levels and no ``level_a``.
    """
    design = design_matrix(adata, sample_key, samples, covariates)
    columns = list(design.columns)
    names: list[str] = []
    a = np.zeros((len(contrasts), len(columns)))
    b = np.zeros((len(contrasts), len(columns)))
    for i, c in enumerate(contrasts):
        if c.covariate not in covariates:
            msg = f"contrast on {c.covariate!r}: not among the fitted covariates {list(covariates)}"
            raise ValueError(msg)
        values = per_sample(adata, sample_key, c.covariate).reindex(list(samples))
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            if c.level_a is not None or c.level_b is not None:
                msg = f"{c.covariate!r} is numeric: its contrast is a slope, give no levels"
                raise ValueError(msg)
            span = float(values.max() - values.min()) or 1.0
            a[i, columns.index(c.covariate)] = 1.0 / span
            names.append(c.name or f"{c.covariate} (per unit)")
            continue
        levels = sorted(values.astype(str).unique())
        level_b = levels[0] if c.level_b is None else str(c.level_b)
        level_a = c.level_a
        if level_a is None:
            others = [v for v in levels if v != level_b]
            if len(others) != 1:
                msg = (
                    f"{c.covariate!r} has levels {levels}: name level_a (and level_b) of its "
                    "contrast"
                )
                raise ValueError(msg)
            level_a = others[0]
        level_a = str(level_a)
        for level in (level_a, level_b):
            if level not in levels:
                msg = f"{c.covariate!r} has no level {level!r} among the samples; levels: {levels}"
                raise ValueError(msg)
        if level_a == level_b:
            msg = f"contrast on {c.covariate!r} compares {level_a!r} with itself"
            raise ValueError(msg)
        for vec, level in ((a, level_a), (b, level_b)):
            if level != levels[0]:  # the reference level has no column: its vector stays 0
                vec[i, columns.index(f"{c.covariate}_{level}")] = 1.0
        names.append(c.name or f"{c.covariate}: {level_a} vs {level_b}")
    if len(set(names)) != len(names):
        msg = f"contrast names must differ: {names}"
        raise ValueError(msg)
    return names, a, b


def _de_fn(module: MrVAE, n_mc: int, with_lfc: bool, columns: bool, with_b: bool) -> Any:
    """Build the jitted DE kernel of one chunk of cells.

    ``columns``: the contrasts are the design columns (a = I, b = 0), computed without the
    contrast products (the original path, bitwise as before); else ``ca``/``cb`` give them, and
    ``with_b`` says whether some b is non-zero (then base + b'beta is decoded too).
    """

    @jax.jit
    def de(
        params: Any,
        chunk: dict[str, jax.Array],
        rows: jax.Array,
        codes: jax.Array,
        x: jax.Array,
        weight: jax.Array,
        key: jax.Array,
        lam: jax.Array,
        batch_codes: jax.Array,
        eps_lfc: jax.Array,
        ca: jax.Array,
        cb: jax.Array,
    ) -> tuple[jax.Array, jax.Array, jax.Array | None]:
        mean, scale = module.apply(
            {"params": params}, chunk["x"], chunk["sample"], method=MrVAE.encode
        )
        noise = row_draws(key, rows, (n_mc, mean.shape[-1]))
        u = mean[:, None, :] + scale[:, None, :] * noise  # (cells, mc, d_u)
        z = states_for_samples(module, params, u, codes)  # (cells, mc, S, d)
        z_mean, sd = z.mean(axis=2, keepdims=True), z.std(axis=2, keepdims=True)
        e = (z - z_mean) / (1e-6 + sd)
        design = jnp.concatenate([jnp.ones((x.shape[0], 1), x.dtype), x], axis=1)
        xtw = design.T[None, :, :] * weight[:, None, :]  # (cells, 1 + K, S)
        gram = xtw @ design[None] + lam * jnp.diag(jnp.ones(design.shape[1]).at[0].set(0.0))
        w, v = jnp.linalg.eigh(gram)
        inv = jnp.where(w > 1e-8 * w.max(-1, keepdims=True), 1.0 / w, 0.0)
        pinv = (v * inv[:, None, :]) @ jnp.swapaxes(v, 1, 2)  # (cells, 1 + K, 1 + K)
        beta = jnp.einsum("bks,bmsd->bmkd", pinv @ xtw, e)[:, :, 1:]  # drop the intercept
        # a contrast c is estimable from the cell's admissible samples iff c lies in the row
        # space of its weighted design: c (I - G^+ G) = 0 (e.g. not when all its admissible
        # samples share one level of the covariate)
        leak = jnp.eye(design.shape[1]) - pinv @ gram  # (cells, 1 + K, 1 + K)
        if columns:
            var = jnp.diagonal(pinv, axis1=1, axis2=2)[:, 1:]  # (cells, K), in units of sigma^2
            effect = beta
            off = jnp.linalg.norm(leak[:, 1:, :], axis=-1)  # (cells, K)
        else:
            c = ca - cb  # (C, K)
            effect = jnp.einsum("ck,bmkd->bmcd", c, beta)
            var = jnp.einsum("ck,bkl,cl->bc", c, pinv[:, 1:, 1:], c)
            off = jnp.linalg.norm(jnp.einsum("ck,bkl->bcl", c, leak[:, 1:, :]), axis=-1)
        # Wald chi-square on d dims; NaN where the contrast is not estimable
        estimable = (var > 1e-10) & (off < 1e-3)
        t = ((effect**2).sum(-1) / jnp.where(estimable, var, 1.0)[:, None, :]).mean(1)
        t = jnp.where(estimable, t, jnp.nan)
        effect_latent = effect * sd  # (cells, mc, C, d): back to latent units
        if not with_lfc:
            return t, effect_latent.mean(1), None
        # decode the mean state across samples shifted to each contrast's two ends, in every
        # nuisance batch; LFC = log2 ratio, averaged over draws and batches
        base = z_mean  # (cells, mc, 1, d)
        if columns:
            ends = [base, base + effect_latent]
        else:
            beta_latent = beta * sd
            ends = [base + jnp.einsum("ck,bmkd->bmcd", cb, beta_latent)] if with_b else [base]
            ends.append(base + jnp.einsum("ck,bmkd->bmcd", ca, beta_latent))
        states = jnp.concatenate(ends, axis=2)  # (cells, mc, 1 or C, d) then (cells, mc, C, d)
        n_c = effect.shape[2]

        def in_batch(acc: jax.Array, b: jax.Array) -> tuple[jax.Array, None]:
            batch = jnp.full(states.shape[:-1], b, dtype=jnp.int32)
            log_h = module.apply({"params": params}, states, batch, method=MrVAE.log_h)
            l2 = jnp.log2(jnp.exp(log_h) + eps_lfc)
            low = l2[:, :, :n_c] if (with_b and not columns) else l2[:, :, :1]
            return acc + (l2[:, :, -n_c:] - low).mean(1), None

        zeros = jnp.zeros((states.shape[0], n_c, module.n_genes), states.dtype)
        lfc, _ = jax.lax.scan(in_batch, zeros, batch_codes)
        return t, effect_latent.mean(1), lfc / batch_codes.shape[0]

    return de


class _LfcStore:
    """Per-cell LFCs (contrast, cell, gene) written to a zarr store a chunk of cells at a time."""

    def __init__(
        self, path: str | Path, contrasts: list[str], genes: list[str], chunk: int, eps: float
    ) -> None:
        self.path, self.contrasts, self.genes = Path(path), contrasts, genes
        self.chunk, self.eps, self.started = chunk, eps, False
        if self.path.exists():
            shutil.rmtree(self.path)

    def write(self, cells: np.ndarray, lfc: np.ndarray) -> None:
        """Append the LFCs (contrasts, cells, genes) of the next cells."""
        part = xr.Dataset(
            {"lfc": (("covariate", "cell", "gene"), lfc.astype(np.float32))},
            coords={"covariate": self.contrasts, "cell": cells, "gene": self.genes},
        )
        if not self.started:
            part["lfc"].attrs["eps_lfc"] = self.eps
            encoding = {"lfc": {"chunks": (1, self.chunk, len(self.genes))}}
            part.to_zarr(self.path, mode="w", encoding=encoding, consolidated=False)
            self.started = True
        else:
            part.to_zarr(self.path, append_dim="cell", consolidated=False)


def differential_expression(
    model: MrVI,
    adata: ad.AnnData,
    *,
    covariates: Sequence[str],
    contrasts: Sequence[Contrast] | None = None,
    samples: Sequence[str] | None = None,
    cells: np.ndarray | None = None,
    admissible: np.ndarray | AdmissibilityReference | None = None,
    mc_samples: int = 50,
    lam: float = 0.0,
    lfc: bool = False,
    lfc_groupby: str | None = None,
    lfc_store: str | Path | None = None,
    eps_lfc: float = 1e-4,
    seed: int = 0,
) -> xr.Dataset:
    """Per-cell effect sizes, p-values, latent effects and (optionally) LFCs of sample covariates.

    Parameters
    ----------
    model, adata
        A fitted MrVI and the cells; every sample of the regression must have cells in ``adata``
        (its covariates are read there).
    covariates
        Sample-level ``obs`` columns, fitted jointly (categoricals one-hot, numbers as they are).
    contrasts
        What to report (:class:`Contrast`); default: every design column (see the module
        docstring). The output's ``covariate`` coordinate names them.
    samples
        The samples of the regression (a subset of the model's; default all). The others get
        weight 0 in every cell's regression.
    cells
        Boolean mask or row indices of the cells of ``adata`` to analyse (default: all); the
        output, ``admissible`` masks and ``lfc_groupby`` refer to these cells.
    admissible
        Each cell's admissible samples: a (cells, samples) boolean mask, or an
        :class:`~mrvi_repro.analysis.AdmissibilityReference` scored a chunk of cells at a time
        (memory then does not grow with cells); ``None``: every sample is admissible.
    mc_samples
        Draws of u per cell (the reference uses 100 in JAX, 50 in torch).
    lam
        Ridge penalty on the betas.
    lfc
        Also decode per-gene log2 fold changes: for each draw, the mean state across samples
        shifted by each contrast's two ends is decoded in every nuisance batch; ``lfc`` =
        log2(h_a + eps_lfc) - log2(h_b + eps_lfc) averaged over draws and batches (uniform
        weights). Held as contrasts x cells x genes unless ``lfc_groupby`` or ``lfc_store``.
    lfc_groupby
        With ``lfc``: keep the mean LFC over the cells of each group of this ``obs`` column
        (memory: groups x genes x contrasts, whatever the number of cells).
    lfc_store
        With ``lfc``: write the per-cell LFCs to this zarr store (variable ``lfc``, dims
        ``covariate``, ``cell``, ``gene``; replaced if it exists), a chunk of cells at a time,
        instead of returning them. May be combined with ``lfc_groupby``.
    eps_lfc
        Pseudo-proportion added before the log (the reference's 1e-4).
    seed
        Seed of the draws (each cell's draws depend on its row, not on the chunking).

    Returns
    -------
    Dataset with ``effect_size``, ``pvalue``, ``padj`` (cell, covariate), ``beta`` (cell,
    covariate, latent: the contrast's effect on z) and ``n_admissible`` (cell: samples in the
    cell's regression); with ``lfc`` also ``lfc`` (covariate, cell, gene), or with
    ``lfc_groupby`` ``lfc`` (covariate, group, gene) plus ``n_cells`` (group). ``covariate``
    names the contrasts (the design columns by default).
    """
    all_samples = list(model.registry.samples)
    used = all_samples if samples is None else list(dict.fromkeys(samples))
    unknown = sorted(set(used) - set(all_samples))
    if unknown:
        msg = f"samples not in the model: {unknown[:5]}"
        raise ValueError(msg)
    if len(used) < 2:
        msg = f"the regression needs at least two samples (got {len(used)})"
        raise ValueError(msg)
    sample_key = model.registry.sample_key
    design = design_matrix(adata, sample_key, used, covariates)
    design = design.reindex(all_samples).fillna(0.0)  # samples outside the subset: weight 0
    in_subset = np.isin(all_samples, used)
    if contrasts is None:
        names, ca, cb = list(design.columns), np.eye(design.shape[1]), np.zeros((0, 0))
    else:
        if not contrasts:
            msg = "contrasts is empty: name at least one, or pass None for the design columns"
            raise ValueError(msg)
        names, ca, cb = contrast_matrices(adata, sample_key, used, covariates, contrasts)
    if cells is not None:
        adata = adata[np.asarray(cells)]
        if adata.n_obs == 0:
            msg = "cells selects no cell"
            raise ValueError(msg)
    by_columns = contrasts is None
    with_b = bool(cb.size and np.any(cb != 0))
    n, s, d = adata.n_obs, len(all_samples), model.config.n_latent
    k, g = len(names), len(model.registry.genes)
    mask = None
    if isinstance(admissible, AdmissibilityReference):
        mean_u = model.posterior_u(adata)[0]
    elif admissible is not None:
        mask = np.asarray(admissible, dtype=bool)
        if mask.shape != (n, s):
            msg = f"admissible must be (cells, samples) = {(n, s)}, got {mask.shape}"
            raise ValueError(msg)
    if mc_samples < 1:
        msg = f"mc_samples must be at least 1, got {mc_samples}"
        raise ValueError(msg)
    if lfc_store is not None and not lfc:
        msg = "lfc_store needs lfc=True"
        raise ValueError(msg)
    n_states = (2 * k if with_b else 1 + k) if lfc else 0
    per_cell = mc_samples * max(s * d, n_states * g) * 4 * 4
    batch = max(1, min(1024, CHUNK_BYTES // per_cell))
    fn = model._kernel(_de_fn, mc_samples, lfc, by_columns, with_b)
    x = jnp.asarray(design.to_numpy(), jnp.float32)
    ca_j = jnp.asarray(ca, jnp.float32)
    cb_j = jnp.asarray(cb if with_b else np.zeros_like(ca), jnp.float32)
    codes = model.sample_codes()
    batch_codes = jnp.arange(len(model.registry.batches), dtype=jnp.int32)
    key = jax.random.key(seed)
    effect = np.empty((n, k), np.float32)
    beta = np.empty((n, k, d), np.float32)
    n_admissible = np.empty(n, np.int32)
    genes = np.asarray(model.registry.genes, dtype=str)
    cells = np.asarray(adata.obs_names, dtype=str)
    lfcs, group, groups, store = None, None, None, None
    if lfc and lfc_groupby is not None:
        group, groups = group_codes(adata, lfc_groupby)
        lfcs = np.zeros((k, len(groups), g))
    if lfc and lfc_store is not None:
        store = _LfcStore(lfc_store, names, list(genes), batch, eps_lfc)
    per_cell_lfc = None
    if lfc and lfc_groupby is None and lfc_store is None:
        per_cell_lfc = np.empty((k, n, g), np.float32)
    start, done = time.perf_counter(), 0
    for c, (m, chunk) in enumerate(model.iter_chunks(adata, batch)):
        rows = np.arange(done, done + batch).clip(max=n - 1)
        if mask is not None:
            weight = mask[rows]
        elif admissible is not None:
            weight = admissible.mask(mean_u[rows])
        else:
            weight = np.ones((len(rows), s), dtype=bool)
        weight = weight & in_subset[None, :]
        n_admissible[done : done + m] = weight[:m].sum(1)
        t, b, l2fc = fn(
            model.params,
            chunk,
            jnp.asarray(rows),
            codes,
            x,
            jnp.asarray(weight, jnp.float32),
            key,
            jnp.float32(lam),
            batch_codes,
            jnp.float32(eps_lfc),
            ca_j,
            cb_j,
        )
        effect[done : done + m], beta[done : done + m] = np.asarray(t)[:m], np.asarray(b)[:m]
        if l2fc is not None:
            part = np.asarray(l2fc)[:m]  # (m, contrasts, genes)
            if group is not None:
                onehot = np.zeros((len(groups), m))
                onehot[group[done : done + m], np.arange(m)] = 1.0
                lfcs += np.einsum("rc,ckg->krg", onehot, part.astype(np.float64))
            if store is not None:
                store.write(cells[done : done + m], np.moveaxis(part, 1, 0))
            if per_cell_lfc is not None:
                per_cell_lfc[:, done : done + m] = np.moveaxis(part, 1, 0)
        done += m
        if c % 20 == 0 or done == n:
            logger.info("DE: %d / %d cells", done, n)
    logger.info(
        "DE of %d cells, %d of %d samples, %d contrasts of %d design columns, %d draws%s in %.1f s",
        n,
        len(used),
        s,
        k,
        design.shape[1],
        mc_samples,
        " with LFCs" if lfc else "",
        time.perf_counter() - start,
    )
    few = int((n_admissible < 2).sum())
    if few:
        logger.warning("DE: %d of %d cells have fewer than two admissible samples", few, n)
    pvalue = stats.chi2.sf(effect.astype(np.float64), df=d)
    padj = np.full_like(pvalue, np.nan)
    tested = np.isfinite(pvalue)
    if tested.any():
        padj[tested] = stats.false_discovery_control(pvalue[tested], method="bh")
    if not tested.all():
        logger.warning(
            "DE: %d of %d cell x contrast tests not estimable from the admissible samples (NaN)",
            int((~tested).sum()),
            tested.size,
        )
    out = xr.Dataset(
        {
            "effect_size": (("cell", "covariate"), effect),
            "pvalue": (("cell", "covariate"), pvalue),
            "padj": (("cell", "covariate"), padj),
            "beta": (("cell", "covariate", "latent"), beta),
            "n_admissible": ("cell", n_admissible),
        },
        coords={"cell": cells, "covariate": names},
        attrs={
            "covariates": list(covariates),
            "mc_samples": mc_samples,
            "df": d,
            "n_samples_used": len(used),
        },
    )
    if group is not None:
        counts = np.bincount(group, minlength=len(groups))
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = (lfcs / counts[None, :, None]).astype(np.float32)
        out["lfc"] = (("covariate", "group", "gene"), mean)
        out = out.assign_coords(group=groups, n_cells=("group", counts))
        out["lfc"].attrs["groupby"] = lfc_groupby
    elif per_cell_lfc is not None:
        out["lfc"] = (("covariate", "cell", "gene"), per_cell_lfc)
    if "lfc" in out:
        out = out.assign_coords(gene=genes)
        out["lfc"].attrs["eps_lfc"] = eps_lfc
    if store is not None:
        out.attrs["lfc_store"] = str(lfc_store)
    return out
