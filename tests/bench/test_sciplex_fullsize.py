"""bench/sciplex_fullsize.py: the generated files have the published schema and the shipped entry
reads them (at a small share of the cells; the full size is a benchmark, bench/RESULTS.md)."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import yaml

from mrvi_repro.data.l1000 import cmap_clusters
from mrvi_repro.pipeline import DatasetSpec
from mrvi_repro.testing.standins.sciplex import SCIPLEX_OBS_ALL


def test_generated_files_have_the_published_schema(bench_script, tmp_path):
    script = bench_script("sciplex_fullsize")
    script.write(tmp_path, umis=400.0, seed=0, scale=0.004)
    res = tmp_path / "resources"
    published = ad.read_h5ad(res / script.FILE)
    # the published genes and the 16 obs columns; cells in the published shares of the lines
    assert published.n_vars == 58_347 and list(published.obs.columns) == list(SCIPLEX_OBS_ALL)
    lines = published.obs["cell_type"].value_counts()
    expected = {k: round(v * 0.004) for k, v in script.LINES.items()}
    assert lines.to_dict() == expected
    x = published.X
    assert x.format == "csr" and x.dtype == np.float32 and np.all(x.data == np.round(x.data))
    assert set(published.obs["product_name"]) == {"Vehicle", *[f"Drug{i:03d}" for i in range(188)]}
    doses = published.obs.loc[published.obs["product_name"] != "Vehicle", "dose"]
    assert sorted(doses.unique()) == [10.0, 100.0, 1000.0, 10000.0]
    # the plate table has a title line, then one row per line, replicate, drug and dose
    plates = pd.read_csv(res / script.PLATES, sep="\t", header=1)
    assert len(plates) == 3 * 2 * (1 + 188 * 4)
    # the L1000 exports give one CMap cluster per planted program of the active drugs
    sigs = sorted((res / "l1000").glob("A549_sig_batch_*.xls"))
    metas = sorted((res / "l1000").glob("A549_sig_meta_batch_*.xls"))
    assert len(sigs) == len(metas) == 6
    drugs = [f"Drug{i:03d}" for i in range(188)]
    _, clusters = cmap_clusters(sigs, metas, drugs)
    active = clusters[clusters.index.isin(drugs[: script.N_ACTIVE])]
    assert clusters.nunique() == script.N_PROGRAMS and len(active) == script.N_ACTIVE
    # the runner's entry: the shipped one pointed at the file, a few epochs, a lower DE filter
    entry = script.entry(tmp_path, epochs=1)
    yaml.safe_dump(entry)
    spec = DatasetSpec.from_dict("sciplex_A549", entry)
    assert spec.mrvi.train.max_epochs == 1 and spec.recipe.deg_min_genes == script.DEG_MIN_GENES
    assert spec.figures.fig4.cmap is not None and spec.figures.fig4.claims.enriched == ()
