"""Shared fixtures: small simulated datasets, built once per test session."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from mrvi_repro._jax_cache import CACHE_ENV
from mrvi_repro.data.semisynthetic import make_semisynthetic
from mrvi_repro.data.simulate import simulate_base
from mrvi_repro.settings.data import SemisyntheticParams, SimulationParams
from mrvi_repro.testing.standins import write_10x_archive

REPO = Path(__file__).resolve().parents[1]

# One persistent compilation cache for the session: the tests and every Snakemake job they start
# (which inherits the environment) compile each kernel once. Set before mrvi_repro.model is
# imported (on import it turns the cache on); a cache named in the environment already is kept.
if not os.environ.get(CACHE_ENV):
    os.environ[CACHE_ENV] = tempfile.mkdtemp(prefix="mrvi-repro-jax-cache-")
    atexit.register(shutil.rmtree, os.environ[CACHE_ENV], ignore_errors=True)

#: A base small enough for fast tests but with every feature of the default one.
TINY_SIM = SimulationParams(n_cells=3000, n_genes=600, n_cell_types=6, n_samples=4, seed=1)


def pytest_collection_modifyitems(config, items):
    """Run the whole-workflow tests first, the longest (``slow``) before the rest.

    With workers (``make test`` runs ``pytest -n 2 --dist loadfile``) the long Snakemake runs then
    start at once and the short tests fill the other workers around them, instead of one long run
    at the end keeping a worker busy alone. The order within a file is kept.
    """

    def rank(item):
        return (
            0
            if item.get_closest_marker("slow")
            else 1
            if item.get_closest_marker("workflow")
            else 2
        )

    items.sort(key=rank)  # stable


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def tiny_base():
    return simulate_base(TINY_SIM)


@pytest.fixture(scope="session")
def tiny_semi(tiny_base):
    return make_semisynthetic(tiny_base, SemisyntheticParams(seed=3))


@pytest.fixture(scope="session")
def tiny_semi_mrvi(tiny_semi):
    """MrVI fitted to the tiny semi-synthetic dataset (40 epochs, default architecture)."""
    from mrvi_repro.model import MrVI, TrainConfig

    return MrVI.fit(
        tiny_semi, sample_key="sample_assignment", train=TrainConfig(max_epochs=40), seed=0
    )


@pytest.fixture(scope="session")
def write_10x_tar():
    """``write_10x_tar(path, counts, gene_ids, symbols, barcodes, *, matrix_dir=None, skip=())``:
    a stand-in of the PBMC 68k download (counts: cells x genes, sparse)."""
    return write_10x_archive


@pytest.fixture(scope="session")
def planted_stenosis():
    """A :class:`~mrvi_repro.metrics.StenosisResults` with planted B2 structure, and its spec.

    Labels Fib (more cells in B2), Lymph (fewer), Peri (the strongest B2 effect size; LUM and
    TGFBI up in B2 there only), Endo, and Imm (not analysed); CDH11 up 1 log2 in B2 in every
    analysed type. Eight biosamples: B1 and B2, biopsy and surgical, NonI and Infl. Marker
    genes ranked for the subclusters Endo and Peri (G1 and LUM, TGFBI higher in them).
    """
    import anndata as ad
    import numpy as np
    import pandas as pd
    import xarray as xr

    from mrvi_repro.analysis import cluster_abundance_test, marker_genes
    from mrvi_repro.metrics import StenosisResults
    from mrvi_repro.settings.figures import Fig5Spec, StenosisClaimsSpec, SubclusterMarkersSpec

    rng = np.random.default_rng(0)
    sizes = {"Fib": 120, "Lymph": 80, "Peri": 60, "Endo": 100, "Imm": 140}
    labels = np.repeat(list(sizes), list(sizes.values()))
    cells = pd.Index([f"c{i}" for i in range(len(labels))])
    samples = pd.DataFrame(
        {
            "behavior": ["B1"] * 4 + ["B2"] * 4,
            "procedure": ["biopsy", "surgical"] * 4,
            "Type": ["NonI", "NonI", "Infl", "Infl"] * 2,
        },
        index=[f"s{i}" for i in range(8)],
    )
    obs = pd.DataFrame(
        {
            "label": labels,
            "biosample": rng.choice(samples.index, len(labels)),
            "coarse": np.where(labels == "Imm", "Immune", "Stromal"),
        },
        index=cells,
    )
    effects = pd.DataFrame(
        {
            "Type: Infl vs NonI": rng.gamma(2.0, 1.0, len(cells)),
            "behavior: B2 vs B1": rng.gamma(1.0, 0.2, len(cells)) + 3.0 * (labels == "Peri"),
        },
        index=cells,
    )
    subset = cells[labels != "Imm"]
    sub_labels = labels[labels != "Imm"]
    genes = ["CDH11", "LUM", "TGFBI", "G1", "G2", "G3", "G4"]
    groups = ["Endo", "Fib", "Lymph", "Peri"]
    means = pd.DataFrame(0.0, index=groups, columns=genes)
    means["CDH11"] = 1.0
    means.loc["Peri", ["LUM", "TGFBI"]] = 2.0
    means.loc[["Endo", "Lymph"], "G1"] = 0.8  # the two endothelial types share a profile
    per_cell = means.loc[sub_labels].to_numpy() + rng.normal(0, 0.1, (len(subset), len(genes)))
    lfc = pd.DataFrame(per_cell.astype(np.float32), index=subset, columns=genes)
    group_means = lfc.groupby(sub_labels).mean().reindex(groups)
    de = xr.Dataset(
        {
            "lfc": (("covariate", "group", "gene"), group_means.to_numpy()[None]),
            "effect_size": (("cell", "covariate"), rng.gamma(2.0, 1.0, (len(subset), 1))),
        },
        coords={
            "covariate": ["behavior: B2 vs B1"],
            "group": groups,
            "gene": genes,
            "cell": subset.to_numpy(),
            "n_cells": ("group", [int((sub_labels == g).sum()) for g in groups]),
        },
    )
    expression = pd.DataFrame(
        np.log1p(rng.poisson(np.exp(per_cell)).astype(float)), index=subset, columns=genes
    )
    shift = pd.Series({"Fib": 0.8, "Lymph": -0.8, "Peri": 0.0, "Endo": 0.0})
    log_ratio = shift.reindex(sub_labels).to_numpy() + rng.normal(0, 0.2, len(subset))
    da = xr.Dataset(
        {"log_ratio": ("cell", log_ratio)},
        coords={"cell": subset.to_numpy()},
        attrs={"covariate": "behavior", "group_a": "B2", "group_b": "B1", "delta": 0.1},
    )
    test = cluster_abundance_test(log_ratio, sub_labels, delta=0.1)
    subclusters = SubclusterMarkersSpec(match="e", n_markers=2)  # Endo and Peri
    chosen = np.isin(sub_labels, subclusters.chosen(groups))
    ranked = ad.AnnData(
        expression.to_numpy()[chosen],
        obs=pd.DataFrame({"label": sub_labels[chosen]}, index=subset[chosen]),
        var=pd.DataFrame(index=genes),
    )
    results = StenosisResults(
        obs=obs.rename(columns={"label": "cell_type"}),
        labels_key="cell_type",
        sample_key="biosample",
        samples=samples,
        effects=effects,
        de=de,
        lfc=lfc,
        expression=expression,
        da=da,
        da_test=test,
        markers=marker_genes(ranked, "label", subclusters.n_markers),
    )
    spec = Fig5Spec(
        collection="procedure",
        de="b2",
        da="b2",
        effects=("Type", "behavior"),
        inflammation="Type",
        expression_gene="CDH11",
        markers=("CDH11", "G1"),
        more_umap_genes=("G1",),
        focus="Peri",
        subclusters=subclusters,
        claims=StenosisClaimsSpec(
            fewer_in_a=("Lymph",),
            more_in_a=("Fib",),
            strongest="Peri",
            up_in_a=("CDH11",),
            unique_to_strongest=("LUM", "TGFBI"),
        ),
    )
    return results, spec
