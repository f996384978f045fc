"""Downloads against a loopback HTTP server with switchable faults; manual files; obtain."""

from __future__ import annotations

import hashlib
import logging
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mrvi_repro.data.download import (
    LOCK_COLUMNS,
    ChecksumError,
    DownloadError,
    LockEntry,
    ManualDownloadRequired,
    Resource,
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


@dataclass
class Faults:
    """What the server does wrong; one-shot faults are used up by the request they hit."""

    files: dict[str, bytes] = field(default_factory=dict)
    drop_after: int | None = None  # send the full Content-Length, then close after N body bytes
    reset: bool = False  # drop with a TCP reset instead of a clean close
    ignore_range: bool = False  # answer every request with 200 and the whole file
    fail_with: list[int] = field(default_factory=list)  # statuses answered first, one per request
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Range header)


def make_handler(faults: Faults):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep pytest's output clean
            pass

        def do_GET(self):
            rng = self.headers.get("Range")
            faults.requests.append((self.path, rng))
            if faults.fail_with:
                self.send_error(faults.fail_with.pop(0))
                return
            body = faults.files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            start = 0
            if rng and not faults.ignore_range:
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
            self.send_header("Content-Length", str(len(chunk)))
            self.end_headers()
            if faults.drop_after is not None:
                self.wfile.write(chunk[: faults.drop_after])
                faults.drop_after = None
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


def test_a_part_left_by_an_interrupted_run_is_resumed(server, paths):
    base, faults = server
    dest, lock = paths
    dest.parent.mkdir(parents=True)
    (dest.parent / "data.bin.part").write_bytes(PAYLOAD[:123_456])
    fetch(f"{base}/data.bin", dest, lock_path=lock, name="demo/data.bin", **FAST)
    assert faults.requests == [("/data.bin", "bytes=123456-")]
    assert dest.read_bytes() == PAYLOAD
    assert read_lock(lock)["demo/data.bin"].sha256 == SHA


def test_a_complete_part_is_not_downloaded_again(server, paths):
    base, faults = server
    dest, lock = paths
    dest.parent.mkdir(parents=True)
    (dest.parent / "data.bin.part").write_bytes(PAYLOAD)
    fetch(f"{base}/data.bin", dest, lock_path=lock, name="demo/data.bin", **FAST)
    assert faults.requests == [("/data.bin", f"bytes={len(PAYLOAD)}-")]  # answered 416
    assert dest.read_bytes() == PAYLOAD


def test_a_server_that_ignores_range_restarts_from_zero(server, paths, caplog):
    base, faults = server
    dest, lock = paths
    faults.drop_after, faults.ignore_range = 70_000, True
    caplog.set_level(logging.INFO, logger=LOGGER)
    fetch(f"{base}/data.bin", dest, lock_path=lock, name="demo/data.bin", **FAST)
    assert dest.read_bytes() == PAYLOAD  # not the first 70 kB twice
    assert faults.requests == [("/data.bin", None), ("/data.bin", "bytes=70000-")]
    assert "ignored the range request" in caplog.text
    assert read_lock(lock)["demo/data.bin"].size == len(PAYLOAD)


def test_server_errors_are_retried(server, paths, caplog):
    base, faults = server
    dest, lock = paths
    faults.fail_with = [503, 502]
    caplog.set_level(logging.INFO, logger=LOGGER)
    fetch(f"{base}/data.bin", dest, lock_path=lock, name="demo/data.bin", **FAST)
    assert dest.read_bytes() == PAYLOAD and len(faults.requests) == 3
    assert "HTTP 503" in caplog.text and "retrying" in caplog.text


def test_retries_are_used_up(server, paths):
    base, faults = server
    dest, lock = paths
    faults.fail_with = [503] * 10
    with pytest.raises(DownloadError, match="failed 3 times in a row, giving up: HTTP 503"):
        fetch(f"{base}/data.bin", dest, lock_path=lock, name="demo/data.bin", retries=2, **FAST)
    assert len(faults.requests) == 3
    assert not dest.exists() and not lock.exists()


def test_not_found_is_not_retried(server, paths):
    base, faults = server
    dest, lock = paths
    with pytest.raises(DownloadError, match=r"HTTP 404 .* for http://127\.0\.0\.1:\d+/gone\.bin"):
        fetch(f"{base}/gone.bin", dest, lock_path=lock, name="demo/data.bin", **FAST)
    assert len(faults.requests) == 1 and not dest.exists()


def test_unreachable_server_gives_up_with_the_url(paths):
    dest, lock = paths
    with pytest.raises(DownloadError, match="127.0.0.1:9/x failed 2 times"):
        fetch("http://127.0.0.1:9/x", dest, lock_path=lock, name="x", retries=1, **FAST)


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
    base, _ = server
    dest, lock = paths
    with pytest.raises(ChecksumError, match="does not match the registry: expected 5 bytes"):
        fetch(f"{base}/data.bin", dest, lock_path=lock, name="d", expected_size=5, **FAST)
    assert not lock.exists()  # nothing recorded for a bad file
    fetch(f"{base}/data.bin", dest, lock_path=lock, name="d", expected_sha256=SHA, **FAST)
    assert read_lock(lock)["d"].sha256 == SHA


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
