"""The paper's COVID-19, sci-Plex and IBD entries, from rule download to preprocessed.h5ad.

Stand-ins of the published files (``mrvi_repro.testing.standins``) are served on 127.0.0.1 where the
registry has a URL, and placed in the manual folder where it asks for a hand download (IBD, Table
S3); the shipped registry and entries are used, with stand-in-sized thresholds.
"""

from __future__ import annotations

import shutil

import anndata as ad
import pandas as pd
import pytest
import yaml

from mrvi_repro.data.contract import validate_adata
from mrvi_repro.data.download import read_lock
from mrvi_repro.testing.standins import (
    write_covid_standin,
    write_ibd_standin,
    write_sciplex_standin,
)

pytestmark = pytest.mark.workflow

#: Entry overrides that suit the stand-ins' sizes.
OVERRIDES = {
    "covid": {"hvg": {"n_top_genes": 150}},
    "sciplex_A549": {"hvg": {"n_top_genes": 300, "batch_key": "cell_type"}},
    "sciplex_K562": {"hvg": {"n_top_genes": 300, "batch_key": "cell_type"}},
    "ibd": {"hvg": {"n_top_genes": 150}},
}
#: IBD bundles of this test (one colon, one ileum; the unit tests read all six).
IBD_BUNDLES = ["CO_EPI", "TI_IMM"]


def write_setup(repo, tmp_path, url, www):
    """Registry (shipped, URLs pointed at the server), manual files, entries and config."""
    registry = yaml.safe_load((repo / "config" / "downloads.yaml").read_text())
    manual = tmp_path / "resources" / "manual"
    served = set(write_covid_standin(www)) | set(write_sciplex_standin(www))
    served |= set(write_ibd_standin(www, bundles=tuple(IBD_BUNDLES)))
    for key in sorted(served):
        entry = registry["resources"][key]
        if "url" in entry:
            entry["url"] = f"{url}/{key}"
        else:
            (manual / key).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(www / key, manual / key)
    (tmp_path / "registry.yaml").write_text(yaml.safe_dump(registry))
    paths = []
    for name, overrides in OVERRIDES.items():
        entry = yaml.safe_load((repo / "config" / "datasets" / f"{name}.yaml").read_text())
        entry.update(overrides)
        if name == "ibd":
            entry["source"]["bundles"] = IBD_BUNDLES
        if "recipe" in entry and entry["recipe"]["kind"] == "sciplex":
            entry["recipe"]["deg_min_genes"] = 40
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(entry))
        paths.append(str(tmp_path / f"{name}.yaml"))
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "datasets": paths,
                "downloads": {
                    "registry": str(tmp_path / "registry.yaml"),
                    "lock": str(tmp_path / "lock.tsv"),
                    "manual_dir": "resources/manual",
                },
            }
        )
    )
    return config, served


def test_paper_entries_download_to_preprocessed(repo, tmp_path, www_server, snakemake):
    www, url = www_server
    config, served = write_setup(repo, tmp_path, url, www)
    targets = [f"results/{name}/data/preprocessed.h5ad" for name in OVERRIDES]
    args = ("--cores", "2", "--directory", tmp_path, "--configfile", config)
    rc, out = snakemake(repo, *targets, *args, timeout=600)
    assert rc == 0, out[-4000:]
    # one shared sci-Plex screen for both cell lines; every file downloaded or picked up once
    assert out.count("rule sciplex_screen:") == 1
    lock = read_lock(tmp_path / "lock.tsv")
    assert set(lock) == served
    assert lock["ibd/CO_EPI.scp.raw.mtx"].url == "manual"
    assert lock["covid/haniffa21.processed.h5ad"].url.startswith("http://127.0.0.1")

    results = tmp_path / "results"
    covid = ad.read_h5ad(results / "covid" / "data" / "preprocessed.h5ad")
    assert set(covid.obs["Site"]) == {"Ncl"} and set(covid.obs["Status"]) == {"Covid", "Healthy"}
    assert covid.n_vars == 150 and not covid.var_names.str.startswith("AB").any()
    log = (results / "covid" / "logs" / "preprocess_dataset.log").read_text()
    assert "raw counts found in layers['raw']" in log and "subset Site in ['Ncl']" in log

    for line in ("A549", "K562"):
        data = ad.read_h5ad(results / f"sciplex_{line}" / "data" / "preprocessed.h5ad")
        assert set(data.obs["cell_type"]) == {line} and "phase" in data.obs
        assert data.obs["plate_oligo"].notna().all() and data.n_vars == 300
        validate_adata(data, sample_key="product_dose", batch_key="plate_oligo")
    screen_log = next((results / "_shared" / "sciplex_screen").glob("*/screen.log")).read_text()
    assert "DE-gene filter: kept 7 drugs" in screen_log, screen_log  # all but Resveratrol

    ibd = ad.read_h5ad(results / "ibd" / "data" / "preprocessed.h5ad")
    assert {"behavior", "procedure", "Layer_Chem"} <= set(ibd.obs.columns)
    samples = pd.read_csv(results / "ibd" / "data" / "samples.tsv", sep="\t")
    assert samples["n_cells"].sum() == ibd.n_obs
    assert set(samples["behavior"]) == {"B1", "B2", "B3", "control"}


def test_paper_config_lists_the_full_dag(repo, snakemake):
    rc, out = snakemake(repo, "-n", "--configfile", "config/paper.yaml", "--cores", "2")
    assert rc == 0, out[-3000:]
    for name in ("pbmc68k_semisynthetic", "covid", "sciplex_A549", "sciplex_K562", "ibd"):
        assert f"results/{name}/metrics/summary.tsv" in out
    jobs = dict(
        line.split()[:2]
        for line in out.splitlines()
        if len(line.split()) == 2 and line.split()[1].isdigit()
    )
    # 25 input files, the Hallmark gene sets of the COVID-19 entry's GSEA and of Fig. 4f, and the
    # 18 iLINCS L1000 exports of A549 (6 + 6) and MCF7 (5 + 1)
    assert jobs["download"] == "44" and jobs["sciplex_screen"] == "1"
    # the COVID-19 and IBD entries' comparisons
    assert jobs["sample_groups"] == "1" and jobs["de_comparison"] == "2"
    assert jobs["da_comparison"] == "3"
    assert jobs["preprocess_dataset"] == "6" and jobs["fit_mrvi"] == "6"
    # Fig. 4 and Extended Data Figs. 3-4: the three sci-Plex cell lines, CMap data for two
    assert jobs["fig4_panels"] == "3" and jobs["screen_claims"] == "3"
    assert jobs["cmap_clusters"] == "2" and jobs["fig3_panels"] == "1"
    # Fig. 5 and Extended Data Figs. 5-7: the IBD atlas
    assert jobs["fig5_panels"] == "1" and jobs["stenosis_claims"] == "1"
