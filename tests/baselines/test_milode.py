import anndata as ad
import edgepython as ep
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from mrvi_repro.baselines import (
    MILODE_COLUMNS,
    MiloDEConfig,
    assign_neighbourhoods,
    milode,
    pca_representation,
)
from mrvi_repro.baselines._milode import (
    greedy_set_cover,
    overlap_matrix,
    refined_index_cells,
    spatial_pval_adjustment,
    weighted_bh,
)

KEY = "sample_assignment"
DE = "covariate_1_top"  # T1/T2: the top split of the subject tree, planted in subset A


@pytest.fixture(scope="module")
def semi_pca(tiny_semi):
    adata = tiny_semi.copy()
    adata.obsm["X_pca"] = pca_representation(adata, n_comps=30)  # miloDE uses 30
    return adata


@pytest.fixture(scope="module")
def de(semi_pca):
    return milode(semi_pca, sample_key=KEY, covariate=DE)


def planted_lfc(adata):
    """log2 ratio of mean normalised expression, T2 vs T1 subjects, over subset-A cells."""
    in_a = (adata.obs["subset"] == "A").to_numpy()
    x = adata.X[in_a]
    x = sparse.csr_matrix(x.multiply(1e4 / np.asarray(x.sum(axis=1))))
    top = adata.obs[DE].to_numpy()[in_a]
    mean = {t: np.asarray(x[top == t].mean(axis=0)).ravel() for t in ("T1", "T2")}
    return np.log2((mean["T2"] + 1e-2) / (mean["T1"] + 1e-2))


def test_layout(semi_pca, de):
    assert tuple(de.table.columns) == MILODE_COLUMNS
    assert de.lfc["lfc"].dims == ("cell", "gene")
    assert de.lfc["lfc"].dtype == np.float32
    assert de.lfc["gene"].to_numpy().tolist() == semi_pca.var_names.tolist()
    n_nhoods = de.nhoods.shape[1]
    assert de.nhoods.shape[0] == semi_pca.n_obs
    assert len(de.index_cells) == n_nhoods >= 2
    assert len(de.table) == n_nhoods * de.table["gene"].nunique()
    assert de.lfc.attrs["group_a"] == "T2" and de.lfc.attrs["design"] == f"~ {DE}"
    # each index cell is in its own neighbourhood; set cover keeps every cell covered
    position = {name: i for i, name in enumerate(semi_pca.obs_names)}
    for j, center in enumerate(de.index_cells):
        assert de.nhoods[position[center], j] == 1
    assert (de.lfc["n_nhoods"] > 0).all()
    tested = de.table.groupby("nhood")["test_performed"].first().to_numpy()
    assert tested.all()
    p = de.table[["pvalue", "pval_corrected_across_genes", "pval_corrected_across_nhoods"]]
    assert ((p.fillna(0.5) >= 0) & (p.fillna(0.5) <= 1)).all().all()


def test_matches_direct_edgepython(semi_pca, de):
    # the neighbourhood with the most DE genes, redone by hand: sum counts per sample, drop
    # samples with < 3 cells, filterByExpr, TMM, estimateDisp (edgeR 3.x's legacy trend span),
    # glmQLFit(robust, legacy), QL F-test
    n_de = de.table.groupby("nhood")["pval_corrected_across_genes"].apply(
        lambda p: (p < 0.05).sum()
    )
    j = int(n_de.idxmax())
    assert n_de[j] > 0
    cells = de.nhoods.tocsc()[:, j].indices
    x = semi_pca.X[cells].toarray()
    samples = semi_pca.obs[KEY].astype(str).to_numpy()[cells]
    summed = pd.DataFrame(x, columns=semi_pca.var_names).groupby(samples).sum()
    n_cells = pd.Series(samples).value_counts()
    summed = summed.loc[n_cells[n_cells >= 3].index.sort_values()]
    top = semi_pca.obs.groupby(KEY, observed=True)[DE].first().astype(str)
    design = np.column_stack([np.ones(len(summed)), (top[summed.index] == "T2").to_numpy(float)])
    y = summed.to_numpy().T
    lib = y.sum(axis=0)
    keep = ep.filter_by_expr(
        y, group=summed.index.to_numpy(), lib_size=lib, min_count=3, min_total_count=4
    )
    dge = ep.calc_norm_factors(ep.make_dgelist(y[keep], lib_size=lib))
    dge = ep.estimate_disp(dge, design=design, legacy_span=True)
    fit = ep.glm_ql_fit(dge, design=design, robust=True, legacy=True)
    direct = ep.top_tags(ep.glm_ql_ftest(fit, coef=1), n=np.inf, sort_by="none")["table"]

    ours = de.table[de.table["nhood"] == j].set_index("gene").reindex(semi_pca.var_names)
    tested = ours["pvalue"].notna().to_numpy()
    np.testing.assert_array_equal(tested, keep)
    np.testing.assert_allclose(ours["logFC"].to_numpy()[keep], direct["logFC"], rtol=1e-10)
    np.testing.assert_allclose(ours["pvalue"].to_numpy()[keep], direct["PValue"], rtol=1e-10)
    np.testing.assert_allclose(
        ours["pval_corrected_across_genes"].to_numpy()[keep], direct["FDR"], rtol=1e-10
    )


def test_lfc_signs_match_planted_de(semi_pca, de):
    truth = planted_lfc(semi_pca)
    in_a = (semi_pca.obs["subset"] == "A").to_numpy()
    est = np.nanmean(de.lfc["lfc"].to_numpy()[in_a], axis=0)
    ok = np.isfinite(est)
    assert ok.mean() > 0.9
    assert np.corrcoef(truth[ok], est[ok])[0, 1] > 0.8
    strong = ok & (np.abs(truth) > 0.5)
    assert strong.sum() >= 5
    assert np.all(np.sign(est[strong]) == np.sign(truth[strong]))
    # DE calls fall in neighbourhoods made of subset-A cells
    subset_a = np.asarray(de.nhoods[in_a].sum(axis=0)).ravel() / de.nhoods.sum(axis=0).A1
    calls = de.table[de.table["pval_corrected_across_genes"] < 0.05]
    assert len(calls) >= 5
    assert (subset_a[calls["nhood"].to_numpy()] > 0.5).all()


def test_cell_lfc_is_mean_over_its_nhoods(de):
    counts = np.diff(de.nhoods.indptr)
    cell = int(np.flatnonzero(counts >= 2)[0])
    mine = de.nhoods[cell].indices
    wide = de.table.pivot(index="gene", columns="nhood", values="logFC")
    expected = wide[mine].mean(axis=1, skipna=True)
    got = de.lfc["lfc"].isel(cell=cell).to_series().reindex(expected.index)
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_across_nhoods_correction(de):
    overlap = (de.nhoods.T @ de.nhoods).toarray()  # miloDE: crossprod(nhoods)
    np.testing.assert_allclose(overlap_matrix(de.nhoods), overlap)
    wide = de.table.pivot(index="nhood", columns="gene", values="pvalue")
    across = de.table.pivot(index="nhood", columns="gene", values="pval_corrected_across_nhoods")
    n_tested = wide.notna().sum(axis=0)
    # a gene tested everywhere: weights over all neighbourhoods
    everywhere = n_tested.index[n_tested == wide.shape[0]][0]
    np.testing.assert_allclose(
        across[everywhere], weighted_bh(wide[everywhere].to_numpy(), 1 / overlap.sum(axis=1))
    )
    # a gene tested in some: weights over those only, NaN elsewhere
    some = n_tested.index[(n_tested > 1) & (n_tested < wide.shape[0])][0]
    tested = wide[some].notna().to_numpy()
    expected = np.full(wide.shape[0], np.nan)
    expected[tested] = weighted_bh(
        wide[some].to_numpy()[tested], 1 / overlap[np.ix_(tested, tested)].sum(axis=1)
    )
    np.testing.assert_allclose(across[some], expected)
    for gene in (everywhere, some, *n_tested.index[n_tested == 1][:1]):
        np.testing.assert_allclose(
            across[gene], spatial_pval_adjustment(wide[gene].to_numpy(), de.nhoods)
        )


def brute_weighted_bh(p, w):
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    for i in np.flatnonzero(ok):
        # min over j with p_j >= p_i of sum(w) * p_j / (sum of w_k over p_k <= p_j)
        cands = [
            w[ok].sum() * p[j] / w[ok & (p <= p[j])].sum() for j in np.flatnonzero(ok & (p >= p[i]))
        ]
        out[i] = min(1.0, min(cands))
    return out


def test_weighted_bh_formula():
    rng = np.random.default_rng(0)
    p = rng.uniform(size=12) ** 3
    p[[2, 7]] = np.nan
    w = rng.uniform(0.1, 2.0, size=12)
    np.testing.assert_allclose(weighted_bh(p, w), brute_weighted_bh(p, w))
    # equal weights: plain Benjamini-Hochberg
    from scipy.stats import false_discovery_control

    q = rng.uniform(size=20)
    np.testing.assert_allclose(weighted_bh(q, np.ones(20)), false_discovery_control(q))


def test_spatial_pval_adjustment_weights_the_tested_nhoods_only():
    # nhoods (columns) over 6 cells: {0,1,2}, {2,3}, {3,4,5}, {0,5}
    cols = [[0, 1, 2], [2, 3], [3, 4, 5], [0, 5]]
    m = sparse.lil_matrix((6, len(cols)))
    for j, cells in enumerate(cols):
        m[cells, j] = 1
    m = m.tocsr()
    p = np.array([0.01, np.nan, 0.04, 0.03])
    # overlaps among nhoods 0, 2, 3: sizes 3, 3, 2; 0-3 share cell 0, 2-3 cell 5, 0-2 none
    w = 1 / np.array([3 + 0 + 1, 0 + 3 + 1, 1 + 1 + 2])
    expected = weighted_bh(p, np.array([w[0], np.nan, w[1], w[2]]))
    np.testing.assert_allclose(spatial_pval_adjustment(p, m), expected)
    assert np.isnan(spatial_pval_adjustment(p, m)[1])
    # one p-value (or none): returned as it is
    lone = np.array([np.nan, 0.002, np.nan, np.nan])
    np.testing.assert_array_equal(spatial_pval_adjustment(lone, m), lone)
    assert np.isnan(spatial_pval_adjustment(np.full(4, np.nan), m)).all()


def test_refined_sampling_picks_most_triangles():
    # vertex 0 is linked to 1..4; among them 2, 3, 4 form a triangle and 1 is a leaf
    edges = [(0, 1), (0, 2), (0, 3), (0, 4), (2, 3), (3, 4), (2, 4), (1, 5)]
    rows, cols = zip(*edges, strict=True)
    a = sparse.coo_matrix((np.ones(len(edges)), (rows, cols)), shape=(6, 6))
    a = sparse.csr_matrix(a + a.T)
    a.sort_indices()

    class Fixed:
        def choice(self, n, size, replace):
            return np.array([0, 5])

    picks = refined_index_cells(a, prop=2 / 6, rng=Fixed())
    # 0 -> first of 2, 3, 4 (ties by cell order); 5 -> its only neighbour 1
    assert picks.tolist() == [2, 1]


def test_greedy_set_cover():
    # sets (columns): {0,1,2,3}, {0,1}, {3,4}, {4,5}, {2}
    cols = [[0, 1, 2, 3], [0, 1], [3, 4], [4, 5], [2]]
    m = sparse.lil_matrix((7, len(cols)))
    for j, cells in enumerate(cols):
        m[cells, j] = 1
    assert greedy_set_cover(m.tocsc()).tolist() == [0, 3]


def test_order_two_neighbourhoods():
    rng = np.random.default_rng(1)
    rep = rng.normal(size=(120, 4))
    cfg = MiloDEConfig(k=4, prop=0.1, filtering=False, seed=2)
    first, index = assign_neighbourhoods(
        rep, MiloDEConfig(k=4, prop=0.1, order=1, seed=2, filtering=False)
    )
    second, index2 = assign_neighbourhoods(rep, cfg)
    assert index.tolist() == index2.tolist()
    # order 2 = cells reachable in <= 2 steps of the order-1 graph
    from mrvi_repro.baselines._milo import knn_adjacency

    graph, _ = knn_adjacency(rep, k=4)
    reach = (graph + graph @ graph + sparse.identity(120)).tocsr()
    for j, c in enumerate(index):
        assert set(second[:, j].nonzero()[0]) == set(reach[c].nonzero()[1])
        assert set(first[:, j].nonzero()[0]) == set(graph[c].nonzero()[1]) | {c}
    filtered, kept = assign_neighbourhoods(rep, MiloDEConfig(k=4, prop=0.1, seed=2))
    assert set(kept) <= set(index) and len(kept) <= len(index)
    covered = lambda m: set(np.flatnonzero(np.asarray(m.sum(axis=1)).ravel()))
    assert covered(filtered) == covered(second)


def toy(n_samples=6, cells_per_sample=40, n_genes=30, seed=0):
    rng = np.random.default_rng(seed)
    n = n_samples * cells_per_sample
    samples = np.repeat([f"s{i}" for i in range(n_samples)], cells_per_sample)
    half = np.isin(samples, [f"s{i}" for i in range(n_samples // 2)])
    obs = pd.DataFrame(
        {"sample": samples, "cond": np.where(half, "ctrl", "treated")},
        index=[f"c{i}" for i in range(n)],
    )
    x = sparse.csr_matrix(rng.poisson(4, size=(n, n_genes)).astype(np.float32))
    rep = rng.normal(size=(n, 5)).astype(np.float32)
    return ad.AnnData(
        X=x, obs=obs, obsm={"X_pca": rep}, var=pd.DataFrame(index=[f"g{i}" for i in range(n_genes)])
    )


def test_toy_runs_and_nothing_is_called():
    res = milode(toy(), sample_key="sample", covariate="cond", config=MiloDEConfig(k=10))
    assert res.lfc.attrs["n_tested"] >= 1
    assert (res.table["pval_corrected_across_genes"].dropna() > 0.05).mean() > 0.9


def test_one_sample_per_group():
    with pytest.raises(ValueError, match=r"at least 2 samples .*\{'ctrl': 1, 'treated': 1\}"):
        milode(toy(n_samples=2), sample_key="sample", covariate="cond")


def test_no_testable_neighbourhood():
    cfg = MiloDEConfig(k=10, min_n_cells_per_sample=1000)
    with pytest.raises(ValueError, match=r"none of the \d+ neighbourhoods could be tested"):
        milode(toy(), sample_key="sample", covariate="cond", config=cfg)


def test_no_gene_passes_the_filter():
    cfg = MiloDEConfig(k=10, min_count=1e6)
    with pytest.raises(ValueError, match=r"keeps no gene under filterByExpr"):
        milode(toy(), sample_key="sample", covariate="cond", config=cfg)


def test_untestable_nhood_is_nan():
    # the cells of s0 and s1 (both "ctrl") sit far away: neighbourhoods there see one level only
    adata = toy()
    far = adata.obs["sample"].isin(["s0", "s1"]).to_numpy()
    adata.obsm["X_pca"][far] += 100.0
    res = milode(adata, sample_key="sample", covariate="cond", config=MiloDEConfig(k=10))
    performed = res.table.groupby("nhood")["test_performed"].first()
    assert performed.any() and not performed.all()
    untested = res.table[~res.table["test_performed"]]
    assert untested[["logFC", "pvalue", "pval_corrected_across_nhoods"]].isna().all().all()
    lfc = res.lfc["lfc"].to_numpy()
    assert np.isnan(lfc[far]).all() and np.isfinite(lfc[~far]).any()


def test_rejects_normalised_data():
    adata = toy()
    adata.X = adata.X * 0.5
    with pytest.raises(ValueError, match="non-integer"):
        milode(adata, sample_key="sample", covariate="cond")
