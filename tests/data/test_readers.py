"""Readers of dataset sources: the 10x Cell Ranger 1.x archive (PBMC 68k) and the dispatch."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import sparse

from mrvi_repro.data.contract import DataContractError
from mrvi_repro.data.download import load_registry
from mrvi_repro.data.readers import (
    MTX_MEMBERS,
    ArchiveError,
    SchemaError,
    UnreadableInputError,
    mtx_header,
    read_10x_mtx_tar,
    read_h5ad,
    read_sample_metadata,
    read_scp_bundles,
    read_source,
)
from mrvi_repro.pipeline import DatasetSpec, check_schema
from mrvi_repro.settings.data import (
    H5adSource,
    SampleMetadataSpec,
    ScpBundlesSource,
    SimulationParams,
    SubsetSpec,
    TenxMtxTarSource,
)

N_CELLS, N_GENES = 300, 200


@pytest.fixture(scope="module")
def standin():
    """Counts (cells x genes), Ensembl IDs, symbols (one duplicated, five MT-) and barcodes."""
    rng = np.random.default_rng(0)
    counts = sparse.random(
        N_CELLS, N_GENES, density=0.1, format="csr", random_state=rng, dtype=np.float64
    )
    counts.data = rng.integers(1, 50, size=counts.nnz).astype(np.float64)
    gene_ids = [f"ENSG{i:011d}" for i in range(N_GENES)]
    symbols = [f"GENE{i}" for i in range(N_GENES)]
    symbols[:5] = [f"MT-ND{i}" for i in range(1, 6)]
    symbols[11] = symbols[10]  # Cell Ranger 1.x genes.tsv repeats some symbols
    barcodes = [f"{''.join(rng.choice(list('ACGT'), 14))}-1" for _ in range(N_CELLS)]
    return counts, gene_ids, symbols, barcodes


def test_reads_the_published_layout(tmp_path, standin, write_10x_tar):
    counts, gene_ids, symbols, barcodes = standin
    path = write_10x_tar(tmp_path / "pbmc.tar.gz", *standin)
    adata = read_10x_mtx_tar(path)
    assert adata.shape == (N_CELLS, N_GENES)
    assert list(adata.obs_names) == barcodes
    assert adata.var_names.is_unique
    assert list(adata.var_names[10:12]) == [symbols[10], f"{symbols[10]}-1"]
    assert list(adata.var["gene_ids"]) == gene_ids
    assert sum(n.startswith("MT-") for n in adata.var_names) == 5
    assert sparse.isspmatrix_csr(adata.X) and adata.X.dtype == np.int32
    np.testing.assert_array_equal(adata.X.toarray(), counts.toarray())
    # nothing of the archive is left behind next to it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pbmc.tar.gz"]


def test_other_matrix_dir_and_dot_prefixed_members(tmp_path, standin, write_10x_tar):
    path = write_10x_tar(tmp_path / "x.tar.gz", *standin, matrix_dir="./outs/filtered/GRCh38")
    adata = read_10x_mtx_tar(path, matrix_dir="outs/filtered/GRCh38/")
    assert adata.shape == (N_CELLS, N_GENES)


@pytest.mark.parametrize(
    ("skip", "matrix_dir", "lacks"),
    [
        (("barcodes.tsv",), "filtered_matrices_mex/hg19", r"lacks \['filtered_matrices_mex/hg19/b"),
        (
            (),
            "filtered_matrices_mex/GRCh38",
            r"lacks \['filtered_matrices_mex/GRCh38/barcodes.tsv', ",
        ),
    ],
)
def test_missing_member_names_expected_and_held(
    tmp_path, standin, write_10x_tar, skip, matrix_dir, lacks
):
    path = write_10x_tar(tmp_path / "x.tar.gz", *standin, skip=skip)
    with pytest.raises(ArchiveError, match=lacks) as err:
        read_10x_mtx_tar(path, matrix_dir=matrix_dir)
    msg = str(err.value)
    assert f"expected ['{matrix_dir}/barcodes.tsv', '{matrix_dir}/genes.tsv'," in msg
    held = msg.split("it holds: ")[1].split(", ")
    assert held == sorted(f"filtered_matrices_mex/hg19/{f}" for f in {*MTX_MEMBERS} - {*skip})


def test_links_and_traversal_are_not_followed(tmp_path, standin, write_10x_tar):
    path = write_10x_tar(tmp_path / "x.tar.gz", *standin, skip=("genes.tsv",))
    # rebuild with a genes.tsv that is a link outside, plus a member that climbs out
    with tarfile.open(path) as src:
        members = [(m, src.extractfile(m).read() if m.isfile() else None) for m in src]
    bad = tmp_path / "bad.tar.gz"
    with tarfile.open(bad, "w:gz") as tar:
        for member, data in members:
            tar.addfile(member, io.BytesIO(data) if data is not None else None)
        link = tarfile.TarInfo("filtered_matrices_mex/hg19/genes.tsv")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
        evil = tarfile.TarInfo("../evil.txt")
        evil.size = 4
        tar.addfile(evil, io.BytesIO(b"evil"))
    with pytest.raises(
        ArchiveError, match="'filtered_matrices_mex/hg19/genes.tsv' is not a regular"
    ):
        read_10x_mtx_tar(bad)
    assert not (tmp_path.parent / "evil.txt").exists()


def test_non_integer_counts_are_refused(tmp_path, standin, write_10x_tar):
    counts, *rest = standin
    path = write_10x_tar(tmp_path / "x.tar.gz", counts, *rest)
    # rewrite matrix.mtx as real numbers with one fraction
    with tarfile.open(path) as src:
        members = [(m, src.extractfile(m).read() if m.isfile() else None) for m in src]
    frac = tmp_path / "frac.tar.gz"
    with tarfile.open(frac, "w:gz") as tar:
        for member, data in members:
            if member.name.endswith("matrix.mtx"):
                lines = data.decode().splitlines()
                lines[0] = lines[0].replace("integer", "real")
                body = next(i for i, line in enumerate(lines) if not line.startswith("%")) + 1
                r, c, _ = lines[body].split()
                lines[body] = f"{r} {c} 2.5"
                data = ("\n".join(lines) + "\n").encode()
                member.size = len(data)
            tar.addfile(member, io.BytesIO(data) if data is not None else None)
    with pytest.raises(DataContractError, match="non-integer"):
        read_10x_mtx_tar(frac)


def test_read_source_dispatches_on_the_kind(tmp_path, standin, write_10x_tar):
    path = write_10x_tar(tmp_path / "x.tar.gz", *standin)
    tenx = read_source(TenxMtxTarSource(resource="a/x.tar.gz"), path)
    assert tenx.shape == (N_CELLS, N_GENES)
    tenx.write_h5ad(tmp_path / "x.h5ad")
    for source in (H5adSource(path=str(tmp_path / "x.h5ad")), SimulationParams()):
        back = read_source(source, tmp_path / "x.h5ad")
        assert isinstance(back, ad.AnnData) and back.shape == tenx.shape
    with pytest.raises(TypeError, match="unknown source"):
        read_source("x", path)


def test_paper_config_lists_the_paper_entries(repo):
    config = yaml.safe_load((repo / "config" / "paper.yaml").read_text())
    check_schema(config, repo / "workflow" / "schemas" / "config.schema.yaml", where="config")
    registry = load_registry(repo / "config" / "downloads.yaml")
    names = [Path(p).stem for p in config["datasets"]]
    assert names == [
        "pbmc68k_semisynthetic",
        "covid",
        "sciplex_A549",
        "sciplex_K562",
        "sciplex_MCF7",
        "ibd",
    ]
    specs = {
        name: DatasetSpec.from_yaml(repo / path)
        for name, path in zip(names, config["datasets"], strict=True)
    }
    for spec in specs.values():
        assert set(spec.resources()) <= set(registry), spec.name
    pbmc = specs["pbmc68k_semisynthetic"]
    assert pbmc.source == TenxMtxTarSource(
        resource="pbmc68k/fresh_68k_pbmc_donor_a_filtered_gene_bc_matrices.tar.gz"
    )
    assert pbmc.hvg.n_top_genes == 3000 and pbmc.semisynthetic is not None
    assert (pbmc.sample_key, pbmc.labels_key) == ("sample_assignment", "leiden")
    # the paper's keys and HVG counts
    keys = {
        n: (s.sample_key, s.batch_key, s.labels_key, s.hvg.n_top_genes) for n, s in specs.items()
    }
    assert keys["covid"] == ("patient_id", None, "initial_clustering", 10000)
    assert keys["sciplex_K562"] == ("product_dose", "plate_oligo", "_dummy", 5000)
    assert keys["ibd"] == ("biosample_id", "Chem", "Celltype", 10000)
    # the three cell lines share one screen
    assert (
        len({specs[f"sciplex_{cl}"].sciplex_screen().key() for cl in ("A549", "K562", "MCF7")}) == 1
    )


# --- inputs that cannot be read: one named error, the likely cause, how to get a good copy ---

ERROR_PAGE = b"<!DOCTYPE html><html><head><title>403 Forbidden</title></head></html>\n"


@pytest.fixture
def counts_h5ad(tmp_path):
    """A small counts ``.h5ad`` file and its bytes."""
    rng = np.random.default_rng(1)
    x = sparse.random(200, 50, density=0.2, format="csr", random_state=rng, dtype=np.float32)
    x.data = rng.integers(1, 20, size=x.nnz).astype(np.float32)
    adata = ad.AnnData(X=x)
    adata.obs["Site"] = pd.Categorical(["Ncl", "Cambridge"] * 100)
    path = tmp_path / "good.h5ad"
    adata.write_h5ad(path)
    return path.read_bytes()


def resource(tmp_path, name, data):
    """``data`` written as ``resources/<name>`` under tmp_path."""
    path = tmp_path / "resources" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def read_h5ad_source(path, subset=None):
    return read_source(H5adSource(path=str(path)), path, subset)


def test_an_unreadable_h5ad_download_is_named_with_how_to_fetch_it_again(tmp_path, counts_h5ad):
    cut = len(counts_h5ad) // 2
    cases = {
        b"": "cannot be read as an .h5ad file: it is empty (0 bytes), not an HDF5 file (an "
        "interrupted download or copy?)",
        counts_h5ad[:cut]: f"cannot be read as an .h5ad file: it is truncated, {cut:,} of the "
        f"{len(counts_h5ad):,} bytes its HDF5 header announces (an interrupted download or copy?)",
        ERROR_PAGE: "cannot be read as an .h5ad file: it is an HTML page, not an HDF5 file (an "
        "error or sign-in page saved in its place?)",
        b"PK\x03\x04" + bytes(100): "cannot be read as an .h5ad file: it is not an HDF5 file "
        "(which starts with b'\\x89HDF\\r\\n\\x1a\\n') (another file saved under this name? it "
        "starts with b'PK\\x03\\x04\\x00",
    }
    for data, cause in cases.items():
        path = resource(tmp_path, "covid/haniffa21.processed.h5ad", data)
        for read in (read_h5ad_source, read_h5ad):
            with pytest.raises(UnreadableInputError) as err:
                read(path)
            msg = str(err.value)
            assert msg.startswith(f"{path}: {cause}"), msg
            # how to fetch it again, as the lock logic requires
            assert f"delete it (rm {path}) and run the workflow again" in msg
            assert "the line of 'covid/haniffa21.processed.h5ad' in the lock file" in msg
            assert f"If that line's size is {len(data)}, the size of this file" in msg
            assert "delete the line too" in msg
            assert "h5py" not in msg and "synchronously" not in msg  # no bare h5py error


def test_an_hdf5_file_that_is_no_anndata_and_a_file_of_the_workflow(tmp_path):
    path = tmp_path / "results" / "sim" / "raw" / "base.h5ad"
    path.parent.mkdir(parents=True)
    with h5py.File(path, "w") as f:
        f["matrix"] = np.zeros(3)
    with pytest.raises(UnreadableInputError) as err:
        read_source(SimulationParams(), path)
    msg = str(err.value)
    assert "it is an HDF5 file but not an AnnData (no 'obs' or 'var'; it holds ['matrix'])" in msg
    assert msg.endswith(
        "It is written by the workflow: delete it and run the workflow again to rebuild it."
    )
    assert "resources" not in msg


def test_an_anndata_without_cells_is_called_empty_not_subset_away(tmp_path, counts_h5ad):
    path = tmp_path / "empty.h5ad"
    empty = ad.AnnData(X=sparse.csr_matrix((0, 5), dtype=np.float32))
    empty.obs["Site"] = pd.Categorical([])
    empty.write_h5ad(path)
    with pytest.raises(UnreadableInputError) as err:
        read_h5ad_source(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}: the file is empty: it holds no cell (obs has 0 rows)")
    assert "subset" not in msg
    with pytest.raises(UnreadableInputError, match="nothing to read, let alone to subset"):
        read_h5ad_source(path, SubsetSpec(obs={"Site": ["Ncl"]}))
    # a subset that keeps nothing of a file with cells still says so
    good = resource(tmp_path, "good.h5ad", counts_h5ad)
    with pytest.raises(SchemaError, match="subset.obs keeps no cell"):
        read_h5ad_source(good, SubsetSpec(obs={"Site": ["Sanger"]}))
    assert read_h5ad_source(good, SubsetSpec(obs={"Site": ["Ncl"]})).n_obs == 100


def test_a_damaged_10x_archive_is_named(tmp_path, standin, write_10x_tar):
    good = write_10x_tar(tmp_path / "pbmc.tar.gz", *standin).read_bytes()
    name = "pbmc68k/fresh_68k_pbmc_donor_a_filtered_gene_bc_matrices.tar.gz"
    cases = {
        good[: len(good) // 2]: "cannot be read as a .tar.gz archive: it is truncated or damaged",
        b"": "cannot be read as a .tar.gz archive: it is empty (0 bytes), not a gzip file",
        ERROR_PAGE: "cannot be read as a .tar.gz archive: it is an HTML page, not a gzip file",
        good[:100] + bytes(len(good) - 100): "cannot be read as a .tar.gz archive: it is "
        "truncated or damaged",
    }
    for data, cause in cases.items():
        path = resource(tmp_path, name, data)
        with pytest.raises(UnreadableInputError) as err:
            read_source(TenxMtxTarSource(resource=name), path)
        msg = str(err.value)
        assert msg.startswith(f"{path}: {cause}"), msg
        assert f"the line of {name!r} in the lock file" in msg


def test_unreadable_portal_files_are_named(tmp_path):
    source = ScpBundlesSource(bundles=("CO_EPI",), metadata="ibd/meta.txt", directory="ibd")
    files = {
        "ibd/CO_EPI.scp.raw.mtx": b"%%MatrixMarket matrix coordinate integer general\n3 2 4\n1 1 5\n",
        "ibd/CO_EPI.scp.features.tsv": b"ENSG1\tA\nENSG2\tB\nENSG3\tC\n",
        "ibd/CO_EPI.scp.barcodes.tsv": b"",
        "ibd/meta.txt": b"NAME\tdonor_id\nTYPE\tgroup\n",
    }
    paths = {key: resource(tmp_path, key, data) for key, data in files.items()}
    with pytest.raises(UnreadableInputError) as err:
        read_scp_bundles(source, paths)
    barcodes = paths["ibd/CO_EPI.scp.barcodes.tsv"]
    assert str(err.value).startswith(
        f"{barcodes}: cannot be read as a barcodes list: it is empty (0 bytes)"
    )
    barcodes.write_bytes(b"c1\nc2\n")
    with pytest.raises(UnreadableInputError) as err:  # 4 entries announced, 1 given
        read_scp_bundles(source, paths)
    mtx = paths["ibd/CO_EPI.scp.raw.mtx"]
    assert str(err.value).startswith(f"{mtx}: cannot be read as a MatrixMarket file: ")
    assert "an interrupted download or copy?" in str(err.value)
    mtx.write_bytes(ERROR_PAGE)
    with pytest.raises(UnreadableInputError, match="it is an HTML page, not a MatrixMarket file"):
        read_scp_bundles(source, paths)


def test_a_hand_made_table_is_checked_for_its_values(tmp_path):
    obs = pd.DataFrame({"donor_id": ["d1", "d2", "d3"]}, index=["a", "b", "c"])
    adata = ad.AnnData(obs=obs)
    table = tmp_path / "donors.tsv"
    spec = SampleMetadataSpec(
        join_key="donor_id",
        path=str(table),
        values={"behavior": ["B1", "B2", "B3", "control"], "procedure": ["surgical", "biopsy"]},
    )
    table.write_text(
        "donor_id\tbehavior\tprocedure\nd1\tB1\tbiopsy\nd2\tb2\tbiopsy\nd3\t\tsurgical\n"
    )
    with pytest.raises(SchemaError) as err:
        read_sample_metadata(adata.copy(), spec, table)
    message = str(err.value)
    assert "column 'behavior' must hold one of ['B1', 'B2', 'B3', 'control']" in message
    assert "2 row(s) do not (d2: 'b2', d3: nan)" in message
    assert "procedure" not in message.split(";")[0] and message.count("must hold") == 1
    table.write_text("donor_id\tbehavior\nd1\tB1\nd2\tB2\nd3\tcontrol\n")
    with pytest.raises(SchemaError, match="no column 'procedure'"):
        read_sample_metadata(adata.copy(), spec, table)
    table.write_text(
        "donor_id\tbehavior\tprocedure\nd1\tB1\tbiopsy\nd2\tB2\tbiopsy\nd3\tcontrol\tsurgical\n"
    )
    out = read_sample_metadata(adata.copy(), spec, table)
    assert list(out.obs["behavior"]) == ["B1", "B2", "control"]


def test_mtx_header_reads_the_size_and_the_kind_of_values(tmp_path):
    mtx = tmp_path / "m.mtx"
    mtx.write_text("%%MatrixMarket MATRIX Coordinate Integer General\n%c\n\n3 2 2\n1 1 5\n2 2 1\n")
    assert mtx_header(mtx) == ("integer", 3, 2, 2, True)
    mtx.write_text("%%MatrixMarket matrix coordinate real general\n3 2 2\n1 1 0.5\n2 2 1\n")
    assert mtx_header(mtx)[4] is False
    mtx.write_text("%%MatrixMarket matrix coordinate pattern general\n3 2 2\n1 1\n2 2\n")
    assert mtx_header(mtx) == ("pattern", 3, 2, 2, False)
    mtx.write_text("%%MatrixMarket matrix coordinate real general\n3 2 1\n1 1 x\n")
    with pytest.raises(UnreadableInputError, match="an entry that is not a number"):
        mtx_header(mtx)
    mtx.write_text("%%MatrixMarket matrix array real general\n3 2\n")
    with pytest.raises(UnreadableInputError, match="not a MatrixMarket coordinate file"):
        mtx_header(mtx)
