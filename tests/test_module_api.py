"""The module API and containers against torch's: names, orders, returned values, hooks."""

import warnings
from collections import OrderedDict

import numpy as np
import pytest

import minidl
from minidl import nn

torch = pytest.importorskip("torch")
tnn = torch.nn


class Net:
    """The same nested model in both libraries: Sequential(OrderedDict), ModuleList,
    ModuleDict, ParameterList, a shared sub-module and non-persistent buffers."""

    @staticmethod
    def build(lib):
        class Model(lib.Module):
            def __init__(self):
                super().__init__()
                shared = lib.Linear(3, 3)
                self.stem = lib.Sequential(
                    OrderedDict([("conv", lib.Conv2d(2, 3, 3)), ("bn", lib.BatchNorm2d(3))])
                )
                self.blocks = lib.ModuleList([lib.Linear(3, 3), shared])
                self.heads = lib.ModuleDict({"b": lib.Linear(3, 2), "a": shared})
                self.scales = lib.ParameterList(
                    [lib.Parameter(torch_or_minidl_ones(lib, 3)) for _ in range(2)]
                )
                self.register_buffer("step", torch_or_minidl_ones(lib, 1))
                self.register_buffer("cache", torch_or_minidl_ones(lib, 2), persistent=False)

            def forward(self, x):
                h = self.stem(x).mean((2, 3))
                for block in self.blocks:
                    h = block(h) * self.scales[0]
                return self.heads["b"](h) + self.heads["a"](h).sum()

        return Model()


def torch_or_minidl_ones(lib, n):
    return torch.ones(n, dtype=torch.float64) if lib is tnn else minidl.ones(n, dtype="float64")


def _models():
    torch.manual_seed(0)
    theirs = Net.build(tnn).double()
    ours = Net.build(nn).double()
    return ours, theirs


def test_names_and_orders_match_torch():
    ours, theirs = _models()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert [n for n, _ in ours.named_modules(remove_duplicate=False)] == [
        n for n, _ in theirs.named_modules(remove_duplicate=False)
    ]
    assert [n for n, _ in ours.named_parameters(prefix="m", remove_duplicate=False)] == [
        n for n, _ in theirs.named_parameters(prefix="m", remove_duplicate=False)
    ]
    assert [n for n, _ in ours.named_children()] == [n for n, _ in theirs.named_children()]
    assert [type(m).__name__ for m in ours.children()] == [
        type(m).__name__ for m in theirs.children()
    ]
    assert "cache" not in ours.state_dict() and "step" in ours.state_dict()


def test_state_dicts_load_both_ways_strictly_and_the_models_agree():
    ours, theirs = _models()
    with torch.no_grad():
        for p in theirs.parameters():
            p.add_(torch.rand_like(p) * 0.1)
    result = ours.load_state_dict(theirs.state_dict(), strict=True)
    assert result == ([], [])
    x = np.random.default_rng(0).standard_normal((4, 2, 5, 5))
    ours.eval(), theirs.eval()
    np.testing.assert_allclose(
        ours(minidl.tensor(x)).numpy(), theirs(torch.tensor(x)).detach().numpy(), atol=1e-10
    )
    torch.manual_seed(5)
    fresh = Net.build(tnn).double()
    fresh.load_state_dict(
        {k: torch.from_numpy(v.copy()) for k, v in ours.state_dict().items()}, strict=True
    )
    fresh.eval()
    np.testing.assert_allclose(
        fresh(torch.tensor(x)).detach().numpy(), ours(minidl.tensor(x)).numpy(), atol=1e-10
    )


def test_load_state_dict_not_strict_returns_torchs_keys():
    ours, theirs = _models()
    state = dict(theirs.state_dict())
    del state["blocks.0.bias"], state["scales.1"]
    state["extra.weight"] = torch.zeros(1)
    expected = Net.build(tnn).double().load_state_dict(state, strict=False)
    result = ours.load_state_dict(state, strict=False)
    assert result.missing_keys == expected.missing_keys
    assert result.unexpected_keys == expected.unexpected_keys
    with pytest.raises(RuntimeError, match=r'Missing key\(s\): "blocks\.0\.bias", "scales\.1"'):
        ours.load_state_dict(state)
    with pytest.raises(RuntimeError, match=r"size mismatch for stem\.conv\.weight"):
        ours.load_state_dict({"stem.conv.weight": np.zeros(3)}, strict=False)


def test_register_buffer_persistence_can_be_changed_by_registering_again():
    module = nn.Module()
    module.register_buffer("x", minidl.zeros(1), persistent=False)
    module.register_buffer("x", minidl.zeros(1))
    theirs = tnn.Module()
    theirs.register_buffer("x", torch.zeros(1), persistent=False)
    theirs.register_buffer("x", torch.zeros(1))
    assert list(module.state_dict()) == list(theirs.state_dict()) == ["x"]


def test_containers_behave_as_torchs():
    for lib in (nn, tnn):
        layers = lib.ModuleList([lib.ReLU(), lib.Tanh()])
        layers.append(lib.Sigmoid())
        layers.insert(1, lib.Identity())
        layers += [lib.ReLU()]
        del layers[0]
        layers[0] = lib.Tanh()
        summary = (
            [type(m).__name__ for m in layers],
            [n for n, _ in layers.named_children()],
            type(layers[1:]).__name__,
            len(layers[-2:]),
            type(layers[-1]).__name__,
        )
        if lib is nn:
            ours = summary
        else:
            assert ours == summary
        heads = lib.ModuleDict([("x", lib.ReLU()), ("y", lib.Tanh())])
        heads.update({"z": lib.Identity(), "x": lib.Sigmoid()})
        popped = heads.pop("y")
        dict_summary = (list(heads), type(popped).__name__, "z" in heads, len(heads))
        if lib is nn:
            ours_dict = dict_summary
        else:
            assert ours_dict == dict_summary
    with pytest.raises(TypeError, match=r"ModuleList\.append: expected a Module"):
        nn.ModuleList().append(3)
    with pytest.raises(IndexError, match="ModuleList: index 2 is out of range"):
        nn.ModuleList([nn.ReLU(), nn.ReLU()])[2]
    with pytest.raises(NotImplementedError):
        nn.ModuleList([nn.ReLU()])(minidl.ones(1))
    plist = nn.ParameterList([minidl.ones(2), nn.Parameter(minidl.zeros(3))])
    plist.append(np.zeros(4))
    assert [type(p).__name__ for p in plist] == ["Parameter"] * 3
    assert [n for n, _ in plist.named_parameters()] == ["0", "1", "2"]
    assert "(1): Parameter containing: [float32 of size 3]" in repr(plist)


def test_sequential_from_an_ordered_dict_keeps_names_when_sliced():
    for lib in (nn, tnn):
        model = lib.Sequential(OrderedDict([("a", lib.ReLU()), ("b", lib.Tanh())]))
        names = [n for n, _ in model[1:].named_children()]
        assert names == ["b"]


def test_apply_requires_grad_and_zero_grad_match_torch():
    ours, theirs = _models()
    seen_ours, seen_theirs = [], []
    ours.apply(lambda m: seen_ours.append(type(m).__name__))
    theirs.apply(lambda m: seen_theirs.append(type(m).__name__))
    renamed = {"Dense": "Linear", "Conv2D": "Conv2d", "BatchNorm2D": "BatchNorm2d"}
    assert [renamed.get(n, n) for n in seen_ours] == seen_theirs
    assert ours.requires_grad_(False) is ours
    assert not any(p.requires_grad for p in ours.parameters())
    ours.requires_grad_()
    x = minidl.tensor(np.ones((2, 2, 5, 5)))
    ours(x).sum().backward()
    ours.zero_grad(set_to_none=False)
    theirs(torch.ones(2, 2, 5, 5, dtype=torch.float64)).sum().backward()
    theirs.zero_grad(set_to_none=False)
    assert [p.grad is None for p in ours.parameters()] == [
        p.grad is None for p in theirs.parameters()
    ]  # scales.1 is unused: its gradient stays None
    assert all(p.grad is None or not p.grad.numpy().any() for p in ours.parameters())
    ours.zero_grad()
    assert all(p.grad is None for p in ours.parameters())


def test_forward_pre_hooks_replace_the_arguments_as_torchs():
    for lib, ones in ((nn, minidl.ones), (tnn, torch.ones)):
        layer = lib.Identity()
        calls = []
        first = layer.register_forward_pre_hook(
            lambda m, args, calls=calls: calls.append(len(args))
        )
        second = layer.register_forward_pre_hook(lambda m, args: args[0] + 1)
        third = layer.register_forward_pre_hook(lambda m, args: (args[0] * 3,))
        out = layer(ones(2))
        assert out.tolist() == [6.0, 6.0] and calls == [1]
        second.remove(), third.remove(), first.remove()
        assert layer(ones(2)).tolist() == [1.0, 1.0] and calls == [1]


class TwoInTwoOut:
    @staticmethod
    def build(lib):
        class Module(lib.Module):
            def __init__(self):
                super().__init__()
                self.scale = lib.Linear(2, 2)

            def forward(self, a, b, k):
                return self.scale(a) * k, b * 3

        return Module()


def _same_weights(ours, theirs):
    ours.load_state_dict(theirs.state_dict(), strict=True)


def test_full_backward_hooks_see_torchs_gradients():
    torch.manual_seed(0)
    reference = None
    for use_second in (True, False):
        results = []
        for lib, tensor in ((tnn, torch.tensor), (nn, minidl.tensor)):
            module = TwoInTwoOut.build(lib).double()
            if lib is nn:
                _same_weights(module, reference)
            else:
                reference = module
            seen = []
            module.register_full_backward_hook(
                lambda m, gi, go, seen=seen: seen.append(
                    (
                        [None if g is None else g.tolist() for g in gi],
                        [None if g is None else g.tolist() for g in go],
                    )
                )
            )
            a = tensor(np.arange(4.0).reshape(2, 2), requires_grad=True)
            b = tensor(np.ones(2), requires_grad=True)
            out_a, out_b = module(a, b, 2.0)
            loss = out_a.sum() + out_b.sum() if use_second else out_a.sum()
            loss.backward()
            results.append((seen, a.grad.tolist(), b.grad.tolist()))
        (theirs_seen, *their_grads), (ours_seen, *our_grads) = results
        assert len(ours_seen) == len(theirs_seen) == 1
        for mine, theirs in zip(ours_seen[0], theirs_seen[0]):
            assert [g is None for g in mine] == [g is None for g in theirs]
            for g, h in zip(mine, theirs):
                if g is not None:
                    np.testing.assert_allclose(g, h, atol=1e-12)
        for mine, theirs in zip(our_grads, their_grads):
            np.testing.assert_allclose(mine, theirs, atol=1e-12)


def test_full_backward_hook_can_replace_grad_input_and_be_removed():
    for lib, tensor in ((tnn, torch.tensor), (nn, minidl.tensor)):
        layer = lib.Linear(2, 2).double()
        handle = layer.register_full_backward_hook(lambda m, gi, go: (gi[0] * 10,))
        x = tensor(np.ones((3, 2)), requires_grad=True)
        layer(x).sum().backward()
        scaled = np.asarray(x.grad.tolist())
        handle.remove()
        x.grad = None
        layer(x).sum().backward()
        np.testing.assert_allclose(scaled, 10 * np.asarray(x.grad.tolist()))
    bad = nn.Linear(2, 2)
    bad.register_full_backward_hook(lambda m, gi, go: (gi[0], gi[0]))
    with pytest.raises(RuntimeError, match="invalid number of grad_input, got 2, but expected 1"):
        bad(minidl.ones(1, 2, requires_grad=True)).sum().backward()


def test_full_backward_hook_without_input_gradients_fires_on_the_outputs():
    for lib, tensor in ((tnn, torch.ones), (nn, minidl.ones)):
        layer = lib.Linear(3, 2)
        seen = []
        layer.register_full_backward_hook(
            lambda m, gi, go, seen=seen: seen.append((gi, go[0].shape))
        )
        with pytest.warns(UserWarning, match="no inputs require gradients"):
            layer(tensor(4, 3)).sum().backward()
        assert seen[0][0] == (None,) and tuple(seen[0][1]) == (4, 2)
        layer.register_full_backward_hook(lambda m, gi, go, tensor=tensor: (tensor(1),))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(RuntimeError, match="should always return None"):
                layer(tensor(4, 3)).sum().backward()


def test_full_backward_hooks_in_a_model_fire_once_per_backward_in_torchs_order():
    orders = []
    for lib, tensor in ((tnn, torch.ones), (nn, minidl.ones)):
        model = lib.Sequential(lib.Linear(3, 4), lib.ReLU(), lib.Linear(4, 2))
        order = []
        for name, module in model.named_children():
            module.register_full_backward_hook(
                lambda m, gi, go, name=name, order=order: order.append(name)
            )
        x = tensor(5, 3, requires_grad=True)
        model(x).sum().backward()
        with torch.no_grad() if lib is tnn else minidl.no_grad():
            model(x)  # no graph: no hooks
        orders.append(order)
    assert orders[0] == orders[1] == ["2", "1", "0"]


def test_assigning_a_name_again_keeps_its_place_as_in_torch():
    orders = []
    for lib in (nn, tnn):
        model = lib.Module()
        model.a = lib.Linear(1, 1)
        model.b = lib.Linear(1, 1)
        model.a = lib.Linear(1, 1)
        model.w = lib.Parameter(torch.zeros(1) if lib is tnn else minidl.zeros(1))
        model.v = lib.Parameter(torch.zeros(1) if lib is tnn else minidl.zeros(1))
        model.w = lib.Parameter(torch.zeros(1) if lib is tnn else minidl.zeros(1))
        orders.append(list(model.state_dict()))
    assert orders[0] == orders[1] == ["w", "v", "a.weight", "a.bias", "b.weight", "b.bias"]


def test_layers_read_a_weight_replaced_by_a_plain_attribute_as_torch_does():
    # weight normalization's pattern: the parameter is deleted and ``weight`` becomes a
    # plain attribute set before each forward; the layers' fast reads of their registered
    # state must then see the attribute
    linear = nn.Linear(3, 2)
    direction = linear.weight.detach().numpy().copy()
    del linear.weight
    linear.weight = minidl.tensor(2 * direction)
    x = minidl.ones(4, 3)
    expected = x.numpy() @ (2 * direction).T + linear.bias.detach().numpy()
    np.testing.assert_allclose(linear(x).numpy(), expected, rtol=1e-6)

    norm = nn.BatchNorm1d(3)
    del norm.weight
    norm.weight = minidl.tensor(np.array([1.0, 2.0, 3.0], dtype=np.float32))
    out = norm(minidl.tensor(np.array([[0.0, 0.0, 0.0], [2.0, 2.0, 2.0]], np.float32)))
    np.testing.assert_allclose(out.numpy()[1], [1.0, 2.0, 3.0], rtol=1e-4)
    assert norm.num_batches_tracked.item() == 1
