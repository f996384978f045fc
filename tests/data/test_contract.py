import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from mrvi_repro.data.contract import DataContractError, validate_adata

KEYS = {
    "sample_key": "sample",
    "batch_key": "batch",
    "labels_key": "cell_type",
    "sample_covariates": ["disease"],
    "min_cells_per_sample": 3,
}


def make(n_cells=40, n_genes=12, seed=0):
    rng = np.random.default_rng(seed)
    x = sparse.csr_matrix(rng.poisson(2.0, size=(n_cells, n_genes)).astype(np.float32))
    sample = np.repeat([f"s{i}" for i in range(4)], n_cells // 4)
    obs = pd.DataFrame(
        {
            "sample": sample,
            "batch": np.where(np.isin(sample, ["s0", "s1"]), "b0", "b1"),
            "cell_type": rng.choice(["T", "B"], size=n_cells),
            "disease": np.where(np.isin(sample, ["s0", "s2"]), "healthy", "sick"),
        },
        index=[f"c{i}" for i in range(n_cells)],
    )
    var = pd.DataFrame(index=[f"g{i}" for i in range(n_genes)])
    return ad.AnnData(X=x, obs=obs, var=var)


def problems_of(adata, **overrides):
    with pytest.raises(DataContractError) as info:
        validate_adata(adata, **{**KEYS, **overrides})
    return "\n".join(info.value.problems)


def test_valid_data_passes():
    validate_adata(make(), **KEYS)
    validate_adata(make(), sample_key="sample")  # optional keys may be left out


def test_dense_counts_pass():
    a = make()
    a.X = a.X.toarray()
    validate_adata(a, **KEYS)


def test_non_integer_counts():
    a = make()
    a.X = a.X.multiply(0.5).tocsr()
    assert "non-integer" in problems_of(a)


def test_negative_counts():
    a = make()
    a.X.data[0] = -3
    assert "negative" in problems_of(a)


def test_nan_counts():
    a = make()
    a.X.data[1] = np.nan
    assert "NaN" in problems_of(a)


@pytest.mark.parametrize(
    ("role", "value"),
    [("sample_key", "donor"), ("batch_key", "plate"), ("labels_key", "celltype")],
)
def test_missing_key(role, value):
    msg = problems_of(make(), **{role: value})
    assert f"no column {value!r}" in msg and role in msg


def test_missing_covariate_column():
    msg = problems_of(make(), sample_covariates=["disease", "age"])
    assert "no column 'age'" in msg and "sample_covariates[1]" in msg


def test_missing_values_in_sample_key():
    a = make()
    a.obs.loc["c0", "sample"] = np.nan
    assert "obs['sample'] (named by sample_key) has 1 missing values" in problems_of(a)


def test_covariate_varying_within_a_sample():
    a = make()
    a.obs.loc["c0", "disease"] = "sick"  # c0 belongs to s0, which is healthy
    msg = problems_of(a)
    assert "'disease' varies within 1 sample(s)" in msg and "'s0'" in msg


def test_sample_with_too_few_cells():
    a = make()
    a.obs.loc[["c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7"], "sample"] = "s1"  # s0 keeps 2 cells
    a.obs["disease"] = "healthy"
    msg = problems_of(a)
    assert "fewer than 3 cells" in msg and "s0 (2 cells)" in msg


def test_duplicate_gene_names():
    a = make()
    a.var_names = ["g0", "g0"] + [f"g{i}" for i in range(2, a.n_vars)]
    assert "duplicated gene names: 'g0'" in problems_of(a)


def test_duplicated_cell_names():
    a = make()
    a.obs_names = ["c0", "c0", "c0", "c5"] + [f"c{i}" for i in range(4, a.n_obs)]  # c0 x3, c5 x2
    assert "2 cell names are shared by 5 cells: 'c0', 'c5' (outputs are keyed by cell name" in (
        problems_of(a)
    )


def test_batch_key_equal_to_the_sample_key():
    a = make()
    msg = problems_of(a, batch_key="sample")
    assert "batch_key and sample_key are both 'sample': the nuisance covariate must be" in msg


def test_fewer_than_two_samples():
    a = make()
    a.obs["sample"] = "only"
    a.obs["disease"] = "healthy"
    assert "1 distinct sample(s); at least 2" in problems_of(a)


def test_all_problems_reported_together():
    a = make()
    a.X = a.X.multiply(0.5).tocsr()
    a.var_names = ["g0"] * a.n_vars
    with pytest.raises(DataContractError, match="my dataset violates") as info:
        validate_adata(a, **{**KEYS, "labels_key": "nope"}, what="my dataset")
    assert len(info.value.problems) == 3
