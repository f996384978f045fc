"""Fixtures of the bench tests: the environment of the benchmark scripts' subprocesses."""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path
from types import ModuleType

import pytest

CACHE_MAX_BYTES = 100 * 1024**2
BENCH = Path(__file__).resolve().parents[2] / "bench"


def load_bench_script(name: str) -> ModuleType:
    """Import ``bench/<name>.py`` (a script, not a package module) and return it."""
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def bench_script():
    """:func:`load_bench_script`, for the tests: ``bench_script("scale").simulate_sparse(...)``."""
    return load_bench_script


@pytest.fixture(scope="session")
def env(request, tmp_path_factory):
    """CPU JAX, low XLA optimisation, and a persistent compilation cache in pytest's cache folder
    (at most 100 MB) shared by all runs, so repeated shapes compile nothing, nor do later test
    sessions unless the model changed."""
    pytest_cache = getattr(request.config, "cache", None)  # no attribute without the plugin
    if pytest_cache is not None:
        cache = pytest_cache.mkdir("jax-compilation-cache")
        if sum(f.stat().st_size for f in cache.rglob("*") if f.is_file()) > CACHE_MAX_BYTES:
            shutil.rmtree(cache)  # old model versions pile up; start afresh
            cache.mkdir()
    else:  # pytest -p no:cacheprovider
        cache = tmp_path_factory.mktemp("jax_cache")
    xla = os.environ.get("XLA_FLAGS", "")
    return {
        **os.environ,
        "JAX_PLATFORMS": "cpu",
        "JAX_COMPILATION_CACHE_DIR": str(cache),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
        "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
        "XLA_FLAGS": f"{xla} --xla_backend_optimization_level=0".strip(),
    }
