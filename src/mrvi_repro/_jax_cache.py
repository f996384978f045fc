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
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import platform
from pathlib import Path

logger = logging.getLogger(__name__)

#: Environment variable holding the cache's folder (empty or unset: no cache).
CACHE_ENV = "MRVI_REPRO_JAX_CACHE"
#: Environment variable holding the cache's size limit in GiB (default :data:`DEFAULT_MAX_GIB`).
MAX_GIB_ENV = "MRVI_REPRO_JAX_CACHE_MAX_GIB"
DEFAULT_MAX_GIB = 4.0


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
