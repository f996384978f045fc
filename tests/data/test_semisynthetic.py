import logging

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.cluster import hierarchy
from scipy.spatial.distance import pdist, squareform

from mrvi_repro.data.contract import validate_adata
from mrvi_repro.data.semisynthetic import SUBSETS, leiden_clusters, make_semisynthetic
from mrvi_repro.settings.data import SemisyntheticParams

KEY = "sample_assignment"


def per_subject(adata, column):
    return adata.obs.groupby(KEY, observed=True)[column].first()


def subject_profiles(adata, subset):
    """Mean log-normalised expression of each subject's cells of one subset."""
    mask = (adata.obs["subset"] == subset).to_numpy()
    x = adata.X[mask]
    x = x.multiply(1e4 / np.asarray(x.sum(axis=1))).tocsr()
    x.data = np.log1p(x.data)
    frame = pd.DataFrame(x.toarray())
    return frame.groupby(adata.obs[KEY].to_numpy()[mask]).mean()


def within_between_ratio(adata, subset):
    """Mean distance between subjects of one covariate-1 group over that across groups."""
    profiles = subject_profiles(adata, subset)
    dist = squareform(pdist(profiles.to_numpy()))
    group = per_subject(adata, "covariate_1").loc[profiles.index].to_numpy()
    same = group[:, None] == group[None, :]
    off_diagonal = ~np.eye(len(group), dtype=bool)
    return dist[same & off_diagonal].mean() / dist[~same].mean()


def test_contract_and_bookkeeping(tiny_semi):
    validate_adata(
        tiny_semi,
        sample_key=KEY,
        labels_key="leiden",
        sample_covariates=["covariate_1", "covariate_1_top", "covariate_2", "covariate_2_strong"],
    )
    obs = tiny_semi.obs
    assert obs[KEY].nunique() == 32
    assert list(obs["subset"].cat.categories) == list(SUBSETS)
    assert (obs["de_cell"] == (obs["subset"] == "A")).all()
    assert (obs["da_cell"] == obs["subset"].isin(["B", "C"])).all()
    assert obs.loc[obs["resampled"], "subset"].eq("C").all()
    assert tiny_semi.obs_names.is_unique
    gt = tiny_semi.uns["semisynthetic"]
    assert gt["subset_clusters"] == {"A": "0", "B": "1", "C": "3"}
    assert (obs.loc[obs["subset"] == "A", "leiden"] == "0").all()


def test_subset_a_subjects_follow_the_planted_hierarchy(tiny_semi):
    obs = tiny_semi.obs
    a = obs[obs["subset"] == "A"]
    # each subject's subset-A cells come from one subcluster: the subject's covariate-1 group
    assert (a.groupby(KEY, observed=True)["subcluster"].nunique() == 1).all()
    assert (a["subcluster"].astype(str).str[1:] == a["covariate_1"].astype(str).str[1:]).all()
    # 4 replicate subjects per group, numbered in the tree's leaf order
    groups = per_subject(tiny_semi, "covariate_1")
    assert groups.value_counts().eq(4).all()
    assert list(groups.to_numpy()) == [f"G{g}" for g in np.repeat(np.arange(1, 9), 4)]

    gt = tiny_semi.uns["semisynthetic"]
    linkage = np.asarray(gt["subject_linkage"])
    assert hierarchy.is_valid_linkage(linkage) and linkage.shape == (31, 4)
    coph = squareform(hierarchy.cophenet(linkage))
    group = groups.loc[list(gt["subject_order"])].to_numpy()
    top = per_subject(tiny_semi, "covariate_1_top").loc[list(gt["subject_order"])].to_numpy()
    same_group = group[:, None] == group[None, :]
    same_top = top[:, None] == top[None, :]
    assert np.all(coph[same_group] == 0) and np.all(coph[~same_group] > 0)
    # the top split of the tree is covariate_1_top: merges across it happen last
    assert coph[~same_top].min() > coph[same_top].max()
    assert set(np.unique(top)) == {"T1", "T2"}
    for subject in gt["subject_order"]:
        assert gt["subject_newick"].count(f"{subject}:") == 1


def test_de_signal_only_in_subset_a(tiny_semi):
    ratio_a = within_between_ratio(tiny_semi, "A")
    assert ratio_a < 0.9  # subjects of one group resemble each other in subset A
    for subset in ("B", "C", "Other"):
        assert within_between_ratio(tiny_semi, subset) > 0.95, subset  # and nowhere else


def test_da_proportions_follow_covariate_2(tiny_semi):
    counts = pd.crosstab(tiny_semi.obs[KEY], tiny_semi.obs["subset"])
    rank = per_subject(tiny_semi, "covariate_2").loc[counts.index]
    strong = per_subject(tiny_semi, "covariate_2_strong").loc[counts.index].to_numpy()
    assert strong.sum() == 16
    assert set(rank[strong]) == {"R1", "R2"}
    share_b = counts["B"] / (counts["B"] + counts["C"])
    assert share_b[strong].mean() < share_b[~strong].mean() - 0.05
    # B depletion follows the rate: the mean B share falls with every rank from R4 to R1
    by_rank = share_b.groupby(rank.to_numpy()).mean()
    assert by_rank["R1"] < by_rank["R2"] < by_rank["R4"]
    assert by_rank["R3"] < by_rank["R4"]


def test_b_plus_c_constant_per_subject(tiny_base, tiny_semi):
    no_da = make_semisynthetic(tiny_base, SemisyntheticParams(seed=3, subsample_rates=(1, 1, 1, 1)))
    with_da = pd.crosstab(tiny_semi.obs[KEY], tiny_semi.obs["subset"])
    without = pd.crosstab(no_da.obs[KEY], no_da.obs["subset"])
    pd.testing.assert_series_equal(with_da["B"] + with_da["C"], without["B"] + without["C"])
    pd.testing.assert_series_equal(with_da["A"], without["A"])
    pd.testing.assert_series_equal(with_da["Other"], without["Other"])
    assert (with_da["B"] <= without["B"]).all() and (with_da["B"] < without["B"]).any()
    assert not no_da.obs["resampled"].any()


def test_other_subsets_carry_no_abundance_signal(tiny_semi):
    other = tiny_semi.obs[tiny_semi.obs["subset"] == "Other"]
    table = pd.crosstab(other[KEY], other["leiden"].astype(str))
    assert stats.chi2_contingency(table.to_numpy()).pvalue > 0.01
    totals = other[KEY].value_counts()
    assert stats.chisquare(totals.to_numpy()).pvalue > 0.01


def test_seeded(tiny_base, tiny_semi):
    again = make_semisynthetic(tiny_base, SemisyntheticParams(seed=3))
    pd.testing.assert_frame_equal(again.obs, tiny_semi.obs)
    other = make_semisynthetic(tiny_base, SemisyntheticParams(seed=4))
    assert not other.obs[KEY].equals(tiny_semi.obs[KEY])


def test_too_few_clusters_is_a_clear_error(tiny_base):
    # six well separated cell types: Leiden at 0.1 finds six clusters, not the ten rank 9 needs
    with pytest.raises(
        ValueError,
        match=r"found 6 clusters.*at least 10; raise the resolution \(semisynthetic.resolution",
    ):
        make_semisynthetic(tiny_base, SemisyntheticParams(subset_ranks=(0, 1, 9), seed=3))


def test_the_clustering_pcs_are_capped_to_the_data(tiny_base, caplog):
    small = tiny_base[:40, :30].copy()
    with caplog.at_level(logging.INFO):
        clusters = leiden_clusters(small, resolution=0.1, n_neighbors=5, n_pcs=50, seed=0)
    assert len(clusters) == 40
    assert "semisynthetic.n_pcs = 50 capped to 29: 40 cells x 30 genes" in caplog.text


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"subsample_rates": (0.5, 1.0)}, "one per replicate rank"),
        ({"subsample_rates": (0.0, 0.5, 1.0, 1.0)}, r"lie in \(0, 1\]"),
        ({"subset_ranks": (0, 0, 1)}, "3 distinct"),
        ({"n_subclusters": 1}, "n_subclusters"),
    ],
)
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SemisyntheticParams(**kwargs)
