import logging
import random

import mpmath
import numpy as np
import pandas as pd
import pytest

from mrvi_repro.analysis import gsea_prerank, read_gmt


@pytest.fixture(scope="module")
def ranking():
    """1000 genes' scores and gene sets planted at the top, at the bottom and at random."""
    rng = np.random.default_rng(4)
    genes = np.array([f"G{i}" for i in range(1000)])
    scores = pd.Series(np.sort(rng.standard_normal(1000))[::-1], index=genes, name="lfc")
    sets = {
        "UP": list(rng.choice(genes[:60], 25, replace=False)),
        "DOWN": list(rng.choice(genes[-60:], 25, replace=False)),
        "RANDOM": list(rng.choice(genes, 25, replace=False)),
        "TOO_SMALL": ["G1", "G2", "G3", "NOT_A_GENE"],
        "LOWER_CASE": [g.lower() for g in genes[:25]],  # names match case-sensitively
    }
    return scores.sample(frac=1.0, random_state=0), sets  # unordered: gsea_prerank ranks


def test_gsea_calls_planted_sets(ranking, caplog):
    scores, sets = ranking
    np_state = np.random.get_state()[1].copy()  # noqa: NPY002 (blitzgsea seeds it)
    py_state, prec = random.getstate(), mpmath.mp.prec
    errors = np.geterr()
    with caplog.at_level(logging.INFO, logger="mrvi_repro.analysis._gsea"):
        table = gsea_prerank(scores, sets, seed=0)
    assert "2 of 5 sets not tested (2 with < 5 genes" in caplog.text
    assert list(table.columns) == [
        "gene_set",
        "size",
        "es",
        "nes",
        "pvalue",
        "fdr",
        "direction",
        "leading_edge",
    ]
    table = table.set_index("gene_set")
    assert sorted(table.index) == ["DOWN", "RANDOM", "UP"]
    assert table["size"].tolist() == [25, 25, 25]
    assert table.loc["UP", "fdr"] < 0.05 and table.loc["UP", "nes"] > 0
    assert table.loc["UP", "direction"] == "up"
    assert table.loc["DOWN", "fdr"] < 0.05 and table.loc["DOWN", "nes"] < 0
    assert table.loc["DOWN", "direction"] == "down"
    assert table.loc["RANDOM", "fdr"] > 0.05  # measured 0.13 (p uniform under the null)
    # the leading edge: all 25 planted genes sit before the peak, best ranked first
    ranked = list(scores.sort_values(ascending=False).index)
    up_edge = table.loc["UP", "leading_edge"].split(",")
    assert sorted(up_edge) == sorted(sets["UP"])
    assert up_edge == sorted(up_edge, key=ranked.index)
    down_edge = table.loc["DOWN", "leading_edge"].split(",")
    assert sorted(down_edge) == sorted(sets["DOWN"])
    assert down_edge[0] == min(sets["DOWN"], key=lambda g: scores[g])
    # blitzgsea's global side effects are undone
    assert np.array_equal(np.random.get_state()[1], np_state)  # noqa: NPY002
    assert random.getstate() == py_state
    assert mpmath.mp.prec == prec
    assert np.geterr() == errors


def test_gsea_is_deterministic_under_the_seed(ranking):
    scores, sets = ranking
    sets = {k: sets[k] for k in ("UP", "RANDOM")}
    first = gsea_prerank(scores, sets, seed=7)
    pd.testing.assert_frame_equal(first, gsea_prerank(scores, sets, seed=7))


def test_gsea_checks_its_inputs(ranking):
    scores, sets = ranking
    with pytest.raises(ValueError, match="duplicated genes"):
        gsea_prerank(pd.concat([scores, scores.iloc[:2]]), sets)
    empty = gsea_prerank(scores, {"NONE": ["x", "y"]})
    assert empty.empty and "nes" in empty.columns


def test_read_gmt_round_trip_and_errors(tmp_path):
    sets = {"HALLMARK_A": ["TP53", "MDM2", "CDKN1A"], "HALLMARK_B": ["KRAS", "BRAF"]}
    path = tmp_path / "sets.gmt"
    path.write_text(
        "".join(
            f"{name}\thttp://example.org/{name}\t" + "\t".join(g) + "\n" for name, g in sets.items()
        )
        + "\n"  # a blank line at the end
    )
    assert read_gmt(path) == sets

    bad = tmp_path / "bad.gmt"
    bad.write_text("HALLMARK_A\tdesc\tTP53\nHALLMARK_B desc KRAS\n")
    with pytest.raises(ValueError, match="line 2: expected 'name<TAB>description<TAB>gene"):
        read_gmt(bad)
    twice = tmp_path / "twice.gmt"
    twice.write_text("S\td\tA\nS\td\tB\n")
    with pytest.raises(ValueError, match="line 2: gene set 'S' appears twice"):
        read_gmt(twice)
    empty = tmp_path / "empty.gmt"
    empty.write_text("\n")
    with pytest.raises(ValueError, match="no gene set"):
        read_gmt(empty)
