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
(``_moments``: two passes in double) computes every one of these statistics.
"""

import numpy as np

from minidl import _checks

from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport exp, fabs, log, sqrt, tanh, INFINITY
from libc.stdint cimport int64_t

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
    # Group, instance and layer norm split their groups into chunks of about this
    # many values: a chunk is one thread's share (two or three passes over it cost
    # a few times the evaluation batch norm's per value, so it is well worth waking
    # a thread for) and the unit of the weight-gradient partial sums, fixed by the
    # shape alone so that the bits never depend on the thread count.
    VALUES_PER_CHUNK = 32768


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
    """The compiler flags the kernels were built with (``minidl.show_config()`` prints them)."""
    return MINIDL_BUILD_FLAGS.decode()


def set_num_threads(int n):
    """Set how many threads the kernels use (``minidl.set_num_threads`` calls this).

    With 1 every kernel runs on the calling thread alone and wakes no OpenMP worker,
    which is what a child forked from a process that ran threaded kernels needs.
    """
    global _num_threads
    if n < 1:
        raise ValueError(f"set_num_threads: expected a positive thread count, got {n}")
    _num_threads = n


def get_num_threads():
    """How many threads the kernels use."""
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


# ---------------------------------------------------------------- sum over the leading axis

def sum_leading(x):
    """Sum a (A, B) array over its leading axis: ``x.sum(axis=0)``, shape (B,).

    The reduction behind bias gradients and ``Tensor.sum`` over the batch axis.
    Accumulates in double; the result has the input's dtype.

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


cdef void _sum_leading(const floating[:, ::1] x, floating[::1] out) noexcept:
    cdef Py_ssize_t blocks = (x.shape[1] + COLUMN_BLOCK - 1) // COLUMN_BLOCK
    cdef int threads = _threads_for(blocks)
    cdef Py_ssize_t block
    with nogil:
        for block in prange(blocks, num_threads=threads, schedule="static",
                            use_threads_if=threads > 1):
            _sum_leading_block(x, out, block)


cdef void _sum_leading_block(const floating[:, ::1] x, floating[::1] out,
                             Py_ssize_t block) noexcept nogil:
    # out[start:stop] = x[:, start:stop].sum(axis=0) for the block's columns,
    # one double per column
    cdef double acc[COLUMN_BLOCK]
    cdef Py_ssize_t start = block * COLUMN_BLOCK
    cdef Py_ssize_t width = min(start + COLUMN_BLOCK, x.shape[1]) - start
    cdef Py_ssize_t i, j
    cdef const floating* row
    for j in range(width):
        acc[j] = 0.0
    for i in range(x.shape[0]):
        row = &x[i, start]
        for j in range(width):
            acc[j] += row[j]
    for j in range(width):
        out[start + j] = <floating>acc[j]


cdef inline void _moments(const floating* p, Py_ssize_t segments, Py_ssize_t length,
                          Py_ssize_t stride, double* mean, double* var) noexcept nogil:
    # mean and biased variance of the values p[i * stride + j] (i < segments, j < length)
    # in two passes with double accumulators: the statistics core of every normalization
    # (a batch-norm channel is N segments of S values, a group one segment of K * S)
    cdef double count = <double>(segments * length)
    cdef double total = 0.0
    cdef double m
    cdef Py_ssize_t i
    for i in range(segments):
        total = total + _sum(p + i * stride, length)
    m = total / count
    total = 0.0
    for i in range(segments):
        total = total + _sum_squared_deviation(p + i * stride, length, m)
    mean[0] = m
    var[0] = total / count


# ---------------------------------------------------------------- per-channel sums

def sum_channels(x):
    """Sum a (A, C, B) array over its first and last axes: ``x.sum(axis=(0, 2))``, shape (C,).

    With A = N and B = H * W this is the per-channel sum of an (N, C, H, W) tensor
    (a convolution's bias gradient); any reduction over a prefix and a suffix of
    axes folds to this shape. Accumulates in double, one thread per channel.

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
    cdef Py_ssize_t channels = x.shape[1]
    cdef int threads = _threads_for(channels)
    cdef Py_ssize_t c
    with nogil:
        for c in prange(channels, num_threads=threads, schedule="static",
                        use_threads_if=threads > 1):
            _sum_channel(x, out, c)


cdef void _sum_channel(const floating[:, :, ::1] x, floating[::1] out,
                       Py_ssize_t c) noexcept nogil:
    # out[c] = x[:, c, :].sum()
    cdef double total = 0.0
    cdef Py_ssize_t a
    for a in range(x.shape[0]):
        total = total + _sum(&x[a, c, 0], x.shape[2])
    out[c] = <floating>total


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
    return arr, _checks.class_labels(labels, arr.shape[0], arr.shape[1], name)


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
    scale = np.ascontiguousarray(np.broadcast_to(np.asarray(grad_scale, dtype=np.float64),
                                                 (arr.shape[0],)))
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
        unbiased = var * (count / (count - 1))
        running_mean *= 1.0 - factor
        running_mean += factor * mean
        running_var *= 1.0 - factor
        running_var += factor * unbiased
    return y, mean, invstd


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


cdef void _bn_channel_forward(const floating[:, :, ::1] x, floating[:, :, ::1] y,
                              const double[::1] weight, const double[::1] bias, double eps,
                              double[::1] mean, double[::1] var, double[::1] invstd,
                              Py_ssize_t c) noexcept nogil:
    # statistics of x[:, c, :] in two passes, then y[:, c, :] = (x - mean) * scale + bias
    cdef Py_ssize_t batch = x.shape[0]
    cdef Py_ssize_t inner = x.shape[2]
    cdef double m, v, inv, scale, shift
    cdef Py_ssize_t n, s
    cdef const floating* src
    cdef floating* dst
    _moments(&x[0, c, 0], batch, inner, x.shape[1] * inner, &m, &v)
    inv = 1.0 / sqrt(v + eps)
    mean[c] = m
    var[c] = v
    invstd[c] = inv
    scale = weight[c] * inv
    shift = bias[c]
    for n in range(batch):
        src = &x[n, c, 0]
        dst = &y[n, c, 0]
        for s in range(inner):
            dst[s] = <floating>((src[s] - m) * scale + shift)


cdef void _bn_rows_forward(const floating[:, :, ::1] x, floating[:, :, ::1] y,
                           const double[::1] weight, const double[::1] bias, double eps,
                           double[::1] mean, double[::1] var, double[::1] invstd,
                           Py_ssize_t block) noexcept nogil:
    # the same for the block's channels of a (N, C, 1) input, walking rows so the
    # loops over channels are contiguous
    cdef double acc[COLUMN_BLOCK]
    cdef double scale[COLUMN_BLOCK]
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
        scale[j] = weight[start + j] * invstd[start + j]
    for n in range(batch):
        src = &x[n, start, 0]
        dst = &y[n, start, 0]
        for j in range(width):
            dst[j] = <floating>((src[j] - mean[start + j]) * scale[j] + bias[start + j])


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
    cdef Py_ssize_t c, s
    cdef const floating* src
    cdef floating* dst
    for c in range(x.shape[1]):
        src = &x[n, c, 0]
        dst = &y[n, c, 0]
        for s in range(x.shape[2]):
            dst[s] = <floating>((src[s] - center[c]) * scale[c] + shift[c])


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
    cdef double scale, centered_coef, mean_dy
    cdef Py_ssize_t n, s
    cdef const floating* g
    cdef const floating* src
    cdef floating* dst
    for n in range(batch):
        _sum_grad_and_product(&dy[n, c, 0], &x[n, c, 0], inner, m, &sum_dy, &sum_dy_xmu)
    dbias[c] = sum_dy
    dweight[c] = sum_dy_xmu * inv
    scale = weight[c] * inv
    # training: dx = scale * (dy - mean(dy) - (x - m) * inv^2 * mean(dy * (x - m)))
    # evaluation (statistics are constants): dx = scale * dy
    mean_dy = sum_dy / count if training else 0.0
    centered_coef = inv * inv * sum_dy_xmu / count if training else 0.0
    for n in range(batch):
        g = &dy[n, c, 0]
        src = &x[n, c, 0]
        dst = &dx[n, c, 0]
        for s in range(inner):
            dst[s] = <floating>(scale * ((g[s] - mean_dy) - (src[s] - m) * centered_coef))


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
    # cols[(c * kh + i) * kw + j, n, out_y * OW + out_x] = the padded input at
    # (out_y * sh - ph + i * dh, out_x * sw - pw + j * dw) in plane (n, c)
    cdef Py_ssize_t n = plane // x.shape[1]
    cdef Py_ssize_t c = plane % x.shape[1]
    cdef Py_ssize_t height = x.shape[2]
    cdef Py_ssize_t i, j, r, out_y, out_x, in_y, offset, low, high
    cdef floating* dst
    cdef const floating* row
    for i in range(g.kh):
        for j in range(g.kw):
            r = (c * g.kh + i) * g.kw + j
            offset = j * g.dw - g.pw
            low = _first_column(offset, g.sw, g.ow)
            high = _end_column(offset, g.sw, x.shape[3], g.ow, low)
            for out_y in range(g.oh):
                dst = &cols[r, n, out_y * g.ow]
                in_y = out_y * g.sh - g.ph + i * g.dh
                if in_y < 0 or in_y >= height:
                    for out_x in range(g.ow):
                        dst[out_x] = 0
                    continue
                row = &x[n, c, in_y, 0]
                for out_x in range(low):
                    dst[out_x] = 0
                for out_x in range(low, high):
                    dst[out_x] = row[out_x * g.sw + offset]
                for out_x in range(high, g.ow):
                    dst[out_x] = 0


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
    out = np.zeros(shape, dtype=arr.dtype)
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
    # the transpose of _im2col_plane: each column value is added where it was read
    cdef Py_ssize_t n = plane // out.shape[1]
    cdef Py_ssize_t c = plane % out.shape[1]
    cdef Py_ssize_t height = out.shape[2]
    cdef Py_ssize_t i, j, r, out_y, out_x, in_y, offset, low, high
    cdef const floating* src
    cdef floating* row
    for i in range(g.kh):
        for j in range(g.kw):
            r = (c * g.kh + i) * g.kw + j
            offset = j * g.dw - g.pw
            low = _first_column(offset, g.sw, g.ow)
            high = _end_column(offset, g.sw, out.shape[3], g.ow, low)
            for out_y in range(g.oh):
                in_y = out_y * g.sh - g.ph + i * g.dh
                if in_y < 0 or in_y >= height:
                    continue
                src = &cols[r, n, out_y * g.ow]
                row = &out[n, c, in_y, 0]
                for out_x in range(low, high):
                    row[out_x * g.sw + offset] += src[out_x]


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
