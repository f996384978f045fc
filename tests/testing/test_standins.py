"""The stand-ins' planted structure is in their files, as the project's readers and recipes see it."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import yaml
from scipy.cluster.hierarchy import fcluster, linkage
from sklearn.metrics import adjusted_rand_score

from mrvi_repro.analysis import read_gmt
from mrvi_repro.data.readers import read_10x_mtx_tar, read_h5ad
from mrvi_repro.data.recipes import sciplex_cell_line
from mrvi_repro.pipeline import DatasetSpec
from mrvi_repro.pipeline.data import build_dataset
from mrvi_repro.testing.standins import (
    HALLMARK_KEY,
    TRUTH_FILES,
    read_standin_truth,
    standin_writer,
    write_sciplex_standin,
    write_standin_files,
    write_standins,
)

DATASETS = ("pbmc68k", "covid", "sciplex", "ibd")


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    root = tmp_path_factory.mktemp("standins")
    return root, write_standins(root, DATASETS, seed=0)


def entry(repo, name, **overrides):
    """The shipped entry without its model sections (its HVG count keeps every stand-in gene)."""
    spec = yaml.safe_load((repo / "config" / "datasets" / f"{name}.yaml").read_text())
    for section in ("mrvi", "analysis", "baselines", "figures"):
        spec.pop(section, None)
    return DatasetSpec.from_dict(name, {**spec, **overrides})


def score(adata, genes, reference=None):
    """Per cell, the genes' counts over the cell's counts x 1e4 (library-size normalised).

    With ``reference``, over the counts of those genes only (a size factor that the planted
    effects leave alone: strong programs change the library's composition).
    """
    x = adata.X.toarray() if hasattr(adata.X, "toarray") else np.asarray(adata.X)
    cols = [adata.var_names.get_loc(g) for g in genes]
    ref = x if reference is None else x[:, [adata.var_names.get_loc(g) for g in reference]]
    return x[:, cols].sum(axis=1) / np.maximum(ref.sum(axis=1), 1) * 1e4


def unplanted(adata, truth):
    """The sci-Plex genes outside every planted program and the cell-cycle lists."""
    planted = {g for p in truth["programs"].values() for g in p["genes_up"] + p["genes_down"]}
    planted |= {g for genes in truth["phase"]["genes"].values() for g in genes}
    return [g for g in adata.var_names if g not in planted]


def ratio(values, numerator, denominator):
    return float(values[numerator].mean() / values[denominator].mean())


# --- the entry point and the truth files ------------------------------------------------------


def test_write_standins_keys_and_truth(repo, written):
    root, keys = written
    registry = yaml.safe_load((repo / "config" / "downloads.yaml").read_text())["resources"]
    assert set(keys) == set(DATASETS)
    for dataset, files in keys.items():
        assert files and all((root / k).is_file() and k in registry for k in files), dataset
        truth = read_standin_truth(root, dataset)
        assert truth["dataset"] == dataset and truth["files"] == files
        assert (root / TRUTH_FILES[dataset]).is_file() and TRUTH_FILES[dataset] not in registry
    assert len(keys["ibd"]) == 6 * 3 + 2 and len(keys["sciplex"]) == 3
    with pytest.raises(KeyError, match="no stand-in writer for \\['mouse'\\]"):
        write_standins(root, ("mouse",))
    with pytest.raises(KeyError, match="no stand-in dataset"):
        read_standin_truth(root, "mouse")


def test_writers_are_deterministic(tmp_path):
    a = write_sciplex_standin(tmp_path / "a", seed=3, cells_per_condition=4, vehicle_cells=6)
    write_sciplex_standin(tmp_path / "b", seed=3, cells_per_condition=4, vehicle_cells=6)
    write_sciplex_standin(tmp_path / "c", seed=4, cells_per_condition=4, vehicle_cells=6)
    x = {k: ad.read_h5ad(tmp_path / k / a[0]) for k in "abc"}
    np.testing.assert_array_equal(x["a"].X.toarray(), x["b"].X.toarray())
    pd.testing.assert_frame_equal(x["a"].obs, x["b"].obs)
    assert read_standin_truth(tmp_path / "a", "sciplex") == read_standin_truth(
        tmp_path / "b", "sciplex"
    )
    assert (tmp_path / "a" / a[1]).read_text() == (tmp_path / "b" / a[1]).read_text()
    assert not np.array_equal(x["a"].X.toarray(), x["c"].X.toarray())


# --- COVID-19 ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def covid(repo, written):
    """The preprocessed COVID-19 stand-in (Newcastle COVID-19 and healthy, counts, all genes)."""
    root, _ = written
    out = build_dataset(entry(repo, "covid"), {"source": root / "covid/haniffa21.processed.h5ad"})
    return out, read_standin_truth(root, "covid")


def test_covid_donor_groups_and_labels(covid):
    out, truth = covid
    groups = out.obs["patient_id"].astype(str).map(truth["groups"])
    per_patient = groups.groupby(out.obs["patient_id"].astype(str)).first()
    assert per_patient.value_counts().to_dict() == {"early": 8, "late": 8, "healthy": 8}
    # days from onset of the first sample: 2-8 early, 15-30 late; healthy donors say so
    first = out.obs[out.obs["sample_id"].astype(str).str.endswith("_a")]
    days = first.groupby("patient_id", observed=True)["Days_from_onset"].first().astype(str)
    early = [int(d) for p, d in days.items() if truth["groups"][p] == "early"]
    late = [int(d) for p, d in days.items() if truth["groups"][p] == "late"]
    assert min(early) >= 2 and max(early) <= 8 < 15 <= min(late) and max(late) <= 30
    assert {d for p, d in days.items() if truth["groups"][p] == "healthy"} == {"Healthy"}
    assert set(out.obs.loc[groups == "healthy", "Status"]) == {"Healthy"}
    # the coarse labels are the three compartments' and the fine ones nest in them
    labels = {label for ls in truth["compartments"].values() for label in ls}
    assert set(out.obs["initial_clustering"]) == labels
    assert set(truth["compartments"]["myeloid"]) == {"CD14", "CD16", "DCs", "pDC"}
    nested = out.obs["full_clustering"].astype(str).map(truth["full_to_initial"])
    assert (nested == out.obs["initial_clustering"].astype(str)).all()


def test_covid_programs_in_myeloid_cells_only(covid):
    out, truth = covid
    group = out.obs["patient_id"].astype(str).map(truth["groups"]).to_numpy()
    compartment = out.obs["initial_clustering"].astype(str).map(truth["compartment_of"])
    for name, up, other in (("interferon", "early", "late"), ("late", "late", "early")):
        program = truth["programs"][name]
        assert program["labels"] == truth["compartments"]["myeloid"]
        s = pd.Series(score(out, program["genes"]))
        in_myeloid = (compartment == "myeloid").to_numpy()
        up_cells, other_cells = in_myeloid & (group == up), in_myeloid & (group == other)
        healthy = in_myeloid & (group == "healthy")
        # planted 4x: measured 3.8-4.1x against the other COVID-19 group and healthy donors
        assert ratio(s, up_cells, other_cells) >= 3.0, name
        assert ratio(s, up_cells, healthy) >= 3.0, name
        for lineage in ("t_nk", "b"):
            cells = (compartment == lineage).to_numpy()
            measured = ratio(s, cells & (group == up), cells & (group == other))
            assert 0.8 <= measured <= 1.25, (name, lineage, measured)


def test_covid_groups_separate_in_myeloid_pseudobulks_only(covid):
    """Ward clustering of per-patient pseudobulks finds the three groups in myeloid cells only."""
    out, truth = covid
    x = out.X.toarray()
    patient = out.obs["patient_id"].astype(str).to_numpy()
    compartment = out.obs["initial_clustering"].astype(str).map(truth["compartment_of"])
    patients = sorted(set(patient))
    groups = [truth["groups"][p] for p in patients]
    agreement = {}
    for lineage in ("myeloid", "t_nk", "b"):
        cells = (compartment == lineage).to_numpy()
        bulk = np.stack([x[cells & (patient == p)].sum(axis=0) for p in patients])
        bulk = np.log1p(bulk / bulk.sum(axis=1, keepdims=True) * 1e4)
        u, d, _ = np.linalg.svd(bulk - bulk.mean(axis=0), full_matrices=False)
        clusters = fcluster(linkage(u[:, :5] * d[:5], "ward"), 3, "maxclust")
        agreement[lineage] = adjusted_rand_score(groups, clusters)
    # measured: 1.0 in myeloid cells, about 0 (-0.04 to 0.13 over seeds 0-2) elsewhere
    assert agreement["myeloid"] == 1.0 and max(agreement["t_nk"], agreement["b"]) < 0.4, agreement


def test_covid_fewer_cd16_monocytes_and_dcs(covid):
    out, truth = covid
    shares = pd.crosstab(out.obs["Status"], out.obs["initial_clustering"], normalize="index")
    change = shares.loc["Covid"] / shares.loc["Healthy"]
    planted, later = truth["abundance"]
    assert planted["labels"] == ["CD16", "DCs"] and planted["factor"] == 0.5
    assert later["labels"] == ["CD16"] and later["factor"] == 2.0
    # odds halved: measured shares 0.58x (CD16) and 0.63x (DCs) in COVID-19, others 0.84-1.19x
    assert change["CD16"] <= 0.75 and change["DCs"] <= 0.75
    assert 0.85 <= change["CD14"] <= 1.3 and 0.85 <= change["CD4"] <= 1.3
    # late patients have twice the CD16 odds of early ones (Fig. 3e, right)
    group = out.obs["patient_id"].astype(str).map(truth["groups"])
    by_group = pd.crosstab(group, out.obs["initial_clustering"], normalize="index")
    assert by_group.loc["late", "CD16"] / by_group.loc["early", "CD16"] >= 1.4, by_group["CD16"]


# --- sci-Plex 3 -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sciplex(written):
    root, keys = written
    return read_h5ad(root / keys["sciplex"][0]), read_standin_truth(root, "sciplex")


def test_sciplex_programs_grow_with_dose(sciplex):
    adata, truth = sciplex
    obs = adata.obs
    doses = truth["doses"]
    assert doses == [10, 100, 1000, 10000]
    stable = unplanted(adata, truth)
    for name, program in truth["programs"].items():
        up = score(adata, program["genes_up"], stable)
        down = score(adata, program["genes_down"], stable)
        for line in truth["cell_lines"]:
            in_line = (obs["cell_type"] == line).to_numpy()
            vehicle = in_line & (obs["product_name"] == "Vehicle").to_numpy()
            for drug, info in truth["drugs"].items():
                cells = in_line & (obs["product_name"] == drug).to_numpy()
                fold = [
                    up[cells & (obs["dose"] == d).to_numpy()].mean() / up[vehicle].mean()
                    for d in doses
                ]
                fold_down = down[cells & (obs["dose"] == 10000).to_numpy()].mean()
                acts = info["program"] == name and line in info["cell_lines"]
                if acts:  # strictly increasing with dose; 3.2-5.6x at 10 uM in A549
                    assert all(b > a for a, b in zip(fold, fold[1:], strict=False)), (drug, fold)
                    assert fold[-1] >= 2.0 and fold_down / down[vehicle].mean() <= 0.6
                else:  # another pathway's drug, SNS-314 outside A549, Resveratrol
                    assert all(0.75 <= f <= 1.33 for f in fold), (name, line, drug, fold)
    # one pathway, one program; the drug without effect has none
    pathways = {i["pathway_level_1"]: i["program"] for i in truth["drugs"].values()}
    assert (
        len(set(pathways.values()) - {None}) == 3
        and truth["drugs"]["Resveratrol"]["program"] is None
    )
    for drug, info in truth["drugs"].items():
        for column in ("pathway", "pathway_level_1", "pathway_level_2", "target"):
            assert set(obs.loc[obs["product_name"] == drug, column]) == {info[column]}


def test_sciplex_phase_planted_and_recovered(repo, written, sciplex):
    adata, truth = sciplex
    phase = adata.obs_names.map(truth["phase"]["cells"]).to_numpy()
    stable = unplanted(adata, truth)
    s_score = score(adata, truth["phase"]["genes"]["S"], stable)
    g2m_score = score(adata, truth["phase"]["genes"]["G2M"], stable)
    # planted 3x: each phase's genes 2.7-3.1x higher in its cells than in G1 cells (seeds 0-5)
    assert s_score[phase == "S"].mean() >= 2.5 * s_score[phase == "G1"].mean()
    assert g2m_score[phase == "G2M"].mean() >= 2.5 * g2m_score[phase == "G1"].mean()
    # independent of the drug: every drug's S-phase share near the planted 25%
    shares = pd.crosstab(adata.obs["product_name"], phase, normalize="index")
    assert shares["S"].between(0.15, 0.35).all() and shares["G2M"].between(0.15, 0.35).all()
    # the recipe's scoring (scanpy score_genes_cell_cycle on the Tirosh list) finds the phases
    root, keys = written
    recipe = entry(repo, "sciplex_A549").recipe
    scored = sciplex_cell_line(adata, recipe, root / keys["sciplex"][2])
    agree = (
        scored.obs["phase"].astype(str) == scored.obs_names.map(truth["phase"]["cells"])
    ).mean()
    assert agree >= 0.85, agree


# --- IBD --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ibd(repo, written):
    """The preprocessed IBD stand-in (six bundles, donor table joined, all genes)."""
    root, _ = written
    spec = entry(repo, "ibd")
    inputs = {
        "source": [root / k for k in spec.source.resources()],
        "sample_metadata": root / "ibd" / "donor_covariates.tsv",
    }
    return build_dataset(spec, inputs), read_standin_truth(root, "ibd")


def test_ibd_donors_and_samples(ibd):
    out, truth = ibd
    donors = pd.DataFrame(truth["donors"]).T
    assert donors["behavior"].value_counts().to_dict() == {"B1": 4, "B2": 4, "B3": 4, "control": 4}
    surgical = donors.loc[donors["procedure"] == "surgical", "behavior"]
    assert sorted(surgical) == ["B2", "B3"]
    per_sample = out.obs.groupby("biosample_id", observed=True)[["behavior", "procedure"]].first()
    assert (per_sample["behavior"].astype(str) == per_sample.index.map(truth["groups"])).all()
    assert per_sample.shape[0] == 64 and set(out.obs["Celltype"]) == {
        label for labels in truth["compartments"].values() for label in labels
    }
    # surgical samples hold more stromal cells (the paper's collection bias)
    compartment = out.obs["bundle"].astype(str).str.split("_").str[1]
    stromal = pd.crosstab(out.obs["procedure"], compartment, normalize="index")["STR"]
    assert stromal["surgical"] > stromal["biopsy"] + 0.05


def test_ibd_b2_programs_in_stromal_cells(ibd):
    out, truth = ibd
    biopsy = (out.obs["procedure"] == "biopsy").to_numpy()  # as the paper: no surgical samples
    behavior = out.obs["behavior"].astype(str).to_numpy()
    b2, b1 = biopsy & (behavior == "B2"), biopsy & (behavior == "B1")
    label = out.obs["Celltype"].astype(str).to_numpy()
    compartment = out.obs["bundle"].astype(str).str.split("_").str[1].to_numpy()
    stromal = compartment == "STR"
    cdh11 = pd.Series(score(out, ["CDH11"]))
    # planted 3x: CDH11 2.9x higher in B2 stromal cells, 0.9x elsewhere
    assert "CDH11" in truth["programs"]["b2_stromal"]["genes"]
    assert ratio(cdh11, b2 & stromal, b1 & stromal) >= 2.0
    for other in ("EPI", "IMM"):
        cells = compartment == other
        assert 0.75 <= ratio(cdh11, b2 & cells, b1 & cells) <= 1.33, other
    program = pd.Series(score(out, truth["programs"]["b2_stromal"]["genes"]))
    assert ratio(program, b2 & stromal, b1 & stromal) >= 2.2
    # the pericyte-only program: 4.4x in HIGD1B+STEAP4+ pericytes, 0.9x in the other stromal
    peri_genes = pd.Series(score(out, truth["programs"]["b2_pericyte"]["genes"]))
    peri = label == "Pericytes HIGD1B STEAP4"
    assert ratio(peri_genes, b2 & peri, b1 & peri) >= 2.5
    rest = stromal & ~peri
    assert 0.75 <= ratio(peri_genes, b2 & rest, b1 & rest) <= 1.33


def test_ibd_b2_stromal_composition(ibd):
    out, truth = ibd
    stromal = out.obs[out.obs["bundle"].astype(str).str.endswith("_STR")]
    shares = pd.crosstab(stromal["behavior"], stromal["Celltype"].astype(str), normalize="index")
    change = shares.loc["B2"] / shares.loc["B1"]
    planted = {a["labels"][0]: a["factor"] for a in truth["abundance"]}
    assert planted["Fibroblasts ADAMDEC1"] == 2.0 and planted["Lymphatic endothelial cells"] == 0.5
    # odds doubled / halved: measured 1.6-2.1x / 0.35-0.7x (seeds 0-5)
    assert change["Fibroblasts ADAMDEC1"] >= 1.4
    assert change["Lymphatic endothelial cells"] <= 0.75
    assert change["Endothelial cells LTC4S SEMA3G"] <= 0.85


def test_ibd_inflammation_in_every_compartment(ibd):
    out, truth = ibd
    program = truth["programs"]["inflammation"]
    assert program["groups"] == ["Infl"] and program["compartment"] == "all"
    s = pd.Series(score(out, program["genes"]))
    kind = out.obs["Type"].astype(str).to_numpy()
    compartment = out.obs["bundle"].astype(str).str.split("_").str[1].to_numpy()
    for c in ("EPI", "IMM", "STR"):
        cells = compartment == c
        # planted 3x: 2.8-3.2x against non-inflamed and healthy samples
        assert ratio(s, cells & (kind == "Infl"), cells & (kind == "NonI")) >= 2.2, c
        assert ratio(s, cells & (kind == "Infl"), cells & (kind == "Heal")) >= 2.2, c
        assert 0.8 <= ratio(s, cells & (kind == "NonI"), cells & (kind == "Heal")) <= 1.25, c


# --- PBMC 68k ---------------------------------------------------------------------------------


def test_pbmc68k_archive(written):
    root, keys = written
    adata = read_10x_mtx_tar(root / keys["pbmc68k"][0])
    truth = read_standin_truth(root, "pbmc68k")
    assert list(adata.obs_names) == list(truth["cell_type"])
    assert adata.n_vars == 500 and adata.var_names.str.startswith("MT-").sum() == 5
    assert len(set(truth["cell_type"].values())) == 6


# --- the workflow's stand-in mode: one writer's registry files at a time ----------------------


def test_standin_files_of_registry_keys(tmp_path, written):
    root, keys = written
    # a writer's files to any paths, the same as write_standins' (seeded, deterministic)
    text = ["ibd/donor_covariates.tsv", "ibd/CO_STR.scp.raw.mtx", "ibd/CO_STR.scp.barcodes.tsv"]
    paths = {k: tmp_path / "elsewhere" / k.replace("/", "_") for k in text}
    write_standin_files(paths, seed=0)
    for key, path in paths.items():
        assert path.read_bytes() == (root / key).read_bytes(), key
    assert not list((tmp_path / "elsewhere").glob("tmp*"))  # the temp folder is gone
    assert standin_writer("genesets/regev_lab_cell_cycle_genes.txt") == "sciplex"
    with pytest.raises(KeyError, match="no stand-in for resource 'other/file.txt'"):
        standin_writer("other/file.txt")
    with pytest.raises(KeyError, match="keys of one writer"):
        write_standin_files({keys["covid"][0]: tmp_path / "a", text[0]: tmp_path / "b"})


def test_hallmark_standin_holds_the_planted_programs(tmp_path, written):
    root, _ = written
    write_standin_files({HALLMARK_KEY: tmp_path / "h.gmt"}, seed=0)
    sets = read_gmt(tmp_path / "h.gmt")
    covid, sciplex = read_standin_truth(root, "covid"), read_standin_truth(root, "sciplex")
    assert sets["STANDIN_COVID_INTERFERON"] == covid["programs"]["interferon"]["genes"]
    assert sets["STANDIN_SCIPLEX_HDAC_DN"] == sciplex["programs"]["hdac"]["genes_down"]
    assert "STANDIN_IBD_B2_STROMAL" in sets
    decoys = [name for name in sets if name.startswith("STANDIN_DECOY_")]
    assert len(decoys) == 20 and all(len(sets[d]) == 15 for d in decoys)
