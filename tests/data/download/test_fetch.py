"""Downloads against a loopback HTTP server with switchable faults; manual files; obtain."""

from __future__ import annotations

import gzip
import hashlib
import logging
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mrvi_repro.data.download import (
    HDF5_MAGIC,
    LOCK_COLUMNS,
    ChecksumError,
    DownloadError,
    LockEntry,
    ManualDownloadRequired,
    Resource,
    UnexpectedContentError,
    fetch,
    file_digest,
    manual_file,
    obtain,
    read_lock,
    write_lock,
)

#: 300 KiB of non-repeating bytes: a few chunks of FAST's 64 KiB.
PAYLOAD = b"".join(hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(9600))
SHA = hashlib.sha256(PAYLOAD).hexdigest()

#: Small chunks, no waiting between retries, a progress line per chunk.
FAST = {"chunk": 64 * 1024, "backoff": 0.0, "timeout": 5.0, "progress_every": 0.0}

LOGGER = "mrvi_repro.data.download"


def etag_of(body: bytes) -> str:
    """The strong ETag the test server gives a version of a file."""
    return f'"{hashlib.sha256(body).hexdigest()[:16]}"'


def last_modified_of(body: bytes) -> str:
    """The Last-Modified date the test server gives a version of a file (one per version)."""
    return formatdate(1_600_000_000 + int(hashlib.sha256(body).hexdigest()[:6], 16), usegmt=True)


@dataclass
class Faults:
    """What the server does wrong; one-shot faults are used up by the request they hit."""

    files: dict[str, bytes] = field(default_factory=dict)
    drop_after: int | None = None  # send the full Content-Length, then close after N body bytes
    reset: bool = False  # drop with a TCP reset instead of a clean close
    ignore_range: bool = False  # answer every request with 200 and the whole file
    ignore_if_range: bool = False  # honour Range even when If-Range names an older version
    validators: tuple[str, ...] = ("ETag", "Last-Modified")  # headers sent with each file
    content_type: str = "application/octet-stream"
    fail_with: list[int | None] = field(default_factory=list)  # per request, None: serve it
    after_drop: dict[str, bytes] = field(default_factory=dict)  # files changed by the drop
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Range header)
    if_range: list[str | None] = field(default_factory=list)  # If-Range header of each request


def make_handler(faults: Faults):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep pytest's output clean
            pass

        def do_GET(self):
            rng = self.headers.get("Range")
            faults.requests.append((self.path, rng))
            faults.if_range.append(self.headers.get("If-Range"))
            status = faults.fail_with.pop(0) if faults.fail_with else None
            if status is not None:
                self.send_error(status)
                return
            body = faults.files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            validators = {"ETag": etag_of(body), "Last-Modified": last_modified_of(body)}
            validators = {k: v for k, v in validators.items() if k in faults.validators}
            if_range = self.headers.get("If-Range")
            current = not if_range or faults.ignore_if_range or if_range in validators.values()
            start = 0
            if rng and not faults.ignore_range and current:
                start = int(rng.removeprefix("bytes=").split("-")[0])
                if start >= len(body):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(body)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            else:
                self.send_response(200)
            chunk = body[start:]
            self.send_header("Content-Type", faults.content_type)
            self.send_header("Content-Length", str(len(chunk)))
            for key, value in validators.items():
                self.send_header(key, value)
            self.end_headers()
            if faults.drop_after is not None:
                self.wfile.write(chunk[: faults.drop_after])
                faults.drop_after = None
                faults.files.update(faults.after_drop)
                self.close_connection = True
                if faults.reset:
                    self.wfile.flush()
                    time.sleep(0.2)  # let the client read what was sent, then reset
                    linger = struct.pack("ii", 1, 0)
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
                    self.connection.close()
                return
            self.wfile.write(chunk)

    return Handler


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):  # the reset socket fails its clean-up
        pass


@pytest.fixture
def server(monkeypatch):
    """(base url, Faults) of a threading HTTP server on 127.0.0.1 serving /data.bin."""
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    faults = Faults(files={"/data.bin": PAYLOAD})
    httpd = QuietServer(("127.0.0.1", 0), make_handler(faults))
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", faults
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def paths(tmp_path):
    """(destination, lock file) in a temporary folder."""
    return tmp_path / "res" / "demo" / "data.bin", tmp_path / "config" / "downloads.lock.tsv"


def leftovers(dest):
    return sorted(p.name for p in dest.parent.iterdir() if p.name != dest.name)


def test_first_download_records_the_lock_and_a_second_fetch_only_verifies(server, paths, caplog):
    base, faults = server
    dest, lock = paths
    caplog.set_level(logging.INFO, logger=LOGGER)
    assert fetch(f"{base}/data.bin", dest, lock_path=lock, name="demo/data.bin", **FAST) == dest
    assert dest.read_bytes() == PAYLOAD
    assert leftovers(dest) == []  # no .part left behind
    assert read_lock(lock) == {
        "demo/data.bin": LockEntry("demo/data.bin", f"{base}/data.bin", len(PAYLOAD), SHA)
    }
    assert lock.read_text().splitlines()[0] == "\t".join(LOCK_COLUMNS)
    assert "(100.0%)" in caplog.text and "MiB/s" in caplog.text
    assert len(faults.requests) == 1

    # present and matching the lock: verified, not downloaded again
    fetch(f"{base}/data.bin", dest, lock_path=lock, name="demo/data.bin", **FAST)
    assert len(faults.requests) == 1
    assert "size and sha256 match" in caplog.text
    # removed: downloaded again and checked against the recorded entry
    dest.unlink()
    fetch(f"{base}/data.bin", dest, lock_path=lock, name="demo/data.bin", **FAST)
    assert len(faults.requests) == 2 and dest.read_bytes() == PAYLOAD


def test_resume_after_a_dropped_connection(server, paths, caplog):
    base, faults = server
    dest, lock = paths
    faults.drop_after = 100_000
    caplog.set_level(logging.INFO, logger=LOGGER)
    # an attempt that received bytes does not use up a retry
    fetch(f"{base}/data.bin", dest, lock_path=lock, name="demo/data.bin", retries=0, **FAST)
    assert dest.read_bytes() == PAYLOAD
    assert faults.requests == [("/data.bin", None), ("/data.bin", "bytes=100000-")]
    assert "connection closed after 100000 of 307200 bytes" in caplog.text
    assert "resuming at byte 100000" in caplog.text
    assert "progress 64.0 KiB of 300.0 KiB (21.3%)" in caplog.text
    assert read_lock(lock)["demo/data.bin"].sha256 == SHA  # the re-hashed part counts
    assert leftovers(dest) == []


def test_resume_after_a_connection_reset(server, paths, caplog):
    base, faults = server
    dest, lock = paths
    faults.drop_after, faults.reset = 150_000, True
    caplog.set_level(logging.INFO, logger=LOGGER)
    fetch(f"{base}/data.bin", dest, lock_path=lock, name="demo/data.bin", **FAST)
    assert dest.read_bytes() == PAYLOAD
    assert len(faults.requests) == 2 and faults.requests[1][1].startswith("bytes=")
    assert "resuming at byte" in caplog.text
    assert "connection lost after" in caplog.text or "connection closed after" in caplog.text


def interrupted_run(base, faults, dest, lock, at=123_456):
    """A run that breaks off after ``at`` bytes and then meets a 404: it leaves a part behind."""
    faults.drop_after, faults.fail_with = at, [None, 404]
    with pytest.raises(DownloadError, match="HTTP 404"):
        fetch(f"{base}/data.bin", dest, lock_path=lock, name="demo/data.bin", **FAST)
    assert leftovers(dest) == ["data.bin.part", "data.bin.part.json"]
    assert (dest.parent / "data.bin.part").read_bytes() == PAYLOAD[:at]
    faults.requests.clear()
    faults.if_range.clear()


def test_a_part_left_by_an_interrupted_run_is_resumed_if_unchanged(server, paths, caplog):
    base, faults = server
    dest, lock = paths
    interrupted_run(base, faults, dest, lock)
    caplog.set_level(logging.INFO, logger=LOGGER)
    fetch(f"{base}/data.bin", dest, lock_path=lock, name="demo/data.bin", **FAST)
    # the saved ETag goes with the range request: the server sends the rest only if unchanged
    assert faults.requests == [("/data.bin", "bytes=123456-")]
    assert faults.if_range == [etag_of(PAYLOAD)]
    assert dest.read_bytes() == PAYLOAD
    assert read_lock(lock)["demo/data.bin"].sha256 == SHA
    assert leftovers(dest) == []  # the part's state is gone with it
    assert f"If-Range {etag_of(PAYLOAD)}" in caplog.text


@pytest.mark.parametrize("validators", [("ETag", "Last-Modified"), ("Last-Modified",)])
def test_a_file_changed_between_two_runs_is_not_spliced(server, paths, caplog, validators):
    base, faults = server
    dest, lock = paths
    faults.validators = validators
    interrupted_run(base, faults, dest, lock)
    new = PAYLOAD[::-1]  # another version of the same size
    faults.files["/data.bin"] = new
    caplog.set_level(logging.INFO, logger=LOGGER)
    fetch(f"{base}/data.bin", dest, lock_path=lock, name="demo/data.bin", **FAST)
    # If-Range names the old version, so the server sends the whole new file with status 200
    old = etag_of(PAYLOAD) if "ETag" in validators else last_modified_of(PAYLOAD)
    assert faults.if_range == [old]
    assert dest.read_bytes() == new  # not 123,456 old bytes followed by the new file's rest
    assert read_lock(lock)["demo/data.bin"] == LockEntry(
        "demo/data.bin", f"{base}/data.bin", len(new), hashlib.sha256(new).hexdigest()
    )
    assert "sent the whole file (HTTP 200)" in caplog.text and "its file changed" in caplog.text
    assert leftovers(dest) == []


@pytest.mark.parametrize("validators", [("ETag",), ("Last-Modified",)])
def test_a_server_that_ignores_if_range_is_caught_by_the_validators(
    server, paths, caplog, validators
):
    base, faults = server
    dest, lock = paths
    new = PAYLOAD[::-1]
    # the connection drops and the file changes (same size) before the in-run resume
    faults.drop_after, faults.after_drop = 100_000, {"/data.bin": new}
    faults.ignore_if_range, faults.validators = True, validators
    caplog.set_level(logging.INFO, logger=LOGGER)
    fetch(f"{base}/data.bin", dest, lock_path=lock, name="demo/data.bin", **FAST)
    # the 206 answer carries the new version's validator: the part is dropped, the file refetched
    assert faults.requests == [
        ("/data.bin", None),
        ("/data.bin", "bytes=100000-"),
        ("/data.bin", None),
    ]
    assert dest.read_bytes() == new
    assert read_lock(lock)["demo/data.bin"].sha256 == hashlib.sha256(new).hexdigest()
    header = "ETag" if validators == ("ETag",) else "Last-Modified"
    assert f"the file on the server changed since the partial download began (its {header}" in (
        caplog.text
    )


def test_a_part_that_cannot_be_checked_starts_again(server, paths, caplog):
    base, faults = server
    dest, lock = paths
    caplog.set_level(logging.INFO, logger=LOGGER)
    # a part without its saved state (e.g. left by an older version)
    dest.parent.mkdir(parents=True)
    (dest.parent / "data.bin.part").write_bytes(PAYLOAD[::-1][:123_456])
    fetch(f"{base}/data.bin", dest, lock_path=lock, name="demo/data.bin", **FAST)
    assert faults.requests == [("/data.bin", None)]
    assert dest.read_bytes() == PAYLOAD and leftovers(dest) == []
    assert "not resuming the 120.6 KiB in data.bin.part (no data.bin.part.json" in caplog.text
    # a server without ETag and Last-Modified: a part of an earlier run is not trusted
    dest.unlink()
    faults.validators = ()
    faults.requests.clear()
    interrupted_run(base, faults, dest, lock)
    fetch(f"{base}/data.bin", dest, lock_path=lock, name="demo/data.bin", **FAST)
    assert faults.requests == [("/data.bin", None)]
    assert dest.read_bytes() == PAYLOAD
    assert "the server gave no ETag or Last-Modified" in caplog.text


def test_a_complete_part_is_not_downloaded_again(server, paths):
    base, faults = server
    dest, lock = paths
    interrupted_run(base, faults, dest, lock, at=len(PAYLOAD) - 1)
    (dest.parent / "data.bin.part").write_bytes(PAYLOAD)  # the last byte came in after all
    fetch(f"{base}/data.bin", dest, lock_path=lock, name="demo/data.bin", **FAST)
    assert faults.requests == [("/data.bin", f"bytes={len(PAYLOAD)}-")]  # answered 416
    assert dest.read_bytes() == PAYLOAD and leftovers(dest) == []


def test_a_server_that_ignores_range_restarts_from_zero(server, paths, caplog):
    base, faults = server
    dest, lock = paths
    faults.drop_after, faults.ignore_range = 70_000, True
    caplog.set_level(logging.INFO, logger=LOGGER)
    fetch(f"{base}/data.bin", dest, lock_path=lock, name="demo/data.bin", **FAST)
    assert dest.read_bytes() == PAYLOAD  # not the first 70 kB twice
    assert faults.requests == [("/data.bin", None), ("/data.bin", "bytes=70000-")]
    assert "sent the whole file (HTTP 200) instead of the bytes from 70000" in caplog.text
    assert read_lock(lock)["demo/data.bin"].size == len(PAYLOAD)


def test_server_errors_are_retried(server, paths, caplog):
    base, faults = server
    dest, lock = paths
    faults.fail_with = [503, 502]
    caplog.set_level(logging.INFO, logger=LOGGER)
    fetch(f"{base}/data.bin", dest, lock_path=lock, name="demo/data.bin", **FAST)
    assert dest.read_bytes() == PAYLOAD and len(faults.requests) == 3
    assert "HTTP 503" in caplog.text and "retrying" in caplog.text
    assert "kept in" not in caplog.text  # nothing had come, so no .part is named


def test_retries_are_used_up(server, paths):
    base, faults = server
    dest, lock = paths
    faults.fail_with = [503] * 10
    with pytest.raises(DownloadError, match="failed 3 times in a row, giving up: HTTP 503") as err:
        fetch(f"{base}/data.bin", dest, lock_path=lock, name="demo/data.bin", retries=2, **FAST)
    assert len(faults.requests) == 3
    assert not dest.exists() and not lock.exists()
    # nothing came, and the message says so instead of naming a .part that does not exist
    assert "Nothing was received" in str(err.value) and ".part" not in str(err.value)
    assert leftovers(dest) == []


def test_not_found_is_not_retried(server, paths):
    base, faults = server
    dest, lock = paths
    with pytest.raises(DownloadError, match=r"HTTP 404 .* for http://127\.0\.0\.1:\d+/gone\.bin"):
        fetch(f"{base}/gone.bin", dest, lock_path=lock, name="demo/data.bin", **FAST)
    assert len(faults.requests) == 1 and not dest.exists()
    assert not dest.parent.exists() or leftovers(dest) == []


def test_unreachable_server_gives_up_with_the_url(paths):
    dest, lock = paths
    with pytest.raises(DownloadError, match="127.0.0.1:9/x failed 2 times") as err:
        fetch("http://127.0.0.1:9/x", dest, lock_path=lock, name="x", retries=1, **FAST)
    assert "Nothing was received" in str(err.value) and "kept in" not in str(err.value)


def test_checksum_mismatch_quarantines_the_file(server, paths):
    base, faults = server
    dest, lock = paths
    other = hashlib.sha256(b"old").hexdigest()
    write_lock(
        lock,
        {
            "demo/data.bin": LockEntry("demo/data.bin", "http://x", len(PAYLOAD), other),
            "a/first.txt": LockEntry("a/first.txt", "http://y", 3, other),
        },
    )
    with pytest.raises(ChecksumError) as err:
        fetch(f"{base}/data.bin", dest, lock_path=lock, name="demo/data.bin", **FAST)
    msg = str(err.value)
    assert f"expected {len(PAYLOAD)} bytes with sha256 {other}" in msg
    assert f"got {len(PAYLOAD)} bytes with sha256 {SHA}" in msg
    assert "delete the line of 'demo/data.bin'" in msg and str(lock) in msg
    assert not dest.exists()
    assert leftovers(dest) == ["data.bin.corrupt"]  # quarantined, no .part
    assert (dest.parent / "data.bin.corrupt").read_bytes() == PAYLOAD
    assert read_lock(lock)["demo/data.bin"].sha256 == other  # the lock is not changed


def test_a_file_at_the_destination_is_checked_not_downloaded(server, paths):
    base, faults = server
    dest, lock = paths
    dest.parent.mkdir(parents=True)
    dest.write_bytes(PAYLOAD[:-1] + b"!")  # damaged copy
    write_lock(lock, {"demo/data.bin": LockEntry("demo/data.bin", "u", len(PAYLOAD), SHA)})
    with pytest.raises(ChecksumError, match="does not match the lock file"):
        fetch(f"{base}/data.bin", dest, lock_path=lock, name="demo/data.bin", **FAST)
    assert faults.requests == []
    assert not dest.exists() and (dest.parent / "data.bin.corrupt").exists()


def test_known_values_of_the_registry_are_checked(server, paths):
    base, faults = server
    dest, lock = paths
    # another announced size is refused before a byte is written
    with pytest.raises(UnexpectedContentError, match="announces 307200 bytes") as err:
        fetch(f"{base}/data.bin", dest, lock_path=lock, name="d", expected_size=5, **FAST)
    assert "registry gives its size as 5 bytes" in str(err.value)
    assert not lock.exists() and leftovers(dest) == []  # nothing recorded, nothing kept
    # a known sha256 alone: the message names it and no size ("expected None bytes" before)
    other = hashlib.sha256(b"other").hexdigest()
    with pytest.raises(ChecksumError) as err:
        fetch(f"{base}/data.bin", dest, lock_path=lock, name="d", expected_sha256=other, **FAST)
    msg = str(err.value)
    assert f"does not match the registry: expected sha256 {other}, got {len(PAYLOAD)}" in msg
    assert "None" not in msg
    assert not lock.exists() and leftovers(dest) == ["data.bin.corrupt"]
    fetch(f"{base}/data.bin", dest, lock_path=lock, name="d", expected_sha256=SHA, **FAST)
    assert read_lock(lock)["d"].sha256 == SHA
    assert len(faults.requests) == 3


def test_the_lock_keeps_other_entries_sorted(server, paths):
    base, _ = server
    dest, lock = paths
    z = LockEntry("z/last.txt", "http://z", 1, "0" * 64)
    a = LockEntry("a/first.txt", "manual", 2, "f" * 64)
    write_lock(lock, {"z/last.txt": z, "a/first.txt": a})
    fetch(f"{base}/data.bin", dest, lock_path=lock, name="m/data.bin", **FAST)
    names = [line.split("\t")[0] for line in lock.read_text().splitlines()]
    assert names == ["name", "a/first.txt", "m/data.bin", "z/last.txt"]
    assert read_lock(lock)["z/last.txt"] == z


#: An error page, as a storage server or a proxy sends it (often with status 200).
ERROR_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>503 Service Unavailable</title></head>"
    b"<body><h1>Service Unavailable</h1><p>Try again later.</p></body></html>\n"
)


def test_an_html_answer_is_refused_before_anything_is_saved(server, paths, caplog):
    base, faults = server
    dest, lock = paths
    dest = dest.with_name("data.h5ad")
    faults.files["/data.h5ad"] = ERROR_PAGE
    faults.content_type = "text/html; charset=utf-8"
    caplog.set_level(logging.INFO, logger=LOGGER)
    with pytest.raises(UnexpectedContentError) as err:
        fetch(f"{base}/data.h5ad", dest, lock_path=lock, name="demo/data.h5ad", **FAST)
    msg = str(err.value)
    assert f"demo/data.h5ad: the answer of {base}/data.h5ad is not the expected file" in msg
    assert "HTML page (HTTP 200, Content-Type text/html; charset=utf-8" in msg
    assert "b'<!DOCTYPE html>\\n<html><head><title>503 Service" in msg
    assert "Nothing was saved or recorded in the lock file" in msg
    # not saved, not locked, not retried
    assert not lock.exists() and not dest.exists() and leftovers(dest) == []
    assert len(faults.requests) == 1
    # an HTML resource may of course be HTML
    page = dest.with_name("page.html")
    faults.files["/page.html"] = ERROR_PAGE
    fetch(f"{base}/page.html", page, lock_path=lock, name="demo/page.html", **FAST)
    assert page.read_bytes() == ERROR_PAGE and set(read_lock(lock)) == {"demo/page.html"}


def test_an_html_page_sent_as_binary_is_quarantined_not_locked(server, paths):
    base, faults = server
    dest, lock = paths
    dest = dest.with_name("data.tar.gz")
    faults.files["/data.tar.gz"] = ERROR_PAGE  # Content-Type application/octet-stream
    with pytest.raises(UnexpectedContentError) as err:
        fetch(f"{base}/data.tar.gz", dest, lock_path=lock, name="demo/data.tar.gz", **FAST)
    msg = str(err.value)
    assert "it is an HTML page, not a gzip file" in msg
    assert "Content-Type application/octet-stream; first bytes b'<!DOCTYPE html>" in msg
    assert f"moved to {dest}.corrupt; nothing was recorded in the lock file" in msg
    assert "stopped" not in msg  # the whole page came in the first block
    assert not lock.exists() and not dest.exists()
    assert leftovers(dest) == ["data.tar.gz.corrupt"]  # no .part, no .part.json
    assert (dest.parent / "data.tar.gz.corrupt").read_bytes() == ERROR_PAGE


def test_a_file_must_start_as_its_name_promises(server, paths):
    base, faults = server
    dest, lock = paths
    h5ad = dest.with_name("data.h5ad")
    faults.files["/data.h5ad"] = PAYLOAD  # 300 KiB that are not HDF5
    with pytest.raises(UnexpectedContentError) as err:
        fetch(f"{base}/data.h5ad", h5ad, lock_path=lock, name="demo/data.h5ad", **FAST)
    msg = str(err.value)
    assert "it is not an HDF5 file (which starts with b'\\x89HDF\\r\\n\\x1a\\n')" in msg
    assert f"first bytes {PAYLOAD[:48]!r}..." in msg
    assert "the transfer was stopped after 64.0 KiB" in msg  # not all 300 KiB
    assert (h5ad.parent / "data.h5ad.corrupt").read_bytes() == PAYLOAD[: 64 * 1024]
    assert not lock.exists() and not h5ad.exists()
    # an empty answer is refused too
    faults.files["/empty.gz"] = b""
    with pytest.raises(UnexpectedContentError, match=r"it is empty \(0 bytes\), not a gzip file"):
        fetch(f"{base}/empty.gz", dest.with_name("e.gz"), lock_path=lock, name="e.gz", **FAST)
    assert not lock.exists()
    # the genuine formats pass and are recorded
    hdf5 = HDF5_MAGIC + PAYLOAD
    faults.files["/data.h5ad"] = hdf5
    gz = gzip.compress(PAYLOAD)
    faults.files["/data.tar.gz"] = gz
    fetch(f"{base}/data.h5ad", h5ad, lock_path=lock, name="demo/data.h5ad", **FAST)
    tgz = dest.with_name("data.tar.gz")
    fetch(f"{base}/data.tar.gz", tgz, lock_path=lock, name="demo/data.tar.gz", **FAST)
    assert h5ad.read_bytes() == hdf5 and tgz.read_bytes() == gz
    assert {n: e.size for n, e in read_lock(lock).items()} == {
        "demo/data.h5ad": len(hdf5),
        "demo/data.tar.gz": len(gz),
    }


def test_a_lock_line_recorded_from_an_error_page_is_named(server, paths):
    base, faults = server
    dest, lock = paths
    dest = dest.with_name("data.h5ad")
    dest.parent.mkdir(parents=True)
    dest.write_bytes(ERROR_PAGE)  # saved and locked by a version that did not look
    size, digest = len(ERROR_PAGE), hashlib.sha256(ERROR_PAGE).hexdigest()
    write_lock(lock, {"demo/data.h5ad": LockEntry("demo/data.h5ad", "u", size, digest)})
    with pytest.raises(UnexpectedContentError) as err:
        fetch(f"{base}/data.h5ad", dest, lock_path=lock, name="demo/data.h5ad", **FAST)
    msg = str(err.value)
    assert f"{dest.absolute()} is not the expected file: it is an HTML page" in msg
    assert f"The lock file {lock} records this very file for 'demo/data.h5ad'" in msg
    assert "delete that line too" in msg
    assert faults.requests == [] and leftovers(dest) == ["data.h5ad.corrupt"]
    assert read_lock(lock)["demo/data.h5ad"].sha256 == digest  # left to the user


def test_a_manual_file_that_is_a_sign_in_page_is_refused(tmp_path):
    dest, lock = tmp_path / "m" / "CO_EPI.scp.raw.mtx", tmp_path / "lock.tsv"
    dest.parent.mkdir()
    dest.write_bytes(ERROR_PAGE.replace(b"503 Service Unavailable", b"Sign in"))
    with pytest.raises(UnexpectedContentError) as err:
        manual_file(dest, "get it", lock_path=lock, name="ibd/CO_EPI.scp.raw.mtx")
    msg = str(err.value)
    assert f"the file placed by hand at {dest.absolute()} is not the expected file" in msg
    assert "it is an HTML page, not a MatrixMarket file" in msg
    assert not lock.exists() and (dest.parent / "CO_EPI.scp.raw.mtx.corrupt").exists()
    dest.write_bytes(b"%%MatrixMarket matrix coordinate integer general\n1 1 1\n1 1 3\n")
    manual_file(dest, "get it", lock_path=lock, name="ibd/CO_EPI.scp.raw.mtx")
    assert read_lock(lock)["ibd/CO_EPI.scp.raw.mtx"].url == "manual"


def test_missing_manual_file_says_what_to_put_where(tmp_path):
    dest = tmp_path / "manual" / "ibd" / "CO_EPI.scp.raw.mtx"
    instructions = "Sign in at https://portal.example/SCP1884 and download CO_EPI.scp.raw.mtx."
    with pytest.raises(ManualDownloadRequired) as err:
        manual_file(dest, instructions, lock_path=tmp_path / "lock.tsv", name="ibd/x")
    msg = str(err.value)
    assert instructions in msg and str(dest.absolute()) in msg
    assert f"mkdir -p {dest.parent.absolute()}" in msg
    assert not (tmp_path / "lock.tsv").exists()


def test_a_manual_file_in_place_is_recorded_then_verified(tmp_path):
    dest, lock = tmp_path / "m" / "f.txt", tmp_path / "lock.tsv"
    dest.parent.mkdir()
    dest.write_bytes(b"hello")
    assert manual_file(dest, "get it", lock_path=lock, name="f.txt") == dest
    entry = read_lock(lock)["f.txt"]
    assert (entry.url, entry.size) == ("manual", 5)
    assert entry.sha256 == hashlib.sha256(b"hello").hexdigest()
    manual_file(dest, "get it", lock_path=lock, name="f.txt")  # matches
    dest.write_bytes(b"hellO")
    with pytest.raises(ChecksumError, match="got 5 bytes with sha256"):
        manual_file(dest, "get it", lock_path=lock, name="f.txt")
    assert not dest.exists() and (dest.parent / "f.txt.corrupt").read_bytes() == b"hellO"


def test_obtain_picks_up_a_manual_file_and_downloads_a_url(server, tmp_path):
    base, _ = server
    lock, inbox, res = tmp_path / "lock.tsv", tmp_path / "manual", tmp_path / "resources"
    manual = Resource("ibd/meta.txt", manual="Download meta.txt from the portal.")
    with pytest.raises(ManualDownloadRequired, match="Download meta.txt from the portal"):
        obtain(manual, res / manual.name, lock_path=lock, manual_dir=inbox)
    (inbox / "ibd").mkdir(parents=True)
    (inbox / "ibd" / "meta.txt").write_text("NAME\tChem\nTYPE\tgroup\n")
    obtain(manual, res / manual.name, lock_path=lock, manual_dir=inbox)
    assert (res / "ibd" / "meta.txt").read_text().startswith("NAME")
    assert (inbox / "ibd" / "meta.txt").exists()  # the hand-placed copy stays
    url = Resource("demo/data.bin", url=f"{base}/data.bin", size=len(PAYLOAD), sha256=SHA)
    obtain(url, res / url.name, lock_path=lock, manual_dir=inbox, **FAST)
    assert file_digest(res / "demo" / "data.bin") == (len(PAYLOAD), SHA)
    assert set(read_lock(lock)) == {"ibd/meta.txt", "demo/data.bin"}
