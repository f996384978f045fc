"""A dataset of source kind tenx_mtx_tar, from rule download (loopback server) to preprocessed.h5ad."""

from __future__ import annotations

import anndata as ad
import pandas as pd
import pytest
import yaml

from mrvi_repro.data.contract import validate_adata
from mrvi_repro.data.download import file_digest, read_lock
from mrvi_repro.data.simulate import simulate_base
from mrvi_repro.settings.data import SimulationParams

pytestmark = pytest.mark.workflow

RESOURCE = "pbmc68k/fresh_68k_pbmc_donor_a_filtered_gene_bc_matrices.tar.gz"
N_CELLS, N_GENES = 2500, 400
COVARIATES = [
    "covariate_1",
    "covariate_1_top",
    "covariate_1_G1",
    "covariate_2",
    "covariate_2_strong",
]

#: The tiny semi-synthetic settings of test_workflow.py's TINY_SEMI, on the downloaded stand-in.
TINY_PBMC = {
    "description": "tiny semi-synthetic dataset on a PBMC 68k stand-in",
    "source": {"kind": "tenx_mtx_tar", "resource": RESOURCE},
    "sample_key": "sample_assignment",
    "labels_key": "leiden",
    "sample_covariates": COVARIATES,
    "min_cells_per_sample": 10,
    "hvg": {"n_top_genes": 250},
    "semisynthetic": {"seed": 1},
}


@pytest.fixture
def archive_url(www_server, write_10x_tar):
    """URL of a PBMC 68k stand-in (simulated counts, published layout) on 127.0.0.1."""
    www, url = www_server
    base = simulate_base(SimulationParams(n_cells=N_CELLS, n_genes=N_GENES, seed=7))
    symbols = [f"MT-{g}" if i < 5 else g for i, g in enumerate(base.var_names)]
    symbols[11] = symbols[10]
    gene_ids = [f"ENSG{i:011d}" for i in range(N_GENES)]
    barcodes = [f"{name}-1" for name in base.obs_names]
    write_10x_tar(www / "pbmc.tar.gz", base.X, gene_ids, symbols, barcodes)
    return f"{url}/pbmc.tar.gz"


def write_config(tmp_path, entry, url):
    registry, lock = tmp_path / "registry.yaml", tmp_path / "lock.tsv"
    registry.write_text(yaml.safe_dump({"resources": {RESOURCE: {"url": url}}}))
    (tmp_path / "tiny_pbmc.yaml").write_text(yaml.safe_dump(entry))
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "datasets": [str(tmp_path / "tiny_pbmc.yaml")],
                "downloads": {"registry": str(registry), "lock": str(lock)},
            }
        )
    )
    return config, lock


def test_download_to_preprocessed(repo, tmp_path, archive_url, snakemake):
    config, lock = write_config(tmp_path, TINY_PBMC, archive_url)
    target = "results/tiny_pbmc/data/preprocessed.h5ad"
    args = ("--cores", "1", "--directory", tmp_path, "--configfile", config)
    rc, out = snakemake(repo, target, *args, timeout=300)
    assert rc == 0, out[-3000:]
    assert "rule download:" in out and "rule preprocess_dataset:" in out

    archive = tmp_path / "resources" / RESOURCE
    log = (tmp_path / "resources" / "logs" / f"{RESOURCE}.log").read_text()
    assert "downloaded" in log and "(100.0%)" in log, log
    entry = read_lock(lock)[RESOURCE]
    assert (entry.url, entry.size, entry.sha256) == (archive_url, *file_digest(archive))

    prep_log = (tmp_path / "results" / "tiny_pbmc" / "logs" / "preprocess_dataset.log").read_text()
    assert f"{N_CELLS} cells x {N_GENES} genes" in prep_log, prep_log
    adata = ad.read_h5ad(tmp_path / target)
    validate_adata(
        adata, sample_key="sample_assignment", labels_key="leiden", sample_covariates=COVARIATES
    )
    assert adata.n_vars == 250 and 0 < adata.n_obs <= N_CELLS
    assert {"sample_assignment", "leiden", "subset", *COVARIATES} <= set(adata.obs.columns)
    assert adata.obs["sample_assignment"].nunique() == 32
    # cells keep the archive's barcodes (resampled copies add a suffix), genes its symbols and IDs
    assert all(name.split("-resampled")[0].endswith("-1") for name in adata.obs_names)
    assert adata.var["gene_ids"].str.startswith("ENSG").all() and adata.var_names.is_unique
    samples = pd.read_csv(tmp_path / "results" / "tiny_pbmc" / "data" / "samples.tsv", sep="\t")
    assert samples["n_cells"].sum() == adata.n_obs


def test_unknown_resource_is_named(repo, tmp_path, snakemake):
    entry = {**TINY_PBMC, "source": {"kind": "tenx_mtx_tar", "resource": "pbmc68k/nope.tar.gz"}}
    config, _ = write_config(tmp_path, entry, "http://127.0.0.1:9/x")
    rc, out = snakemake(repo, "-n", "--directory", tmp_path, "--configfile", config, timeout=300)
    assert rc != 0
    assert "dataset 'tiny_pbmc': resource 'pbmc68k/nope.tar.gz' is not a key" in out, out
