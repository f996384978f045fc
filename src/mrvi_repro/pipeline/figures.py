"""The cohort figure and its claims as the workflow runs them (rules ``fig3_panels``, ``cohort_claims``).

:func:`load_cohort_results` reads what the workflow wrote for an entry that asks for ``fig3``
(its ``figures.fig3`` settings say which comparisons) into a
:class:`~mrvi_repro.metrics.CohortResults`; :func:`write_fig3` draws and writes the panels and
the module gene table, :func:`write_cohort_claims` the claims table ``metrics/claims.tsv``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from .comparisons import stratification_cluster

if TYPE_CHECKING:
    from mrvi_repro.metrics import CohortResults
    from mrvi_repro.settings.figures import Fig3Spec

    from .entry import DatasetSpec

logger = logging.getLogger(__name__)


def load_cohort_results(
    spec: DatasetSpec,
    *,
    h5ad: str | Path,
    stratification: str | Path,
    sample_groups: str | Path,
    da: Sequence[str | Path],
    da_tests: Sequence[str | Path],
    de: str | Path,
    modules: str | Path,
    integration: str | Path,
) -> CohortResults:
    """Read an entry's outputs for the cohort figure and its claims.

    ``da`` and ``da_tests``: the ``da.nc`` and ``cluster_test.tsv`` of the figure's DA
    comparisons, in the order of ``figures.fig3.da``. The samples' covariates are read from the
    data (each constant within a sample); the donor groups' cluster is the stratification cluster
    holding most of the set's cells, as rule ``sample_groups`` chose it.
    """
    import anndata as ad
    import xarray as xr

    from mrvi_repro.data.contract import per_sample
    from mrvi_repro.metrics import CohortResults

    fig: Fig3Spec = spec.figures.require("fig3", spec.name)
    if len(da) != len(fig.da) or len(da_tests) != len(fig.da):
        msg = f"give the da.nc and cluster_test.tsv of each DA comparison {list(fig.da)}"
        raise ValueError(msg)
    adata = ad.read_h5ad(h5ad, backed="r")
    obs = adata.obs[[spec.labels_key, spec.sample_key]].copy()
    obs.index = obs.index.astype(str)
    columns = sorted({fig.condition, fig.onset, *fig.annotations})
    samples = pd.DataFrame({c: per_sample(adata, spec.sample_key, c) for c in columns})
    samples.index = samples.index.astype(str)
    strat = xr.load_dataset(stratification)
    item = next(g for g in spec.comparisons.sample_groups if g.name == fig.sample_groups)
    cluster = stratification_cluster(strat, adata, item.cells)
    groups_table = pd.read_csv(sample_groups, sep="\t", dtype={spec.sample_key: str})
    groups = groups_table.set_index(spec.sample_key)[fig.sample_groups].astype(str)
    return CohortResults(
        obs=obs,
        labels_key=spec.labels_key,
        sample_key=spec.sample_key,
        samples=samples,
        stratification=strat,
        groups=groups,
        group_cluster=cluster,
        da={n: xr.load_dataset(p) for n, p in zip(fig.da, da, strict=True)},
        da_tests={n: pd.read_csv(p, sep="\t") for n, p in zip(fig.da, da_tests, strict=True)},
        de=xr.load_dataset(de),
        modules=pd.read_csv(modules, sep="\t"),
        integration=pd.read_csv(integration, sep="\t"),
    )


def write_fig3(
    spec: DatasetSpec,
    results: CohortResults,
    embedding: pd.DataFrame,
    outputs: Mapping[str, str | Path],
) -> None:
    """Draw the cohort figure: each panel to ``outputs[<panel>]``, the module table to ``module_genes``.

    Panels are PNGs; the module gene table is a TSV.
    """
    from mrvi_repro.plotting import cohort_figure, module_gene_table, save_figure

    fig: Fig3Spec = spec.figures.require("fig3", spec.name)
    panels = cohort_figure(results, embedding, fig, seed=spec.mrvi.seed)
    for name, panel in panels.items():
        save_figure(panel.plot, outputs[name], width=panel.width, height=panel.height)
        logger.info("wrote %s", outputs[name])
    module_gene_table(results).to_csv(outputs["module_genes"], sep="\t", index=False)


def write_cohort_claims(
    spec: DatasetSpec, results: CohortResults, path: str | Path, *, n_permutations: int = 999
) -> pd.DataFrame:
    """Check the paper's Fig. 3 statements on the entry's outputs; write and return the table."""
    from mrvi_repro.metrics import cohort_claims, cohort_summary

    fig: Fig3Spec = spec.figures.require("fig3", spec.name)
    summary = cohort_summary(results, fig, n_permutations=n_permutations, seed=spec.mrvi.seed)
    claims = cohort_claims(summary, fig)
    for row in claims.itertuples():
        logger.info("%s: %s -> %s", row.claim, row.ours, row.holds)
    claims.to_csv(path, sep="\t", index=False)
    return claims
