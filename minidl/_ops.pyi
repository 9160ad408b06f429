"""Types of the compiled kernels in ``_ops.pyx`` (the checked ``def`` wrappers).

Every public callable of the compiled module is listed here, and only those:
tests/test_typing.py compares this file's names with ``dir(minidl._ops)``.
Arrays are float32/float64 numpy arrays unless a docstring in ``_ops.pyx`` says
otherwise (``labels`` and ``indices`` are integer arrays).
"""

from collections.abc import Sequence
from typing import Any

from numpy.typing import NDArray

_Array = NDArray[Any]
_Pair = int | tuple[int, int]
_Shape = Sequence[int]

def openmp_enabled() -> bool: ...
def build_flags() -> str: ...
def set_num_threads(n: int) -> None: ...
def get_num_threads() -> int: ...
def sum_leading(x: _Array) -> _Array: ...
def sum_channels(x: _Array) -> _Array: ...
def sum_all(x: _Array) -> _Array: ...
def logsumexp_rows(x: _Array) -> _Array: ...
def softmax_xent_forward(
    logits: _Array, labels: _Array, label_smoothing: float = 0.0
) -> tuple[float, _Array]: ...
def softmax_xent_backward(
    logits: _Array,
    labels: _Array,
    lse: _Array,
    grad_scale: float | _Array,
    label_smoothing: float = 0.0,
) -> _Array: ...
def sgd_update(
    params: Sequence[_Array],
    grads: Sequence[_Array],
    momentum_buffers: Sequence[_Array | None] | None,
    lr: float,
    momentum: float = 0.0,
    dampening: float = 0.0,
    weight_decay: float = 0.0,
    nesterov: bool = False,
    maximize: bool = False,
) -> list[_Array | None] | None: ...
def adam_update(
    params: Sequence[_Array],
    grads: Sequence[_Array],
    exp_avgs: Sequence[_Array],
    exp_avg_sqs: Sequence[_Array],
    max_exp_avg_sqs: Sequence[_Array] | None,
    steps: Sequence[int],
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float = 0.0,
    decoupled_weight_decay: bool = False,
    amsgrad: bool = False,
    maximize: bool = False,
) -> None: ...
def batchnorm_forward_train(
    x: _Array,
    weight: _Array | None,
    bias: _Array | None,
    running_mean: _Array | None,
    running_var: _Array | None,
    momentum: float | None = 0.1,
    eps: float = 1e-5,
    num_batches_tracked: int | None = None,
) -> tuple[_Array, _Array, _Array]: ...
def batchnorm_forward_eval(
    x: _Array,
    weight: _Array | None,
    bias: _Array | None,
    running_mean: _Array,
    running_var: _Array,
    eps: float = 1e-5,
) -> _Array: ...
def batchnorm_backward(
    dy: _Array,
    x: _Array,
    mean: _Array,
    invstd: _Array,
    weight: _Array | None,
    training: bool = True,
) -> tuple[_Array, _Array, _Array]: ...
def groupnorm_forward(
    x: _Array, num_groups: int, weight: _Array | None, bias: _Array | None, eps: float = 1e-5
) -> tuple[_Array, _Array, _Array]: ...
def instancenorm_forward(
    x: _Array,
    weight: _Array | None,
    bias: _Array | None,
    running_mean: _Array | None,
    running_var: _Array | None,
    momentum: float | None = 0.1,
    eps: float = 1e-5,
) -> tuple[_Array, _Array, _Array]: ...
def layernorm_forward(
    x: _Array, weight: _Array | None, bias: _Array | None, eps: float = 1e-5
) -> tuple[_Array, _Array, _Array]: ...
def groupnorm_backward(
    dy: _Array, x: _Array, mean: _Array, invstd: _Array, weight: _Array | None
) -> tuple[_Array, _Array, _Array]: ...
def layernorm_backward(
    dy: _Array, x: _Array, mean: _Array, invstd: _Array, weight: _Array | None
) -> tuple[_Array, _Array, _Array]: ...
def im2col(
    x: _Array, kernel_size: _Pair, stride: _Pair = 1, padding: _Pair = 0, dilation: _Pair = 1
) -> _Array: ...
def col2im(
    cols: _Array,
    x_shape: _Shape,
    kernel_size: _Pair,
    stride: _Pair = 1,
    padding: _Pair = 0,
    dilation: _Pair = 1,
) -> _Array: ...
def swap_leading_axes(x: _Array, bias: _Array | None = None) -> _Array: ...
def conv2d_direct_forward(
    x: _Array,
    weight: _Array,
    bias: _Array | None = None,
    stride: _Pair = 1,
    padding: _Pair = 0,
    dilation: _Pair = 1,
) -> _Array: ...
def conv2d_direct_weight_grad(
    dy: _Array,
    x: _Array,
    kernel_size: _Pair,
    stride: _Pair = 1,
    padding: _Pair = 0,
    dilation: _Pair = 1,
) -> _Array: ...
def max_pool2d_forward(
    x: _Array,
    kernel_size: _Pair,
    stride: _Pair | None = None,
    padding: _Pair = 0,
    relu: bool = False,
) -> tuple[_Array, _Array]: ...
def max_pool2d_backward(
    dy: _Array,
    indices: _Array,
    x_shape: _Shape,
    kernel_size: _Pair | None = None,
    stride: _Pair | None = None,
) -> _Array: ...
def avg_pool2d_forward(
    x: _Array,
    kernel_size: _Pair,
    stride: _Pair | None = None,
    padding: _Pair = 0,
    count_include_pad: bool = True,
) -> _Array: ...
def avg_pool2d_backward(
    dy: _Array,
    x_shape: _Shape,
    kernel_size: _Pair,
    stride: _Pair | None = None,
    padding: _Pair = 0,
    count_include_pad: bool = True,
) -> _Array: ...
def relu_forward(x: _Array) -> _Array: ...
def relu_backward(dy: _Array, y: _Array) -> _Array: ...
def sigmoid_forward(x: _Array) -> _Array: ...
def sigmoid_backward(dy: _Array, y: _Array) -> _Array: ...
def tanh_forward(x: _Array) -> _Array: ...
def tanh_backward(dy: _Array, y: _Array) -> _Array: ...
def batchnorm_stats(x: _Array) -> tuple[int, _Array, _Array]: ...
def batchnorm_normalize(
    x: _Array, mean: _Array, invstd: _Array, weight: _Array | None, bias: _Array | None
) -> _Array: ...
def batchnorm_update_running(
    running_mean: _Array,
    running_var: _Array,
    mean: _Array,
    var: _Array,
    momentum: float | None,
    count: int,
    num_batches_tracked: int | None = None,
) -> None: ...
def batchnorm_backward_reduce(dy: _Array, x: _Array, mean: _Array) -> tuple[_Array, _Array]: ...
def batchnorm_backward_elemt(
    dy: _Array,
    x: _Array,
    mean: _Array,
    invstd: _Array,
    weight: _Array | None,
    sum_dy: _Array,
    sum_dy_xmu: _Array,
    count: int,
) -> _Array: ...
