"""PyTorch habits that once diverged silently: each is compared with torch itself."""

import numpy as np
import pytest

import minidl

torch = pytest.importorskip("torch")


def _same(ours, theirs, rtol=1e-6):
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else np.asarray(theirs)
    np.testing.assert_allclose(np.asarray(ours), theirs, rtol=rtol, atol=1e-7)


def _both(fn):
    """Run ``fn(L)`` with L = minidl and L = torch and compare what it returns."""
    ours, theirs = fn(minidl), fn(torch)
    for a, b in zip(ours, theirs):
        _same(a, b)


def test_a_leaf_hook_sees_the_whole_gradient_once():
    def run(L):
        x = L.tensor([3.0, 4.0], requires_grad=True)
        calls = []
        x.register_hook(lambda g: calls.append(1) or g / g.norm())
        (x * x).sum().backward()
        return x.grad, [len(calls)]

    _both(run)


def test_data_is_a_tensor_outside_autograd():
    def run(L):
        out = L.tensor([[0.1, 0.9], [0.8, 0.2]], requires_grad=True)
        predicted = out.data.max(1)[1]
        w = L.ones(2, requires_grad=True)
        (w * 3).sum().backward()
        w.grad.data.zero_()
        return predicted, w.grad

    _both(run)


def test_numpy_scalars_promote_like_python_numbers():
    assert (minidl.ones(2) / np.sqrt(4.0)).dtype == minidl.float32
    assert (np.float64(2.5) + minidl.ones(2)).dtype == minidl.float32


def test_the_legacy_constructor_makes_default_floats():
    assert minidl.Tensor([1, 2]).dtype == minidl.float32
    assert minidl.Tensor(2, 3).shape == (2, 3)


def test_positional_var_std_follow_torch():
    _both(lambda L: (L.tensor([[1.0, 2.0, 4.0]]).var(1, False),))
    _both(lambda L: (L.tensor([[1.0, 2.0, 4.0]]).std(1, True, True),))
    _both(lambda L: (L.tensor([[1.0, 2.0, 4.0]]).var(False),))


def test_an_empty_dim_list_reduces_everything():
    _both(lambda L: (L.tensor([[1.0, 2.0], [3.0, 4.0]]).sum(dim=()),))


def test_flip_copies():
    def run(L):
        x = L.tensor([0.0, 1.0, 2.0])
        y = x.flip(0)
        y[0] = 100.0
        return (x,)

    _both(run)


def test_augmented_assignments_are_in_place():
    def run(L):
        x = L.tensor([1.0, 2.0])
        y = x
        y **= 2
        m = L.tensor([True, False])
        n = m
        n |= L.tensor([False, True])
        return x, m

    _both(run)
    w = minidl.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable"):
        w **= 2


def test_set_grad_enabled_as_a_decorator_changes_nothing_until_called():
    @minidl.set_grad_enabled(False)
    def f(x):
        return x * 2

    assert minidl.is_grad_enabled()
    assert not f(minidl.ones(1, requires_grad=True)).requires_grad


def test_no_grad_covers_a_generator_body():
    @minidl.no_grad()
    def gen(x):
        yield x * 2

    assert not next(gen(minidl.ones(1, requires_grad=True))).requires_grad


def test_requires_grad_assignment_is_checked():
    with pytest.raises(TypeError):
        minidl.tensor([1, 2]).requires_grad = True
    y = minidl.ones(2, requires_grad=True) * 2
    with pytest.raises(RuntimeError, match="leaf variables"):
        y.requires_grad = False


def test_retain_grad_then_in_place_keeps_the_new_value_grad():
    def run(L):
        x = L.ones(2, requires_grad=True)
        y = x * 2
        y.retain_grad()
        y.mul_(3)
        y.sum().backward()
        return y.grad, x.grad

    _both(run)


def test_an_operand_that_is_a_view_of_self_keeps_its_old_values():
    x = minidl.tensor([2.0, 2.0, 3.0], requires_grad=True)
    y = x * 1
    y.mul_(y[0])  # y = y_old * y_old[0]
    (y * minidl.tensor([1.0, 2.0, 3.0])).sum().backward()
    # loss = sum(w * y * y0): d/dy0 = w0 y0 + sum(w y) = 2 + 15, d/dyi = wi y0
    np.testing.assert_allclose(x.grad.numpy(), [17.0, 4.0, 6.0])


def test_a_changed_index_tensor_does_not_change_the_gradient():
    x = minidl.ones(3, requires_grad=True)
    i = minidl.tensor([0, 1])
    y = x.gather(0, i)
    i[1] = 2
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 1.0, 0.0])


def test_a_0d_integer_tensor_indexes_like_an_int():
    _both(lambda L: (L.arange(24.0).reshape(2, 3, 4)[L.tensor(0), :, [0, 1]],))


def test_dtypes_of_masked_fill_and_clamp():
    def run(L):
        mask = L.tensor([True, False, True])
        return L.tensor([1, 2, 3]).masked_fill(mask, 0.5), L.tensor([1, 2]).clamp(min=1.5)

    _both(run)
    assert (
        minidl.tensor([1, 2, 3]).masked_fill(minidl.tensor([True, False, True]), 0.5).dtype
        == np.int64
    )
    assert minidl.tensor([1, 2]).clamp(min=1.5).dtype == np.float32


def test_clamp_with_a_tensor_bound_gives_it_a_gradient():
    def run(L):
        x = L.tensor([0.0, 2.0], requires_grad=True)
        m = L.tensor([1.0, 1.0], requires_grad=True)
        x.clamp(min=m).sum().backward()
        return x.grad, m.grad

    _both(run)


def test_edge_gradients_match_torch():
    def run(L):
        c = L.ones(3, requires_grad=True)
        c.std().backward()
        z = L.zeros(3, requires_grad=True)
        z.norm(3).backward()
        a = L.tensor([float("nan")], requires_grad=True)
        L.maximum(a, L.tensor([1.0])).sum().backward()
        return c.grad, z.grad, a.grad

    _both(run)


def test_view_of_a_non_contiguous_tensor_is_refused():
    with pytest.raises(RuntimeError, match="reshape"):
        minidl.zeros(2, 3).transpose(0, 1).view(6)


def test_refusals_torch_makes():
    x = minidl.ones(3)
    with pytest.raises(IndexError):
        x.gather(0, minidl.tensor([-1]))
    with pytest.raises(RuntimeError):
        x.scatter(0, minidl.tensor([0]), minidl.ones(1, dtype="float64"))
    with pytest.raises(ZeroDivisionError):
        minidl.tensor([1, 2]) // 0
    with pytest.raises(RuntimeError):
        minidl.tensor([2]) ** -1


def test_zero_d_tensors_hold_arrays():
    x = minidl.tensor(2.0, requires_grad=True)
    (x * x).backward()
    (x * x).backward()
    x.grad.mul_(2)
    assert isinstance(np.asarray(x.grad), np.ndarray)
    assert isinstance((x > 1).numpy(), np.ndarray)


def test_hook_handles_format_and_einsum_broadcasting():
    x = minidl.ones(2, requires_grad=True)
    handle = x.register_hook(lambda g: g * 10)
    handle.remove()
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0])
    assert f"{minidl.tensor(0.12345):.2f}" == "0.12"

    def run(L):
        a = L.ones(1, 3, requires_grad=True)
        b = L.full((2, 3), 2.0, requires_grad=True)
        L.einsum("ij,ij->ij", a, b).sum().backward()
        return a.grad, b.grad

    _both(run)


def test_in_place_on_an_expanded_tensor_says_to_clone():
    with pytest.raises(RuntimeError, match="clone"):
        minidl.ones(3, 1).expand(3, 2).add_(1)


@pytest.mark.parametrize("shape, start, end", [((2, 3), 1, -1), ((2, 3, 4), 1, 1), ((5,), 0, -1)])
def test_flatten_with_nothing_to_merge_returns_the_input_itself_as_torch(shape, start, end):
    for library in (minidl, torch):
        x = library.zeros(*shape, requires_grad=True)
        assert x.flatten(start, end) is x, library.__name__
    x = minidl.zeros(2, 3, 4, requires_grad=True)
    merged = x.flatten(1)
    assert merged is not x and merged.shape == (2, 12)
    assert minidl.tensor(1.0).flatten().shape == (1,)  # a 0-d tensor still becomes (1,)
