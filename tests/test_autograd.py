"""The backward walk, grad mode, and custom Functions."""

import gc
import tracemalloc
import weakref

import numpy as np
import pytest

import minidl
from minidl.autograd import Function


def test_gradients_accumulate_across_backward_calls():
    x = minidl.tensor([1.0, 2.0], requires_grad=True)
    (x * 3).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [3 + 2, 3 + 4])


def test_a_tensor_used_twice_gets_both_contributions():
    x = minidl.tensor([2.0], requires_grad=True)
    y = x * x + x
    y.backward()
    np.testing.assert_array_equal(x.grad.data, [5.0])


def test_shared_gradients_are_separate_arrays():
    a = minidl.ones(3, requires_grad=True)
    b = minidl.ones(3, requires_grad=True)
    (a + b).sum().backward()
    a.grad.data *= 10  # e.g. an in-place gradient clip
    np.testing.assert_array_equal(b.grad.data, [1.0, 1.0, 1.0])


def test_backward_on_a_non_scalar_needs_a_gradient():
    x = minidl.ones(2, 3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"only for scalar outputs.*shape \(2, 3\)"):
        (x * 2).backward()
    (x * 2).backward(np.full((2, 3), 0.5))
    np.testing.assert_array_equal(x.grad.data, np.ones((2, 3)))


def test_backward_grad_of_the_wrong_shape_is_refused():
    x = minidl.ones(2, requires_grad=True)
    with pytest.raises(ValueError, match=r"grad has shape \(3,\) but the tensor has shape \(2,\)"):
        (x * 2).backward(np.ones(3))


def test_backward_without_a_graph_says_so():
    with pytest.raises(RuntimeError, match="does not require grad"):
        minidl.ones(2).sum().backward()


def test_second_backward_needs_retain_graph():
    x = minidl.tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    first = x.grad.numpy().copy()
    y.backward()
    np.testing.assert_allclose(x.grad.data, 2 * first)
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.backward()


def test_backward_frees_saved_values():
    x = minidl.ones(4, requires_grad=True)
    hidden = x.exp()
    saved = hidden._ctx.saved_tensors[0]
    probe = weakref.ref(hidden._ctx)
    y = (hidden * 2).sum()
    y.backward()
    assert hidden._ctx is probe() and hidden._ctx.released
    assert saved is not None  # our own reference; the graph no longer holds it
    with pytest.raises(RuntimeError, match="second time"):
        hidden._ctx.saved_tensors


def test_leaf_backward_sets_its_own_grad():
    x = minidl.tensor(3.0, requires_grad=True)
    x.backward()
    assert x.grad.item() == 1.0


def test_retain_grad_keeps_a_non_leaf_gradient():
    x = minidl.tensor([1.0, 2.0], requires_grad=True)
    h = (x * 3).retain_grad()
    other = x * 5
    (h * h + other).sum().backward()
    np.testing.assert_array_equal(h.grad.data, 2 * h.data)
    assert other.grad is None


def test_requires_grad_propagates_like_torch():
    a = minidl.ones(2, requires_grad=True)
    b = minidl.ones(2)
    assert (a + b).requires_grad
    assert not (b + b).requires_grad
    assert not (a + b).is_leaf
    assert a.is_leaf and (a + b).grad_fn is not None
    assert not a.detach().requires_grad


def test_no_grad_as_context_manager_and_decorator():
    a = minidl.ones(2, requires_grad=True)
    with minidl.no_grad():
        assert not minidl.is_grad_enabled()
        assert not (a * 2).requires_grad
        with minidl.enable_grad():
            assert (a * 2).requires_grad
    assert minidl.is_grad_enabled()

    @minidl.no_grad()
    def evaluate(t):
        return t * 2

    assert not evaluate(a).requires_grad
    assert minidl.is_grad_enabled()


def test_no_grad_restores_the_mode_after_an_exception():
    with pytest.raises(KeyError), minidl.no_grad():
        raise KeyError("boom")
    assert minidl.is_grad_enabled()


def test_only_float_tensors_require_grad():
    with pytest.raises(TypeError, match="only float32 and float64"):
        minidl.tensor([1, 2], requires_grad=True)


def test_long_chain_backpropagates_without_recursion_error():
    x = minidl.tensor([0.5], dtype="float64", requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, [1.0001**10_000], rtol=1e-9)


def _train_step(weights, inputs, targets, lr=0.1):
    hidden = (inputs @ weights[0] + weights[1]).tanh()
    loss = ((hidden @ weights[2] - targets) ** 2).mean()
    for w in weights:
        w.grad = None
    loss.backward()
    with minidl.no_grad():
        for w in weights:
            w.data -= lr * w.grad.data
    return loss.item()


def test_memory_stays_flat_over_1000_training_steps():
    rng = np.random.default_rng(0)
    inputs = minidl.tensor(rng.standard_normal((64, 20)).astype(np.float32))
    targets = minidl.tensor(rng.standard_normal((64, 1)).astype(np.float32))
    weights = [
        minidl.tensor(rng.standard_normal((20, 32)).astype(np.float32) * 0.1, requires_grad=True),
        minidl.zeros(32, requires_grad=True),
        minidl.tensor(rng.standard_normal((32, 1)).astype(np.float32) * 0.1, requires_grad=True),
    ]
    gc.collect()
    tracemalloc.start()
    try:
        for step in range(1000):
            _train_step(weights, inputs, targets)
            if step == 99:
                gc.collect()
                early, _ = tracemalloc.get_traced_memory()
        gc.collect()
        late, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert late - early < 64 * 1024, f"memory grew by {late - early} bytes over 900 steps"


def test_the_graph_is_freed_once_the_loss_goes():
    x = minidl.ones(1000, requires_grad=True)
    hidden = x * 2
    probe = weakref.ref(hidden)
    loss = (hidden.exp()).sum()
    del hidden
    assert probe() is not None  # the graph keeps it while the loss lives
    loss.backward()
    assert probe() is None  # backward dropped the graph's references
    del loss


class ScaledSquare(Function):
    """x**2 * scale: a Function with a non-tensor argument and a saved array."""

    @staticmethod
    def forward(ctx, x, scale):
        ctx.save_for_backward(x)
        ctx.scale = scale
        return x * x * scale

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return 2 * x * ctx.scale * grad, None


def test_custom_function_forward_backward_and_gradcheck():
    x = minidl.tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True)
    y = ScaledSquare.apply(x, 0.5)
    np.testing.assert_allclose(y.data, [0.5, 2.0, 4.5])
    assert "ScaledSquare" in repr(y)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, [1.0, -2.0, 3.0])
    assert minidl.gradcheck(lambda t: ScaledSquare.apply(t, 3.0), (x,))


def test_custom_function_sees_needs_input_grad():
    seen = {}

    class Record(Function):
        @staticmethod
        def forward(ctx, a, b):
            seen["needs"] = ctx.needs_input_grad
            return a + b

        @staticmethod
        def backward(ctx, grad):
            return grad, grad

    Record.apply(minidl.ones(2, requires_grad=True), minidl.ones(2))
    assert seen["needs"] == (True, False)


def test_a_custom_backward_with_a_wrong_shape_is_reported():
    class Broken(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, grad):
            return grad[:1]

    x = minidl.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"Broken.backward returned a gradient of shape \(1,\)"):
        Broken.apply(x).sum().backward()


def test_a_custom_backward_with_a_wrong_count_is_reported():
    class Broken(Function):
        @staticmethod
        def forward(ctx, x, y):
            return x + y

        @staticmethod
        def backward(ctx, grad):
            return grad

    x = minidl.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="returned 1 gradients but forward took 2 inputs"):
        Broken.apply(x, x).sum().backward()


def test_setitem_refuses_tensors_in_the_graph():
    x = minidl.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used"):
        x[0] = 5.0
    with minidl.no_grad():
        x[0] = 5.0
    np.testing.assert_array_equal(x.data, [5.0, 1.0, 1.0])


def test_a_node_reached_by_paths_of_different_lengths_gets_all_its_gradient(torch):
    # x feeds the root directly and through a longer path; the order of the root's
    # inputs puts the long path second: a walk that is not topological misses a part.
    data = np.array([0.3, -0.7, 1.1])
    for order in ("short_first", "long_first"):
        x = minidl.tensor(data, requires_grad=True)
        tx = torch.tensor(data, requires_grad=True)
        results = []
        for t in (x, tx):
            h = t * 2
            long_path = (h * h).exp() * 0.5
            out = h + long_path if order == "short_first" else long_path + h
            out.sum().backward()
            results.append(t.grad.data if t is x else t.grad.numpy())
        np.testing.assert_allclose(results[0], results[1], rtol=1e-12, err_msg=order)


# ---------------------------------------------------------------- gradients a leaf takes over
# A leaf's first gradient becomes its .grad without a copy when nobody else holds the
# array backward produced; otherwise .grad is a copy. Each test below makes one array
# reachable from two places, changes one, and checks the other did not move.


def _address(array):
    return array.__array_interface__["data"][0]


def test_a_batch_norm_input_takes_the_gradient_the_kernel_made(monkeypatch):
    from minidl import _ops

    made = {}
    kernel = _ops.batchnorm_backward

    def recording(*args, **kwargs):
        dx, dweight, dbias = kernel(*args, **kwargs)
        made["dx"] = _address(dx)  # the address only: a reference would force a copy
        return dx, dweight, dbias

    monkeypatch.setattr(_ops, "batchnorm_backward", recording)
    layer = minidl.nn.BatchNorm2D(4)
    x = minidl.randn(8, 4, 5, 5, requires_grad=True)
    layer(x).backward(minidl.randn(8, 4, 5, 5))
    assert _address(x.grad.numpy()) == made["dx"]
    assert x.grad.numpy().flags.c_contiguous and x.grad.numpy().flags.writeable
    for parameter in layer.parameters():
        assert parameter.grad.numpy().flags.owndata


_FRESH_ADDRESSES = []  # where the arrays _Fresh.backward made live


class _Fresh(Function):
    """y = 2x, whose backward returns a new array and records where it lives."""

    keep = None  # a list to keep the arrays backward makes in, or None

    @staticmethod
    def forward(ctx, x):
        return 2 * x

    @staticmethod
    def backward(ctx, grad):
        fresh = 2 * grad
        _FRESH_ADDRESSES.append(_address(fresh))
        if _Fresh.keep is not None:
            _Fresh.keep.append(fresh)
        return fresh


def test_a_gradient_nobody_else_holds_is_not_copied_and_one_held_elsewhere_is():
    x = minidl.ones(5, requires_grad=True)
    _Fresh.apply(x).sum().backward()
    assert _address(x.grad.numpy()) == _FRESH_ADDRESSES[-1]
    x.grad = None
    _Fresh.keep = kept = []
    try:
        _Fresh.apply(x).sum().backward()
    finally:
        _Fresh.keep = None
    assert not np.shares_memory(x.grad.numpy(), kept[0])
    x.grad.numpy()[...] = 7.0
    np.testing.assert_array_equal(kept[0], 2.0)


def test_later_gradients_accumulate_in_place():
    x = minidl.ones(5, requires_grad=True)
    _Fresh.apply(x).sum().backward()
    grad = x.grad.numpy()
    _Fresh.apply(x).sum().backward()
    assert x.grad.numpy() is grad
    np.testing.assert_array_equal(grad, 4.0)


def test_the_gradient_passed_to_backward_is_never_taken():
    for make in (lambda x: x, lambda x: x + 0.0, lambda x: x * 1.0):
        x = minidl.ones(3, requires_grad=True)
        gradient = np.full(3, 2.0, np.float32)
        make(x).backward(gradient)
        x.grad.numpy()[...] = -1.0
        np.testing.assert_array_equal(gradient, 2.0)
        tensor_gradient = minidl.full((3,), 2.0)
        x.grad = None
        make(x).backward(tensor_gradient)
        x.grad.numpy()[...] = -1.0
        np.testing.assert_array_equal(tensor_gradient.numpy(), 2.0)


def test_a_gradient_a_hook_kept_is_never_taken():
    x = minidl.ones(3, requires_grad=True)
    seen = []
    x.register_hook(seen.append)
    _Fresh.apply(x).sum().backward()
    assert not np.shares_memory(x.grad.numpy(), seen[0].numpy())
    x.grad.numpy()[...] = 9.0
    np.testing.assert_array_equal(seen[0].numpy(), 2.0)


def test_a_gradient_a_hook_returned_and_kept_is_never_taken():
    x = minidl.ones(3, requires_grad=True)
    replaced = []

    def scale(grad):
        replaced.append(grad * 10)
        return replaced[-1]

    x.register_hook(scale)
    _Fresh.apply(x).sum().backward()
    assert not np.shares_memory(x.grad.numpy(), replaced[0].numpy())
    x.grad.numpy()[...] = 9.0
    np.testing.assert_array_equal(replaced[0].numpy(), 20.0)


def test_one_gradient_array_routed_to_two_leaves_or_to_a_leaf_and_a_node():
    a = minidl.ones(3, requires_grad=True)
    b = minidl.ones(3, requires_grad=True)
    c = minidl.ones(3, requires_grad=True)
    # _Fresh makes a new array that Add's backward hands to both its inputs: a leaf (c)
    # and a pending node (a + b), then two leaves (a, b)
    _Fresh.apply((a + b) + c).sum().backward()
    grads = [a.grad.numpy(), b.grad.numpy(), c.grad.numpy()]
    for i, grad in enumerate(grads):
        others = [g for j, g in enumerate(grads) if j != i]
        assert not any(np.shares_memory(grad, other) for other in others)
        grad[...] = 5.0 + i
        for other in others:
            assert (other != 5.0 + i).all()


def test_a_leaf_used_twice_gets_a_sum_that_leaves_the_parts_alone():
    x = minidl.ones(3, requires_grad=True)
    gradient = np.ones(3, np.float32)
    (x + x + x).backward(gradient)  # parts: the caller's array itself, three times
    np.testing.assert_array_equal(x.grad.numpy(), 3.0)
    np.testing.assert_array_equal(gradient, 1.0)
    h = x * 2.0
    x.grad = None
    (h + h + h + h).backward(gradient)  # a node's sum: made once, then added into
    np.testing.assert_array_equal(x.grad.numpy(), 8.0)
    np.testing.assert_array_equal(gradient, 1.0)


class _ReturnsSaved(Function):
    """y = 2x; backward returns the very array it saved (a constant derivative)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(np.full_like(x, 2.0))
        return 2 * x

    @staticmethod
    def backward(ctx, grad):
        (derivative,) = ctx.saved_tensors
        return derivative


def test_a_saved_array_returned_as_a_gradient_is_never_taken_while_the_graph_lives():
    x = minidl.ones(3, requires_grad=True)
    y = _ReturnsSaved.apply(x)
    y.backward(np.ones(3, np.float32), retain_graph=True)
    assert not np.shares_memory(x.grad.numpy(), y._ctx._saved[0])
    x.grad.numpy()[...] = 100.0
    x.grad = None
    y.backward(np.ones(3, np.float32))  # the re-run reads the saved array again
    np.testing.assert_array_equal(x.grad.numpy(), 2.0)


def test_a_tensor_data_returned_as_a_gradient_is_never_taken():
    class ReturnsInput(Function):
        @staticmethod
        def forward(ctx, x, other):
            ctx.save_for_backward(other)
            return x * 1.0

        @staticmethod
        def backward(ctx, grad):
            return ctx.saved_tensors[0], None

    x = minidl.ones(3, requires_grad=True)
    other = minidl.full((3,), 4.0)
    ReturnsInput.apply(x, other).backward(np.ones(3, np.float32))
    x.grad.numpy()[...] = 0.0
    np.testing.assert_array_equal(other.numpy(), 4.0)


def test_a_retained_gradient_and_a_leaf_gradient_are_separate():
    x = minidl.ones(3, requires_grad=True)
    h = (x + 0.0).retain_grad()
    _Fresh.apply(h).sum().backward()  # h's gradient, a new array, goes on to x
    h.grad.numpy()[...] = 3.0
    np.testing.assert_array_equal(x.grad.numpy(), 2.0)
    x.grad.numpy()[...] = 4.0
    np.testing.assert_array_equal(h.grad.numpy(), 3.0)


def test_autograd_grad_results_are_separate_from_grad_and_from_each_other():
    a = minidl.ones(3, requires_grad=True)
    b = minidl.ones(3, requires_grad=True)
    y = (a + b).sum()
    ga, gb = minidl.autograd.grad(y, [a, b], retain_graph=True)
    assert not np.shares_memory(ga.numpy(), gb.numpy())
    y.backward()
    for result in (ga, gb):
        for grad in (a.grad, b.grad):
            assert not np.shares_memory(result.numpy(), grad.numpy())


def test_the_walk_reference_count_was_measured():
    from minidl import autograd

    # the walk's own references: its local variable, the argument, getrefcount's own
    # (3 on CPython 3.11; another interpreter may count differently, never 0)
    assert autograd._WALK_REFERENCES > 0


def test_post_accumulate_grad_hooks_run_when_each_leaf_is_complete(torch):
    # as torch's: the hook sees the leaf with its whole gradient, a leaf used twice
    # only once both uses are summed, and the leaves nearest the loss come first
    import minidl.autograd as autograd

    def run(lib, tensor, w_data, b_data):
        w = tensor(w_data, requires_grad=True)
        b = tensor(b_data, requires_grad=True)
        seen = []
        handles = [
            w.register_post_accumulate_grad_hook(lambda t: seen.append(("w", t.grad.tolist()))),
            b.register_post_accumulate_grad_hook(lambda t: seen.append(("b", t.grad.tolist()))),
        ]
        hidden = (w * 2.0).tanh() * w
        ((hidden * b).sum() * 3.0).backward()
        for handle in handles:
            handle.remove()
        return seen

    ours = run(minidl, minidl.tensor, [0.5, -1.0], [2.0, 1.0])
    theirs = run(
        torch, lambda d, **k: torch.tensor(d, dtype=torch.float32, **k), [0.5, -1.0], [2.0, 1.0]
    )
    assert [name for name, _ in ours] == [name for name, _ in theirs] == ["b", "w"]
    for (_, a), (_, b) in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    assert autograd._post_accumulate_hooks == [0]
    with pytest.raises(RuntimeError, match="non-leaf"):
        (minidl.ones(2, requires_grad=True) * 2).register_post_accumulate_grad_hook(print)
