"""A seeded simulator of a PBMC-like multi-sample single-cell dataset.

The simulated base stands in for a real count matrix (the 10x PBMC 68k data of the paper) wherever
real data cannot be had: the default workflow, the tests and the benchmarks. It aims at the
properties that make methods differ on real data:

* negative-binomial counts with gene-specific dispersion and a heavy-tailed gene mean distribution;
* library sizes that vary over cells (log-normal) and between cell types;
* several cell types of unequal size (PBMC-like proportions), grouped into lineages whose gene
  programs they share, each with its own marker programs (up and down) and discrete sub-states;
* continuous gene programs shared by all cell types (activation-, interferon-, cycling-like), whose
  activity varies from cell to cell;
* optional batch effects: a gene-wise log-normal scaling per batch, samples nested in batches.

Cells are assigned uniformly to samples, so the base carries no sample effect of its own: the
semi-synthetic construction (:func:`mrvi_repro.data.semisynthetic.make_semisynthetic`) plants those.
"""

from __future__ import annotations

import logging
from dataclasses import asdict

import anndata as ad
import numpy as np
import pandas as pd
from scipy import sparse

from mrvi_repro.settings.data import SimulationParams

logger = logging.getLogger(__name__)

#: PBMC-like cell types: (name, relative abundance, lineage). Proportions loosely follow 10x PBMC 68k.
PBMC_CELL_TYPES: tuple[tuple[str, float, str], ...] = (
    ("CD4 T", 0.30, "lymphoid"),
    ("CD14 Mono", 0.20, "myeloid"),
    ("B", 0.14, "lymphoid"),
    ("CD8 T", 0.12, "lymphoid"),
    ("NK", 0.10, "lymphoid"),
    ("FCGR3A Mono", 0.07, "myeloid"),
    ("DC", 0.04, "myeloid"),
    ("Platelet", 0.03, "megakaryocyte"),
)


def _cell_type_table(n_cell_types: int) -> pd.DataFrame:
    rows = list(PBMC_CELL_TYPES[:n_cell_types])
    for k in range(len(rows), n_cell_types):  # beyond the PBMC list: rare generic types
        rows.append((f"Type {k + 1}", 0.02, "other"))
    table = pd.DataFrame(rows, columns=["cell_type", "weight", "lineage"])
    table["proportion"] = table["weight"] / table["weight"].sum()
    return table


def _program(
    rng: np.random.Generator, n_genes: int, frac: float, mean: float, sd: float, p_up: float = 1.0
) -> np.ndarray:
    """Gene-wise log-fold effects of one program: a random ``frac`` of genes is affected."""
    effect = np.zeros(n_genes)
    genes = rng.choice(n_genes, size=max(2, round(frac * n_genes)), replace=False)
    size = np.abs(rng.normal(mean, sd, size=genes.size))
    sign = np.where(rng.random(genes.size) < p_up, 1.0, -1.0)
    effect[genes] = sign * size
    return effect


def simulate_base(
    params: SimulationParams | None = None, *, chunk_size: int = 20_000
) -> ad.AnnData:
    """Simulate a PBMC-like multi-sample count matrix.

    Parameters
    ----------
    params
        Sizes, effect strengths and the seed; defaults to :class:`SimulationParams`'s defaults.
    chunk_size
        Cells drawn at a time; bounds the dense working memory to ``chunk_size x n_genes``.

    Returns
    -------
    AnnData with raw counts in ``X`` (CSR, float32 holding integers) and ``obs`` columns
    ``cell_type``, ``lineage``, ``substate``, ``sample``, ``batch``; the parameters are in
    ``uns['simulation']``.
    """
    p = params or SimulationParams()
    rng = np.random.default_rng(p.seed)
    g = p.n_genes
    types = _cell_type_table(p.n_cell_types)
    lineages = sorted(types["lineage"].unique())

    # Gene-level parameters: heavy-tailed baseline abundances and NB dispersions.
    base = rng.normal(0.0, 1.3, size=g)
    theta = np.exp(rng.normal(np.log(4.0), 0.6, size=g))
    lineage_fx = {lin: _program(rng, g, 0.04, 1.5, 0.5, p_up=0.7) for lin in lineages}
    # One row per (cell type, sub-state): lineage + markers (up and down) + sub-state programme.
    state_fx = np.empty((p.n_cell_types * p.n_substates, g))
    substate_probs = np.empty((p.n_cell_types, p.n_substates))
    for t, row in types.iterrows():
        type_fx = (
            lineage_fx[row["lineage"]]
            + _program(rng, g, 0.03, 2.0, 0.5)
            + _program(rng, g, 0.015, 1.5, 0.5, p_up=0.0)
        )
        substate_probs[t] = rng.dirichlet(np.full(p.n_substates, 3.0))
        for s in range(p.n_substates):
            sub_fx = _program(rng, g, 0.015, 0.0, 1.0, p_up=0.5) if p.n_substates > 1 else 0.0
            state_fx[t * p.n_substates + s] = type_fx + sub_fx
    programs = (
        np.stack([_program(rng, g, 0.02, 1.2, 0.3) for _ in range(p.n_programs)])
        if (p.n_programs)
        else np.zeros((0, g))
    )
    type_size = rng.normal(0.0, 0.25, size=p.n_cell_types)
    batch_fx = rng.normal(0.0, p.batch_effect_sd, size=(p.n_batches, g))
    if p.n_batches == 1:
        batch_fx[:] = 0.0

    # Cell-level draws.
    n = p.n_cells
    cell_type = rng.choice(p.n_cell_types, size=n, p=types["proportion"].to_numpy())
    cum = substate_probs[cell_type].cumsum(axis=1)
    substate = (rng.random(n)[:, None] > cum).sum(axis=1).clip(max=p.n_substates - 1)
    sample = rng.integers(p.n_samples, size=n)
    batch = sample % p.n_batches
    activity = np.minimum(rng.exponential(0.3, size=(n, p.n_programs)), 3.0)
    log_lib = rng.normal(np.log(p.median_library_size) + type_size[cell_type], p.library_size_sd)

    blocks = []
    for start in range(0, n, chunk_size):
        sl = slice(start, min(start + chunk_size, n))
        logits = base + state_fx[cell_type[sl] * p.n_substates + substate[sl]] + batch_fx[batch[sl]]
        logits += activity[sl] @ programs
        logits -= logits.max(axis=1, keepdims=True)
        prop = np.exp(logits)
        prop /= prop.sum(axis=1, keepdims=True)
        mu = np.exp(log_lib[sl])[:, None] * prop
        counts = rng.negative_binomial(theta, theta / (theta + mu))
        blocks.append(sparse.csr_matrix(counts.astype(np.float32)))
        logger.info("simulated cells %d-%d of %d", sl.start, sl.stop, n)
    x = sparse.vstack(blocks, format="csr")

    names = types["cell_type"].to_numpy()
    obs = pd.DataFrame(
        {
            "cell_type": pd.Categorical(names[cell_type], categories=names),
            "lineage": pd.Categorical(types["lineage"].to_numpy()[cell_type], categories=lineages),
            "substate": pd.Categorical(
                [f"{names[t]}:{s + 1}" for t, s in zip(cell_type, substate, strict=True)]
            ),
            "sample": pd.Categorical([f"sample_{i + 1:02d}" for i in sample]),
            "batch": pd.Categorical([f"batch_{i + 1}" for i in batch]),
        },
        index=pd.Index([f"cell_{i:07d}" for i in range(n)]),
    )
    width = len(str(g))
    var = pd.DataFrame(index=pd.Index([f"G{i + 1:0{width}d}" for i in range(g)]))
    adata = ad.AnnData(X=x, obs=obs, var=var)
    adata.uns["simulation"] = asdict(p)
    logger.info(
        "simulated %d cells x %d genes, %d cell types, %d samples, %d batches; median counts %.0f",
        n,
        g,
        p.n_cell_types,
        p.n_samples,
        p.n_batches,
        float(np.median(np.asarray(x.sum(axis=1)))),
    )
    return adata
