"""Connectivity-map clusters of sci-Plex drugs from L1000 signatures, on hand-made data and the stand-in."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from mrvi_repro.data.download import load_registry
from mrvi_repro.data.l1000 import (
    choose_signatures,
    cmap_clusters,
    jaccard_similarity,
    match_perturbagens,
    name_aliases,
    normalise_name,
    read_l1000,
    read_l1000_metadata,
    signed_deg_sets,
    similarity_clusters,
)
from mrvi_repro.data.readers import SchemaError
from mrvi_repro.testing.standins.l1000 import l1000_standin_truth, write_l1000_standin
from mrvi_repro.testing.standins.resources import standin_writer, write_standin_files
from mrvi_repro.testing.standins.sciplex import SCIPLEX_DRUGS

PRODUCTS = [d[0] for d in SCIPLEX_DRUGS]
TRUTH = l1000_standin_truth()


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    root = tmp_path_factory.mktemp("l1000")
    return root, write_l1000_standin(root, seed=0)


def line_files(root: Path, line: str) -> tuple[list[Path], list[Path]]:
    sig = [root / f"l1000/{line}_sig_batch_{i}.xls" for i in range(1, {"A549": 7, "MCF7": 6}[line])]
    if line == "A549":
        meta = [root / f"l1000/A549_sig_meta_batch_{i}.xls" for i in range(1, 7)]
    else:
        meta = [root / "l1000/MCF7_sig_meta.xls"]
    return sig, meta


# --- the stand-in ---------------------------------------------------------------------------


def test_standin_writes_every_registry_key_deterministically(tmp_path, repo, standin):
    root, keys = standin
    registry = load_registry(repo / "config" / "downloads.yaml")
    assert sorted(keys) == sorted(k for k in registry if k.startswith("l1000/"))
    again = write_l1000_standin(tmp_path / "again", seed=0)
    assert again == keys
    for key in keys:
        assert (tmp_path / "again" / key).read_bytes() == (root / key).read_bytes(), key
    write_l1000_standin(tmp_path / "other", seed=1)
    assert (tmp_path / "other" / keys[0]).read_bytes() != (root / keys[0]).read_bytes()
    # the workflow's stand-in mode: any of these keys to any path, from the "l1000" writer
    assert {standin_writer(k) for k in keys} == {"l1000"}
    picked = ["l1000/MCF7_sig_meta.xls", "l1000/A549_sig_batch_3.xls"]
    paths = {k: tmp_path / "resources" / k for k in picked}
    write_standin_files(paths, seed=0)
    for key, path in paths.items():
        assert path.read_bytes() == (root / key).read_bytes(), key


def test_standin_layout(standin):
    root, _ = standin
    sig, meta = line_files(root, "A549")
    table = read_l1000(sig, meta)
    n_sig = table["signatureID"].nunique()
    assert len(table) == 978 * n_sig
    assert table.groupby("signatureID").size().eq(978).all()
    # metadata batch i lists exactly the signatures of signature batch i
    for s, m in zip(sig, meta, strict=True):
        ids = set(pd.read_csv(s, sep="\t", dtype=str)["signatureID"])
        assert ids == set(pd.read_csv(m, sep="\t", dtype=str)["SignatureId"])
    perturbagens = set(table["Perturbagen"])
    assert {"Glesatinib", "sns-314", "Bellinostat", "Estradiol"} <= perturbagens
    assert sum(p.startswith("BRD-K") for p in perturbagens) == 30
    mcf7 = read_l1000_metadata(line_files(root, "MCF7")[1])
    assert "SNS-314 Mesylate" in set(mcf7["Perturbagen"])


# --- end to end on the stand-in ------------------------------------------------------------------


@pytest.mark.parametrize("line", ["A549", "MCF7"])
def test_planted_clusters_come_back(standin, line):
    root, _ = standin
    similarity, clusters = cmap_clusters(*line_files(root, line), PRODUCTS)
    truth = TRUTH[line]
    assert list(similarity.index) == PRODUCTS == list(similarity.columns)  # all 8 matched
    planted = {d: p for p, members in truth["clusters"].items() for d in members}
    labels_true = [planted.get(d, f"alone:{d}") for d in PRODUCTS]
    labels_found = [clusters.get(d, f"alone:{d}") for d in PRODUCTS]
    assert adjusted_rand_score(labels_true, labels_found) == 1.0
    assert set(clusters.index) == set(planted)
    assert not set(clusters.index) & set(truth["singletons"])
    assert clusters["Dacinostat"] == "1"  # the largest cluster (hdac, 3 drugs) is "1"
    assert sorted(clusters.unique()) == [str(k) for k in range(1, len(truth["clusters"]) + 1)]
    # within a program the signatures share most signed DE genes; across programs none
    assert similarity.loc["Dacinostat", "Givinostat"] > 0.5
    assert similarity.loc["Dacinostat", "Crizotinib"] < 0.05


def test_clusters_of_the_standin_need_signs_exemplars_and_bh(standin):
    """The stand-in's traps bite: unsigned sets, the first signature, raw p-values."""
    root, _ = standin
    sig, meta_paths = line_files(root, "A549")
    table = read_l1000(sig, meta_paths)
    meta = read_l1000_metadata(meta_paths)
    matches = match_perturbagens(meta["Perturbagen"].unique(), PRODUCTS)
    chosen = choose_signatures(meta, matches).set_index("product_name")
    picked = table.merge(chosen[["signatureID"]].reset_index(), on="signatureID")
    sets = signed_deg_sets(picked)
    unsigned = {k: {e.rsplit(":", 1)[0] for e in v} for k, v in sets.items()}
    assert jaccard_similarity(sets).loc["Dacinostat", "Crizotinib"] == 0
    assert jaccard_similarity(unsigned).loc["Dacinostat", "Crizotinib"] > 0.3
    # the exemplar was chosen though a noise signature of the same drug comes first
    for drug in TRUTH["exemplar_after_noise"]:
        own = meta[meta["Perturbagen"] == TRUTH["A549"]["perturbagens"][drug]]
        assert len(own) == 2 and not own["is_exemplar"].iloc[0] and own["is_exemplar"].iloc[1]
        assert chosen.loc[drug, "signatureID"] == own["SignatureId"].iloc[1]
        first = table[table["signatureID"] == own["SignatureId"].iloc[0]].assign(product_name="x")
        noise = signed_deg_sets(first)["x"]  # choosing it would take the drug out of its cluster
        assert jaccard_similarity({"noise": noise, "true": sets[drug]}).iloc[0, 1] < 0.1
    # no exemplar: the first signature (the true one, the noise one is later)
    own = meta[meta["Perturbagen"] == "Bellinostat"]
    assert not own["is_exemplar"].any()
    assert chosen.loc["Belinostat", "signatureID"] == own["SignatureId"].iloc[0]
    # raw p-values would have let about 20 more genes in per signature
    for drug, group in picked.groupby("product_name"):
        raw = (group["Value_LogDiffExp"].abs() >= 0.5) & (group["Significance_pvalue"] <= 0.05)
        assert raw.sum() >= len(sets[drug]) + 15, drug


def test_excluded_false_match(standin):
    root, _ = standin
    products = [*PRODUCTS, "Estradiol"]
    similarity, clusters = cmap_clusters(*line_files(root, "A549"), products)
    assert "Estradiol" not in similarity.index and "Estradiol" not in clusters.index
    similarity, clusters = cmap_clusters(*line_files(root, "A549"), products, exclude=())
    assert clusters["Estradiol"] == clusters["Dacinostat"]  # it carries the hdac program


# --- name matching ----------------------------------------------------------------------------


def test_name_normalisation():
    assert normalise_name("Glesatinib?(MGCD265)") == "glesatinib"
    assert normalise_name("SNS-314 Mesylate") == normalise_name("sns-314") == "sns314"
    assert normalise_name("Mesylate") == "mesylate"  # a name is never emptied
    assert name_aliases("Glesatinib?(MGCD265)") == ["glesatinib", "mgcd265"]
    assert name_aliases("(+)-JQ1") == ["jq1"]


def test_match_perturbagens():
    products = ["Glesatinib?(MGCD265)", "SNS-314", "Belinostat", "Givinostat", "Estradiol"]
    perturbagens = [
        "Glesatinib",  # parenthesised part left out
        "MGCD-265",  # the parenthesised alias
        "sns-314",  # case and punctuation
        "Bellinostat",  # fuzzy: ratio 20/21 = 0.952
        "Givinostatxx",  # fuzzy but 20/22 = 0.909 ...
        "givinostat",  # ... and the product has an exact match: that one only
        "Belinostatic acid",  # far: not matched
        "Estradiol",  # excluded by default
        "BRD-K12345678",
    ]
    got = match_perturbagens(perturbagens, products)
    assert got == {
        "Glesatinib": "Glesatinib?(MGCD265)",
        "MGCD-265": "Glesatinib?(MGCD265)",
        "sns-314": "SNS-314",
        "Bellinostat": "Belinostat",
        "givinostat": "Givinostat",
    }
    assert "Bellinostat" not in match_perturbagens(perturbagens, products, min_ratio=0.96)
    assert match_perturbagens(["Estradiol"], products, exclude=()) == {"Estradiol": "Estradiol"}
    # an excluded product name drops its matches too, whatever the spelling
    assert match_perturbagens(["SNS-314"], products, exclude=["sns 314"]) == {}
    # the better of two fuzzy matches of one product
    assert match_perturbagens(["Belinostatt", "Belinostattt"], ["Belinostat"]) == {
        "Belinostatt": "Belinostat"
    }
    with pytest.raises(ValueError, match=r"min_ratio must be within \(0, 1\]"):
        match_perturbagens(perturbagens, products, min_ratio=90)


# --- one signature per drug, signed DE genes, Jaccard, clusters ------------------------------


def test_choose_signatures():
    meta = pd.DataFrame(
        {
            "SignatureId": ["s1", "s2", "s3", "s4", "s5", "s6"],
            "Perturbagen": ["a", "a", "B", "B", "b", "c"],
            "is_exemplar": [False, True, False, False, True, False],
        }
    )
    chosen = choose_signatures(meta, {"a": "A", "B": "B", "b": "B"})
    assert chosen["product_name"].tolist() == ["A", "B"]
    assert chosen["signatureID"].tolist() == ["s2", "s5"]  # exemplars, though later
    chosen = choose_signatures(meta.assign(is_exemplar=False), {"a": "A", "B": "B", "b": "B"})
    assert chosen["signatureID"].tolist() == ["s1", "s3"]  # else the first
    with pytest.raises(ValueError, match="no L1000 signature belongs to a perturbagen matched"):
        choose_signatures(meta, {"z": "Z"})
    with pytest.raises(SchemaError, match=r"lacks column\(s\) \['is_exemplar'\]"):
        choose_signatures(meta.drop(columns="is_exemplar"), {"a": "A"})


def test_signed_deg_sets_bh_by_hand():
    # x: BH over 6 genes -> padj 0.006, 0.03, 0.054, 0.054, 0.054, 0.2: only A and B pass, though
    #    C, D, F have raw p < 0.05 and |LFC| >= 0.5.
    # y: BH over 5 genes -> padj 0.005, 0.025, 0.0333, 0.0375, 0.2: C fails |LFC| (0.3), D has
    #    |LFC| exactly 0.5 (kept), E fails padj. A is down in y and up in x.
    table = pd.DataFrame(
        {
            "product_name": ["x"] * 6 + ["y"] * 5,
            "Name_GeneSymbol": list("ABCDEF") + list("ABCDE"),
            "Value_LogDiffExp": [1.0, -0.7, 0.8, -0.5, 2.0, 0.9, -1.0, -0.7, 0.3, -0.5, 2.0],
            "Significance_pvalue": [0.001, 0.01, 0.03, 0.04, 0.2, 0.045]
            + [0.001, 0.01, 0.02, 0.03, 0.2],
        }
    )
    sets = signed_deg_sets(table)
    assert sets == {"x": {"A:up", "B:down"}, "y": {"A:down", "B:down", "D:down"}}
    assert jaccard_similarity(sets).loc["x", "y"] == pytest.approx(1 / 4)
    loose = signed_deg_sets(table, min_abs_lfc=0.25, max_padj=0.06)
    assert loose["x"] == {"A:up", "B:down", "C:up", "D:down", "F:up"}
    assert loose["y"] == {"A:down", "B:down", "C:up", "D:down"}
    with pytest.raises(ValueError, match=r"p-values outside \[0, 1\]"):
        signed_deg_sets(table.assign(Significance_pvalue=2.0))
    with pytest.raises(SchemaError, match=r"lack column\(s\) \['Name_GeneSymbol'\]"):
        signed_deg_sets(table.drop(columns="Name_GeneSymbol"))


def test_jaccard_by_hand():
    sim = jaccard_similarity(
        {"p": {"a", "b", "c"}, "q": {"b", "c", "d"}, "r": {"x"}, "e": set(), "f": set()}
    )
    assert list(sim.index) == list(sim.columns) == ["p", "q", "r", "e", "f"]
    expected = np.array(
        [
            [1, 0.5, 0, 0, 0],
            [0.5, 1, 0, 0, 0],
            [0, 0, 1, 0, 0],
            [0, 0, 0, 0, 0],
            [0, 0, 0, 0, 0],
        ]
    )
    np.testing.assert_allclose(sim.to_numpy(), expected)


def block_matrix() -> pd.DataFrame:
    names = list("abcdefg")
    sim = pd.DataFrame(np.eye(7), index=names, columns=names)
    for i, j, v in [
        ("a", "b", 0.5),
        ("a", "c", 0.5),
        ("b", "c", 0.5),
        ("d", "e", 0.3),
        ("f", "g", 0.4),
        ("a", "f", 0.09),  # below the clip: no edge
    ]:
        sim.loc[i, j] = sim.loc[j, i] = v
    return sim


def test_similarity_clusters_clip_and_singletons():
    sim = block_matrix()
    clusters = similarity_clusters(sim)
    assert clusters.to_dict() == {
        "a": "1",
        "b": "1",
        "c": "1",
        "d": "2",
        "e": "2",
        "f": "3",
        "g": "3",
    }
    assert clusters.name == "cluster"
    sim.loc["f", "g"] = sim.loc["g", "f"] = 0.099  # f and g lose their edge: singletons, dropped
    clusters = similarity_clusters(sim)
    assert set(clusters.index) == set("abcde")
    assert similarity_clusters(sim, clip=0.5).to_dict() == dict.fromkeys("abc", "1")
    assert similarity_clusters(sim, clip=1.5).empty
    with pytest.raises(ValueError, match="square with the same labels"):
        similarity_clusters(sim.iloc[:, :-1])
    asym = block_matrix()
    asym.loc["a", "b"] = 0.2
    with pytest.raises(ValueError, match="symmetric"):
        similarity_clusters(asym)


# --- errors of the inputs ---------------------------------------------------------------------


def test_missing_columns_name_the_file(standin, tmp_path):
    root, _ = standin
    sig, meta = line_files(root, "MCF7")
    bad = tmp_path / "MCF7_sig_batch_1.xls"
    frame = pd.read_csv(sig[0], sep="\t").drop(columns="Significance_pvalue")
    frame.to_csv(bad, sep="\t", index=False)
    with pytest.raises(SchemaError, match=r"lacks column\(s\) \['Significance_pvalue'\]") as err:
        cmap_clusters([bad, *sig[1:]], meta, PRODUCTS)
    assert str(bad) in str(err.value) and "'Value_LogDiffExp'" in str(err.value)
    bad_meta = tmp_path / "MCF7_sig_meta.xls"
    pd.read_csv(meta[0], sep="\t").rename(columns={"is_exemplar": "exemplar"}).to_csv(
        bad_meta, sep="\t", index=False
    )
    with pytest.raises(SchemaError, match=r"lacks column\(s\) \['is_exemplar'\]") as err:
        read_l1000(sig, [bad_meta])
    columns = ast.literal_eval(str(err.value).split("its columns are ", 1)[1].split(" (", 1)[0])
    assert "exemplar" in columns and str(bad_meta) in str(err.value)


def test_metadata_and_signature_mismatch(standin, caplog):
    root, _ = standin
    a549_sig, a549_meta = line_files(root, "A549")
    mcf7_sig, mcf7_meta = line_files(root, "MCF7")
    with pytest.raises(ValueError, match="have no row in the L1000 metadata"):
        cmap_clusters(a549_sig, mcf7_meta, PRODUCTS)
    with pytest.raises(ValueError, match="have no row in the L1000 metadata"):
        read_l1000(a549_sig, a549_meta[:-1])  # the last metadata batch is missing
    # the signature batch of Dacinostat's exemplar missing: a warning; its other (noise)
    # signature is used, which takes it out of the clusters
    meta = read_l1000_metadata(a549_meta)
    exemplar = meta.query("Perturbagen == 'dacinostat' and is_exemplar")["SignatureId"].item()
    kept = [p for p in a549_sig if exemplar not in p.read_text()]
    assert len(kept) == len(a549_sig) - 1
    with caplog.at_level("WARNING", logger="mrvi_repro.data.l1000"):
        similarity, clusters = cmap_clusters(kept, a549_meta, PRODUCTS)
    assert "have no data in the signature files" in caplog.text
    assert "Dacinostat" in similarity.index and "Dacinostat" not in clusters.index


def test_no_matched_drug(standin):
    root, _ = standin
    with pytest.raises(
        ValueError, match="no L1000 perturbagen of .* matches one of the 2 sci-Plex"
    ):
        cmap_clusters(*line_files(root, "MCF7"), ["Vehicle", "Nothing-like-it"])
