"""Every differentiable tensor operation passes a float64 gradcheck (central differences)."""

import numpy as np
import pytest

import minidl


def _positive(*shape):
    return np.random.default_rng(sum(shape)).uniform(0.5, 2.0, size=shape)


def _any(*shape):
    return np.random.default_rng(len(shape) + sum(shape)).standard_normal(shape)


def _distinct(*shape):
    # values far apart, so that max/sort/maximum are differentiable at the sample
    count = int(np.prod(shape))
    return np.random.default_rng(count).permutation(count).reshape(shape) * 0.5 + 0.25


INDEX = np.array([[2, 0, 1], [1, 1, 0]])

OPS = {
    "sin": (lambda x: x.sin(), [_any(3, 4)]),
    "cos": (lambda x: x.cos(), [_any(3, 4)]),
    "log2": (lambda x: x.log2(), [_positive(3, 4)]),
    "log10": (lambda x: x.log10(), [_positive(3, 4)]),
    "log1p": (lambda x: x.log1p(), [_positive(3, 4)]),
    "expm1": (lambda x: x.expm1(), [_any(3, 4)]),
    "rsqrt": (lambda x: x.rsqrt(), [_positive(3, 4)]),
    "erf": (lambda x: x.erf(), [_any(3, 4)]),
    "pow_tensor_exponent": (lambda x, y: x**y, [_positive(3, 4), _any(3, 4)]),
    # a / b stays near 2.65, away from the jumps of the remainder
    "remainder": (lambda x, y: x % y, [5.3 + 0.05 * _any(3, 4), 2.0 + 0.01 * _any(3, 4)]),
    "maximum": (lambda x, y: minidl.maximum(x, y), [_distinct(3, 4), _distinct(3, 4)[::-1]]),
    "minimum": (lambda x, y: minidl.minimum(x, y), [_distinct(3, 4), _distinct(3, 4)[::-1]]),
    "std": (lambda x: x.std(dim=1), [_any(3, 4)]),
    "var_biased": (lambda x: x.var(0, unbiased=False), [_any(3, 4)]),
    "logsumexp": (lambda x: x.logsumexp(dim=1, keepdim=True), [_any(3, 4)]),
    "prod_dim": (lambda x: x.prod(1), [_any(3, 4)]),
    "prod_all_with_a_zero": (lambda x: (x * minidl.tensor([1.0, 0.0, 1.0])).prod(), [_any(3)]),
    "cumsum": (lambda x: x.cumsum(dim=0), [_any(3, 4)]),
    "norm": (lambda x: x.norm(dim=1), [_any(3, 4)]),
    "norm_p1": (lambda x: x.norm(p=1), [_distinct(3, 4)]),
    "max_dim_values": (lambda x: x.max(dim=1).values, [_distinct(3, 4)]),
    "min_dim_values": (lambda x: x.min(0, keepdim=True).values, [_distinct(3, 4)]),
    "sort_values": (lambda x: x.sort(dim=1, descending=True).values, [_distinct(3, 4)]),
    "topk_values": (lambda x: x.topk(2, dim=0).values, [_distinct(3, 4)]),
    "unsqueeze_squeeze": (lambda x: x.unsqueeze(1).squeeze(), [_any(3, 4)]),
    "expand": (lambda x: x.expand(2, 3, 4), [_any(3, 1)]),
    "repeat": (lambda x: x.repeat(2, 1, 3), [_any(3, 4)]),
    "flip": (lambda x: x.flip(0, 1), [_any(3, 4)]),
    "roll": (lambda x: x.roll(1, dims=1), [_any(3, 4)]),
    "split": (lambda x: x.split([1, 3], dim=1)[1], [_any(3, 4)]),
    "chunk": (lambda x: x.chunk(2)[0], [_any(4, 3)]),
    "gather": (lambda x: x.gather(1, minidl.tensor(INDEX)), [_any(2, 4)]),
    "scatter": (
        lambda x, y: x.scatter(1, minidl.tensor([[2, 0], [1, 3]]), y),
        [_any(2, 4), _any(2, 3)],
    ),
    "scatter_add": (
        lambda x, y: x.scatter_add(0, minidl.tensor(INDEX), y),
        [_any(3, 3), _any(2, 3)],
    ),
    "index_select": (lambda x: x.index_select(1, minidl.tensor([3, 0, 3])), [_any(2, 4)]),
    "masked_fill": (lambda x: x.masked_fill(minidl.tensor([True, False, True]), 0.5), [_any(2, 3)]),
    "where": (lambda x, y: minidl.where(minidl.tensor([True, False]), x, y), [_any(3, 2), _any(2)]),
    "tril_triu": (lambda x: x.tril(-1) + 2 * x.triu(1), [_any(3, 4)]),
    "outer": (lambda x, y: minidl.outer(x, y), [_any(3), _any(4)]),
    "einsum_matmul": (lambda x, y: minidl.einsum("ij,jk->ik", x, y), [_any(2, 3), _any(3, 4)]),
    "einsum_sum_and_batch": (
        lambda x, y: minidl.einsum("bij,bj->bi", x, y),
        [_any(2, 3, 4), _any(2, 4)],
    ),
    "einsum_summed_alone": (lambda x: minidl.einsum("ij->i", x), [_any(2, 3)]),
    "cat_promotes": (lambda x, y: minidl.cat([x, y.double()], dim=1), [_any(2, 3), _any(2, 1)]),
    "torch_layout_index": (lambda x: x[0, :, [0, 2]], [_any(2, 3, 4)]),
    "setitem_on_a_copy": (lambda x, y: _setitem(x, y), [_any(3, 4), _any(4)]),
    "in_place_chain": (lambda x: _in_place_chain(x), [_any(3, 4)]),
    "softmax_dim": (lambda x: x.softmax(dim=0), [_any(3, 4)]),
    "clone_contiguous": (lambda x: x.T.contiguous().clone() * 2, [_any(3, 4)]),
}


def _setitem(x, y):
    z = x * 1
    z[1] = y
    z[:, 0] += y[:3] * 2
    return z


def _in_place_chain(x):
    y = x * 1
    y.mul_(x)
    y.add_(1).div_(2)
    y.clamp_(min=-0.5)
    return y


@pytest.mark.parametrize("name", sorted(OPS))
def test_gradcheck(name):
    fn, arrays = OPS[name]
    inputs = [minidl.tensor(a, dtype="float64", requires_grad=True) for a in arrays]
    assert minidl.gradcheck(fn, tuple(inputs))
