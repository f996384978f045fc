"""bench/ibd_fullsize.py: the generated atlas has the portal's layout and the published shapes,
the workflow's reader and donor join read it, and the runner's entry parses (at a small share of
the cells; the full size is a benchmark, bench/RESULTS.md)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from mrvi_repro.data.readers import read_scp_bundles, read_scp_metadata
from mrvi_repro.pipeline import DatasetSpec
from mrvi_repro.testing.standins.ibd import IBD_METADATA


def test_generated_atlas_has_the_published_layout(bench_script, tmp_path):
    script = bench_script("ibd_fullsize")
    script.write(tmp_path, umis=400.0, seed=0, scale=0.002)
    folder = tmp_path / "resources" / "ibd"
    spec = DatasetSpec.from_dict("ibd", script.entry(tmp_path, epochs=1, de_mc_samples=3))
    files = {key: tmp_path / "resources" / key for key in spec.source.resources()}
    adata = read_scp_bundles(spec.source, files)
    # the published bundles' shares of the cells, their gene lists and the genes they share
    expected = {b: round(n * 0.002) for b, n in script.BUNDLE_CELLS.items()}
    assert adata.obs["bundle"].value_counts().to_dict() == expected
    features = {
        b: pd.read_csv(folder / f"{b}.scp.features.tsv", sep="\t", header=None) for b in expected
    }
    assert {b: len(f) for b, f in features.items()} == {
        b: script.REGION_GENES[b[:2]] for b in expected
    }
    assert len(set(features["CO_EPI"][0]) | set(features["TI_EPI"][0])) == script.N_UNION
    assert adata.n_vars == 27_830 and set(script.named_genes()) <= set(adata.var_names)
    x = adata.X
    assert x.format == "csr" and np.all(x.data == np.round(x.data)) and x.data.min() >= 1
    # the portal metadata: every column, the TYPE row, 71 donors in the paper's groups
    meta = read_scp_metadata(folder / script.METADATA)
    assert list(meta.columns) == list(IBD_METADATA)[1:] and len(meta) == adata.n_obs
    # n_counts counts every gene of the cell's region; the reader keeps the shared ones
    shared_counts = np.asarray(x.sum(axis=1)).ravel()
    assert np.all(meta["n_counts"].to_numpy() >= shared_counts)
    assert np.mean(shared_counts / meta["n_counts"].to_numpy()) > 0.99
    donors = pd.read_csv(folder / script.DONORS, sep="\t")
    assert donors["behavior"].value_counts().to_dict() == script.BEHAVIOUR_DONORS
    surgical = donors[donors["procedure"] == "surgical"]["behavior"].value_counts().to_dict()
    assert surgical == script.SURGICAL
    per_donor = adata.obs.groupby("donor_id", observed=True)["disease__ontology_label"].first()
    assert per_donor.value_counts().to_dict() == {"Crohn disease": 46, "normal": 25}
    assert script.design(np.random.default_rng(0))[1]["biosample_id"].nunique() == 225
    # the runner's entry: the shipped one, a few epochs everywhere, fewer DE draws
    yaml.safe_dump(script.entry(tmp_path, epochs=1))
    assert spec.mrvi.train.max_epochs == 1 and not spec.mrvi.train.early_stopping
    assert spec.analysis.de.mc_samples == 3
    assert all(c.mc_samples == 3 for c in spec.comparisons.de)


def test_generated_atlas_plants_the_stromal_b2_genes(bench_script, tmp_path):
    """CDH11 is 3x higher in B2 donors' stromal cells; LUM more so in HIGD1B+STEAP4+ pericytes."""
    script = bench_script("ibd_fullsize")
    script.write(tmp_path, umis=1_100.0, seed=1, scale=0.02)
    spec = DatasetSpec.from_dict("ibd", script.entry(tmp_path, epochs=1))
    files = {key: tmp_path / "resources" / key for key in spec.source.resources()}
    adata = read_scp_bundles(spec.source, files)
    donors = pd.read_csv(tmp_path / "resources/ibd" / script.DONORS, sep="\t")
    b2 = adata.obs["donor_id"].isin(donors.loc[donors["behavior"] == "B2", "donor_id"]).to_numpy()
    b1 = adata.obs["donor_id"].isin(donors.loc[donors["behavior"] == "B1", "donor_id"]).to_numpy()
    stromal = adata.obs["bundle"].isin(["CO_STR", "TI_STR"]).to_numpy()
    pericytes = (adata.obs["Celltype"] == script.PERICYTES).to_numpy()
    size = np.asarray(adata.X.sum(axis=1)).ravel()

    def ratio(gene: str, cells: np.ndarray) -> float:
        values = np.asarray(adata[:, gene].X.todense()).ravel() / size
        return float(values[cells & b2].mean() / values[cells & b1].mean())

    assert 2.0 < ratio("CDH11", stromal & ~pericytes) < 4.5
    assert ratio("CDH11", ~stromal) == pytest.approx(1.0, rel=0.35)
    assert ratio("LUM", pericytes) > 6.0 and ratio("LUM", stromal & ~pericytes) < 1.6
