"""Losses of minidl.nn against torch in float64: every reduction and option, values and
gradients (input, and target where torch has one) to 1e-8, gradchecks and refusals."""

import warnings

import numpy as np
import pytest

import minidl
import minidl.nn.functional as F
from minidl import _ops, nn

torch = pytest.importorskip("torch")
tnn = torch.nn
TF = torch.nn.functional

TOLERANCE = dict(rtol=1e-8, atol=1e-10)
REDUCTIONS = ("mean", "sum", "none")


def _pair(values, requires_grad=True):
    return (
        minidl.tensor(values, requires_grad=requires_grad),
        torch.tensor(values, requires_grad=requires_grad),
    )


def _check(ours, theirs, seed=5):
    """Same value; after a random upstream gradient, the same gradients of each pair."""
    mine, expected = ours[0], theirs[0]
    np.testing.assert_allclose(mine.numpy(), expected.detach().numpy(), **TOLERANCE)
    upstream = np.random.default_rng(seed).standard_normal(expected.shape)
    mine.backward(upstream)
    expected.backward(torch.tensor(upstream))
    for a, b in zip(ours[1:], theirs[1:]):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.detach().numpy(), **TOLERANCE)


def _logits(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape) * 2


def _labels(shape, classes, seed=1, ignore=None):
    labels = np.random.default_rng(seed).integers(0, classes, shape)
    if ignore is not None:
        labels.reshape(-1)[::3] = ignore
    return labels


CLASS_SHAPES = [((6, 5), (6,)), ((5,), ()), ((3, 4, 2, 3), (3, 2, 3)), ((2, 3, 5), (2, 5))]
OPTIONS = [
    {},
    {"weight": True},
    {"ignore_index": 1},
    {"ignore_index": -100, "ignored": True},
    {"label_smoothing": 0.15},
    {"weight": True, "ignore_index": 2, "label_smoothing": 0.3},
]


def _class_case(input_shape, target_shape, options):
    classes = input_shape[1] if len(input_shape) > 1 else input_shape[0]
    kwargs = {k: v for k, v in options.items() if k not in ("weight", "ignored")}
    ignore = kwargs.get("ignore_index") if options.get("ignored") else None
    labels = _labels(target_shape, classes, ignore=ignore)
    if "ignore_index" in kwargs and ignore is None and labels.size:
        labels.reshape(-1)[0] = kwargs["ignore_index"]
    theirs_kwargs = dict(kwargs)
    if options.get("weight"):
        weight = np.linspace(0.2, 2.0, classes)
        kwargs["weight"] = minidl.tensor(weight)
        theirs_kwargs["weight"] = torch.tensor(weight)
    return labels, kwargs, theirs_kwargs


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(o) or "plain")
@pytest.mark.parametrize(("input_shape", "target_shape"), CLASS_SHAPES)
def test_cross_entropy_with_class_indices_matches_torch(
    input_shape, target_shape, options, reduction
):
    labels, kwargs, theirs_kwargs = _class_case(input_shape, target_shape, options)
    x, their_x = _pair(_logits(input_shape))
    ours = F.cross_entropy(x, minidl.tensor(labels), reduction=reduction, **kwargs)
    theirs = TF.cross_entropy(their_x, torch.tensor(labels), reduction=reduction, **theirs_kwargs)
    _check((ours, x), (theirs, their_x))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(
    "options",
    [o for o in OPTIONS if "label_smoothing" not in o],
    ids=lambda o: "-".join(o) or "plain",
)
@pytest.mark.parametrize(("input_shape", "target_shape"), CLASS_SHAPES)
def test_nll_loss_matches_torch(input_shape, target_shape, options, reduction):
    labels, kwargs, theirs_kwargs = _class_case(input_shape, target_shape, options)
    x, their_x = _pair(_logits(input_shape))
    ours = F.nll_loss(x, minidl.tensor(labels), reduction=reduction, **kwargs)
    theirs = TF.nll_loss(their_x, torch.tensor(labels), reduction=reduction, **theirs_kwargs)
    _check((ours, x), (theirs, their_x))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("input_shape", [(4, 5), (5,), (2, 3, 4)])
def test_cross_entropy_with_class_probabilities_matches_torch(
    input_shape, weighted, smoothing, reduction
):
    classes = input_shape[1] if len(input_shape) > 1 else input_shape[0]
    rng = np.random.default_rng(4)
    probabilities = rng.dirichlet(np.ones(classes), size=int(np.prod(input_shape)) // classes)
    probabilities = (
        np.moveaxis(probabilities.reshape(input_shape[:1] + input_shape[2:] + (classes,)), -1, 1)
        if len(input_shape) > 1
        else probabilities.reshape(input_shape)
    )
    x, their_x = _pair(_logits(input_shape))
    t, their_t = _pair(np.ascontiguousarray(probabilities))
    weight = np.linspace(0.5, 1.5, classes) if weighted else None
    ours = F.cross_entropy(
        x,
        t,
        weight=None if weight is None else minidl.tensor(weight),
        reduction=reduction,
        label_smoothing=smoothing,
    )
    theirs = TF.cross_entropy(
        their_x,
        their_t,
        weight=None if weight is None else torch.tensor(weight),
        reduction=reduction,
        label_smoothing=smoothing,
    )
    _check((ours, x, t), (theirs, their_x, their_t))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_with_a_masked_class_matches_torch(weighted, smoothing, reduction):
    values = _logits((4, 3))
    values[:, 1] = -np.inf  # a masked class, never the target
    labels = np.array([0, 2, 2, 0])
    x, their_x = _pair(values)
    weight = np.array([0.5, 1.0, 2.0]) if weighted else None
    ours = F.cross_entropy(
        x,
        minidl.tensor(labels),
        weight=None if weight is None else minidl.tensor(weight),
        reduction=reduction,
        label_smoothing=smoothing,
    )
    theirs = TF.cross_entropy(
        their_x,
        torch.tensor(labels),
        weight=None if weight is None else torch.tensor(weight),
        reduction=reduction,
        label_smoothing=smoothing,
    )
    if smoothing == 0:
        assert np.all(np.isfinite(ours.numpy()))  # it used to be NaN
    _check((ours, x), (theirs, their_x))
    assert np.all(np.isfinite(x.grad.numpy()))


def test_cross_entropy_plain_case_runs_the_fused_kernel(monkeypatch):
    calls = []
    for name in ("softmax_xent_forward", "softmax_xent_backward"):
        kernel = getattr(_ops, name)
        monkeypatch.setattr(
            _ops,
            name,
            lambda *a, _kernel=kernel, _name=name, **k: calls.append(_name) or _kernel(*a, **k),
        )
    x = minidl.tensor(_logits((6, 4)), requires_grad=True)
    F.cross_entropy(x, minidl.tensor(_labels(6, 4)), label_smoothing=0.1).backward()
    assert calls == ["softmax_xent_forward", "softmax_xent_backward"]
    calls.clear()
    F.cross_entropy(x, minidl.tensor(_labels(6, 4)), weight=minidl.ones(4, dtype="float64"))
    assert calls == []


def test_cross_entropy_float32_stays_float32_and_close_to_torch():
    values = _logits((8, 5)).astype(np.float32)
    labels = _labels(8, 5)
    for options in ({}, {"weight": np.float32([1, 2, 3, 4, 5])}, {"ignore_index": 0}):
        ours = F.cross_entropy(
            minidl.tensor(values),
            minidl.tensor(labels),
            **{k: minidl.tensor(v) if k == "weight" else v for k, v in options.items()},
        )
        theirs = TF.cross_entropy(
            torch.tensor(values),
            torch.tensor(labels),
            **{k: torch.tensor(v) if k == "weight" else v for k, v in options.items()},
        )
        assert ours.dtype == np.float32
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)


def test_all_targets_ignored_gives_nan_mean_as_torch():
    x = minidl.tensor(_logits((3, 4)))
    labels = minidl.tensor([-100, -100, -100])
    assert np.isnan(F.cross_entropy(x, labels).item())
    assert np.isnan(F.nll_loss(x, labels).item())
    assert F.cross_entropy(x, labels, reduction="sum").item() == 0.0


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_binary_cross_entropy_matches_torch(weighted, reduction):
    rng = np.random.default_rng(6)
    probabilities = rng.uniform(0.01, 0.99, (4, 3))
    probabilities[0, :2] = [0.0, 1.0]  # the clamped logs
    target = rng.uniform(0, 1, (4, 3))
    target[0, :2] = [1.0, 0.0]
    x, their_x = _pair(probabilities)
    t, their_t = _pair(target)
    weight = rng.uniform(0.5, 2, 3) if weighted else None
    ours = F.binary_cross_entropy(
        x, t, None if weight is None else minidl.tensor(weight), reduction=reduction
    )
    theirs = TF.binary_cross_entropy(
        their_x, their_t, None if weight is None else torch.tensor(weight), reduction=reduction
    )
    mine_value, their_value = ours.numpy(), theirs.detach().numpy()
    np.testing.assert_allclose(mine_value, their_value, **TOLERANCE)
    upstream = rng.standard_normal(theirs.shape)
    ours.backward(upstream)
    theirs.backward(torch.tensor(upstream))
    np.testing.assert_allclose(x.grad.numpy(), their_x.grad.numpy(), **TOLERANCE)
    np.testing.assert_allclose(t.grad.numpy(), their_t.grad.numpy(), **TOLERANCE)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("pos_weighted", [False, True])
def test_binary_cross_entropy_with_logits_matches_torch(pos_weighted, weighted, reduction):
    rng = np.random.default_rng(7)
    values = rng.standard_normal((5, 3)) * 4
    values[0, :3] = [0.0, 800.0, -800.0]
    x, their_x = _pair(values)
    t, their_t = _pair(rng.uniform(0, 1, (5, 3)))
    w, their_w = _pair(rng.uniform(0.5, 2, (5, 1)), requires_grad=False)
    p, their_p = _pair(rng.uniform(0.5, 3, 3), requires_grad=False)
    ours = F.binary_cross_entropy_with_logits(
        x, t, w if weighted else None, reduction=reduction, pos_weight=p if pos_weighted else None
    )
    theirs = TF.binary_cross_entropy_with_logits(
        their_x,
        their_t,
        their_w if weighted else None,
        reduction=reduction,
        pos_weight=their_p if pos_weighted else None,
    )
    _check((ours, x, t), (theirs, their_x, their_t))


POINTWISE = {
    "mse": (F.mse_loss, TF.mse_loss, {}),
    "l1": (F.l1_loss, TF.l1_loss, {}),
    "smooth_l1": (F.smooth_l1_loss, TF.smooth_l1_loss, {}),
    "smooth_l1_beta": (F.smooth_l1_loss, TF.smooth_l1_loss, {"beta": 0.5}),
    "smooth_l1_beta0": (F.smooth_l1_loss, TF.smooth_l1_loss, {"beta": 0.0}),
    "huber": (F.huber_loss, TF.huber_loss, {}),
    "huber_delta": (F.huber_loss, TF.huber_loss, {"delta": 2.5}),
}


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", sorted(POINTWISE))
def test_pointwise_losses_match_torch(name, reduction):
    ours_fn, theirs_fn, options = POINTWISE[name]
    rng = np.random.default_rng(8)
    prediction = rng.standard_normal((4, 5)) * 2
    target = rng.standard_normal((4, 5))
    target[0, :3] = prediction[0, :3] + [0.0, 1.0, -0.5]  # the kinks: 0, beta, delta
    x, their_x = _pair(prediction)
    t, their_t = _pair(target)
    ours = ours_fn(x, t, reduction=reduction, **options)
    theirs = theirs_fn(their_x, their_t, reduction=reduction, **options)
    _check((ours, x, t), (theirs, their_x, their_t))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", ["mse", "l1", "huber"])
def test_weighted_pointwise_losses_match_torch(name, reduction):
    ours_fn, theirs_fn, _ = POINTWISE[name]
    rng = np.random.default_rng(9)
    x, their_x = _pair(rng.standard_normal((3, 4)) * 2)
    t, their_t = _pair(rng.standard_normal((3, 4)))
    weight = rng.uniform(0.1, 2, (3, 4))
    ours = ours_fn(x, t, reduction=reduction, weight=minidl.tensor(weight))
    theirs = theirs_fn(their_x, their_t, reduction=reduction, weight=torch.tensor(weight))
    _check((ours, x, t), (theirs, their_x, their_t))


@pytest.mark.parametrize("reduction", ["mean", "batchmean", "sum", "none"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div_matches_torch(log_target, reduction):
    rng = np.random.default_rng(10)
    x, their_x = _pair(np.log(rng.dirichlet(np.ones(4), size=3)))
    target = rng.dirichlet(np.ones(4), size=3)
    t, their_t = _pair(np.log(target) if log_target else target)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = F.kl_div(x, t, reduction=reduction, log_target=log_target)
        theirs = TF.kl_div(their_x, their_t, reduction=reduction, log_target=log_target)
    _check((ours, x, t), (theirs, their_x, their_t))


def test_kl_div_zero_target_and_mean_warning_as_torch():
    x, their_x = _pair(np.log([[0.2, 0.3, 0.5]]))
    t, their_t = _pair(np.array([[0.0, 0.4, 0.6]]))
    with pytest.warns(UserWarning, match="'batchmean' divides only by the batch size"):
        ours = F.kl_div(x, t)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = TF.kl_div(their_x, their_t)
    ours.backward()
    theirs.backward()
    np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), **TOLERANCE)
    np.testing.assert_allclose(x.grad.numpy(), their_x.grad.numpy(), **TOLERANCE)
    # torch's xlogy gives a NaN target gradient where the target is 0; so does minidl
    np.testing.assert_allclose(t.grad.numpy(), their_t.grad.numpy(), **TOLERANCE)


def _module_pairs():
    weight = np.array([0.5, 1.0, 2.0, 1.5])
    return [
        (nn.CrossEntropyLoss(), tnn.CrossEntropyLoss(), "labels"),
        (
            nn.CrossEntropyLoss(minidl.tensor(weight), ignore_index=1, label_smoothing=0.1),
            tnn.CrossEntropyLoss(torch.tensor(weight), ignore_index=1, label_smoothing=0.1),
            "labels",
        ),
        (nn.CrossEntropyLoss(reduction="none"), tnn.CrossEntropyLoss(reduction="none"), "probs"),
        (nn.NLLLoss(minidl.tensor(weight)), tnn.NLLLoss(torch.tensor(weight)), "labels"),
        (nn.NLLLoss(reduction="sum"), tnn.NLLLoss(reduction="sum"), "labels"),
        (nn.BCELoss(minidl.tensor(weight)), tnn.BCELoss(torch.tensor(weight)), "unit"),
        (
            nn.BCEWithLogitsLoss(pos_weight=minidl.tensor(weight)),
            tnn.BCEWithLogitsLoss(pos_weight=torch.tensor(weight)),
            "unit",
        ),
        (nn.MSELoss(reduction="sum"), tnn.MSELoss(reduction="sum"), "same"),
        (nn.L1Loss(), tnn.L1Loss(), "same"),
        (nn.SmoothL1Loss(beta=0.5), tnn.SmoothL1Loss(beta=0.5), "same"),
        (nn.HuberLoss(delta=0.5), tnn.HuberLoss(delta=0.5), "same"),
        (nn.KLDivLoss(reduction="batchmean"), tnn.KLDivLoss(reduction="batchmean"), "probs"),
        (
            nn.KLDivLoss(reduction="sum", log_target=True),
            tnn.KLDivLoss(reduction="sum", log_target=True),
            "same",
        ),
    ]


@pytest.mark.parametrize("index", range(len(_module_pairs())))
def test_loss_modules_match_torch_and_share_their_state_dict(index):
    ours, theirs, kind = _module_pairs()[index]
    rng = np.random.default_rng(index)
    prediction = rng.standard_normal((5, 4))
    if kind == "unit":
        prediction = rng.uniform(0.05, 0.95, (5, 4)) if isinstance(ours, nn.BCELoss) else prediction
    target = {
        "labels": lambda: rng.integers(0, 4, 5),
        "probs": lambda: rng.dirichlet(np.ones(4), size=5),
        "unit": lambda: rng.uniform(0, 1, (5, 4)),
        "same": lambda: rng.standard_normal((5, 4)),
    }[kind]()
    x, their_x = _pair(prediction)
    _check((ours(x, minidl.tensor(target)), x), (theirs(their_x, torch.tensor(target)), their_x))
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict(theirs.state_dict(), strict=True)
    theirs.load_state_dict(
        {k: torch.tensor(np.asarray(v)) for k, v in ours.state_dict().items()}, strict=True
    )


def test_legacy_size_average_and_reduce_map_to_reduction_with_torch_warning():
    with pytest.warns(UserWarning, match="reduction='sum'"):
        assert nn.MSELoss(size_average=False).reduction == "sum"
    with pytest.warns(UserWarning, match="reduction='none'"):
        assert nn.CrossEntropyLoss(reduce=False).reduction == "none"
    with pytest.warns(UserWarning):
        value = F.l1_loss(minidl.ones(2), minidl.zeros(2), size_average=False)
    assert value.item() == 2.0


@pytest.mark.parametrize(
    "loss",
    [
        lambda x: F.cross_entropy(x, minidl.tensor([0, 2, 1])),
        lambda x: F.cross_entropy(
            x,
            minidl.tensor([0, 2, 1]),
            weight=minidl.tensor([1.0, 2.0, 0.5, 1.0]),
            ignore_index=2,
            label_smoothing=0.2,
        ),
        lambda x: F.cross_entropy(x, minidl.tensor(np.full((3, 4), 0.25)), label_smoothing=0.1),
        lambda x: F.nll_loss(
            x, minidl.tensor([3, 0, 1]), weight=minidl.tensor([1.0, 2.0, 0.5, 1.0])
        ),
        lambda x: F.binary_cross_entropy(x.sigmoid(), minidl.tensor(np.full((3, 4), 0.3))),
        lambda x: F.binary_cross_entropy_with_logits(
            x, minidl.tensor(np.full((3, 4), 0.3)), pos_weight=minidl.tensor([1.0, 2.0, 0.5, 3.0])
        ),
        lambda x: F.smooth_l1_loss(x, minidl.zeros(3, 4, dtype="float64"), beta=0.05),
        lambda x: F.huber_loss(x, minidl.zeros(3, 4, dtype="float64"), delta=0.05),
        lambda x: F.l1_loss(x, minidl.zeros(3, 4, dtype="float64")),
        lambda x: F.kl_div(x, minidl.tensor(np.full((3, 4), 0.25)), reduction="batchmean"),
    ],
)
def test_loss_gradcheck(loss):
    values = np.random.default_rng(11).uniform(0.2, 1.5, (3, 4)) * np.array([1, -1, 1, -1])
    assert minidl.gradcheck(loss, (minidl.tensor(values, requires_grad=True),))


def test_target_gradcheck():
    x = minidl.tensor(_logits((3, 4)))
    probabilities = minidl.tensor(np.full((3, 4), 0.25), requires_grad=True)
    assert minidl.gradcheck(lambda t: F.cross_entropy(x, t, label_smoothing=0.2), (probabilities,))
    unit = minidl.tensor(np.random.default_rng(3).uniform(0.2, 0.8, (3, 4)), requires_grad=True)
    assert minidl.gradcheck(lambda t: F.binary_cross_entropy(x.sigmoid(), t), (unit,))
    assert minidl.gradcheck(lambda t: F.binary_cross_entropy_with_logits(x, t), (unit,))
    assert minidl.gradcheck(lambda t: F.kl_div(x, t, reduction="sum"), (unit,))


LOGITS = minidl.zeros(2, 3)
BAD = [
    (
        lambda: F.cross_entropy(LOGITS, minidl.tensor([0, 3])),
        IndexError,
        "cross_entropy: Target 3 is out of bounds",
    ),
    (
        lambda: F.nll_loss(LOGITS, minidl.tensor([-1, 0])),
        IndexError,
        "nll_loss: Target -1 is out of bounds",
    ),
    (
        lambda: F.cross_entropy(LOGITS, minidl.tensor([0, 1, 2])),
        ValueError,
        "Expected input batch_size",
    ),
    (
        lambda: F.cross_entropy(LOGITS, minidl.tensor([0.0, 1.0])),
        RuntimeError,
        "class probabilities must have",
    ),
    (
        lambda: F.cross_entropy(LOGITS, minidl.tensor([True, False])),
        RuntimeError,
        "integer class indices",
    ),
    (
        lambda: F.cross_entropy(minidl.zeros(2, 3, 4), minidl.tensor([[0] * 5] * 2)),
        RuntimeError,
        "expected a target of shape",
    ),
    (
        lambda: F.cross_entropy(minidl.tensor([[1, 2]]), minidl.tensor([0])),
        RuntimeError,
        "floating-point input",
    ),
    (
        lambda: F.cross_entropy(LOGITS, minidl.tensor([0, 1]), weight=minidl.ones(2)),
        RuntimeError,
        "weight tensor should be defined",
    ),
    (
        lambda: F.cross_entropy(
            LOGITS, minidl.tensor([0, 1]), weight=minidl.ones(3, requires_grad=True)
        ),
        RuntimeError,
        "not differentiable with respect to weight",
    ),
    (
        lambda: F.cross_entropy(LOGITS, minidl.tensor([0, 1]), label_smoothing=1.5),
        ValueError,
        "cross_entropy: label_smoothing",
    ),
    (
        lambda: F.cross_entropy(LOGITS, minidl.tensor([0, 1]), reduction="avg"),
        ValueError,
        "cross_entropy: reduction",
    ),
    (
        lambda: F.nll_loss(minidl.zeros(()), minidl.tensor(0)),
        ValueError,
        "Expected 1 or more dimensions",
    ),
    (
        lambda: F.binary_cross_entropy(minidl.tensor([1.5]), minidl.tensor([1.0])),
        RuntimeError,
        "input should be between 0 and 1",
    ),
    (
        lambda: F.binary_cross_entropy(minidl.tensor([0.5]), minidl.tensor([-1.0])),
        RuntimeError,
        "target should be between 0 and 1",
    ),
    (
        lambda: F.binary_cross_entropy(minidl.tensor([0.5]), minidl.tensor([1.0, 0.0])),
        ValueError,
        "binary_cross_entropy: Using a target size",
    ),
    (
        lambda: F.binary_cross_entropy(minidl.tensor([0.5]), minidl.tensor([1])),
        RuntimeError,
        "floating-point target",
    ),
    (
        lambda: F.binary_cross_entropy(
            minidl.tensor([0.5, 0.5]), minidl.tensor([1.0, 0.0]), minidl.ones(3)
        ),
        RuntimeError,
        "cannot be broadcast",
    ),
    (
        lambda: F.binary_cross_entropy_with_logits(minidl.zeros(2), minidl.zeros(3)),
        ValueError,
        "Target size",
    ),
    (
        lambda: F.binary_cross_entropy_with_logits(
            minidl.zeros(2, 2), minidl.zeros(2, 2), pos_weight=minidl.ones(3)
        ),
        RuntimeError,
        "pos_weight of shape",
    ),
    (
        lambda: F.mse_loss(minidl.zeros(2), minidl.zeros(3)),
        ValueError,
        "mse_loss: Using a target size",
    ),
    (
        lambda: F.l1_loss(minidl.zeros(2), minidl.zeros(2), weight=minidl.ones(3)),
        ValueError,
        "Weights and input",
    ),
    (
        lambda: F.smooth_l1_loss(minidl.zeros(2), minidl.zeros(2), beta=-1.0),
        RuntimeError,
        "negative values for beta",
    ),
    (
        lambda: F.huber_loss(minidl.zeros(2), minidl.zeros(2), delta=0.0),
        RuntimeError,
        "non-positive values for delta",
    ),
    (
        lambda: F.kl_div(minidl.zeros(2), minidl.zeros(2), reduction="batch"),
        ValueError,
        "kl_div: reduction",
    ),
    (
        lambda: F.kl_div(minidl.zeros(2, 3), minidl.zeros(3), reduction="sum"),
        ValueError,
        "kl_div: Using a target size",
    ),
    (lambda: nn.KLDivLoss(reduction="avg"), ValueError, "KLDivLoss: reduction"),
    (lambda: nn.MSELoss(reduction="batchmean"), ValueError, "MSELoss: reduction"),
    (lambda: nn.HuberLoss(delta=-1.0), ValueError, "HuberLoss: delta"),
    (lambda: nn.SmoothL1Loss(beta=-1.0), ValueError, "SmoothL1Loss: beta"),
    (
        lambda: nn.CrossEntropyLoss(label_smoothing=-0.1),
        ValueError,
        "CrossEntropyLoss: label_smoothing",
    ),
]


@pytest.mark.parametrize(("call", "error", "message"), BAD)
def test_bad_arguments_are_refused_naming_the_loss(call, error, message):
    with pytest.raises(error, match=message):
        call()
