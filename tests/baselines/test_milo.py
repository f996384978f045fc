import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse
from sklearn.metrics import average_precision_score

from mrvi_repro.baselines import MiloConfig, milo_da, pca_representation
from mrvi_repro.baselines._milo import cell_means

KEY = "sample_assignment"
DA = "covariate_2_strong"  # True: subjects whose subset B is depleted most, subset C enriched


@pytest.fixture(scope="module")
def semi_pca(tiny_semi):
    adata = tiny_semi.copy()
    adata.obsm["X_pca"] = pca_representation(adata, n_comps=30)  # Milo uses 30
    return adata


@pytest.fixture(scope="module")
def milo(semi_pca):
    return milo_da(semi_pca, sample_key=KEY, covariate=DA)


def test_layout(semi_pca, milo):
    assert milo["log_ratio"].dims == ("cell",)
    assert milo["log_ratio"].dtype == np.float32
    assert milo["cell"].to_numpy().tolist() == semi_pca.obs_names.tolist()
    assert set(milo["logFC"].dims) == {"nhood"}
    n = milo.sizes["nhood"]
    assert 20 < n < 0.1 * semi_pca.n_obs  # refinement merges some of the 300 sampled cells
    assert milo.attrs["n_tested"] == n
    assert set(milo["index_cell"].to_numpy()) <= set(semi_pca.obs_names)
    assert (milo["n_cells"] >= MiloConfig().k + 1).all()  # index cell + its k nearest at least
    fdr = milo["SpatialFDR"].to_numpy()
    assert np.all((fdr >= 0) & (fdr <= 1))
    assert milo.attrs["design"] == f"~ {DA}"
    # a cell's score is NaN exactly when it lies in no neighbourhood
    none = milo["n_nhoods"].to_numpy() == 0
    assert np.array_equal(np.isnan(milo["log_ratio"].to_numpy()), none)
    assert none.mean() < 0.05


def test_scores_planted_da_cells(semi_pca, milo):
    truth = semi_pca.obs["da_cell"].to_numpy()
    score = np.nan_to_num(np.abs(milo["log_ratio"].to_numpy()))  # NaN -> 0 as the reference
    ap = average_precision_score(truth, score)
    assert ap > 0.7, ap  # chance: the fraction of DA cells, about 0.35
    assert score[truth].mean() > 2 * score[~truth].mean()


def test_sign_convention(semi_pca, milo):
    # MrVI's orientation: log q(second level) - log q(first), levels sorted as strings
    assert (milo.attrs["group_a"], milo.attrs["group_b"]) == ("True", "False")
    lr = milo["log_ratio"].to_numpy()
    subset = semi_pca.obs["subset"].to_numpy()
    assert np.nanmean(lr[subset == "C"]) > 0.2  # C enriched in the "True" subjects
    assert np.nanmean(lr[subset == "B"]) < -0.2  # B depleted


def test_relabelled_levels_flip_the_sign(semi_pca, milo):
    adata = semi_pca.copy()
    # "A" now names the True subjects: it sorts first, so it becomes the reference
    adata.obs["strong"] = np.where(adata.obs[DA].to_numpy(), "A", "B")
    flipped = milo_da(adata, sample_key=KEY, covariate="strong")
    assert (flipped.attrs["group_a"], flipped.attrs["group_b"]) == ("B", "A")
    np.testing.assert_array_equal(flipped["index_cell"], milo["index_cell"])
    np.testing.assert_allclose(flipped["logFC"], -milo["logFC"], atol=1e-4)
    np.testing.assert_allclose(flipped["PValue"], milo["PValue"], rtol=1e-3, atol=1e-8)


def test_cell_means():
    nhoods = sparse.csr_matrix(np.array([[1, 1, 0], [0, 1, 1], [0, 0, 0], [0, 0, 1]]))
    values = np.array([1.0, 3.0, np.nan])
    mean, count = cell_means(nhoods, values, chunk=2)
    np.testing.assert_allclose(mean, [2.0, 3.0, np.nan, np.nan])
    assert count.tolist() == [2, 1, 0, 0]
    per_gene, _ = cell_means(nhoods, np.column_stack([values, 2 * values]))
    assert per_gene.shape == (4, 2)
    np.testing.assert_allclose(per_gene[:, 1], 2 * mean)


def toy(n_samples=6, cells_per_sample=30, seed=0):
    rng = np.random.default_rng(seed)
    n = n_samples * cells_per_sample
    samples = np.repeat([f"s{i}" for i in range(n_samples)], cells_per_sample)
    half = np.isin(samples, [f"s{i}" for i in range(n_samples // 2)])
    obs = pd.DataFrame(
        {
            "sample": samples,
            "cond": np.where(half, "ctrl", "treated"),
            "site": np.where(half, "x", "y"),  # confounded with cond
            "kind": np.tile(["u", "v", "w"], n // 3),  # varies within samples
            "dose": pd.Series(samples).map(lambda s: s[-1]).to_numpy(),  # 6 values
        },
        index=[f"c{i}" for i in range(n)],
    )
    rep = rng.normal(size=(n, 5)).astype(np.float32)
    x = sparse.csr_matrix(rng.poisson(3, size=(n, 20)).astype(np.float32))
    return ad.AnnData(X=x, obs=obs, obsm={"X_pca": rep})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"sample_key": "donor"}, r"sample_key='donor'"),
        ({"covariate": "disease"}, r"covariate='disease'"),
        ({"batch_key": "lane"}, r"batch_key='lane'"),
        ({"covariate": "kind"}, r"varies within 6 sample"),
        ({"covariate": "dose"}, r"exactly two values .* 6"),
        ({"batch_key": "site"}, r"confounded"),
        ({"representation": "X_umap"}, r"unknown obsm key 'X_umap'"),
        ({"config": MiloConfig(k=500)}, r"needs more than 500 cells"),
    ],
)
def test_bad_inputs(kwargs, match):
    args = {"sample_key": "sample", "covariate": "cond"} | kwargs
    with pytest.raises(ValueError, match=match):
        milo_da(toy(), **args)


def test_one_sample_per_group():
    adata = toy(n_samples=2)
    with pytest.raises(ValueError, match=r"at least 2 samples .*\{'ctrl': 1, 'treated': 1\}"):
        milo_da(adata, sample_key="sample", covariate="cond")


def test_bad_config():
    with pytest.raises(ValueError, match="prop must lie in"):
        MiloConfig(prop=0.0)
