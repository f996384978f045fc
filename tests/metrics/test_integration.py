"""Integration metrics: the paper's silhouettes through scib-metrics, on embeddings with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from mrvi_repro.metrics import INTEGRATION_METRICS, LABEL_METRICS, integration_metrics


def _data(rng, n=300):
    labels = np.repeat(["t0", "t1", "t2"], n // 3)
    samples = np.tile(["s0", "s1"], n // 2)
    centers = {"t0": [0, 0], "t1": [10, 0], "t2": [0, 10]}
    base = np.array([centers[lab] for lab in labels], dtype=float)
    mixed = base + rng.normal(size=(n, 2))
    # the same cell types, but each split by sample
    split = mixed + np.where(samples == "s0", 3.0, -3.0)[:, None] * np.array([1.0, 1.0])
    blurred = rng.normal(size=(n, 2))  # cell types lost
    return labels, samples, {"mixed": mixed, "split": split, "blurred": blurred}


def test_silhouettes_rank_known_embeddings():
    labels, samples, emb = _data(np.random.default_rng(0))
    table = integration_metrics(emb, labels, samples)
    v = table.set_index(["method", "metric"])["value"]
    assert v["mixed", "silhouette_label"] > 0.8 > v["blurred", "silhouette_label"]
    assert v["mixed", "silhouette_batch"] > v["split", "silhouette_batch"]
    sil = v[v.index.get_level_values("metric").str.startswith("silhouette")]
    assert 0 <= sil.min() and sil.max() <= 1  # rescaled silhouettes (ARI may dip below 0)
    # without a batch the samples are the nuisance groups and no silhouette_sample is reported
    assert set(table["metric"]) == set(INTEGRATION_METRICS) - {"silhouette_sample"}


def test_batches_add_the_sample_silhouette():
    rng = np.random.default_rng(1)
    labels, samples, emb = _data(rng)
    batches = np.where(np.isin(samples, ["s0"]), "b0", "b1")
    table = integration_metrics({"mixed": emb["mixed"]}, labels, samples, batches)
    assert list(table["metric"]) == list(INTEGRATION_METRICS)


def test_subsampling_and_errors():
    labels, samples, emb = _data(np.random.default_rng(2))
    a = integration_metrics({"mixed": emb["mixed"]}, labels, samples, max_cells=150, seed=0)
    b = integration_metrics({"mixed": emb["mixed"]}, labels, samples, max_cells=150, seed=0)
    assert a.equals(b)
    with pytest.raises(ValueError, match="one entry per cell"):
        integration_metrics({"mixed": emb["mixed"]}, labels, samples[:10])
    with pytest.raises(ValueError, match="cells=300"):
        integration_metrics({"bad": emb["mixed"][:10]}, labels, samples)
    with pytest.raises(ValueError, match="no embedding"):
        integration_metrics({}, labels, samples)


@pytest.mark.parametrize("labels", [None, np.full(300, "_dummy")], ids=["no labels", "one label"])
def test_without_two_labels_the_label_metrics_are_nan_with_a_reason(labels):
    _, samples, emb = _data(np.random.default_rng(3))
    table = integration_metrics({"mixed": emb["mixed"], "split": emb["split"]}, labels, samples)
    label_rows = table[table["metric"].isin(LABEL_METRICS)]
    assert len(label_rows) == 2 * len(LABEL_METRICS)
    assert label_rows["value"].isna().all()
    assert (
        label_rows["note"].str.contains("labels_key is null" if labels is None else "_dummy").all()
    )
    # the nuisance mixing is still scored: samples mixed beat samples split apart
    v = table.set_index(["method", "metric"])["value"]
    assert v["mixed", "silhouette_batch"] > v["split", "silhouette_batch"] + 0.2
    assert (table.loc[~table["metric"].isin(LABEL_METRICS), "note"] == "").all()
