"""Integration metrics of cell embeddings (paper Supplementary Fig. 2, reference ``bin/scib.py``).

scib-metrics computes them; this module picks the paper's set and names them:

* ``silhouette_label``: silhouette of the cell-type labels, rescaled to (s + 1) / 2 (higher: cell
  types kept apart);
* ``silhouette_batch``: per cell type, 1 - |s| of the silhouette of the nuisance groups (the
  batch, or the sample where the data have no batch), averaged over cell types (higher: the
  groups mixed within each cell type). scib-metrics' Benchmarker replaced it by BRAS; the paper's
  metric is the function itself;
* ``silhouette_sample`` (only with a batch): the same with the samples as groups;
* ``isolated_labels`` (silhouette flavour), ``nmi_kmeans`` and ``ari_kmeans`` (k-means on the
  embedding against the labels).

Silhouettes cost cells squared; above ``max_cells`` a seeded random subset of cells is scored.

Without cell-type labels, or with a single one (the sci-Plex entries label every cell alike), the
label metrics are undefined: they are reported as NaN with the reason in the table's ``note``
column and the log, and the nuisance mixing is scored with all cells as one cell type.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import pandas as pd

from ._metrics import summary_table

logger = logging.getLogger(__name__)

#: Metric names of :func:`integration_metrics`, in output order.
INTEGRATION_METRICS = (
    "silhouette_label",
    "silhouette_batch",
    "silhouette_sample",
    "isolated_labels",
    "nmi_kmeans",
    "ari_kmeans",
)

#: Metrics that need two or more cell-type labels.
LABEL_METRICS = ("silhouette_label", "isolated_labels", "nmi_kmeans", "ari_kmeans")

#: Columns of :func:`integration_metrics`: the summary's, and why a metric is NaN.
INTEGRATION_COLUMNS = ("method", "metric", "value", "note")


def _checked(values: np.ndarray | pd.Series, n: int, name: str) -> np.ndarray:
    out = np.asarray(values).astype(str)
    if out.shape != (n,):
        msg = f"{name} must have one entry per cell ({n}), got shape {out.shape}"
        raise ValueError(msg)
    return out


def _nuisance_silhouette(x: np.ndarray, labels: np.ndarray, groups: np.ndarray) -> float:
    """``scib_metrics.silhouette_batch``, NaN where no cell type has two groups."""
    import scib_metrics

    try:
        return float(scib_metrics.silhouette_batch(x, labels, groups, rescale=True))
    except ValueError as err:  # every label has one group (or one cell per group)
        logger.warning("silhouette_batch undefined (%s): NaN", err)
        return float("nan")


def integration_metrics(
    embeddings: Mapping[str, np.ndarray],
    labels: np.ndarray | pd.Series | None,
    samples: np.ndarray | pd.Series,
    batches: np.ndarray | pd.Series | None = None,
    *,
    max_cells: int | None = 20_000,
    seed: int = 0,
) -> pd.DataFrame:
    """Cell-type conservation and nuisance mixing of each embedding, as a tidy summary table.

    Parameters
    ----------
    embeddings
        Method name -> (cells, dims) embedding of the same cells (e.g. ``mrvi``: MrVI's u,
        ``scvi``, ``pca``).
    labels
        Cell-type label per cell, or ``None``. Without two labels the label metrics
        (:data:`LABEL_METRICS`) are NaN with the reason in ``note``.
    samples
        Sample per cell.
    batches
        Batch per cell, or ``None`` (then ``silhouette_batch`` uses the samples and
        ``silhouette_sample`` is not reported).
    max_cells
        Score a seeded random subset of at most this many cells (``None``: all cells).
    seed
        Seed of that subset.

    Returns
    -------
    The summary records (``method``, ``metric``, ``value``, validated by :func:`summary_table`)
    in the order of :data:`INTEGRATION_METRICS` (those that apply), with a ``note`` column: empty,
    or why the value is NaN.
    """
    import scib_metrics

    if not embeddings:
        msg = "no embedding given"
        raise ValueError(msg)
    n = len(np.asarray(samples))
    smp = _checked(samples, n, "samples")
    lab = np.full(n, "all") if labels is None else _checked(labels, n, "labels")
    bat = None if batches is None else _checked(batches, n, "batches")
    for name, x in embeddings.items():
        if np.ndim(x) != 2 or len(x) != n:
            msg = f"embedding {name!r} must be (cells={n}, dims), got shape {np.shape(x)}"
            raise ValueError(msg)
    skip = ""
    if labels is None:
        skip = "no cell-type labels (labels_key is null)"
    elif np.unique(lab).size < 2:
        skip = f"a single cell-type label ({lab[0]!r})"
    if skip:
        logger.warning(
            "%s: %s reported as NaN; nuisance mixing scored with all cells as one cell type",
            skip,
            ", ".join(LABEL_METRICS),
        )
    rows = np.arange(n)
    if max_cells is not None and n > max_cells:
        rows = np.sort(np.random.default_rng(seed).choice(n, max_cells, replace=False))
        logger.info("integration metrics on %d of %d cells (seed %d)", max_cells, n, seed)
    lab, smp = lab[rows], smp[rows]
    nuisance = smp if bat is None else bat[rows]
    records: list[tuple[str, str, float]] = []
    for name, x in embeddings.items():
        x = np.asarray(x, dtype=np.float32)[rows]
        values = (
            {}
            if skip
            else {"silhouette_label": float(scib_metrics.silhouette_label(x, lab, rescale=True))}
        )
        values["silhouette_batch"] = _nuisance_silhouette(x, lab, nuisance)
        if bat is not None:
            values["silhouette_sample"] = _nuisance_silhouette(x, lab, smp)
        if not skip:
            values["isolated_labels"] = float(scib_metrics.isolated_labels(x, lab, nuisance))
            clusters = scib_metrics.nmi_ari_cluster_labels_kmeans(x, lab)
            values["nmi_kmeans"] = float(clusters["nmi"])
            values["ari_kmeans"] = float(clusters["ari"])
        else:
            values.update(dict.fromkeys(LABEL_METRICS, float("nan")))
        logger.info("%s: %s", name, ", ".join(f"{k} {v:.3f}" for k, v in values.items()))
        records += [
            (name, metric, values[metric]) for metric in INTEGRATION_METRICS if metric in values
        ]
    table = summary_table(records)
    table["note"] = np.where(table["metric"].isin(LABEL_METRICS) & bool(skip), skip, "")
    return table
