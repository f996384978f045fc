"""Fixtures of the Snakemake tests."""

from __future__ import annotations

import functools
import subprocess
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest


def _snakemake(repo, *args, cwd=None, timeout=900):
    """Run Snakemake; return its exit code and its output (stdout and stderr together)."""
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(repo / "Snakefile"),
        *map(str, args),
    ]
    res = subprocess.run(
        cmd,
        cwd=cwd or repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )
    return res.returncode, res.stdout


@pytest.fixture(scope="session")
def snakemake():
    """``snakemake(repo, *args, cwd=None, timeout=900)`` -> (exit code, output)."""
    return _snakemake


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def www_server(tmp_path, monkeypatch):
    """(folder, base URL) of a threading HTTP server on 127.0.0.1 serving tmp_path/www."""
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    www = tmp_path / "www"
    www.mkdir()
    httpd = ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(www))
    )
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield www, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
