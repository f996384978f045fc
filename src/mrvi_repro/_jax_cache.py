"""A persistent XLA compilation cache shared by every process of a run (the workflow's jobs).

Every process that trains or analyses a model compiles the same kernels for the same shapes; on
small cohorts compilation is most of a job's time. With the cache, the first process to compile a
kernel writes the executable to disk and every later one (another rule, a rerun, another dataset
of the same shapes) loads it instead: measured in ``bench/RESULTS.md`` ("Compilation cache").

:func:`configure_compile_cache` turns JAX's persistent cache on for a folder, below a subfolder per
machine kind (CPU architecture and instruction-set flags), so that nodes of a heterogeneous
cluster sharing the folder never load an executable built for another CPU. Entries are written
under a file lock with least-recently-used eviction past ``max_gib`` (JAX's ``LRUCache``), so
concurrent jobs, also on a shared file system, may use one folder; an unreadable entry is
recompiled, never fatal. Sharing a folder across machines needs a file system with working file
locks (``flock``; e.g. NFS with locking). :mod:`mrvi_repro.model` calls it on import with the
folder in the environment variable :data:`CACHE_ENV` (the workflow sets it from its config's
``jax_cache``); a bad size limit there leaves the cache off with a warning.

XLA's cache still traces and lowers a function before it can look up its executable: for the
training kernels that is seconds of Python per process. :func:`compile_cached` (and
:class:`CachedKernel` for kernels called with varying shapes) keeps serialised executables in the
same folder (subfolder :data:`EXECUTABLES`) under a key computed *without tracing*: the kernel's
name, what the caller says it closes over (the model's configuration, the training schedule),
the arguments' shapes and dtypes, the compile options, and the environment: a digest of this
package's source, the versions of JAX, jaxlib, Flax and Optax, JAX's tracing flags, ``XLA_FLAGS``
and the device. A hit deserialises the executable and skips tracing, lowering and compiling.
:func:`cached_array` keeps, under the same kind of key, a one-off kernel's result instead (a
model's initial parameters): a hit needs no executable at all, nor the memory of loading one.
Like XLA's own entries, these files are native code that the loading process runs: the cache's
folder must be writable only by those whose code you would run.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.metadata
import io
import logging
import math
import os
import pickle
import platform
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

#: Environment variable holding the cache's folder (empty or unset: no cache).
CACHE_ENV = "MRVI_REPRO_JAX_CACHE"
#: Environment variable holding the cache's size limit in GiB (default :data:`DEFAULT_MAX_GIB`).
MAX_GIB_ENV = "MRVI_REPRO_JAX_CACHE_MAX_GIB"
DEFAULT_MAX_GIB = 4.0
#: Subfolder of the cache's folder holding :func:`compile_cached`'s serialised executables.
EXECUTABLES = "executables"


def machine_kind() -> str:
    """Name this machine's CPU kind: architecture and a hash of its instruction-set flags.

    Executables compiled for the host CPU may use instructions another CPU lacks; the cache keeps
    one subfolder per kind. On Linux the flags come from ``/proc/cpuinfo``; elsewhere the
    processor's name stands in for them.
    """
    flags = platform.processor()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith(("flags", "Features")):
                    flags = " ".join(sorted(line.split(":", 1)[1].split()))
                    break
    except OSError:
        pass
    digest = hashlib.sha256(flags.encode()).hexdigest()[:12]
    return f"{platform.machine() or 'unknown'}-{digest}"


def configure_compile_cache(
    folder: str | os.PathLike[str] | None = None, *, max_gib: float | None = None
) -> Path | None:
    """Turn on JAX's persistent compilation cache in ``folder`` / :func:`machine_kind`.

    Parameters
    ----------
    folder
        The cache's folder, shared by the processes of a run; ``None`` reads :data:`CACHE_ENV`
        (unset or empty: nothing is done).
    max_gib
        Size limit; least recently used entries are removed past it. ``None`` reads
        :data:`MAX_GIB_ENV` (default :data:`DEFAULT_MAX_GIB`).

    Returns
    -------
    The folder in use, or ``None`` when no cache is on. A folder JAX already has (the user's
    ``JAX_COMPILATION_CACHE_DIR``, or an earlier call's) is kept and returned: the cache's folder
    is set once per process.

    Raises
    ------
    ValueError
        If the size limit is not a positive number of GiB.
    """
    import jax

    own = jax.config.jax_compilation_cache_dir
    if own:
        return Path(own)
    if folder is None:
        folder = os.environ.get(CACHE_ENV) or None
    if folder is None:
        return None
    if max_gib is None:
        raw = os.environ.get(MAX_GIB_ENV) or str(DEFAULT_MAX_GIB)
        try:
            max_gib = float(raw)
        except ValueError:
            msg = f"{MAX_GIB_ENV}={raw!r} is not a number of GiB"
            raise ValueError(msg) from None
    if not (math.isfinite(max_gib) and max_gib > 0):
        msg = f"the compilation cache's size limit must be > 0 GiB (got {max_gib})"
        raise ValueError(msg)
    path = Path(folder).absolute() / machine_kind()
    path.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(path))
    # every kernel, however quick to compile: a job compiles dozens of small ones
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    # a size limit turns on JAX's file lock (safe concurrent writers) and LRU eviction
    jax.config.update("jax_compilation_cache_max_size", int(max_gib * 2**30))
    logger.debug("XLA compilation cache: %s (at most %.1f GiB)", path, max_gib)
    return path


# ------------------------------------------------------------- executables found without tracing
#: Packages whose code is traced into the kernels (their versions are part of every key).
_TRACED_PACKAGES = ("jax", "jaxlib", "flax", "optax")
#: JAX flags that change what a function traces to.
_TRACE_FLAGS = (
    "jax_enable_x64",
    "jax_default_matmul_precision",
    "jax_default_prng_impl",
    "jax_threefry_partitionable",
    "jax_numpy_rank_promotion",
)
#: What the current thread's last compile did: ``backend`` (XLA was asked for an executable,
#: not JAX's in-memory cache) and ``xla_hit`` (XLA's cache answered), from JAX's monitoring events.
_compiles = threading.local()
#: JAX's event around asking XLA for an executable (a compile or a load from XLA's cache).
_BACKEND_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
#: What unpickling a truncated or foreign file raises.
_UNREADABLE = (
    pickle.UnpicklingError,
    EOFError,
    ValueError,
    TypeError,
    AttributeError,
    ImportError,
    IndexError,
    KeyError,
    OSError,
)


def _on_event(event: str, **_: Any) -> None:
    if event == "/jax/compilation_cache/cache_hits":
        _compiles.xla_hit = True


def _on_duration(event: str, _seconds: float, **_: Any) -> None:
    if event == _BACKEND_COMPILE_EVENT:
        _compiles.backend = True


@functools.cache
def _listen() -> None:
    """Register :func:`_on_event` and :func:`_on_duration` with JAX (once per process)."""
    import jax

    jax.monitoring.register_event_listener(_on_event)
    jax.monitoring.register_event_duration_secs_listener(_on_duration)


@functools.cache
def _environment() -> str:
    """Describe the fixed part of what decides every kernel's executable (once per process)."""
    import jax

    source = hashlib.sha256()
    root = Path(__file__).parent
    for path in sorted(root.rglob("*.py")):
        source.update(str(path.relative_to(root)).encode())
        source.update(path.read_bytes())
    device = jax.devices()[0]
    parts = [
        source.hexdigest(),
        sys.version,
        *(f"{p}={importlib.metadata.version(p)}" for p in _TRACED_PACKAGES),
        os.environ.get("XLA_FLAGS", ""),
        device.platform,
        device.device_kind,
        device.client.platform_version,
    ]
    return "\n".join(parts)


def signature(args: Any) -> tuple[Any, ...]:
    """Return the shapes, dtypes and tree structure of ``args`` (arrays or ShapeDtypeStructs)."""
    import jax

    leaves, tree = jax.tree_util.tree_flatten(args)
    return (
        str(tree),
        *((tuple(x.shape), str(x.dtype), bool(getattr(x, "weak_type", False))) for x in leaves),
    )


def _executables() -> Path | None:
    import jax

    folder = jax.config.jax_compilation_cache_dir
    return Path(folder) / EXECUTABLES if folder else None


def _evict(folder: Path) -> None:
    """Remove the least recently used entries while the folder exceeds the size limit.

    The limit is XLA's cache's (:func:`configure_compile_cache` sets it), else
    :data:`DEFAULT_MAX_GIB`.
    """
    import jax

    limit = jax.config.jax_compilation_cache_max_size
    max_bytes = limit if limit > 0 else int(DEFAULT_MAX_GIB * 2**30)
    entries = []
    for path in (*folder.glob("*.exe"), *folder.glob("*.npy")):
        try:
            st = path.stat()
        except OSError:  # removed by a concurrent job
            continue
        entries.append((st.st_mtime, st.st_size, path))
    total = sum(size for _, size, _ in entries)
    for _, size, path in sorted(entries):
        if total <= max_bytes:
            break
        path.unlink(missing_ok=True)
        total -= size


_bypass = {"depth": 0, "saved": False}
_bypass_lock = threading.Lock()


@contextlib.contextmanager
def _without_xla_cache() -> Iterator[bool]:
    """Compile afresh inside, without XLA's cache: only such executables can be serialised.

    (On CPU an executable that XLA's cache loaded serialises into one that fails when run.) JAX
    decides once per process whether its cache is used; this turns that decision off while any
    thread is inside and restores it after, through JAX's private ``compilation_cache`` state.
    Yields whether XLA's cache is bypassed. Where that state is missing (another JAX version),
    it is not, and :func:`compile_cached` stores nothing.
    """
    import jax

    try:
        from jax._src import compilation_cache as xla_cache

        xla_cache.is_cache_used(jax.devices()[0].client)  # settle JAX's own decision first
        if not hasattr(xla_cache, "_cache_used"):
            raise AttributeError("_cache_used")
    except (ImportError, AttributeError):
        yield False
        return
    with _bypass_lock:
        if _bypass["depth"] == 0:
            _bypass["saved"] = xla_cache._cache_used
            xla_cache._cache_used = False
        _bypass["depth"] += 1
    try:
        yield True
    finally:
        with _bypass_lock:
            _bypass["depth"] -= 1
            if _bypass["depth"] == 0:
                xla_cache._cache_used = _bypass["saved"]


def compile_cached(
    fn: Any,
    args: tuple[Any, ...],
    *,
    name: str,
    key: Any = (),
    options: dict[str, Any] | None = None,
) -> Any:
    """Compile jitted ``fn`` for the shapes of ``args``, or load its executable without tracing.

    Parameters
    ----------
    fn
        A ``jax.jit`` function.
    args
        Its positional arguments: arrays or ``jax.ShapeDtypeStruct`` of the same shapes.
    name
        The kernel's name, unique across the package (part of the key and of the file's name).
    key
        Everything ``fn`` closes over that changes what it computes, with a ``repr`` that is
        stable across processes (configurations, flags; never arrays, which change the trace's
        constants: pass those as arguments). The package's source is part of every key, so only
        values, not code, need naming here; code replaced at run time (a monkeypatched class)
        is not seen unless it changes the arguments' shapes or ``key``.
    options
        XLA compile options.

    Returns
    -------
    A ``jax.stages.Compiled``. Without a cache folder (:func:`configure_compile_cache`), simply
    ``fn.lower(*args).compile(options)``. An unreadable entry is recompiled and replaced, never
    fatal. On a miss the kernel is compiled afresh, past XLA's own cache
    (:func:`_without_xla_cache`), and stored, unless it makes custom calls (LAPACK's, e.g. the
    eigendecomposition in DE): loaded from such a file, it crashed the process (jaxlib 0.12,
    CPU). Those kernels are left to XLA's cache, which traces them first (an empty
    ``.custom-calls`` file in place of the executable says so to later processes).
    """
    import jax
    from jax.experimental import serialize_executable

    folder = _executables()
    if folder is None:
        return fn.lower(*args).compile(options)
    path = _entry(folder, name, (key, signature(args), sorted((options or {}).items())), ".exe")
    unstorable = path.with_suffix(".custom-calls")
    if unstorable.exists():  # left to XLA's cache (see below)
        return fn.lower(*args).compile(options)
    try:
        with open(path, "rb") as fh:
            payload, in_tree, out_tree = pickle.load(fh)
        compiled = serialize_executable.deserialize_and_load(payload, in_tree, out_tree)
    except FileNotFoundError:
        pass
    except (*_UNREADABLE, jax.errors.JaxRuntimeError) as err:  # compile again, replace it
        logger.warning("unreadable cached executable %s (%s): compiling again", path, err)
    else:
        _touch(path)
        logger.debug("loaded the executable of %s from %s", name, path)
        return compiled
    _listen()
    with _without_xla_cache() as bypassed:
        _compiles.backend = _compiles.xla_hit = False
        compiled = fn.lower(*args).compile(options)
    # only an executable XLA has just built serialises into one that runs: not one from XLA's
    # cache, nor one JAX kept in memory from an earlier compile of this function
    if not (bypassed and _compiles.backend) or _compiles.xla_hit:
        logger.debug("executable of %s not stored: not compiled afresh here", name)
        return compiled
    if "custom-call" in compiled.as_text():
        # e.g. LAPACK's eigh: such an executable, serialised and loaded again, crashes on CPU;
        # a marker sends the next processes to XLA's cache instead
        logger.debug("executable of %s not stored: it makes custom calls", name)
        with contextlib.suppress(OSError):
            folder.mkdir(parents=True, exist_ok=True)
            unstorable.touch()
        return compiled
    try:
        blob = pickle.dumps(serialize_executable.serialize(compiled))
    except (NotImplementedError, ValueError, pickle.PicklingError) as err:
        logger.debug("executable of %s not cached: %s", name, err)
    else:
        _store(path, blob, what=f"executable of {name}")
    return compiled


def _entry(folder: Path, name: str, key: Any, suffix: str) -> Path:
    """Return the file of an entry: ``name``, then a digest of ``key`` and of the environment.

    The environment is JAX's tracing flags and :func:`_environment`.
    """
    import jax

    flags = [getattr(jax.config, f) for f in _TRACE_FLAGS]  # may be set in a context: per call
    ident = repr((name, key, flags, _environment()))
    return folder / f"{name}-{hashlib.sha256(ident.encode()).hexdigest()[:40]}{suffix}"


def _touch(path: Path) -> None:
    """Mark an entry as just used (:func:`_evict` removes the least recently used first)."""
    with contextlib.suppress(OSError):  # removed by a concurrent job: nothing to mark
        os.utime(path)


def _store(path: Path, blob: bytes, *, what: str) -> None:
    """Write ``blob`` to ``path`` atomically, then evict past the size limit.

    Concurrent jobs never read a partial file; a failure to write only loses the entry.
    """
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(blob)
        os.replace(tmp, path)
        _evict(path.parent)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        logger.debug("%s not cached: %s", what, err)


def cached_array(name: str, key: Any, compute: Callable[[], Any]) -> Any:
    """Return ``compute()``, or the array an earlier process stored for ``name`` and ``key``.

    For one-off results that are a pure function of ``key`` and the package (e.g. a model's
    initial parameters, a function of its configuration, its inputs' shapes and the seed): a hit
    skips loading, let alone compiling, the kernel that computes them, and that kernel's memory.
    The entry (an ``.npy`` file beside :func:`compile_cached`'s executables, evicted with them)
    is keyed like an executable (``key``, JAX's tracing flags, :func:`_environment`: package
    source, versions, ``XLA_FLAGS``, device), so it holds exactly what ``compute`` returns in this
    environment. Without a cache folder, ``compute()``; an unreadable entry is computed again and
    replaced. ``key`` must name everything the result depends on (see :func:`compile_cached`).

    Returns
    -------
    ``compute()``'s array (any array type), or a host ``numpy`` array read from the cache.
    """
    import numpy as np

    folder = _executables()
    if folder is None:
        return compute()
    path = _entry(folder, name, key, ".npy")
    try:
        value = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        pass
    except _UNREADABLE as err:
        logger.warning("unreadable cached array %s (%s): computing it again", path, err)
    else:
        _touch(path)
        logger.debug("loaded %s from %s", name, path)
        return value
    value = compute()
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(value), allow_pickle=False)
    _store(path, buffer.getvalue(), what=name)
    return value


class CachedKernel:
    """A jitted function called like one, compiled once per argument shapes via :func:`compile_cached`.

    Each call looks its arguments' :func:`signature` up in memory, then on disk, and traces only
    when both miss. Calls with Python numbers among the arguments go to ``fn`` itself.
    """

    def __init__(self, fn: Any, *, name: str, key: Any = ()) -> None:
        self.fn, self.name, self.key = fn, name, key
        self._compiled: dict[tuple[Any, ...], Any] = {}

    def __call__(self, *args: Any) -> Any:
        import jax
        import numpy as np

        leaves = jax.tree_util.tree_leaves(args)
        if not all(isinstance(x, (jax.Array, np.ndarray)) for x in leaves):
            return self.fn(*args)  # Python numbers: jit makes them weakly typed (not cached here)
        sig = signature(args)
        compiled = self._compiled.get(sig)
        if compiled is None:
            compiled = compile_cached(self.fn, args, name=self.name, key=self.key)
            self._compiled[sig] = compiled
        return compiled(*args)
