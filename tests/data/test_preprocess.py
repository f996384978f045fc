import logging

import numpy as np
import pytest
from scipy import sparse

from mrvi_repro.data.contract import DataContractError, count_problems
from mrvi_repro.data.preprocess import count_check, counts_to_x, sample_table
from mrvi_repro.pipeline import DatasetSpec, SpecError
from mrvi_repro.pipeline.data import build_dataset, preprocess_dataset
from mrvi_repro.settings.data import ExpectedCounts

SEMI_ENTRY = {
    "source": {"kind": "simulate"},
    "sample_key": "sample_assignment",
    "labels_key": "leiden",
    "sample_covariates": ["covariate_1", "covariate_1_top", "covariate_2", "covariate_2_strong"],
    "hvg": {"n_top_genes": 300},
    "semisynthetic": {"seed": 3},
}
USER_ENTRY = {
    "source": {"kind": "h5ad", "path": "unused.h5ad"},
    "sample_key": "sample",
    "batch_key": "batch",
    "labels_key": "cell_type",
    "hvg": {"n_top_genes": 200},
}


def test_semisynthetic_dataset(tiny_base):
    out = preprocess_dataset(tiny_base, DatasetSpec.from_dict("semi", SEMI_ENTRY))
    assert out.n_vars == 300
    assert out.X.format == "csr" and count_problems(out.X) == []
    assert out.obs["sample_assignment"].nunique() == 32
    assert "semisynthetic" in out.uns
    # X holds the raw counts of the selected genes, untouched
    cells = out.obs_names[~out.obs["resampled"].to_numpy()][:50]
    expected = tiny_base[cells, out.var_names].X.toarray()
    np.testing.assert_array_equal(out[cells].X.toarray(), expected)


def test_counts_from_a_layer(tiny_base, tmp_path):
    user = tiny_base.copy()
    user.layers["counts"] = user.X.copy()
    user.X = sparse.csr_matrix(np.log1p(user.X.toarray()))  # a published file's log-normalised X
    user.write_h5ad(tmp_path / "x.h5ad")
    for layer in ("counts", "auto"):
        source = {"kind": "h5ad", "path": str(tmp_path / "x.h5ad"), "counts_layer": layer}
        spec = DatasetSpec.from_dict("user", {**USER_ENTRY, "source": source})
        out = build_dataset(spec, {"source": tmp_path / "x.h5ad"})
        assert count_problems(out.X) == [] and "counts" not in out.layers
        np.testing.assert_array_equal(out.X.toarray(), tiny_base[:, out.var_names].X.toarray())


def test_log_normalised_x_is_refused_before_any_work(tiny_base):
    user = tiny_base.copy()
    user.X = sparse.csr_matrix(np.log1p(user.X.toarray()))
    with pytest.raises(DataContractError, match="X has .* non-integer entries"):
        preprocess_dataset(user, DatasetSpec.from_dict("user", USER_ENTRY))


def test_missing_counts_layer(tiny_base):
    with pytest.raises(DataContractError, match="counts_layer 'raw' is not a layer"):
        counts_to_x(tiny_base, "raw")


def test_empty_cells_are_removed_and_logged(tiny_base, caplog):
    user = tiny_base[:600].copy()
    x = user.X.toarray()
    x[:7] = 0
    user.X = sparse.csr_matrix(x)
    with caplog.at_level(logging.INFO):
        out = preprocess_dataset(
            user, DatasetSpec.from_dict("user", {**USER_ENTRY, "min_cells_per_sample": 5})
        )
    assert out.n_obs == 593
    assert "removed 7 of 600 cells with no counts" in caplog.text
    assert "kept 200 genes" in caplog.text


def test_a_sample_removed_by_the_zero_count_filter_is_named(tiny_base, caplog):
    user = tiny_base[:600].copy()
    x = user.X.toarray()
    lost = (user.obs["sample"] == "sample_03").to_numpy()
    x[lost] = 0  # every cell of sample_03, and 2 cells of another sample, have no counts
    x[np.flatnonzero(~lost)[:2]] = 0
    user.X = sparse.csr_matrix(x)
    spec = DatasetSpec.from_dict("user", {**USER_ENTRY, "min_cells_per_sample": 5})
    with caplog.at_level(logging.INFO):
        out = preprocess_dataset(user, spec)
    assert sorted(out.obs["sample"].unique()) == ["sample_01", "sample_02", "sample_04"]
    assert out.n_obs == 600 - lost.sum() - 2
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warned == [
        "1 sample(s) of obs['sample'] removed entirely, none of their cells having counts in the "
        f"selected genes: 'sample_03' ({lost.sum()} cells)"
    ]


def test_contract_violations_surface(tiny_base):
    spec = DatasetSpec.from_dict("user", {**USER_ENTRY, "sample_covariates": ["lineage"]})
    with pytest.raises(DataContractError, match="'lineage' varies within 4 sample"):
        preprocess_dataset(tiny_base, spec)


def test_sample_table(tiny_semi):
    table = sample_table(
        tiny_semi, sample_key="sample_assignment", sample_covariates=["covariate_1", "covariate_2"]
    )
    assert list(table.columns) == ["sample", "covariate_1", "covariate_2", "n_cells"]
    assert len(table) == 32 and table["n_cells"].sum() == tiny_semi.n_obs


def _cohort():
    """12 samples of 6 donors (2 each), donors 0-3 'CD' with behaviour B1/B2, 4-5 controls."""
    import anndata as ad
    import pandas as pd

    donors = np.repeat(np.arange(6), 20)
    samples = np.repeat(np.arange(12), 10)
    obs = pd.DataFrame(
        {
            "sample": [f"s{i}" for i in samples],
            "donor": [f"d{i}" for i in donors],
            "disease": np.where(donors < 4, "CD", "control"),
            "behavior": np.select([donors < 2, donors < 4], ["B1", "B2"], "control"),
        },
        index=[f"c{i}" for i in range(120)],
    )
    adata = ad.AnnData(X=sparse.csr_matrix(np.ones((120, 7), dtype=np.float32)), obs=obs)
    adata.uns["preprocessing"] = {"input_cells": 150, "input_genes": 30}
    return adata


def test_count_check_matches_and_differs(caplog):
    expected = ExpectedCounts(
        cells=100,  # 120 here: +20 %, beyond 10 %
        input_cells=150,
        genes=7,
        samples=12,
        participants=6,
        participant_key="donor",
        participant_groups={"disease": {"CD": 4, "control": 3}, "behavior": {"B2": 2}},
        tolerance=0.1,
        source="the paper",
        note="known: extra cells",
    )
    with caplog.at_level(logging.INFO, logger="mrvi_repro"):
        table = count_check(_cohort(), expected, sample_key="sample", name="toy")
    rows = table.set_index("quantity")
    assert rows.loc["cells read", "status"] == "matches"
    assert rows.loc["cells", "observed"] == 120 and rows.loc["cells", "difference"] == 20
    assert rows.loc["cells", "relative_difference"] == pytest.approx(0.2)
    assert rows.loc["cells", "status"] == "differs"
    assert rows.loc["cells", "note"] == "known: extra cells"
    assert rows.loc["participants (donor)", "observed"] == 6
    assert rows.loc["participants with disease = CD", "status"] == "matches"
    assert rows.loc["participants with disease = control", "observed"] == 2
    assert rows.loc["participants with disease = control", "status"] == "differs"
    assert rows.loc["participants with behavior = B2", "observed"] == 2
    assert (rows["status"] == "differs").sum() == 2
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 2
    assert "cells 120, expected 100 (the paper): differs by +20 (+20.0%); known" in warned[0]


def test_count_check_without_expectations_describes_the_data():
    table = count_check(_cohort(), None, sample_key="sample")
    assert set(table["status"]) == {"not reported"}
    rows = table.set_index("quantity")
    assert rows.loc["samples", "observed"] == 12
    assert not any(table["quantity"].str.startswith("participants"))
    assert rows["expected"].isna().all()
    table = count_check(_cohort(), ExpectedCounts(participants=12), sample_key="sample")
    assert table.set_index("quantity").loc["participants (sample)", "status"] == "matches"


def test_count_check_tolerance_zero_is_exact():
    # 120 cells against 121: 0.8 % off, a match at the default 1 %, not at 0
    status = {
        tol: count_check(_cohort(), ExpectedCounts(cells=121, tolerance=tol), sample_key="sample")
        .set_index("quantity")
        .loc["cells", "status"]
        for tol in (0.0, 0.01)
    }
    assert status == {0.0: "differs", 0.01: "matches"}


def test_count_check_skips_missing_ids_and_compares_numbers_as_numbers():
    adata = _cohort()
    adata.obs["donor"] = adata.obs["donor"].astype(object)
    adata.obs.loc[adata.obs_names[:20], "donor"] = np.nan  # donor d0's cells lose their ID
    adata.obs["age"] = np.where(adata.obs["disease"] == "CD", 30.0, 60.0)
    expected = ExpectedCounts(
        participants=5, participant_key="donor", participant_groups={"age": {"30": 3, "60.0": 2}}
    )
    rows = count_check(adata, expected, sample_key="sample").set_index("quantity")
    assert rows.loc["participants (donor)", "observed"] == 5
    assert rows.loc["participants with age = 30", "observed"] == 3
    assert rows.loc["participants with age = 60.0", "observed"] == 2
    assert set(rows["status"].dropna()) - {"not reported"} == {"matches"}


def test_count_check_names_missing_columns():
    with pytest.raises(DataContractError, match=r"\['behaviour'\]"):
        count_check(
            _cohort(),
            ExpectedCounts(participant_groups={"behaviour": {"B2": 1}}),
            sample_key="sample",
        )


def test_preprocess_records_the_input_size(tiny_base):
    out = preprocess_dataset(tiny_base, DatasetSpec.from_dict("semi", SEMI_ENTRY))
    assert out.uns["preprocessing"] == {
        "input_cells": tiny_base.n_obs,
        "input_genes": tiny_base.n_vars,
    }


def test_expected_counts_are_checked_on_parse():
    with pytest.raises(SpecError, match="expected.tolerance"):
        DatasetSpec.from_dict("user", {**USER_ENTRY, "expected": {"tolerance": 1.5}})
    with pytest.raises(SpecError, match="whole numbers"):
        DatasetSpec.from_dict("user", {**USER_ENTRY, "expected": {"cells": 2.5}})
    with pytest.raises(SpecError, match="unknown"):
        DatasetSpec.from_dict("user", {**USER_ENTRY, "expected": {"cell": 3}})


def test_hvg_keep_adds_named_genes_outside_the_top(caplog):
    from mrvi_repro.data.preprocess import select_hvgs
    from mrvi_repro.settings.data import HVGParams

    rng = np.random.default_rng(0)
    n_cells, n_genes = 400, 60
    means = np.full(n_genes, 5.0)
    x = rng.poisson(means, size=(n_cells, n_genes)).astype(np.float32)
    x[:, :10] = rng.negative_binomial(1, 1 / 6, size=(n_cells, 10))  # 10 overdispersed genes
    x[:, 59] = rng.poisson(5.0, size=n_cells)  # a plain Poisson gene: never among the top 10
    import anndata as ad

    names = [f"g{i}" for i in range(n_genes)]
    adata = ad.AnnData(sparse.csr_matrix(x), var={"gene": names})
    adata.var_names = names
    top = select_hvgs(adata.copy(), HVGParams(n_top_genes=10))
    assert top.n_vars == 10 and "g59" not in top.var_names
    assert len(set(top.var_names) & {f"g{i}" for i in range(10)}) >= 8
    with caplog.at_level(logging.INFO):
        kept = select_hvgs(adata.copy(), HVGParams(n_top_genes=10, keep=["g59", "g3", "NOPE"]))
    assert set(kept.var_names) == set(top.var_names) | {"g59", "g3"}
    assert list(kept.var_names) == [g for g in names if g in set(kept.var_names)]  # data order
    np.testing.assert_array_equal(kept[:, "g59"].X.toarray().ravel(), x[:, 59])
    assert "lacks: 'NOPE'" in caplog.text and "kept 1 named genes" in caplog.text
