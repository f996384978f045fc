"""The COVID-19, sci-Plex 3 and IBD entries on stand-ins of the published files (readers, recipes)."""

from __future__ import annotations

import logging

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import yaml

from mrvi_repro.data.contract import DataContractError, validate_adata
from mrvi_repro.data.preprocess import build_sciplex_screen
from mrvi_repro.data.readers import SchemaError, read_h5ad_counts, read_scp_metadata
from mrvi_repro.pipeline import DatasetSpec
from mrvi_repro.pipeline.data import build_dataset
from mrvi_repro.testing.standins import (
    SCIPLEX_OBS_ALL,
    write_covid_standin,
    write_ibd_standin,
    write_sciplex_standin,
)

COVID = "covid/haniffa21.processed.h5ad"
SCIPLEX = "sciplex/Srivatsan_2019_raw.h5ad"
PLATES = "sciplex/aax6234-srivatsan-table-s3.txt"
CELL_CYCLE = "genesets/regev_lab_cell_cycle_genes.txt"


def shipped(repo, name, **overrides):
    """The shipped entry config/datasets/<name>.yaml, without model sections, with overrides."""
    entry = yaml.safe_load((repo / "config" / "datasets" / f"{name}.yaml").read_text())
    for section in ("mrvi", "analysis", "baselines", "figures"):
        entry.pop(section, None)
    return DatasetSpec.from_dict(name, {**entry, **overrides})


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("standins")
    write_covid_standin(root)
    write_sciplex_standin(root)
    write_ibd_standin(root)
    return root


# --- COVID-19 --------------------------------------------------------------------------------


def test_covid_entry(repo, files, caplog):
    spec = shipped(repo, "covid", hvg={"n_top_genes": 150})
    with caplog.at_level(logging.INFO):
        out = build_dataset(spec, {"source": files / COVID})
    published = ad.read_h5ad(files / COVID)
    kept = published.obs["Site"].eq("Ncl") & published.obs["Status"].isin(["Covid", "Healthy"])
    assert out.n_obs == kept.sum() and set(out.obs_names) == set(published.obs_names[kept])
    assert set(out.obs["Status"]) == {"Covid", "Healthy"} and set(out.obs["Site"]) == {"Ncl"}
    assert not out.var_names.str.startswith("AB").any() and out.n_vars == 150
    # X holds layers['raw'] (the counts), not the file's log-normalised X
    raw = published[out.obs_names, out.var_names].layers["raw"].toarray()
    np.testing.assert_array_equal(out.X.toarray(), raw)
    assert "counts_layer auto: raw counts found in layers['raw']" in caplog.text
    assert "dropped 5 genes whose names start with 'AB'" in caplog.text
    # age_int from "(20, 29]"-like intervals, constant within patients
    expected = out.obs["Age_interval"].astype(str).str[1:3].astype(int)
    np.testing.assert_array_equal(out.obs["age_int"].to_numpy(), expected.to_numpy())
    validate_adata(
        out,
        sample_key="patient_id",
        labels_key="initial_clustering",
        sample_covariates=spec.sample_covariates,
    )
    # a patient sampled twice stays one sample
    assert (out.obs.groupby("patient_id", observed=True)["sample_id"].nunique() == 2).sum() == 2
    # days_from_onset: each patient's earliest day (the twice-sampled ones differ by 4 days), as
    # text; healthy patients keep "Healthy"
    per_cell = pd.to_numeric(out.obs["Days_from_onset"].astype(str), errors="coerce")
    earliest = per_cell.groupby(out.obs["patient_id"].astype(str)).min()
    derived = out.obs.groupby("patient_id", observed=True)["days_from_onset"].agg(set)
    for patient, days in derived.items():
        assert len(days) == 1
        value = next(iter(days))
        if np.isnan(earliest[patient]):
            assert value == "Healthy"
        else:
            assert float(value) == earliest[patient]
    twice = out.obs.groupby("patient_id", observed=True)["Days_from_onset"].nunique()
    assert (twice == 2).sum() == 2  # the raw column varies within those two patients


def test_covid_subset_reads_only_kept_cells(files):
    spec = DatasetSpec.from_dict(
        "c",
        {
            "source": {"kind": "h5ad", "path": "x"},
            "sample_key": "patient_id",
            "subset": {"obs": {"Site": ["Ncl"]}, "drop_var_prefixes": ["AB"]},
        },
    )
    lazy = read_h5ad_counts(files / COVID, "raw", spec.subset)
    full = ad.read_h5ad(files / COVID)
    full = full[full.obs["Site"] == "Ncl", ~full.var_names.str.startswith("AB")]
    assert lazy.obs_names.equals(full.obs_names) and lazy.var_names.equals(full.var_names)
    np.testing.assert_array_equal(lazy.X.toarray(), full.layers["raw"].toarray())


def test_covid_wrong_schema_names_the_column(repo, files, tmp_path):
    adata = ad.read_h5ad(files / COVID)
    del adata.obs["Site"]
    adata.write_h5ad(tmp_path / "x.h5ad")
    with pytest.raises(SchemaError, match=r"obs has no column 'Site' \(needed by subset.obs\)"):
        build_dataset(shipped(repo, "covid"), {"source": tmp_path / "x.h5ad"})
    adata = ad.read_h5ad(files / COVID)
    del adata.obs["Age_interval"]
    adata.write_h5ad(tmp_path / "y.h5ad")
    with pytest.raises(SchemaError, match=r"lacks column\(s\) \['Age_interval'\]"):
        build_dataset(shipped(repo, "covid"), {"source": tmp_path / "y.h5ad"})


def test_covid_without_counts_is_refused(repo, files, tmp_path):
    adata = ad.read_h5ad(files / COVID)
    del adata.layers["raw"]
    adata.write_h5ad(tmp_path / "x.h5ad")
    with pytest.raises(DataContractError, match="no matrix holds raw counts"):
        build_dataset(shipped(repo, "covid"), {"source": tmp_path / "x.h5ad"})


# --- sci-Plex 3 ------------------------------------------------------------------------------


def sciplex_spec(repo, line="A549"):
    """The shipped cell-line entry with stand-in-sized thresholds (40 DE genes, 300 HVGs)."""
    entry = yaml.safe_load((repo / "config" / "datasets" / f"sciplex_{line}.yaml").read_text())
    recipe = {**entry["recipe"], "deg_min_genes": 40}
    hvg = {"n_top_genes": 300, "flavor": "seurat_v3", "batch_key": "cell_type"}
    return shipped(repo, f"sciplex_{line}", recipe=recipe, hvg=hvg)


@pytest.fixture(scope="module")
def screen(repo, files):
    spec = sciplex_spec(repo)
    return build_sciplex_screen(spec.sciplex_screen(), files / SCIPLEX, files / PLATES)


def test_sciplex_screen(screen, files):
    published = ad.read_h5ad(files / SCIPLEX)
    assert list(published.obs.columns) == list(SCIPLEX_OBS_ALL)
    # the drug without an effect (Resveratrol) goes, the seven with one stay, and so does the
    # vehicle
    assert set(screen.obs["product_name"]) == {
        "Vehicle",
        *("Dacinostat", "Givinostat", "Belinostat"),
        *("Glesatinib?(MGCD265)", "Crizotinib"),
        *("SNS-314", "Barasertib"),
    }
    # every cell got its plate (Table S3 spells two drugs differently: aligned before joining)
    assert screen.obs["plate_oligo"].notna().all()
    expected = published.obs.loc[screen.obs_names]
    assert (screen.obs["cell_type"] == expected["cell_type"]).all()
    # SNS-314 changes expression in A549 only; its flag says so per cell line
    sns = screen.obs["product_name"] == "SNS-314"
    assert set(screen.obs.loc[sns, "A549_deg_product"]) == {"True"}
    assert set(screen.obs.loc[sns, "K562_deg_product"]) == {"False"}
    assert screen.n_vars == 300 and set(screen.obs["_dummy"]) == {"1"}


def test_sciplex_cell_line(repo, screen, files, tmp_path, caplog):
    screen.write_h5ad(tmp_path / "screen.h5ad")
    spec = sciplex_spec(repo, "A549")
    with caplog.at_level(logging.INFO):
        out = build_dataset(
            spec, {"source": tmp_path / "screen.h5ad", "cell_cycle_genes": files / CELL_CYCLE}
        )
    assert set(out.obs["cell_type"]) == {"A549"}
    assert set(out.obs["phase"]) == {"G1", "S", "G2M"}
    assert {"S_score", "G2M_score"} <= set(out.obs.columns)
    assert "cell-cycle genes among the 300 genes" in caplog.text
    validate_adata(
        out,
        sample_key="product_dose",
        batch_key="plate_oligo",
        labels_key="_dummy",
        sample_covariates=spec.sample_covariates,
    )
    assert "Vehicle_0" in set(out.obs["product_dose"])


def test_sciplex_plate_table_missing_column(repo, files, tmp_path):
    lines = (files / PLATES).read_text().splitlines()
    lines[1] = lines[1].replace("plate_oligo", "plate")
    (tmp_path / "s3.txt").write_text("\n".join(lines) + "\n")
    spec = sciplex_spec(repo)
    with pytest.raises(SchemaError, match=r"lacks column\(s\) \['plate_oligo'\]"):
        build_sciplex_screen(spec.sciplex_screen(), files / SCIPLEX, tmp_path / "s3.txt")


def test_sciplex_missing_obs_column(repo, files, tmp_path):
    adata = ad.read_h5ad(files / SCIPLEX)
    del adata.obs["product_dose"]
    adata.write_h5ad(tmp_path / "x.h5ad")
    spec = sciplex_spec(repo)
    with pytest.raises(SchemaError, match=r"lacks column\(s\) \['product_dose'\]"):
        build_sciplex_screen(spec.sciplex_screen(), tmp_path / "x.h5ad", files / PLATES)


# --- IBD -------------------------------------------------------------------------------------


def ibd_inputs(spec, root, donors=None):
    return {
        "source": [root / k for k in spec.source.resources()],
        "sample_metadata": donors or root / "ibd" / "donor_covariates.tsv",
    }


def test_ibd_entry(repo, files, caplog):
    spec = shipped(repo, "ibd", hvg={"n_top_genes": 150})
    with caplog.at_level(logging.INFO):
        out = build_dataset(spec, ibd_inputs(spec, files))
    meta = read_scp_metadata(files / "ibd" / "scp_metadata_combined.v2.txt")
    assert set(out.obs_names) <= set(meta.index)
    assert "dropped 2 of" in caplog.text and "without metadata" in caplog.text
    assert "kept the 208 genes measured in every bundle" in caplog.text
    assert out.obs["n_counts"].dtype.kind == "i"  # typed by the portal's TYPE row
    assert set(out.obs["behavior"]) == {"B1", "B2", "B3", "control"}
    assert set(out.obs["Layer_Chem"].str.split("_").str[0]) == {"E", "L"}
    assert out.var_names.is_unique and out.var["gene_ids"].str.startswith("ENSG").all()
    validate_adata(
        out,
        sample_key="biosample_id",
        batch_key="Chem",
        labels_key="Celltype",
        sample_covariates=spec.sample_covariates,
    )


def test_ibd_donor_table_must_cover_every_donor(repo, files, tmp_path):
    table = pd.read_csv(files / "ibd" / "donor_covariates.tsv", sep="\t")
    table.iloc[1:].to_csv(tmp_path / "donors.tsv", sep="\t", index=False)
    spec = shipped(repo, "ibd")
    with pytest.raises(SchemaError, match=r"1 value\(s\) of obs\['donor_id'\] have no row"):
        build_dataset(spec, ibd_inputs(spec, files, tmp_path / "donors.tsv"))


def test_ibd_metadata_wrong_schema(repo, files, tmp_path):
    meta = pd.read_csv(files / "ibd" / "scp_metadata_combined.v2.txt", sep="\t", dtype=str)
    bad = tmp_path / "ibd"
    bad.mkdir()
    for f in (files / "ibd").iterdir():
        (bad / f.name).write_bytes(f.read_bytes())
    meta.drop(columns="biosample_id").to_csv(
        bad / "scp_metadata_combined.v2.txt", sep="\t", index=False
    )
    spec = shipped(repo, "ibd")
    with pytest.raises(SchemaError, match=r"lacks column\(s\) \['biosample_id'\]"):
        build_dataset(spec, ibd_inputs(spec, tmp_path))
    meta.drop(columns="NAME").to_csv(bad / "scp_metadata_combined.v2.txt", sep="\t", index=False)
    with pytest.raises(SchemaError, match="no 'NAME' column"):
        build_dataset(spec, ibd_inputs(spec, tmp_path))


def test_ibd_bundle_files_must_agree(repo, files, tmp_path):
    bad = tmp_path / "ibd"
    bad.mkdir()
    for f in (files / "ibd").iterdir():
        (bad / f.name).write_bytes(f.read_bytes())
    lines = (bad / "CO_IMM.scp.barcodes.tsv").read_text().splitlines()
    (bad / "CO_IMM.scp.barcodes.tsv").write_text("\n".join(lines[:-1]) + "\n")
    # another bundle's barcodes under TI_STR's name
    (bad / "TI_STR.scp.barcodes.tsv").write_bytes((bad / "TI_EPI.scp.barcodes.tsv").read_bytes())
    # the normalised matrix saved under CO_EPI's raw name
    raw = (bad / "CO_EPI.scp.raw.mtx").read_text().splitlines()
    n_comments = sum(ln.startswith("%") for ln in raw)
    head = raw[: n_comments + 1]  # banner, comments, size line
    body = [ln.split() for ln in raw[len(head) :]]
    norm = [f"{i} {j} {np.log1p(float(v)):.4f}" for i, j, v in body]
    head[0] = head[0].replace("integer", "real")
    (bad / "CO_EPI.scp.raw.mtx").write_text("\n".join(head + norm) + "\n")
    spec = shipped(repo, "ibd")
    with pytest.raises(SchemaError) as err:
        build_dataset(spec, ibd_inputs(spec, tmp_path))
    message = str(err.value)
    n_ti_epi = len((bad / "TI_EPI.scp.barcodes.tsv").read_text().splitlines())
    assert f"CO_IMM.scp.barcodes.tsv {len(lines) - 1}:" in message
    assert f"TI_STR.scp.barcodes.tsv {n_ti_epi}:" in message
    assert "CO_EPI.scp.raw.mtx holds fractional values (real)" in message
    assert "needs CO_EPI.scp.raw.mtx (raw counts)" in message
    assert message.count("\n  ") == 3  # the three problems at once, nothing else


def test_drop_small_samples_is_logged(repo, files, caplog):
    obs = ad.read_h5ad(files / COVID, backed="r").obs
    obs = obs[obs["Site"].eq("Ncl") & obs["Status"].isin(["Covid", "Healthy"])]
    sizes = obs["patient_id"].value_counts()
    sizes = sizes[sizes > 0].sort_values()
    threshold = int(sizes.iloc[2])  # the two smallest patients go
    spec = shipped(
        repo,
        "covid",
        hvg={"n_top_genes": 150},
        min_cells_per_sample=threshold,
        drop_small_samples=True,
    )
    with caplog.at_level(logging.INFO):
        out = build_dataset(spec, {"source": files / COVID})
    assert set(out.obs["patient_id"]) == set(sizes.index[2:])
    assert f"dropped 2 samples with fewer than {threshold} cells" in caplog.text


def test_ibd_donors_from_biosample_ids_when_absent(repo, files, tmp_path):
    bad = tmp_path / "ibd"
    bad.mkdir()
    for f in (files / "ibd").iterdir():
        (bad / f.name).write_bytes(f.read_bytes())
    meta = pd.read_csv(bad / "scp_metadata_combined.v2.txt", sep="\t", dtype=str)
    meta.drop(columns="donor_id").to_csv(
        bad / "scp_metadata_combined.v2.txt", sep="\t", index=False
    )
    spec = shipped(repo, "ibd", hvg={"n_top_genes": 150})
    out = build_dataset(spec, ibd_inputs(spec, tmp_path))
    expected = out.obs["biosample_id"].astype(str).str.split("_").str[0]
    assert (out.obs["donor_id"].astype(str) == expected).all()
    assert set(out.obs["behavior"]) == {"B1", "B2", "B3", "control"}  # the join still works


def test_subset_of_an_in_memory_source(files):
    from mrvi_repro.data.readers import apply_subset
    from mrvi_repro.settings.data import SubsetSpec

    adata = ad.read_h5ad(files / COVID)
    subset = SubsetSpec(obs={"Site": ("Ncl",)}, drop_var_prefixes=("AB",))
    out = apply_subset(adata, subset)
    assert set(out.obs["Site"]) == {"Ncl"} and out.n_obs == (adata.obs["Site"] == "Ncl").sum()
    assert out.n_vars == adata.n_vars - 5
    assert apply_subset(adata, None) is adata
    with pytest.raises(SchemaError, match="obs has no column 'Region'"):
        apply_subset(adata, SubsetSpec(obs={"Region": ("x",)}))
