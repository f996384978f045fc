"""The download registry: checked entries, and the shipped registry and lock."""

from __future__ import annotations

import pytest
import yaml

from mrvi_repro.data.download import DOWNLOAD_DEFAULTS, RegistryError, load_registry, read_lock


def test_registry_entries_are_checked(tmp_path):
    reg = tmp_path / "downloads.yaml"
    reg.write_text(
        "resources:\n"
        "  covid/haniffa21.processed.h5ad:\n"
        "    url: https://example.org/haniffa21.processed.h5ad\n"
        "    description: COVID-19 PBMCs\n"
        "  ibd/CO_EPI.scp.raw.mtx:\n"
        "    manual: sign in first\n"
    )
    reg_ = load_registry(reg)
    assert list(reg_) == ["covid/haniffa21.processed.h5ad", "ibd/CO_EPI.scp.raw.mtx"]
    assert reg_["ibd/CO_EPI.scp.raw.mtx"].is_manual
    assert reg_["covid/haniffa21.processed.h5ad"].filename == "haniffa21.processed.h5ad"
    bad = {
        "x.txt:\n    url: https://a\n    manual: b": "exactly one of 'url' and 'manual'",
        "x.txt:\n    url: ftp://a": "http:// or https://",
        "x.txt:\n    url: https://a\n    md5: abc": r"unknown keys \['md5'\]",
        "../x.txt:\n    url: https://a": "must be a relative path",
        "x.txt.part:\n    url: https://a": "must not end in .part",
        "x.txt.part.json:\n    url: https://a": r"must not end in \.part, \.part\.json",
        "x.txt:\n    url: https://a\n    sha256: ABC": "64 lower-case hex digits",
        "x.txt:\n    url: https://a\n    size: -1": "non-negative integer",
    }
    for text, message in bad.items():
        reg.write_text(f"resources:\n  {text}\n")
        with pytest.raises(RegistryError, match=message):
            load_registry(reg)


def test_the_shipped_registry_and_lock_are_valid(repo):
    schema = yaml.safe_load((repo / "workflow" / "schemas" / "config.schema.yaml").read_text())
    props = schema["properties"]["downloads"]["properties"]
    assert {k: v["default"] for k, v in props.items()} == DOWNLOAD_DEFAULTS
    registry = load_registry(repo / "config" / "downloads.yaml")
    lock = read_lock(repo / "config" / "downloads.lock.tsv")
    assert set(lock) <= set(registry)
    manual = {name for name, r in registry.items() if r.is_manual}
    assert {f"ibd/{b}.scp.raw.mtx" for b in ("CO_EPI", "TI_IMM")} <= manual
    assert "ibd/scp_metadata_combined.v2.txt" in manual
    # the connectivity-map signatures of the sci-Plex metrics (iLINCS exports; none for K562)
    l1000 = {name for name in manual if name.startswith("l1000/")}
    assert len(l1000) == 18 and "l1000/MCF7_sig_meta.xls" in l1000
    assert not any("K562" in name for name in l1000)
    urls = {r.url for r in registry.values() if not r.is_manual}
    assert "https://figshare.com/ndownloader/files/33979517" in urls
    assert "https://covid19.cog.sanger.ac.uk/submissions/release1/haniffa21.processed.h5ad" in urls
    # exact size and sha256 only where public sources state them (the PBMC 68k archive)
    known = {n: (r.size, r.sha256) for n, r in registry.items() if r.size or r.sha256}
    assert known == {
        "pbmc68k/fresh_68k_pbmc_donor_a_filtered_gene_bc_matrices.tar.gz": (
            124_442_812,
            "3f35f37ff344bc9b32f97cd003ac986ebb9b5d7f31006c53dff4cb38da267931",
        )
    }
