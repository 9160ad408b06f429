"""Data-parallel training over MPI: the process group and its collectives.

minidl runs one process per rank, started by an MPI launcher (``mpiexec -n 4
python train.py``, ``srun``, a hostfile); :func:`init` joins them into the
world's process group (``MPI.COMM_WORLD``, through ``mpi4py``). The functions
keep ``torch.distributed``'s names and in-place semantics: :func:`all_reduce`,
:func:`broadcast`, :func:`all_gather` and :func:`barrier` work on numpy arrays and
Tensors. :class:`~minidl.nn.parallel.DistributedDataParallel` (also importable
from here) and :class:`~minidl.nn.SyncBatchNorm` build on them.

MPI is an optional extra: ``python -m pip install "minidl[distributed]"`` brings
``mpi4py`` and ``mpich`` (with ``mpiexec``). minidl imports without them; this
module raises an ImportError naming the extra when it is used without them.

Faults end every rank instead of hanging them:

- after ``init()`` in a world of more than one process, an exception that
  reaches the top of a rank prints its traceback once (from that rank) and
  calls ``MPI.COMM_WORLD.Abort``, which ends every rank with a non-zero exit;
- a collective that the other ranks do not join within ``timeout`` seconds
  (``init(timeout=...)``, or the ``MINIDL_DISTRIBUTED_TIMEOUT`` environment
  variable; 1800 s, torch's default, otherwise) raises
  :class:`DistributedTimeoutError`, which then aborts as above.

Collectives are non-blocking MPI calls (``Iallreduce``, ``Ibcast``, ...) that the
calling rank polls until they complete or the timeout passes; MPI moves messages
forward during those polls (MPICH's ``MPIR_CVAR_ASYNC_PROGRESS=1`` adds a thread
that moves them in the background too). Arrays travel as raw buffers (mpi4py's
upper-case methods); nothing is pickled.

>>> import minidl.distributed as dist
>>> dist.is_initialized()
False
"""

from __future__ import annotations

import datetime
import os
import sys
import threading
import time
import traceback
from typing import Any

import numpy as np

from .tensor import Tensor

DEFAULT_TIMEOUT = 1800.0  # seconds: torch.distributed's default of 30 minutes
_TIMEOUT_VARIABLE = "MINIDL_DISTRIBUTED_TIMEOUT"
_INSTALL_HINT = 'python -m pip install "minidl[distributed]"'
# the element types the collectives accept: MPI has a reduction for each
_DTYPES = (np.float32, np.float64, np.int32, np.int64)


class DistributedError(RuntimeError):
    """A collective could not complete (ranks disagree on it, or the group is unusable)."""


class DistributedTimeoutError(DistributedError, TimeoutError):
    """A rank waited longer than the group's timeout for the others to join a collective."""


class ReduceOp:
    """The reductions of :func:`all_reduce`, spelled as ``torch.distributed.ReduceOp``.

    ``AVG`` (also ``MEAN``) divides the sum by the world size (float arrays only).
    Strings work too: ``"sum"``, ``"mean"``/``"avg"``, ``"max"``, ``"min"``.

    >>> ReduceOp.SUM
    'sum'
    """

    SUM = "sum"
    AVG = "mean"
    MEAN = "mean"
    MAX = "max"
    MIN = "min"


_OPS = {"sum": "SUM", "mean": "SUM", "avg": "SUM", "max": "MAX", "min": "MIN"}


def _load_mpi():
    """mpi4py's MPI module, or an ImportError that names the extra to install."""
    try:
        from mpi4py import MPI
    except ImportError as error:
        raise ImportError(
            "minidl.distributed needs mpi4py and an MPI library (such as MPICH), which are "
            f"not installed ({error}); install them with {_INSTALL_HINT}"
        ) from error
    return MPI


def is_available() -> bool:
    """Whether mpi4py can be imported (``torch.distributed.is_available``'s counterpart).

    >>> isinstance(is_available(), bool)
    True
    """
    try:
        _load_mpi()
    except ImportError:
        return False
    return True


def launched_by_mpi() -> bool:
    """Whether this process was started by an MPI launcher with more than one rank.

    Reads the environment that mpiexec (MPICH's hydra, Open MPI) and Slurm's srun
    set, without starting MPI, so a script can decide whether to call :func:`init`.

    >>> launched_by_mpi() in (True, False)
    True
    """
    for name in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS"):
        value = os.environ.get(name)
        if value is not None and value.isdigit() and int(value) > 1:
            return True
    return False


class _Group:
    """The world's process group: a private duplicate of ``MPI.COMM_WORLD`` (so a
    user's own MPI messages never mix with minidl's), its rank, size and timeout."""

    def __init__(self, mpi, timeout):
        self.mpi = mpi
        self.comm = mpi.COMM_WORLD.Dup()
        self.rank = self.comm.Get_rank()
        self.size = self.comm.Get_size()
        self.timeout = timeout
        self.broken = None  # the reason, once a collective timed out

    def wait(self, request, what):
        """Poll ``request`` until it completes; after the timeout raise a clear error."""
        if self.broken is not None:
            raise DistributedError(f"{what}: the process group is unusable: {self.broken}")
        if request.Test():
            return
        start = time.monotonic()
        pause = 0.0
        while not request.Test():
            waited = time.monotonic() - start
            if waited > self.timeout:
                self.broken = f"a collective timed out after {self.timeout:g} s"
                raise DistributedTimeoutError(
                    f"{what}: rank {self.rank} of {self.size} waited {waited:.1f} s (the timeout) "
                    "for the other ranks to join; one of them has stopped, is stuck, or took "
                    "another path through the code. Set the timeout with "
                    f"minidl.distributed.init(timeout=...) or {_TIMEOUT_VARIABLE}."
                )
            # spin for the first millisecond (a collective usually completes within it),
            # then poll at most every millisecond without holding a core
            if waited > 1e-3:
                pause = min(1e-3, pause + 5e-5)
                time.sleep(pause)

    def op(self, name):
        return getattr(self.mpi, _OPS[name])


_group = None
_lock = threading.Lock()


def _timeout_seconds(timeout):
    if timeout is None:
        timeout = os.environ.get(_TIMEOUT_VARIABLE, DEFAULT_TIMEOUT)
        where = _TIMEOUT_VARIABLE if _TIMEOUT_VARIABLE in os.environ else "timeout"
    else:
        where = "timeout"
    if isinstance(timeout, datetime.timedelta):
        timeout = timeout.total_seconds()
    try:
        seconds = float(timeout)
    except (TypeError, ValueError):
        raise ValueError(f"init: {where} must be a number of seconds, got {timeout!r}") from None
    if not seconds > 0:
        raise ValueError(f"init: {where} must be positive, got {timeout!r}")
    return seconds


def init(timeout: Any = None, abort_on_exception: bool = True) -> int:
    """Join this process to the world's process group (``MPI.COMM_WORLD``); idempotent.

    ``timeout`` (seconds or a ``datetime.timedelta``) bounds how long a collective
    waits for the other ranks (default ``MINIDL_DISTRIBUTED_TIMEOUT``, else 1800
    s); a later call may change it. With ``abort_on_exception`` (and more than one
    rank) an exception that ends this rank prints its traceback and aborts every
    rank (``MPI.COMM_WORLD.Abort``), so no rank waits forever for a dead one.
    Outside a launcher, the world is this one process. Returns the world size.

    >>> import minidl.distributed as dist
    >>> dist.init()  # doctest: +SKIP
    2
    """
    global _group
    seconds = _timeout_seconds(timeout) if timeout is not None or _group is None else None
    with _lock:
        if _group is None:
            _group = _Group(_load_mpi(), seconds)
            if abort_on_exception and _group.size > 1:
                _install_abort_hook()
        elif seconds is not None:
            _group.timeout = seconds
    return _group.size


def is_initialized() -> bool:
    """Whether :func:`init` has run in this process.

    >>> is_initialized() in (True, False)
    True
    """
    return _group is not None


def _require(what):
    if _group is None:
        raise RuntimeError(
            f"{what}: the process group is not initialized; call minidl.distributed.init() "
            "first (under mpiexec, srun or another MPI launcher)"
        )
    return _group


def get_rank() -> int:
    """This process's rank in the world, 0 to ``get_world_size() - 1``.

    >>> get_rank()  # doctest: +SKIP
    0
    """
    return _require("get_rank").rank


def get_world_size() -> int:
    """The number of processes in the world.

    >>> get_world_size()  # doctest: +SKIP
    2
    """
    return _require("get_world_size").size


def is_main_process() -> bool:
    """True on rank 0, and in a process that has not called :func:`init` (a world of one).

    Rank 0 is the one that prints, draws progress bars and writes files.

    >>> is_main_process()  # doctest: +SKIP
    True
    """
    return _group is None or _group.rank == 0


def _world_size_or_one():
    return 1 if _group is None else _group.size


def _array_of(tensor, what):
    """The array a collective works on in place, checked: a numpy array or a Tensor's data."""
    array = tensor._data if isinstance(tensor, Tensor) else tensor
    if not isinstance(array, np.ndarray):
        raise TypeError(f"{what}: expected a numpy array or Tensor, got {type(tensor).__name__}")
    if array.dtype.type not in _DTYPES:
        raise TypeError(
            f"{what}: expected a float32, float64, int32 or int64 array, got dtype {array.dtype}"
        )
    if not array.flags.writeable:
        raise ValueError(f"{what}: the array is read-only but the collective writes into it")
    return array


def _bump_version(tensor):
    if isinstance(tensor, Tensor):
        tensor._version_box[0] += 1


def _agree(group, array, what):
    """Check that every rank passes an array of the same shape and dtype (an MPI collective
    of mismatched sizes truncates or corrupts silently); raise naming what differed."""
    if group.size == 1:
        return
    code = _DTYPES.index(array.dtype.type)
    mine = np.full(10, -1, dtype=np.int64)
    mine[0], mine[1] = code, array.ndim
    if array.ndim > 8:
        raise ValueError(f"{what}: at most 8 dims, got shape {array.shape}")
    mine[2 : 2 + array.ndim] = array.shape
    every = np.empty((group.size, 10), dtype=np.int64)
    group.wait(group.comm.Iallgather(mine, every), what)
    if (every != mine).any():
        described = [
            f"rank {r}: shape {tuple(int(n) for n in row[2 : 2 + row[1]])}, "
            f"dtype {np.dtype(_DTYPES[row[0]])}"
            for r, row in enumerate(every)
        ]
        raise DistributedError(
            f"{what}: every rank must pass an array of the same shape and dtype, got "
            + "; ".join(described)
        )


class Work:
    """A collective started with ``async_op=True``: :meth:`wait` completes it.

    >>> work = all_reduce(np.ones(3), async_op=True)  # doctest: +SKIP
    >>> work.wait()  # doctest: +SKIP
    True
    """

    def __init__(self, group, request, what, finish=None):
        self._group, self._request, self._what, self._finish = group, request, what, finish
        self._done = False

    def is_completed(self) -> bool:
        """Whether the collective has finished (without waiting for it)."""
        if not self._done and self._request.Test():
            self._complete()
        return self._done

    def wait(self) -> Any:
        """Wait (at most the group's timeout) for the collective, then apply its result."""
        if not self._done:
            self._group.wait(self._request, self._what)
            self._complete()
        return True

    def _complete(self):
        self._done = True
        if self._finish is not None:
            self._finish()


def _run(group, request, what, finish, async_op):
    work = Work(group, request, what, finish)
    if async_op:
        return work
    work.wait()
    return None


def _no_group(group, what):
    if group is not None:
        raise ValueError(f"{what}: only the world's process group exists; pass group=None")


def all_reduce(
    tensor: Tensor, op: str = ReduceOp.SUM, group: Any = None, async_op: bool = False
) -> Any:
    """Reduce ``tensor`` over all ranks, in place: every rank ends with the result.

    ``tensor`` is a numpy array or Tensor (any shape, float32/float64/int32/int64),
    of the same shape and dtype on every rank; ``op`` is :class:`ReduceOp` SUM,
    AVG (the sum divided by the world size, float only), MAX or MIN. With
    ``async_op`` a :class:`Work` is returned to ``wait()`` on.

    >>> grad = np.full(3, float(get_rank()))  # doctest: +SKIP
    >>> all_reduce(grad, op=ReduceOp.AVG)  # doctest: +SKIP
    >>> grad  # with 2 ranks  # doctest: +SKIP
    array([0.5, 0.5, 0.5])
    """
    what = "all_reduce"
    _no_group(group, what)
    world = _require(what)
    name = str(op).lower()
    if name not in _OPS:
        raise ValueError(f"{what}: op must be sum, mean (avg), max or min, got {op!r}")
    array = _array_of(tensor, what)
    if name in ("mean", "avg") and array.dtype.kind != "f":
        raise TypeError(f"{what}: op=AVG needs a float array, got dtype {array.dtype}")
    _agree(world, array, what)
    buffer = array if array.flags.c_contiguous else np.ascontiguousarray(array)

    def finish():
        if name in ("mean", "avg"):
            buffer[...] /= world.size
        if buffer is not array:
            array[...] = buffer
        _bump_version(tensor)

    request = world.comm.Iallreduce(world.mpi.IN_PLACE, buffer, op=world.op(name))
    return _run(world, request, what, finish, async_op)


def broadcast(tensor: Tensor, src: int = 0, group: Any = None, async_op: bool = False) -> Any:
    """Copy rank ``src``'s ``tensor`` into ``tensor`` on every other rank, in place.

    Same shape and dtype on every rank.

    >>> weights = np.zeros(4) if get_rank() else np.arange(4.0)  # doctest: +SKIP
    >>> broadcast(weights, src=0)  # doctest: +SKIP
    >>> weights  # doctest: +SKIP
    array([0., 1., 2., 3.])
    """
    what = "broadcast"
    _no_group(group, what)
    world = _require(what)
    if not isinstance(src, (int, np.integer)) or not 0 <= src < world.size:
        raise ValueError(f"{what}: src must be a rank from 0 to {world.size - 1}, got {src!r}")
    array = _array_of(tensor, what)
    _agree(world, array, what)
    buffer = array if array.flags.c_contiguous else np.ascontiguousarray(array)

    def finish():
        if buffer is not array:
            array[...] = buffer
        _bump_version(tensor)

    request = world.comm.Ibcast(buffer, root=int(src))
    return _run(world, request, what, finish, async_op)


def all_gather(
    tensor_list: list[Tensor], tensor: Tensor, group: Any = None, async_op: bool = False
) -> Any:
    """Fill ``tensor_list[r]`` with rank r's ``tensor``, on every rank (torch's signature).

    ``tensor_list`` holds ``get_world_size()`` arrays or Tensors of ``tensor``'s
    shape and dtype, written in place.

    >>> parts = [np.empty(2) for _ in range(get_world_size())]  # doctest: +SKIP
    >>> all_gather(parts, np.full(2, float(get_rank())))  # doctest: +SKIP
    >>> parts  # with 2 ranks  # doctest: +SKIP
    [array([0., 0.]), array([1., 1.])]
    """
    what = "all_gather"
    _no_group(group, what)
    world = _require(what)
    array = _array_of(tensor, what)
    targets = [_array_of(t, what) for t in tensor_list]
    if len(targets) != world.size:
        raise ValueError(
            f"{what}: tensor_list must hold one array per rank ({world.size}), got {len(targets)}"
        )
    for target in targets:
        if target.shape != array.shape or target.dtype != array.dtype:
            raise ValueError(
                f"{what}: every entry of tensor_list must have the shape {array.shape} and dtype "
                f"{array.dtype} of tensor, got {target.shape} and {target.dtype}"
            )
    _agree(world, array, what)
    gathered = np.empty((world.size, *array.shape), dtype=array.dtype)

    def finish():
        for target, part, original in zip(targets, gathered, tensor_list):
            target[...] = part
            _bump_version(original)

    request = world.comm.Iallgather(np.ascontiguousarray(array), gathered)
    return _run(world, request, what, finish, async_op)


def barrier(group: Any = None) -> None:
    """Wait until every rank has called ``barrier`` (at most the group's timeout).

    >>> barrier()  # doctest: +SKIP
    """
    _no_group(group, "barrier")
    world = _require("barrier")
    world.wait(world.comm.Ibarrier(), "barrier")


# ---------------------------------------------------------------- for minidl's own layers


def _allreduce_start(array):
    """Start summing a contiguous array in place over the ranks (no checks): the request."""
    return _group.comm.Iallreduce(_group.mpi.IN_PLACE, array, op=_group.mpi.SUM)


def _allgather_rows(row, what):
    """Every rank's copy of the contiguous array ``row``, stacked: (world size, *row.shape)."""
    gathered = np.empty((_group.size, *row.shape), dtype=row.dtype)
    _group.wait(_group.comm.Iallgather(row, gathered), what)
    return gathered


def _allreduce_sum(array, what):
    """Sum a contiguous array in place over the ranks, waiting with the timeout."""
    _group.wait(_allreduce_start(array), what)
    return array


# ---------------------------------------------------------------- faults


def _install_abort_hook():
    def abort_every_rank(kind, error, trace):
        try:
            sys.stderr.write(
                f"minidl.distributed: rank {_group.rank} of {_group.size} failed; "
                "aborting every rank\n"
            )
            sys.stderr.write("".join(traceback.format_exception(kind, error, trace)))
            sys.stderr.flush()
            sys.stdout.flush()
        finally:
            _group.mpi.COMM_WORLD.Abort(1)
            os._exit(1)  # should MPI_Abort return, this rank still ends (the traceback is out)

    sys.excepthook = abort_every_rank


def __getattr__(name):
    # DistributedDataParallel lives in nn.parallel (a layer above this module); importing
    # it here lazily keeps this module free of nn while offering torch's second spelling
    if name == "DistributedDataParallel":
        from .nn.parallel import DistributedDataParallel

        return DistributedDataParallel
    raise AttributeError(f"module 'minidl.distributed' has no attribute {name!r}")


__all__ = [
    "DistributedError",
    "DistributedTimeoutError",
    "ReduceOp",
    "Work",
    "all_gather",
    "all_reduce",
    "barrier",
    "broadcast",
    "get_rank",
    "get_world_size",
    "init",
    "is_available",
    "is_initialized",
    "is_main_process",
    "launched_by_mpi",
]
