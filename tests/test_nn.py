"""Module's mechanics, layer input checks, gradchecks of every layer, a custom layer, folding."""

import io

import numpy as np
import pytest

import minidl
from minidl import nn
from minidl.nn import functional as F


def _model():
    return nn.Sequential(
        nn.Conv2D(1, 4, 3, padding=1),
        nn.BatchNorm2D(4),
        nn.ReLU(),
        nn.MaxPool2D(2),
        nn.Flatten(),
        nn.Dense(4 * 3 * 3, 10),
    )


# ---------------------------------------------------------------- Module mechanics


def test_registration_order_and_names():
    model = _model()
    names = [name for name, _ in model.named_parameters()]
    assert names == ["0.weight", "0.bias", "1.weight", "1.bias", "5.weight", "5.bias"]
    assert [name for name, _ in model.named_buffers()] == [
        "1.running_mean",
        "1.running_var",
        "1.num_batches_tracked",
    ]
    assert list(model.state_dict()) == [
        "0.weight",
        "0.bias",
        "1.weight",
        "1.bias",
        "1.running_mean",
        "1.running_var",
        "1.num_batches_tracked",
        "5.weight",
        "5.bias",
    ]
    assert [type(m).__name__ for m in model.children()][:2] == ["Conv2D", "BatchNorm2D"]
    assert len(list(model.modules())) == 7


def test_shared_parameters_are_listed_once():
    shared = nn.Dense(3, 3)
    model = nn.Sequential(shared, nn.ReLU(), shared)
    assert len(list(model.parameters())) == 2


def test_train_and_eval_are_recursive_and_return_self():
    model = _model()
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    assert model.train() is model
    assert all(m.training for m in model.modules())


def test_zero_grad_and_freezing():
    model = _model()
    x = minidl.randn(2, 1, 6, 6)
    model(x).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad(set_to_none=False)
    assert all(not p.grad.data.any() for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    model[0].requires_grad_(False)
    model(x).sum().backward()
    assert model[0].weight.grad is None and model[5].weight.grad is not None


def test_to_double_and_float():
    model = _model().double()
    assert all(p.dtype == np.float64 for p in model.parameters())
    assert model[1].running_mean.dtype == np.float64
    assert model[1].num_batches_tracked.dtype == np.int64
    assert model(minidl.randn(2, 1, 6, 6, dtype="float64")).dtype == np.float64
    model.float()
    assert all(p.dtype == np.float32 for p in model.parameters())


def test_apply_visits_children_then_self():
    visited = []
    model = nn.Sequential(nn.Dense(2, 2), nn.Sequential(nn.ReLU()))
    model.apply(lambda m: visited.append(type(m).__name__))
    assert visited == ["Dense", "ReLU", "Sequential", "Sequential"]


def test_load_state_dict_lists_missing_unexpected_and_mismatched():
    model = nn.Sequential(nn.Dense(2, 3), nn.BatchNorm(3))
    state = dict(model.state_dict())
    del state["0.bias"]
    state["extra.weight"] = np.zeros(1)
    state["0.weight"] = np.zeros((4, 2), np.float32)
    with pytest.raises(ValueError) as error:
        model.load_state_dict(state)
    message = str(error.value)
    assert 'Missing key(s): "0.bias"' in message
    assert 'Unexpected key(s): "extra.weight"' in message
    assert "size mismatch for 0.weight" in message and "(4, 2)" in message
    result = nn.Sequential(nn.Dense(2, 3), nn.BatchNorm(3)).load_state_dict(
        {k: v for k, v in model.state_dict().items() if k != "0.bias"}, strict=False
    )
    assert result.missing_keys == ["0.bias"]
    bad_dtype = dict(model.state_dict())
    bad_dtype["1.running_mean"] = np.zeros(3, dtype=np.int64)
    with pytest.raises(ValueError, match=r"dtype mismatch for 1\.running_mean"):
        model.load_state_dict(bad_dtype)


def test_load_state_dict_copies_in_place_and_converts_float_width():
    a, b = nn.Dense(3, 2), nn.Dense(3, 2)
    weight = b.weight
    b.load_state_dict({k: v.astype(np.float64) for k, v in a.state_dict().items()})
    assert b.weight is weight and b.weight.dtype == np.float32
    np.testing.assert_array_equal(b.weight.data, a.weight.data)


def test_forward_hooks_and_their_removal():
    model = _model()
    seen = []
    handles = [m.register_forward_hook(lambda m, i, o: seen.append(o.shape)) for m in model]
    model(minidl.randn(2, 1, 6, 6))
    assert seen[0] == (2, 4, 6, 6) and seen[-1] == (2, 10)
    for handle in handles:
        handle.remove()
    seen.clear()
    model(minidl.randn(2, 1, 6, 6))
    assert seen == []


def test_repr_prints_the_tree():
    text = repr(nn.Sequential(nn.Dense(2, 3), nn.Sequential(nn.ReLU(), nn.Dropout(0.2))))
    assert text == (
        "Sequential(\n"
        "  (0): Dense(in_features=2, out_features=3, bias=True)\n"
        "  (1): Sequential(\n"
        "    (0): ReLU()\n"
        "    (1): Dropout(p=0.2)\n"
        "  )\n"
        ")"
    )


def test_summary_lists_shapes_and_parameter_counts(capsys):
    model = _model()
    model.train()
    text = model.summary((1, 6, 6))
    assert "(None, 4, 6, 6)" in text and "(None, 10)" in text
    assert f"Total params: {sum(p.numel() for p in model.parameters()):,}" in text
    assert capsys.readouterr().out.strip() == text
    assert all(m.training for m in model.modules())  # the mode is restored
    assert model[1].num_batches_tracked.item() == 0  # eval mode: statistics untouched


def test_sequential_indexing_len_append_and_slices():
    model = _model()
    assert len(model) == 6
    assert isinstance(model[-1], nn.Dense)
    head = model[:2]
    assert isinstance(head, nn.Sequential) and len(head) == 2 and head[0] is model[0]
    model.append(nn.Softmax(dim=1))
    assert len(model) == 7
    with pytest.raises(IndexError, match="out of range for 7 modules"):
        model[7]
    with pytest.raises(TypeError, match="argument 0 is a int"):
        nn.Sequential(3)


def test_assigning_before_init_is_explained():
    class Broken(nn.Module):
        def __init__(self):
            self.weight = nn.Parameter(minidl.zeros(2))

    with pytest.raises(RuntimeError, match=r"call super\(\).__init__\(\)"):
        Broken()


# ---------------------------------------------------------------- input checks


@pytest.mark.parametrize(
    ("layer", "shape", "expected"),
    [
        (
            nn.Dense(5, 3),
            (4, 6),
            r"Dense\(in_features=5.*expected input of shape \(\*, 5\), got \(4, 6\)",
        ),
        (nn.Conv2D(3, 4, 3), (2, 2, 8, 8), r"Conv2D\(3, 4.*\(N, 3, H, W\), got \(2, 2, 8, 8\)"),
        (nn.Conv2D(3, 4, 3), (3, 8, 8), r"got \(3, 8, 8\)"),
        (
            nn.BatchNorm(4),
            (2, 3),
            r"BatchNorm\(4.*\(N, 4\), \(N, 4, L\) or \(N, 4, H, W\), got \(2, 3\)",
        ),
        (nn.BatchNorm(4), (2, 4, 1, 1, 1), r"got \(2, 4, 1, 1, 1\)"),
        (nn.BatchNorm1D(4), (2, 4, 3, 3), r"BatchNorm1D\(4.*\(N, 4\) or \(N, 4, L\), got"),
        (nn.BatchNorm2D(4), (2, 4), r"BatchNorm2D\(4.*\(N, 4, H, W\), got \(2, 4\)"),
        (nn.MaxPool2D(2), (2, 8, 8), r"MaxPool2D\(kernel_size=2.*\(N, C, H, W\), got \(2, 8, 8\)"),
        (nn.AvgPool2D(2), (8, 8), r"AvgPool2D.*got \(8, 8\)"),
        (nn.Flatten(), (4,), r"Flatten.*at least 2 dims, got \(4,\)"),
    ],
)
def test_layers_name_themselves_and_both_shapes(layer, shape, expected):
    with pytest.raises(ValueError, match=expected):
        layer(minidl.zeros(*shape))


@pytest.mark.parametrize("shape", [(1, 3), (1, 3, 1), (1, 3, 1, 1)])
def test_batchnorm_needs_more_than_one_value_per_channel_in_training(shape):
    bn = nn.BatchNorm(3)
    with pytest.raises(
        ValueError,
        match=r"^BatchNorm: Expected more than 1 value per channel when training, "
        r"got input shape \(1, 3",
    ):
        bn(minidl.zeros(*shape))
    with pytest.raises(ValueError, match=r"^batch_norm: Expected more than 1 value per channel"):
        nn.functional.batch_norm(minidl.zeros(*shape), training=True)
    assert bn.num_batches_tracked.item() == 1  # counted before the check, as torch counts it
    bn.eval()
    assert bn(minidl.zeros(*shape)).shape == shape  # evaluation uses the running statistics


def test_batchnorm_docstring_explains_keras_conversion():
    doc = nn.BatchNorm.__doc__
    assert "momentum=0.99" in doc and "momentum=0.01" in doc and "epsilon" in doc


# ---------------------------------------------------------------- gradchecks, float64


def _params(layer):
    return list(layer.parameters())


GRADCHECK_LAYERS = {
    "dense": (lambda: nn.Dense(4, 3), (3, 4)),
    "conv": (lambda: nn.Conv2D(2, 3, 3, stride=2, padding=1), (2, 2, 5, 5)),
    "conv_same_even": (lambda: nn.Conv2D(2, 2, 2, padding="same", dilation=1), (1, 2, 4, 3)),
    "conv_dilated": (lambda: nn.Conv2D(1, 2, 2, dilation=2), (2, 1, 5, 5)),
    "bn_train_2d": (lambda: nn.BatchNorm(3), (5, 3)),
    "bn_train_4d": (lambda: nn.BatchNorm(2), (3, 2, 3, 3)),
    "bn_eval": (lambda: nn.BatchNorm(2).eval(), (3, 2, 3)),
    "bn_batch_stats_only": (
        lambda: nn.BatchNorm(2, track_running_stats=False, affine=False),
        (4, 2),
    ),
    "maxpool": (lambda: nn.MaxPool2D(2, 1, 1), (2, 2, 4, 4)),
    "avgpool": (lambda: nn.AvgPool2D(3, 2, 1), (2, 2, 5, 5)),
    "flatten": (lambda: nn.Flatten(), (2, 3, 2)),
    "relu": (lambda: nn.ReLU(), (3, 4)),
    "leaky_relu": (lambda: nn.LeakyReLU(0.1), (3, 4)),
    "sigmoid": (lambda: nn.Sigmoid(), (3, 4)),
    "tanh": (lambda: nn.Tanh(), (3, 4)),
    "softmax": (lambda: nn.Softmax(dim=0), (3, 4)),
    "log_softmax": (lambda: nn.LogSoftmax(dim=1), (3, 4)),
    "identity": (lambda: nn.Identity(), (3,)),
}


@pytest.mark.parametrize("name", sorted(GRADCHECK_LAYERS))
def test_layer_gradcheck(name):
    factory, shape = GRADCHECK_LAYERS[name]
    layer = factory().double()
    x = minidl.randn(*shape, dtype="float64", requires_grad=True)
    assert minidl.gradcheck(lambda x, *params: layer(x), (x, *_params(layer)))


def test_dropout_gradcheck_with_a_fixed_mask():
    layer = nn.Dropout(0.4)
    x = minidl.randn(4, 5, dtype="float64", requires_grad=True)

    def run(t):
        minidl.manual_seed(3)
        return layer(t)

    assert minidl.gradcheck(run, (x,))


@pytest.mark.parametrize(
    "loss",
    [
        lambda x: F.cross_entropy(x, minidl.tensor([0, 2, 1])),
        lambda x: F.cross_entropy(
            x, minidl.tensor([0, 2, 1]), label_smoothing=0.3, reduction="none"
        ),
        lambda x: F.cross_entropy(x, minidl.tensor([0, 2, 1]), reduction="sum"),
        lambda x: F.nll_loss(F.log_softmax(x, dim=1), minidl.tensor([1, 1, 0])),
        lambda x: F.mse_loss(x, minidl.ones(3, 4, dtype="float64")),
    ],
)
def test_loss_gradcheck(loss):
    x = minidl.randn(3, 4, dtype="float64", requires_grad=True)
    assert minidl.gradcheck(loss, (x,))


def test_dropout_statistics_and_modes():
    minidl.manual_seed(0)
    layer = nn.Dropout(0.25)
    out = layer(minidl.ones(200, 200))
    kept = out.numpy() != 0
    assert abs(kept.mean() - 0.75) < 0.01
    np.testing.assert_allclose(out.data[kept], 1 / 0.75)
    assert np.array_equal(nn.Dropout(1.0)(minidl.ones(3)).data, np.zeros(3))
    layer.eval()
    assert layer(minidl.ones(3)).data.tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match=r"^Dropout: p must be a number in \[0, 1\]"):
        nn.Dropout(1.5)


def test_manual_seed_makes_init_and_dropout_reproducible():
    def run():
        minidl.manual_seed(11)
        model = nn.Sequential(nn.Dense(5, 4), nn.Dropout(0.5))
        return model.state_dict()["0.weight"].copy(), model(minidl.ones(2, 5)).data

    first, second = run(), run()
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------- a user's custom layer


class Swish(nn.Module):
    """x * sigmoid(beta * x) with a learnable beta, and a buffer counting calls."""

    def __init__(self, features):
        super().__init__()
        self.beta = nn.Parameter(minidl.ones(features))
        self.register_buffer("calls", np.zeros((), dtype=np.int64))

    def forward(self, x):
        if self.training:
            self.calls.data = self.calls.data + 1
        return x * (x * self.beta).sigmoid()


def test_custom_layer_trains_saves_and_loads(tmp_path):
    minidl.manual_seed(0)
    model = nn.Sequential(nn.Dense(2, 8), Swish(8), nn.Dense(8, 2))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 2)).astype(np.float32)
    y = (x[:, 0] * x[:, 1] > 0).astype(np.int64)
    losses = []
    for _ in range(200):
        loss = nn.CrossEntropyLoss()(model(minidl.tensor(x)), minidl.tensor(y))
        model.zero_grad()
        loss.backward()
        with minidl.no_grad():
            for p in model.parameters():
                p.data -= 0.5 * p.grad.data
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0]
    assert model[1].beta.grad is not None and model[1].calls.item() == 200
    assert "1.beta" in model.state_dict() and "1.calls" in model.state_dict()
    assert minidl.gradcheck(
        lambda t: Swish(3).double()(t), (minidl.randn(4, 3, dtype="float64", requires_grad=True),)
    )

    path = tmp_path / "model.npz"
    np.savez(path, **model.state_dict())
    with np.load(path, allow_pickle=False) as stored:
        restored_state = {key: stored[key] for key in stored.files}
    minidl.manual_seed(1)
    restored = nn.Sequential(nn.Dense(2, 8), Swish(8), nn.Dense(8, 2))
    restored.load_state_dict(restored_state)
    model.eval(), restored.eval()
    np.testing.assert_array_equal(restored(minidl.tensor(x)).data, model(minidl.tensor(x)).data)
    assert restored[1].calls.item() == 200


# ---------------------------------------------------------------- fold_batchnorm


def test_fold_batchnorm_gives_the_same_eval_outputs_with_fewer_operations():
    minidl.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2D(1, 4, 3, padding=1),
        nn.BatchNorm2D(4),
        nn.ReLU(),
        nn.Conv2D(4, 4, 3, bias=False),
        nn.BatchNorm2D(4),
        nn.ReLU(),
        nn.Flatten(),
        nn.Sequential(nn.Dense(4 * 4 * 4, 8), nn.BatchNorm(8)),
        nn.Sigmoid(),
    )
    rng = np.random.default_rng(0)
    for _ in range(5):  # training steps move the running statistics and the affine parameters
        loss = (
            model(minidl.tensor(rng.standard_normal((8, 1, 6, 6)).astype(np.float32))) ** 2
        ).mean()
        model.zero_grad()
        loss.backward()
        with minidl.no_grad():
            for p in model.parameters():
                p.data -= 0.5 * p.grad.data
    folded = nn.utils.fold_batchnorm(model)
    assert not any(isinstance(m, nn.BatchNorm) for m in folded.modules())
    assert sum(isinstance(m, nn.BatchNorm) for m in model.modules()) == 3  # original unchanged
    assert model.training and not folded.training
    x = minidl.tensor(rng.standard_normal((5, 1, 6, 6)).astype(np.float32))
    model.eval()
    np.testing.assert_allclose(folded(x).data, model(x).data, rtol=1e-5, atol=1e-5)
    assert folded[3].bias is not None  # a bias was created for the bias-free conv


def test_fold_batchnorm_leaves_batch_statistics_layers_alone():
    model = nn.Sequential(nn.Dense(3, 3), nn.BatchNorm(3, track_running_stats=False))
    folded = nn.utils.fold_batchnorm(model)
    assert isinstance(folded[1], nn.BatchNorm)


# ---------------------------------------------------------------- init


def test_init_functions_fill_in_place_with_the_right_scale():
    minidl.manual_seed(0)
    w = minidl.zeros(400, 300)
    assert nn.init.kaiming_normal_(w, nonlinearity="relu") is w
    assert abs(w.data.std() - np.sqrt(2 / 300)) < 0.02 * np.sqrt(2 / 300) * 5
    nn.init.kaiming_uniform_(w, mode="fan_out")  # a=0: the gain of a ReLU, sqrt(2)
    bound = np.sqrt(2) * np.sqrt(3 / 400)
    assert bound * 0.99 <= np.abs(w.data).max() <= bound
    nn.init.xavier_uniform_(w, gain=2.0)
    assert np.abs(w.data).max() <= 2.0 * np.sqrt(6 / 700)
    nn.init.xavier_normal_(w)
    assert abs(w.data.std() - np.sqrt(2 / 700)) < 0.05 * np.sqrt(2 / 700)
    nn.init.normal_(w, 1.0, 0.5)
    assert abs(w.data.mean() - 1.0) < 0.01
    nn.init.constant_(w, 3.0)
    assert (w.data == 3.0).all()
    with pytest.raises(ValueError, match="at least 2 dims"):
        nn.init.xavier_uniform_(minidl.zeros(3))
    with pytest.raises(ValueError, match="unsupported nonlinearity"):
        nn.init.calculate_gain("swish")


def test_calculate_gain_matches_torch(torch):
    for name, param in [
        ("relu", None),
        ("tanh", None),
        ("leaky_relu", 0.2),
        ("sigmoid", None),
        ("selu", None),
    ]:
        assert nn.init.calculate_gain(name, param) == pytest.approx(
            torch.nn.init.calculate_gain(name, param)
        )


def test_summary_prints_to_stdout():
    buffer = io.StringIO()
    import contextlib

    with contextlib.redirect_stdout(buffer):
        nn.Dense(3, 2).summary((3,))
    assert "Total params: 8" in buffer.getvalue()


def test_evaluating_restores_each_sub_module_mode_even_after_an_error():
    model = _model()
    model[1].eval()  # a mixed state: one BatchNorm already in eval mode
    with pytest.raises(KeyError), nn.module.evaluating(model):
        assert not any(m.training for m in model.modules())
        assert not minidl.is_grad_enabled()
        raise KeyError("boom")
    assert model.training and model[0].training and not model[1].training
    assert minidl.is_grad_enabled()
