"""Everything minidl changes or detects about the process, in one place.

Importing minidl applies the settings below, each measured to pay on a 2-core
machine (``docs/building.md`` has the figures), each with an opt-out, and none
overriding a value you set yourself. Nothing else in minidl touches the
environment, the C library or other packages' global state.

=====================  ==========================================  =================================
setting                what it does                                opt-out
=====================  ==========================================  =================================
``GOMP_SPINCOUNT``     idle OpenMP threads sleep after ~10,000     set ``GOMP_SPINCOUNT`` or
= 10000                spins instead of ~300,000, so they do not   ``OMP_WAIT_POLICY`` yourself, or
                       starve numpy's BLAS threads (a CNN step:    ``MINIDL_SHORT_SPIN=0``
                       200 -> 78 ms)
``OPENBLAS_THREAD_     OpenBLAS workers sleep soon after a         set it yourself, or
TIMEOUT`` = 16         product instead of spinning ~2**28 cycles   ``MINIDL_SHORT_SPIN=0``
                       while our kernels run (110 -> 85 ms); only
                       when minidl is imported before numpy
glibc heap             freed blocks up to 32 MiB stay in the heap  ``MINIDL_KEEP_FREED_MEMORY=0``
(``mallopt``)          (mmap threshold 32 MiB, trim threshold
                       512 MiB), so fresh outputs do not
                       page-fault on every step (BN: 18 -> 9 ms)
numpy's memory         freed blocks of 32 MiB and more (the ones   ``MINIDL_CACHE_LARGE_BLOCKS=0``;
handler (NEP 49,       glibc mmaps whatever its settings) stay     a handler installed before
``minidl._alloc``)     in an LRU cache of at most 1 GiB and        minidl is kept; limit:
                       serve later arrays of the                   ``MINIDL_BLOCK_CACHE_MB``;
                       same size (within 12.5%), so large outputs  :func:`empty_cache` frees it
                       stop page-faulting (BN fwd+bwd at 49 MiB:
                       63 -> 43 ms; CNN step at batch 256:
                       358 -> 303 ms; one thread, CPU time)
kernel threads         the physical cores among the CPUs this      ``MINIDL_NUM_THREADS`` or
                       process may run on (affinity mask and       ``OMP_NUM_THREADS``, or
                       /sys topology; SMT siblings count once),    :func:`set_num_threads`
                       at most ``MAX_NUM_THREADS`` (1024; more
                       aborts libgomp); a bad variable warns and
                       is ignored
after ``os.fork``      the child's kernels run single-threaded:    ``MINIDL_FORK_SINGLE_THREAD=0``
                       libgomp's thread pool does not survive a    (then a forked child that
                       fork, and a child entering a parallel       runs kernels may hang)
                       region would hang; call
                       :func:`set_num_threads` in the child to
                       use more
=====================  ==========================================  =================================

The two environment variables must be set before the OpenMP runtime and
OpenBLAS load, which is why this module runs first when minidl is imported.
:func:`show_config` prints all of it with the build facts.

numpy keeps its memory handler in a context variable, so the block cache applies
to the thread (and context) that imported minidl, and to tasks and contexts copied
from it. A thread started with ``threading.Thread`` begins from an empty context and
allocates with numpy's default handler; :func:`use_block_cache` called in that
thread gives it the cache. Every array is freed by the handler that allocated it,
whichever thread frees it, so mixing the two is safe.
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys
import warnings
from typing import Any

_ENABLED_VALUES = ("", "1")


def _switched_on(name):
    """Whether the opt-out variable ``name`` leaves its setting on (unset or "1")."""
    return os.environ.get(name, "").strip() in _ENABLED_VALUES


# ---------------------------------------------------------------- environment (before loading)
SPIN_COUNT = "10000"
OPENBLAS_THREAD_TIMEOUT = "16"

SHORT_SPIN = _switched_on("MINIDL_SHORT_SPIN")
if SHORT_SPIN:
    if "GOMP_SPINCOUNT" not in os.environ and "OMP_WAIT_POLICY" not in os.environ:
        os.environ["GOMP_SPINCOUNT"] = SPIN_COUNT
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", OPENBLAS_THREAD_TIMEOUT)

from . import _ops  # noqa: E402  (the OpenMP runtime reads GOMP_SPINCOUNT when this loads)

# ---------------------------------------------------------------- the C heap
# From glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's largest allowed value on 64-bit systems
TRIM_THRESHOLD = 512 * 1024 * 1024


def _glibc():
    """The C library through ctypes when it is glibc, else None (macOS, musl, Windows)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version.restype = ctypes.c_char_p
    except (OSError, AttributeError):
        return None
    return libc


def _keep_freed_memory():
    """Raise glibc's mmap and trim thresholds; returns whether both took effect."""
    libc = _glibc()
    if libc is None:
        return False
    mallopt = libc.mallopt
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )


KEEP_FREED_MEMORY = _switched_on("MINIDL_KEEP_FREED_MEMORY") and _keep_freed_memory()

# ---------------------------------------------------------------- numpy's large blocks
from . import _alloc  # noqa: E402

# The blocks glibc mmaps (and page-faults) even with the heap setting above: its
# largest mmap threshold. Below it the heap keeps freed blocks as fast (BN kernel
# at 16 and 24.5 MiB: the same time with the cache taking them from 1 MiB). With
# MINIDL_KEEP_FREED_MEMORY=0 a 1 MiB threshold removed the faults at 16-24.5 MiB
# but hid the large frees from glibc's adaptive mmap threshold, and blocks just
# under 1 MiB then faulted on every call (0.5 -> 2.1 ms), so it stays at 32 MiB.
BLOCK_CACHE_THRESHOLD = 32 * 1024 * 1024
BLOCK_CACHE_LIMIT_MB = 1024  # the most the cache holds; MINIDL_BLOCK_CACHE_MB changes it


def _block_cache_limit():
    """``MINIDL_BLOCK_CACHE_MB`` in bytes, else the default :data:`BLOCK_CACHE_LIMIT_MB`."""
    value = os.environ.get("MINIDL_BLOCK_CACHE_MB", "").strip()
    megabytes = int(value) if value.isdigit() else BLOCK_CACHE_LIMIT_MB
    return megabytes * 1024 * 1024


def _numpy_multiarray():
    """numpy's multiarray module, where its memory-handler functions live."""
    try:
        from numpy._core import multiarray  # numpy 2
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray
    return multiarray


def _numpy_uses_hugepages():
    """numpy's switch for marking blocks of 4 MiB and more for huge pages (on by default)."""
    getter = getattr(_numpy_multiarray(), "_get_madvise_hugepage", None)
    return True if getter is None else bool(getter())


def _cache_large_blocks():
    """Make the block cache numpy's memory handler here, unless another one is installed."""
    _alloc.configure(
        threshold=BLOCK_CACHE_THRESHOLD,
        limit=_block_cache_limit(),
        hugepages=_numpy_uses_hugepages(),
    )
    return _alloc.install()


CACHE_LARGE_BLOCKS = _switched_on("MINIDL_CACHE_LARGE_BLOCKS") and _cache_large_blocks()


def use_block_cache() -> bool:
    """Make the block cache numpy's memory handler in the calling thread's context.

    Importing minidl does this for the importing thread; numpy starts every new
    thread with its default handler. Returns whether the cache is the handler now:
    False when it was opted out (``MINIDL_CACHE_LARGE_BLOCKS=0``) or another handler
    is installed in this context, which is kept.

    >>> import threading
    >>> thread = threading.Thread(target=minidl.runtime.use_block_cache)
    >>> thread.start()
    >>> thread.join()
    """
    return CACHE_LARGE_BLOCKS and _alloc.install()


def empty_cache() -> int:
    """Free the large blocks minidl's memory handler keeps for reuse; returns the bytes freed.

    As ``torch.cuda.empty_cache()``: arrays in use are untouched, and the cache
    fills again as arrays are freed. ``minidl.runtime.config()["heap"]`` shows
    what it holds.

    >>> minidl.runtime.empty_cache() >= 0
    True
    """
    return _alloc.empty_cache()


# ---------------------------------------------------------------- threads
_blas_limits = None


# The most threads a kernel may use. libgomp starts every thread up front and aborts
# the process when the system refuses one ("Thread creation failed"): with a 2-core
# machine's default limits 16,384 threads still ran a convolution and 50,000 killed
# the process. 1024 is far above any useful count and far below that failure.
MAX_NUM_THREADS = 1024


def _thread_count(value, where):
    """``value`` as an int in [1, MAX_NUM_THREADS], or a ValueError naming ``where``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{where}: expected a positive integer, got {value!r}")
    if value > MAX_NUM_THREADS:
        raise ValueError(
            f"{where}: expected at most {MAX_NUM_THREADS} threads "
            f"(minidl.runtime.MAX_NUM_THREADS), got {value}"
        )
    return value


# Where Linux describes each logical CPU's core (tests point it at a fake tree).
SYS_CPU_ROOT = "/sys/devices/system/cpu"


def _logical_cpus():
    """The logical CPUs this process may run on (its affinity mask), as a set of ids."""
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS, Windows
        return set(range(os.cpu_count() or 1))


def physical_cores(cpus: Any = None, root: Any = None) -> int:
    """The number of physical cores among the logical CPUs ``cpus``.

    Two SMT siblings (hyper-threads) share a core; both are counted once. A core is
    the pair (``physical_package_id``, ``core_id``) that Linux lists under
    ``root/cpu<N>/topology/``. ``cpus`` defaults to the CPUs this process may run on
    (``os.sched_getaffinity(0)``), ``root`` to :data:`SYS_CPU_ROOT`. Where a CPU's
    topology cannot be read (not Linux, /sys not mounted), the count of logical CPUs
    is returned instead. ``cpus`` that is not an iterable of ints raises TypeError,
    a negative id ValueError.

    >>> 1 <= minidl.runtime.physical_cores() <= len(os.sched_getaffinity(0))
    True
    """
    if cpus is None:
        cpus = _logical_cpus()
    else:
        given = cpus
        try:
            cpus = set(given)
        except TypeError:
            cpus = {None}
        expected = "physical_cores: expected cpus as an iterable of CPU ids (non-negative ints"
        if not all(isinstance(c, int) and not isinstance(c, bool) for c in cpus):
            raise TypeError(f"{expected}, as os.sched_getaffinity returns), got {given!r}")
        if any(c < 0 for c in cpus):
            raise ValueError(f"{expected}), got {given!r}")
    root = SYS_CPU_ROOT if root is None else os.fspath(root)
    cores = set()
    for cpu in cpus:
        topology = os.path.join(root, f"cpu{cpu}", "topology")
        try:
            with open(os.path.join(topology, "physical_package_id")) as package:
                with open(os.path.join(topology, "core_id")) as core:
                    cores.add((int(package.read()), int(core.read())))
        except (OSError, ValueError):
            return max(len(cpus), 1)
    return max(len(cores), 1)


def _default_threads():
    """(count, where it came from) for :func:`default_num_threads` and :func:`show_config`."""
    for name in ("MINIDL_NUM_THREADS", "OMP_NUM_THREADS"):
        text = os.environ.get(name, "").split(",")[0].strip()
        if not text:
            continue
        try:
            return _thread_count(int(text), name), name
        except ValueError:
            warnings.warn(
                f"{name}={os.environ[name]!r} is not a thread count in [1, {MAX_NUM_THREADS}]; "
                "minidl ignores it",
                RuntimeWarning,
                stacklevel=3,
            )
    cpus = _logical_cpus()
    cores = min(physical_cores(cpus), MAX_NUM_THREADS)
    return cores, f"physical cores available ({cores} of {len(cpus)} logical CPUs allowed)"


def default_num_threads() -> int:
    """The thread count minidl starts with.

    ``MINIDL_NUM_THREADS``, else ``OMP_NUM_THREADS`` (its first entry), else the
    number of physical cores among the CPUs this process may run on (see
    :func:`physical_cores`; at most :data:`MAX_NUM_THREADS`). SMT siblings count
    once: two threads on one core's hyper-threads compete for the same arithmetic
    units. A variable that is not an integer in [1, MAX_NUM_THREADS] is skipped
    with a ``RuntimeWarning`` naming it. :func:`show_config` prints which applied.

    >>> minidl.runtime.default_num_threads() >= 1
    True
    """
    return _default_threads()[0]


def set_num_threads(n: int) -> None:
    """Use ``n`` threads in the compiled kernels and, with threadpoolctl, in numpy's BLAS.

    ``n`` is an int in [1, :data:`MAX_NUM_THREADS`] (1024); anything else raises
    ValueError, before any thread starts.

    threadpoolctl (``pip install threadpoolctl``, in the ``test`` and ``bench``
    extras) is what reaches the BLAS; without it only the kernels follow.

    >>> minidl.set_num_threads(1)
    >>> minidl.get_num_threads()
    1
    """
    global _blas_limits
    _thread_count(n, "set_num_threads")
    _ops.set_num_threads(n)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    _blas_limits = threadpool_limits(limits=n, user_api="blas")


def get_num_threads() -> int:
    """The number of threads the compiled kernels use.

    >>> minidl.get_num_threads() >= 1
    True
    """
    return _ops.get_num_threads()


_ops.set_num_threads(default_num_threads())

# ---------------------------------------------------------------- fork
FORK_SINGLE_THREAD = _switched_on("MINIDL_FORK_SINGLE_THREAD") and hasattr(os, "register_at_fork")
if FORK_SINGLE_THREAD:
    os.register_at_fork(after_in_child=lambda: _ops.set_num_threads(1))


# ---------------------------------------------------------------- report
def _blas_info():
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return ["(install threadpoolctl to see numpy's BLAS)"]
    lines = []
    for pool in threadpool_info():
        if pool.get("user_api") == "blas":
            lines.append(
                f"{pool.get('internal_api')} {pool.get('version')}, "
                f"{pool.get('num_threads')} threads, {pool.get('architecture') or ''}".rstrip(", ")
            )
    return lines or ["(no BLAS library loaded)"]


def _handler_name():
    """The name of numpy's memory handler in the calling thread's context."""
    return _numpy_multiarray().get_handler_name()


def config() -> dict[str, Any]:
    """What :func:`show_config` prints, as a dict of plain values.

    >>> sorted(minidl.runtime.config())[:3]
    ['blas', 'build', 'environment']
    """
    from . import __version__

    libc = _glibc()
    default_count, default_source = _default_threads()
    return {
        "minidl": __version__,
        "python": f"{platform.python_version()} ({sys.executable})",
        "platform": platform.platform(),
        "numpy": __import__("numpy").__version__,
        "build": {
            "openmp": _ops.openmp_enabled(),
            "compiler flags": _ops.build_flags(),
            "extension": _ops.__file__,
        },
        "threads": {
            "kernels": _ops.get_num_threads(),
            "default": default_count,
            "default from": default_source,
            "after fork": 1 if FORK_SINGLE_THREAD else "as in the parent",
        },
        "blas": _blas_info(),
        "heap": {
            "glibc": libc.gnu_get_libc_version().decode() if libc is not None else None,
            "keep freed memory": KEEP_FREED_MEMORY,
            "mmap threshold": MMAP_THRESHOLD if KEEP_FREED_MEMORY else "the C library's",
            "trim threshold": TRIM_THRESHOLD if KEEP_FREED_MEMORY else "the C library's",
            "cache large blocks": CACHE_LARGE_BLOCKS,
            "numpy's handler": _handler_name(),
            "block cache": _alloc.stats(),
        },
        "environment": {
            name: os.environ.get(name)
            for name in (
                "GOMP_SPINCOUNT",
                "OMP_WAIT_POLICY",
                "OMP_NUM_THREADS",
                "OPENBLAS_THREAD_TIMEOUT",
                "MINIDL_NUM_THREADS",
                "MINIDL_SHORT_SPIN",
                "MINIDL_KEEP_FREED_MEMORY",
                "MINIDL_CACHE_LARGE_BLOCKS",
                "MINIDL_BLOCK_CACHE_MB",
                "MINIDL_FORK_SINGLE_THREAD",
            )
        },
    }


def show_config() -> None:
    """Print minidl's build and run-time configuration (as ``numpy.show_config()`` does).

    The build (OpenMP, compiler flags), the thread counts, numpy's BLAS (through
    threadpoolctl when installed), the heap settings, and the environment
    variables of threads and memory that minidl reads or sets.

    >>> minidl.show_config()  # doctest: +ELLIPSIS
    minidl ...
    """
    for key, value in config().items():
        if isinstance(value, dict):
            print(f"{key}:")
            for name, item in value.items():
                print(f"  {name}: {item}")
        elif isinstance(value, list):
            print(f"{key}:")
            for item in value:
                print(f"  {item}")
        else:
            print(f"{key} {value}" if key == "minidl" else f"{key}: {value}")


__all__ = [
    "config",
    "default_num_threads",
    "empty_cache",
    "get_num_threads",
    "physical_cores",
    "set_num_threads",
    "show_config",
    "use_block_cache",
]
