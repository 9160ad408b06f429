# cython: language_level=3
"""minidl's compiled kernels.

Each public function here is a thin ``def`` that checks its inputs (dtype, rank,
shape, and every value a kernel indexes with), makes them C-contiguous once and
allocates the outputs with numpy; a typed ``cdef`` kernel then fills the outputs
under ``with nogil``, splitting the work across threads with ``prange`` where
OpenMP was available at build time. Only the checked wrappers can be called from
Python: the kernels trust their arguments (bounds checking is off) and are not
importable, so no caller can make one read or write out of bounds.

Float32 data is accumulated in double, and arithmetic that subtracts a mean is
done in double, so data far from zero with a small spread keeps its precision.
Every kernel gives the same bits whatever the number of threads: each output
element is computed by one thread, always in the same order. With one thread
(or too little work to split) every ``prange`` runs sequentially on the calling
thread (``use_threads_if``): no worker thread is woken, so a process forked after
the parent used threads (libgomp's pool does not survive a fork) stays usable
once it calls ``set_num_threads(1)``.

This module knows nothing of Tensor: it maps numpy arrays to numpy arrays.
``minidl/_reference.py`` holds the same kernels in plain numpy, with the same
signatures; the tests compare the two. Argument semantics that are not about
memory (label smoothing in [0, 1], more than one value per channel when
training) are checked once, in ``minidl/_checks.py``, by the callers.

Normalization layouts: an input of shape (N, C), (N, C, L), (N, C, H, W) or
(N, C, D, H, W) is seen as (N, C, S) with S = 1, L, H * W or D * H * W. Batch norm
takes statistics per channel over N and S; group norm per (sample, group of C / G
channels) over those channels and S; instance norm is group norm with G = C; layer
norm of (R, D) rows is group norm with one group of D channels and S = 1. One core
(``_moments``: two passes in double; a large set in pieces that stay in L2, whose
statistics are merged in a fixed order) computes every one of these statistics.
"""

import numpy as np

from minidl import _checks

from cython cimport floating
from cython.parallel cimport prange, threadid
from libc.math cimport exp, fabs, log, sqrt, tanh, INFINITY
from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc

cdef extern from *:
    """
    #ifdef _OPENMP
    #define MINIDL_HAVE_OPENMP 1
    #else
    #define MINIDL_HAVE_OPENMP 0
    #endif
    #ifndef MINIDL_BUILD_FLAGS
    #define MINIDL_BUILD_FLAGS "(not recorded)"
    #endif
    """
    const int MINIDL_HAVE_OPENMP
    const char* MINIDL_BUILD_FLAGS

cdef enum:
    # Channels handled together by one thread when channels are the last axis:
    # their accumulators stay in L1 and the loop over them vectorizes.
    COLUMN_BLOCK = 256
    # Independent accumulators in a contiguous sum: the additions pipeline and
    # vectorize (one chain of dependent additions is bound by their latency).
    LANES = 16
    # The next two decide when a kernel whose work is cheap per element splits it
    # over threads: only from two chunks of this size, so each thread's share costs
    # about as much as waking it. Waking the workers for a parallel region cost
    # about 19 us on a busy 2-core machine (sum_channels of a (1, 2, 1)
    # array: 23 us with 2 threads, 4 us with 1), a few us on an idle one.
    # Rows of a row-wise kernel (log-sum-exp, cross-entropy): 64 rows of 10
    # classes took 11 us there (logsumexp_rows, 1 thread), 64 rows of 100, 73 us.
    ROWS_PER_THREAD = 64
    # Values of the evaluation-mode batch norm (one multiply-add each): 32768
    # float32 values (128 KiB) took 86 us there (batchnorm_forward_eval, 1 thread).
    VALUES_PER_THREAD = 32768
    # Slabs of an optimizer update per thread before a group is split over threads.
    UPDATE_SLABS_PER_THREAD = 4
    # Group, instance and layer norm split their groups into chunks of about this
    # many values: a chunk is one thread's share (two or three passes over it cost
    # a few times the evaluation batch norm's per value, so it is well worth waking
    # a thread for) and the unit of the weight-gradient partial sums, fixed by the
    # shape alone so that the bits never depend on the thread count.
    VALUES_PER_CHUNK = 32768
    # Positions (output pixels) the direct weight gradient sums in separate lanes
    # (4 AVX2 registers of float32); its scratch rows are padded to a multiple of it.
    DIRECT_BLOCK = 32


cdef struct Window:
    # a sliding window over (H, W) planes, as checked by _window: kernel, stride,
    # padding and dilation per axis, and the output size (OH, OW)
    int kh, kw, sh, sw, ph, pw, dh, dw
    Py_ssize_t oh, ow


cdef int _num_threads = 1


def openmp_enabled():
    """Whether the kernels were built with OpenMP (and so can use several threads).

    >>> openmp_enabled() in (True, False)
    True
    """
    return bool(MINIDL_HAVE_OPENMP)


def build_flags():
    """The compiler flags the kernels were built with (``minidl.show_config()`` prints them).

    >>> "-O" in build_flags() or "/O" in build_flags()
    True
    """
    return MINIDL_BUILD_FLAGS.decode()


def set_num_threads(int n):
    """Set how many threads the kernels use (``minidl.set_num_threads`` calls this).

    With 1 every kernel runs on the calling thread alone and wakes no OpenMP worker,
    which is what a child forked from a process that ran threaded kernels needs.

    >>> before = get_num_threads()
    >>> set_num_threads(1)
    >>> get_num_threads()
    1
    >>> set_num_threads(before)
    """
    global _num_threads
    if n < 1:
        raise ValueError(f"set_num_threads: expected a positive thread count, got {n}")
    _num_threads = n


def get_num_threads():
    """How many threads the kernels use.

    >>> get_num_threads() >= 1
    True
    """
    return _num_threads


cdef inline int _threads_for(Py_ssize_t tasks) noexcept nogil:
    # the threads a kernel with ``tasks`` independent pieces of work uses; each prange
    # runs sequentially when this is 1 (``use_threads_if=threads > 1``): the region
    # is then inactive, and libgomp runs it on the calling thread without touching
    # its thread pool (the pool a forked child inherits but cannot use)
    return _num_threads if tasks > 1 else 1


# ---------------------------------------------------------------- input checks

cdef object _float_array(x, str name, str what, tuple ndims, dtype=None):
    """``x`` as a C-contiguous float32/float64 array, or a clear error naming ``name``."""
    arr = np.asarray(x)
    if arr.dtype != np.float32 and arr.dtype != np.float64:
        raise TypeError(
            f"{name}: expected {what} as a float32 or float64 array, got dtype {arr.dtype}; "
            "convert it first, e.g. with .astype(np.float32)"
        )
    if dtype is not None and arr.dtype != dtype:
        raise TypeError(f"{name}: expected {what} of dtype {dtype}, got {arr.dtype}")
    if ndims is not None and arr.ndim not in ndims:
        allowed = " or ".join([str(n) for n in ndims])
        raise ValueError(f"{name}: expected {what} with {allowed} dims, got shape {arr.shape}")
    return np.ascontiguousarray(arr)


cdef object _channel_vector(v, str name, str what, Py_ssize_t channels, default=None):
    """A per-channel array as a contiguous (C,) float64 array.

    None stands for ``default`` everywhere (weight 1, bias 0); without a default,
    None is refused.
    """
    if v is None:
        if default is None:
            raise ValueError(f"{name}: {what} is required, got None")
        return np.full(channels, default, dtype=np.float64)
    arr = np.asarray(v)
    if arr.shape != (channels,):
        raise ValueError(f"{name}: expected {what} of shape ({channels},), got {arr.shape}")
    if arr.dtype.kind != "f":
        raise TypeError(f"{name}: expected {what} as a float array, got dtype {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=np.float64)


cdef object _running_buffer(v, str name, str what, Py_ssize_t channels):
    """A running statistic updated in place: it must already be contiguous, float, (C,)."""
    if not isinstance(v, np.ndarray):
        raise TypeError(f"{name}: {what} must be a numpy array (it is updated in place)")
    if v.shape != (channels,) or v.dtype.kind != "f" or not v.flags.c_contiguous:
        raise ValueError(
            f"{name}: {what} must be a contiguous float array of shape ({channels},) "
            f"(updated in place), got shape {v.shape}, dtype {v.dtype}"
        )
    if not v.flags.writeable:
        raise ValueError(f"{name}: {what} is read-only but is updated in place")
    return v


cdef object _as_ncs(arr):
    """View an (N, C, ...) array as (N, C, S), S the product of the trailing sizes (1 if none)."""
    if arr.ndim == 3:
        return arr
    inner = 1
    for size in arr.shape[2:]:
        inner *= size
    # S spelled out: numpy cannot infer a -1 of an empty array
    return arr.reshape(arr.shape[0], arr.shape[1], inner)


cdef tuple _x_shape(x_shape, str name):
    """``x_shape`` as a tuple of four non-negative Python ints (N, C, H, W)."""
    try:
        shape = tuple(x_shape)
    except TypeError:
        shape = ()
    if len(shape) != 4:
        raise ValueError(f"{name}: expected x_shape (N, C, H, W), got {x_shape!r}")
    for size in shape:
        if not _checks.is_int(size) or size < 0:
            raise ValueError(
                f"{name}: expected x_shape of four non-negative ints, got {x_shape!r}"
            )
    return tuple([int(size) for size in shape])


cdef Window _window(x_shape, kernel_size, stride, padding, dilation, str name) except *:
    """Validated window geometry over (N, C, H, W) ``x_shape``, with the output size."""
    cdef Window g
    g.kh, g.kw = _checks.pair(kernel_size, name, "kernel_size")
    g.sh, g.sw = _checks.pair(stride if stride is not None else kernel_size, name, "stride")
    g.ph, g.pw = _checks.pair(padding, name, "padding")
    g.dh, g.dw = _checks.pair(dilation, name, "dilation")
    if min(g.kh, g.kw, g.sh, g.sw, g.dh, g.dw) < 1 or min(g.ph, g.pw) < 0:
        raise ValueError(
            f"{name}: kernel_size, stride and dilation must be positive and padding "
            f"non-negative, got kernel_size={(g.kh, g.kw)}, stride={(g.sh, g.sw)}, "
            f"padding={(g.ph, g.pw)}, dilation={(g.dh, g.dw)}"
        )
    height, width = x_shape[2], x_shape[3]
    span_h, span_w = g.dh * (g.kh - 1) + 1, g.dw * (g.kw - 1) + 1
    g.oh = (height + 2 * g.ph - span_h) // g.sh + 1
    g.ow = (width + 2 * g.pw - span_w) // g.sw + 1
    if g.oh < 1 or g.ow < 1:
        raise ValueError(
            f"{name}: the window {(g.kh, g.kw)} (dilation {(g.dh, g.dw)}) does not fit in "
            f"the input {(height, width)} padded by {(g.ph, g.pw)}"
        )
    return g


cdef Window _pool_geometry(shape, kernel_size, stride, padding, str name) except *:
    """Window geometry of a pooling over (N, C, H, W) ``shape``, checked as PyTorch does."""
    cdef Window g = _window(shape, kernel_size, stride, padding, 1, name)
    if g.ph > g.kh // 2 or g.pw > g.kw // 2:
        raise ValueError(
            f"{name}: padding {(g.ph, g.pw)} must be at most half the kernel size "
            f"{(g.kh, g.kw)}"
        )
    return g


# ---------------------------------------------------------------- contiguous sums

cdef enum:
    # sum_leading and sum_channels split their work into pieces of about SUM_CHUNK
    # values: each piece is summed by one thread into a double partial sum, and the
    # partial sums are added in a fixed order afterwards. The pieces follow from the
    # shape alone, so the bits never depend on the thread count; threads share them
    # from two pieces' worth of values on. 16384 float32 values (64 KiB) took about
    # 2 us on one thread (8 to 10 values per ns: the conversions to double set the
    # pace), about what waking a spinning thread costs; pieces this small also
    # share a full sum evenly (62 pieces of a million values).
    SUM_CHUNK = 16384
    # sum_channels sums a (sample, channel) segment of at least this many contiguous
    # values on its own; shorter segments it sums as the columns of an (A, C * B)
    # array (see sum_channels).
    SEGMENT_MIN = 256
    # _moments (the statistics of every normalization) makes two passes over up to
    # MOMENT_DIRECT values (256 KiB of float32: the second pass reads from L2, 1 MiB
    # per core here); a larger set it splits into pieces of at most MOMENT_CHUNK
    # values, two passes over each piece while it is in L2, and merges the pieces'
    # statistics. A batch-norm channel of (512, 64, 28, 28) is 401408 values (1.6 MB).
    MOMENT_DIRECT = 65536
    MOMENT_CHUNK = 32768

cdef inline double _sum(const floating* p, Py_ssize_t n) noexcept nogil:
    # sum(p[:n]) in double with LANES accumulators
    cdef double acc[LANES]
    cdef double total = 0.0
    cdef Py_ssize_t i, k
    cdef Py_ssize_t head = n - n % LANES
    for k in range(LANES):
        acc[k] = 0.0
    for i in range(0, head // LANES):
        for k in range(LANES):
            acc[k] += p[i * LANES + k]
    for i in range(head, n):
        total += p[i]
    for k in range(LANES):
        total += acc[k]
    return total


cdef inline double _sum_segments(const floating* p, Py_ssize_t segments, Py_ssize_t length,
                                 Py_ssize_t stride) noexcept nogil:
    # the sum of p[i * stride + j] (i < segments, j < length), segment after segment
    cdef double total = 0.0
    cdef Py_ssize_t i
    for i in range(segments):
        total = total + _sum(p + i * stride, length)
    return total


cdef inline double _sum_squared_deviation(const floating* p, Py_ssize_t n,
                                          double mean) noexcept nogil:
    # ((p[:n] - mean) ** 2).sum() in double
    cdef double acc[LANES]
    cdef double total = 0.0
    cdef double d
    cdef Py_ssize_t i, k
    cdef Py_ssize_t head = n - n % LANES
    for k in range(LANES):
        acc[k] = 0.0
    for i in range(0, head // LANES):
        for k in range(LANES):
            d = p[i * LANES + k] - mean
            acc[k] += d * d
    for i in range(head, n):
        d = p[i] - mean
        total += d * d
    for k in range(LANES):
        total += acc[k]
    return total


cdef inline void _sum_grad_and_product(const floating* dy, const floating* x, Py_ssize_t n,
                                       double mean, double* sum_dy,
                                       double* sum_dy_xmu) noexcept nogil:
    # sum_dy += dy[:n].sum(); sum_dy_xmu += (dy[:n] * (x[:n] - mean)).sum()
    # Plain accumulators: with -fassociative-math gcc vectorizes this loop as it is
    # (explicit LANES arrays of two products made it spill them to the stack, 3x slower)
    cdef double total_dy = 0.0
    cdef double total_prod = 0.0
    cdef Py_ssize_t i
    for i in range(n):
        total_dy += dy[i]
        total_prod += dy[i] * (x[i] - mean)
    sum_dy[0] += total_dy
    sum_dy_xmu[0] += total_prod


cdef void _channel_totals(double* sums, Py_ssize_t samples, Py_ssize_t channels,
                          Py_ssize_t length, floating[::1] out) noexcept nogil:
    # out[c] = sums.reshape(samples, channels, length)[:, c, :].sum() for every c, the
    # partial sums of channel c added in order (by sample, then position); threads
    # take blocks of channels
    cdef Py_ssize_t blocks = (channels + COLUMN_BLOCK - 1) // COLUMN_BLOCK
    cdef int threads = _threads_for(min(blocks, samples * channels * length // SUM_CHUNK))
    cdef Py_ssize_t block
    for block in prange(blocks, num_threads=threads, schedule="static",
                        use_threads_if=threads > 1):
        _channel_block_totals(sums, samples, channels, length, block, out)


cdef void _channel_block_totals(double* sums, Py_ssize_t samples, Py_ssize_t channels,
                                Py_ssize_t length, Py_ssize_t block,
                                floating[::1] out) noexcept nogil:
    cdef Py_ssize_t start = block * COLUMN_BLOCK
    cdef Py_ssize_t stop = min(start + COLUMN_BLOCK, channels)
    cdef const double* row
    cdef double total
    cdef Py_ssize_t a, c, k
    if length == 1:
        # one partial sum per (sample, channel): added sample after sample into the
        # first sample's, a loop over the block's channels that vectorizes
        for a in range(1, samples):
            row = sums + a * channels
            for c in range(start, stop):
                sums[c] += row[c]
        for c in range(start, stop):
            out[c] = <floating>sums[c]
        return
    for c in range(start, stop):
        total = 0.0
        for a in range(samples):
            row = sums + (a * channels + c) * length
            for k in range(length):
                total = total + row[k]
        out[c] = <floating>total


# ---------------------------------------------------------------- sum over the leading axis

def sum_leading(x):
    """Sum a (A, B) array over its leading axis: ``x.sum(axis=0)``, shape (B,).

    The reduction behind bias gradients and ``Tensor.sum`` over the batch axis.
    Accumulates in double; the result has the input's dtype. The rows are split
    into chunks of about 16384 values (and long rows into blocks of columns) that
    threads sum in parallel; the chunks' sums are then added in order, so the bits
    depend on the shape alone.

    >>> sum_leading(np.ones((4, 3), np.float32))
    array([4., 4., 4.], dtype=float32)
    """
    arr = _float_array(x, "sum_leading", "x", (2,))
    out = np.zeros(arr.shape[1], dtype=arr.dtype)
    if arr.size == 0:
        return out
    if arr.dtype == np.float32:
        _sum_leading[float](arr, out)
    else:
        _sum_leading[double](arr, out)
    return out


cdef struct ColumnPlan:
    # How _column_sums splits a (rows, cols) array, from its shape alone. A task sums
    # a chunk of chunk_rows rows over a block of at most COLUMN_BLOCK columns into
    # the chunk's row of partial sums, one double per column. Rows of at most
    # COLUMN_BLOCK / 2 values are taken fold at a time: fold consecutive rows are one
    # contiguous line of fold * cols values, summed as columns and folded back to
    # cols sums at the end of the task, so the loop along a line stays long enough
    # to vectorize (a (60000, 10) bias gradient sums lines of 250 values).
    Py_ssize_t rows, cols
    Py_ssize_t fold        # rows per line
    Py_ssize_t width       # values per line: fold * cols, or a block's COLUMN_BLOCK
    Py_ssize_t blocks      # column blocks per chunk (1 when folding)
    Py_ssize_t chunk_rows  # rows per chunk: about SUM_CHUNK values, a multiple of fold
    Py_ssize_t chunks


cdef ColumnPlan _column_plan(Py_ssize_t rows, Py_ssize_t cols) noexcept nogil:
    # rows, cols > 0
    cdef ColumnPlan plan
    plan.rows = rows
    plan.cols = cols
    if cols <= COLUMN_BLOCK // 2:
        plan.fold = COLUMN_BLOCK // cols
        plan.width = plan.fold * cols
        plan.blocks = 1
    else:
        plan.fold = 1
        plan.width = COLUMN_BLOCK
        plan.blocks = (cols + COLUMN_BLOCK - 1) // COLUMN_BLOCK
    plan.chunk_rows = plan.fold * max(1, SUM_CHUNK // plan.width)
    plan.chunks = (rows + plan.chunk_rows - 1) // plan.chunk_rows
    return plan


cdef void _sum_leading(const floating[:, ::1] x, floating[::1] out) noexcept:
    cdef ColumnPlan plan = _column_plan(x.shape[0], x.shape[1])
    partial_array = np.empty((plan.chunks, plan.cols))
    cdef double[:, ::1] partial = partial_array
    with nogil:
        _column_sums(&x[0, 0], plan, &partial[0, 0])
        _channel_totals(&partial[0, 0], 1, plan.cols, 1, out)


cdef void _column_sums(const floating* x, ColumnPlan plan, double* partial) noexcept nogil:
    # partial[:cols] = x.reshape(rows, cols).sum(axis=0), through partial's chunks rows:
    # each task fills its chunk's row (its block of it), then the rows are added in
    # chunk order into the first
    cdef int threads = _threads_for(plan.rows * plan.cols // SUM_CHUNK)
    cdef Py_ssize_t col_blocks = (plan.cols + COLUMN_BLOCK - 1) // COLUMN_BLOCK
    cdef int add_threads = _threads_for(min(col_blocks, plan.chunks * plan.cols // SUM_CHUNK))
    cdef Py_ssize_t task, block
    for task in prange(plan.chunks * plan.blocks, num_threads=threads, schedule="static",
                       use_threads_if=threads > 1):
        _column_task(x, plan, task, partial)
    if plan.chunks > 1:
        for block in prange(col_blocks, num_threads=add_threads, schedule="static",
                            use_threads_if=add_threads > 1):
            _add_chunk_rows(plan, block, partial)


cdef void _column_task(const floating* x, ColumnPlan plan, Py_ssize_t task,
                       double* partial) noexcept nogil:
    # partial[chunk, start:start + width] = x[rows of the chunk, start:start + width].sum(axis=0)
    # (all cols when folding), with x seen as lines of plan.width values, plan.fold rows
    # apart; four lines are added together before they meet the accumulators, which
    # saves three of every four loads and stores of them
    cdef double acc[COLUMN_BLOCK]
    cdef Py_ssize_t chunk = task // plan.blocks
    cdef Py_ssize_t start = (task % plan.blocks) * COLUMN_BLOCK
    cdef Py_ssize_t first = chunk * plan.chunk_rows
    cdef Py_ssize_t rows = min(first + plan.chunk_rows, plan.rows) - first
    cdef Py_ssize_t lines = rows // plan.fold
    cdef Py_ssize_t quads = lines - lines % 4
    cdef Py_ssize_t step = plan.fold * plan.cols
    cdef Py_ssize_t width = plan.width
    cdef const floating* base = x + first * plan.cols + start
    cdef const floating* r0
    cdef const floating* r1
    cdef const floating* r2
    cdef const floating* r3
    cdef double* sums = partial + chunk * plan.cols + start
    cdef double total
    cdef Py_ssize_t i, j, k
    if plan.fold == 1:
        width = min(start + COLUMN_BLOCK, plan.cols) - start
    for j in range(width):
        acc[j] = 0.0
    for i in range(0, quads, 4):
        r0 = base + i * step
        r1 = r0 + step
        r2 = r1 + step
        r3 = r2 + step
        for j in range(width):
            acc[j] += (<double>r0[j] + r1[j]) + (<double>r2[j] + r3[j])
    for i in range(quads, lines):
        r0 = base + i * step
        for j in range(width):
            acc[j] += r0[j]
    # the chunk's last rows that do not fill a line (the array's last chunk only)
    for i in range(lines * plan.fold, rows):
        r0 = base + i * plan.cols
        for j in range(plan.cols):
            acc[j] += r0[j]
    if plan.fold == 1:
        for j in range(width):
            sums[j] = acc[j]
    else:
        for j in range(plan.cols):
            total = acc[j]
            for k in range(1, plan.fold):
                total = total + acc[k * plan.cols + j]
            sums[j] = total


cdef void _add_chunk_rows(ColumnPlan plan, Py_ssize_t block, double* partial) noexcept nogil:
    # partial[0, cols of the block] += partial[k, same cols] for k = 1, 2, ... in order
    cdef Py_ssize_t start = block * COLUMN_BLOCK
    cdef Py_ssize_t stop = min(start + COLUMN_BLOCK, plan.cols)
    cdef const double* row
    cdef Py_ssize_t k, j
    for k in range(1, plan.chunks):
        row = partial + k * plan.cols
        for j in range(start, stop):
            partial[j] += row[j]


cdef inline void _two_pass(const floating* p, Py_ssize_t segments, Py_ssize_t length,
                           Py_ssize_t stride, double* mean, double* m2) noexcept nogil:
    # mean and sum of squared deviations of the values p[i * stride + j] (i < segments,
    # j < length): one pass for the mean, a second for the deviations from it
    cdef double total = 0.0
    cdef double m
    cdef Py_ssize_t i
    m = _sum_segments(p, segments, length, stride) / <double>(segments * length)
    for i in range(segments):
        total = total + _sum_squared_deviation(p + i * stride, length, m)
    mean[0] = m
    m2[0] = total


cdef inline void _merge_moments(double* count, double* mean, double* m2, double part_count,
                                double part_mean, double part_m2) noexcept nogil:
    # (count, mean, m2) of a set of values, updated to include a disjoint part of
    # them given by its own (count, mean, m2) (Chan, Golub and LeVeque's pairwise
    # update): only differences of means are squared, so a large common offset
    # cancels before any rounding
    cdef double total = count[0] + part_count
    cdef double delta = part_mean - mean[0]
    if count[0] == 0.0:
        mean[0] = part_mean
        m2[0] = part_m2
    else:
        mean[0] = mean[0] + delta * (part_count / total)
        m2[0] = m2[0] + part_m2 + delta * delta * (count[0] * part_count / total)
    count[0] = total


cdef inline void _moments(const floating* p, Py_ssize_t segments, Py_ssize_t length,
                          Py_ssize_t stride, double* mean, double* var) noexcept nogil:
    # mean and biased variance of the values p[i * stride + j] (i < segments, j < length)
    # with double accumulators: the statistics core of every normalization (a
    # batch-norm channel is N segments of S values, a group one segment of K * S).
    # Up to MOMENT_DIRECT values, two passes over all of them (they stay in L2 for
    # the second). Beyond, two passes over each piece of at most MOMENT_CHUNK values
    # (whole segments, or pieces of one long segment), the pieces' statistics merged
    # in order: a channel too large for L2 is read from L3 or memory once instead of
    # twice (on this machine its 32 MiB L3 held a 1.6 MB channel, and the pieces
    # measured no slower and no faster), and the pieces follow from the shape
    # alone, so the bits never depend on the thread count.
    cdef double count = 0.0
    cdef double m = 0.0
    cdef double m2 = 0.0
    cdef double part_mean, part_m2
    cdef Py_ssize_t i, j, group, piece
    if segments * length <= MOMENT_DIRECT:
        _two_pass(p, segments, length, stride, &m, &m2)
        mean[0] = m
        var[0] = m2 / <double>(segments * length)
        return
    if length <= MOMENT_CHUNK:
        # whole segments, MOMENT_CHUNK // length at a time
        group = MOMENT_CHUNK // length
        i = 0
        while i < segments:
            piece = min(group, segments - i)
            _two_pass(p + i * stride, piece, length, stride, &part_mean, &part_m2)
            _merge_moments(&count, &m, &m2, <double>(piece * length), part_mean, part_m2)
            i += piece
    else:
        for i in range(segments):
            j = 0
            while j < length:
                piece = min(<Py_ssize_t>MOMENT_CHUNK, length - j)
                _two_pass(p + i * stride + j, 1, piece, 0, &part_mean, &part_m2)
                _merge_moments(&count, &m, &m2, <double>piece, part_mean, part_m2)
                j += piece
    mean[0] = m
    var[0] = m2 / count


# ---------------------------------------------------------------- per-channel sums

def sum_channels(x):
    """Sum a (A, C, B) array over its first and last axes: ``x.sum(axis=(0, 2))``, shape (C,).

    With A = N and B = H * W this is the per-channel sum of an (N, C, H, W) tensor
    (a convolution's bias gradient); any reduction over a prefix and a suffix of
    axes folds to this shape, a full sum to (1, 1, size). Accumulates in double.
    Long segments x[a, c, :] (B >= 256, or B >= 16 A) are summed one by one, in
    pieces of at most 16384 values, by threads taking consecutive pieces; shorter
    ones are summed as the columns of the (A, C * B) array, as ``sum_leading``
    does. The partial sums are then added in order, so the bits depend on the
    shape alone.

    >>> sum_channels(np.ones((2, 3, 5)))
    array([10., 10., 10.])
    """
    arr = _float_array(x, "sum_channels", "x", (3,))
    out = np.zeros(arr.shape[1], dtype=arr.dtype)
    if arr.size == 0:
        return out
    if arr.dtype == np.float32:
        _sum_channels[float](arr, out)
    else:
        _sum_channels[double](arr, out)
    return out


cdef void _sum_channels(const floating[:, :, ::1] x, floating[::1] out) noexcept:
    # A segment summed on its own costs a few additions of its lanes; summed as
    # columns, every row of the chunk's partial sums costs a pass over C * B
    # doubles: segments win from B >= 16 A (measured on (A, C, B) float32 arrays of
    # 5e5 values: (1, C, 16) and (2, C, 64) as segments, (4, C, 16) as columns)
    # and from B >= SEGMENT_MIN at any A.
    cdef Py_ssize_t samples = x.shape[0]
    cdef Py_ssize_t channels = x.shape[1]
    cdef Py_ssize_t length = x.shape[2]
    if length >= SEGMENT_MIN or length >= 16 * samples:
        _sum_channel_segments(x, out)
        return
    cdef ColumnPlan plan = _column_plan(samples, channels * length)
    partial_array = np.empty((plan.chunks, plan.cols))
    cdef double[:, ::1] partial = partial_array
    with nogil:
        _column_sums(&x[0, 0, 0], plan, &partial[0, 0])
        _channel_totals(&partial[0, 0], 1, channels, length, out)


cdef void _sum_channel_segments(const floating[:, :, ::1] x, floating[::1] out) noexcept:
    # each segment x[a, c, :] summed in pieces (_segment_piece_sums); then out[c] adds
    # channel c's pieces in order
    cdef Py_ssize_t channels = x.shape[1]
    cdef Py_ssize_t per_segment = _pieces_per_segment(x.shape[2])
    pieces_array = np.empty(x.shape[0] * channels * per_segment)
    cdef double[::1] pieces = pieces_array
    with nogil:
        _segment_piece_sums(&x[0, 0, 0], x.shape[0] * channels, x.shape[2], &pieces[0])
        _channel_totals(&pieces[0], x.shape[0], channels, per_segment, out)


cdef inline Py_ssize_t _pieces_per_segment(Py_ssize_t length) noexcept nogil:
    # a segment of length > 0 values is summed in this many pieces of at most SUM_CHUNK
    return (length + SUM_CHUNK - 1) // SUM_CHUNK


cdef void _segment_piece_sums(const floating* x, Py_ssize_t segments, Py_ssize_t length,
                              double* pieces) noexcept nogil:
    # pieces[s * per_segment + k] = x[s * length + k * piece:][:piece].sum() for the
    # consecutive segments of length values: each cut into per_segment pieces of equal
    # length (give or take one value) of at most SUM_CHUNK values; the pieces in memory
    # order, per_task of them (about SUM_CHUNK values) per task, threads taking tasks
    cdef Py_ssize_t per_segment = _pieces_per_segment(length)
    cdef Py_ssize_t piece = (length + per_segment - 1) // per_segment
    cdef Py_ssize_t per_task = max(1, SUM_CHUNK // length)
    cdef Py_ssize_t count = segments * per_segment
    cdef int threads = _threads_for(segments * length // SUM_CHUNK)
    cdef Py_ssize_t task
    for task in prange((count + per_task - 1) // per_task, num_threads=threads,
                       schedule="static", use_threads_if=threads > 1):
        _sum_pieces(x, length, per_segment, piece, task * per_task,
                    min(task * per_task + per_task, count), pieces)


cdef void _sum_pieces(const floating* x, Py_ssize_t length, Py_ssize_t per_segment,
                      Py_ssize_t piece, Py_ssize_t first, Py_ssize_t stop,
                      double* pieces) noexcept nogil:
    # pieces[first:stop] of consecutive segments of length values, cut into per_segment
    # pieces of piece values (the last one shorter)
    cdef Py_ssize_t q, offset
    for q in range(first, stop):
        offset = (q % per_segment) * piece
        pieces[q] = _sum(x + (q // per_segment) * length + offset,
                         min(offset + piece, length) - offset)


def sum_all(x):
    """The sum of every value of a float32/float64 array, as a 0-d array of its dtype.

    ``x.sum()`` accumulated in double, in memory order: the same pieces and the
    same bits as ``sum_channels(x.reshape(1, 1, -1))`` without its bookkeeping (a
    full sum of a million values takes about 60 us, and that bookkeeping cost 6).

    >>> sum_all(np.ones((3, 4), np.float32))
    array(12., dtype=float32)
    """
    arr = _float_array(x, "sum_all", "x", None)
    cdef double total
    if arr.dtype == np.float32:
        total = _sum_all[float](arr.reshape(-1))
    else:
        total = _sum_all[double](arr.reshape(-1))
    return np.array(total, dtype=arr.dtype)


cdef double _sum_all(const floating[::1] x) except? -1.0:
    # x as one segment summed in pieces (_segment_piece_sums), which are then added in order
    cdef Py_ssize_t n = x.shape[0]
    if n == 0:
        return 0.0
    cdef Py_ssize_t count = _pieces_per_segment(n)
    cdef double total = 0.0
    cdef Py_ssize_t q
    # the pieces' sums on the stack up to 64 pieces (a million values), else on the heap
    cdef double on_stack[64]
    cdef double* pieces = on_stack
    if count > 64:
        pieces = <double*>malloc(count * sizeof(double))
        if pieces == NULL:
            raise MemoryError(f"sum_all: no memory for {count} partial sums")
    with nogil:
        _segment_piece_sums(&x[0], 1, n, pieces)
        for q in range(count):
            total = total + pieces[q]
    if pieces != on_stack:
        free(pieces)
    return total


# ---------------------------------------------------------------- row-wise log-sum-exp

cdef inline floating _max_of(const floating* p, Py_ssize_t n) noexcept nogil:
    # max(p[:n]); a NaN anywhere gives NaN, as numpy and torch do
    cdef floating best = p[0]
    cdef Py_ssize_t k
    for k in range(1, n):
        if p[k] > best or p[k] != p[k]:
            best = p[k]
            if best != best:
                return best
    return best


cdef inline double _logsumexp(const floating* p, Py_ssize_t n) noexcept nogil:
    # m + log(sum(exp(p - m))) with m = max(p); +-inf rows give m
    cdef double m = _max_of(p, n)
    cdef double total = 0.0
    cdef Py_ssize_t k
    if m == INFINITY or m == -INFINITY or m != m:
        return m
    for k in range(n):
        total += exp(p[k] - m)
    return m + log(total)


def logsumexp_rows(x):
    """``log(exp(x).sum(axis=1))`` of a (N, K) array, computed stably; shape (N,).

    >>> logsumexp_rows(np.zeros((2, 4)))
    array([1.38629436, 1.38629436])
    """
    arr = _float_array(x, "logsumexp_rows", "x", (2,))
    if arr.shape[1] == 0:
        raise ValueError(f"logsumexp_rows: rows are empty (shape {arr.shape})")
    out = np.empty(arr.shape[0], dtype=np.float64)
    if arr.size == 0:
        return out.astype(arr.dtype)
    if arr.dtype == np.float32:
        _logsumexp_rows[float](arr, out)
    else:
        _logsumexp_rows[double](arr, out)
    return out.astype(arr.dtype, copy=False)


cdef void _logsumexp_rows(const floating[:, ::1] x, double[::1] out) noexcept:
    cdef Py_ssize_t rows = x.shape[0]
    cdef int threads = _threads_for(rows // ROWS_PER_THREAD)
    cdef Py_ssize_t i
    with nogil:
        for i in prange(rows, num_threads=threads, schedule="static",
                        use_threads_if=threads > 1):
            out[i] = _logsumexp(&x[i, 0], x.shape[1])


# ---------------------------------------------------------------- softmax cross-entropy

cdef tuple _xent_inputs(logits, labels, str name):
    """(N, K) logits as a float array and (N,) labels in [0, K) as int64, checked."""
    arr = _float_array(logits, name, "logits", (2,))
    if arr.shape[1] == 0:
        raise ValueError(f"{name}: logits have no classes (shape {arr.shape})")
    # the kernels index each row with its label: the range check protects memory
    return arr, _class_labels(labels, arr.shape[0], arr.shape[1], name)


cdef object _class_labels(labels, Py_ssize_t rows, Py_ssize_t classes, str name):
    """(N,) integer labels in [0, classes) as C-contiguous int64, as ``_checks.class_labels``
    gives them: the range checked in a typed loop (numpy's min and max cost more than a
    small kernel); any refusal, and uint64 (whose cast to int64 could wrap), by it."""
    array = np.asarray(labels)
    if array.dtype.kind != "i" or array.shape != (rows,):
        return _checks.class_labels(array, rows, classes, name)
    lab = np.ascontiguousarray(array, dtype=np.int64)
    cdef const int64_t[::1] values = lab
    cdef Py_ssize_t i
    cdef bint in_range = True
    with nogil:
        for i in range(rows):
            if values[i] < 0 or values[i] >= classes:
                in_range = False
                break
    return lab if in_range else _checks.class_labels(array, rows, classes, name)


def softmax_xent_forward(logits, labels, label_smoothing=0.0):
    """Mean softmax cross-entropy of (N, K) ``logits`` against (N,) integer ``labels``.

    With label smoothing e the target is (1 - e) * one_hot + e / K, as in PyTorch
    (``nn.functional.cross_entropy`` checks that e is in [0, 1]). Returns
    ``(loss, lse)``: the mean loss (a float) and each row's log-sum-exp (N,)
    float64, which :func:`softmax_xent_backward` takes.

    >>> loss, lse = softmax_xent_forward(np.zeros((2, 4)), np.array([0, 3]))
    >>> round(loss, 6)
    1.386294
    """
    name = "softmax_xent_forward"
    arr, lab = _xent_inputs(logits, labels, name)
    smoothing = float(label_smoothing)
    lse = np.empty(arr.shape[0], dtype=np.float64)
    losses = np.empty(arr.shape[0], dtype=np.float64)
    if arr.shape[0] == 0:
        return float("nan"), lse
    if arr.dtype == np.float32:
        _xent_forward[float](arr, lab, smoothing, lse, losses)
    else:
        _xent_forward[double](arr, lab, smoothing, lse, losses)
    return float(losses.sum() / arr.shape[0]), lse


cdef void _xent_forward(const floating[:, ::1] x, const int64_t[::1] labels, double smoothing,
                        double[::1] lse, double[::1] losses) noexcept:
    cdef Py_ssize_t rows = x.shape[0]
    cdef int threads = _threads_for(rows // ROWS_PER_THREAD)
    cdef Py_ssize_t i
    with nogil:
        for i in prange(rows, num_threads=threads, schedule="static",
                        use_threads_if=threads > 1):
            _xent_forward_row(x, labels, smoothing, lse, losses, i)


cdef void _xent_forward_row(const floating[:, ::1] x, const int64_t[::1] labels,
                            double smoothing, double[::1] lse, double[::1] losses,
                            Py_ssize_t i) noexcept nogil:
    # -log p_y weighted 1 - e, plus e times the mean over classes of -log p_k
    cdef Py_ssize_t classes = x.shape[1]
    cdef double row_lse = _logsumexp(&x[i, 0], classes)
    lse[i] = row_lse
    losses[i] = (row_lse - (1.0 - smoothing) * x[i, labels[i]]
                 - smoothing * _sum(&x[i, 0], classes) / classes)


def softmax_xent_backward(logits, labels, lse, grad_scale, label_smoothing=0.0):
    """Gradient of the softmax cross-entropy with respect to the logits, (N, K).

    Row i is ``(softmax(logits[i]) - target[i]) * grad_scale[i]``; for the mean
    loss with upstream gradient g, ``grad_scale`` is g / N (a number is used for
    every row). ``lse`` is what :func:`softmax_xent_forward` returned.

    >>> logits = np.zeros((2, 2))
    >>> _, lse = softmax_xent_forward(logits, np.array([0, 1]))
    >>> softmax_xent_backward(logits, np.array([0, 1]), lse, 0.5)
    array([[-0.25,  0.25],
           [ 0.25, -0.25]])
    """
    name = "softmax_xent_backward"
    arr, lab = _xent_inputs(logits, labels, name)
    smoothing = float(label_smoothing)
    lse_arr = np.ascontiguousarray(lse, dtype=np.float64)
    if lse_arr.shape != (arr.shape[0],):
        raise ValueError(f"{name}: expected lse of shape ({arr.shape[0]},), got {lse_arr.shape}")
    scale = np.asarray(grad_scale, dtype=np.float64)
    if scale.ndim == 0:
        scale = np.full(arr.shape[0], scale)  # (cheaper than broadcast_to + a copy)
    else:
        scale = np.ascontiguousarray(np.broadcast_to(scale, (arr.shape[0],)))
    out = np.empty_like(arr)
    if arr.size == 0:
        return out
    if arr.dtype == np.float32:
        _xent_backward[float](arr, lab, lse_arr, scale, smoothing, out)
    else:
        _xent_backward[double](arr, lab, lse_arr, scale, smoothing, out)
    return out


cdef void _xent_backward(const floating[:, ::1] x, const int64_t[::1] labels,
                         const double[::1] lse, const double[::1] scale, double smoothing,
                         floating[:, ::1] out) noexcept:
    cdef Py_ssize_t rows = x.shape[0]
    cdef int threads = _threads_for(rows // ROWS_PER_THREAD)
    cdef Py_ssize_t i
    with nogil:
        for i in prange(rows, num_threads=threads, schedule="static",
                        use_threads_if=threads > 1):
            _xent_backward_row(x, labels, lse, scale, smoothing, out, i)


cdef void _xent_backward_row(const floating[:, ::1] x, const int64_t[::1] labels,
                             const double[::1] lse, const double[::1] scale,
                             double smoothing, floating[:, ::1] out,
                             Py_ssize_t i) noexcept nogil:
    # out[i] = (exp(x[i] - lse[i]) - target[i]) * scale[i]
    cdef Py_ssize_t classes = x.shape[1]
    cdef double uniform = smoothing / classes
    cdef double row_lse = lse[i]
    cdef double row_scale = scale[i]
    cdef Py_ssize_t k
    for k in range(classes):
        out[i, k] = <floating>((exp(x[i, k] - row_lse) - uniform) * row_scale)
    out[i, labels[i]] = <floating>(out[i, labels[i]] - (1.0 - smoothing) * row_scale)


# ---------------------------------------------------------------- optimizer updates

# An optimizer updates every parameter of a group in one call. Each parameter is cut
# into slabs of at most VALUES_PER_THREAD consecutive elements (fixed by its size
# alone, so the bits never depend on the thread count); the threads share the slabs
# of all the parameters, and each element is read and written once, with no
# temporaries. A group's parameters have any shapes, so the kernels take raw pointers
# that the wrappers check (dtype, shape, C-contiguity, writability) instead of typed
# memoryviews. The arithmetic, its order and its rounding (every scalar rounded to the
# parameter's dtype) are torch.optim's single-tensor SGD and Adam steps.

from cpython.buffer cimport PyBUF_SIMPLE, PyBUF_WRITABLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.stdint cimport uintptr_t
from libc.stdlib cimport qsort

cdef enum:
    SGD_RULE = 0
    ADAM_RULE = 1


cdef struct _Rule:
    # one optimizer step's hyper-parameters (as Python floats: each kernel rounds them
    # to the parameter's dtype, as torch does with its Scalar arguments)
    int kind
    double lr, momentum, dampening, weight_decay, beta1, beta2, eps
    bint nesterov, maximize, decoupled, amsgrad


cdef struct _Slab:
    # ``count`` consecutive elements of one parameter, its gradient and its state arrays
    # (``state`` entries NULL where the rule keeps no such state), of the kernel's dtype
    void* param
    const void* grad
    void* state[3]  # SGD: momentum buffer; Adam: exp_avg, exp_avg_sq, max_exp_avg_sq
    Py_ssize_t count
    double step_size  # Adam: lr / (1 - beta1^t), t this parameter's step
    double bias_correction2_sqrt  # Adam: (1 - beta2^t) ** 0.5
    bint fresh  # SGD: the momentum buffer starts at this step (buf = g)


cdef struct _Span:
    # the bytes [start, stop) of one array an update reads or writes
    uintptr_t start, stop
    bint written
    Py_ssize_t row


cdef list _operand_list(values, str name, str what, Py_ssize_t count):
    """``values`` (a list or tuple, one entry per parameter) as a list."""
    if not isinstance(values, (list, tuple)):
        raise TypeError(
            f"{name}: expected {what} as a list or tuple of arrays, got {type(values).__name__}"
        )
    if len(values) != count:
        raise ValueError(f"{name}: expected {count} {what}, one per parameter, got {len(values)}")
    return list(values)


cdef object _update_param(p, str name, Py_ssize_t i):
    """params[i]: a float32 or float64 numpy array that can be written."""
    if not isinstance(p, np.ndarray):
        raise TypeError(
            f"{name}: params[{i}] must be a numpy array (it is updated in place), "
            f"got {type(p).__name__}"
        )
    if p.dtype != np.float32 and p.dtype != np.float64:
        raise TypeError(f"{name}: params[{i}] must be float32 or float64, got dtype {p.dtype}")
    if not p.flags.writeable:
        raise ValueError(f"{name}: params[{i}] is read-only but is updated in place")
    return p


cdef object _update_operand(a, p, str name, str what, Py_ssize_t i, bint written):
    """Parameter i's gradient (read) or state array (``written``): its shape and dtype."""
    if written and not isinstance(a, np.ndarray):
        raise TypeError(
            f"{name}: {what}[{i}] must be a numpy array (it is updated in place), "
            f"got {type(a).__name__}"
        )
    arr = np.asarray(a)
    if arr.dtype != p.dtype:
        raise TypeError(f"{name}: {what}[{i}] has dtype {arr.dtype}, params[{i}] {p.dtype}")
    if arr.shape != p.shape:
        raise ValueError(f"{name}: {what}[{i}] has shape {arr.shape}, params[{i}] {p.shape}")
    if written and not arr.flags.writeable:
        raise ValueError(f"{name}: {what}[{i}] is read-only but is updated in place")
    return arr


cdef object _staged(arr, list writebacks, bint written):
    """``arr`` as a C-contiguous array: itself, or a copy (written back afterwards)."""
    if arr is None or arr.flags.c_contiguous:
        return arr
    work = np.ascontiguousarray(arr)
    if written:
        writebacks.append((arr, work))
    return work


cdef object _staged_operand(values, Py_ssize_t i, p, str name, str what, bint written,
                            list writebacks):
    """``values[i]``, checked against parameter ``p`` and staged (see _staged)."""
    return _staged(_update_operand(values[i], p, name, what, i, written), writebacks, written)


cdef double _step_count(step, str name, Py_ssize_t i) except? -1:
    """steps[i]: a real number >= 1 (a parameter's step count, this step included)."""
    real = isinstance(step, (int, float, np.integer, np.floating))
    if isinstance(step, (bool, np.bool_)) or not real or not step >= 1:
        raise ValueError(f"{name}: steps[{i}] must be a number >= 1, got {step!r}")
    return float(step)


cdef uintptr_t _address(arr, bint written) except? 0:
    # the data pointer of a checked C-contiguous array (our references keep it alive)
    cdef Py_buffer view
    PyObject_GetBuffer(arr, &view, PyBUF_WRITABLE if written else PyBUF_SIMPLE)
    cdef uintptr_t address = <uintptr_t>view.buf
    PyBuffer_Release(&view)
    return address


cdef int _span_order(const void* a, const void* b) noexcept nogil:
    cdef uintptr_t left = (<const _Span*>a).start
    cdef uintptr_t right = (<const _Span*>b).start
    return (left > right) - (left < right)


cdef bint _any_overlap(_Span* spans, Py_ssize_t count) noexcept:
    # whether a written span shares a byte with any other span (sorts ``spans``)
    cdef uintptr_t any_stop = 0
    cdef uintptr_t written_stop = 0
    cdef Py_ssize_t k
    qsort(spans, count, sizeof(_Span), _span_order)
    for k in range(count):
        if spans[k].start < (any_stop if spans[k].written else written_stop):
            return True
        any_stop = max(any_stop, spans[k].stop)
        if spans[k].written:
            written_stop = max(written_stop, spans[k].stop)
    return False


cdef bint _overlaps_written(const _Span* spans, Py_ssize_t count, uintptr_t start,
                            uintptr_t stop) noexcept:
    # whether the bytes [start, stop) share one with a written span
    cdef Py_ssize_t k
    for k in range(count):
        if spans[k].written and spans[k].start < stop and start < spans[k].stop:
            return True
    return False


cdef bint _row_overlaps_itself(const _Span* spans, Py_ssize_t count, Py_ssize_t row) noexcept:
    # whether two of the arrays parameter ``row``'s update writes share a byte
    cdef Py_ssize_t j, k
    for j in range(count):
        if spans[j].row != row or not spans[j].written:
            continue
        for k in range(j + 1, count):
            if (spans[k].row == row and spans[k].written and spans[k].start < spans[j].stop
                    and spans[j].start < spans[k].stop):
                return True
    return False


cdef void _run_update(_Rule rule, list rows, str name) except *:
    """Apply ``rule`` to ``rows``: per parameter, a tuple (param, grad, state0, state1,
    state2, step_size, bias_correction2_sqrt, fresh) of checked C-contiguous arrays
    (None for the states the rule keeps none of).

    When no array the call writes shares memory with another array, every slab is
    updated in one parallel pass. Otherwise the parameters are updated one after the
    other, in order, each reading a copy of its gradient (taken just before) if the
    gradient shares memory with an array the call writes: what a loop of numpy updates
    does. A parameter whose own written arrays overlap each other is refused.
    """
    cdef Py_ssize_t n = len(rows)
    cdef Py_ssize_t used = 0
    cdef Py_ssize_t i, k
    cdef uintptr_t start
    rows = [row for row in rows if row[0].size]
    addresses = [
        [None if arr is None else _address(arr, k != 1) for k, arr in enumerate(row[:5])]
        for row in rows
    ]
    n = len(rows)
    cdef _Span* spans = <_Span*>PyMem_Malloc(max(n, 1) * 5 * sizeof(_Span))
    if spans == NULL:
        raise MemoryError()
    try:
        for i in range(n):
            for k in range(5):
                if addresses[i][k] is None:
                    continue
                spans[used].start = addresses[i][k]
                spans[used].stop = spans[used].start + rows[i][k].nbytes
                spans[used].written = k != 1
                spans[used].row = i
                used += 1
        if not _any_overlap(spans, used):
            _update_slabs(rule, rows, addresses, _num_threads)
            return
        for i in range(n):
            if _row_overlaps_itself(spans, used, i):
                raise ValueError(
                    f"{name}: a parameter and its state arrays share memory; each array the "
                    "update writes needs memory of its own"
                )
            row, address = rows[i], addresses[i]
            start = address[1]
            if _overlaps_written(spans, used, start, start + row[1].nbytes):
                copy = np.array(row[1])
                row = (row[0], copy, *row[2:])
                address = [address[0], _address(copy, False), *address[2:]]
            _update_slabs(rule, [row], [address], 1)
    finally:
        PyMem_Free(spans)


cdef void _update_slabs(_Rule rule, list rows, list addresses, int max_threads) except *:
    """Cut ``rows`` (non-empty, with the data ``addresses`` of their arrays) into slabs
    and run the rule's kernel over them, float32 and float64 parameters apart, with up
    to ``max_threads`` threads."""
    cdef Py_ssize_t counts[2]
    cdef Py_ssize_t values[2]
    cdef Py_ssize_t used[2]
    cdef _Slab* tables[2]
    cdef Py_ssize_t size, start, item, j, kind, i
    cdef _Slab* slab
    counts[0] = counts[1] = values[0] = values[1] = used[0] = used[1] = 0
    for row in rows:
        kind = 1 if row[0].dtype == np.float64 else 0
        counts[kind] += (row[0].size + VALUES_PER_THREAD - 1) // VALUES_PER_THREAD
        values[kind] += row[0].size
    tables[0] = <_Slab*>PyMem_Malloc(max(counts[0], 1) * sizeof(_Slab))
    tables[1] = <_Slab*>PyMem_Malloc(max(counts[1], 1) * sizeof(_Slab))
    try:
        if tables[0] == NULL or tables[1] == NULL:
            raise MemoryError()
        for i in range(len(rows)):
            row, address = rows[i], addresses[i]
            size = row[0].size
            item = row[0].itemsize
            kind = 1 if row[0].dtype == np.float64 else 0
            for start in range(0, size, VALUES_PER_THREAD):
                slab = &tables[kind][used[kind]]
                used[kind] += 1
                slab.count = min(size - start, VALUES_PER_THREAD)
                slab.param = <void*>(<uintptr_t>address[0] + start * item)
                slab.grad = <const void*>(<uintptr_t>address[1] + start * item)
                for j in range(3):
                    if address[2 + j] is None:
                        slab.state[j] = NULL
                    else:
                        slab.state[j] = <void*>(<uintptr_t>address[2 + j] + start * item)
                slab.step_size = row[5]
                slab.bias_correction2_sqrt = row[6]
                slab.fresh = row[7]
        # threads only where each has UPDATE_SLABS_PER_THREAD slabs' worth of work: a
        # smaller group (the BN paper's MLP, 100k values) updates on the calling thread;
        # waking the pool for it left its workers spinning into the next forward, which
        # then ran 1.4x slower next to numpy's BLAS threads (MLP step 1.84 -> 1.35 ms)
        if counts[0]:
            _run_slabs[float](rule, tables[0], counts[0], min(max_threads, _threads_for(
                values[0] // (UPDATE_SLABS_PER_THREAD * VALUES_PER_THREAD))), 0)
        if counts[1]:
            _run_slabs[double](rule, tables[1], counts[1], min(max_threads, _threads_for(
                values[1] // (UPDATE_SLABS_PER_THREAD * VALUES_PER_THREAD))), 0)
    finally:
        PyMem_Free(tables[0])
        PyMem_Free(tables[1])


cdef void _run_slabs(_Rule rule, const _Slab* slabs, Py_ssize_t count, int threads,
                     floating dtype_marker) noexcept:
    # the hyper-parameters rounded to the parameters' dtype once, as torch rounds a
    # Scalar argument to the tensor's type; then every slab, split over ``threads``.
    # Options that are not a choice of arithmetic become factors that change nothing
    # when off (a sign of 1, a decay of 1, Nesterov's 0 + 1 * buf), so the loops have
    # no branches and vectorize.
    cdef floating sign = -1 if rule.maximize else 1
    cdef floating neg_lr = <floating>(-rule.lr)
    cdef floating momentum = <floating>rule.momentum
    cdef floating dampening_complement = <floating>(1.0 - rule.dampening)
    cdef floating weight_decay = <floating>rule.weight_decay
    cdef floating decay = 1
    cdef floating lerp_weight = <floating>(1.0 - rule.beta1)
    cdef floating beta2 = <floating>rule.beta2
    cdef floating beta2_complement = <floating>(1.0 - rule.beta2)
    cdef floating eps = <floating>rule.eps
    cdef bint coupled = rule.weight_decay != 0 and not rule.decoupled
    cdef Py_ssize_t s
    if rule.decoupled and rule.weight_decay != 0:
        decay = <floating>(1.0 - rule.lr * rule.weight_decay)
    with nogil:
        if rule.kind == SGD_RULE:
            for s in prange(count, num_threads=threads, schedule="static",
                            use_threads_if=threads > 1):
                _sgd_slab(&slabs[s], sign, neg_lr, momentum, dampening_complement,
                          weight_decay, coupled, rule.nesterov)
        else:
            for s in prange(count, num_threads=threads, schedule="static",
                            use_threads_if=threads > 1):
                _adam_slab(&slabs[s], sign, lerp_weight, beta2, beta2_complement, eps,
                           weight_decay, decay, coupled, rule.amsgrad)


cdef void _sgd_slab(const _Slab* slab, floating sign, floating neg_lr, floating momentum,
                    floating dampening_complement, floating weight_decay, bint coupled,
                    bint nesterov) noexcept nogil:
    # one slab of torch.optim.SGD; the loop comes in a variant per (weight decay,
    # momentum) so that each compiles without branches
    cdef floating* p = <floating*>slab.param
    cdef const floating* g = <const floating*>slab.grad
    cdef floating* buf = <floating*>slab.state[0]
    # a new buffer (zeros) becomes the gradient: 0 * 0 + 1 * g, exactly g
    cdef floating keep = 0 if slab.fresh else momentum
    cdef floating scale = 1 if slab.fresh else dampening_complement
    # Nesterov: g + momentum * buf; otherwise buf, as 0 + 1 * buf
    cdef floating nesterov_coefficient = momentum if nesterov else 1
    cdef Py_ssize_t n = slab.count
    if buf == NULL:
        if coupled:
            _sgd_elements(p, g, buf, n, sign, neg_lr, weight_decay, 0, 0, False, 0, True, False)
        else:
            _sgd_elements(p, g, buf, n, sign, neg_lr, weight_decay, 0, 0, False, 0, False, False)
    elif coupled:
        _sgd_elements(p, g, buf, n, sign, neg_lr, weight_decay, keep, scale, nesterov,
                      nesterov_coefficient, True, True)
    else:
        _sgd_elements(p, g, buf, n, sign, neg_lr, weight_decay, keep, scale, nesterov,
                      nesterov_coefficient, False, True)


cdef inline void _sgd_elements(floating* p, const floating* g, floating* buf, Py_ssize_t n,
                               floating sign, floating neg_lr, floating weight_decay,
                               floating keep, floating scale, bint nesterov,
                               floating nesterov_coefficient, bint coupled,
                               bint with_momentum) noexcept nogil:
    # torch.optim.SGD per element: g = -grad if maximize; g = g + weight_decay * p;
    # with momentum buf = buf * momentum + (1 - dampening) * g (the first step: buf = g),
    # then g = g + momentum * buf (Nesterov) or buf; p = p + (-lr) * g
    cdef floating grad, velocity
    cdef Py_ssize_t i
    for i in range(n):
        grad = sign * g[i]
        if coupled:
            grad = grad + weight_decay * p[i]
        if with_momentum:
            velocity = buf[i] * keep + scale * grad
            buf[i] = velocity
            grad = (grad if nesterov else 0) + nesterov_coefficient * velocity
        p[i] = p[i] + neg_lr * grad


cdef void _adam_slab(const _Slab* slab, floating sign, floating lerp_weight, floating beta2,
                     floating beta2_complement, floating eps, floating weight_decay,
                     floating decay, bint coupled, bint amsgrad) noexcept nogil:
    # one slab of torch.optim.Adam(W); the loop comes in a variant per (AMSGrad, L2
    # weight decay) so that each compiles without branches
    cdef floating* p = <floating*>slab.param
    cdef const floating* g = <const floating*>slab.grad
    cdef floating* exp_avg = <floating*>slab.state[0]
    cdef floating* exp_avg_sq = <floating*>slab.state[1]
    cdef floating* max_exp_avg_sq = <floating*>slab.state[2]
    cdef floating neg_step_size = <floating>(-slab.step_size)
    cdef floating bias_correction2_sqrt = <floating>slab.bias_correction2_sqrt
    # torch's lerp, as its vectorized kernel computes it: for |w| < 0.5
    # m + w * (g - m), otherwise g + (w - 1) * (g - m)
    cdef bint small = (lerp_weight if lerp_weight >= 0 else -lerp_weight) < 0.5
    cdef floating lerp_coefficient = lerp_weight if small else lerp_weight - 1
    cdef Py_ssize_t n = slab.count
    if amsgrad:
        if coupled:
            _adam_elements(p, g, exp_avg, exp_avg_sq, max_exp_avg_sq, n, sign, small,
                           lerp_coefficient, beta2, beta2_complement, eps, weight_decay, decay,
                           neg_step_size, bias_correction2_sqrt, True, True)
        else:
            _adam_elements(p, g, exp_avg, exp_avg_sq, max_exp_avg_sq, n, sign, small,
                           lerp_coefficient, beta2, beta2_complement, eps, weight_decay, decay,
                           neg_step_size, bias_correction2_sqrt, False, True)
    elif coupled:
        _adam_elements(p, g, exp_avg, exp_avg_sq, max_exp_avg_sq, n, sign, small,
                       lerp_coefficient, beta2, beta2_complement, eps, weight_decay, decay,
                       neg_step_size, bias_correction2_sqrt, True, False)
    else:
        _adam_elements(p, g, exp_avg, exp_avg_sq, max_exp_avg_sq, n, sign, small,
                       lerp_coefficient, beta2, beta2_complement, eps, weight_decay, decay,
                       neg_step_size, bias_correction2_sqrt, False, False)


cdef inline void _adam_elements(floating* p, const floating* g, floating* exp_avg,
                                floating* exp_avg_sq, floating* max_exp_avg_sq, Py_ssize_t n,
                                floating sign, bint small, floating lerp_coefficient,
                                floating beta2, floating beta2_complement, floating eps,
                                floating weight_decay, floating decay,
                                floating neg_step_size, floating bias_correction2_sqrt,
                                bint coupled, bint amsgrad) noexcept nogil:
    # torch.optim.Adam(W) per element: g = -grad if maximize; p = p * (1 - lr * wd)
    # (decoupled; a decay of 1 otherwise) or g = g + wd * p; m = lerp(m, g, 1 - beta1);
    # v = v * beta2 + (1 - beta2) * g * g; vmax = maximum(vmax, v) (AMSGrad, NaN
    # propagating as torch.maximum); p = p + (-step_size) * m / (sqrt(v or vmax) /
    # sqrt(1 - beta2^t) + eps)
    cdef floating grad, param, avg, avg_sq, second
    cdef Py_ssize_t i
    for i in range(n):
        grad = sign * g[i]
        param = p[i] * decay
        if coupled:
            grad = grad + weight_decay * param
        avg = exp_avg[i]
        avg = (avg if small else grad) + lerp_coefficient * (grad - avg)
        avg_sq = exp_avg_sq[i] * beta2 + beta2_complement * grad * grad
        exp_avg[i] = avg
        exp_avg_sq[i] = avg_sq
        second = avg_sq
        if amsgrad:
            second = max_exp_avg_sq[i]
            second = avg_sq if (avg_sq > second or avg_sq != avg_sq) else second
            max_exp_avg_sq[i] = second
        p[i] = param + neg_step_size * avg / (<floating>sqrt(second) / bias_correction2_sqrt + eps)


def sgd_update(params, grads, momentum_buffers, lr, momentum=0.0, dampening=0.0,
               weight_decay=0.0, nesterov=False, maximize=False):
    """One ``torch.optim.SGD`` step over a group of parameters, in place, one pass each.

    ``params`` and ``grads`` are lists of float32/float64 arrays, each gradient of its
    parameter's shape and dtype; ``momentum_buffers`` a list with an array or None
    per parameter (or None when ``momentum`` is 0, which uses no buffer). Per element,
    in torch's order: ``g = -grad`` if ``maximize``; ``g = g + weight_decay * p``;
    with momentum ``buf = g`` on the first step (a None buffer, created here), else
    ``buf = buf * momentum + (1 - dampening) * g``, then ``g = g + momentum * buf``
    (``nesterov``) or ``g = buf``; ``p = p + (-lr) * g``. Every scalar is rounded to
    the parameter's dtype first. Parameters and buffers need not be contiguous.
    Returns the list of momentum buffers (the given ones, and the new ones).

    >>> p = np.ones(3); buffers = sgd_update([p], [np.ones(3)], [None], lr=0.1, momentum=0.9)
    >>> p, buffers[0]
    (array([0.9, 0.9, 0.9]), array([1., 1., 1.]))
    """
    name = "sgd_update"
    cdef _Rule rule
    rule.kind = SGD_RULE
    rule.lr, rule.momentum, rule.dampening = float(lr), float(momentum), float(dampening)
    rule.weight_decay = float(weight_decay)
    rule.nesterov, rule.maximize = bool(nesterov), bool(maximize)
    rule.beta1 = rule.beta2 = rule.eps = 0.0
    rule.decoupled = rule.amsgrad = False
    if not isinstance(params, (list, tuple)):
        raise TypeError(
            f"{name}: expected params as a list or tuple of arrays, got {type(params).__name__}"
        )
    count = len(params)
    grads = _operand_list(grads, name, "grads", count)
    use_momentum = rule.momentum != 0
    if momentum_buffers is None and not use_momentum:
        buffers = [None] * count
    else:
        buffers = _operand_list(momentum_buffers, name, "momentum_buffers", count)
    rows = []
    writebacks = []
    for i in range(count):
        p = _update_param(params[i], name, i)
        g = _update_operand(grads[i], p, name, "grads", i, False)
        fresh = False
        buf = None
        if use_momentum:
            if buffers[i] is None:
                # zeros, so that the first step's 0 * 0 + 1 * g is exactly g
                buffers[i] = buf = np.zeros(p.shape, dtype=p.dtype)
                fresh = True
            else:
                buf = _update_operand(buffers[i], p, name, "momentum_buffers", i, True)
        rows.append((
            _staged(p, writebacks, True), _staged(g, writebacks, False),
            _staged(buf, writebacks, True), None, None, 0.0, 0.0, fresh,
        ))
    _run_update(rule, rows, name)
    for target, work in writebacks:
        target[...] = work
    return buffers


def adam_update(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, lr, beta1,
                beta2, eps, weight_decay=0.0, decoupled_weight_decay=False, amsgrad=False,
                maximize=False):
    """One ``torch.optim.Adam`` (or, decoupled, ``AdamW``) step over a group, in place.

    ``params``, ``grads``, ``exp_avgs`` and ``exp_avg_sqs`` (and with ``amsgrad``
    ``max_exp_avg_sqs``; otherwise it may be None) are lists of float32/float64 arrays
    of each parameter's shape and dtype; ``steps`` the step count of each parameter,
    this step included (t >= 1). Per element, in torch's order: ``g = -grad`` if
    ``maximize``; ``p = p * (1 - lr * weight_decay)`` (decoupled) or
    ``g = g + weight_decay * p``; ``m = lerp(m, g, 1 - beta1)``;
    ``v = v * beta2 + (1 - beta2) * g * g``; with AMSGrad ``vmax = maximum(vmax, v)``;
    ``p = p + (-lr / (1 - beta1^t)) * m / (sqrt(v or vmax) / (1 - beta2^t) ** 0.5 + eps)``.
    Every scalar is rounded to the parameter's dtype first. Arrays need not be
    contiguous. Returns None.

    >>> p, m, v = np.ones(2), np.zeros(2), np.zeros(2)
    >>> adam_update([p], [np.ones(2)], [m], [v], None, [1], 0.1, 0.9, 0.999, 1e-8)
    >>> p.round(6), m.round(6)
    (array([0.9, 0.9]), array([0.1, 0.1]))
    """
    name = "adam_update"
    cdef _Rule rule
    rule.kind = ADAM_RULE
    # Python floats, so that the bias corrections below are computed as torch computes them
    lr, beta1, beta2 = float(lr), float(beta1), float(beta2)
    rule.lr, rule.beta1, rule.beta2 = lr, beta1, beta2
    rule.eps, rule.weight_decay = float(eps), float(weight_decay)
    rule.decoupled, rule.amsgrad = bool(decoupled_weight_decay), bool(amsgrad)
    rule.maximize = bool(maximize)
    rule.momentum = rule.dampening = 0.0
    rule.nesterov = False
    if not isinstance(params, (list, tuple)):
        raise TypeError(
            f"{name}: expected params as a list or tuple of arrays, got {type(params).__name__}"
        )
    count = len(params)
    grads = _operand_list(grads, name, "grads", count)
    exp_avgs = _operand_list(exp_avgs, name, "exp_avgs", count)
    exp_avg_sqs = _operand_list(exp_avg_sqs, name, "exp_avg_sqs", count)
    maxima = None
    if rule.amsgrad:
        maxima = _operand_list(max_exp_avg_sqs, name, "max_exp_avg_sqs", count)
    steps = _operand_list(steps, name, "steps", count)
    rows = []
    writebacks = []
    for i in range(count):
        p = _update_param(params[i], name, i)
        step = float(_step_count(steps[i], name, i))
        rows.append((
            _staged(p, writebacks, True),
            _staged_operand(grads, i, p, name, "grads", False, writebacks),
            _staged_operand(exp_avgs, i, p, name, "exp_avgs", True, writebacks),
            _staged_operand(exp_avg_sqs, i, p, name, "exp_avg_sqs", True, writebacks),
            None if maxima is None else _staged_operand(
                maxima, i, p, name, "max_exp_avg_sqs", True, writebacks
            ),
            # torch's bias corrections: step size, sqrt(1 - beta2^t)
            lr / (1 - beta1 ** step),
            (1 - beta2 ** step) ** 0.5,
            False,
        ))
    _run_update(rule, rows, name)
    for target, work in writebacks:
        target[...] = work


# ---------------------------------------------------------------- batch normalization

cdef tuple _bn_input(x, str name):
    arr = _float_array(x, name, "x", (2, 3, 4, 5))
    return arr, _as_ncs(arr)


def batchnorm_forward_train(x, weight, bias, running_mean, running_var, momentum=0.1,
                            eps=1e-5, num_batches_tracked=None):
    """Batch-norm training forward: per-channel batch statistics, normalize, scale, shift.

    ``x`` is (N, C), (N, C, L), (N, C, H, W) or (N, C, D, H, W); ``weight``/``bias``
    are (C,) or None (no affine transform). Mean and biased variance are computed
    per channel over every other axis in two passes with double accumulators.
    ``running_mean`` and ``running_var`` ((C,) float arrays, or None) are updated in
    place with PyTorch's rule: ``new = (1 - momentum) * running + momentum * batch``,
    the running variance taking the unbiased batch variance (count M = N * L,
    N * H * W or N * D * H * W, which must then be at least 2). ``momentum=None`` means a cumulative
    average: the factor is ``1 / num_batches_tracked`` (the count including this batch).

    Returns ``(y, mean, invstd)``: y like x, and the per-channel mean and
    1 / sqrt(var + eps) as float64 (C,) arrays, which the backward takes.

    >>> y, mean, invstd = batchnorm_forward_train(
    ...     np.array([[1.0], [3.0]]), None, None, None, None, eps=0.0)
    >>> y.ravel(), mean, invstd
    (array([-1.,  1.]), array([2.]), array([1.]))
    """
    name = "batchnorm_forward_train"
    arr, x3 = _bn_input(x, name)
    channels = x3.shape[1]
    count = x3.shape[0] * x3.shape[2]
    w = _channel_vector(weight, name, "weight", channels, 1.0)
    b = _channel_vector(bias, name, "bias", channels, 0.0)
    tracked = running_mean is not None or running_var is not None
    if tracked:
        if running_mean is None or running_var is None:
            raise ValueError(f"{name}: give both running_mean and running_var, or neither")
        # the unbiased variance divides by M - 1
        _checks.values_per_channel(arr.shape, name)
        _running_buffer(running_mean, name, "running_mean", channels)
        _running_buffer(running_var, name, "running_var", channels)
        if momentum is None:
            if num_batches_tracked is None or num_batches_tracked < 1:
                raise ValueError(
                    f"{name}: momentum=None (a cumulative average) needs "
                    f"num_batches_tracked >= 1, got {num_batches_tracked!r}"
                )
            factor = 1.0 / num_batches_tracked
        else:
            factor = float(momentum)
    y = np.empty_like(arr)
    mean = np.empty(channels, dtype=np.float64)
    var = np.empty(channels, dtype=np.float64)
    invstd = np.empty(channels, dtype=np.float64)
    if arr.size == 0:
        # statistics of no values (only reached untracked)
        mean.fill(np.nan)
        invstd.fill(np.nan)
        return y, mean, invstd
    if arr.dtype == np.float32:
        _bn_forward_train[float](x3, _as_ncs(y), w, b, float(eps), mean, var, invstd)
    else:
        _bn_forward_train[double](x3, _as_ncs(y), w, b, float(eps), mean, var, invstd)
    if tracked:
        _update_running(running_mean, running_var, mean, var, factor, count / (count - 1))
    return y, mean, invstd


cdef _update_running(running_mean, running_var, mean, var, double factor, double correction):
    # running = running * (1 - factor) + factor * batch statistic (the variance made
    # unbiased by ``correction``), in place; a typed loop, because the same update in
    # numpy (six array operations, ~20 us) cost more than the kernel of a small layer
    # (4, 64, 2, 2). The multiply is in the buffer's dtype and the add in double, as
    # numpy computes ``running *= 1 - factor; running += factor * mean``.
    if running_mean.dtype == np.float32 and running_var.dtype == np.float32:
        _running_update[float](running_mean, running_var, mean, var, factor, correction)
    elif running_mean.dtype == np.float64 and running_var.dtype == np.float64:
        _running_update[double](running_mean, running_var, mean, var, factor, correction)
    else:
        # other float dtypes (float16, mixed buffers): through float64 copies
        mean64 = running_mean.astype(np.float64)
        var64 = running_var.astype(np.float64)
        _running_update[double](mean64, var64, mean, var, factor, correction)
        running_mean[...] = mean64
        running_var[...] = var64


cdef void _running_update(floating[::1] running_mean, floating[::1] running_var,
                          const double[::1] mean, const double[::1] var, double factor,
                          double correction) noexcept nogil:
    cdef floating keep = <floating>(1.0 - factor)
    cdef Py_ssize_t c
    for c in range(mean.shape[0]):
        running_mean[c] = <floating>(<double>(running_mean[c] * keep) + factor * mean[c])
        running_var[c] = <floating>(<double>(running_var[c] * keep)
                                    + factor * (var[c] * correction))


cdef void _bn_forward_train(const floating[:, :, ::1] x, floating[:, :, ::1] y,
                            const double[::1] weight, const double[::1] bias, double eps,
                            double[::1] mean, double[::1] var, double[::1] invstd) noexcept:
    cdef Py_ssize_t channels = x.shape[1]
    cdef Py_ssize_t blocks = (channels + COLUMN_BLOCK - 1) // COLUMN_BLOCK
    cdef int block_threads = _threads_for(blocks)
    cdef int channel_threads = _threads_for(channels)
    cdef Py_ssize_t c, block
    with nogil:
        if x.shape[2] == 1:
            for block in prange(blocks, num_threads=block_threads, schedule="static",
                                use_threads_if=block_threads > 1):
                _bn_rows_forward(x, y, weight, bias, eps, mean, var, invstd, block)
        else:
            for c in prange(channels, num_threads=channel_threads, schedule="static",
                            use_threads_if=channel_threads > 1):
                _bn_channel_forward(x, y, weight, bias, eps, mean, var, invstd, c)


cdef inline floating _bn_offset(floating center, double mean, double scale,
                                double shift) noexcept nogil:
    # The shift of (x - center) * scale + offset = (x - mean) * scale + shift, where
    # center is the mean rounded to the data's type: the remainder mean - center joins it
    return <floating>(shift - (mean - <double>center) * scale)


cdef inline void _bn_normalize_segment(const floating* src, floating* dst, Py_ssize_t n,
                                       double mean, double scale, double shift) noexcept nogil:
    # dst[:n] = (src[:n] - mean) * scale + shift, in the data's precision (the statistics
    # stay double), as torch's CPU kernel: float32 takes twice the SIMD lanes of double.
    # The mean is split into its rounding to the data's type, which x - center subtracts
    # exactly near the mean, and the remainder, folded into the shift: data far from zero
    # (mean >> std) keeps its precision, where x * scale + shift would not.
    cdef floating center = <floating>mean
    cdef floating factor = <floating>scale
    cdef floating offset = _bn_offset(center, mean, scale, shift)
    cdef Py_ssize_t i
    for i in range(n):
        dst[i] = (src[i] - center) * factor + offset


cdef void _bn_channel_forward(const floating[:, :, ::1] x, floating[:, :, ::1] y,
                              const double[::1] weight, const double[::1] bias, double eps,
                              double[::1] mean, double[::1] var, double[::1] invstd,
                              Py_ssize_t c) noexcept nogil:
    # statistics of x[:, c, :] in two passes, then y[:, c, :] = (x - mean) * scale + bias
    cdef Py_ssize_t batch = x.shape[0]
    cdef Py_ssize_t inner = x.shape[2]
    cdef double m, v, inv
    cdef Py_ssize_t n
    _moments(&x[0, c, 0], batch, inner, x.shape[1] * inner, &m, &v)
    inv = 1.0 / sqrt(v + eps)
    mean[c] = m
    var[c] = v
    invstd[c] = inv
    for n in range(batch):
        _bn_normalize_segment(&x[n, c, 0], &y[n, c, 0], inner, m, weight[c] * inv, bias[c])


cdef void _bn_rows_forward(const floating[:, :, ::1] x, floating[:, :, ::1] y,
                           const double[::1] weight, const double[::1] bias, double eps,
                           double[::1] mean, double[::1] var, double[::1] invstd,
                           Py_ssize_t block) noexcept nogil:
    # the same for the block's channels of a (N, C, 1) input, walking rows so the
    # loops over channels are contiguous
    cdef double acc[COLUMN_BLOCK]
    cdef floating center[COLUMN_BLOCK]
    cdef floating factor[COLUMN_BLOCK]
    cdef floating offset[COLUMN_BLOCK]
    cdef double scale
    cdef Py_ssize_t start = block * COLUMN_BLOCK
    cdef Py_ssize_t width = min(start + COLUMN_BLOCK, x.shape[1]) - start
    cdef Py_ssize_t batch = x.shape[0]
    cdef Py_ssize_t n, j
    cdef double d
    cdef const floating* src
    cdef floating* dst
    for j in range(width):
        acc[j] = 0.0
    for n in range(batch):
        src = &x[n, start, 0]
        for j in range(width):
            acc[j] += src[j]
    for j in range(width):
        mean[start + j] = acc[j] / batch
        acc[j] = 0.0
    for n in range(batch):
        src = &x[n, start, 0]
        for j in range(width):
            d = src[j] - mean[start + j]
            acc[j] += d * d
    for j in range(width):
        var[start + j] = acc[j] / batch
        invstd[start + j] = 1.0 / sqrt(var[start + j] + eps)
        # _bn_normalize_segment's coefficients, per channel of the block
        scale = weight[start + j] * invstd[start + j]
        center[j] = <floating>mean[start + j]
        factor[j] = <floating>scale
        offset[j] = _bn_offset(center[j], mean[start + j], scale, bias[start + j])
    for n in range(batch):
        src = &x[n, start, 0]
        dst = &y[n, start, 0]
        for j in range(width):
            dst[j] = (src[j] - center[j]) * factor[j] + offset[j]


def batchnorm_forward_eval(x, weight, bias, running_mean, running_var, eps=1e-5):
    """Batch-norm inference: ``(x - running_mean) / sqrt(running_var + eps) * weight + bias``.

    One fused pass; per-channel (C,) statistics, weight and bias (None: 1 and 0).

    >>> batchnorm_forward_eval(np.array([[3.0]]), None, None, np.array([1.0]),
    ...                        np.array([4.0]), eps=0.0)
    array([[1.]])
    """
    name = "batchnorm_forward_eval"
    arr, x3 = _bn_input(x, name)
    channels = x3.shape[1]
    w = _channel_vector(weight, name, "weight", channels, 1.0)
    b = _channel_vector(bias, name, "bias", channels, 0.0)
    rm = _channel_vector(running_mean, name, "running_mean", channels)
    rv = _channel_vector(running_var, name, "running_var", channels)
    scale = w / np.sqrt(rv + eps)
    y = np.empty_like(arr)
    if arr.size == 0:
        return y
    if arr.dtype == np.float32:
        _bn_affine[float](x3, _as_ncs(y), rm, scale, b)
    else:
        _bn_affine[double](x3, _as_ncs(y), rm, scale, b)
    return y


cdef void _bn_affine(const floating[:, :, ::1] x, floating[:, :, ::1] y,
                     const double[::1] center, const double[::1] scale,
                     const double[::1] shift) noexcept:
    cdef Py_ssize_t batch = x.shape[0]
    cdef int threads = _threads_for(x.shape[0] * x.shape[1] * x.shape[2] // VALUES_PER_THREAD)
    cdef Py_ssize_t n
    with nogil:
        for n in prange(batch, num_threads=threads, schedule="static",
                        use_threads_if=threads > 1):
            _bn_affine_sample(x, y, center, scale, shift, n)


cdef void _bn_affine_sample(const floating[:, :, ::1] x, floating[:, :, ::1] y,
                            const double[::1] center, const double[::1] scale,
                            const double[::1] shift, Py_ssize_t n) noexcept nogil:
    # y[n, c, :] = (x[n, c, :] - center[c]) * scale[c] + shift[c]
    cdef Py_ssize_t c
    for c in range(x.shape[1]):
        _bn_normalize_segment(&x[n, c, 0], &y[n, c, 0], x.shape[2], center[c], scale[c],
                              shift[c])


def batchnorm_backward(dy, x, mean, invstd, weight, training=True):
    """Batch-norm backward: ``(dx, dweight, dbias)`` from the output gradient ``dy``.

    ``mean`` and ``invstd`` are what the forward used: the batch statistics from
    :func:`batchnorm_forward_train` when ``training``, or the running statistics
    (``1 / sqrt(running_var + eps)``) for an evaluation-mode forward, where the
    statistics are constants. One pass sums dy and dy * x_hat per channel, a
    second writes dx. ``dweight`` and ``dbias`` are float64 (C,).

    >>> x = np.array([[1.0], [3.0]])
    >>> y, mean, invstd = batchnorm_forward_train(x, None, None, None, None, eps=0.0)
    >>> dx, dweight, dbias = batchnorm_backward(np.array([[1.0], [0.0]]), x, mean, invstd, None)
    >>> dx.ravel(), dweight, dbias
    (array([0., 0.]), array([-1.]), array([1.]))
    """
    name = "batchnorm_backward"
    arr, x3 = _bn_input(x, name)
    grad = _float_array(dy, name, "dy", None, arr.dtype)
    if grad.shape != arr.shape:
        raise ValueError(f"{name}: dy has shape {grad.shape} but x has shape {arr.shape}")
    channels = x3.shape[1]
    w = _channel_vector(weight, name, "weight", channels, 1.0)
    m = _channel_vector(mean, name, "mean", channels)
    inv = _channel_vector(invstd, name, "invstd", channels)
    dx = np.empty_like(arr)
    dweight = np.zeros(channels, dtype=np.float64)
    dbias = np.zeros(channels, dtype=np.float64)
    if arr.size == 0:
        return dx, dweight, dbias
    if arr.dtype == np.float32:
        _bn_backward[float](_as_ncs(grad), x3, _as_ncs(dx), m, inv, w, bool(training),
                            dweight, dbias)
    else:
        _bn_backward[double](_as_ncs(grad), x3, _as_ncs(dx), m, inv, w, bool(training),
                             dweight, dbias)
    return dx, dweight, dbias


cdef void _bn_backward(const floating[:, :, ::1] dy, const floating[:, :, ::1] x,
                       floating[:, :, ::1] dx, const double[::1] mean, const double[::1] invstd,
                       const double[::1] weight, bint training, double[::1] dweight,
                       double[::1] dbias) noexcept:
    cdef Py_ssize_t channels = x.shape[1]
    cdef Py_ssize_t blocks = (channels + COLUMN_BLOCK - 1) // COLUMN_BLOCK
    cdef int block_threads = _threads_for(blocks)
    cdef int channel_threads = _threads_for(channels)
    cdef Py_ssize_t c, block
    with nogil:
        if x.shape[2] == 1:
            for block in prange(blocks, num_threads=block_threads, schedule="static",
                                use_threads_if=block_threads > 1):
                _bn_rows_backward(dy, x, dx, mean, invstd, weight, training, dweight, dbias,
                                  block)
        else:
            for c in prange(channels, num_threads=channel_threads, schedule="static",
                            use_threads_if=channel_threads > 1):
                _bn_channel_backward(dy, x, dx, mean, invstd, weight, training, dweight,
                                     dbias, c)


cdef void _bn_channel_backward(const floating[:, :, ::1] dy, const floating[:, :, ::1] x,
                               floating[:, :, ::1] dx, const double[::1] mean,
                               const double[::1] invstd, const double[::1] weight,
                               bint training, double[::1] dweight, double[::1] dbias,
                               Py_ssize_t c) noexcept nogil:
    cdef Py_ssize_t batch = x.shape[0]
    cdef Py_ssize_t inner = x.shape[2]
    cdef double count = <double>(batch * inner)
    cdef double m = mean[c]
    cdef double inv = invstd[c]
    cdef double sum_dy = 0.0
    cdef double sum_dy_xmu = 0.0
    cdef double centered_coef, mean_dy
    cdef floating scale, slope, offset, center
    cdef Py_ssize_t n, s
    cdef const floating* g
    cdef const floating* src
    cdef floating* dst
    for n in range(batch):
        _sum_grad_and_product(&dy[n, c, 0], &x[n, c, 0], inner, m, &sum_dy, &sum_dy_xmu)
    dbias[c] = sum_dy
    dweight[c] = sum_dy_xmu * inv
    # training: dx = scale * (dy - mean(dy) - (x - m) * inv^2 * mean(dy * (x - m)))
    # evaluation (statistics are constants): dx = scale * dy
    # as dy * scale - (x - center) * slope + offset in the data's precision, the mean
    # split as in the forward (its remainder and mean(dy) go into the offset)
    mean_dy = sum_dy / count if training else 0.0
    centered_coef = inv * inv * sum_dy_xmu / count if training else 0.0
    center = <floating>m
    scale = <floating>(weight[c] * inv)
    slope = <floating>(weight[c] * inv * centered_coef)
    offset = <floating>(weight[c] * inv * ((m - <double>center) * centered_coef - mean_dy))
    for n in range(batch):
        g = &dy[n, c, 0]
        src = &x[n, c, 0]
        dst = &dx[n, c, 0]
        for s in range(inner):
            dst[s] = (g[s] * scale - (src[s] - center) * slope) + offset


cdef void _bn_rows_backward(const floating[:, :, ::1] dy, const floating[:, :, ::1] x,
                            floating[:, :, ::1] dx, const double[::1] mean,
                            const double[::1] invstd, const double[::1] weight,
                            bint training, double[::1] dweight, double[::1] dbias,
                            Py_ssize_t block) noexcept nogil:
    # the same for the block's channels of a (N, C, 1) input, walking rows
    cdef double sum_dy[COLUMN_BLOCK]
    cdef double sum_dy_xmu[COLUMN_BLOCK]
    cdef double scale[COLUMN_BLOCK]
    cdef double mean_dy[COLUMN_BLOCK]
    cdef double centered_coef[COLUMN_BLOCK]
    cdef Py_ssize_t start = block * COLUMN_BLOCK
    cdef Py_ssize_t width = min(start + COLUMN_BLOCK, x.shape[1]) - start
    cdef Py_ssize_t batch = x.shape[0]
    cdef double inv
    cdef Py_ssize_t n, j
    cdef const floating* g
    cdef const floating* src
    cdef floating* dst
    for j in range(width):
        sum_dy[j] = 0.0
        sum_dy_xmu[j] = 0.0
    for n in range(batch):
        g = &dy[n, start, 0]
        src = &x[n, start, 0]
        for j in range(width):
            sum_dy[j] += g[j]
            sum_dy_xmu[j] += g[j] * (src[j] - mean[start + j])
    for j in range(width):
        inv = invstd[start + j]
        dbias[start + j] = sum_dy[j]
        dweight[start + j] = sum_dy_xmu[j] * inv
        scale[j] = weight[start + j] * inv
        mean_dy[j] = sum_dy[j] / batch if training else 0.0
        centered_coef[j] = inv * inv * sum_dy_xmu[j] / batch if training else 0.0
    for n in range(batch):
        g = &dy[n, start, 0]
        src = &x[n, start, 0]
        dst = &dx[n, start, 0]
        for j in range(width):
            dst[j] = <floating>(scale[j] * ((g[j] - mean_dy[j])
                                            - (src[j] - mean[start + j]) * centered_coef[j]))


# ---------------------------------------------------------------- group, instance and layer norm
#
# One core for the three: x is seen as (N, C, S) and its channels as G groups of
# K = C / G; statistics are per (sample, group) over the group's K * S values,
# which are contiguous, and the affine is per channel (weight and bias of shape (C,)).
# Group norm is this as it stands, instance norm has G = C, and layer norm of
# (R, D) rows has N = R, C = D, G = 1 and S = 1 (its affine is then element-wise).
# The work is split into chunks of whole groups of about VALUES_PER_CHUNK values;
# the backward accumulates weight and bias gradients per chunk and adds the chunks
# in order afterwards, so the bits depend on the shape and never on the threads.
# Chunks are handed out dynamically: on a shared machine a thread that is not
# scheduled does not hold up the others (which chunk a thread takes changes no bit).


cdef tuple _norm_input(x, str name, int min_rank, str layout):
    """``x`` as a contiguous float array of at least ``min_rank`` dims, and its (N, C, S) view."""
    arr = _float_array(x, name, "x", None)
    if arr.ndim < min_rank:
        raise ValueError(f"{name}: expected x of shape {layout}, got shape {arr.shape}")
    return arr, _as_ncs(arr)


cdef Py_ssize_t _groups_per_chunk(Py_ssize_t group_size):
    # whole groups per chunk: about VALUES_PER_CHUNK values, at least one group
    return max(1, VALUES_PER_CHUNK // max(group_size, 1))


cdef tuple _norm_forward(arr, x3, Py_ssize_t groups, weight, bias, eps, str name):
    """``(y, mean, var, invstd)`` of a checked input, statistics per (sample, group)."""
    channels = x3.shape[1]
    w = _channel_vector(weight, name, "weight", channels, 1.0)
    b = _channel_vector(bias, name, "bias", channels, 0.0)
    cdef double epsilon = float(eps)
    y = np.empty_like(arr)
    mean = np.empty((x3.shape[0], groups), dtype=np.float64)
    var = np.empty_like(mean)
    invstd = np.empty_like(mean)
    if arr.size == 0:
        # statistics of no values
        mean.fill(np.nan)
        var.fill(np.nan)
        invstd.fill(np.nan)
        return y, mean, var, invstd
    chunk = _groups_per_chunk((channels // groups) * x3.shape[2])
    if arr.dtype == np.float32:
        _norm_groups_forward[float](x3, _as_ncs(y), w, b, groups, epsilon, chunk, mean, var,
                                    invstd)
    else:
        _norm_groups_forward[double](x3, _as_ncs(y), w, b, groups, epsilon, chunk, mean, var,
                                     invstd)
    return y, mean, var, invstd


def groupnorm_forward(x, num_groups, weight, bias, eps=1e-5):
    """Group-norm forward: statistics per sample over each group of channels, then affine.

    ``x`` is (N, C, *) with C divisible by ``num_groups`` (G); each sample's channels
    are split into G groups of C / G consecutive channels, and each group is
    normalized by its own mean and biased variance over its channels and every
    trailing axis (two passes, double accumulators). ``weight``/``bias`` are per
    channel, (C,), or None (1 and 0).

    Returns ``(y, mean, invstd)``: y like x, and the per-(sample, group) mean and
    1 / sqrt(var + eps) as float64 (N, G) arrays, which :func:`groupnorm_backward`
    takes. Instance norm is G = C (see :func:`instancenorm_forward`).

    >>> x = np.array([[[1.0], [3.0], [5.0], [9.0]]])  # (1, 4, 1)
    >>> y, mean, invstd = groupnorm_forward(x, 2, None, None, eps=0.0)
    >>> y.ravel(), mean, invstd
    (array([-1.,  1., -1.,  1.]), array([[2., 7.]]), array([[1. , 0.5]]))
    """
    name = "groupnorm_forward"
    arr, x3 = _norm_input(x, name, 2, "(N, C, *)")
    groups = _checks.positive_int(num_groups, name, "num_groups")
    if x3.shape[1] % groups:
        raise ValueError(
            f"{name}: {x3.shape[1]} channels cannot be split into {groups} groups "
            "(num_groups must divide the channel count)"
        )
    y, mean, _, invstd = _norm_forward(arr, x3, groups, weight, bias, eps, name)
    return y, mean, invstd


def instancenorm_forward(x, weight, bias, running_mean, running_var, momentum=0.1, eps=1e-5):
    """Instance-norm forward: statistics per (sample, channel) over the trailing axes.

    ``x`` is (N, C, *) with at least one trailing axis; ``weight``/``bias`` are (C,)
    or None. This is group norm with one channel per group. ``running_mean`` and
    ``running_var`` ((C,) float arrays, or None) are updated in place as PyTorch's
    ``instance_norm`` does: ``new = (1 - momentum) * running + momentum * batch``
    where batch is the mean over the samples of each instance's mean, and of its
    unbiased variance (S values, which must then be at least 2).

    Returns ``(y, mean, invstd)``: y like x, mean and 1 / sqrt(var + eps) as float64
    (N, C) arrays, which :func:`groupnorm_backward` takes.

    >>> y, mean, invstd = instancenorm_forward(
    ...     np.array([[[1.0, 3.0], [0.0, 4.0]]]), None, None, None, None, eps=0.0)
    >>> y, mean, invstd
    (array([[[-1.,  1.],
            [-1.,  1.]]]), array([[2., 2.]]), array([[1. , 0.5]]))
    """
    name = "instancenorm_forward"
    arr, x3 = _norm_input(x, name, 3, "(N, C, *) with at least one trailing dim")
    channels = x3.shape[1]
    factor = 0.0
    tracked = running_mean is not None or running_var is not None
    if tracked:
        if running_mean is None or running_var is None:
            raise ValueError(f"{name}: give both running_mean and running_var, or neither")
        # the unbiased variance divides by S - 1; an empty batch has no statistics
        _checks.spatial_elements(arr.shape, name)
        if x3.shape[0] == 0:
            raise ValueError(f"{name}: an empty batch cannot update the running statistics")
        _running_buffer(running_mean, name, "running_mean", channels)
        _running_buffer(running_var, name, "running_var", channels)
        factor = float(momentum)
    y, mean, var, invstd = _norm_forward(arr, x3, max(channels, 1), weight, bias, eps, name)
    if tracked and channels:
        inner = x3.shape[2]
        running_mean *= 1.0 - factor
        running_mean += factor * mean.mean(axis=0)
        running_var *= 1.0 - factor
        running_var += factor * (var * (inner / (inner - 1))).mean(axis=0)
    return y, mean, invstd


def layernorm_forward(x, weight, bias, eps=1e-5):
    """Layer-norm forward: each row of a (R, D) array normalized by its own statistics.

    Mean and biased variance per row (two passes, double accumulators), then an
    element-wise affine with ``weight``/``bias`` of shape (D,) or None. A layer
    norm over trailing dims ``normalized_shape`` is this on ``x.reshape(-1, D)``,
    D their product. Returns ``(y, mean, invstd)``: y (R, D), and the per-row mean
    and 1 / sqrt(var + eps) as float64 (R,) arrays, which :func:`layernorm_backward`
    takes.

    >>> y, mean, invstd = layernorm_forward(np.array([[1.0, 3.0], [2.0, 2.0]]), None,
    ...                                     np.array([0.0, 1.0]), eps=1.0)
    >>> y, mean, invstd
    (array([[-0.70710678,  1.70710678],
           [ 0.        ,  1.        ]]), array([2., 2.]), array([0.70710678, 1.        ]))
    """
    name = "layernorm_forward"
    arr = _float_array(x, name, "x", (2,))
    # rows as (R, D, 1): one group of D channels with one value each
    y, mean, _, invstd = _norm_forward(arr, arr.reshape(arr.shape[0], arr.shape[1], 1), 1,
                                       weight, bias, eps, name)
    return y, mean[:, 0].copy(), invstd[:, 0].copy()


cdef object _group_statistic(v, str name, str what, Py_ssize_t samples):
    """Per-(sample, group) statistics as a contiguous (N, G) float64 array, G >= 1."""
    if v is None:
        raise ValueError(f"{name}: {what} is required, got None")
    arr = np.asarray(v)
    if arr.dtype.kind != "f":
        raise TypeError(f"{name}: expected {what} as a float array, got dtype {arr.dtype}")
    if arr.ndim != 2 or arr.shape[0] != samples or arr.shape[1] < 1:
        raise ValueError(f"{name}: expected {what} of shape ({samples}, G), got {arr.shape}")
    return np.ascontiguousarray(arr, dtype=np.float64)


cdef tuple _norm_backward(grad, arr, x3, m, inv, weight, str name):
    """``(dx, dweight, dbias)`` for checked inputs and (N, G) statistics."""
    channels = x3.shape[1]
    groups = m.shape[1]
    w = _channel_vector(weight, name, "weight", channels, 1.0)
    dx = np.empty_like(arr)
    if arr.size == 0:
        return dx, np.zeros(channels), np.zeros(channels)
    chunk = _groups_per_chunk((channels // groups) * x3.shape[2])
    chunks = (x3.shape[0] * groups + chunk - 1) // chunk
    dweight_parts = np.zeros((chunks, channels), dtype=np.float64)
    dbias_parts = np.zeros((chunks, channels), dtype=np.float64)
    if arr.dtype == np.float32:
        _norm_groups_backward[float](_as_ncs(grad), x3, _as_ncs(dx), m, inv, w, chunk,
                                     dweight_parts, dbias_parts)
    else:
        _norm_groups_backward[double](_as_ncs(grad), x3, _as_ncs(dx), m, inv, w, chunk,
                                      dweight_parts, dbias_parts)
    # the chunks' partial sums, added in order
    return dx, dweight_parts.sum(axis=0), dbias_parts.sum(axis=0)


def groupnorm_backward(dy, x, mean, invstd, weight):
    """Group-norm (and instance-norm) backward: ``(dx, dweight, dbias)`` from ``dy``.

    ``mean`` and ``invstd`` are the (N, G) statistics the forward returned (G = C
    for instance norm); G is read from their shape and must divide C. One pass per
    group sums ``weight * dy`` and ``weight * dy * (x - mean)`` (and the per-channel
    sums of the weight and bias gradients), a second writes
    ``dx = invstd * (weight * dy - mean(weight * dy) - x_hat * mean(weight * dy * x_hat))``.
    ``dweight`` and ``dbias`` are float64 (C,).

    >>> x = np.array([[[1.0], [3.0], [5.0], [9.0]]])
    >>> y, mean, invstd = groupnorm_forward(x, 2, None, None, eps=0.0)
    >>> dx, dweight, dbias = groupnorm_backward(np.ones_like(x), x, mean, invstd, None)
    >>> dx.ravel(), dweight, dbias
    (array([0., 0., 0., 0.]), array([-1.,  1., -1.,  1.]), array([1., 1., 1., 1.]))
    """
    name = "groupnorm_backward"
    arr, x3 = _norm_input(x, name, 2, "(N, C, *)")
    grad = _float_array(dy, name, "dy", None, arr.dtype)
    if grad.shape != arr.shape:
        raise ValueError(f"{name}: dy has shape {grad.shape} but x has shape {arr.shape}")
    m = _group_statistic(mean, name, "mean", x3.shape[0])
    inv = _group_statistic(invstd, name, "invstd", x3.shape[0])
    if inv.shape != m.shape:
        raise ValueError(f"{name}: invstd has shape {inv.shape} but mean has {m.shape}")
    if x3.shape[1] % m.shape[1]:
        raise ValueError(
            f"{name}: statistics of {m.shape[1]} groups do not divide {x3.shape[1]} channels"
        )
    return _norm_backward(grad, arr, x3, m, inv, weight, name)


def layernorm_backward(dy, x, mean, invstd, weight):
    """Layer-norm backward over (R, D) rows: ``(dx, dweight, dbias)``.

    ``mean`` and ``invstd`` are the (R,) statistics :func:`layernorm_forward`
    returned; ``weight`` is (D,) or None. The same fused two passes per row as
    :func:`groupnorm_backward`; ``dweight`` and ``dbias`` are float64 (D,).

    >>> x = np.array([[1.0, 3.0]])
    >>> y, mean, invstd = layernorm_forward(x, None, None, eps=0.0)
    >>> layernorm_backward(np.array([[1.0, 0.0]]), x, mean, invstd, None)
    (array([[0., 0.]]), array([-1.,  0.]), array([1., 0.]))
    """
    name = "layernorm_backward"
    arr = _float_array(x, name, "x", (2,))
    grad = _float_array(dy, name, "dy", None, arr.dtype)
    if grad.shape != arr.shape:
        raise ValueError(f"{name}: dy has shape {grad.shape} but x has shape {arr.shape}")
    rows = arr.shape[0]
    m = _channel_vector(mean, name, "mean", rows).reshape(rows, 1)
    inv = _channel_vector(invstd, name, "invstd", rows).reshape(rows, 1)
    return _norm_backward(grad, arr, arr.reshape(rows, arr.shape[1], 1), m, inv, weight, name)


cdef void _norm_groups_forward(const floating[:, :, ::1] x, floating[:, :, ::1] y,
                               const double[::1] weight, const double[::1] bias,
                               Py_ssize_t groups, double eps, Py_ssize_t chunk,
                               double[:, ::1] mean, double[:, ::1] var,
                               double[:, ::1] invstd) noexcept:
    cdef Py_ssize_t total = x.shape[0] * groups
    cdef Py_ssize_t chunks = (total + chunk - 1) // chunk
    cdef int threads = _threads_for(chunks)
    cdef Py_ssize_t index
    with nogil:
        for index in prange(chunks, num_threads=threads, schedule="dynamic",
                            use_threads_if=threads > 1):
            _norm_chunk_forward(x, y, weight, bias, groups, eps, mean, var, invstd,
                                index * chunk, min((index + 1) * chunk, total))


cdef void _norm_chunk_forward(const floating[:, :, ::1] x, floating[:, :, ::1] y,
                              const double[::1] weight, const double[::1] bias,
                              Py_ssize_t groups, double eps, double[:, ::1] mean,
                              double[:, ::1] var, double[:, ::1] invstd, Py_ssize_t start,
                              Py_ssize_t stop) noexcept nogil:
    # groups start to stop (flat (sample, group) indices): statistics, then
    # y = (x - mean) * invstd * weight[c] + bias[c]
    cdef Py_ssize_t per_group = x.shape[1] // groups
    cdef Py_ssize_t inner = x.shape[2]
    cdef Py_ssize_t q, n, g, first, k, s
    cdef double m, v, inv, scale, shift
    cdef const floating* src
    cdef floating* dst
    for q in range(start, stop):
        n = q // groups
        g = q % groups
        first = g * per_group
        src = &x[n, first, 0]
        dst = &y[n, first, 0]
        _moments(src, 1, per_group * inner, 0, &m, &v)
        inv = 1.0 / sqrt(v + eps)
        mean[n, g] = m
        var[n, g] = v
        invstd[n, g] = inv
        if inner == 1:
            # one value per channel (a layer-norm row): an element-wise affine
            for k in range(per_group):
                dst[k] = <floating>((src[k] - m) * (inv * weight[first + k]) + bias[first + k])
        else:
            for k in range(per_group):
                scale = weight[first + k] * inv
                shift = bias[first + k]
                for s in range(inner):
                    dst[k * inner + s] = <floating>((src[k * inner + s] - m) * scale + shift)


cdef void _norm_groups_backward(const floating[:, :, ::1] dy, const floating[:, :, ::1] x,
                                floating[:, :, ::1] dx, const double[:, ::1] mean,
                                const double[:, ::1] invstd, const double[::1] weight,
                                Py_ssize_t chunk, double[:, ::1] dweight_parts,
                                double[:, ::1] dbias_parts) noexcept:
    cdef Py_ssize_t groups = mean.shape[1]
    cdef Py_ssize_t total = x.shape[0] * groups
    cdef Py_ssize_t chunks = dweight_parts.shape[0]
    cdef int threads = _threads_for(chunks)
    cdef Py_ssize_t index
    with nogil:
        for index in prange(chunks, num_threads=threads, schedule="dynamic",
                            use_threads_if=threads > 1):
            _norm_chunk_backward(dy, x, dx, mean, invstd, weight, &dweight_parts[index, 0],
                                 &dbias_parts[index, 0], index * chunk,
                                 min((index + 1) * chunk, total))


cdef void _norm_chunk_backward(const floating[:, :, ::1] dy, const floating[:, :, ::1] x,
                               floating[:, :, ::1] dx, const double[:, ::1] mean,
                               const double[:, ::1] invstd, const double[::1] weight,
                               double* dweight, double* dbias, Py_ssize_t start,
                               Py_ssize_t stop) noexcept nogil:
    # for each group: sum_g = sum(weight * dy), sum_g_xmu = sum(weight * dy * (x - m))
    # (with the chunk's per-channel dweight and dbias sums), then
    # dx = weight * inv * dy - inv * sum_g / M - (x - m) * inv^3 * sum_g_xmu / M
    cdef Py_ssize_t groups = mean.shape[1]
    cdef Py_ssize_t per_group = x.shape[1] // groups
    cdef Py_ssize_t inner = x.shape[2]
    cdef double count = <double>(per_group * inner)
    cdef Py_ssize_t q, n, g, first, k, s
    cdef double m, inv, sum_g, sum_g_xmu, sum_dy, sum_dy_xmu, d, centered, shift, coef, scale
    cdef const floating* grad
    cdef const floating* src
    cdef floating* dst
    for q in range(start, stop):
        n = q // groups
        g = q % groups
        first = g * per_group
        grad = &dy[n, first, 0]
        src = &x[n, first, 0]
        dst = &dx[n, first, 0]
        m = mean[n, g]
        inv = invstd[n, g]
        sum_g = 0.0
        sum_g_xmu = 0.0
        if inner == 1:
            for k in range(per_group):
                d = grad[k]
                centered = src[k] - m
                sum_g += weight[first + k] * d
                sum_g_xmu += weight[first + k] * d * centered
                dbias[first + k] += d
                dweight[first + k] += d * centered * inv
        else:
            for k in range(per_group):
                sum_dy = 0.0
                sum_dy_xmu = 0.0
                _sum_grad_and_product(grad + k * inner, src + k * inner, inner, m, &sum_dy,
                                      &sum_dy_xmu)
                sum_g += weight[first + k] * sum_dy
                sum_g_xmu += weight[first + k] * sum_dy_xmu
                dbias[first + k] += sum_dy
                dweight[first + k] += sum_dy_xmu * inv
        shift = inv * sum_g / count
        coef = inv * inv * inv * sum_g_xmu / count
        if inner == 1:
            for k in range(per_group):
                dst[k] = <floating>(weight[first + k] * inv * grad[k] - shift
                                    - (src[k] - m) * coef)
        else:
            for k in range(per_group):
                scale = weight[first + k] * inv
                for s in range(inner):
                    dst[k * inner + s] = <floating>(scale * grad[k * inner + s] - shift
                                                    - (src[k * inner + s] - m) * coef)


# ---------------------------------------------------------------- im2col / col2im
#
# A convolution's layouts. ``im2col`` unfolds (N, C, H, W) into columns
# (C * kh * kw, N, L), L = OH * OW, so the whole batch is one matrix product with
# the (O, C * kh * kw) weight, giving (O, N, L), and the weight gradient one product
# over the batch too. ``swap_leading_axes`` turns that product into the (N, O, L)
# output (adding the bias on the way) and the (N, O, L) output gradient into the
# (O, N, L) operand of the backward products, with threads (numpy copies a
# transpose on one). When K = C * kh * kw is small (a first layer: 9 for one
# channel and a 3x3 kernel) that product is memory-bound and those copies cost more
# than its arithmetic: ``conv2d_direct_forward`` and ``conv2d_direct_weight_grad``
# unfold one sample at a time into a scratch block that stays in cache and write the
# (N, O, OH, OW) output, or the sample's share of the weight gradient, directly.

cdef inline Py_ssize_t _first_column(Py_ssize_t offset, int stride,
                                     Py_ssize_t out_width) noexcept nogil:
    # the first out_x with out_x * stride + offset >= 0
    cdef Py_ssize_t first = 0 if offset >= 0 else (stride - 1 - offset) // stride
    return min(first, out_width)


cdef inline Py_ssize_t _end_column(Py_ssize_t offset, int stride, Py_ssize_t width,
                                   Py_ssize_t out_width, Py_ssize_t first) noexcept nogil:
    # one past the last out_x with out_x * stride + offset < width (at least ``first``)
    cdef Py_ssize_t end = 0 if width - 1 - offset < 0 else (width - 1 - offset) // stride + 1
    return max(min(end, out_width), first)


cdef void _unfold_plane(const floating* plane, Py_ssize_t height, Py_ssize_t width,
                        floating* dst, Py_ssize_t row_stride, Window g) noexcept nogil:
    # The kh * kw column rows of one (H, W) input plane:
    # dst[(i * kw + j) * row_stride + out_y * OW + out_x] = the zero-padded plane at
    # (out_y * sh - ph + i * dh, out_x * sw - pw + j * dw). Each output row is a zero
    # head, a copy and a zero tail whose bounds are computed once per (i, j); at
    # stride 1 the copy is contiguous and vectorizes (a strided read does not).
    cdef Py_ssize_t i, j, out_y, out_x, in_y, offset, low, high
    cdef floating* out
    cdef const floating* row
    for i in range(g.kh):
        for j in range(g.kw):
            offset = j * g.dw - g.pw
            low = _first_column(offset, g.sw, g.ow)
            high = _end_column(offset, g.sw, width, g.ow, low)
            for out_y in range(g.oh):
                out = dst + (i * g.kw + j) * row_stride + out_y * g.ow
                in_y = out_y * g.sh - g.ph + i * g.dh
                if in_y < 0 or in_y >= height:
                    for out_x in range(g.ow):
                        out[out_x] = 0
                    continue
                row = plane + in_y * width
                for out_x in range(low):
                    out[out_x] = 0
                if g.sw == 1:
                    for out_x in range(low, high):
                        out[out_x] = row[out_x + offset]
                else:
                    for out_x in range(low, high):
                        out[out_x] = row[out_x * g.sw + offset]
                for out_x in range(high, g.ow):
                    out[out_x] = 0


cdef void _fold_plane(const floating* src, Py_ssize_t row_stride, floating* plane,
                      Py_ssize_t height, Py_ssize_t width, Window g) noexcept nogil:
    # The adjoint of _unfold_plane: zero the (H, W) plane, then add each column value
    # where it was read, in the order (i, j, out_y, out_x)
    cdef Py_ssize_t i, j, out_y, out_x, in_y, offset, low, high
    cdef const floating* col
    cdef floating* row
    for out_x in range(height * width):
        plane[out_x] = 0
    for i in range(g.kh):
        for j in range(g.kw):
            offset = j * g.dw - g.pw
            low = _first_column(offset, g.sw, g.ow)
            high = _end_column(offset, g.sw, width, g.ow, low)
            for out_y in range(g.oh):
                in_y = out_y * g.sh - g.ph + i * g.dh
                if in_y < 0 or in_y >= height:
                    continue
                col = src + (i * g.kw + j) * row_stride + out_y * g.ow
                row = plane + in_y * width
                if g.sw == 1:
                    for out_x in range(low, high):
                        row[out_x + offset] += col[out_x]
                else:
                    for out_x in range(low, high):
                        row[out_x * g.sw + offset] += col[out_x]


def im2col(x, kernel_size, stride=1, padding=0, dilation=1):
    """Unfold the windows of a (N, C, H, W) input into columns: (C * kh * kw, N, OH * OW).

    Row ``(c * kh + i) * kw + j`` holds input channel c at window offset (i, j)
    for every sample, so one matrix product over the whole batch,
    ``weight.reshape(O, -1) @ cols.reshape(C * kh * kw, -1)``, is a convolution
    with a PyTorch-layout (O, C, kh, kw) weight, giving (O, N * OH * OW). Zero
    padding; OH = (H + 2 ph - dh (kh - 1) - 1) // sh + 1.

    >>> im2col(np.arange(4.0).reshape(1, 1, 2, 2), 2).ravel()
    array([0., 1., 2., 3.])
    """
    name = "im2col"
    arr = _float_array(x, name, "x", (4,))
    cdef Window g = _window(arr.shape, kernel_size, stride, padding, dilation, name)
    shape = (arr.shape[1] * g.kh * g.kw, arr.shape[0], g.oh * g.ow)
    if arr.size == 0:
        return np.zeros(shape, dtype=arr.dtype)  # nothing but padding
    cols = np.empty(shape, dtype=arr.dtype)
    if arr.dtype == np.float32:
        _im2col[float](arr, cols, g)
    else:
        _im2col[double](arr, cols, g)
    return cols


cdef void _im2col(const floating[:, :, :, ::1] x, floating[:, :, ::1] cols,
                  Window g) noexcept:
    cdef Py_ssize_t planes = x.shape[0] * x.shape[1]
    cdef int threads = _threads_for(planes)
    cdef Py_ssize_t plane
    with nogil:
        for plane in prange(planes, num_threads=threads, schedule="static",
                            use_threads_if=threads > 1):
            _im2col_plane(x, cols, g, plane)


cdef void _im2col_plane(const floating[:, :, :, ::1] x, floating[:, :, ::1] cols, Window g,
                        Py_ssize_t plane) noexcept nogil:
    # cols[(c * kh + i) * kw + j, n, :] = plane (n, c) unfolded at offset (i, j); planes
    # run channel-major, so consecutive ones write the same kh * kw rows of cols one
    # after the other: a few long streams instead of C * kh * kw short ones
    cdef Py_ssize_t n = plane % x.shape[0]
    cdef Py_ssize_t c = plane // x.shape[0]
    _unfold_plane(&x[n, c, 0, 0], x.shape[2], x.shape[3], &cols[c * g.kh * g.kw, n, 0],
                  cols.shape[1] * cols.shape[2], g)


def col2im(cols, x_shape, kernel_size, stride=1, padding=0, dilation=1):
    """Fold (C * kh * kw, N, OH * OW) columns back into a (N, C, H, W) array, adding overlaps.

    The adjoint of :func:`im2col`: the gradient of a convolution's input from
    the gradient of its columns.

    >>> col2im(np.ones((4, 1, 1)), (1, 1, 2, 2), 2)[0, 0]
    array([[1., 1.],
           [1., 1.]])
    """
    name = "col2im"
    arr = _float_array(cols, name, "cols", (3,))
    shape = _x_shape(x_shape, name)
    cdef Window g = _window(shape, kernel_size, stride, padding, dilation, name)
    expected = (shape[1] * g.kh * g.kw, shape[0], g.oh * g.ow)
    if arr.shape != expected:
        raise ValueError(f"{name}: expected cols of shape {expected}, got {arr.shape}")
    # every plane is zeroed by the thread that fills it: one pass over fresh memory
    out = np.empty(shape, dtype=arr.dtype)
    if out.size == 0:
        return out  # every column is padding
    if arr.dtype == np.float32:
        _col2im[float](arr, out, g)
    else:
        _col2im[double](arr, out, g)
    return out


cdef void _col2im(const floating[:, :, ::1] cols, floating[:, :, :, ::1] out,
                  Window g) noexcept:
    # each (n, c) plane is written by one thread, in a fixed order
    cdef Py_ssize_t planes = out.shape[0] * out.shape[1]
    cdef int threads = _threads_for(planes)
    cdef Py_ssize_t plane
    with nogil:
        for plane in prange(planes, num_threads=threads, schedule="static",
                            use_threads_if=threads > 1):
            _col2im_plane(cols, out, g, plane)


cdef void _col2im_plane(const floating[:, :, ::1] cols, floating[:, :, :, ::1] out, Window g,
                        Py_ssize_t plane) noexcept nogil:
    # channel-major, as _im2col_plane: consecutive planes read the same rows of cols
    cdef Py_ssize_t n = plane % out.shape[0]
    cdef Py_ssize_t c = plane // out.shape[0]
    _fold_plane(&cols[c * g.kh * g.kw, n, 0], cols.shape[1] * cols.shape[2], &out[n, c, 0, 0],
                out.shape[2], out.shape[3], g)


def swap_leading_axes(x, bias=None):
    """Swap the two leading axes of a (A, B, L) array, adding ``bias[a]``: (B, A, L).

    ``out[b, a, :] = x[a, b, :] + bias[a]`` (``bias`` (A,) or None), C-contiguous,
    copied with threads: a convolution's (O, N, L) matrix product becomes its
    (N, O, L) output with the bias added, and its (N, O, L) output gradient the
    (O, N, L) operand of the backward products. Without a bias the values are
    copied unchanged (a -0.0 stays -0.0); with one, each sum is rounded once to
    x's dtype, as numpy's ``x.transpose(1, 0, 2) + bias[None, :, None]`` does.

    >>> swap_leading_axes(np.arange(6.0).reshape(2, 3, 1), np.array([10.0, 20.0]))[..., 0]
    array([[10., 23.],
           [11., 24.],
           [12., 25.]])
    """
    name = "swap_leading_axes"
    arr = _float_array(x, name, "x", (3,))
    has_bias = bias is not None
    shift = _channel_vector(bias, name, "bias", arr.shape[0], 0.0)
    out = np.empty((arr.shape[1], arr.shape[0], arr.shape[2]), dtype=arr.dtype)
    if out.size == 0:
        return out
    if arr.dtype == np.float32:
        _swap_leading[float](arr, shift, has_bias, out)
    else:
        _swap_leading[double](arr, shift, has_bias, out)
    return out


cdef void _swap_leading(const floating[:, :, ::1] x, const double[::1] bias, bint has_bias,
                        floating[:, :, ::1] out) noexcept:
    # one output row (b, a) per iteration; threads only for a few blocks' worth of copying
    cdef Py_ssize_t rows = out.shape[0] * out.shape[1]
    cdef int threads = _threads_for(rows * out.shape[2] // VALUES_PER_THREAD)
    cdef Py_ssize_t row
    with nogil:
        for row in prange(rows, num_threads=threads, schedule="static",
                          use_threads_if=threads > 1):
            _swap_row(x, bias, has_bias, out, row)


cdef void _swap_row(const floating[:, :, ::1] x, const double[::1] bias, bint has_bias,
                    floating[:, :, ::1] out, Py_ssize_t row) noexcept nogil:
    cdef Py_ssize_t b = row // out.shape[1]
    cdef Py_ssize_t a = row % out.shape[1]
    cdef Py_ssize_t length = out.shape[2]
    cdef Py_ssize_t p
    cdef const floating* src = &x[a, b, 0]
    cdef floating* dst = &out[b, a, 0]
    cdef double shift = bias[a]
    if has_bias:
        # a sum of two floats rounded once from double is the float sum's bits
        for p in range(length):
            dst[p] = <floating>(src[p] + shift)
    else:
        for p in range(length):
            dst[p] = src[p]


def conv2d_direct_forward(x, weight, bias=None, stride=1, padding=0, dilation=1):
    """A convolution computed sample by sample without im2col: (N, O, OH, OW).

    x (N, C, H, W), weight (O, C, kh, kw) (PyTorch's layout, one group), bias (O,)
    or None; zero padding, OH as for :func:`im2col`. Each sample's windows are
    unfolded into a (C * kh * kw, OH * OW) block that stays in cache, and each
    output value is its weighted sum over that block's rows (in x's dtype, as a
    matrix product sums), plus the bias. The work per output value grows with
    K = C * kh * kw and nothing is blocked over K: this is for small K (a first
    layer, K = 9 or 27), where the product over the batch is bound by memory;
    above a few dozen, im2col and one matrix product are faster.

    >>> out = conv2d_direct_forward(np.ones((1, 1, 3, 3)), np.ones((2, 1, 2, 2)), np.ones(2))
    >>> out.shape, out[0, :, 0, 0]
    ((1, 2, 2, 2), array([5., 5.]))
    """
    name = "conv2d_direct_forward"
    arr = _float_array(x, name, "x", (4,))
    w = _float_array(weight, name, "weight", (4,), arr.dtype)
    if w.shape[1] != arr.shape[1]:
        raise ValueError(
            f"{name}: expected a weight of shape (O, {arr.shape[1]}, kh, kw) for an input "
            f"of shape {arr.shape}, got {w.shape}"
        )
    cdef Window g = _window(arr.shape, w.shape[2:], stride, padding, dilation, name)
    batch, out_channels = arr.shape[0], w.shape[0]
    has_bias = bias is not None
    shift = _channel_vector(bias, name, "bias", out_channels, 0.0)
    out = np.empty((batch, out_channels, g.oh, g.ow), dtype=arr.dtype)
    if out.size == 0:
        return out
    if arr.size == 0:
        # every window is padding: each output is the weight's sum times zero (NaN for
        # an infinite or NaN weight, as the product with zero columns gives), plus the bias
        with np.errstate(invalid="ignore"):
            zero = (w.reshape(out_channels, -1) * 0).sum(axis=1)
        out[...] = (zero + shift if has_bias else zero)[:, None, None]
        return out
    cdef int threads = _threads_for(batch)
    scratch = _direct_scratch(threads, arr.shape[1] * g.kh * g.kw, g, arr.dtype)
    out3 = out.reshape(batch, out_channels, g.oh * g.ow)
    w2 = w.reshape(out_channels, -1)
    if arr.dtype == np.float32:
        _conv_direct[float](arr, w2, shift, has_bias, out3, scratch, g, threads)
    else:
        _conv_direct[double](arr, w2, shift, has_bias, out3, scratch, g, threads)
    return out


cdef object _direct_scratch(int threads, Py_ssize_t rows, Window g, dtype):
    # Per thread, (rows + 1) zeroed rows of OH * OW values rounded up to DIRECT_BLOCK:
    # the unfolded sample and one more row (the direct weight gradient's copy of a dy
    # row); the zero tails let the weight gradient's inner loops run whole blocks of
    # a fixed length, which the compiler vectorizes without a remainder.
    cdef Py_ssize_t length = (g.oh * g.ow + DIRECT_BLOCK - 1) // DIRECT_BLOCK * DIRECT_BLOCK
    return np.zeros((threads, rows + 1, length), dtype=dtype)


cdef void _conv_direct(const floating[:, :, :, ::1] x, const floating[:, ::1] weight,
                       const double[::1] bias, bint has_bias, floating[:, :, ::1] out,
                       floating[:, :, ::1] scratch, Window g, int threads) noexcept:
    # one sample per iteration, in the scratch rows of the thread that runs it
    cdef Py_ssize_t n
    with nogil:
        for n in prange(x.shape[0], num_threads=threads, schedule="static",
                        use_threads_if=threads > 1):
            _conv_direct_sample(x, weight, bias, has_bias, out, scratch, threadid(), g, n)


cdef void _conv_direct_sample(const floating[:, :, :, ::1] x, const floating[:, ::1] weight,
                              const double[::1] bias, bint has_bias, floating[:, :, ::1] out,
                              floating[:, :, ::1] scratch, int thread, Window g,
                              Py_ssize_t n) noexcept nogil:
    # out[n] = weight @ cols + bias[:, None], cols the (K, L) unfolded sample n. Each
    # output row (L values, in L1) is built in K passes over whole rows: the passes'
    # iterations are independent, so they run at load/store throughput (sums kept in
    # a block of registers across K instead waited on each other).
    cdef Py_ssize_t positions = out.shape[2]
    cdef Py_ssize_t stride = scratch.shape[2]
    cdef Py_ssize_t taps = g.kh * g.kw
    cdef Py_ssize_t c, o, k, p
    cdef floating scale
    cdef double shift
    cdef floating* cols = &scratch[thread, 0, 0]
    cdef const floating* col
    cdef floating* dst
    for c in range(x.shape[1]):
        _unfold_plane(&x[n, c, 0, 0], x.shape[2], x.shape[3], cols + c * taps * stride,
                      stride, g)
    for o in range(out.shape[1]):
        dst = &out[n, o, 0]
        scale = weight[o, 0]
        for p in range(positions):
            dst[p] = scale * cols[p]
        for k in range(1, weight.shape[1]):
            scale = weight[o, k]
            col = cols + k * stride
            for p in range(positions):
                dst[p] += scale * col[p]
        if has_bias:
            shift = bias[o]
            for p in range(positions):
                dst[p] = <floating>(dst[p] + shift)


def conv2d_direct_weight_grad(dy, x, kernel_size, stride=1, padding=0, dilation=1):
    """The weight gradient of a convolution, sample by sample: (O, C, kh, kw).

    dy (N, O, OH, OW) the output gradient, x (N, C, H, W) the input, one group:
    ``dweight[o, c, i, j] = sum over n, out_y, out_x of dy * the window value``.
    Each sample's windows are unfolded into a cached (C * kh * kw, OH * OW) block
    and its share is a dot product per (o, k), summed in x's dtype over
    DIRECT_BLOCK lanes and then in double; the shares are summed over the samples,
    in order, in double. For small K = C * kh * kw, like :func:`conv2d_direct_forward`.

    >>> conv2d_direct_weight_grad(np.ones((1, 1, 2, 2)), np.ones((1, 1, 3, 3)), 2)[0, 0]
    array([[4., 4.],
           [4., 4.]])
    """
    name = "conv2d_direct_weight_grad"
    arr = _float_array(x, name, "x", (4,))
    grad = _float_array(dy, name, "dy", (4,), arr.dtype)
    cdef Window g = _window(arr.shape, kernel_size, stride, padding, dilation, name)
    batch, channels = arr.shape[0], arr.shape[1]
    expected = (batch, grad.shape[1], g.oh, g.ow)
    if grad.shape != expected:
        raise ValueError(
            f"{name}: expected dy of shape (N, O, OH, OW) = {expected[:1]} + (O,) + "
            f"{expected[2:]} for x of shape {arr.shape}, got {grad.shape}"
        )
    out_channels, taps = grad.shape[1], channels * g.kh * g.kw
    shape = (out_channels, channels, g.kh, g.kw)
    if grad.size == 0 or taps == 0:
        return np.zeros(shape, dtype=arr.dtype)
    grad3 = grad.reshape(batch, out_channels, g.oh * g.ow)
    if arr.size == 0:
        # every window is padding: dy times zero, NaN where dy is not finite
        with np.errstate(invalid="ignore"):
            zero = (grad3 * 0).sum(axis=(0, 2))
        return np.broadcast_to(zero[:, None], (out_channels, taps)).reshape(shape).copy()
    cdef int threads = _threads_for(batch)
    scratch = _direct_scratch(threads, taps, g, arr.dtype)
    lanes = np.empty((threads, taps, DIRECT_BLOCK), dtype=arr.dtype)
    shares = np.empty((batch, out_channels, taps), dtype=np.float64)
    if arr.dtype == np.float32:
        _conv_direct_weight_grad[float](grad3, arr, shares, scratch, lanes, g, threads)
    else:
        _conv_direct_weight_grad[double](grad3, arr, shares, scratch, lanes, g, threads)
    # numpy adds the (O, K) shares in sample order: the same bits for any thread count
    return shares.sum(axis=0).astype(arr.dtype).reshape(shape)


cdef void _conv_direct_weight_grad(const floating[:, :, ::1] dy,
                                   const floating[:, :, :, ::1] x, double[:, :, ::1] shares,
                                   floating[:, :, ::1] scratch, floating[:, :, ::1] lanes,
                                   Window g, int threads) noexcept:
    cdef Py_ssize_t n
    with nogil:
        for n in prange(x.shape[0], num_threads=threads, schedule="static",
                        use_threads_if=threads > 1):
            _conv_direct_weight_share(dy, x, shares, scratch, lanes, threadid(), g, n)


cdef void _conv_direct_weight_share(const floating[:, :, ::1] dy,
                                    const floating[:, :, :, ::1] x, double[:, :, ::1] shares,
                                    floating[:, :, ::1] scratch, floating[:, :, ::1] lanes,
                                    int thread, Window g, Py_ssize_t n) noexcept nogil:
    # shares[n, o, k] = dy[n, o] . cols[k], cols the (K, L) unfolded sample n. The dy
    # row is copied into the scratch's last row, whose zero tail pads it to whole
    # blocks; each block adds into DIRECT_BLOCK lanes per k (independent of each
    # other, so the additions pipeline), which are summed in double at the end.
    cdef Py_ssize_t positions = dy.shape[2]
    cdef Py_ssize_t stride = scratch.shape[2]
    cdef Py_ssize_t taps = g.kh * g.kw
    cdef Py_ssize_t rows = shares.shape[2]
    cdef Py_ssize_t c, o, k, p, block, start
    cdef double total
    cdef floating* cols = &scratch[thread, 0, 0]
    cdef floating* grad = &scratch[thread, rows, 0]
    cdef floating* acc = &lanes[thread, 0, 0]
    cdef floating* lane
    cdef const floating* col
    for c in range(x.shape[1]):
        _unfold_plane(&x[n, c, 0, 0], x.shape[2], x.shape[3], cols + c * taps * stride,
                      stride, g)
    for o in range(dy.shape[1]):
        for p in range(positions):
            grad[p] = dy[n, o, p]
        for p in range(rows * DIRECT_BLOCK):
            acc[p] = 0
        for block in range(stride // DIRECT_BLOCK):
            start = block * DIRECT_BLOCK
            for k in range(rows):
                col = cols + k * stride + start
                lane = acc + k * DIRECT_BLOCK
                for p in range(DIRECT_BLOCK):
                    lane[p] += grad[start + p] * col[p]
        for k in range(rows):
            total = 0.0
            for p in range(DIRECT_BLOCK):
                total += acc[k * DIRECT_BLOCK + p]
            shares[n, o, k] = total


# ---------------------------------------------------------------- pooling

def max_pool2d_forward(x, kernel_size, stride=None, padding=0, relu=False):
    """2-D max pooling of a (N, C, H, W) input: ``(out, indices)``, both (N, C, OH, OW).

    ``stride`` defaults to ``kernel_size``; padding counts as -inf. ``indices`` are
    int64 positions ``h * W + w`` in each input plane, which
    :func:`max_pool2d_backward` takes. As PyTorch's CPU kernel, a window keeps its
    first maximum, and a NaN beats every number: the last NaN of a window wins
    (row-major window order).

    With ``relu``, ``out`` is exactly ``max_pool(relu(x))`` (equal to
    ``relu(max_pool(x))`` up to the sign of zero: where a window's maximum is not
    positive, the result is ``relu`` of the window's first cell, -0.0 only if that
    cell is -0.0, as pooling the ReLU's zeros would give). ``indices`` stay those of
    ``x``'s maxima; they differ from ``max_pool(relu(x))``'s only where ReLU blocks
    the gradient anyway.

    >>> out, idx = max_pool2d_forward(np.arange(16.0).reshape(1, 1, 4, 4), 2)
    >>> out[0, 0], idx[0, 0]
    (array([[ 5.,  7.],
           [13., 15.]]), array([[ 5,  7],
           [13, 15]]))
    """
    name = "max_pool2d_forward"
    arr = _float_array(x, name, "x", (4,))
    cdef Window g = _pool_geometry(arr.shape, kernel_size, stride, padding, name)
    out = np.empty((arr.shape[0], arr.shape[1], g.oh, g.ow), dtype=arr.dtype)
    indices = np.empty(out.shape, dtype=np.int64)
    if out.size == 0:
        return out, indices
    # an input with empty planes (H or W is 0) is never read: every window is padding
    if arr.dtype == np.float32:
        _max_pool_forward[float](arr, out, indices, g, bool(relu))
    else:
        _max_pool_forward[double](arr, out, indices, g, bool(relu))
    return out, indices


cdef inline bint _is_pooling_2x2(Window g) noexcept nogil:
    # the common 2x2 window with stride 2 and no padding, which has its own kernel
    return g.kh == 2 and g.kw == 2 and g.sh == 2 and g.sw == 2 and g.ph == 0 and g.pw == 0


cdef void _max_pool_forward(const floating[:, :, :, ::1] x, floating[:, :, :, ::1] out,
                            int64_t[:, :, :, ::1] indices, Window g, bint relu) noexcept:
    cdef Py_ssize_t planes = x.shape[0] * x.shape[1]
    cdef int threads = _threads_for(planes)
    cdef Py_ssize_t plane
    cdef bint two_by_two = _is_pooling_2x2(g)
    with nogil:
        for plane in prange(planes, num_threads=threads, schedule="static",
                            use_threads_if=threads > 1):
            if two_by_two:
                _max_pool_plane_2x2(x, out, indices, g, relu, plane)
            else:
                _max_pool_plane(x, out, indices, g, relu, plane)


cdef inline floating _relu_of_first(floating best, floating first) noexcept nogil:
    # max_pool(relu(x)) from the window's max ``best`` and first cell ``first``: the max
    # when it passes ReLU (positive or NaN); otherwise every cell's ReLU is a zero, all
    # tied, and the first wins: relu(first), which is -0.0 only for a -0.0 first cell
    cdef floating zero = 0
    cdef floating first_relu = zero if first < 0 else first
    return best if (best > 0) | (best != best) else first_relu


cdef void _max_pool_plane_2x2(const floating[:, :, :, ::1] x, floating[:, :, :, ::1] out,
                              int64_t[:, :, :, ::1] indices, Window g, bint relu,
                              Py_ssize_t plane) noexcept nogil:
    # The 2x2 stride-2 window, one output row at a time: the four cells of each window
    # are compared in row-major order with selects rather than branches (a branch on
    # random data mispredicts about once per comparison), so the loop over the row
    # vectorizes. Same rule as _max_pool_plane: the first maximum, the last NaN.
    cdef Py_ssize_t n = plane // x.shape[1]
    cdef Py_ssize_t c = plane % x.shape[1]
    cdef Py_ssize_t width = x.shape[3]
    cdef Py_ssize_t out_y, out_x
    cdef const floating* top
    cdef const floating* bottom
    cdef floating* best
    cdef int64_t* where
    cdef floating m, b, v, d
    cdef int64_t k, base
    cdef bint take
    for out_y in range(g.oh):
        top = &x[n, c, 2 * out_y, 0]
        bottom = top + width
        best = &out[n, c, out_y, 0]
        where = &indices[n, c, out_y, 0]
        base = 2 * out_y * width
        for out_x in range(g.ow):
            m = top[2 * out_x]
            b = top[2 * out_x + 1]
            v = bottom[2 * out_x]
            d = bottom[2 * out_x + 1]
            k = 0
            take = (b > m) | (b != b)
            m = b if take else m
            k = 1 if take else k
            take = (v > m) | (v != v)
            m = v if take else m
            k = width if take else k
            take = (d > m) | (d != d)
            m = d if take else m
            k = width + 1 if take else k
            if relu:
                m = _relu_of_first(m, top[2 * out_x])
            best[out_x] = m
            where[out_x] = base + 2 * out_x + k


cdef void _max_pool_plane(const floating[:, :, :, ::1] x, floating[:, :, :, ::1] out,
                          int64_t[:, :, :, ::1] indices, Window g, bint relu,
                          Py_ssize_t plane) noexcept nogil:
    # out[y, x] = max of the window, indices[y, x] = the flat position of its first maximum
    # (or last NaN). A whole output row at a time: each window offset (i, j) is compared
    # across the row, so the inner loop runs over outputs (long, vectorizable) rather than
    # over the few values of one window; visiting offsets in row-major order keeps the
    # first maximum, and a NaN always takes the place (the last NaN wins, as in torch).
    cdef Py_ssize_t n = plane // x.shape[1]
    cdef Py_ssize_t c = plane % x.shape[1]
    cdef Py_ssize_t height = x.shape[2]
    cdef Py_ssize_t width = x.shape[3]
    cdef Py_ssize_t out_y, out_x, y0, i, j, in_y, in_x, offset, low, high
    cdef floating value
    cdef floating* best
    cdef int64_t* where
    cdef const floating* row
    cdef bint take
    for out_y in range(g.oh):
        best = &out[n, c, out_y, 0]
        where = &indices[n, c, out_y, 0]
        y0 = out_y * g.sh - g.ph
        for out_x in range(g.ow):
            best[out_x] = -INFINITY
            where[out_x] = max(y0, 0) * width + max(out_x * g.sw - g.pw, 0)
        for i in range(g.kh):
            in_y = y0 + i
            if in_y < 0 or in_y >= height:
                continue
            row = &x[n, c, in_y, 0]
            for j in range(g.kw):
                offset = j - g.pw
                low = _first_column(offset, g.sw, g.ow)
                high = _end_column(offset, g.sw, width, g.ow, low)
                for out_x in range(low, high):
                    in_x = out_x * g.sw + offset
                    value = row[in_x]
                    take = (value > best[out_x]) | (value != value)
                    best[out_x] = value if take else best[out_x]
                    where[out_x] = in_y * width + in_x if take else where[out_x]
        if relu:
            # where still holds each window's first cell only if nothing beat -inf;
            # the first cell itself is read from its position
            row = &x[n, c, max(y0, 0), 0]
            for out_x in range(g.ow):
                best[out_x] = _relu_of_first(best[out_x], row[max(out_x * g.sw - g.pw, 0)])


# +0.0, read from memory: the write-once backward adds it to each gradient it passes, as
# the zero-filled one does (0 + -0.0 is +0.0, as in torch); a literal 0.0 would be folded
# away under -fno-signed-zeros
cdef double _plus_zero = 0.0


def max_pool2d_backward(dy, indices, x_shape, kernel_size=None, stride=None):
    """Gradient of max pooling: each output gradient goes to its window's maximum.

    ``dy`` and ``indices`` are (N, C, OH, OW); the result has ``x_shape``. Each index
    must be a position in its (H, W) plane, ``0 <= index < H * W``. Cells that are
    the maximum of several windows get the sum of their gradients (in window order).

    With ``kernel_size`` (and ``stride``, which defaults to it) of a pooling without
    padding whose windows do not overlap (stride >= kernel on both axes), every cell
    of dx is written once, with no zero fill: ``dy`` at its window's maximum, 0
    elsewhere. ``indices`` must then be those :func:`max_pool2d_forward` returned for
    that geometry, each inside its own window (checked).

    >>> max_pool2d_backward(np.ones((1, 1, 1, 1)), np.array([[[[3]]]]), (1, 1, 2, 2))[0, 0]
    array([[0., 0.],
           [0., 1.]])
    """
    name = "max_pool2d_backward"
    grad = _float_array(dy, name, "dy", (4,))
    idx = np.asarray(indices)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected integer indices, got dtype {idx.dtype}")
    shape = _x_shape(x_shape, name)
    if idx.shape != grad.shape:
        raise ValueError(f"{name}: indices have shape {idx.shape} but dy has {grad.shape}")
    if shape[:2] != grad.shape[:2]:
        raise ValueError(f"{name}: x_shape {shape} does not match dy of shape {grad.shape}")
    cdef Window g
    cdef Py_ssize_t matched
    if kernel_size is not None:
        g = _pool_geometry(shape, kernel_size, stride, 0, name)
        if grad.shape[2:] != (g.oh, g.ow):
            raise ValueError(
                f"{name}: expected dy of shape {(shape[0], shape[1], g.oh, g.ow)} for "
                f"kernel_size={(g.kh, g.kw)}, stride={(g.sh, g.sw)}, got {grad.shape}"
            )
        if g.sh >= g.kh and g.sw >= g.kw:
            idx = np.ascontiguousarray(idx, dtype=np.int64)
            dx = np.empty(shape, dtype=grad.dtype)
            if dx.size == 0:
                return dx
            if grad.dtype == np.float32:
                matched = _max_pool_backward_disjoint[float](grad, idx, dx, g)
            else:
                matched = _max_pool_backward_disjoint[double](grad, idx, dx, g)
            # each window's index was compared with each of its cells: exactly one matches
            if matched != grad.size:
                raise ValueError(
                    f"{name}: {grad.size - matched} of {grad.size} indices are not in "
                    "their own window; pass the indices max_pool2d_forward returned"
                )
            return dx
    # the kernel writes dx at each index: a position outside the plane would corrupt memory
    if idx.size and (idx.min() < 0 or idx.max() >= shape[2] * shape[3]):
        raise ValueError(f"{name}: indices out of range for planes of {shape[2:]}")
    idx = np.ascontiguousarray(idx, dtype=np.int64)
    dx = np.zeros(shape, dtype=grad.dtype)
    if grad.size == 0:
        return dx
    if grad.dtype == np.float32:
        _max_pool_backward[float](grad, idx, dx.reshape(shape[0], shape[1], -1))
    else:
        _max_pool_backward[double](grad, idx, dx.reshape(shape[0], shape[1], -1))
    return dx


cdef void _max_pool_backward(const floating[:, :, :, ::1] dy,
                             const int64_t[:, :, :, ::1] indices,
                             floating[:, :, ::1] dx) noexcept:
    cdef Py_ssize_t planes = dy.shape[0] * dy.shape[1]
    cdef int threads = _threads_for(planes)
    cdef Py_ssize_t plane
    with nogil:
        for plane in prange(planes, num_threads=threads, schedule="static",
                            use_threads_if=threads > 1):
            _max_pool_backward_plane(dy, indices, dx, plane)


cdef void _max_pool_backward_plane(const floating[:, :, :, ::1] dy,
                                   const int64_t[:, :, :, ::1] indices,
                                   floating[:, :, ::1] dx, Py_ssize_t plane) noexcept nogil:
    # dx[n, c, indices[n, c, y, x]] += dy[n, c, y, x]
    cdef Py_ssize_t n = plane // dy.shape[1]
    cdef Py_ssize_t c = plane % dy.shape[1]
    cdef Py_ssize_t out_y, out_x
    for out_y in range(dy.shape[2]):
        for out_x in range(dy.shape[3]):
            dx[n, c, indices[n, c, out_y, out_x]] += dy[n, c, out_y, out_x]


cdef Py_ssize_t _max_pool_backward_disjoint(const floating[:, :, :, ::1] dy,
                                            const int64_t[:, :, :, ::1] indices,
                                            floating[:, :, :, ::1] dx, Window g) noexcept:
    # the windows do not overlap: returns how many windows found their index
    cdef Py_ssize_t planes = dy.shape[0] * dy.shape[1]
    cdef int threads = _threads_for(planes)
    cdef Py_ssize_t plane
    cdef Py_ssize_t matched = 0
    cdef floating zero = <floating>_plus_zero
    cdef bint two_by_two = _is_pooling_2x2(g)
    with nogil:
        for plane in prange(planes, num_threads=threads, schedule="static",
                            use_threads_if=threads > 1):
            if two_by_two:
                matched += _max_pool_backward_plane_2x2(dy, indices, dx, g, zero, plane)
            else:
                matched += _max_pool_backward_disjoint_plane(dy, indices, dx, g, zero, plane)
    return matched


cdef Py_ssize_t _max_pool_backward_plane_2x2(const floating[:, :, :, ::1] dy,
                                             const int64_t[:, :, :, ::1] indices,
                                             floating[:, :, :, ::1] dx, Window g,
                                             floating zero, Py_ssize_t plane) noexcept nogil:
    # _max_pool_backward_disjoint_plane for 2x2 windows with stride 2, a pair of rows
    # at a time: both rows cleared while they are in L1 (so dx goes to memory once, with
    # no separate zero-fill pass), then each window's maximum stored. Planes of 14x14 or
    # 28x28 give rows of 7 or 14 windows, too short for a vector loop over one row.
    cdef Py_ssize_t n = plane // dy.shape[1]
    cdef Py_ssize_t c = plane % dy.shape[1]
    cdef Py_ssize_t height = dx.shape[2]
    cdef Py_ssize_t width = dx.shape[3]
    cdef Py_ssize_t out_y, out_x, in_y
    cdef Py_ssize_t matched = 0
    cdef floating* top
    cdef const floating* grad
    cdef const int64_t* where
    cdef int64_t offset, inside
    cdef floating blank = 0
    for out_y in range(g.oh):
        top = &dx[n, c, 2 * out_y, 0]
        grad = &dy[n, c, out_y, 0]
        where = &indices[n, c, out_y, 0]
        # the two rows are cleared while they are in L1, then each window's maximum set
        for out_x in range(2 * width):
            top[out_x] = blank
        for out_x in range(g.ow):
            # the maximum's offset from the window's top-left cell: 0, 1, W or W + 1
            offset = where[out_x] - (2 * out_y * width + 2 * out_x)
            inside = (offset == 0) | (offset == 1) | (offset == width) | (offset == width + 1)
            matched += inside
            # stored unconditionally (a branch on which cell won mispredicts half the
            # time): an index outside its window writes the window's first cell instead,
            # in bounds, and the wrapper raises
            top[2 * out_x + offset * inside] = grad[out_x] + zero
    for in_y in range(2 * g.oh, height):  # an odd height: the last row is in no window
        top = &dx[n, c, in_y, 0]
        for out_x in range(width):
            top[out_x] = blank
    return matched


cdef Py_ssize_t _max_pool_backward_disjoint_plane(const floating[:, :, :, ::1] dy,
                                                  const int64_t[:, :, :, ::1] indices,
                                                  floating[:, :, :, ::1] dx, Window g,
                                                  floating zero,
                                                  Py_ssize_t plane) noexcept nogil:
    # Every cell written once, row by row: a cell of window (y, x) gets
    # 0 + dy[y, x] if it is the window's maximum, else 0; cells no window covers
    # (the gaps of a stride larger than the kernel, the rows and columns past the last
    # window) get 0. Returns the number of cells that matched their window's index.
    cdef Py_ssize_t n = plane // dy.shape[1]
    cdef Py_ssize_t c = plane % dy.shape[1]
    cdef Py_ssize_t height = dx.shape[2]
    cdef Py_ssize_t width = dx.shape[3]
    cdef Py_ssize_t in_y, in_x, out_y, out_x, i, j
    cdef Py_ssize_t matched = 0
    cdef floating* row
    cdef const floating* grad
    cdef const int64_t* where
    cdef bint hit
    for in_y in range(height):
        row = &dx[n, c, in_y, 0]
        out_y = in_y // g.sh
        i = in_y - out_y * g.sh
        if out_y >= g.oh or i >= g.kh:
            for in_x in range(width):
                row[in_x] = 0
            continue
        grad = &dy[n, c, out_y, 0]
        where = &indices[n, c, out_y, 0]
        for out_x in range(g.ow):
            # the last window's stride may reach past the plane
            for j in range(min(g.sw, width - out_x * g.sw)):
                in_x = out_x * g.sw + j
                hit = (j < g.kw) & (where[out_x] == in_y * width + in_x)
                row[in_x] = grad[out_x] + zero if hit else 0
                matched += hit
        for in_x in range(g.ow * g.sw, width):
            row[in_x] = 0
    return matched


cdef struct Cell:
    # one average-pooling window: its cells inside the input, and its divisor
    Py_ssize_t top, bottom, left, right
    double divisor


cdef inline Cell _avg_cell(Window g, Py_ssize_t height, Py_ssize_t width, Py_ssize_t out_y,
                           Py_ssize_t out_x, bint count_include_pad) noexcept nogil:
    # the window of output (out_y, out_x) clipped to the input; its divisor counts the
    # cells inside the padded input (include pad) or inside the input itself
    cdef Cell cell
    cdef Py_ssize_t y0 = out_y * g.sh - g.ph
    cdef Py_ssize_t x0 = out_x * g.sw - g.pw
    cdef Py_ssize_t y1 = min(y0 + g.kh, height + g.ph)
    cdef Py_ssize_t x1 = min(x0 + g.kw, width + g.pw)
    cell.top = max(y0, 0)
    cell.bottom = min(y0 + g.kh, height)
    cell.left = max(x0, 0)
    cell.right = min(x0 + g.kw, width)
    if count_include_pad:
        cell.divisor = <double>((y1 - y0) * (x1 - x0))
    else:
        cell.divisor = <double>((min(y1, height) - cell.top) * (min(x1, width) - cell.left))
    return cell


def avg_pool2d_forward(x, kernel_size, stride=None, padding=0, count_include_pad=True):
    """2-D average pooling of a (N, C, H, W) input, (N, C, OH, OW).

    ``stride`` defaults to ``kernel_size``; padding is zeros, counted in the divisor
    when ``count_include_pad`` (PyTorch's default), left out of it otherwise.

    >>> avg_pool2d_forward(np.arange(16.0).reshape(1, 1, 4, 4), 2)[0, 0]
    array([[ 2.5,  4.5],
           [10.5, 12.5]])
    """
    name = "avg_pool2d_forward"
    arr = _float_array(x, name, "x", (4,))
    cdef Window g = _pool_geometry(arr.shape, kernel_size, stride, padding, name)
    out = np.empty((arr.shape[0], arr.shape[1], g.oh, g.ow), dtype=arr.dtype)
    if out.size == 0:
        return out
    # an input with empty planes (H or W is 0) is never read: every window is padding
    if arr.dtype == np.float32:
        _avg_pool_forward[float](arr, out, g, bool(count_include_pad))
    else:
        _avg_pool_forward[double](arr, out, g, bool(count_include_pad))
    return out


cdef void _avg_pool_forward(const floating[:, :, :, ::1] x, floating[:, :, :, ::1] out,
                            Window g, bint count_include_pad) noexcept:
    cdef Py_ssize_t planes = x.shape[0] * x.shape[1]
    cdef int threads = _threads_for(planes)
    cdef Py_ssize_t plane
    with nogil:
        for plane in prange(planes, num_threads=threads, schedule="static",
                            use_threads_if=threads > 1):
            _avg_pool_forward_plane(x, out, g, count_include_pad, plane)


cdef void _avg_pool_forward_plane(const floating[:, :, :, ::1] x, floating[:, :, :, ::1] out,
                                  Window g, bint count_include_pad,
                                  Py_ssize_t plane) noexcept nogil:
    # out[n, c, y, x] = the sum of the window's cells / its divisor
    cdef Py_ssize_t n = plane // x.shape[1]
    cdef Py_ssize_t c = plane % x.shape[1]
    cdef Py_ssize_t out_y, out_x, in_y, in_x
    cdef Cell cell
    cdef double total
    for out_y in range(g.oh):
        for out_x in range(g.ow):
            cell = _avg_cell(g, x.shape[2], x.shape[3], out_y, out_x, count_include_pad)
            total = 0.0
            for in_y in range(cell.top, cell.bottom):
                for in_x in range(cell.left, cell.right):
                    total = total + x[n, c, in_y, in_x]
            out[n, c, out_y, out_x] = <floating>(total / cell.divisor)


def avg_pool2d_backward(dy, x_shape, kernel_size, stride=None, padding=0,
                        count_include_pad=True):
    """Gradient of average pooling: each output gradient spread evenly over its window.

    >>> avg_pool2d_backward(np.ones((1, 1, 1, 1)), (1, 1, 2, 2), 2)[0, 0]
    array([[0.25, 0.25],
           [0.25, 0.25]])
    """
    name = "avg_pool2d_backward"
    grad = _float_array(dy, name, "dy", (4,))
    shape = _x_shape(x_shape, name)
    cdef Window g = _pool_geometry(shape, kernel_size, stride, padding, name)
    if grad.shape != (shape[0], shape[1], g.oh, g.ow):
        raise ValueError(
            f"{name}: expected dy of shape {(shape[0], shape[1], g.oh, g.ow)}, got {grad.shape}"
        )
    dx = np.zeros(shape, dtype=grad.dtype)
    if dx.size == 0:
        return dx  # every window is padding
    if grad.dtype == np.float32:
        _avg_pool_backward[float](grad, dx, g, bool(count_include_pad))
    else:
        _avg_pool_backward[double](grad, dx, g, bool(count_include_pad))
    return dx


cdef void _avg_pool_backward(const floating[:, :, :, ::1] dy, floating[:, :, :, ::1] dx,
                             Window g, bint count_include_pad) noexcept:
    cdef Py_ssize_t planes = dx.shape[0] * dx.shape[1]
    cdef int threads = _threads_for(planes)
    cdef Py_ssize_t plane
    with nogil:
        for plane in prange(planes, num_threads=threads, schedule="static",
                            use_threads_if=threads > 1):
            _avg_pool_backward_plane(dy, dx, g, count_include_pad, plane)


cdef void _avg_pool_backward_plane(const floating[:, :, :, ::1] dy, floating[:, :, :, ::1] dx,
                                   Window g, bint count_include_pad,
                                   Py_ssize_t plane) noexcept nogil:
    # each cell of the window of (y, x) gets dy[n, c, y, x] / its divisor
    cdef Py_ssize_t n = plane // dx.shape[1]
    cdef Py_ssize_t c = plane % dx.shape[1]
    cdef Py_ssize_t out_y, out_x, in_y, in_x
    cdef Cell cell
    cdef double share
    for out_y in range(g.oh):
        for out_x in range(g.ow):
            cell = _avg_cell(g, dx.shape[2], dx.shape[3], out_y, out_x, count_include_pad)
            share = dy[n, c, out_y, out_x] / cell.divisor
            for in_y in range(cell.top, cell.bottom):
                for in_x in range(cell.left, cell.right):
                    dx[n, c, in_y, in_x] += <floating>share


# ---------------------------------------------------------------- elementwise activations
#
# ReLU, sigmoid and tanh of any shape, one pass each way. The array is seen flat (a
# copy first if it is not C-contiguous) and cut into chunks of VALUES_PER_THREAD
# values, fixed by the size alone: each chunk is one thread's piece of work, so the
# bits never depend on the thread count. The backward kernels take the forward's
# output, as torch's do, so the input can be freed after the forward.

cdef enum:
    ACTIVATION_RELU = 0
    ACTIVATION_SIGMOID = 1
    ACTIVATION_TANH = 2


cdef object _activation_input(x, str name, str what):
    """``x`` as a C-contiguous float32/float64 array of any shape."""
    arr = np.asarray(x)
    # reshaped back: np.ascontiguousarray makes a 0-d array 1-d
    return _float_array(arr, name, what, None).reshape(arr.shape)


cdef object _activation_forward(x, str name, int kind):
    arr = _activation_input(x, name, "x")
    out = np.empty(arr.shape, dtype=arr.dtype)
    if arr.size == 0:
        return out
    if arr.dtype == np.float32:
        _activation_forward_flat[float](arr.reshape(-1), out.reshape(-1), kind)
    else:
        _activation_forward_flat[double](arr.reshape(-1), out.reshape(-1), kind)
    return out


cdef object _activation_backward(dy, y, str name, int kind):
    out = _activation_input(y, name, "y")
    grad = _activation_input(dy, name, "dy")
    if grad.dtype != out.dtype:
        raise TypeError(f"{name}: dy has dtype {grad.dtype} but y has {out.dtype}")
    if grad.shape != out.shape:
        raise ValueError(f"{name}: dy has shape {grad.shape} but y has {out.shape}")
    dx = np.empty(out.shape, dtype=out.dtype)
    if out.size == 0:
        return dx
    if out.dtype == np.float32:
        _activation_backward_flat[float](grad.reshape(-1), out.reshape(-1), dx.reshape(-1), kind)
    else:
        _activation_backward_flat[double](grad.reshape(-1), out.reshape(-1), dx.reshape(-1),
                                          kind)
    return dx


def relu_forward(x):
    """``max(x, 0)`` element-wise, any shape, as torch's ``relu``: NaN stays NaN, -0.0 stays -0.0.

    >>> relu_forward(np.array([-1.0, -0.0, 2.0, np.nan]))
    array([ 0., -0.,  2., nan])
    """
    return _activation_forward(x, "relu_forward", ACTIVATION_RELU)


def relu_backward(dy, y):
    """Gradient of ReLU from its output ``y``: ``0 if y <= 0 else dy`` (a select, not a product).

    As torch's ``threshold_backward(dy, y, 0)``: the gradient passes where the output is
    positive or NaN, and is 0 elsewhere even when ``dy`` is inf or NaN. ``dy`` and ``y``
    have the same shape and dtype.

    >>> relu_backward(np.array([5.0, np.nan, 5.0]), np.array([0.0, 0.0, np.nan]))
    array([0., 0., 5.])
    """
    return _activation_backward(dy, y, "relu_backward", ACTIVATION_RELU)


def sigmoid_forward(x):
    """``1 / (1 + exp(-x))`` element-wise, any shape; exp is only taken of ``-|x|`` (no overflow).

    Float32 is computed in double and rounded once. Each value costs a scalar libm
    ``exp``: one thread is slower than numpy's SIMD exp (Tensor.sigmoid uses numpy
    for the forward and :func:`sigmoid_backward` for the backward); a vectorizable
    exp would change that.

    >>> sigmoid_forward(np.array([0.0, 1000.0, -1000.0]))
    array([0.5, 1. , 0. ])
    """
    return _activation_forward(x, "sigmoid_forward", ACTIVATION_SIGMOID)


def sigmoid_backward(dy, y):
    """Gradient of sigmoid from its output ``y``: ``dy * (1 - y) * y``, torch's order, in y's dtype.

    >>> sigmoid_backward(np.array([1.0]), np.array([0.5]))
    array([0.25])
    """
    return _activation_backward(dy, y, "sigmoid_backward", ACTIVATION_SIGMOID)


def tanh_forward(x):
    """Hyperbolic tangent element-wise, any shape; float32 is computed in double and rounded once.

    A scalar libm ``tanh`` per value: slower than numpy's SIMD tanh on one thread (see
    :func:`sigmoid_forward`).

    >>> tanh_forward(np.array([0.0, 1000.0]))
    array([0., 1.])
    """
    return _activation_forward(x, "tanh_forward", ACTIVATION_TANH)


def tanh_backward(dy, y):
    """Gradient of tanh from its output ``y``: ``dy * (1 - y * y)``, torch's order, in y's dtype.

    >>> tanh_backward(np.array([2.0]), np.array([0.5]))
    array([1.5])
    """
    return _activation_backward(dy, y, "tanh_backward", ACTIVATION_TANH)


cdef void _activation_forward_flat(const floating[::1] x, floating[::1] out,
                                   int kind) noexcept:
    cdef Py_ssize_t size = x.shape[0]
    cdef Py_ssize_t chunks = (size + VALUES_PER_THREAD - 1) // VALUES_PER_THREAD
    cdef int threads = _threads_for(chunks)
    cdef Py_ssize_t chunk, start
    with nogil:
        for chunk in prange(chunks, num_threads=threads, schedule="static",
                            use_threads_if=threads > 1):
            start = chunk * VALUES_PER_THREAD
            _activation_forward_chunk(&x[start], &out[start],
                                      min(<Py_ssize_t>VALUES_PER_THREAD, size - start), kind)


cdef void _activation_forward_chunk(const floating* x, floating* out, Py_ssize_t size,
                                    int kind) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating zero = 0
    cdef double value, e
    if kind == ACTIVATION_RELU:
        # x < 0 ? 0 : x keeps NaN (the comparison is false) and -0.0, as torch's relu
        for i in range(size):
            out[i] = zero if x[i] < 0 else x[i]
    elif kind == ACTIVATION_SIGMOID:
        # exp(-|x|) never overflows: 1 / (1 + e) for x >= 0, e / (1 + e) below; NaN stays
        for i in range(size):
            value = x[i]
            e = exp(-fabs(value))
            out[i] = <floating>(1.0 / (1.0 + e) if value >= 0 else e / (1.0 + e))
    else:
        for i in range(size):
            out[i] = <floating>tanh(<double>x[i])


cdef void _activation_backward_flat(const floating[::1] dy, const floating[::1] y,
                                    floating[::1] dx, int kind) noexcept:
    cdef Py_ssize_t size = y.shape[0]
    cdef Py_ssize_t chunks = (size + VALUES_PER_THREAD - 1) // VALUES_PER_THREAD
    cdef int threads = _threads_for(chunks)
    cdef Py_ssize_t chunk, start
    with nogil:
        for chunk in prange(chunks, num_threads=threads, schedule="static",
                            use_threads_if=threads > 1):
            start = chunk * VALUES_PER_THREAD
            _activation_backward_chunk(&dy[start], &y[start], &dx[start],
                                       min(<Py_ssize_t>VALUES_PER_THREAD, size - start), kind)


cdef void _activation_backward_chunk(const floating* dy, const floating* y, floating* dx,
                                     Py_ssize_t size, int kind) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating zero = 0
    cdef floating one = 1
    if kind == ACTIVATION_RELU:
        # torch's threshold_backward(dy, y, 0): a select, so an inf or NaN dy gives 0 where
        # y <= 0; a NaN y lets dy through
        for i in range(size):
            dx[i] = zero if y[i] <= 0 else dy[i]
    elif kind == ACTIVATION_SIGMOID:
        for i in range(size):
            dx[i] = dy[i] * (one - y[i]) * y[i]
    else:
        for i in range(size):
            dx[i] = dy[i] * (one - y[i] * y[i])


# ---------------------------------------------------------------- synchronized batch norm's pieces
#
# SyncBatchNorm (minidl.nn.SyncBatchNorm) splits the training batch norm into the
# pieces between which its processes exchange per-channel numbers: each process's
# statistics (count, mean, sum of squared deviations) for Chan et al.'s merge; the
# normalization with the merged statistics; the two per-channel sums of the
# backward; and dx from the sums of all processes. Each piece reuses the cores of
# the batch-norm kernels above (``_moments``, ``_sum_grad_and_product``,
# ``_bn_affine``, ``_update_running``), so one process computes what
# ``batchnorm_forward_train`` and ``batchnorm_backward`` compute, in the same order.

def batchnorm_stats(x):
    """Per-channel ``(count, mean, m2)`` of x, without normalizing it.

    ``x`` is (N, C), (N, C, L), (N, C, H, W) or (N, C, D, H, W); ``count`` is the number
    of values per channel (N * L, N * H * W, ...), ``mean`` and ``m2`` (the sum of
    squared deviations from the mean) are float64 (C,) arrays computed in two
    passes with double accumulators, as ``batchnorm_forward_train`` computes them.
    Statistics of several processes merge exactly with Chan et al.'s pairwise
    formula; an empty batch gives count 0, mean 0 and m2 0 (the merge's identity).

    >>> batchnorm_stats(np.array([[1.0], [3.0]]))
    (2, array([2.]), array([2.]))
    """
    arr, x3 = _bn_input(x, "batchnorm_stats")
    channels = x3.shape[1]
    count = x3.shape[0] * x3.shape[2]
    mean = np.zeros(channels, dtype=np.float64)
    m2 = np.zeros(channels, dtype=np.float64)
    if count == 0:
        return 0, mean, m2
    if arr.dtype == np.float32:
        _bn_stats[float](x3, mean, m2)
    else:
        _bn_stats[double](x3, mean, m2)
    return int(count), mean, m2


cdef void _bn_stats(const floating[:, :, ::1] x, double[::1] mean, double[::1] m2) noexcept:
    cdef Py_ssize_t channels = x.shape[1]
    cdef int threads = _threads_for(channels)
    cdef Py_ssize_t c
    with nogil:
        for c in prange(channels, num_threads=threads, schedule="static",
                        use_threads_if=threads > 1):
            _bn_channel_stats(x, mean, m2, c)


cdef void _bn_channel_stats(const floating[:, :, ::1] x, double[::1] mean, double[::1] m2,
                            Py_ssize_t c) noexcept nogil:
    # A function of its own so that its variance is a local of each thread: a prange
    # body's variable assigned only through a pointer (_moments(..., &v)) is shared
    # by the threads, and one thread's variance then overwrote another's.
    cdef Py_ssize_t inner = x.shape[2]
    cdef double variance
    # _moments gives the biased variance m2 / count; m2 is that times count
    _moments(&x[0, c, 0], x.shape[0], inner, x.shape[1] * inner, &mean[c], &variance)
    m2[c] = variance * <double>(x.shape[0] * inner)


def batchnorm_normalize(x, mean, invstd, weight, bias):
    """``(x - mean) * (weight * invstd) + bias`` per channel, with given statistics.

    ``x`` as for :func:`batchnorm_stats`; ``mean`` and ``invstd`` (C,) (the merged
    statistics of all processes), ``weight`` and ``bias`` (C,) or None (1 and 0).
    The arithmetic is ``batchnorm_forward_train``'s once its statistics are known.

    >>> batchnorm_normalize(np.array([[1.0], [3.0]]), np.array([2.0]), np.array([1.0]),
    ...                     None, None).ravel()
    array([-1.,  1.])
    """
    name = "batchnorm_normalize"
    arr, x3 = _bn_input(x, name)
    channels = x3.shape[1]
    m = _channel_vector(mean, name, "mean", channels)
    inv = _channel_vector(invstd, name, "invstd", channels)
    w = _channel_vector(weight, name, "weight", channels, 1.0)
    b = _channel_vector(bias, name, "bias", channels, 0.0)
    scale = w * inv
    y = np.empty_like(arr)
    if arr.size == 0:
        return y
    if arr.dtype == np.float32:
        _bn_affine[float](x3, _as_ncs(y), m, scale, b)
    else:
        _bn_affine[double](x3, _as_ncs(y), m, scale, b)
    return y


def batchnorm_update_running(running_mean, running_var, mean, var, momentum, count,
                             num_batches_tracked=None):
    """Move the running statistics toward a batch's, in place, as the training forward does.

    ``running = (1 - momentum) * running + momentum * batch``; the running variance
    takes the unbiased variance ``var * count / (count - 1)`` (``var`` biased, over
    ``count`` values, which must be at least 2). ``momentum=None`` is the cumulative
    average with factor ``1 / num_batches_tracked``. ``running_mean`` and
    ``running_var`` are contiguous float (C,) arrays; ``mean`` and ``var`` (C,).

    >>> rm, rv = np.zeros(1), np.ones(1)
    >>> batchnorm_update_running(rm, rv, np.array([2.0]), np.array([1.0]), 0.5, 2)
    >>> rm, rv
    (array([1.]), array([1.5]))
    """
    name = "batchnorm_update_running"
    channels = np.shape(running_mean)[0] if np.ndim(running_mean) == 1 else -1
    _running_buffer(running_mean, name, "running_mean", channels)
    _running_buffer(running_var, name, "running_var", channels)
    m = _channel_vector(mean, name, "mean", channels)
    v = _channel_vector(var, name, "var", channels)
    if count < 2:
        raise ValueError(
            f"{name}: the unbiased variance needs count >= 2 values per channel, got {count}"
        )
    if momentum is None:
        if num_batches_tracked is None or num_batches_tracked < 1:
            raise ValueError(
                f"{name}: momentum=None (a cumulative average) needs num_batches_tracked >= 1, "
                f"got {num_batches_tracked!r}"
            )
        factor = 1.0 / num_batches_tracked
    else:
        factor = float(momentum)
    _update_running(running_mean, running_var, m, v, factor, count / (count - 1.0))


cdef tuple _bn_gradient_input(dy, x, mean, str name):
    """``(x as an array, x as (N, C, S), dy checked against x, mean as (C,) float64)``."""
    arr, x3 = _bn_input(x, name)
    grad = _float_array(dy, name, "dy", None, arr.dtype)
    if grad.shape != arr.shape:
        raise ValueError(f"{name}: dy has shape {grad.shape} but x has shape {arr.shape}")
    return arr, x3, grad, _channel_vector(mean, name, "mean", x3.shape[1])


def batchnorm_backward_reduce(dy, x, mean):
    """The backward's two per-channel sums: ``(dy.sum, (dy * (x - mean)).sum)`` over all but axis 1.

    ``dy`` and ``x`` of the same shape and dtype, (N, C, *); ``mean`` (C,). Both sums
    are float64 (C,): ``sum_dy`` is the bias gradient, ``sum_dy_xmu * invstd`` the
    weight gradient, and their totals over all processes give dx
    (:func:`batchnorm_backward_elemt`).

    >>> batchnorm_backward_reduce(np.array([[1.0], [0.0]]), np.array([[1.0], [3.0]]),
    ...                           np.array([2.0]))
    (array([1.]), array([-1.]))
    """
    arr, x3, grad, m = _bn_gradient_input(dy, x, mean, "batchnorm_backward_reduce")
    channels = x3.shape[1]
    sum_dy = np.zeros(channels, dtype=np.float64)
    sum_dy_xmu = np.zeros(channels, dtype=np.float64)
    if arr.size == 0:
        return sum_dy, sum_dy_xmu
    if arr.dtype == np.float32:
        _bn_backward_reduce[float](_as_ncs(grad), x3, m, sum_dy, sum_dy_xmu)
    else:
        _bn_backward_reduce[double](_as_ncs(grad), x3, m, sum_dy, sum_dy_xmu)
    return sum_dy, sum_dy_xmu


cdef void _bn_backward_reduce(const floating[:, :, ::1] dy, const floating[:, :, ::1] x,
                              const double[::1] mean, double[::1] sum_dy,
                              double[::1] sum_dy_xmu) noexcept:
    cdef Py_ssize_t channels = x.shape[1]
    cdef Py_ssize_t batch = x.shape[0]
    cdef Py_ssize_t inner = x.shape[2]
    cdef int threads = _threads_for(channels)
    cdef Py_ssize_t c, n
    with nogil:
        for c in prange(channels, num_threads=threads, schedule="static",
                        use_threads_if=threads > 1):
            for n in range(batch):
                _sum_grad_and_product(&dy[n, c, 0], &x[n, c, 0], inner, mean[c],
                                      &sum_dy[c], &sum_dy_xmu[c])


def batchnorm_backward_elemt(dy, x, mean, invstd, weight, sum_dy, sum_dy_xmu, count):
    """dx of the training batch norm from the per-channel sums over the whole batch.

    ``dx = weight * invstd * ((dy - sum_dy / count)
    - (x - mean) * invstd**2 * sum_dy_xmu / count)`` with ``sum_dy``, ``sum_dy_xmu`` (C,)
    the totals of :func:`batchnorm_backward_reduce` over every process and ``count`` the
    values per channel over every process. ``dy`` and ``x`` (N, C, *) of one dtype;
    ``mean``, ``invstd`` (C,); ``weight`` (C,) or None. dx has x's shape and dtype.

    >>> batchnorm_backward_elemt(np.array([[1.0], [0.0]]), np.array([[1.0], [3.0]]),
    ...     np.array([2.0]), np.array([1.0]), None, np.array([1.0]), np.array([-1.0]), 2).ravel()
    array([0., 0.])
    """
    name = "batchnorm_backward_elemt"
    arr, x3, grad, m = _bn_gradient_input(dy, x, mean, name)
    channels = x3.shape[1]
    inv = _channel_vector(invstd, name, "invstd", channels)
    w = _channel_vector(weight, name, "weight", channels, 1.0)
    total_dy = _channel_vector(sum_dy, name, "sum_dy", channels)
    total_dy_xmu = _channel_vector(sum_dy_xmu, name, "sum_dy_xmu", channels)
    if count < 1:
        raise ValueError(f"{name}: count must be at least 1, got {count}")
    # per channel: dx = scale * ((dy - mean_dy) - (x - mean) * centered_coef)
    scale = w * inv
    mean_dy = total_dy / count
    centered_coef = inv * inv * total_dy_xmu / count
    dx = np.empty_like(arr)
    if arr.size == 0:
        return dx
    if arr.dtype == np.float32:
        _bn_backward_elemt[float](_as_ncs(grad), x3, _as_ncs(dx), m, scale, mean_dy,
                                  centered_coef)
    else:
        _bn_backward_elemt[double](_as_ncs(grad), x3, _as_ncs(dx), m, scale, mean_dy,
                                   centered_coef)
    return dx


cdef void _bn_backward_elemt(const floating[:, :, ::1] dy, const floating[:, :, ::1] x,
                             floating[:, :, ::1] dx, const double[::1] mean,
                             const double[::1] scale, const double[::1] mean_dy,
                             const double[::1] centered_coef) noexcept:
    cdef Py_ssize_t batch = x.shape[0]
    cdef int threads = _threads_for(x.shape[0] * x.shape[1] * x.shape[2] // VALUES_PER_THREAD)
    cdef Py_ssize_t n, c, s
    cdef const floating* g
    cdef const floating* src
    cdef floating* dst
    with nogil:
        for n in prange(batch, num_threads=threads, schedule="static",
                        use_threads_if=threads > 1):
            for c in range(x.shape[1]):
                g = &dy[n, c, 0]
                src = &x[n, c, 0]
                dst = &dx[n, c, 0]
                for s in range(x.shape[2]):
                    dst[s] = <floating>(scale[c] * ((g[s] - mean_dy[c])
                                                    - (src[s] - mean[c]) * centered_coef[c]))
