"""The persistent compilation cache: a second process loads what the first compiled."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from mrvi_repro._jax_cache import CACHE_ENV, EXECUTABLES, MAX_GIB_ENV, machine_kind

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


def _python(script: str, env: dict[str, str], *args: str, timeout: int = 300) -> tuple[str, str]:
    """Run ``script`` in a fresh Python; return its last line of stdout and its stderr."""
    res = subprocess.run(
        [sys.executable, "-c", script, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout.strip().splitlines()[-1], res.stderr


def _probe(env: dict[str, str], seed: float) -> dict:
    return json.loads(_python(PROBE, env, str(seed))[0])


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


# ------------------------------------------------------------- executables found without tracing
#: Compiles (or loads) a kernel through compile_cached, counting its traces, and reports the
#: result, the number of traces and the executables on disk.
AOT_PROBE = """
import json, sys
import jax, jax.numpy as jnp
import mrvi_repro.model  # noqa: F401  (turns the cache on)
from mrvi_repro._jax_cache import CachedKernel, compile_cached
traces = []
scale, n = float(sys.argv[1]), int(sys.argv[2])
def f(x, y):
    traces.append(1)
    return {"out": jnp.tanh(x * scale) @ y + jnp.exp(-x).sum(), "rows": x.shape[0]}
x = jnp.linspace(0.0, 1.0, n * n, dtype=jnp.float32).reshape(n, n)
jitted = jax.jit(f)
if sys.argv[3:] == ["called-first"]:  # compiled (or loaded from XLA's cache) the usual way
    jitted(x, x.T)
kernel = compile_cached(jitted, (x, x.T), name="probe", key=("scale", scale))
first = kernel(x, x.T)
again = CachedKernel(jax.jit(f), name="probe", key=("scale", scale))
second = again(x, x.T)
assert float(jnp.abs(first["out"] - second["out"]).max()) == 0.0
print(json.dumps({"traces": len(traces), "sum": float(first["out"].sum()),
                  "rows": int(first["rows"])}))
"""


def _aot(cache, scale: float, n: int = 32, *extra: str) -> dict:
    out, err = _python(AOT_PROBE, _env(**{CACHE_ENV: str(cache)}), str(scale), str(n), *extra)
    return {**json.loads(out), "stderr": err}


def _executables(cache) -> list:
    return sorted((cache / machine_kind() / EXECUTABLES).glob("probe-*.exe"))


def test_a_second_process_runs_the_kernel_without_tracing_it(tmp_path):
    first = _aot(tmp_path, 0.5)
    assert first["traces"] == 1  # traced once, for both calls of the process
    assert len(_executables(tmp_path)) == 1
    second = _aot(tmp_path, 0.5)
    assert second["traces"] == 0 and second["sum"] == first["sum"] and second["rows"] == 32
    # another key, another shape: each traced and stored anew, with its own result
    other = _aot(tmp_path, 0.25)
    assert other["traces"] == 1 and other["sum"] != first["sum"]
    bigger = _aot(tmp_path, 0.5, n=48)
    assert bigger["traces"] == 1 and bigger["rows"] == 48
    assert len(_executables(tmp_path)) == 3


def test_an_executable_is_stored_even_when_xlas_cache_already_has_the_kernel(tmp_path):
    first = _aot(tmp_path, 0.75)
    (exe,) = _executables(tmp_path)
    exe.unlink()  # XLA's cache keeps its entry: the next process must still store a working one
    second = _aot(tmp_path, 0.75)
    assert second["traces"] == 1 and len(_executables(tmp_path)) == 1
    third = _aot(tmp_path, 0.75)
    assert third["traces"] == 0 and third["sum"] == first["sum"]


def test_an_executable_jax_kept_in_memory_from_xlas_cache_is_not_stored(tmp_path):
    first = _aot(tmp_path, 0.6)
    (exe,) = _executables(tmp_path)
    exe.unlink()
    # the function is first called as usual (its executable loaded from XLA's cache and kept in
    # JAX's memory); compile_cached then gets that one back, which would not run once serialised
    second = _aot(tmp_path, 0.6, 32, "called-first")
    assert second["sum"] == first["sum"] and not _executables(tmp_path)
    assert _aot(tmp_path, 0.6)["traces"] == 1 and len(_executables(tmp_path)) == 1
    assert _aot(tmp_path, 0.6)["traces"] == 0


def test_an_unreadable_executable_is_compiled_again_and_replaced(tmp_path):
    first = _aot(tmp_path, 1.5)
    (exe,) = _executables(tmp_path)
    exe.write_bytes(b"not an executable")
    second = _aot(tmp_path, 1.5)
    assert second["traces"] == 1 and second["sum"] == first["sum"]
    assert "unreadable cached executable" in second["stderr"]
    assert _aot(tmp_path, 1.5)["traces"] == 0


def test_without_a_cache_folder_nothing_is_stored(tmp_path, monkeypatch):
    import jax
    import jax.numpy as jnp

    from mrvi_repro import _jax_cache

    monkeypatch.setattr(_jax_cache, "_executables", lambda: None)
    calls = []
    kernel = _jax_cache.CachedKernel(
        jax.jit(lambda x: calls.append(1) or x * 2), name="probe.plain", key=()
    )
    assert float(kernel(jnp.ones(3)).sum()) == 6.0
    assert float(kernel(jnp.ones(3)).sum()) == 6.0  # compiled once for the shape
    assert len(calls) == 1
    assert float(kernel(2.0)) == 4.0  # a Python number goes to the jitted function itself


def test_the_least_recently_used_executables_go_past_the_size_limit(tmp_path):
    import jax

    from mrvi_repro import _jax_cache

    for i, name in enumerate(("old.exe", "mid.npy", "new.exe")):
        path = tmp_path / name
        path.write_bytes(b"x" * 100)
        os.utime(path, (1000 + i, 1000 + i))
    limit = jax.config.jax_compilation_cache_max_size
    jax.config.update("jax_compilation_cache_max_size", 250)  # XLA's cache's limit is the limit
    try:
        _jax_cache._evict(tmp_path)
    finally:
        jax.config.update("jax_compilation_cache_max_size", limit)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mid.npy", "new.exe"]


def test_a_cached_array_is_computed_once_per_key_and_recomputed_when_unreadable(
    tmp_path, monkeypatch, caplog
):
    import numpy as np

    from mrvi_repro import _jax_cache

    monkeypatch.setattr(_jax_cache, "_executables", lambda: tmp_path)
    calls = []

    def compute(scale):
        def run():
            calls.append(scale)
            return np.arange(5, dtype=np.float32) * scale

        return run

    first = _jax_cache.cached_array("probe.values", ("a", 2), compute(2.0))
    again = _jax_cache.cached_array("probe.values", ("a", 2), compute(99.0))
    assert calls == [2.0]  # the second call read the file: its compute never ran
    assert again.dtype == np.float32 and again.tolist() == first.tolist() == [0, 2, 4, 6, 8]
    other = _jax_cache.cached_array("probe.values", ("a", 3), compute(3.0))
    assert calls == [2.0, 3.0] and other.tolist() == [0, 3, 6, 9, 12]
    files = sorted(tmp_path.glob("probe.values-*.npy"))
    assert len(files) == 2
    for path in files:
        path.write_bytes(b"not an array")
    with caplog.at_level("WARNING", logger="mrvi_repro._jax_cache"):
        redone = _jax_cache.cached_array("probe.values", ("a", 2), compute(2.0))
    assert redone.tolist() == first.tolist() and calls == [2.0, 3.0, 2.0]
    assert "unreadable cached array" in caplog.text
    reread = _jax_cache.cached_array("probe.values", ("a", 2), compute(7.0))
    assert reread.tolist() == [0, 2, 4, 6, 8]
    assert calls == [2.0, 3.0, 2.0]  # replaced by a readable file


def test_without_a_cache_folder_a_cached_array_is_computed_every_time(tmp_path, monkeypatch):
    import numpy as np

    from mrvi_repro import _jax_cache

    monkeypatch.setattr(_jax_cache, "_executables", lambda: None)
    calls = []
    for _ in range(2):
        value = _jax_cache.cached_array("probe.plain", (), lambda: calls.append(1) or np.ones(3))
        assert value.tolist() == [1.0, 1.0, 1.0]
    assert len(calls) == 2 and not any(tmp_path.iterdir())


#: Fits a small MrVI for two epochs and computes its local sample distances; reports the history,
#: the distances and which kernels were loaded from the executables (from the cache's log).
FIT_PROBE = """
import json, logging, sys
import numpy as np
logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
logging.getLogger("mrvi_repro._jax_cache").setLevel(logging.DEBUG)
from mrvi_repro import analysis
from mrvi_repro.data.simulate import simulate_base
from mrvi_repro.model import MrVI, TrainConfig
from mrvi_repro.settings.data import SimulationParams
adata = simulate_base(SimulationParams(n_cells=400, n_genes=60, n_samples=4, seed=2))
model = MrVI.fit(adata, sample_key="sample", train=TrainConfig(max_epochs=2, batch_size=64))
d = analysis.local_sample_distances(model, adata)
print(json.dumps({"history": model.history["val_neg_elbo"].tolist(),
                  "distances": np.asarray(d.values).ravel().tolist()}))
"""


def test_a_fit_and_an_analysis_in_a_second_process_load_their_kernels_and_match(tmp_path):
    runs = [_python(FIT_PROBE, _env(**{CACHE_ENV: str(tmp_path)}), timeout=600) for _ in range(2)]
    (first, cold_log), (second, warm_log) = ((json.loads(out), err) for out, err in runs)
    assert "loaded the executable" not in cold_log
    for kernel in ("train.epoch", "mrvi_repro.analysis._distances._distance_fn"):
        assert f"loaded the executable of {kernel} " in warm_log, kernel
    # the initial parameters themselves: no initialiser is loaded, let alone compiled
    assert "loaded train.init.params from" in warm_log
    assert "loaded the executable of train.init " not in warm_log
    assert second["history"] == first["history"] and len(first["history"]) == 2
    assert second["distances"] == first["distances"]
    assert max(first["distances"]) > 0


#: A kernel with a LAPACK custom call (eigh), which crashed when loaded from a serialised file.
EIGH_PROBE = """
import jax, jax.numpy as jnp
import mrvi_repro.model  # noqa: F401
from mrvi_repro._jax_cache import compile_cached
f = jax.jit(lambda a: jnp.linalg.eigh(a @ jnp.swapaxes(a, 1, 2))[0].sum())
x = jnp.ones((4, 3, 3)) + jnp.eye(3)
print(float(compile_cached(f, (x,), name="probe.eigh", key=())(x)))
"""


def test_a_kernel_with_custom_calls_is_left_to_xlas_cache(tmp_path):
    # each run must exit cleanly: a loaded file crashed here (-11)
    values = [float(_python(EIGH_PROBE, _env(**{CACHE_ENV: str(tmp_path)}))[0]) for _ in range(3)]
    assert values == [72.0] * 3
    folder = tmp_path / machine_kind() / EXECUTABLES
    assert not list(folder.glob("*.exe")) and len(list(folder.glob("*.custom-calls"))) == 1
