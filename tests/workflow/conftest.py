"""Fixtures of the Snakemake tests."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest


def _snakemake(repo, *args, cwd=None, timeout=900, env=None):
    """Run Snakemake; return its exit code and its output (stdout and stderr together).

    ``env``: environment variables changed for it (``None`` as a value removes one).
    """
    environ = dict(os.environ)
    for key, value in (env or {}).items():
        if value is None:
            environ.pop(key, None)
        else:
            environ[key] = value
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
        env=environ,
    )
    return res.returncode, res.stdout


#: Rules that ask for more than one thread: run with one each, so that two jobs overlap on 2
#: cores (most test jobs are bound by their start, imports and compilation, not by their cores).
MULTI_THREAD_RULES = (
    "preprocess_dataset",
    "sciplex_screen",
    "fit_mrvi",
    "fit_mrvi_variant",
    "latent_mrvi",
    "latent_mrvi_variant",
    "sample_distances",
    "differential_abundance",
    "differential_expression",
    "stratify_cells",
    "sample_groups",
    "de_comparison",
    "da_comparison",
    "fit_scvi",
    "representations",
    "composition_distances",
    "deseq2_pseudobulk",
    "milo",
    "milode",
    "integration_metrics",
    "embeddings_2d",
)


@pytest.fixture(scope="session")
def one_thread():
    """Snakemake arguments that give every rule of :data:`MULTI_THREAD_RULES` one thread."""
    return ("--set-threads", *(f"{rule}=1" for rule in MULTI_THREAD_RULES))


@pytest.fixture(scope="session")
def snakemake():
    """``snakemake(repo, *args, cwd=None, timeout=900, env=None)`` -> (exit code, output)."""
    return _snakemake


class _QuietHandler(SimpleHTTPRequestHandler):
    """Serves a folder; logs each request's path; answers the paths in ``faults`` as they say."""

    def __init__(self, *args, requests, faults, **kwargs):
        self.requests, self.faults = requests, faults
        super().__init__(*args, **kwargs)

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.requests.append(self.path)
        if self.path not in self.faults:
            super().do_GET()
            return
        status, content_type, body = self.faults[self.path]
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def www_requests():
    """Paths requested from ``www_server``, in order."""
    return []


@pytest.fixture
def www_faults():
    """``{path: (status, content type, body)}``: answers ``www_server`` gives instead of a file."""
    return {}


@pytest.fixture
def www_server(tmp_path, monkeypatch, www_requests, www_faults):
    """(folder, base URL) of a threading HTTP server on 127.0.0.1 serving tmp_path/www.

    It logs the requested paths in ``www_requests`` and answers those in ``www_faults`` with the
    status, content type and body given there (e.g. an HTML error page with status 200).
    """
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(
        _QuietHandler, directory=str(www), requests=www_requests, faults=www_faults
    )
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield www, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
