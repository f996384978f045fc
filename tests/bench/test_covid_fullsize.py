"""bench/covid_fullsize.py: the generated file has the published schema and reads as the entry
reads the real one (at a tiny size; the full size is a benchmark, bench/RESULTS.md)."""

from __future__ import annotations

import anndata as ad
import numpy as np
import yaml

from mrvi_repro.pipeline import DatasetSpec
from mrvi_repro.pipeline.data import build_dataset
from mrvi_repro.testing.standins.covid import COVID_OBS


def test_generated_file_has_the_published_schema_and_reads_like_it(bench_script, tmp_path):
    script = bench_script("covid_fullsize")
    path = script.write(tmp_path, n_cells=4000, n_features=800, n_kept=2600, umis=600.0, seed=0)
    published = ad.read_h5ad(path)
    assert published.shape == (4000, 800) and list(published.obs.columns) == list(COVID_OBS)
    raw, x = published.layers["raw"], published.X
    assert raw.format == "csr" and raw.dtype == np.float32
    assert np.all(raw.data == np.round(raw.data)) and raw.data.min() >= 1
    np.testing.assert_array_equal(raw.indices, x.indices)  # X is log-normalised raw
    lib = np.asarray(raw.sum(1)).ravel()
    np.testing.assert_allclose(np.expm1(x[:5].toarray()).sum(1), np.full(5, 1e4), rtol=1e-3)
    np.testing.assert_array_equal(published.obs["n_genes"], np.diff(raw.indptr))
    assert lib.min() > 0 and published.var_names[-1].startswith("AB_")
    kept = published.obs["Site"].eq("Ncl") & published.obs["Status"].isin(["Covid", "Healthy"])
    assert kept.sum() == 2600 and published.obs.loc[kept, "patient_id"].nunique() == 55
    # the shipped entry, pointed at the file, reads it: the kept cells, counts from layers['raw']
    entry = script.entry(tmp_path, epochs=1)
    assert entry["mrvi"]["train"]["max_epochs"] == 1
    assert entry["baselines"]["scvi"]["train"]["max_epochs"] == 1
    assert all("gsea" not in d for d in entry["comparisons"]["de"])
    yaml.safe_dump(entry)  # plain data, as the runner writes it
    entry["hvg"] = {"n_top_genes": 200, "flavor": "seurat_v3"}
    out = build_dataset(DatasetSpec.from_dict("covid", entry), {"source": path})
    assert out.n_obs == 2600 and out.n_vars == 200
    assert not out.var_names.str.startswith("AB_").any()
    # the planted interferon program: up in the myeloid cells of early patients
    obs = published.obs
    early = obs["Days_from_onset"].astype(str).isin([str(d) for d in range(2, 9)]).to_numpy()
    myeloid = obs["initial_clustering"].isin(["CD14", "CD16", "DCs"]).to_numpy() & kept.to_numpy()
    share = raw[:, : len(script.INTERFERON)].toarray().sum(1) / lib
    assert share[myeloid & early].mean() > 2.0 * share[myeloid & ~early].mean()
