"""Snakemake itself, run in a subprocess: dry runs, config errors, and a full run of a tiny config."""

from __future__ import annotations

import json
import re

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml

from mrvi_repro._jax_cache import CACHE_ENV, machine_kind
from mrvi_repro.data.contract import validate_adata
from mrvi_repro.data.simulate import simulate_base
from mrvi_repro.plotting import FIG2_PANELS
from mrvi_repro.settings.data import SimulationParams

pytestmark = pytest.mark.workflow

TINY_SEMI = {
    "description": "tiny semi-synthetic dataset for tests",
    "source": {"kind": "simulate", "n_cells": 2500, "n_genes": 400, "seed": 7},
    "sample_key": "sample_assignment",
    "labels_key": "leiden",
    "sample_covariates": [
        "covariate_1",
        "covariate_1_top",
        "covariate_1_G1",
        "covariate_2",
        "covariate_2_strong",
    ],
    "min_cells_per_sample": 10,
    "hvg": {"n_top_genes": 250},
    "semisynthetic": {"seed": 1},
}

#: MrVI settings small enough for a test: a few epochs of a narrow model.
TINY_MRVI = {
    "model": {"n_latent": 6, "n_latent_u": 3, "encoder_n_hidden": 32, "n_mixture": 4},
    "train": {"max_epochs": 3, "batch_size": 256},
}


#: Analysis settings small enough for a test: few draws, few PCs.
TINY_ANALYSIS = {"de": {"mc_samples": 3}, "stratify": {"n_pcs": 5, "resolution": 0.1}}


#: Baseline settings small enough for a test: a few epochs of a narrow scVI, 10 PCs.
TINY_BASELINES = {
    "scvi": {"model": {"n_latent": 4, "encoder_n_hidden": 32}, "train": {"max_epochs": 3}},
    "pca": {"n_comps": 10},
}


#: The two-valued covariates of TINY_SEMI (DA and DESeq2 test each).
BINARY = ["covariate_1_G1", "covariate_1_top", "covariate_2_strong"]

#: Rules downstream of every model and baseline: metrics and figures (and the run-time figure,
#: which reads every rule's benchmark file).
REPORTING = {
    "da_metrics",
    "de_metrics",
    "tree_metrics",
    "integration_metrics",
    "metrics_summary",
    "embeddings_2d",
    "fig2_panels",
    "metric_figures",
    "runtime_figure",
}


def jobs(out, *, reporting=False):
    """Rule -> number of jobs, from the job table of a (dry) run, without `all` (and without the
    metric and figure rules of REPORTING unless asked)."""
    table = dict(re.findall(r"^(\w+)\s+(\d+)$", out, flags=re.MULTILINE))
    skip = {"all", "total"} | (set() if reporting else REPORTING)
    return {rule: int(n) for rule, n in table.items() if rule not in skip}


def write_config(tmp_path, datasets, extra=None):
    paths = []
    for name, entry in datasets.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(entry))
        paths.append(str(path))
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"datasets": paths, **(extra or {})}))
    return config


def test_dry_run_default_config(repo, tmp_path, snakemake):
    rc, out = snakemake(
        repo, "-n", "--directory", tmp_path, "--configfile", repo / "config" / "config.yaml"
    )
    assert rc == 0, out
    for rule in ("simulate_base", "preprocess_dataset", "fit_mrvi", "latent_mrvi", "all"):
        assert f"rule {rule}:" in out or f"{rule} " in out
    assert "results/semisynthetic/data/preprocessed.h5ad" in out
    assert "results/semisynthetic/model/mrvi_latent.h5ad" in out
    for rep in ("pca", "scvi"):
        assert f"results/semisynthetic/baselines/composition_{rep}.nc" in out
    for name in ("deseq2.tsv", "milo.nc", "milode.nc", "milode.tsv"):
        assert f"results/semisynthetic/baselines/{name}" in out
    assert "results/semisynthetic/metrics/summary.tsv" in out
    assert "results/semisynthetic/figures/fig2e_pr_curves.png" in out


def test_unknown_config_key_is_named(repo, tmp_path, snakemake):
    config = write_config(tmp_path, {"tiny": TINY_SEMI}, extra={"dataset": "oops"})
    rc, out = snakemake(repo, "-n", "--directory", tmp_path, "--configfile", config)
    assert rc != 0
    assert "config is invalid" in out and "'dataset' was unexpected" in out


def test_bad_dataset_entry_is_named(repo, tmp_path, snakemake):
    entry = {**TINY_SEMI, "hvg": {"n_top_genes": 250, "flavour": "seurat_v3"}}
    config = write_config(tmp_path, {"tiny": entry})
    rc, out = snakemake(repo, "-n", "--directory", tmp_path, "--configfile", config)
    assert rc != 0
    assert "tiny.yaml' is invalid" in out
    assert "hvg: Additional properties are not allowed ('flavour' was unexpected)" in out


def test_missing_dataset_file(repo, tmp_path, snakemake):
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"datasets": [str(tmp_path / "nowhere.yaml")]}))
    rc, out = snakemake(repo, "-n", "--directory", tmp_path, "--configfile", config)
    assert rc != 0 and "entry file" in out and "not found" in out


def test_full_run_of_a_tiny_config(repo, tmp_path, snakemake, one_thread):
    # a simulated semi-synthetic dataset and a user's own .h5ad, side by side
    user = simulate_base(
        SimulationParams(n_cells=800, n_genes=300, n_samples=4, n_batches=2, seed=2)
    )
    # samples 1 and 3 are in batch 1, 2 and 4 in batch 2: a donor group in each batch
    user.obs["donor_group"] = user.obs["sample"].map(
        {"sample_01": "a", "sample_02": "a", "sample_03": "b", "sample_04": "b"}
    )
    user.write_h5ad(tmp_path / "mine.h5ad")
    mine = {
        "source": {"kind": "h5ad", "path": "mine.h5ad"},
        "sample_key": "sample",
        "batch_key": "batch",
        "labels_key": "cell_type",
        "sample_covariates": ["donor_group"],
        "hvg": {"n_top_genes": 150},
        "mrvi": {**TINY_MRVI, "seed": 3},
        # a second MrVI fit with the cell-type-guided prior, scored beside the first
        "mrvi_variants": {"celltype_prior": {"model": {"prior": "celltype"}}},
        # DESeq2 on all cells, Milo and miloDE on the PCA: designs ~ batch + donor_group. Four
        # samples leave one residual degree of freedom: miloDE needs neighbourhoods large enough to
        # hold cells of both batches (k 30; with k 10 most are not testable)
        "baselines": {
            **TINY_BASELINES,
            "milo": {"config": {"k": 10}},
            "milode": {"config": {"k": 30, "prop": 0.1}},
        },
        "analysis": TINY_ANALYSIS,  # DE of all sample covariates (donor_group)
    }
    # the semi-synthetic set: DESeq2 in subset A (Leiden cluster 0), as the default config does
    semi = {
        **TINY_SEMI,
        "mrvi": TINY_MRVI,
        "baselines": {
            **TINY_BASELINES,
            "deseq2": {"group": 0},
            "milo": {"config": {"k": 10}, "covariates": ["covariate_2_strong"]},
            "milode": {"config": {"k": 15, "prop": 0.1}, "covariates": ["covariate_1_G1"]},
        },
        "analysis": {
            **TINY_ANALYSIS,
            "da": {"estimators": ["mixture", "per_dimension"]},
            "de": {"mc_samples": 3, "covariates": ["covariate_1_G1"]},
        },
        # named comparisons: sample groups of subset A's cluster, DE between them there (with
        # gene modules), DA of the planted covariate with the cluster-level test per subset
        "comparisons": {
            "sample_groups": [{"name": "a_groups", "cells": {"subset": "A"}, "n_groups": 2}],
            "de": [
                {
                    "name": "a_groups_de",
                    "covariates": ["a_groups"],
                    "cells": {"cluster_of": "a_groups"},
                    "mc_samples": 2,
                    "modules": {"resolution": 0.5},
                }
            ],
            "da": [{"name": "strong", "covariate": "covariate_2_strong", "groupby": "subset"}],
        },
    }
    config = write_config(tmp_path, {"tiny": semi, "mine": mine})
    # without the test session's shared cache: the workflow's own (config jax_cache)
    rc, out = snakemake(
        repo,
        "--cores",
        "2",
        *one_thread,
        "--directory",
        tmp_path,
        "--configfile",
        config,
        env={CACHE_ENV: None},
    )
    assert rc == 0, out[-5000:]
    # the jobs shared the compilation cache in the working directory
    assert len(list((tmp_path / ".jax_cache" / machine_kind()).glob("*-cache"))) >= 10

    results = tmp_path / "results"
    tiny = ad.read_h5ad(results / "tiny" / "data" / "preprocessed.h5ad")
    assert tiny.n_vars == 250 and tiny.X.format == "csr"
    validate_adata(
        tiny,
        sample_key="sample_assignment",
        labels_key="leiden",
        sample_covariates=TINY_SEMI["sample_covariates"],
        min_cells_per_sample=10,
    )
    samples = pd.read_csv(results / "tiny" / "data" / "samples.tsv", sep="\t")
    assert len(samples) == 32 and samples["n_cells"].sum() == tiny.n_obs

    own = ad.read_h5ad(results / "mine" / "data" / "preprocessed.h5ad")
    assert own.n_vars == 150 and own.n_obs == 800
    assert not (results / "mine" / "raw").exists()  # a user's file is read in place

    log = (results / "tiny" / "logs" / "preprocess_dataset.log").read_text()
    assert "HVG (seurat_v3): kept 250 genes" in log and "32 samples" in log
    for rule in ("simulate_base", "preprocess_dataset", "fit_mrvi", "latent_mrvi"):
        bench = pd.read_csv(results / "tiny" / "benchmarks" / f"{rule}.tsv", sep="\t")
        assert {"s", "max_rss"} <= set(bench.columns)

    # MrVI: a saved model, its history and the latents of every cell, for both datasets
    for name, data in (("tiny", tiny), ("mine", own)):
        model_dir = results / name / "model"
        assert sorted(p.name for p in model_dir.iterdir()) == [
            "mrvi",
            "mrvi_history.tsv",
            "mrvi_latent.h5ad",
            "scvi",
            "scvi_history.tsv",
            *(["variants"] if name == "mine" else []),
        ]  # no partial model folder left behind
        assert {"model.json", "params.msgpack"} <= {p.name for p in (model_dir / "mrvi").iterdir()}
        history = pd.read_csv(model_dir / "mrvi_history.tsv", sep="\t")
        assert list(history["epoch"]) == [1, 2, 3]
        assert np.isfinite(history[["train_loss", "val_neg_elbo"]].to_numpy()).all()
        latent = ad.read_h5ad(model_dir / "mrvi_latent.h5ad")
        assert list(latent.obs_names) == list(data.obs_names)
        assert list(latent.uns["latent_keys"]) == ["X_mrvi_u", "X_mrvi_z"]
        assert latent.obsm["X_mrvi_u"].shape == (data.n_obs, 3)
        assert latent.obsm["X_mrvi_z"].shape == (data.n_obs, 6)
        assert all(np.isfinite(latent.obsm[k]).all() for k in latent.uns["latent_keys"])
        log = (results / name / "logs" / "fit_mrvi.log").read_text()
        for epoch in (1, 2, 3):
            assert f"epoch {epoch}/3: train loss" in log
        assert "latents of" in (results / name / "logs" / "latent_mrvi.log").read_text()
    assert latent.uns["mrvi"]["batch_key"] == "batch"  # the user's data has two batches

    # analyses: mean sample distances per label group, DA per two-valued covariate, DE of the
    # design (LFCs per label group), stratification
    for name, data, groupby, binary, design in (
        ("tiny", tiny, "leiden", BINARY, "covariate_1_G1_True"),
        ("mine", own, "cell_type", ["donor_group"], "donor_group_b"),
    ):
        dist = xr.open_dataarray(results / name / "analysis" / "sample_distances.nc")
        assert dist.dims == ("group", "sample_x", "sample_y")
        assert sorted(dist["group"].values) == sorted(data.obs[groupby].astype(str).unique())
        assert int(dist["n_cells"].sum()) == data.n_obs
        assert np.isfinite(dist.values).all()
        da = xr.open_dataset(results / name / "analysis" / "da.nc")
        suffixes = ("", "_per_dimension") if name == "tiny" else ("",)
        assert sorted(da.data_vars) == [
            f"log_ratio_{c}{x}" for c in sorted(binary) for x in suffixes
        ]
        assert da.sizes["cell"] == data.n_obs
        assert "DA for" in (results / name / "logs" / "differential_abundance.log").read_text()
        de = xr.open_dataset(results / name / "analysis" / "de.nc")
        assert de["effect_size"].dims == ("cell", "covariate") and de.sizes["cell"] == data.n_obs
        assert list(de["covariate"].values) == [design]
        assert de["lfc"].dims == ("covariate", "group", "gene") and de.sizes["gene"] == data.n_vars
        assert sorted(de["group"].values) == sorted(data.obs[groupby].astype(str).unique())
        assert np.isfinite(de["effect_size"]).all() and np.isfinite(de["lfc"]).all()
        assert (0 <= de["padj"]).all() and (de["padj"] <= 1).all()
        strat = xr.open_dataset(results / name / "analysis" / "stratification.nc")
        assert strat.sizes["cell"] == data.n_obs and strat.sizes["pc"] == 5
        n_samples = dist.sizes["sample_x"]
        assert strat["linkage"].shape == (strat.sizes["cluster"], n_samples - 1, 4)
        assert strat["sample_group"].dims == ("cluster", "sample")
        assert set(np.unique(strat["sample_group"])) <= {1, 2, 3}

    # the user's entry's MrVI variant: fitted with its own prior, scored beside MrVI
    variant = results / "mine" / "model" / "variants" / "celltype_prior"
    assert (
        json.loads((variant / "mrvi" / "model.json").read_text())["config"]["prior"] == "celltype"
    )
    integration = pd.read_csv(results / "mine" / "metrics" / "integration.tsv", sep="\t")
    assert list(dict.fromkeys(integration["method"])) == [
        "mrvi",
        "mrvi_celltype_prior",
        "scvi",
        "pca",
    ]

    # named comparisons of the tiny entry
    comp = results / "tiny" / "comparisons"
    groups = pd.read_csv(comp / "sample_groups.tsv", sep="\t")
    assert len(groups) == 32 and set(groups["a_groups"]) == {"g1", "g2"}
    de = xr.open_dataset(comp / "de" / "a_groups_de" / "de.nc")
    assert list(de["covariate"].values) == ["a_groups: g2 vs g1"]
    lfc = xr.open_dataset(comp / "de" / "a_groups_de" / "lfc.zarr", engine="zarr", chunks=None)
    assert lfc["lfc"].sizes["cell"] == de.sizes["cell"] < tiny.n_obs
    assert de["module_activity"].sizes["cell"] == de.sizes["cell"]
    modules = pd.read_csv(comp / "de" / "a_groups_de" / "modules.tsv", sep="\t")
    assert len(modules) == tiny.n_vars
    test = pd.read_csv(comp / "da" / "strong" / "cluster_test.tsv", sep="\t")
    assert sorted(test["cluster"]) == ["A", "B", "C", "Other"]
    assert np.isfinite(test["pvalue"]).all()

    # baselines: scVI, representations, composition distances on each, DESeq2 pseudobulk
    for name, data, groupby, tested in (
        ("tiny", tiny, "leiden", BINARY),
        ("mine", own, "cell_type", ["donor_group"]),
    ):
        history = pd.read_csv(results / name / "model" / "scvi_history.tsv", sep="\t")
        assert list(history["epoch"]) == [1, 2, 3]
        reps = ad.read_h5ad(results / name / "baselines" / "representations.h5ad")
        assert list(reps.obs_names) == list(data.obs_names)
        assert list(reps.uns["latent_keys"]) == ["X_pca", "X_scvi"]
        assert reps.obsm["X_pca"].shape == (data.n_obs, 10)
        assert reps.obsm["X_scvi"].shape == (data.n_obs, 4)
        for rep in ("pca", "scvi"):
            dist = xr.open_dataarray(results / name / "baselines" / f"composition_{rep}.nc")
            assert dist.dims == ("group", "sample_x", "sample_y")
            assert sorted(dist["group"].values) == sorted(data.obs[groupby].astype(str).unique())
            assert int(dist["n_cells"].sum()) == data.n_obs
            assert dist.attrs["representation"] == rep
            bench = results / name / "benchmarks" / "composition_distances" / f"{rep}.tsv"
            assert {"s", "max_rss"} <= set(pd.read_csv(bench, sep="\t").columns)
        table = pd.read_csv(results / name / "baselines" / "deseq2.tsv", sep="\t")
        assert sorted(table["covariate"].unique()) == sorted(tested)
        assert len(table) == len(tested) * data.n_vars
        assert np.isfinite(table["pvalue"]).mean() > 0.5
    log = (results / "mine" / "logs" / "deseq2_pseudobulk.log").read_text()
    assert "(~ batch + donor_group)" in log and "in all cells" in log

    # Milo (per-cell log ratios, the layout of da.nc) and miloDE (LFCs per label group, the layout
    # of de.nc's lfc, and the per-neighbourhood table)
    for name, data, groupby, da_cov, de_cov, design in (
        ("tiny", tiny, "leiden", "covariate_2_strong", "covariate_1_G1", ""),
        ("mine", own, "cell_type", "donor_group", "donor_group", "batch + "),
    ):
        milo = xr.open_dataset(results / name / "baselines" / "milo.nc")
        assert list(milo["covariate"].values) == [da_cov] and milo.sizes["cell"] == data.n_obs
        assert milo[f"log_ratio_{da_cov}"].attrs["design"] == f"~ {design}{da_cov}"
        assert np.isfinite(milo[f"log_ratio_{da_cov}"]).mean() > 0.5
        milode = xr.open_dataset(results / name / "baselines" / "milode.nc")
        assert milode["lfc"].dims == ("covariate", "group", "gene")
        assert list(milode["covariate"].values) == [de_cov]
        assert sorted(milode["group"].values) == sorted(data.obs[groupby].astype(str).unique())
        assert milode["design"].item() == f"~ {design}{de_cov}" and milode["n_tested"].item() > 0
        table = pd.read_csv(results / name / "baselines" / "milode.tsv", sep="\t")
        assert (table["covariate"] == de_cov).all() and table["test_performed"].any()
        for rule in ("milo", "milode"):
            bench = pd.read_csv(results / name / "benchmarks" / f"{rule}.tsv", sep="\t")
            assert {"s", "max_rss"} <= set(bench.columns)
    assert "leiden == '0'" in (results / "tiny" / "logs" / "deseq2_pseudobulk.log").read_text()

    # metrics: the semi-synthetic set is scored against its truth, the user's set gets the
    # integration metrics; one tidy summary each
    summary = pd.read_csv(results / "tiny" / "metrics" / "summary.tsv", sep="\t")
    assert list(summary.columns) == ["method", "metric", "value"]
    pairs = set(zip(summary["method"], summary["metric"], strict=True))
    expected = {("mrvi", "da_pr_auc"), ("mrvi_per_dimension", "da_pr_auc"), ("milo", "da_pr_auc")}
    expected |= {("mrvi", "de_pearson_r"), ("milode", "de_pearson_r")}
    expected |= {(m, "rf_distance") for m in ("mrvi", "composition_pca", "composition_scvi")}
    expected |= {
        (m, k) for m in ("mrvi", "scvi", "pca") for k in ("silhouette_label", "silhouette_batch")
    }
    assert expected <= pairs, pairs
    ratio = summary["metric"] == "distance_ratio_other"  # a ratio of mean distances: >= 0
    assert summary.loc[~ratio, "value"].between(-1, 1).all(), summary
    assert (summary.loc[ratio, "value"] >= 0).all() and ratio.sum() == 3, summary
    pr = pd.read_csv(results / "tiny" / "metrics" / "da_pr.tsv", sep="\t")
    assert set(pr["method"]) == {"mrvi", "mrvi_per_dimension", "milo"}
    assert pr["recall"].between(0, 1).all()
    mine_summary = pd.read_csv(results / "mine" / "metrics" / "summary.tsv", sep="\t")
    assert set(mine_summary["method"]) == {"mrvi", "mrvi_celltype_prior", "scvi", "pca"}
    assert "silhouette_sample" in set(mine_summary["metric"])  # the user's data has batches
    # figures: Fig. 2 panels for the semi-synthetic set only; metric tables and run times for both
    png = b"\x89PNG\r\n\x1a\n"
    for panel in FIG2_PANELS:
        assert (results / "tiny" / "figures" / f"{panel}.png").read_bytes()[:8] == png
    assert not (results / "mine" / "figures" / "fig2e_pr_curves.png").exists()
    for name in ("tiny", "mine"):
        for fig in ("summary_metrics", "integration_metrics", "runtime"):
            assert (results / name / "figures" / f"{fig}.png").read_bytes()[:8] == png
    # the report holds every figure with its caption
    report = tmp_path / "report.html"
    rc, out = snakemake(repo, "--report", report, "--directory", tmp_path, "--configfile", config)
    assert rc == 0, out[-3000:]
    html = report.read_text()
    assert "fig2e_pr_curves.png" in html and "Precision-recall curves" in html
    # captions and the landing page render without a docutils error or warning (a "System
    # Message" box in the report); the landing page is there; panels are labelled by panel
    assert "System Message" not in html and "system-message" not in html
    assert "Which of the paper" in html and "mrvi_per_dimension" in html
    assert '"labels": {"panel": "2c.1", "content": "sample distances, subset A"}' in html

    rc, out = snakemake(repo, "-n", "--directory", tmp_path, "--configfile", config)
    assert rc == 0 and "Nothing to be done" in out

    # another composition setting reruns the composition distances only
    changed = {**mine, "baselines": {**mine["baselines"], "composition": {"n_neighbors": 10}}}
    rc, out = snakemake(
        repo,
        "-n",
        "--directory",
        tmp_path,
        "--configfile",
        write_config(tmp_path, {"tiny": semi, "mine": changed}),
    )
    assert rc == 0, out
    assert jobs(out) == {"composition_distances": 2}, out

    # another miloDE setting reruns miloDE only
    changed = {**mine, "baselines": {**mine["baselines"], "milode": {"config": {"k": 25}}}}
    config = write_config(tmp_path, {"tiny": semi, "mine": changed})
    rc, out = snakemake(repo, "-n", "--directory", tmp_path, "--configfile", config)
    assert rc == 0, out
    assert jobs(out) == {"milode": 1}, out

    # another DE setting reruns the DE only
    changed = {**mine, "analysis": {**TINY_ANALYSIS, "de": {"mc_samples": 4}}}
    config = write_config(tmp_path, {"tiny": semi, "mine": changed})
    rc, out = snakemake(repo, "-n", "--directory", tmp_path, "--configfile", config)
    assert rc == 0, out
    assert jobs(out) == {"differential_expression": 1}, out

    # another MrVI setting refits the model but keeps the data and the baselines
    changed = {**semi, "mrvi": {**TINY_MRVI, "seed": 1}}
    config = write_config(tmp_path, {"tiny": changed, "mine": mine})
    rc, out = snakemake(repo, "-n", "--directory", tmp_path, "--configfile", config)
    assert rc == 0, out
    assert re.search(r"fit_mrvi\s+1\n", out) and re.search(r"latent_mrvi\s+1\n", out), out
    assert re.search(r"sample_distances\s+1\n", out), out
    assert not {"simulate_base", "preprocess_dataset"} & set(jobs(out)), out
    assert not {"fit_scvi", "representations", "deseq2_pseudobulk", "milo"} & set(jobs(out)), out


def test_small_cohorts_run_the_default_target_with_only_their_keys(
    repo, tmp_path, snakemake, one_thread
):
    # a 4-sample and a 10-sample cohort (the sizes that failed with n_pcs = 50), each entry with
    # only the required keys, one two-valued covariate and few epochs: every size-bound default
    # is capped to what the data allow, and each cap is logged with its key
    datasets = {}
    for n_samples in (4, 10):
        name = f"cohort{n_samples}"
        cells = simulate_base(
            SimulationParams(n_cells=300, n_genes=200, n_samples=n_samples, seed=n_samples)
        )
        samples = sorted(cells.obs["sample"].unique())
        cells.obs["group"] = cells.obs["sample"].map(
            {s: "ab"[i % 2] for i, s in enumerate(samples)}
        )
        cells.write_h5ad(tmp_path / f"{name}.h5ad")
        few_epochs = {"train": {"max_epochs": 2}}
        datasets[name] = {
            "source": {"kind": "h5ad", "path": f"{name}.h5ad"},
            "sample_key": "sample",
            "sample_covariates": ["group"],
            "mrvi": few_epochs,
            "baselines": {"scvi": few_epochs},
        }
    config = write_config(tmp_path, datasets)
    # about 3 min on 2 idle cores; the limit leaves room for a machine shared with other jobs
    rc, out = snakemake(
        repo,
        "--cores",
        "2",
        *one_thread,
        "--directory",
        tmp_path,
        "--configfile",
        config,
        timeout=1800,
    )
    assert rc == 0, out[-5000:]

    results = tmp_path / "results"
    for n_samples in (4, 10):
        name = f"cohort{n_samples}"
        n_features = n_samples * (n_samples - 1) // 2  # 6 and 45, both under the default 50
        strat = xr.open_dataset(results / name / "analysis" / "stratification.nc")
        assert strat.sizes["pc"] == n_features and strat.attrs["n_pcs"] == n_features
        assert strat.sizes["sample_x"] == n_samples and strat.sizes["cell"] == 300
        log = (results / name / "logs" / "stratify_cells.log").read_text()
        assert "INFO mrvi_repro.pipeline._sizes: analysis.stratify.n_pcs = 50 capped to " in log
        assert f"capped to {n_features}: the upper triangles of {n_samples} x {n_samples}" in log
        da = xr.open_dataset(results / name / "analysis" / "da.nc")
        assert list(da.data_vars) == ["log_ratio_group"] and da.sizes["cell"] == 300
        assert (results / name / "baselines" / "milo.nc").exists()
        assert (
            pd.read_csv(results / name / "baselines" / "deseq2.tsv", sep="\t")["covariate"]
            .eq("group")
            .all()
        )
        summary = pd.read_csv(results / name / "metrics" / "summary.tsv", sep="\t")
        assert list(summary.columns) == ["method", "metric", "value"]
        assert (results / name / "figures" / "runtime.png").exists()
