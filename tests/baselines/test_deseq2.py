import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from mrvi_repro.baselines import DESEQ2_COLUMNS, pseudobulk, pseudobulk_deseq2

KEY = "sample_assignment"


def run(adata, group, covariate="covariate_1_top", **kwargs):
    return pseudobulk_deseq2(
        adata, sample_key=KEY, group_key="subset", group=group, covariate=covariate, **kwargs
    )


def planted_lfc(adata):
    """Cell-level log2 ratio of mean normalised expression, T2 vs T1 subclusters, in subset A.

    In subset A a subject's cells all come from the subclusters of its covariate-1 group, so this
    is the expression difference the construction plants between the covariate_1_top levels.
    """
    in_a = (adata.obs["subset"] == "A").to_numpy()
    x = adata.X[in_a]
    x = sparse.csr_matrix(x.multiply(1e4 / np.asarray(x.sum(axis=1))))
    top = adata.obs["covariate_1_top"].to_numpy()[in_a]
    mean = {t: np.asarray(x[top == t].mean(axis=0)).ravel() for t in ("T1", "T2")}
    return np.log2((mean["T2"] + 1e-2) / (mean["T1"] + 1e-2))


def shuffled_top(adata, seed):
    """Copy with covariate_1_top permuted over subjects (still constant within a subject)."""
    per_subject = adata.obs.groupby(KEY, observed=True)["covariate_1_top"].first().astype(str)
    perm = pd.Series(
        np.random.default_rng(seed).permutation(per_subject.to_numpy()), index=per_subject.index
    )
    out = adata.copy()
    out.obs["top_shuffled"] = out.obs[KEY].astype(str).map(perm).to_numpy()
    return out


@pytest.fixture(scope="module")
def de_a(tiny_semi):
    return run(tiny_semi, "A")


def test_table_layout(tiny_semi, de_a):
    assert tuple(de_a.columns) == DESEQ2_COLUMNS
    assert de_a["gene"].tolist() == tiny_semi.var_names.tolist()
    assert de_a.attrs["contrast"] == ["T2", "T1"]
    assert sum(de_a.attrs["n_samples"].values()) + len(de_a.attrs["dropped_samples"]) == 32


def test_detects_planted_de_in_subset_a(tiny_semi, de_a):
    truth = planted_lfc(tiny_semi)
    ok = np.isfinite(de_a["log2_fold_change"]).to_numpy()
    lfc = de_a["log2_fold_change"].to_numpy()[ok]
    assert np.corrcoef(truth[ok], lfc)[0, 1] > 0.8
    significant = (de_a["padj"] < 0.05).to_numpy()
    assert significant.sum() >= 5
    # every significant gene moves in the planted direction
    assert np.all(np.sign(lfc[significant[ok]]) == np.sign(truth[ok][significant[ok]]))


def test_shuffled_covariate_loses_the_signal(tiny_semi):
    # the same test with covariate_1_top permuted over subjects: fails the checks above
    shuffled = shuffled_top(tiny_semi, seed=0)
    res = run(shuffled, "A", covariate="top_shuffled", contrast=("T2", "T1"))
    ok = np.isfinite(res["log2_fold_change"]).to_numpy()
    r = np.corrcoef(planted_lfc(tiny_semi)[ok], res["log2_fold_change"].to_numpy()[ok])[0, 1]
    assert r < 0.5
    assert (res["padj"] < 0.05).sum() < 5


def test_no_de_outside_subset_a(tiny_semi):
    res = run(tiny_semi, "Other", nuisance_key=None)
    assert (res["padj"] < 0.05).sum() <= 2
    assert (res["pvalue"] < 0.05).mean() < 0.1  # about the 5% of a null


def test_nuisance_in_design(tiny_semi):
    adata = tiny_semi.copy()
    subjects = adata.obs[KEY].astype(str)
    batch = {s: f"b{i % 2}" for i, s in enumerate(sorted(subjects.unique()))}
    adata.obs["site"] = subjects.map(batch).to_numpy()
    res = run(adata, "Other", nuisance_key="site")
    assert res.attrs["design"] == "~ site + covariate_1_top"
    assert np.isfinite(res["pvalue"]).mean() > 0.9


def toy(n_samples=4, cells_per_sample=5, n_genes=20, seed=0):
    rng = np.random.default_rng(seed)
    n = n_samples * cells_per_sample
    samples = np.repeat([f"s{i}" for i in range(n_samples)], cells_per_sample)
    obs = pd.DataFrame(
        {
            "sample": samples,
            "cond": np.where(np.isin(samples, ["s0", "s1"]), "a", "b"),
            "kind": np.tile(["x", "y"], n // 2),
            "ct": np.where(np.arange(n) % cells_per_sample == 0, "rare", "common"),
        },
        index=[f"c{i}" for i in range(n)],
    )
    x = sparse.csr_matrix(rng.poisson(5, size=(n, n_genes)).astype(np.float32))
    return ad.AnnData(X=x, obs=obs, var=pd.DataFrame(index=[f"g{i}" for i in range(n_genes)]))


def test_pseudobulk_sums_counts():
    adata = toy()
    counts, n_cells = pseudobulk(adata, sample_key="sample")
    assert counts.index.tolist() == ["s0", "s1", "s2", "s3"]
    assert n_cells.tolist() == [5, 5, 5, 5]
    np.testing.assert_array_equal(counts.loc["s2"], adata.X[10:15].sum(axis=0).A1)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"sample_key": "donor"}, r"sample_key='donor'"),
        ({"covariate": "disease"}, r"covariate='disease'"),
        ({"group_key": "ct", "group": "absent"}, r"no cells with obs\['ct'\] == 'absent'"),
        ({"covariate": "kind"}, r"varies within 4 sample"),
        ({"contrast": ("a", "c")}, r"two distinct levels"),
        ({"group_key": "ct", "group": "rare"}, r"at least 2 samples per contrasted level"),
        ({"nuisance_key": "cond"}, r"confounded"),
        ({"group": "rare"}, r"without group_key"),
    ],
)
def test_bad_inputs(kwargs, match):
    args = {"sample_key": "sample", "covariate": "cond"} | kwargs
    with pytest.raises(ValueError, match=match):
        pseudobulk_deseq2(toy(), **args)


def test_one_sample_per_level():
    adata = toy()
    adata = adata[adata.obs["sample"] != "s1"].copy()
    with pytest.raises(ValueError, match=r"\{'a': 1\}"):
        pseudobulk_deseq2(adata, sample_key="sample", covariate="cond")


def test_rejects_normalised_data():
    adata = toy()
    adata.X = adata.X * 0.5
    with pytest.raises(ValueError, match="non-integer"):
        pseudobulk_deseq2(adata, sample_key="sample", covariate="cond")


def test_toy_runs_end_to_end():
    res = pseudobulk_deseq2(toy(), sample_key="sample", covariate="cond", contrast=("b", "a"))
    assert res.attrs["n_samples"] == {"a": 2, "b": 2}
    assert np.isfinite(res["log2_fold_change"]).all()
