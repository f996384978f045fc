"""Small cohorts: size-bound settings capped (and logged by key), and steps with nothing to do."""

from __future__ import annotations

import logging

import anndata as ad
import numpy as np
import pytest

from mrvi_repro.data.simulate import simulate_base
from mrvi_repro.pipeline import DatasetSpec
from mrvi_repro.pipeline._sizes import cap
from mrvi_repro.pipeline.analysis import mrvi_da, mrvi_stratification
from mrvi_repro.pipeline.baselines import _nhood_inputs, composition_baseline, deseq2_baseline
from mrvi_repro.pipeline.model import fit_mrvi
from mrvi_repro.settings.data import SimulationParams

#: A cohort's entry with its required keys only (and one sample covariate): every default.
ENTRY = {"source": {"kind": "simulate"}, "sample_key": "sample", "sample_covariates": ["group"]}


@pytest.fixture(scope="module")
def cohort():
    """12 cells of 4 samples (3 each), sample covariate ``group`` a, b, a, b; ``flat`` one value."""
    cells = simulate_base(SimulationParams(n_cells=400, n_genes=60, n_samples=4, seed=3))
    keep = np.concatenate(
        [np.flatnonzero(cells.obs["sample"] == s)[:3] for s in sorted(cells.obs["sample"].unique())]
    )
    cells = cells[keep].copy()
    cells.obs["group"] = cells.obs["sample"].map(
        {"sample_01": "a", "sample_02": "b", "sample_03": "a", "sample_04": "b"}
    )
    cells.obs["flat"] = "x"
    return cells


class _Messages(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture(scope="module")
def fitted(cohort):
    """MrVI fitted by rule fit_mrvi's function (a narrow model, one epoch), and its cap lines."""
    mrvi = {"model": {"n_latent": 4, "n_latent_u": 2, "encoder_n_hidden": 8, "n_mixture": 2}}
    mrvi["train"] = {"max_epochs": 1}
    caps, logger = _Messages(), logging.getLogger("mrvi_repro.pipeline._sizes")
    level = logger.level
    logger.addHandler(caps)
    logger.setLevel(logging.INFO)
    try:
        model = fit_mrvi(cohort, DatasetSpec.from_dict("four", {**ENTRY, "mrvi": mrvi}))
    finally:
        logger.removeHandler(caps)
        logger.setLevel(level)
    return model, caps.messages


@pytest.fixture(scope="module")
def model(fitted):
    return fitted[0]


def test_the_minibatch_is_capped_to_the_training_cells(fitted):
    model, caps = fitted
    assert caps == ["mrvi.train.batch_size = 128 capped to 11: 11 training cells"]
    assert len(model.train_indices) == 11 and len(model.history) == 1


def _capped(caplog):
    return [r.getMessage() for r in caplog.records if "capped" in r.getMessage()]


def test_stratification_caps_its_sizes_to_the_cohort(cohort, model, caplog):
    entry = {**ENTRY, "analysis": {"stratify": {"n_sample_groups": 5}}}
    with caplog.at_level(logging.INFO):
        out = mrvi_stratification(model, cohort, DatasetSpec.from_dict("four", entry))
    assert _capped(caplog) == [
        "analysis.stratify.n_pcs = 50 capped to 6: the upper triangles of 4 x 4 sample distance "
        "matrices have 6 features, of 12 cells",
        "analysis.stratify.n_neighbors = 15 capped to 11: 12 cells",
        "analysis.stratify.n_sample_groups = 5 capped to 4: 4 samples",
    ]
    assert out.sizes["pc"] == 6 and out.attrs["n_neighbors"] == 11
    assert out["sample_group"].attrs["n_groups"] == 4


def test_da_with_nothing_to_compare_fails_naming_the_key(cohort, model):
    spec = DatasetSpec.from_dict("four", {**ENTRY, "sample_covariates": ["flat"]})
    with pytest.raises(ValueError) as info:
        mrvi_da(model, cohort, spec)
    assert str(info.value) == (
        "dataset 'four': DA compares the two values of a sample covariate, and no entry of "
        "sample_covariates ['flat'] has two values ('flat' has 1); set sample_covariates to name "
        "an obs column constant within each sample with two values"
    )
    bare = DatasetSpec.from_dict("four", {**ENTRY, "sample_covariates": []})
    with pytest.raises(ValueError, match=r"sample_covariates \[\] has two values \(none is named"):
        mrvi_da(model, cohort, bare)
    da = mrvi_da(model, cohort, DatasetSpec.from_dict("four", ENTRY))
    assert list(da.data_vars) == ["log_ratio_group"] and da.sizes["cell"] == 12


def test_baseline_graphs_are_capped_to_the_cohort(cohort, caplog):
    reps = ad.AnnData(obs=cohort.obs.copy())
    reps.obsm["X_pca"] = np.random.default_rng(0).normal(size=(12, 8)).astype(np.float32)
    spec = DatasetSpec.from_dict("four", ENTRY)
    with caplog.at_level(logging.INFO):
        _, covariates, milo = _nhood_inputs(cohort, reps, spec, "milo")
        _, _, milode = _nhood_inputs(cohort, reps, spec, "milode")
    assert covariates == ["group"]
    assert (milo.k, milo.n_dims) == (11, 8) and (milode.k, milode.k_init, milode.n_dims) == (
        11,
        11,
        8,
    )
    assert _capped(caplog) == [
        "baselines.milo.config.n_dims = 30 capped to 8: the pca representation has 8 dimensions",
        "baselines.milo.config.k = 30 capped to 11: 12 cells",
        "baselines.milode.config.n_dims = 30 capped to 8: the pca representation has 8 dimensions",
        "baselines.milode.config.k = 20 capped to 11: 12 cells",
        "baselines.milode.config.k_init = 50 capped to 11: 12 cells",
    ]
    caplog.clear()
    with caplog.at_level(logging.INFO):
        dist = composition_baseline(reps, spec, "pca")
    assert _capped(caplog) == ["baselines.composition.n_neighbors = 30 capped to 11: 12 cells"]
    assert dist.sizes["sample_x"] == 4


def test_a_size_no_cap_can_meet_names_the_keys(cohort):
    with pytest.raises(ValueError) as info:
        cap(30, 1, "baselines.composition.n_neighbors", "2 cells", minimum=2)
    assert str(info.value) == (
        "baselines.composition.n_neighbors = 30: the data allow at most 1 (2 cells); the step "
        "needs 2"
    )
    # DESeq2 on samples of at least 4 cells: none is left, and the error says which keys set it
    spec = DatasetSpec.from_dict("four", {**ENTRY, "baselines": {"deseq2": {"min_cells": 4}}})
    with pytest.raises(ValueError, match="DESeq2 needs at least 2 samples") as info:
        deseq2_baseline(cohort, spec)
    assert info.value.__notes__ == [
        "settings of this step in the dataset entry: baselines.deseq2.group = 'all', "
        "baselines.deseq2.covariates = None, baselines.deseq2.batch_in_design = True, "
        "baselines.deseq2.min_cells = 4"
    ]
