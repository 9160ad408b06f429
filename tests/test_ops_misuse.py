"""Every public name of minidl._ops refuses misuse with a Python exception, never a crash.

The kernels run with bounds checking off, so a wrapper that let an inconsistent
shape, a wrong dtype or an out-of-range index through could read or write out of
bounds. The calls run in a subprocess: a segfault fails the test instead of
killing pytest.
"""

import subprocess
import sys

from minidl import _ops

# Each entry: the calls that must raise TypeError or ValueError. A callable that
# appears in _ops without an entry here fails test_every_public_callable_has_cases.
MISUSE = """
import numpy as np
from minidl import _ops

x4 = np.ones((2, 3, 4, 4))
logits = np.zeros((2, 3))
labels = np.array([0, 2])
lse = np.zeros(2)
x_bn = np.ones((4, 3))
read_only = np.ones(3)
read_only.setflags(write=False)
pooled, indices = _ops.max_pool2d_forward(x4, 2)  # (2, 3, 2, 2) each


# batchnorm_update_running with valid arguments but the ones given
def update_running(running_mean=None, running_var=None, mean=None, momentum=0.1, count=4):
    return _ops.batchnorm_update_running(
        np.zeros(3) if running_mean is None else running_mean,
        np.ones(3) if running_var is None else running_var,
        np.zeros(3) if mean is None else mean,
        np.ones(3),
        momentum,
        count,
    )

CASES = {
    "sum_leading": [
        lambda: _ops.sum_leading("junk"),
        lambda: _ops.sum_leading(None),
        lambda: _ops.sum_leading(np.ones(3)),
        lambda: _ops.sum_leading(np.ones((2, 2), np.int64)),
        lambda: _ops.sum_leading(np.ones((2, 2), object)),
    ],
    "sum_channels": [
        lambda: _ops.sum_channels(np.ones((2, 3))),
        lambda: _ops.sum_channels(np.ones((2, 3, 4), np.float16)),
        lambda: _ops.sum_channels([["a"]]),
    ],
    "sum_all": [
        lambda: _ops.sum_all(np.ones((2, 3), np.int32)),
        lambda: _ops.sum_all("junk"),
        lambda: _ops.sum_all(None),
    ],
    "logsumexp_rows": [
        lambda: _ops.logsumexp_rows(np.ones((3, 0))),
        lambda: _ops.logsumexp_rows(np.ones(3)),
        lambda: _ops.logsumexp_rows(np.ones((2, 2), np.complex64)),
        lambda: _ops.logsumexp_rows(object()),
    ],
    "softmax_xent_forward": [
        lambda: _ops.softmax_xent_forward(logits, np.array([0, 3])),
        lambda: _ops.softmax_xent_forward(logits, np.array([-1, 0])),
        lambda: _ops.softmax_xent_forward(logits, np.array([0, 1, 2])),
        lambda: _ops.softmax_xent_forward(logits, np.array([0.0, 1.0])),
        lambda: _ops.softmax_xent_forward(logits, ["a", "b"]),
        lambda: _ops.softmax_xent_forward(np.zeros((2, 0)), labels),
        lambda: _ops.softmax_xent_forward(np.zeros(3), labels),
        lambda: _ops.softmax_xent_forward(logits, labels, "junk"),
    ],
    "softmax_xent_backward": [
        lambda: _ops.softmax_xent_backward(logits, labels, np.zeros(3), 1.0),
        lambda: _ops.softmax_xent_backward(logits, labels, np.zeros((2, 1)), 1.0),
        lambda: _ops.softmax_xent_backward(logits, labels, "junk", 1.0),
        lambda: _ops.softmax_xent_backward(logits, np.array([0, 3]), lse, 1.0),
        lambda: _ops.softmax_xent_backward(logits, np.array([0, -5]), lse, 1.0),
        lambda: _ops.softmax_xent_backward(logits, np.array([0]), lse, 1.0),
        lambda: _ops.softmax_xent_backward(logits, labels, lse, np.ones(3)),
        lambda: _ops.softmax_xent_backward(logits.astype(np.int32), labels, lse, 1.0),
    ],
    "sgd_update": [
        lambda: _ops.sgd_update(np.ones(3), [np.ones(3)], None, 0.1),
        lambda: _ops.sgd_update([np.ones(3)], [np.ones(2)], None, 0.1),
        lambda: _ops.sgd_update([np.ones(3)], [np.ones(3), np.ones(3)], None, 0.1),
        lambda: _ops.sgd_update([np.ones(3)], [np.ones(3, np.float32)], None, 0.1),
        lambda: _ops.sgd_update([np.ones(3, int)], [np.ones(3, int)], None, 0.1),
        lambda: _ops.sgd_update([[1.0, 2.0]], [np.ones(2)], None, 0.1),
        lambda: _ops.sgd_update([np.ones(3)], [np.ones(3)], None, 0.1, momentum=0.9),
        lambda: _ops.sgd_update([np.ones(3)], [np.ones(3)], [np.ones(4)], 0.1, momentum=0.9),
        lambda: _ops.sgd_update([np.ones(3)], [np.ones(3)], [[0.0] * 3], 0.1, momentum=0.9),
        lambda: _ops.sgd_update([np.ones(3)], [np.ones(3)], [None], "junk"),
        lambda: _ops.sgd_update([np.ones(3)], ["junk"], None, 0.1),
        lambda: _ops.sgd_update([np.ones(3)], [np.ones(3)], [read_only], 0.1, momentum=0.9),
        lambda: _ops.sgd_update([read_only], [np.ones(3)], None, 0.1),
        lambda: _ops.sgd_update([np.ones((2, 3), object)], [np.ones((2, 3))], None, 0.1),
    ],
    "adam_update": [
        lambda: _ops.adam_update(
            [np.ones(3)], [np.ones(3)], [np.zeros(3)], [np.zeros(2)], None, [1], 0.1, 0.9, 0.9, 0.0
        ),
        lambda: _ops.adam_update(
            [np.ones(3)], [np.ones(3)], [np.zeros(3)], [np.zeros(3)], None, [0], 0.1, 0.9, 0.9, 0.0
        ),
        lambda: _ops.adam_update(
            [np.ones(3)], [np.ones(3)], [np.zeros(3)], [np.zeros(3)], None, [], 0.1, 0.9, 0.9, 0.0
        ),
        lambda: _ops.adam_update(
            [np.ones(3)], [np.ones(3)], [np.zeros(3)], [np.zeros(3)], None, ["1"], 0.1, 0.9, 0.9, 0
        ),
        lambda: _ops.adam_update(
            [np.ones(3)], [np.ones(3)], [np.zeros(3)], None, None, [1], 0.1, 0.9, 0.9, 0.0
        ),
        lambda: _ops.adam_update(
            [np.ones(3)], [np.ones(3)], [[0.0] * 3], [np.zeros(3)], None, [1], 0.1, 0.9, 0.9, 0.0
        ),
        lambda: _ops.adam_update(
            [np.ones(3)], [np.ones(3)], [np.zeros(3, np.float32)], [np.zeros(3)], None, [1],
            0.1, 0.9, 0.9, 0.0,
        ),
        lambda: _ops.adam_update(
            [np.ones(3)], [np.ones(3)], [np.zeros(3)], [np.zeros(3)], None, [1], 0.1, 0.9, 0.9,
            0.0, amsgrad=True,
        ),
        lambda: _ops.adam_update(
            [np.ones(3)], [np.ones(3)], [np.zeros(3)], [np.zeros(3)], [read_only], [1], 0.1, 0.9,
            0.9, 0.0, amsgrad=True,
        ),
        lambda: _ops.adam_update(
            [np.ones(3)], [np.ones(3)], [np.zeros(3)], [np.zeros(3)], None, [1], None, 0.9, 0.9, 0
        ),
        lambda: _ops.adam_update(
            [np.ones((2, 2))], [np.ones((2, 2))], [np.zeros((2, 2)).T[:, :1]], [np.zeros((2, 2))],
            None, [1], 0.1, 0.9, 0.9, 0.0,
        ),
    ],
    "batchnorm_forward_train": [
        lambda: _ops.batchnorm_forward_train(np.ones(4), None, None, None, None),
        lambda: _ops.batchnorm_forward_train(np.ones((2,) * 6), None, None, None, None),
        lambda: _ops.batchnorm_forward_train(x_bn.astype(int), None, None, None, None),
        lambda: _ops.batchnorm_forward_train(x_bn, np.ones(2), None, None, None),
        lambda: _ops.batchnorm_forward_train(x_bn, None, np.ones(4), None, None),
        lambda: _ops.batchnorm_forward_train(x_bn, np.ones(3, int), None, None, None),
        lambda: _ops.batchnorm_forward_train(x_bn, None, None, np.zeros(4), np.ones(4)),
        lambda: _ops.batchnorm_forward_train(x_bn, None, None, np.zeros(3), None),
        lambda: _ops.batchnorm_forward_train(x_bn, None, None, np.zeros(3), [1.0, 1.0, 1.0]),
        lambda: _ops.batchnorm_forward_train(x_bn, None, None, np.zeros(3), read_only),
        lambda: _ops.batchnorm_forward_train(x_bn, None, None, np.zeros(6)[::2], np.ones(3)),
        lambda: _ops.batchnorm_forward_train(x_bn, None, None, np.zeros(3), np.ones(3), None),
        lambda: _ops.batchnorm_forward_train(
            np.ones((1, 3)), None, None, np.zeros(3), np.ones(3)
        ),
        lambda: _ops.batchnorm_forward_train(x_bn, None, None, None, None, eps="junk"),
    ],
    "batchnorm_forward_eval": [
        lambda: _ops.batchnorm_forward_eval(x_bn, None, None, None, np.ones(3)),
        lambda: _ops.batchnorm_forward_eval(x_bn, None, None, np.zeros(3), np.ones(2)),
        lambda: _ops.batchnorm_forward_eval(x_bn, np.ones(4), None, np.zeros(3), np.ones(3)),
        lambda: _ops.batchnorm_forward_eval("junk", None, None, np.zeros(3), np.ones(3)),
    ],
    "batchnorm_backward": [
        lambda: _ops.batchnorm_backward(np.ones((4, 2)), x_bn, np.zeros(3), np.ones(3), None),
        lambda: _ops.batchnorm_backward(
            np.ones((4, 3), np.float32), x_bn, np.zeros(3), np.ones(3), None
        ),
        lambda: _ops.batchnorm_backward(x_bn, x_bn, np.zeros(2), np.ones(3), None),
        lambda: _ops.batchnorm_backward(x_bn, x_bn, np.zeros(3), np.ones(4), None),
        lambda: _ops.batchnorm_backward(x_bn, x_bn, np.zeros(3), np.ones(3), np.ones(2)),
        lambda: _ops.batchnorm_backward(x_bn, x_bn, None, np.ones(3), None),
        lambda: _ops.batchnorm_backward("junk", x_bn, np.zeros(3), np.ones(3), None),
    ],
    "batchnorm_stats": [
        lambda: _ops.batchnorm_stats(np.ones(3)),
        lambda: _ops.batchnorm_stats(np.ones((2, 3), np.int64)),
        lambda: _ops.batchnorm_stats("junk"),
    ],
    "batchnorm_normalize": [
        lambda: _ops.batchnorm_normalize(x_bn, np.zeros(2), np.ones(3), None, None),
        lambda: _ops.batchnorm_normalize(x_bn, np.zeros(3), np.ones(4), None, None),
        lambda: _ops.batchnorm_normalize(x_bn, np.zeros(3), np.ones(3), np.ones(2), None),
        lambda: _ops.batchnorm_normalize(x_bn, None, np.ones(3), None, None),
        lambda: _ops.batchnorm_normalize(np.ones(3), np.zeros(3), np.ones(3), None, None),
    ],
    "batchnorm_update_running": [
        lambda: update_running(running_mean=np.zeros(2)),
        lambda: update_running(running_mean=[0.0] * 3),
        lambda: update_running(running_var=read_only),
        lambda: update_running(running_mean=np.zeros((3, 1))),
        lambda: update_running(mean=np.zeros(2)),
        lambda: update_running(count=1),
        lambda: update_running(momentum=None),
    ],
    "batchnorm_backward_reduce": [
        lambda: _ops.batchnorm_backward_reduce(np.ones((4, 2)), x_bn, np.zeros(3)),
        lambda: _ops.batchnorm_backward_reduce(np.ones((4, 3), np.float32), x_bn, np.zeros(3)),
        lambda: _ops.batchnorm_backward_reduce(x_bn, x_bn, np.zeros(2)),
        lambda: _ops.batchnorm_backward_reduce(x_bn, x_bn, None),
        lambda: _ops.batchnorm_backward_reduce("junk", x_bn, np.zeros(3)),
    ],
    "batchnorm_backward_elemt": [
        lambda: _ops.batchnorm_backward_elemt(
            np.ones((4, 2)), x_bn, np.zeros(3), np.ones(3), None, np.zeros(3), np.zeros(3), 4
        ),
        lambda: _ops.batchnorm_backward_elemt(
            x_bn, x_bn, np.zeros(3), np.ones(3), None, np.zeros(2), np.zeros(3), 4
        ),
        lambda: _ops.batchnorm_backward_elemt(
            x_bn, x_bn, np.zeros(3), np.ones(3), None, np.zeros(3), None, 4
        ),
        lambda: _ops.batchnorm_backward_elemt(
            x_bn, x_bn, np.zeros(3), np.ones(2), None, np.zeros(3), np.zeros(3), 4
        ),
        lambda: _ops.batchnorm_backward_elemt(
            x_bn, x_bn, np.zeros(3), np.ones(3), None, np.zeros(3), np.zeros(3), 0
        ),
    ],
    "groupnorm_forward": [
        lambda: _ops.groupnorm_forward(x4, 2, None, None),
        lambda: _ops.groupnorm_forward(x4, 0, None, None),
        lambda: _ops.groupnorm_forward(x4, 1.5, None, None),
        lambda: _ops.groupnorm_forward(np.ones(4), 1, None, None),
        lambda: _ops.groupnorm_forward(x4.astype(np.int32), 3, None, None),
        lambda: _ops.groupnorm_forward(x4, 3, np.ones(4), None),
        lambda: _ops.groupnorm_forward(x4, 3, None, np.ones((3, 1))),
        lambda: _ops.groupnorm_forward(x4, 3, np.ones(3, int), None),
        lambda: _ops.groupnorm_forward(x4, 3, None, None, eps="junk"),
        lambda: _ops.groupnorm_forward("junk", 3, None, None),
    ],
    "instancenorm_forward": [
        lambda: _ops.instancenorm_forward(x_bn, None, None, None, None),
        lambda: _ops.instancenorm_forward(x4, np.ones(4), None, None, None),
        lambda: _ops.instancenorm_forward(x4, None, None, np.zeros(3), None),
        lambda: _ops.instancenorm_forward(x4, None, None, np.zeros(4), np.ones(4)),
        lambda: _ops.instancenorm_forward(x4, None, None, np.zeros(3), read_only),
        lambda: _ops.instancenorm_forward(x4, None, None, np.zeros(6)[::2], np.ones(3)),
        lambda: _ops.instancenorm_forward(x4, None, None, [0.0] * 3, np.ones(3)),
        lambda: _ops.instancenorm_forward(
            np.ones((2, 3, 1)), None, None, np.zeros(3), np.ones(3)
        ),
        lambda: _ops.instancenorm_forward(
            np.ones((0, 3, 4)), None, None, np.zeros(3), np.ones(3)
        ),
        lambda: _ops.instancenorm_forward(x4, None, None, np.zeros(3), np.ones(3), "junk"),
        lambda: _ops.instancenorm_forward(x4.astype(bool), None, None, None, None),
    ],
    "layernorm_forward": [
        lambda: _ops.layernorm_forward(x4, None, None),
        lambda: _ops.layernorm_forward(np.ones(3), None, None),
        lambda: _ops.layernorm_forward(x_bn, np.ones(4), None),
        lambda: _ops.layernorm_forward(x_bn, None, np.ones(2)),
        lambda: _ops.layernorm_forward(x_bn.astype(np.float16), None, None),
        lambda: _ops.layernorm_forward(x_bn, None, None, eps=None),
    ],
    "groupnorm_backward": [
        lambda: _ops.groupnorm_backward(x4, x4, np.zeros((2, 2)), np.ones((2, 2)), None),
        lambda: _ops.groupnorm_backward(x4, x4, np.zeros((2, 0)), np.ones((2, 0)), None),
        lambda: _ops.groupnorm_backward(x4, x4, np.zeros((3, 3)), np.ones((3, 3)), None),
        lambda: _ops.groupnorm_backward(x4, x4, np.zeros((2, 3)), np.ones((2, 1)), None),
        lambda: _ops.groupnorm_backward(x4, x4, np.zeros(2), np.ones(2), None),
        lambda: _ops.groupnorm_backward(x4, x4, None, np.ones((2, 3)), None),
        lambda: _ops.groupnorm_backward(x4, x4, np.zeros((2, 3), int), np.ones((2, 3)), None),
        lambda: _ops.groupnorm_backward(x4, x4, np.zeros((2, 3)), np.ones((2, 3)), np.ones(4)),
        lambda: _ops.groupnorm_backward(x4[0], x4, np.zeros((2, 3)), np.ones((2, 3)), None),
        lambda: _ops.groupnorm_backward(
            x4.astype(np.float32), x4, np.zeros((2, 3)), np.ones((2, 3)), None
        ),
        lambda: _ops.groupnorm_backward(x4, np.ones(3), np.zeros((2, 3)), np.ones((2, 3)), None),
    ],
    "layernorm_backward": [
        lambda: _ops.layernorm_backward(x_bn, x_bn, np.zeros(3), np.ones(4), None),
        lambda: _ops.layernorm_backward(x_bn, x_bn, np.zeros(4), np.ones(3), None),
        lambda: _ops.layernorm_backward(x_bn, x_bn, np.zeros(4), np.ones(4), np.ones(4)),
        lambda: _ops.layernorm_backward(x_bn, x_bn, None, np.ones(4), None),
        lambda: _ops.layernorm_backward(np.ones((4, 2)), x_bn, np.zeros(4), np.ones(4), None),
        lambda: _ops.layernorm_backward(x_bn, x4, np.zeros(2), np.ones(2), None),
        lambda: _ops.layernorm_backward("junk", x_bn, np.zeros(4), np.ones(4), None),
    ],
    "im2col": [
        lambda: _ops.im2col(np.ones((1, 1, 3, 3)), 5),
        lambda: _ops.im2col(np.ones((1, 1, 3, 3)), 2, stride=0),
        lambda: _ops.im2col(np.ones((1, 1, 3, 3)), 2, padding=-1),
        lambda: _ops.im2col(np.ones((1, 1, 3, 3)), 2, dilation=0),
        lambda: _ops.im2col(np.ones((1, 1, 3, 3)), (1, 2, 3)),
        lambda: _ops.im2col(np.ones((1, 1, 3, 3)), 2.5),
        lambda: _ops.im2col(np.ones((1, 1, 3, 3)), "2"),
        lambda: _ops.im2col(np.ones((1, 3, 3)), 2),
        lambda: _ops.im2col(np.ones((1, 1, 3, 3), bool), 2),
    ],
    "col2im": [
        lambda: _ops.col2im(np.ones((4, 1, 5)), (1, 1, 3, 3), 2),
        lambda: _ops.col2im(np.ones((4, 2, 4)), (1, 1, 3, 3), 2),
        lambda: _ops.col2im(np.ones((9, 1, 4)), (1, 1, 3, 3), 2),
        lambda: _ops.col2im(np.ones((4, 1, 4)), (1, 1, 3), 2),
        lambda: _ops.col2im(np.ones((4, 1, 4)), (1, 1, -3, 3), 2),
        lambda: _ops.col2im(np.ones((4, 1, 4)), (1, 1, 3.5, 3), 2),
        lambda: _ops.col2im(np.ones((4, 1, 4)), None, 2),
        lambda: _ops.col2im(np.ones((4, 1, 4)), (1, 1, 1, 1), 2),
        lambda: _ops.col2im(np.ones((4, 1, 4)), (1, 1, 3, 3), 2, stride=0),
        lambda: _ops.col2im(np.ones((4, 4)), (1, 1, 3, 3), 2),
        lambda: _ops.col2im(np.ones((4, 1, 4), np.int32), (1, 1, 3, 3), 2),
    ],
    "swap_leading_axes": [
        lambda: _ops.swap_leading_axes(np.ones((2, 3))),
        lambda: _ops.swap_leading_axes(np.ones((2, 3, 4, 5))),
        lambda: _ops.swap_leading_axes(np.ones((2, 3, 4), np.int32)),
        lambda: _ops.swap_leading_axes(np.ones((2, 3, 4)), np.ones(3)),
        lambda: _ops.swap_leading_axes(np.ones((2, 3, 4)), np.ones((2, 1))),
        lambda: _ops.swap_leading_axes(np.ones((2, 3, 4)), np.array(["a", "b"])),
        lambda: _ops.swap_leading_axes("junk"),
    ],
    "conv2d_direct_forward": [
        lambda: _ops.conv2d_direct_forward(np.ones((1, 2, 5, 5)), np.ones((3, 1, 3, 3))),
        lambda: _ops.conv2d_direct_forward(np.ones((1, 2, 5, 5)), np.ones((3, 2, 3))),
        lambda: _ops.conv2d_direct_forward(np.ones((2, 5, 5)), np.ones((3, 2, 3, 3))),
        lambda: _ops.conv2d_direct_forward(np.ones((1, 2, 5, 5)), np.ones((3, 2, 7, 7))),
        lambda: _ops.conv2d_direct_forward(np.ones((1, 2, 5, 5)), np.ones((3, 2, 0, 3))),
        lambda: _ops.conv2d_direct_forward(
            np.ones((1, 2, 5, 5), np.float32), np.ones((3, 2, 3, 3))
        ),
        lambda: _ops.conv2d_direct_forward(
            np.ones((1, 2, 5, 5)), np.ones((3, 2, 3, 3)), np.ones(2)
        ),
        lambda: _ops.conv2d_direct_forward(np.ones((1, 2, 5, 5)), np.ones((3, 2, 3, 3)), stride=0),
        lambda: _ops.conv2d_direct_forward(
            np.ones((1, 2, 5, 5)), np.ones((3, 2, 3, 3)), padding=-1
        ),
        lambda: _ops.conv2d_direct_forward(
            np.ones((1, 2, 5, 5)), np.ones((3, 2, 3, 3)), dilation=(1,)
        ),
        lambda: _ops.conv2d_direct_forward(np.ones((1, 2, 5, 5), int), np.ones((3, 2, 3, 3), int)),
    ],
    "conv2d_direct_weight_grad": [
        lambda: _ops.conv2d_direct_weight_grad(np.ones((1, 3, 3, 3)), np.ones((1, 2, 5, 5)), 2),
        lambda: _ops.conv2d_direct_weight_grad(np.ones((2, 3, 3, 3)), np.ones((1, 2, 5, 5)), 3),
        lambda: _ops.conv2d_direct_weight_grad(np.ones((3, 3, 3)), np.ones((1, 2, 5, 5)), 3),
        lambda: _ops.conv2d_direct_weight_grad(
            np.ones((1, 3, 3, 3), np.float32), np.ones((1, 2, 5, 5)), 3
        ),
        lambda: _ops.conv2d_direct_weight_grad(np.ones((1, 3, 3, 3)), np.ones((1, 2, 5, 5)), 6),
        lambda: _ops.conv2d_direct_weight_grad(np.ones((1, 3, 3, 3)), np.ones((1, 2, 5, 5)), 3, 0),
        lambda: _ops.conv2d_direct_weight_grad(np.ones((1, 3, 3, 3)), np.ones((1, 2, 5, 5)), "3"),
        lambda: _ops.conv2d_direct_weight_grad(
            np.ones((1, 3, 3, 3)), np.ones((1, 2, 5, 5), bool), 3
        ),
        lambda: _ops.conv2d_direct_weight_grad(None, np.ones((1, 2, 5, 5)), 3),
    ],
    "max_pool2d_forward": [
        lambda: _ops.max_pool2d_forward(x4, 2, padding=2),
        lambda: _ops.max_pool2d_forward(x4, 5),
        lambda: _ops.max_pool2d_forward(x4, 0),
        lambda: _ops.max_pool2d_forward(np.ones((3, 4, 4)), 2),
        lambda: _ops.max_pool2d_forward(x4.astype(np.int8), 2),
        lambda: _ops.max_pool2d_forward(x4, [2]),
    ],
    "max_pool2d_backward": [
        # index values outside the (H, W) plane: the kernel would write out of bounds
        lambda: _ops.max_pool2d_backward(pooled, np.full(indices.shape, 16), x4.shape),
        lambda: _ops.max_pool2d_backward(pooled, np.full(indices.shape, -1), x4.shape),
        lambda: _ops.max_pool2d_backward(pooled, indices, (2, 3, 2, 2)),
        lambda: _ops.max_pool2d_backward(pooled, indices, (2, 3, 0, 4)),
        lambda: _ops.max_pool2d_backward(pooled, indices.astype(np.float64), x4.shape),
        lambda: _ops.max_pool2d_backward(pooled, indices[:, :2], x4.shape),
        lambda: _ops.max_pool2d_backward(pooled, indices, (2, 4, 4, 4)),
        lambda: _ops.max_pool2d_backward(pooled, indices, (1, 3, 4, 4)),
        lambda: _ops.max_pool2d_backward(pooled, indices, (2, 3, 16)),
        lambda: _ops.max_pool2d_backward(pooled, indices, (2, 3, -4, -4)),
        lambda: _ops.max_pool2d_backward(pooled, indices, "junk"),
        lambda: _ops.max_pool2d_backward(pooled[0], indices[0], x4.shape),
        lambda: _ops.max_pool2d_backward(pooled.astype(int), indices, x4.shape),
        # the write-once path (disjoint windows): geometry and indices checked too
        lambda: _ops.max_pool2d_backward(pooled, indices, x4.shape, 3),
        lambda: _ops.max_pool2d_backward(pooled, indices, x4.shape, 0),
        lambda: _ops.max_pool2d_backward(pooled, indices, x4.shape, 2, -2),
        lambda: _ops.max_pool2d_backward(pooled, indices, x4.shape, 5),
        lambda: _ops.max_pool2d_backward(pooled, indices, x4.shape, "junk"),
        lambda: _ops.max_pool2d_backward(pooled, np.zeros(indices.shape, int), x4.shape, 2),
        lambda: _ops.max_pool2d_backward(pooled, np.full(indices.shape, 99), x4.shape, 2),
        lambda: _ops.max_pool2d_backward(pooled, np.full(indices.shape, -9), x4.shape, 2),
    ],
    "relu_forward": [
        lambda: _ops.relu_forward(np.ones(3, np.int64)),
        lambda: _ops.relu_forward(np.ones(3, np.float16)),
        lambda: _ops.relu_forward("junk"),
        lambda: _ops.relu_forward(None),
    ],
    "relu_backward": [
        lambda: _ops.relu_backward(np.ones(3), np.ones(4)),
        lambda: _ops.relu_backward(np.ones((3, 1)), np.ones((1, 3))),
        lambda: _ops.relu_backward(np.ones(3, np.float32), np.ones(3)),
        lambda: _ops.relu_backward(np.ones(3), np.ones(3, int)),
        lambda: _ops.relu_backward(None, np.ones(3)),
    ],
    "sigmoid_forward": [
        lambda: _ops.sigmoid_forward(np.ones(3, np.complex128)),
        lambda: _ops.sigmoid_forward([["a"]]),
        lambda: _ops.sigmoid_forward(object()),
    ],
    "sigmoid_backward": [
        lambda: _ops.sigmoid_backward(np.ones(2), np.ones(5)),
        lambda: _ops.sigmoid_backward(np.ones(3), np.ones(3, np.float32)),
        lambda: _ops.sigmoid_backward(np.ones(3, int), np.ones(3, int)),
    ],
    "tanh_forward": [
        lambda: _ops.tanh_forward(np.ones(3, bool)),
        lambda: _ops.tanh_forward("junk"),
    ],
    "tanh_backward": [
        lambda: _ops.tanh_backward(np.ones((2, 2)), np.ones(4)),
        lambda: _ops.tanh_backward(np.ones(3), np.ones(3, np.float32)),
        lambda: _ops.tanh_backward("junk", np.ones(3)),
    ],
    "avg_pool2d_forward": [
        lambda: _ops.avg_pool2d_forward(x4, 2, padding=2),
        lambda: _ops.avg_pool2d_forward(x4, 5),
        lambda: _ops.avg_pool2d_forward(x4, 2, stride=-1),
        lambda: _ops.avg_pool2d_forward(np.ones((4, 4)), 2),
        lambda: _ops.avg_pool2d_forward(x4.astype(np.uint8), 2),
    ],
    "avg_pool2d_backward": [
        lambda: _ops.avg_pool2d_backward(np.ones((2, 3, 3, 3)), x4.shape, 2),
        lambda: _ops.avg_pool2d_backward(np.ones((2, 4, 2, 2)), x4.shape, 2),
        lambda: _ops.avg_pool2d_backward(np.ones((2, 3, 2, 2)), (2, 3, 8, 8), 2),
        lambda: _ops.avg_pool2d_backward(np.ones((2, 3, 2, 2)), x4.shape, 2, padding=2),
        lambda: _ops.avg_pool2d_backward(np.ones((2, 3, 2, 2)), (2, 3, 4), 2),
        lambda: _ops.avg_pool2d_backward(np.ones((2, 3, 2, 2)), (2, 3, 4, -4), 2),
        lambda: _ops.avg_pool2d_backward(np.ones((2, 3, 2, 2)), x4.shape, 9),
        lambda: _ops.avg_pool2d_backward(np.ones((3, 2, 2)), x4.shape, 2),
    ],
    "openmp_enabled": [lambda: _ops.openmp_enabled(1)],
    "build_flags": [lambda: _ops.build_flags(1)],
    "get_num_threads": [lambda: _ops.get_num_threads(1)],
    "set_num_threads": [
        lambda: _ops.set_num_threads(0),
        lambda: _ops.set_num_threads(-3),
        lambda: _ops.set_num_threads("two"),
        lambda: _ops.set_num_threads(None),
    ],
}
"""

RUN = """
refused = 0
for name, calls in CASES.items():
    for number, call in enumerate(calls):
        try:
            call()
        except (TypeError, ValueError):
            refused += 1
        else:
            print(f"accepted: {name} case {number}")
print(refused)
"""


def _cases():
    namespace = {}
    exec(MISUSE, namespace)  # builds the calls without making them
    return namespace["CASES"]


def test_every_public_callable_has_cases():
    public = {
        name for name in dir(_ops) if not name.startswith("__") and callable(getattr(_ops, name))
    }
    assert public == set(_cases()), (
        f"callables without misuse cases: {sorted(public - set(_cases()))}; "
        f"cases for missing names: {sorted(set(_cases()) - public)}"
    )


def test_kernels_are_not_importable():
    # only the checked wrappers are public: no typed kernel (_col2im, ...) is reachable
    private = [name for name in dir(_ops) if name.startswith("_") and not name.startswith("__")]
    assert [name for name in private if callable(getattr(_ops, name))] == []


def test_misuse_is_refused_with_an_exception_not_a_crash():
    expected = sum(len(calls) for calls in _cases().values())
    result = subprocess.run(
        [sys.executable, "-c", MISUSE + RUN], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr[-2000:]}"
    lines = result.stdout.split()
    assert "accepted:" not in result.stdout, result.stdout
    assert lines[-1] == str(expected), f"expected {expected} refusals:\n{result.stdout}"
