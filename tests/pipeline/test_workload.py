"""How much work a DE step has, from the preprocessed file's obs (mrvi_repro.pipeline.workload)."""

from mrvi_repro.pipeline.workload import de_workload

from .test_comparisons import SPEC


def test_de_workload_counts_the_selected_cells_all_samples_and_the_draws(tmp_path, tiny_semi):
    path = tmp_path / "cells.h5ad"
    tiny_semi.write_h5ad(path)
    subset = tiny_semi.obs["subset"].astype(str)
    n_samples = tiny_semi.obs["sample_assignment"].nunique()
    work = de_workload(path, SPEC, "g1_in_a")
    assert work == {
        "cells": int(subset.isin(["A", "Other"]).sum()),
        "samples": n_samples,
        "draws": 4,
    }
    # a cluster_of selection is known only after the stratification: every cell counts
    assert de_workload(path, SPEC, "derived")["cells"] == tiny_semi.n_obs
    everything = de_workload(path, SPEC)  # analysis.de: all cells, its draws
    assert everything == {"cells": tiny_semi.n_obs, "samples": n_samples, "draws": 50}
