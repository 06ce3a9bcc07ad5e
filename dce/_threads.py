"""Thread count of the compiled kernels and their dispatch over chunks of voxels.

The numba kernels of :mod:`dce.fit` and :mod:`dce.models` are serial, ``nogil`` functions
over a range ``[lo, hi)`` of rows; :func:`run_chunks` splits the rows into chunks and runs
them on a small thread pool. (Numba's own ``parallel=True`` costs over a minute of
compilation on a 2-core machine; these serial kernels compile in seconds.) Every row is
computed independently of the chunking, so results do not depend on the thread count.

The first call of a kernel in a process compiles it (or loads it from numba's cache); when
that takes more than :data:`NOTICE_AFTER_S` seconds in total, one log line on the
``dce.fit`` logger says so.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

__all__ = ["BLAS_THREAD_VARS", "NOTICE_AFTER_S", "available_cpus", "get_num_threads",
           "run_chunks", "serial_blas", "set_num_threads"]

log = logging.getLogger("dce.fit")

#: Environment variables of the BLAS/LAPACK (OpenBLAS, MKL, Accelerate) and OpenMP thread
#: pools (those Snakemake sets to a job's threads).
BLAS_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS",
                    "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")

#: Seconds of first-call compilation (per process) after which a log line is written.
NOTICE_AFTER_S = 1.5

_lock = threading.Lock()
_n_threads: int | None = None
_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_warm: set[tuple[Any, ...]] = set()
_first_call_s = 0.0
_noticed = False


def _forget_pool() -> None:
    """In a forked child the parent's pool threads do not exist: start a new pool."""
    global _pool, _pool_size
    _pool = None
    _pool_size = 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask; ``os.cpu_count()`` elsewhere)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def serial_blas() -> None:
    """Run BLAS/LAPACK (and OpenMP) on one thread: set :data:`BLAS_THREAD_VARS` to 1.

    Call it before numpy is imported (OpenBLAS sizes its pool when it is loaded). For a
    process whose threads are the fit kernels' (:func:`run_chunks`): its BLAS calls are
    small products and factorisations (a few hundred to a few thousand elements), for which
    OpenBLAS's threads cost more than they save -- they spin, waiting for work, after every
    call. Measured on the demo session's kinetics job (96 x 96 x 10 x 60, 2 cores): 0.4-0.5 s
    less CPU (T1 fit, delay search, the pool's start at import), wall no longer.
    """
    for var in BLAS_THREAD_VARS:
        os.environ[var] = "1"


def set_num_threads(n: int | None) -> None:
    """Set the number of threads of the fit kernels (None: :func:`available_cpus`).

    Parameters
    ----------
    n : int or None
        Threads (>= 1).
    """
    global _n_threads
    if n is not None and int(n) < 1:
        raise ValueError(f"threads: need >= 1, got {n}")
    _n_threads = None if n is None else int(n)


def get_num_threads() -> int:
    """Number of threads of the fit kernels (default: :func:`available_cpus`)."""
    return _n_threads if _n_threads is not None else available_cpus()


def _executor(n: int) -> ThreadPoolExecutor:
    global _pool, _pool_size
    with _lock:
        if _pool is None or _pool_size != n:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(max_workers=n, thread_name_prefix="dce-fit")
            _pool_size = n
        return _pool


def _cache_dir() -> str:
    import numba

    d = numba.config.CACHE_DIR  # type: ignore[attr-defined]
    return d if d else "__pycache__ next to the dce sources"


def _notice() -> None:
    global _noticed
    if not _noticed:
        _noticed = True
        log.warning("compiling the fit kernels for this machine (first use in this "
                    "environment, 10-15 s; cached afterwards in %s)", _cache_dir())


def _first_call(kernel: Callable[..., None], args: tuple[Any, ...]) -> None:
    """Call a kernel that has not run in this process yet, with the compilation notice."""
    global _first_call_s
    timer = threading.Timer(max(0.0, NOTICE_AFTER_S - _first_call_s), _notice)
    timer.daemon = True
    timer.start()
    t0 = time.perf_counter()
    try:
        kernel(*args)
    finally:
        timer.cancel()
        _first_call_s += time.perf_counter() - t0


def run_chunks(kernel: Callable[..., None], n: int, *args: Any, block: int = 256) -> None:
    """Call ``kernel(*args, lo, hi)`` over chunks ``[lo, hi)`` that cover ``range(n)``.

    Parameters
    ----------
    kernel : callable
        A compiled ``nogil`` kernel writing the results of rows ``lo:hi`` into its output
        arguments (each row independently of the others).
    n : int
        Number of rows.
    *args
        Leading arguments of the kernel.
    block : int
        Chunk sizes are multiples of this many rows (the kernels' block size).
    """
    if n <= 0:
        return
    key = (kernel, *(getattr(a, "dtype", type(a)) for a in args))
    lo = 0
    if key not in _warm:   # compile (or load from the cache) on a small first chunk
        lo = min(n, block)
        _first_call(kernel, (*args, 0, lo))
        _warm.add(key)
    rest = n - lo
    n_all = get_num_threads()
    n_thr = min(n_all, (rest + block - 1) // block)
    if n_thr <= 1:
        if rest:
            kernel(*args, lo, n)
        return
    # a few chunks per thread balance voxels of unequal cost
    n_chunks = 4 * n_thr
    size = -(-rest // n_chunks)
    size = -(-size // block) * block
    bounds = [(a, min(a + size, n)) for a in range(lo, n, size)]
    pool = _executor(n_all)
    futures = [pool.submit(kernel, *args, a, b) for a, b in bounds]
    for f in futures:
        f.result()
