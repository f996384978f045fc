"""The persistent compilation cache: a second process loads what the first compiled."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from mrvi_repro._jax_cache import CACHE_ENV, MAX_GIB_ENV, machine_kind

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
    # another constant in the same code is another kernel: compiled anew
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


def test_a_bad_size_limit_is_refused_and_leaves_the_model_importable(tmp_path):
    script = (
        "import math, sys\n"
        "from mrvi_repro._jax_cache import configure_compile_cache\n"
        "for limit in (0, -1.0, math.nan, math.inf):\n"
        "    try:\n"
        "        configure_compile_cache(sys.argv[1], max_gib=limit)\n"
        "    except ValueError as err:\n"
        "        print(err)\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert res.stdout.count("size limit must be > 0 GiB") == 4
    # the same limit from the environment: importing the model warns and leaves the cache off
    env = _env(**{CACHE_ENV: str(tmp_path / "c"), MAX_GIB_ENV: "lots"})
    res = subprocess.run(
        [
            sys.executable,
            "-W",
            "always",
            "-c",
            "import mrvi_repro.model, jax; print(jax.config.jax_compilation_cache_dir)",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert res.stdout.strip().splitlines()[-1] == "None"
    assert f"{MAX_GIB_ENV}='lots' is not a number of GiB" in res.stderr
