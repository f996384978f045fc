"""Readers of dataset sources: the 10x Cell Ranger 1.x archive (PBMC 68k) and the dispatch."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import anndata as ad
import numpy as np
import pytest
import yaml
from scipy import sparse

from mrvi_repro.data.contract import DataContractError
from mrvi_repro.data.download import load_registry
from mrvi_repro.data.readers import MTX_MEMBERS, ArchiveError, read_10x_mtx_tar, read_source
from mrvi_repro.pipeline import DatasetSpec, check_schema
from mrvi_repro.settings.data import H5adSource, SimulationParams, TenxMtxTarSource

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
