import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from mrvi_repro.baselines import (
    composition_distances,
    composition_subclusters,
    pca_representation,
)

KEY = "sample_assignment"


def per_subject(adata, column):
    return adata.obs.groupby(KEY, observed=True)[column].first().astype(str)


def gap(dist, labels, a, b):
    """Mean distance between samples labelled a and b minus the mean within a and within b."""
    d = dist.to_numpy()
    lab = labels.loc[dist["sample_x"].to_numpy()].to_numpy()
    off = ~np.eye(len(lab), dtype=bool)
    ia, ib = lab == a, lab == b
    between = d[np.ix_(ia, ib)].mean()
    within = np.concatenate([d[np.ix_(m, m)][off[np.ix_(m, m)]] for m in (ia, ib)]).mean()
    return between - within


@pytest.fixture(scope="module")
def semi(tiny_semi):
    """tiny_semi with subsets B and C as one cluster and its PCA representation.

    B and C are separate Leiden clusters and the construction subsamples B and resamples C
    uniformly, so proportions *within* either carry no DA signal; the covariate-2 effect is the
    balance between them, which a composition baseline sees when both share a cluster.
    """
    adata = tiny_semi.copy()
    adata.obs["cluster"] = np.where(adata.obs["da_cell"], "BC", adata.obs["subset"].astype(str))
    adata.obsm["X_pca"] = pca_representation(adata)
    return adata


@pytest.fixture(scope="module")
def dist(semi):
    return composition_distances(
        semi, representation="X_pca", sample_key=KEY, cluster_key="cluster"
    )


def test_layout(semi, dist):
    assert dist.name == "distance"
    assert dist.dims == ("group", "sample_x", "sample_y")
    assert dist["group"].to_numpy().tolist() == ["A", "BC", "Other"]
    samples = sorted(semi.obs[KEY].astype(str).unique())
    assert dist["sample_x"].to_numpy().tolist() == samples
    assert dist["sample_y"].to_numpy().tolist() == samples
    assert dist["n_cells"].to_numpy().tolist() == [
        int((semi.obs["cluster"] == g).sum()) for g in ("A", "BC", "Other")
    ]
    d = dist.to_numpy()
    assert np.isfinite(d).all()
    np.testing.assert_allclose(d, d.transpose(0, 2, 1))
    np.testing.assert_allclose(np.diagonal(d, axis1=1, axis2=2), 0.0)
    assert d.max() <= np.sqrt(2) + 1e-9


def test_da_structure_in_bc_only(semi, dist):
    cov2 = per_subject(semi, "covariate_2")
    assert gap(dist.sel(group="BC"), cov2, "R1", "R4") > 0.08
    assert abs(gap(dist.sel(group="Other"), cov2, "R1", "R4")) < 0.04
    # with covariate_2 permuted over subjects the structure is gone
    shuffled = pd.Series(np.random.default_rng(0).permutation(cov2.to_numpy()), index=cov2.index)
    assert gap(dist.sel(group="BC"), shuffled, "R1", "R4") < 0.05


def test_subject_groups_in_subset_a(semi, dist):
    # subset A subjects of one covariate-1 group share subclusters: closer than across groups
    cov1 = per_subject(semi, "covariate_1")
    d = dist.sel(group="A").to_numpy()
    lab = cov1.loc[dist["sample_x"].to_numpy()].to_numpy()
    same = (lab[:, None] == lab[None, :]) & ~np.eye(len(lab), dtype=bool)
    different = lab[:, None] != lab[None, :]
    assert d[same].mean() < 0.75 * d[different].mean()


def toy(n=90, seed=0):
    """Cluster c1 (n - 2 cells of samples s1, s2) and cluster c0 (2 cells of sample s3)."""
    rng = np.random.default_rng(seed)
    obs = pd.DataFrame(
        {
            "sample": np.concatenate([rng.choice(["s1", "s2"], size=n - 2), ["s3", "s3"]]),
            "cluster": pd.Categorical(np.repeat(["c1", "c0"], [n - 2, 2]), ["c1", "c0"]),
        },
        index=[f"c{i}" for i in range(n)],
    )
    centers = rng.normal(scale=5, size=(3, 4))
    rep = centers[rng.integers(3, size=n)] + rng.normal(size=(n, 4))
    x = sparse.csr_matrix(rng.poisson(3, size=(n, 30)).astype(np.float32))
    return ad.AnnData(X=x, obs=obs, obsm={"rep": rep})


def test_absent_samples_are_nan_and_tiny_clusters_one_subcluster():
    adata = toy()
    d = composition_distances(
        adata, representation="rep", sample_key="sample", cluster_key="cluster", n_neighbors=10
    )
    assert d["group"].to_numpy().tolist() == ["c1", "c0"]  # categorical order
    c1 = d.sel(group="c1")
    assert np.isnan(c1.sel(sample_x="s3")).all() and np.isnan(c1.sel(sample_y="s3")).all()
    assert np.isfinite(c1.sel(sample_x="s1", sample_y="s2"))
    c0 = d.sel(group="c0")  # only s3 has cells there: one finite entry, its diagonal
    assert float(c0.sel(sample_x="s3", sample_y="s3")) == 0.0
    assert int(np.isfinite(c0).sum()) == 1
    sub = composition_subclusters(
        adata, representation="rep", cluster_key="cluster", n_neighbors=10
    )
    assert set(sub[adata.obs["cluster"] == "c0"]) == {"c0:0"}
    again = composition_distances(
        adata, representation="rep", sample_key="sample", cluster_key="cluster", n_neighbors=10
    )
    np.testing.assert_array_equal(d.to_numpy(), again.to_numpy())  # seeded


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"sample_key": "donor"}, r"sample_key='donor'"),
        ({"cluster_key": "celltype"}, r"cluster_key='celltype'"),
        ({"representation": "X_scVI"}, r"unknown obsm key 'X_scVI'"),
        ({"representation": np.zeros((5, 2))}, r"n_obs x d array \(90 rows\)"),
        ({"resolution": 0.0}, r"resolution must be > 0"),
    ],
)
def test_bad_inputs(kwargs, match):
    args = {"representation": "rep", "sample_key": "sample", "cluster_key": "cluster"} | kwargs
    with pytest.raises(ValueError, match=match):
        composition_distances(toy(), **args)


def test_pca_representation():
    adata = toy()
    before = adata.X.copy()
    rep = pca_representation(adata, n_comps=5)
    assert rep.shape == (90, 5) and rep.dtype == np.float32
    assert (adata.X != before).nnz == 0
    assert "X_pca" not in adata.obsm
    adata.X = adata.X * 0.5
    with pytest.raises(ValueError, match="non-integer"):
        pca_representation(adata)
