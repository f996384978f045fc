"""The perturbation-screen figure as the workflow runs it (the paper's Fig. 4, Extended Data 2-4).

One function per rule, each taking the parsed entry (its ``figures.fig4`` settings,
:class:`~mrvi_repro.settings.figures.Fig4Spec`) and its rule's inputs:

* :func:`run_cmap_clusters` (rule ``cmap_clusters``): the Connectivity Map clusters of the
  screen's drugs from the cell line's iLINCS L1000 exports;
* :func:`run_screen_clusters` (rule ``screen_clusters``): the samples ranked by distance to the
  reference, the retained ones' Ward clusters, each cluster's DE against the reference and the
  enrichment of its DE genes;
* :func:`run_screen_metrics` (rule ``screen_metrics``): Fig. 4d's metrics for MrVI, the
  composition baselines and permutations of MrVI's matrix;
* :func:`load_screen_results`, :func:`write_fig4` and :func:`write_screen_claims` (rules
  ``fig4_panels`` and ``screen_claims``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from collections.abc import Mapping

    import anndata as ad
    import xarray as xr

    from mrvi_repro.metrics import ScreenResults
    from mrvi_repro.model import MrVI
    from mrvi_repro.settings.figures import Fig4Spec

    from .entry import DatasetSpec

logger = logging.getLogger(__name__)


def sample_table(adata: ad.AnnData, spec: DatasetSpec) -> pd.DataFrame:
    """One row per sample (index: its name): the sample covariates the screen figure reads."""
    from mrvi_repro.data.contract import per_sample

    fig: Fig4Spec = spec.figures.require("fig4", spec.name)
    table = pd.DataFrame({c: per_sample(adata, spec.sample_key, c) for c in fig.sample_columns})
    table.index = table.index.astype(str)
    if fig.reference not in table.index:
        msg = (
            f"figures.fig4.reference {fig.reference!r} is not a sample of {spec.name!r} "
            f"(e.g. {list(table.index[:3])})"
        )
        raise ValueError(msg)
    return table


def run_cmap_clusters(
    spec: DatasetSpec,
    adata: ad.AnnData,
    signatures: list[str | Path],
    metadata: list[str | Path],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Cluster the screen's drugs by their Connectivity Map signatures (Fig. 4d's truth).

    Returns the signatures' Jaccard similarity (square, by drug) and the clusters (``product``,
    ``cluster``; drugs alone in their cluster left out).
    """
    from mrvi_repro.data.l1000 import cmap_clusters

    fig: Fig4Spec = spec.figures.require("fig4", spec.name)
    if fig.cmap is None:
        msg = f"{spec.name}: figures.fig4 has no cmap files"
        raise ValueError(msg)
    products = sample_table(adata, spec)[fig.product].astype(str).unique()
    similarity, clusters = cmap_clusters(
        signatures,
        metadata,
        products,
        min_ratio=fig.cmap.min_ratio,
        exclude=fig.cmap.exclude,
        resolution=fig.cmap.resolution,
        seed=spec.mrvi.seed,
    )
    logger.info(
        "%d CMap clusters over %d drugs: %s",
        clusters.nunique(),
        len(clusters),
        clusters.value_counts().to_dict(),
    )
    table = pd.DataFrame({"product": clusters.index.astype(str), "cluster": clusters.astype(str)})
    return similarity, table


def run_screen_clusters(
    model: MrVI,
    adata: ad.AnnData,
    spec: DatasetSpec,
    distances: xr.DataArray,
    *,
    gene_sets: str | Path | None = None,
) -> tuple[pd.DataFrame, xr.Dataset, pd.DataFrame]:
    """Retained samples, their clusters, each cluster's DE against the reference, enrichment.

    ``distances``: MrVI's sample distances (``analysis/sample_distances.nc``; groups pooled by
    their cells). ``gene_sets``: the GMT of ``figures.fig4.gene_sets`` (``None``: no
    enrichment, an empty table).

    Returns
    -------
    The clusters table (:func:`~mrvi_repro.analysis.screen_clusters` plus the sample
    covariates), the DE dataset (:func:`~mrvi_repro.analysis.cluster_de`) and the enrichment
    table (:func:`~mrvi_repro.analysis.cluster_enrichment`).
    """
    from mrvi_repro.analysis import cluster_de, cluster_enrichment, read_gmt, screen_clusters
    from mrvi_repro.metrics import pooled_distances

    fig: Fig4Spec = spec.figures.require("fig4", spec.name)
    samples = sample_table(adata, spec)
    table = screen_clusters(
        pooled_distances(distances),
        fig.reference,
        top_fraction=fig.top_fraction,
        n_clusters=fig.n_clusters,
    )
    table = table.join(samples, on="sample")
    de = cluster_de(
        model,
        adata,
        table,
        fig.reference,
        mc_samples=fig.de.mc_samples,
        max_cells=fig.de.max_cells,
        admissibility=fig.de.admissibility,
        seed=spec.mrvi.seed,
    )
    enrichment = cluster_enrichment(
        de["mean_lfc"],
        read_gmt(gene_sets) if gene_sets is not None else {},
        min_lfc=fig.de.min_lfc,
        max_genes=fig.de.max_genes,
        min_size=fig.de.min_size,
        max_size=fig.de.max_size,
    )
    return table, de, enrichment


def run_screen_metrics(
    spec: DatasetSpec,
    adata: ad.AnnData,
    matrices: Mapping[str, xr.DataArray],
    *,
    cmap_clusters: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Fig. 4d: each method's intra-drug percentile and CMap silhouette, and the permutations.

    ``matrices``: method -> its sample distances (``mrvi`` permuted for the baseline);
    ``cmap_clusters``: :func:`run_cmap_clusters`' table (``None``: no silhouette).
    """
    from mrvi_repro.metrics import cmap_sample_labels, screen_metric_table

    fig: Fig4Spec = spec.figures.require("fig4", spec.name)
    samples = sample_table(adata, spec)
    labels = None
    if cmap_clusters is not None and fig.cmap is not None:
        clusters = cmap_clusters.set_index(cmap_clusters["product"].astype(str))["cluster"]
        labels = cmap_sample_labels(
            samples[fig.product], samples[fig.dose], clusters, float(fig.cmap.dose)
        )
        logger.info(
            "CMap silhouette over %d samples at dose %s in %d clusters",
            len(labels),
            fig.cmap.dose,
            labels.nunique(),
        )
        if len(labels) < 3 or not 2 <= labels.nunique() < len(labels):
            logger.warning(
                "CMap silhouette not computed: %d labelled samples in %d clusters (it needs at "
                "least 3 samples in 2 to samples - 1 clusters)",
                len(labels),
                labels.nunique(),
            )
            labels = None
    table = screen_metric_table(
        matrices,
        samples[fig.product].astype(str),
        samples[fig.dose],
        cmap_labels=labels,
        n_permutations=fig.n_permutations,
        seed=spec.mrvi.seed,
    )
    for row in table.itertuples():
        logger.info("%s %s: %.4f", row.method, row.metric, row.value)
    return table


def load_screen_results(
    spec: DatasetSpec,
    *,
    h5ad: str | Path,
    distances: str | Path,
    stratification: str | Path,
    clusters: str | Path,
    de: str | Path,
    enrichment: str | Path,
    metrics: str | Path,
) -> ScreenResults:
    """Read an entry's outputs for the screen figure and its claims."""
    import anndata as ad
    import xarray as xr

    from mrvi_repro.metrics import ScreenResults, pooled_distances

    fig: Fig4Spec = spec.figures.require("fig4", spec.name)
    adata = ad.read_h5ad(h5ad, backed="r")
    if fig.phase not in adata.obs.columns:
        msg = f"figures.fig4.phase {fig.phase!r} is not an obs column of {spec.name!r}"
        raise ValueError(msg)
    obs = adata.obs[[spec.sample_key, fig.phase]].copy()
    obs.index = obs.index.astype(str)
    samples = sample_table(adata, spec)
    matrix = xr.load_dataset(distances)["distance"]
    return ScreenResults(
        obs=obs,
        sample_key=spec.sample_key,
        samples=samples,
        clusters=pd.read_csv(clusters, sep="\t", dtype={"sample": str, "cluster": str}).fillna(
            {"cluster": ""}
        ),
        distances=pooled_distances(matrix),
        stratification=xr.load_dataset(stratification),
        de=xr.load_dataset(de),
        enrichment=pd.read_csv(enrichment, sep="\t", dtype={"cluster": str}),
        metrics=pd.read_csv(metrics, sep="\t"),
    )


def write_fig4(
    spec: DatasetSpec,
    results: ScreenResults,
    embedding: pd.DataFrame,
    outputs: Mapping[str, str | Path],
) -> None:
    """Draw the screen figure, each panel to ``outputs[<panel>]`` (PNG)."""
    from mrvi_repro.plotting import save_panels, screen_figure

    fig: Fig4Spec = spec.figures.require("fig4", spec.name)
    save_panels(screen_figure(results, embedding, fig, seed=spec.mrvi.seed), outputs)


def write_screen_claims(
    spec: DatasetSpec, results: ScreenResults, path: str | Path
) -> pd.DataFrame:
    """Check the paper's Fig. 4 statements on the entry's outputs; write and return the table."""
    from mrvi_repro.metrics import claims_with_missing, screen_claim_list, screen_summary

    fig: Fig4Spec = spec.figures.require("fig4", spec.name)
    summary = screen_summary(
        results.metrics, results.clusters, results.samples, results.enrichment, fig.claims
    )
    claims = claims_with_missing(summary, screen_claim_list(fig.claims, results.metrics))
    for row in claims.itertuples():
        logger.info("%s: %s -> %s", row.claim, row.ours, row.holds)
    claims.to_csv(path, sep="\t", index=False)
    return claims
