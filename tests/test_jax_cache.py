"""The persistent compilation cache: a second process loads what the first compiled."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from mrvi_repro._jax_cache import CACHE_ENV, MAX_GIB_ENV, configure_compile_cache, machine_kind

#: Imports the model (which turns the cache on from the environment), jits a function no other
#: process compiles (a seed in its constant) and reports the cache's hits and misses.
PROBE = """
import json, sys
import jax, jax.numpy as jnp
from jax import monitoring
events = {"hits": 0, "misses": 0}
def listen(name, **kwargs):
    if name == "/jax/compilation_cache/cache_hits":
        events["hits"] += 1
    elif name == "/jax/compilation_cache/cache_misses":
        events["misses"] += 1
monitoring.register_event_listener(listen)
import mrvi_repro.model  # noqa: F401
seed = float(sys.argv[1])
f = jax.jit(lambda x: jnp.tanh(x * seed) @ x.T + seed)
f(jnp.ones((16, 16))).block_until_ready()
print(json.dumps({**events, "dir": jax.config.jax_compilation_cache_dir}))
"""


def _probe(env: dict[str, str], seed: float) -> dict:
    res = subprocess.run(
        [sys.executable, "-c", PROBE, str(seed)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return json.loads(res.stdout.strip().splitlines()[-1])


def _env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (CACHE_ENV, "JAX_COMPILATION_CACHE_DIR")}
    return {**env, **values}


def test_a_second_process_loads_the_compiled_kernel(tmp_path):
    seed = 1.0 + (os.getpid() % 1000) / 7.0
    first = _probe(_env(**{CACHE_ENV: str(tmp_path)}), seed)
    assert first["dir"] == str(tmp_path / machine_kind())
    assert first["hits"] == 0 and first["misses"] >= 1
    written = list((tmp_path / machine_kind()).glob("*-cache"))
    assert written, "nothing was written to the cache"
    second = _probe(_env(**{CACHE_ENV: str(tmp_path)}), seed)
    assert second["hits"] >= 1 and second["misses"] == 0
    # another shape of the same code compiles anew
    other = _probe(_env(**{CACHE_ENV: str(tmp_path)}), seed + 1)
    assert other["misses"] >= 1


def test_no_cache_without_the_variable_and_the_users_own_is_kept(tmp_path):
    off = _probe(_env(), 2.5)
    assert off["dir"] is None and off["hits"] == off["misses"] == 0
    own = tmp_path / "own"
    mine = _probe(
        _env(**{CACHE_ENV: str(tmp_path / "ours"), "JAX_COMPILATION_CACHE_DIR": str(own)}), 2.5
    )
    assert mine["dir"] == str(own) and not (tmp_path / "ours").exists()


def test_machine_kind_names_the_architecture():
    kind = machine_kind()
    arch, digest = kind.rsplit("-", 1)
    assert arch and len(digest) == 12 and kind == machine_kind()


def test_size_limit_is_checked(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match="size limit"):
        configure_compile_cache(tmp_path, max_gib=0)
    monkeypatch.setenv(MAX_GIB_ENV, "-1")
    with pytest.raises(ValueError, match=r"size limit must be > 0 GiB \(got -1.0\)"):
        configure_compile_cache(tmp_path)
