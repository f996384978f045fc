"""Rule `download` run by Snakemake against a loopback HTTP server, with a registry of the test's."""

from __future__ import annotations

import hashlib

import anndata as ad
import numpy as np
import pytest
import yaml

from mrvi_repro.data.download import read_lock

pytestmark = pytest.mark.workflow

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB
INSTRUCTIONS = "Sign in at https://portal.example/study and download table.txt."


@pytest.fixture
def server(www_server):
    """Base URL of the loopback server, serving data.bin."""
    www, url = www_server
    (www / "data.bin").write_bytes(PAYLOAD)
    return url


def test_download_rule_fetches_records_and_asks_for_manual_files(repo, tmp_path, server, snakemake):
    registry, lock = tmp_path / "registry.yaml", tmp_path / "lock.tsv"
    registry.write_text(
        yaml.safe_dump(
            {
                "resources": {
                    "demo/data.bin": {"url": f"{server}/data.bin"},
                    "portal/table.txt": {"manual": INSTRUCTIONS},
                }
            }
        )
    )
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "datasets": [str(repo / "config" / "datasets" / "semisynthetic.yaml")],
                "downloads": {"registry": str(registry), "lock": str(lock)},
            }
        )
    )
    targets = ("resources/demo/data.bin", "resources/portal/table.txt")
    args = ("--cores", "1", "--keep-going", "--directory", tmp_path, "--configfile", config)
    rc, out = snakemake(repo, *targets, *args)

    # the URL resource is downloaded, logged with progress and recorded in the lock
    assert (tmp_path / "resources" / "demo" / "data.bin").exists(), out[-3000:]
    assert (tmp_path / "resources" / "demo" / "data.bin").read_bytes() == PAYLOAD
    log = (tmp_path / "resources" / "logs" / "demo" / "data.bin.log").read_text()
    assert "downloaded 1.0 MiB of 1.0 MiB (100.0%) at" in log and "MiB/s" in log
    assert (tmp_path / "resources" / "benchmarks" / "demo" / "data.bin.tsv").exists()
    entry = read_lock(lock)["demo/data.bin"]
    assert (entry.url, entry.size) == (f"{server}/data.bin", len(PAYLOAD))
    assert entry.sha256 == hashlib.sha256(PAYLOAD).hexdigest()

    # the manual one fails and says on the console what to put where
    placed = tmp_path / "resources" / "manual" / "portal" / "table.txt"
    assert rc != 0
    assert INSTRUCTIONS in out and str(placed) in out, out[-3000:]
    assert not (tmp_path / "resources" / "portal" / "table.txt").exists()

    # once placed by hand, it is picked up and recorded
    placed.parent.mkdir(parents=True)
    placed.write_text("plate\tdose\n")
    rc, out = snakemake(repo, *targets, *args)
    assert rc == 0, out[-3000:]
    assert (tmp_path / "resources" / "portal" / "table.txt").read_text() == "plate\tdose\n"
    assert read_lock(lock)["portal/table.txt"].url == "manual"
    assert set(read_lock(lock)) == {"demo/data.bin", "portal/table.txt"}


ERROR_PAGE = b"<!DOCTYPE html><html><head><title>Service Unavailable</title></head></html>\n"


def test_refused_content_and_permanent_errors_fail_once_and_say_why_on_the_console(
    repo, tmp_path, server, www_requests, www_faults, snakemake
):
    www_faults["/covid.h5ad"] = (200, "text/html; charset=utf-8", ERROR_PAGE)
    registry, lock = tmp_path / "registry.yaml", tmp_path / "lock.tsv"
    resources = {
        "demo/covid.h5ad": {"url": f"{server}/covid.h5ad"},  # an error page with status 200
        "demo/gone.h5ad": {"url": f"{server}/gone.h5ad"},  # 404
    }
    registry.write_text(yaml.safe_dump({"resources": resources}))
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "datasets": [str(repo / "config" / "datasets" / "semisynthetic.yaml")],
                "downloads": {"registry": str(registry), "lock": str(lock)},
            }
        )
    )
    targets = [f"resources/{name}" for name in resources]
    # --retries 2 as a profile may set it: the rule's `retries: 0` wins
    args = ("--cores", "1", "--keep-going", "--retries", "2", "--directory", tmp_path)
    rc, out = snakemake(repo, *targets, *args, "--configfile", config)
    assert rc != 0
    # each URL was asked for once: no rule retry repeats a 404 or a refused page
    assert sorted(www_requests) == ["/covid.h5ad", "/gone.h5ad"], out[-3000:]
    # the errors are on the console, not only in the rule logs
    assert f"UnexpectedContentError: demo/covid.h5ad: the answer of {server}/covid.h5ad" in out
    assert "HTML page (HTTP 200, Content-Type text/html; charset=utf-8" in out
    assert f"DownloadError: demo/gone.h5ad: HTTP 404 File not found for {server}/gone.h5ad" in out
    # nothing saved, nothing kept, nothing locked
    assert not lock.exists()
    kept = [p for p in (tmp_path / "resources").rglob("*") if p.is_file()]
    assert all(p.parts[-3] in ("logs", "benchmarks") for p in kept), kept


def test_shipped_registry_gives_one_download_job_per_resource(repo, tmp_path, snakemake):
    target = "resources/covid/haniffa21.processed.h5ad"
    rc, out = snakemake(repo, "-n", "--directory", tmp_path, target, timeout=300)
    assert rc == 0, out[-3000:]
    assert "rule download:" in out and f"output: {target}" in out
    rc, out = snakemake(repo, "-n", "--directory", tmp_path, "resources/nowhere.txt", timeout=300)
    assert rc != 0 and "MissingRuleException" in out, out[-3000:]


def test_an_unreadable_download_is_named_on_the_console(repo, tmp_path, snakemake):
    name = "demo/cells.h5ad"
    registry, lock = tmp_path / "registry.yaml", tmp_path / "lock.tsv"
    registry.write_text(yaml.safe_dump({"resources": {name: {"url": "http://127.0.0.1:9/x"}}}))
    entry = {"source": {"kind": "h5ad", "resource": name}, "sample_key": "patient_id"}
    (tmp_path / "cells.yaml").write_text(yaml.safe_dump(entry))
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "datasets": [str(tmp_path / "cells.yaml")],
                "downloads": {"registry": str(registry), "lock": str(lock)},
            }
        )
    )
    # a copy cut short, already in place (so no download job runs)
    path = tmp_path / "resources" / name
    path.parent.mkdir(parents=True)
    adata = ad.AnnData(X=np.ones((50, 20), dtype=np.float32))
    adata.obs["patient_id"] = "p1"
    adata.write_h5ad(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    target = "results/cells/data/preprocessed.h5ad"
    args = ("--cores", "1", "--directory", tmp_path, "--configfile", config)
    rc, out = snakemake(repo, target, *args, timeout=300)
    assert rc != 0 and "rule download:" not in out
    # the named error, its cause and how to fetch the file again are on the console
    assert f"UnreadableInputError: resources/{name}: cannot be read as an .h5ad file" in out, out
    assert f"it is truncated, {len(data) // 2:,} of the {len(data):,} bytes" in out
    assert f"delete it (rm resources/{name}) and run the workflow again" in out
    assert "Traceback" not in out  # the traceback stays in the log
    log = (tmp_path / "results" / "cells" / "logs" / "preprocess_dataset.log").read_text()
    assert "Traceback" in log and "UnreadableInputError" in log
