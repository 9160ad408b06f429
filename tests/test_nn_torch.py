"""Every layer against its PyTorch equivalent: same weights, same float64 input, train and eval.

Outputs, input gradients, parameter gradients and buffers (BN running statistics)
must agree to 1e-8. Weights go torch -> minidl through load_state_dict, and the
other way in the state-dict tests, so both directions of a port are exercised.
"""

import copy
from collections import OrderedDict

import numpy as np
import pytest

import minidl
from minidl import nn

torch = pytest.importorskip("torch")
tnn = torch.nn

TOLERANCE = 1e-8

# name -> (minidl layer factory, torch layer factory, input shape)
LAYERS = {
    "dense": (lambda: nn.Dense(5, 3), lambda: tnn.Linear(5, 3), (4, 5)),
    "dense_3d": (lambda: nn.Dense(5, 3), lambda: tnn.Linear(5, 3), (2, 4, 5)),
    "dense_no_bias": (
        lambda: nn.Dense(5, 3, bias=False),
        lambda: tnn.Linear(5, 3, bias=False),
        (4, 5),
    ),
    "conv": (
        lambda: nn.Conv2D(3, 4, 3, padding=1),
        lambda: tnn.Conv2d(3, 4, 3, padding=1),
        (2, 3, 7, 6),
    ),
    "conv_strided_dilated": (
        lambda: nn.Conv2D(3, 4, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2)),
        lambda: tnn.Conv2d(3, 4, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2)),
        (2, 3, 9, 8),
    ),
    "conv_same_even": (
        lambda: nn.Conv2D(2, 3, 4, padding="same"),
        lambda: tnn.Conv2d(2, 3, 4, padding="same"),
        (2, 2, 6, 5),
    ),
    "conv_same_dilated": (
        lambda: nn.Conv2D(2, 3, 3, padding="same", dilation=2, bias=False),
        lambda: tnn.Conv2d(2, 3, 3, padding="same", dilation=2, bias=False),
        (2, 2, 7, 7),
    ),
    "bn_2d_input": (lambda: nn.BatchNorm(4), lambda: tnn.BatchNorm1d(4), (6, 4)),
    "bn_3d_input": (lambda: nn.BatchNorm1D(4), lambda: tnn.BatchNorm1d(4), (5, 4, 3)),
    "bn_4d_input": (lambda: nn.BatchNorm2D(4), lambda: tnn.BatchNorm2d(4), (3, 4, 5, 5)),
    "bn_cumulative": (
        lambda: nn.BatchNorm(4, momentum=None),
        lambda: tnn.BatchNorm2d(4, momentum=None),
        (3, 4, 2, 2),
    ),
    "bn_no_affine": (
        lambda: nn.BatchNorm(3, affine=False, eps=1e-3),
        lambda: tnn.BatchNorm1d(3, affine=False, eps=1e-3),
        (7, 3),
    ),
    "bn_no_running_stats": (
        lambda: nn.BatchNorm(3, track_running_stats=False),
        lambda: tnn.BatchNorm2d(3, track_running_stats=False),
        (2, 3, 4, 4),
    ),
    "maxpool": (lambda: nn.MaxPool2D(2), lambda: tnn.MaxPool2d(2), (2, 3, 8, 7)),
    "maxpool_padded": (lambda: nn.MaxPool2D(3, 2, 1), lambda: tnn.MaxPool2d(3, 2, 1), (2, 3, 8, 7)),
    "avgpool": (lambda: nn.AvgPool2D(3, 2, 1), lambda: tnn.AvgPool2d(3, 2, 1), (2, 3, 8, 7)),
    "avgpool_no_pad_count": (
        lambda: nn.AvgPool2D(2, 1, 1, count_include_pad=False),
        lambda: tnn.AvgPool2d(2, 1, 1, count_include_pad=False),
        (1, 2, 5, 5),
    ),
    "flatten": (lambda: nn.Flatten(), lambda: tnn.Flatten(), (2, 3, 4, 5)),
    "relu": (lambda: nn.ReLU(), lambda: tnn.ReLU(), (4, 6)),
    "leaky_relu": (lambda: nn.LeakyReLU(0.2), lambda: tnn.LeakyReLU(0.2), (4, 6)),
    "sigmoid": (lambda: nn.Sigmoid(), lambda: tnn.Sigmoid(), (4, 6)),
    "tanh": (lambda: nn.Tanh(), lambda: tnn.Tanh(), (4, 6)),
    "softmax": (lambda: nn.Softmax(dim=1), lambda: tnn.Softmax(dim=1), (4, 6)),
    "softmax_middle": (lambda: nn.Softmax(dim=1), lambda: tnn.Softmax(dim=1), (2, 3, 4)),
    "log_softmax": (lambda: nn.LogSoftmax(dim=-1), lambda: tnn.LogSoftmax(dim=-1), (4, 6)),
    "identity": (lambda: nn.Identity(), lambda: tnn.Identity(), (4, 6)),
    "dropout_eval_path": (lambda: nn.Dropout(0.3), lambda: tnn.Dropout(0.3), (4, 6)),
}


def _pair_up(name):
    ours_factory, theirs_factory, shape = LAYERS[name]
    torch.manual_seed(0)
    theirs = theirs_factory().double()
    ours = ours_factory().double()
    ours.load_state_dict(theirs.state_dict())
    return ours, theirs, shape


def _compare(name, ours, theirs, x, upstream):
    mine = minidl.tensor(x, requires_grad=True)
    their_x = torch.tensor(x, requires_grad=True)
    out = ours(mine)
    expected = theirs(their_x)
    np.testing.assert_allclose(
        out.data,
        expected.detach().numpy(),
        rtol=TOLERANCE,
        atol=TOLERANCE,
        err_msg=f"{name}: output",
    )
    out.backward(upstream)
    expected.backward(torch.tensor(upstream))
    np.testing.assert_allclose(
        mine.grad.data,
        their_x.grad.numpy(),
        rtol=TOLERANCE,
        atol=TOLERANCE,
        err_msg=f"{name}: input gradient",
    )
    their_params = dict(theirs.named_parameters())
    for key, parameter in ours.named_parameters():
        np.testing.assert_allclose(
            parameter.grad.data,
            their_params[key].grad.numpy(),
            rtol=TOLERANCE,
            atol=TOLERANCE,
            err_msg=f"{name}: gradient of {key}",
        )
    their_state = theirs.state_dict()
    for key, value in ours.state_dict().items():
        np.testing.assert_allclose(
            value,
            their_state[key].numpy(),
            rtol=TOLERANCE,
            atol=TOLERANCE,
            err_msg=f"{name}: {key}",
        )


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_matches_torch_in_train_and_eval(name):
    ours, theirs, shape = _pair_up(name)
    rng = np.random.default_rng(0)
    if name.startswith("dropout"):
        ours.train(False), theirs.train(False)
    for mode in ("train", "train", "eval"):
        if not name.startswith("dropout"):
            ours.train(mode == "train")
            theirs.train(mode == "train")
        for module in (ours, theirs):
            module.zero_grad()
        x = rng.standard_normal(shape) * 2 + 0.5
        with torch.no_grad():  # the output shape, from a copy (running statistics untouched)
            out_shape = tuple(copy.deepcopy(theirs).eval()(torch.tensor(x)).shape)
        _compare(f"{name} ({mode})", ours, theirs, x, rng.standard_normal(out_shape))


@pytest.mark.parametrize(
    ("ours", "theirs", "labels"),
    [
        (nn.CrossEntropyLoss(), tnn.CrossEntropyLoss(), True),
        (nn.CrossEntropyLoss(label_smoothing=0.1), tnn.CrossEntropyLoss(label_smoothing=0.1), True),
        (nn.CrossEntropyLoss(reduction="sum"), tnn.CrossEntropyLoss(reduction="sum"), True),
        (
            nn.CrossEntropyLoss(label_smoothing=0.2, reduction="none"),
            tnn.CrossEntropyLoss(label_smoothing=0.2, reduction="none"),
            True,
        ),
        (nn.NLLLoss(), tnn.NLLLoss(), True),
        (nn.NLLLoss(reduction="none"), tnn.NLLLoss(reduction="none"), True),
        (nn.MSELoss(), tnn.MSELoss(), False),
        (nn.MSELoss(reduction="sum"), tnn.MSELoss(reduction="sum"), False),
    ],
)
def test_losses_match_torch(ours, theirs, labels):
    rng = np.random.default_rng(1)
    prediction = rng.standard_normal((6, 5)) * 2
    target = rng.integers(0, 5, 6) if labels else rng.standard_normal((6, 5))
    mine = minidl.tensor(prediction, requires_grad=True)
    their_prediction = torch.tensor(prediction, requires_grad=True)
    loss = ours(mine, minidl.tensor(target))
    expected = theirs(their_prediction, torch.tensor(target))
    np.testing.assert_allclose(loss.data, expected.detach().numpy(), rtol=1e-10, atol=1e-12)
    upstream = rng.standard_normal(loss.shape)
    loss.backward(upstream)
    expected.backward(torch.tensor(upstream))
    np.testing.assert_allclose(
        mine.grad.data, their_prediction.grad.numpy(), rtol=1e-10, atol=1e-12
    )


def _cnn_pair():
    torch.manual_seed(3)
    theirs = tnn.Sequential(
        tnn.Conv2d(1, 4, 3, padding=1),
        tnn.BatchNorm2d(4),
        tnn.ReLU(),
        tnn.MaxPool2d(2),
        tnn.Conv2d(4, 6, 3),
        tnn.BatchNorm2d(6),
        tnn.ReLU(),
        tnn.Flatten(),
        tnn.Linear(6 * 2 * 2, 10),
    ).double()
    ours = nn.Sequential(
        nn.Conv2D(1, 4, 3, padding=1),
        nn.BatchNorm2D(4),
        nn.ReLU(),
        nn.MaxPool2D(2),
        nn.Conv2D(4, 6, 3),
        nn.BatchNorm2D(6),
        nn.ReLU(),
        nn.Flatten(),
        nn.Dense(6 * 2 * 2, 10),
    ).double()
    return ours, theirs


def test_cnn_follows_torch_over_20_sgd_steps():
    ours, theirs = _cnn_pair()
    ours.load_state_dict(theirs.state_dict())
    rng = np.random.default_rng(4)
    lr = 0.1
    for step in range(20):
        x = rng.standard_normal((8, 1, 8, 8))
        y = rng.integers(0, 10, 8)
        loss = nn.CrossEntropyLoss()(ours(minidl.tensor(x)), minidl.tensor(y))
        ours.zero_grad()
        loss.backward()
        with minidl.no_grad():
            for p in ours.parameters():
                p.data -= lr * p.grad.data
        their_loss = tnn.CrossEntropyLoss()(theirs(torch.tensor(x)), torch.tensor(y))
        theirs.zero_grad()
        their_loss.backward()
        with torch.no_grad():
            for p in theirs.parameters():
                p -= lr * p.grad
        assert abs(loss.item() - their_loss.item()) < 1e-6, f"step {step}: losses differ"
    their_state = theirs.state_dict()
    for key, value in ours.state_dict().items():
        np.testing.assert_allclose(
            value, their_state[key].numpy(), rtol=1e-6, atol=1e-6, err_msg=key
        )
    ours.eval(), theirs.eval()
    x = rng.standard_normal((4, 1, 8, 8))
    np.testing.assert_allclose(
        ours(minidl.tensor(x)).data, theirs(torch.tensor(x)).detach().numpy(), rtol=1e-6, atol=1e-6
    )


def test_state_dict_loads_both_ways_with_strict_keys():
    ours, theirs = _cnn_pair()
    ours.float(), theirs.float()
    # minidl -> torch
    theirs.load_state_dict(
        OrderedDict((k, torch.from_numpy(v.copy())) for k, v in ours.state_dict().items()),
        strict=True,
    )
    x = np.random.default_rng(5).standard_normal((3, 1, 8, 8)).astype(np.float32)
    ours.eval(), theirs.eval()
    np.testing.assert_allclose(
        ours(minidl.tensor(x)).data, theirs(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-6
    )
    # torch -> minidl, after torch has trained a little so the statistics are not the defaults
    theirs.train()
    for _ in range(3):
        theirs(torch.randn(4, 1, 8, 8))
    with torch.no_grad():
        for p in theirs.parameters():
            p.add_(0.01)
    result = ours.load_state_dict(theirs.state_dict(), strict=True)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert int(ours[1].num_batches_tracked.item()) == int(theirs[1].num_batches_tracked)
    ours.eval(), theirs.eval()
    np.testing.assert_allclose(
        ours(minidl.tensor(x)).data, theirs(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-6
    )
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for key, value in ours.state_dict().items():
        assert value.shape == tuple(theirs.state_dict()[key].shape), key


def test_default_initialization_matches_torch_distribution():
    # Same bounds as torch's defaults: |w| <= 1/sqrt(fan_in) for weights and biases.
    minidl.manual_seed(0)
    conv = nn.Conv2D(8, 16, 3)
    dense = nn.Dense(300, 50)
    for layer, fan_in in ((conv, 8 * 9), (dense, 300)):
        bound = 1 / np.sqrt(fan_in)
        for p in (layer.weight, layer.bias):
            assert np.abs(p.data).max() <= bound
            # uniform on [-bound, bound]: the std is bound / sqrt(3)
            assert abs(p.data.std() - bound / np.sqrt(3)) < 0.25 * bound
    theirs = tnn.Conv2d(8, 16, 3)
    assert theirs.weight.abs().max().item() <= 1 / np.sqrt(8 * 9)


@pytest.mark.parametrize("sync", [False, True], ids=["BatchNorm", "SyncBatchNorm"])
def test_switching_off_track_running_stats_after_construction_follows_torch(sync):
    """torch decides by the flag in training (no update of the buffers) and by the buffers'
    existence in evaluation (they are still used): a frozen-statistics recipe."""
    ours = (nn.SyncBatchNorm if sync else nn.BatchNorm2d)(3, momentum=0.3).double()
    theirs = (tnn.SyncBatchNorm if sync else tnn.BatchNorm2d)(3, momentum=0.3).double()
    rng = np.random.default_rng(0)
    x = rng.normal(2.0, 3.0, (4, 3, 5, 5))
    ours(minidl.tensor(x))  # running statistics that differ from the batch's
    theirs(torch.tensor(x))
    ours.track_running_stats = theirs.track_running_stats = False
    for training in (True, False):
        ours.train(training)
        theirs.train(training)
        y = rng.normal(-1.0, 0.5, (4, 3, 5, 5))
        expected = theirs(torch.tensor(y)).detach().numpy()
        np.testing.assert_allclose(ours(minidl.tensor(y)).numpy(), expected, atol=TOLERANCE)
        for key, value in theirs.state_dict().items():
            np.testing.assert_allclose(ours.state_dict()[key], value.numpy(), atol=TOLERANCE)


def test_batch_of_one_is_counted_before_it_is_refused_as_in_torch():
    ours, theirs = nn.BatchNorm1d(3), tnn.BatchNorm1d(3)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        ours(minidl.ones(1, 3))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        theirs(torch.ones(1, 3))
    assert int(ours.num_batches_tracked.item()) == int(theirs.num_batches_tracked) == 1
