from types import SimpleNamespace

import numpy as np
import pytest
import scipy.sparse as sp
import xarray as xr
from scipy.cluster import hierarchy
from scipy.spatial.distance import squareform

from mrvi_repro.analysis import iter_local_distances, sample_groups, stratify_cells
from mrvi_repro.analysis._stratify import sample_linkage, streaming_pca


def _dense_pca(x):
    """Reference: z-score the columns (ddof 0; constant ones only centred), numpy SVD."""
    sd = x.std(0)
    z = (x - x.mean(0)) / np.where(sd > 0, sd, 1.0)
    u, s, _ = np.linalg.svd(z, full_matrices=False)
    return u * s, s**2 / (len(x) - 1), s**2 / (s**2).sum()


def _assert_same_pca(scores, ev, evr, ref, k, rtol=1e-6, score_tol=1e-4):
    """Same explained variance (ratio) and the same scores up to each component's sign."""
    ref_scores, ref_ev, ref_evr = ref
    np.testing.assert_allclose(ev, ref_ev[:k], rtol=rtol)
    np.testing.assert_allclose(evr, ref_evr[:k], rtol=rtol)
    sign = np.sign((scores * ref_scores[:, :k]).sum(0))
    assert np.all(sign != 0)
    error = np.abs(scores * sign - ref_scores[:, :k]).max(0) / ref_scores[:, :k].std(0)
    assert error.max() < score_tol  # the scores are stored as float32


def test_streaming_pca_of_a_matrix_in_chunks():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 6)) @ rng.standard_normal((6, 40)) * rng.uniform(0.1, 5, 40)
    x += 0.01 * rng.standard_normal(x.shape) + 100.0  # large offset: cancellation would show
    x[:, 7] = 3.0  # a constant feature: centred, not scaled, not counted in the total variance
    original = x.copy()

    def chunks(_label):
        for start in range(0, len(x), 64):
            yield start, x[start : start + 64]

    ref = _dense_pca(x)
    exact = streaming_pca(chunks, n_obs=300, n_features=40, n_pcs=8, solver="covariance")
    assert exact.n_passes == 2
    _assert_same_pca(exact.scores, exact.explained_variance, exact.explained_variance_ratio, ref, 8)
    # a sketch as wide as the features spans them all: exact too
    rand = streaming_pca(
        chunks, n_obs=300, n_features=40, n_pcs=8, solver="randomized", oversamples=32
    )
    assert rand.n_passes == 2 + 2 * 2
    _assert_same_pca(rand.scores, rand.explained_variance, rand.explained_variance_ratio, ref, 8)
    np.testing.assert_allclose(np.abs(rand.components), np.abs(exact.components), atol=1e-8)
    np.testing.assert_array_equal(x, original)  # the chunks were not modified
    with pytest.raises(ValueError, match="covered 64 rows"):
        streaming_pca(lambda _: iter([(0, x[:64])]), n_obs=300, n_features=40, n_pcs=8)


@pytest.fixture(scope="module")
def subset(tiny_semi):
    return tiny_semi[np.random.default_rng(1).choice(tiny_semi.n_obs, 400, replace=False)].copy()


def _stratify_subset(model, subset, solver):
    # 400 cells in chunks of 128: three full chunks and a padded one
    return stratify_cells(model, subset, n_pcs=10, solver=solver, batch_size=128, resolution=0.05)


@pytest.fixture(scope="module")
def exact_subset(subset, tiny_semi_mrvi):
    return _stratify_subset(tiny_semi_mrvi, subset, "covariance")


@pytest.mark.parametrize("solver", ["covariance", "randomized"])
def test_streamed_pca_equals_the_dense_pca_of_the_distance_matrices(
    solver, subset, tiny_semi_mrvi, exact_subset
):
    # the same chunks as the streamed passes: float32 results depend slightly on chunk shapes
    chunks = iter_local_distances(tiny_semi_mrvi, subset, batch_size=128)
    d = np.concatenate([m for _, m in chunks])
    iu = np.triu_indices(d.shape[1], 1)
    ref = _dense_pca(d[:, iu[0], iu[1]].astype(np.float64))  # 400 x 496
    if solver == "covariance":
        ds = exact_subset
    else:
        ds = _stratify_subset(tiny_semi_mrvi, subset, solver)
    assert ds.attrs["solver"] == solver
    assert ds.attrs["n_passes"] == (3 if solver == "covariance" else 7)
    _assert_same_pca(
        ds["pcs"].values.astype(np.float64),
        ds["explained_variance"].values,
        ds["explained_variance_ratio"].values,
        ref,
        10,
        # subspace iteration converges slowest where the spectrum's gaps are small: measured
        # 4e-4 in the 8th-10th components of this fit's matrices (the first seven below 2e-5)
        score_tol=1e-4 if solver == "covariance" else 1e-3,
    )
    # every cell is in one cluster; the clusters' mean matrices are the means of their cells'
    labels = ds["cell_cluster"].values
    for c in ds["cluster"].values:
        cells = labels == c
        assert int(ds["n_cells"].sel(cluster=c)) == cells.sum()
        np.testing.assert_allclose(
            ds["distance"].sel(cluster=c).values, d[cells].mean(0), rtol=1e-4, atol=1e-5
        )
    assert sum(int(n) for n in ds["n_cells"].values) == subset.n_obs


def _planted_groups(adata, samples):
    truth = adata.obs.groupby("sample_assignment", observed=True)["covariate_1"].first()
    return np.asarray(truth.loc[samples].astype(str).to_numpy(), dtype=str)


def _most_distinct_group_in_a(adata):
    """The covariate-1 group whose subset-A cells' mean log expression is farthest from the rest."""
    a = adata[adata.obs["subset"] == "A"]
    x = a.X.toarray() if sp.issparse(a.X) else np.asarray(a.X)
    x = np.log1p(x / x.sum(1, keepdims=True) * np.median(x.sum(1)))
    g = a.obs["covariate_1"].astype(str).to_numpy()
    names = sorted(set(g))
    centroids = np.stack([x[g == k].mean(0) for k in names])
    dist = np.sqrt(((centroids[:, None] - centroids[None]) ** 2).sum(-1))
    return names[int(dist.sum(1).argmax())]


def test_subset_a_gets_its_own_cluster_whose_sample_tree_follows_the_planted_groups(
    tmp_path, tiny_semi, tiny_semi_mrvi
):
    ds = stratify_cells(tiny_semi_mrvi, tiny_semi)  # default resolution
    # the whole result survives a netCDF round trip
    ds.to_netcdf(tmp_path / "strat.nc", engine="scipy")
    back = xr.open_dataset(tmp_path / "strat.nc", engine="scipy")
    xr.testing.assert_allclose(back.load(), ds)
    back.close()

    labels = ds["cell_cluster"].values
    in_a = tiny_semi.obs["subset"].to_numpy() == "A"
    values, counts = np.unique(labels[in_a], return_counts=True)
    cluster_a = values[counts.argmax()]
    assert counts.max() / in_a.sum() > 0.95  # A's cells are (almost) all in one cluster ...
    assert in_a[labels == cluster_a].mean() > 0.95  # ... which holds (almost) nothing else
    assert len(ds["cluster"]) >= 3

    group = _planted_groups(tiny_semi, ds["sample_x"].values)
    same, off = group[:, None] == group[None, :], ~np.eye(len(group), dtype=bool)

    def tree_ratio(c):
        coph = squareform(hierarchy.cophenet(ds["linkage"].sel(cluster=c).values))
        return coph[same & off].mean() / coph[~same].mean()

    # samples of one planted group merge low in A's tree, lower than in any other cluster's tree
    ratio_a = tree_ratio(cluster_a)
    assert ratio_a < 0.7  # 0.646 on an Intel Xeon, below 0.6 on an AMD EPYC (CPU's float)
    assert all(ratio_a < tree_ratio(c) for c in ds["cluster"].values if c != cluster_a)

    # Top split: the planted tree's own top split (covariate_1_top) is a near tie (merge heights
    # 42.3 vs 40.4) and is not recovered. What the data do plant is one subcluster far more
    # distinct in expression than the others; the top split sets (samples of) that group apart.
    z = ds["linkage"].sel(cluster=cluster_a).values
    side = hierarchy.fcluster(z, t=2, criterion="maxclust")
    small = group[side == np.bincount(side)[1:].argmin() + 1]
    assert len(small) >= 2
    # On an AMD EPYC the small side was exactly that group's samples; on an Intel Xeon 3 of its 4
    # samples and 2 of another group's (the tiny model's training follows the CPU's floating
    # point): that group is the small side's majority, at 4x its share of all samples or more.
    distinct = _most_distinct_group_in_a(tiny_semi)
    assert np.mean(small == distinct) > 0.5
    assert np.mean(small == distinct) >= 4 * np.mean(group == distinct)

    # leaf order and the linkage agree; the mean matrix is the subset-A cells' mean
    np.testing.assert_array_equal(
        ds["leaf_order"].sel(cluster=cluster_a).values, hierarchy.leaves_list(z)
    )
    np.testing.assert_allclose(
        z, sample_linkage(ds["distance"].sel(cluster=cluster_a).values.astype(np.float64))
    )


def test_sample_groups_cut_each_tree_like_fcluster(exact_subset):
    ds = exact_subset
    groups = sample_groups(ds, n_groups=3)
    assert groups.dims == ("cluster", "sample")
    for c in ds["cluster"].values:
        z = ds["linkage"].sel(cluster=c).values
        ours = groups.sel(cluster=c).values
        ref = hierarchy.fcluster(z, t=3, criterion="maxclust")
        assert len(set(zip(ours, ref, strict=True))) == len(set(ref)) == len(set(ours)) <= 3
        # numbered 1, 2, ... from the left of the dendrogram
        in_order = ours[ds["leaf_order"].sel(cluster=c).values]
        assert in_order[0] == 1
        assert list(dict.fromkeys(in_order)) == sorted(set(in_order))
    assert np.all(sample_groups(ds, n_groups=1).values == 1)


def test_errors(tiny_semi_mrvi, subset):
    two = SimpleNamespace(registry=SimpleNamespace(samples=("a", "b")))
    with pytest.raises(ValueError, match="at least 3 samples"):
        stratify_cells(two, subset)
    with pytest.raises(ValueError, match="exceeds the number of features, 496"):
        stratify_cells(tiny_semi_mrvi, subset, n_pcs=497)
    with pytest.raises(ValueError, match="unknown linkage method 'nope'"):
        stratify_cells(tiny_semi_mrvi, subset, method="nope")
    with pytest.raises(ValueError, match="solver must be"):
        stratify_cells(tiny_semi_mrvi, subset, solver="arpack")
    with pytest.raises(ValueError, match="unknown linkage method"):
        sample_linkage(np.zeros((3, 3)), method="ward.D2")
    with pytest.raises(ValueError, match="n_groups must be"):
        sample_groups(xr.Dataset(), n_groups=0)
