"""The stand-in demo: `snakemake --configfile config/standins.yaml` runs the paper's real entries.

One offline run of the COVID-19, sci-Plex A549 and IBD entries on their planted stand-ins
(``mrvi_repro.testing.standins``), the whole DAG of each, then the comparisons checked against
the truth the stand-in writers planted (regenerated here with the same seed):

- COVID-19: the stratification's myeloid donor groups are the planted early / late / healthy groups;
  DE between the two COVID-19 groups puts the interferon program at one end and the late program at
  the other, as two gene modules, and GSEA ranks those two sets first with their directions; DA of
  COVID-19 vs healthy finds fewer CD16 monocytes and DCs;
- IBD: DE of B2 vs B1 in stromal cells ranks the planted B2 genes (CDH11, ...) first; DA finds more
  ADAMDEC1+ fibroblasts and fewer lymphatic endothelial cells in B2;
- sci-Plex: the whole DAG runs on an entry with a single label (integration label metrics NaN with
  their reason) and a plate that varies within samples.

Slow: a few minutes on 2 cores.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from sklearn.metrics import adjusted_rand_score

from mrvi_repro.testing.standins import read_standin_truth, write_standins

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

ENTRIES = ("covid", "sciplex_A549", "ibd")


@pytest.fixture(scope="module")
def run(repo, tmp_path_factory, snakemake, one_thread):
    """(results folder, truth folder) of one run of config/standins.yaml."""
    work = tmp_path_factory.mktemp("standins")
    rc, out = snakemake(
        repo,
        "--cores",
        "2",
        *one_thread,
        "--directory",
        work,
        "--configfile",
        repo / "config" / "standins.yaml",
        timeout=3000,
    )
    if rc != 0:
        raise RuntimeError(f"the stand-in workflow failed:\n{out[-5000:]}")
    truth = work / "truth"
    write_standins(truth, ("covid", "sciplex", "ibd"), seed=0)
    return work / "results", truth


def _mean_lfc(de: xr.Dataset) -> pd.Series:
    """A DE comparison's LFC per gene, averaged over its cells (its groups weighted by size)."""
    weights = de["n_cells"].values.astype(float)
    lfc = de["lfc"].isel(covariate=0).values
    return pd.Series((lfc * weights[:, None]).sum(0) / weights.sum(), index=de["gene"].values)


def test_every_entry_runs_end_to_end_and_says_it_is_a_stand_in(run):
    results, _ = run
    for entry in ENTRIES:
        folder = results / f"{entry}_standin"
        summary = pd.read_csv(folder / "metrics" / "summary.tsv", sep="\t")
        assert {"mrvi", "scvi", "pca"} <= set(summary["method"])
        log = (folder / "logs" / "preprocess_dataset.log").read_text()
        assert "STAND-IN (synthetic data)" in log
    integration = pd.read_csv(
        results / "sciplex_A549_standin" / "metrics" / "integration.tsv", sep="\t"
    )
    label = integration[integration["metric"] == "silhouette_label"]
    assert label["value"].isna().all() and label["note"].str.contains("single").all()
    assert integration.loc[integration["metric"] == "silhouette_batch", "value"].notna().all()


def test_covid_myeloid_donor_groups_are_the_planted_ones(run):
    results, truth = run
    groups = pd.read_csv(
        results / "covid_standin" / "comparisons" / "sample_groups.tsv", sep="\t"
    ).set_index("patient_id")["myeloid_group"]
    planted = pd.Series(read_standin_truth(truth, "covid")["groups"]).reindex(groups.index)
    assert adjusted_rand_score(planted, groups) >= 0.8


def test_covid_de_between_the_covid_groups_recovers_both_programs(run):
    results, truth = run
    folder = results / "covid_standin" / "comparisons"
    covid = read_standin_truth(truth, "covid")
    groups = pd.read_csv(folder / "sample_groups.tsv", sep="\t").set_index("patient_id")
    # which derived group is the early one: the contrast is a vs b of the two COVID-19 groups
    early = groups["myeloid_group"][pd.Series(covid["groups"]) == "early"].mode()[0]
    de = xr.open_dataset(folder / "de" / "covid_groups_myeloid" / "de.nc")
    contrast = str(de["covariate"].values[0])  # "myeloid_group: <a> vs <b>"
    sign = -1.0 if contrast.split(": ")[1].split(" vs ")[0] == early else 1.0  # + when a = late
    lfc = _mean_lfc(de) * sign  # late vs early
    interferon = covid["programs"]["interferon"]["genes"]
    late = covid["programs"]["late"]["genes"]
    ranked = lfc.sort_values()
    assert set(ranked.index[: len(interferon)]) == set(interferon)  # lowest: up early
    assert set(ranked.index[-len(late) :]) == set(late)  # highest: up late
    # each program is one gene module
    modules = pd.read_csv(folder / "de" / "covid_groups_myeloid" / "modules.tsv", sep="\t")
    by_gene = modules.set_index("gene")["module"]
    for program in (interferon, late):
        module = by_gene[program].mode()[0]
        members = set(by_gene.index[by_gene == module])
        assert len(members & set(program)) / len(members | set(program)) >= 0.8
    # GSEA ranks the two planted sets first, with their directions
    gsea = pd.read_csv(folder / "de" / "covid_groups_myeloid" / "gsea.tsv", sep="\t")
    top = gsea.sort_values("pvalue").head(2).set_index("gene_set")
    assert set(top.index) == {"STANDIN_COVID_INTERFERON", "STANDIN_COVID_LATE"}
    assert (top["pvalue"] < 0.05).all()
    assert np.sign(top.loc["STANDIN_COVID_LATE", "nes"]) == sign
    assert np.sign(top.loc["STANDIN_COVID_INTERFERON", "nes"]) == -sign


def test_covid_fewer_cd16_monocytes_and_dcs(run):
    results, _ = run
    test = pd.read_csv(
        results
        / "covid_standin"
        / "comparisons"
        / "da"
        / "covid_vs_healthy_myeloid"
        / "cluster_test.tsv",
        sep="\t",
    ).set_index("cluster")
    # log q(COVID) - log q(healthy) per myeloid cell, by author label: CD16 and DCs below CD14
    for label in ("CD16", "DCs"):
        assert test.loc[label, "mean_in"] < test.loc["CD14", "mean_in"] - 0.1, test


def test_ibd_b2_vs_b1_in_stromal_cells(run):
    results, truth = run
    folder = results / "ibd_standin" / "comparisons"
    ibd = read_standin_truth(truth, "ibd")
    de = xr.open_dataset(folder / "de" / "b2_vs_b1_stromal" / "de.nc")
    assert str(de["covariate"].values[0]) == "behavior: B2 vs B1"
    lfc = _mean_lfc(de).sort_values(ascending=False)
    planted = ibd["programs"]["b2_stromal"]["genes"]
    assert "CDH11" in lfc.index[:5]
    assert len(set(lfc.index[: len(planted)]) & set(planted)) >= 0.8 * len(planted)
    test = pd.read_csv(folder / "da" / "b2_vs_b1_stromal" / "cluster_test.tsv", sep="\t")
    test = test.set_index("cluster")
    fibro = [c for c in test.index if c.startswith("Fibroblasts ADAMDEC1")]
    lymph = [c for c in test.index if "ymphatic" in c]
    assert fibro and lymph
    assert test.loc[fibro[0], "difference"] > 0 > test.loc[lymph[0], "difference"]
