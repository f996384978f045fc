"""The ``baselines`` section of a dataset entry: defaults, parsing and the errors that name keys."""

import pytest

from mrvi_repro.baselines import MiloConfig, MiloDEConfig
from mrvi_repro.model import SCVIConfig, TrainConfig
from mrvi_repro.pipeline import (
    BaselinesSpec,
    CompositionSpec,
    DatasetSpec,
    DESeq2Spec,
    MiloDESpec,
    MiloSpec,
    PCASpec,
    SCVISpec,
    SpecError,
)

MINIMAL = {"source": {"kind": "simulate"}, "sample_key": "sample"}
LABELLED = {**MINIMAL, "labels_key": "cell_type", "sample_covariates": ["disease", "site"]}


def test_an_entry_without_the_section_gets_the_papers_defaults():
    spec = DatasetSpec.from_dict("x", MINIMAL).baselines
    assert spec == BaselinesSpec() and spec.seed == 0
    assert spec.scvi == SCVISpec(model=SCVIConfig(), train=TrainConfig(), seed=0)
    assert spec.pca.n_comps == 50
    assert spec.composition == CompositionSpec(
        clusters="auto", cluster_resolution=1.0, subcluster_resolution=1.0, n_neighbors=30
    )
    assert spec.deseq2 == DESeq2Spec(
        group="all", covariates=None, batch_in_design=True, min_cells=3
    )
    assert spec.milo == MiloSpec(config=MiloConfig(), covariates=None, representation="pca")
    assert spec.milode == MiloDESpec(config=MiloDEConfig(), covariates=None, representation="pca")
    assert DatasetSpec.from_dict("x", {**MINIMAL, "baselines": {}}).baselines == spec


def test_the_section_is_parsed():
    entry = {
        **LABELLED,
        "baselines": {
            "scvi": {"model": {"n_latent": 8}, "train": {"max_epochs": 5, "lr": 1e-3}, "seed": 2},
            "pca": {"n_comps": 20},
            "composition": {"clusters": "leiden", "cluster_resolution": 0.5},
            "deseq2": {"group": 0, "covariates": ["site"], "batch_in_design": False},
            "milo": {"config": {"k": 10, "solver": "edger"}, "covariates": ["disease"]},
            "milode": {"config": {"order": 1, "min_count": 0}, "representation": "scvi"},
            "seed": 7,
        },
    }
    spec = DatasetSpec.from_dict("x", entry).baselines
    assert spec.scvi == SCVISpec(
        model=SCVIConfig(n_latent=8), train=TrainConfig(max_epochs=5, lr=1e-3), seed=2
    )
    assert spec.pca == PCASpec(n_comps=20) and spec.seed == 7
    assert spec.composition.clusters == "leiden" and spec.composition.cluster_resolution == 0.5
    assert spec.composition.subcluster_resolution == 1.0
    # a label written as a YAML number is the label's string; covariates become a tuple
    assert spec.deseq2 == DESeq2Spec(group="0", covariates=("site",), batch_in_design=False)
    assert spec.milo == MiloSpec(config=MiloConfig(k=10, solver="edger"), covariates=("disease",))
    assert spec.milode == MiloDESpec(
        config=MiloDEConfig(order=1, min_count=0), representation="scvi"
    )


@pytest.mark.parametrize(
    ("baselines", "match"),
    [
        ({"scVI": {}}, r"dataset 'x': baselines: unknown key\(s\) \['scVI'\]"),
        ({"scvi": {"modle": {}}}, r"baselines.scvi: unknown key\(s\) \['modle'\]"),
        (
            {"scvi": {"model": {"n_latnet": 4}}},
            r"baselines.scvi.model: scVI config: unknown key\(s\) \['n_latnet'\]",
        ),
        (
            {"scvi": {"train": {"epochs": 4}}},
            r"baselines.scvi.train: train config: unknown key\(s\) \['epochs'\]",
        ),
        ({"pca": {"n_pcs": 30}}, r"baselines.pca: unknown key\(s\) \['n_pcs'\]"),
        ({"composition": {"k": 15}}, r"baselines.composition: unknown key\(s\) \['k'\]"),
        ({"deseq2": {"covariate": "site"}}, r"baselines.deseq2: unknown key\(s\) \['covariate'\]"),
        ({"milo": {"k": 10}}, r"baselines.milo: unknown key\(s\) \['k'\]"),
        ({"milode": {"config": {"K": 10}}}, r"baselines.milode.config: unknown key\(s\) \['K'\]"),
    ],
)
def test_unknown_keys_are_named(baselines, match):
    with pytest.raises(SpecError, match=match):
        DatasetSpec.from_dict("x", {**LABELLED, "baselines": baselines})


@pytest.mark.parametrize(
    ("entry", "match"),
    [
        (
            {**LABELLED, "baselines": {"pca": {"n_comps": 0}}},
            r"baselines.pca: n_comps must be >= 1",
        ),
        (
            {**LABELLED, "baselines": {"composition": {"clusters": "kmeans"}}},
            r"baselines.composition: clusters must be one of \['auto', 'labels', 'leiden'\]",
        ),
        (
            {**LABELLED, "baselines": {"composition": {"subcluster_resolution": 0}}},
            r"baselines.composition: cluster_resolution and subcluster_resolution must be > 0",
        ),
        (
            {**LABELLED, "baselines": {"deseq2": {"min_cells": 0}}},
            r"baselines.deseq2: min_cells must be >= 1",
        ),
        (
            {**LABELLED, "baselines": {"scvi": {"train": {"train_size": 2}}}},
            r"baselines.scvi.train: train_size must lie in \(0, 1\]",
        ),
        ({**LABELLED, "baselines": {"scvi": {"seed": 1.5}}}, r"baselines.scvi.seed must be an int"),
        ({**LABELLED, "baselines": {"seed": "zero"}}, r"baselines.seed must be an integer"),
        # settings that need other keys of the entry
        (
            {**MINIMAL, "baselines": {"composition": {"clusters": "labels"}}},
            r"baselines.composition.clusters 'labels' needs a labels_key",
        ),
        (
            {**MINIMAL, "baselines": {"deseq2": {"group": "B cells"}}},
            r"baselines.deseq2.group 'B cells' needs a labels_key",
        ),
        (
            {**LABELLED, "baselines": {"deseq2": {"covariates": ["site", "age"]}}},
            r"baselines.deseq2.covariates \['age'\] are not among the sample_covariates",
        ),
        (
            {**LABELLED, "baselines": {"milo": {"config": {"prop": 0}}}},
            r"baselines.milo.config: invalid Milo settings: prop must lie in \(0, 1\]",
        ),
        (
            {**LABELLED, "baselines": {"milode": {"config": {"order": 3}}}},
            r"baselines.milode.config: invalid miloDE settings: order must be 1 or 2",
        ),
        (
            {**LABELLED, "baselines": {"milo": {"representation": "umap"}}},
            r"baselines.milo: representation must be one of \['pca', 'scvi'\]",
        ),
        (
            {**LABELLED, "baselines": {"milode": {"covariates": []}}},
            r"baselines.milode: covariates must name at least one sample covariate",
        ),
        (
            {**LABELLED, "baselines": {"milode": {"covariates": ["site", "age"]}}},
            r"baselines.milode.covariates \['age'\] are not among the sample_covariates",
        ),
    ],
)
def test_bad_values_are_named(entry, match):
    with pytest.raises(SpecError, match=match):
        DatasetSpec.from_dict("x", entry)
