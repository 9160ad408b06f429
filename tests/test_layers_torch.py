"""The conv, pooling, embedding and resampling layers against their PyTorch twins, in float64.

Each pair starts from torch's weights (loaded into minidl with strict=True); outputs,
input gradients and parameter gradients must agree to 1e-8, and the state dict must
load back into torch with strict=True. Functions get float64 gradchecks.
"""

import numpy as np
import pytest

import minidl
import minidl.nn.functional as F
from minidl import nn

torch = pytest.importorskip("torch")
tnn = torch.nn
TF = torch.nn.functional

TOLERANCE = 1e-8

# name -> (minidl factory, torch factory, input shape)
LAYERS = {
    "linear_alias": (lambda: nn.Linear(5, 3), lambda: tnn.Linear(5, 3), (4, 5)),
    "conv_groups": (
        lambda: nn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=1, dilation=(1, 2), groups=2),
        lambda: tnn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=1, dilation=(1, 2), groups=2),
        (2, 4, 9, 8),
    ),
    "conv_depthwise": (
        lambda: nn.Conv2d(3, 6, 3, padding="same", groups=3, bias=False),
        lambda: tnn.Conv2d(3, 6, 3, padding="same", groups=3, bias=False),
        (2, 3, 6, 7),
    ),
    "conv_dilated_same_even": (
        lambda: nn.Conv2d(2, 4, 4, padding="same", dilation=2, groups=2),
        lambda: tnn.Conv2d(2, 4, 4, padding="same", dilation=2, groups=2),
        (2, 2, 9, 8),
    ),
    "conv1d": (
        lambda: nn.Conv1d(4, 6, 3, stride=2, padding=2, dilation=2, groups=2),
        lambda: tnn.Conv1d(4, 6, 3, stride=2, padding=2, dilation=2, groups=2),
        (3, 4, 11),
    ),
    "conv1d_same": (
        lambda: nn.Conv1d(3, 5, 4, padding="same", bias=False),
        lambda: tnn.Conv1d(3, 5, 4, padding="same", bias=False),
        (2, 3, 9),
    ),
    "conv_transpose": (
        lambda: nn.ConvTranspose2d(4, 3, 3, stride=2),
        lambda: tnn.ConvTranspose2d(4, 3, 3, stride=2),
        (2, 4, 5, 4),
    ),
    "conv_transpose_full": (
        lambda: nn.ConvTranspose2d(
            4,
            6,
            (3, 2),
            stride=(2, 3),
            padding=(1, 2),
            output_padding=(1, 0),
            groups=2,
            dilation=(2, 1),
        ),
        lambda: tnn.ConvTranspose2d(
            4,
            6,
            (3, 2),
            stride=(2, 3),
            padding=(1, 2),
            output_padding=(1, 0),
            groups=2,
            dilation=(2, 1),
        ),
        (2, 4, 5, 4),
    ),
    "conv_transpose_output_padding_past_padding": (
        lambda: nn.ConvTranspose2d(2, 2, 3, stride=1, padding=1, output_padding=2, dilation=3),
        lambda: tnn.ConvTranspose2d(2, 2, 3, stride=1, padding=1, output_padding=2, dilation=3),
        (1, 2, 4, 5),
    ),
    "conv_transpose_depthwise": (
        lambda: nn.ConvTranspose2d(3, 3, 4, stride=2, padding=1, groups=3, bias=False),
        lambda: tnn.ConvTranspose2d(3, 3, 4, stride=2, padding=1, groups=3, bias=False),
        (2, 3, 4, 4),
    ),
    "maxpool_ceil_dilation": (
        lambda: nn.MaxPool2d(3, 2, 1, dilation=2, ceil_mode=True),
        lambda: tnn.MaxPool2d(3, 2, 1, dilation=2, ceil_mode=True),
        (2, 3, 8, 7),
    ),
    "maxpool_ceil": (
        lambda: nn.MaxPool2d(2, ceil_mode=True),
        lambda: tnn.MaxPool2d(2, ceil_mode=True),
        (2, 3, 7, 5),
    ),
    "maxpool_overlapping_dilated": (
        lambda: nn.MaxPool2d((3, 2), (1, 2), dilation=(2, 1)),
        lambda: tnn.MaxPool2d((3, 2), (1, 2), dilation=(2, 1)),
        (1, 2, 9, 8),
    ),
    "avgpool_alias": (
        lambda: nn.AvgPool2d(3, 2, 1, False, False),
        lambda: tnn.AvgPool2d(3, 2, 1, False, False),
        (2, 3, 8, 7),
    ),
    "adaptive_global": (
        lambda: nn.AdaptiveAvgPool2d(1),
        lambda: tnn.AdaptiveAvgPool2d(1),
        (2, 3, 5, 7),
    ),
    "adaptive_dividing": (
        lambda: nn.AdaptiveAvgPool2d((2, 4)),
        lambda: tnn.AdaptiveAvgPool2d((2, 4)),
        (2, 3, 6, 8),
    ),
    "adaptive_uneven_none": (
        lambda: nn.AdaptiveAvgPool2d((3, None)),
        lambda: tnn.AdaptiveAvgPool2d((3, None)),
        (2, 3, 7, 5),
    ),
    "adaptive_unbatched": (
        lambda: nn.AdaptiveAvgPool2d(3),
        lambda: tnn.AdaptiveAvgPool2d(3),
        (3, 7, 5),
    ),
    "upsample_scale": (
        lambda: nn.Upsample(scale_factor=2),
        lambda: tnn.Upsample(scale_factor=2),
        (2, 3, 4, 5),
    ),
    "upsample_fractional": (
        lambda: nn.Upsample(scale_factor=(1.7, 0.6)),
        lambda: tnn.Upsample(scale_factor=(1.7, 0.6)),
        (2, 3, 7, 9),
    ),
    "upsample_size_1d": (
        lambda: nn.Upsample(size=7),
        lambda: tnn.Upsample(size=7),
        (2, 3, 5),
    ),
    "upsample_size_3d": (
        lambda: nn.Upsample(size=(3, 4, 5)),
        lambda: tnn.Upsample(size=(3, 4, 5)),
        (1, 2, 2, 3, 4),
    ),
    "unflatten": (
        lambda: nn.Unflatten(1, (2, -1)),
        lambda: tnn.Unflatten(1, (2, -1)),
        (3, 8),
    ),
    "dropout2d_eval_path": (lambda: nn.Dropout2d(0.3), lambda: tnn.Dropout2d(0.3), (2, 3, 4, 4)),
    "batchnorm2d_alias": (
        lambda: nn.BatchNorm2d(3),
        lambda: tnn.BatchNorm2d(3),
        (4, 3, 2, 2),
    ),
    "batchnorm1d_alias": (lambda: nn.BatchNorm1d(3), lambda: tnn.BatchNorm1d(3), (5, 3)),
}


def _pair(name):
    ours_factory, theirs_factory, shape = LAYERS[name]
    torch.manual_seed(0)
    theirs = theirs_factory().double()
    ours = ours_factory().double()
    result = ours.load_state_dict(theirs.state_dict(), strict=True)
    assert result.missing_keys == [] and result.unexpected_keys == []
    return ours, theirs, shape


def _close(actual, expected, message):
    np.testing.assert_allclose(actual, expected, rtol=TOLERANCE, atol=TOLERANCE, err_msg=message)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_matches_torch(name):
    ours, theirs, shape = _pair(name)
    if name.startswith("dropout"):
        ours.eval(), theirs.eval()
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)
    mine = minidl.tensor(x, requires_grad=True)
    their_x = torch.tensor(x, requires_grad=True)
    out, expected = ours(mine), theirs(their_x)
    assert out.shape == tuple(expected.shape), f"{name}: output shape"
    _close(out.numpy(), expected.detach().numpy(), f"{name}: output")
    upstream = rng.standard_normal(out.shape)
    out.backward(upstream)
    expected.backward(torch.tensor(upstream))
    _close(mine.grad.numpy(), their_x.grad.numpy(), f"{name}: input gradient")
    their_parameters = dict(theirs.named_parameters())
    assert [k for k, _ in ours.named_parameters()] == list(their_parameters)
    for key, parameter in ours.named_parameters():
        _close(parameter.grad.numpy(), their_parameters[key].grad.numpy(), f"{name}: d{key}")
    # and back: minidl's state dict loads into a fresh torch layer, strictly
    torch.manual_seed(1)
    fresh = LAYERS[name][1]().double()
    fresh.load_state_dict(
        {k: torch.from_numpy(v.copy()) for k, v in ours.state_dict().items()}, strict=True
    )
    for key, value in fresh.state_dict().items():
        _close(value.numpy(), ours.state_dict()[key], f"{name}: {key} after the round trip")


REPRS = {
    "conv_groups": "Conv2D(4, 6, kernel_size=(3, 2), stride=(2, 1), padding=(1, 1), "
    "dilation=(1, 2), groups=2)",
    "conv1d": "Conv1d(4, 6, kernel_size=(3,), stride=(2,), padding=(2,), dilation=(2,), groups=2)",
    "conv_transpose_full": "ConvTranspose2d(4, 6, kernel_size=(3, 2), stride=(2, 3), "
    "padding=(1, 2), dilation=(2, 1), output_padding=(1, 0), groups=2)",
    "maxpool_ceil": "MaxPool2D(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=True)",
    "adaptive_uneven_none": "AdaptiveAvgPool2d(output_size=(3, None))",
    "upsample_scale": "Upsample(scale_factor=2.0, mode='nearest')",
    "unflatten": "Unflatten(dim=1, unflattened_size=(2, -1))",
    "dropout2d_eval_path": "Dropout2d(p=0.3, inplace=False)",
}


@pytest.mark.parametrize("name", sorted(REPRS))
def test_repr_is_torchs_with_the_canonical_class_name(name):
    ours, theirs, _ = _pair(name)
    assert repr(ours) == REPRS[name]
    # the text in the parentheses is torch's, the class name aside (Conv2D, MaxPool2D)
    assert repr(ours).split("(", 1)[1] == repr(theirs).split("(", 1)[1]


def test_torch_names_are_the_same_classes():
    pairs = [
        (nn.Linear, nn.Dense),
        (nn.Conv2d, nn.Conv2D),
        (nn.BatchNorm1d, nn.BatchNorm1D),
        (nn.BatchNorm2d, nn.BatchNorm2D),
        (nn.MaxPool2d, nn.MaxPool2D),
        (nn.AvgPool2d, nn.AvgPool2D),
    ]
    for torch_name, keras_name in pairs:
        assert torch_name is keras_name
    assert isinstance(nn.Linear(2, 3), nn.Dense) and repr(nn.Linear(2, 3)).startswith("Dense(")


def test_max_pool_indices_are_torchs_including_ties_nan_and_minus_inf():
    rng = np.random.default_rng(2)
    settings = [
        dict(kernel_size=2),
        dict(kernel_size=3, stride=1, padding=1),
        dict(kernel_size=3, stride=2, padding=1, dilation=2, ceil_mode=True),
        dict(kernel_size=2, stride=2, padding=1, ceil_mode=True),
        dict(kernel_size=(3, 2), stride=(2, 3), dilation=(2, 1)),
    ]
    for setting in settings:
        x = rng.standard_normal((2, 3, 7, 7))
        x[0, 0, 1, 1] = np.nan
        x[0, 1, 2, :] = -np.inf
        x[1, 2, :3, :3] = 1.0  # ties: the first maximum wins
        out, indices = F.max_pool2d(minidl.tensor(x), return_indices=True, **setting)
        expected, expected_indices = TF.max_pool2d(torch.tensor(x), return_indices=True, **setting)
        np.testing.assert_array_equal(out.numpy(), expected.numpy(), err_msg=str(setting))
        np.testing.assert_array_equal(
            indices.numpy(), expected_indices.numpy(), err_msg=str(setting)
        )
        assert indices.dtype == np.int64
    _, layer_indices = nn.MaxPool2d(2, return_indices=True)(minidl.tensor(x))
    np.testing.assert_array_equal(
        layer_indices.numpy(), TF.max_pool2d(torch.tensor(x), 2, return_indices=True)[1].numpy()
    )


def test_embedding_matches_torch_and_its_padding_row_learns_nothing():
    torch.manual_seed(0)
    theirs = tnn.Embedding(7, 4, padding_idx=-2).double()
    ours = nn.Embedding(7, 4, padding_idx=-2).double()
    assert ours.padding_idx == theirs.padding_idx == 5
    assert np.all(ours.weight.numpy()[5] == 0)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    indices = np.array([[0, 5, 3], [5, 6, 0]])
    out, expected = ours(minidl.tensor(indices)), theirs(torch.tensor(indices))
    _close(out.numpy(), expected.detach().numpy(), "embedding output")
    upstream = np.random.default_rng(0).standard_normal(out.shape)
    out.backward(upstream)
    expected.backward(torch.tensor(upstream))
    _close(ours.weight.grad.numpy(), theirs.weight.grad.numpy(), "embedding weight gradient")
    assert np.all(ours.weight.grad.numpy()[5] == 0)
    assert repr(ours) == repr(theirs)
    fresh = tnn.Embedding(7, 4, padding_idx=5).double()
    fresh.load_state_dict({"weight": torch.from_numpy(ours.weight.numpy().copy())}, strict=True)
    pretrained = nn.Embedding.from_pretrained(minidl.eye(3), padding_idx=1)
    assert not pretrained.weight.requires_grad and pretrained.padding_idx == 1


def test_embedding_refuses_bad_indices_and_options():
    layer = nn.Embedding(5, 2)
    with pytest.raises(IndexError, match=r"Embedding.*index 5 is out of range"):
        layer(minidl.tensor([1, 5]))
    with pytest.raises(TypeError, match="integer indices"):
        layer(minidl.tensor([1.0]))
    with pytest.raises(NotImplementedError, match="max_norm"):
        nn.Embedding(5, 2, max_norm=1.0)
    with pytest.raises(ValueError, match="padding_idx must be within"):
        nn.Embedding(5, 2, padding_idx=5)
    with pytest.raises(IndexError, match="embedding: index -1"):
        F.embedding(minidl.tensor([-1]), minidl.zeros(5, 2))


def test_dropout2d_zeroes_whole_channels_and_scales_the_rest():
    x = minidl.tensor(np.random.default_rng(0).standard_normal((8, 16, 3, 3)), requires_grad=True)
    layer = nn.Dropout2d(0.25)
    y = layer(x)
    ratio = (y.numpy() / x.numpy()).reshape(8 * 16, 9)
    assert np.allclose(ratio, ratio[:, :1])  # one factor per channel
    factors = set(np.round(ratio[:, 0], 12).tolist())
    assert factors <= {0.0, round(1 / 0.75, 12)} and len(factors) == 2
    y.backward(np.ones(y.shape))
    np.testing.assert_allclose(x.grad.numpy(), y.numpy() / x.numpy())
    layer.eval()
    assert layer(x) is x
    with pytest.warns(UserWarning, match="3D input to dropout2d"):
        F.dropout2d(minidl.ones(2, 3, 4))
    with pytest.raises(ValueError, match="dropout2d: p must be"):
        F.dropout2d(minidl.ones(1, 1, 2, 2), p=1.5)


GRADCHECKS = {
    "conv2d_groups": (
        lambda x, w, b: F.conv2d(x, w, b, stride=(2, 1), padding=1, dilation=(1, 2), groups=2),
        [(2, 4, 6, 5), (4, 2, 3, 2), (4,)],
    ),
    "conv1d": (
        lambda x, w, b: F.conv1d(x, w, b, stride=2, padding=1, groups=3),
        [(2, 3, 7), (6, 1, 3), (6,)],
    ),
    "conv_transpose2d": (
        lambda x, w, b: F.conv_transpose2d(
            x, w, b, stride=2, padding=1, output_padding=1, groups=2, dilation=(1, 2)
        ),
        [(2, 4, 3, 3), (4, 1, 3, 2), (2,)],
    ),
    "max_pool2d_ceil_dilated": (
        lambda x: F.max_pool2d(x, 3, 2, 1, dilation=2, ceil_mode=True),
        [(2, 2, 7, 6)],
    ),
    "adaptive_avg_pool2d": (lambda x: F.adaptive_avg_pool2d(x, (3, 2)), [(2, 2, 7, 5)]),
    "interpolate": (lambda x: F.interpolate(x, scale_factor=(1.5, 0.7)), [(1, 2, 4, 6)]),
    "embedding": (
        # no padding_idx: its row's zero gradient is by definition, not the derivative
        lambda w: F.embedding(minidl.tensor([[0, 3, 3], [1, 0, 2]]), w),
        [(4, 3)],
    ),
}


@pytest.mark.parametrize("name", sorted(GRADCHECKS))
def test_gradcheck_in_float64(name):
    fn, shapes = GRADCHECKS[name]
    rng = np.random.default_rng(3)
    inputs = [minidl.tensor(rng.standard_normal(s), requires_grad=True) for s in shapes]
    assert minidl.gradcheck(fn, tuple(inputs))


def test_interpolate_refuses_what_it_does_not_do():
    x = minidl.ones(1, 1, 4, 4)
    with pytest.raises(NotImplementedError, match="interpolate: mode='bilinear'"):
        F.interpolate(x, scale_factor=2, mode="bilinear")
    with pytest.raises(ValueError, match="align_corners option"):
        F.interpolate(x, size=3, align_corners=True)
    with pytest.raises(ValueError, match="only one of size or scale_factor"):
        F.interpolate(x, size=3, scale_factor=2)
    with pytest.raises(ValueError, match="either size or scale_factor"):
        F.interpolate(x)
    with pytest.raises(NotImplementedError, match="Upsample: mode='bicubic'"):
        nn.Upsample(scale_factor=2, mode="bicubic")


def test_bad_layer_arguments_name_the_layer():
    with pytest.raises(ValueError, match="in_channels must be divisible by groups"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="out_channels must be divisible by groups"):
        nn.Conv2d(4, 3, 3, groups=2)
    with pytest.raises(NotImplementedError, match="Conv2D: padding_mode='reflect'"):
        nn.Conv2d(1, 1, 3, padding_mode="reflect")
    with pytest.raises(ValueError, match="ConvTranspose2d: output padding must be smaller"):
        nn.ConvTranspose2d(2, 2, 3, stride=2, output_padding=2)
    with pytest.raises(
        ValueError, match=r"ConvTranspose2d.*expected input of shape \(N, 2, H, W\)"
    ):
        nn.ConvTranspose2d(2, 2, 3)(minidl.ones(1, 3, 4, 4))
    with pytest.raises(ValueError, match="conv2d: Given groups=2, expected weight to be divisible"):
        F.conv2d(minidl.ones(1, 4, 5, 5), minidl.ones(3, 2, 3, 3), groups=2)
    with pytest.raises(ValueError, match="conv1d: expected a \\(N, C, L\\) input"):
        F.conv1d(minidl.ones(1, 4, 5, 5), minidl.ones(3, 4, 3))
    with pytest.raises(ValueError, match=r"MaxPool2D: padding .* at most half"):
        nn.MaxPool2d(3, padding=2, dilation=2)(minidl.ones(1, 1, 9, 9))
    with pytest.raises(ValueError, match="max_pool2d: the window"):
        F.max_pool2d(minidl.ones(1, 1, 2, 2), 3)
    with pytest.raises(NotImplementedError, match="AvgPool2D: ceil_mode=True"):
        nn.AvgPool2d(2, ceil_mode=True)
    with pytest.raises(ValueError, match="don't multiply up"):
        nn.Unflatten(1, (4, 2))(minidl.ones(3, 6))
    with pytest.raises(ValueError, match="AdaptiveAvgPool2d: output_size"):
        nn.AdaptiveAvgPool2d(0)


def test_default_initializations_follow_torchs_bounds():
    minidl.manual_seed(0)
    transpose = nn.ConvTranspose2d(8, 6, 3, groups=2)
    fan_in = 3 * 9  # torch's fan over the (in, out / groups, kh, kw) layout
    for parameter in (transpose.weight, transpose.bias):
        assert np.abs(parameter.numpy()).max() <= 1 / np.sqrt(fan_in)
    assert transpose.weight.shape == tuple(tnn.ConvTranspose2d(8, 6, 3, groups=2).weight.shape)
    depthwise = nn.Conv2d(8, 8, 3, groups=8)
    assert np.abs(depthwise.weight.numpy()).max() <= 1 / 3
    assert np.abs(depthwise.weight.numpy()).max() > 0.9 / 3  # uniform over the whole bound
    embedding = nn.Embedding(2000, 10)
    assert abs(embedding.weight.numpy().std() - 1.0) < 0.05  # N(0, 1)


def test_init_functions():
    from minidl.nn import init

    assert init.calculate_gain("conv_transpose2d") == 1.0
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(
        torch.nn.init.calculate_gain("leaky_relu", 0.2)
    )
    with pytest.raises(ValueError, match="not a valid number"):
        init.calculate_gain("leaky_relu", True)
    w = init.trunc_normal_(minidl.zeros(20000, dtype="float64"), mean=0.5, std=2.0, a=-1.0, b=1.0)
    values = w.numpy()
    assert values.min() >= -1.0 and values.max() <= 1.0
    reference = torch.nn.init.trunc_normal_(
        torch.zeros(200000, dtype=torch.float64), 0.5, 2.0, -1.0, 1.0
    )
    assert abs(values.mean() - reference.mean().item()) < 0.02
    assert abs(values.std() - reference.std().item()) < 0.02
    for shape in ((3, 5), (5, 3), (4, 2, 3, 3)):
        q = init.orthogonal_(minidl.zeros(*shape, dtype="float64"), gain=2.0).numpy()
        flat = q.reshape(shape[0], -1)
        small = flat @ flat.T if flat.shape[0] <= flat.shape[1] else flat.T @ flat
        np.testing.assert_allclose(small, 4.0 * np.eye(len(small)), atol=1e-10)
    with pytest.raises(ValueError, match="2 or more dimensions"):
        init.orthogonal_(minidl.zeros(3))


def test_utils_match_torch():
    from minidl.nn import utils

    torch.manual_seed(0)
    theirs = tnn.Sequential(tnn.Linear(3, 4), tnn.Conv1d(4, 2, 1)).double()
    ours = nn.Sequential(nn.Linear(3, 4), nn.Conv1d(4, 2, 1)).double()
    ours.load_state_dict(theirs.state_dict())
    vector = utils.parameters_to_vector(ours.parameters())
    _close(
        vector.numpy(),
        tnn.utils.parameters_to_vector(theirs.parameters()).detach().numpy(),
        "parameters_to_vector",
    )
    (vector * minidl.arange(vector.numel(), dtype="float64")).sum().backward()
    assert ours[0].weight.grad.numpy().ravel().tolist() == list(range(12))
    new = np.random.default_rng(0).standard_normal(vector.shape)
    utils.vector_to_parameters(minidl.tensor(new), ours.parameters())
    tnn.utils.vector_to_parameters(torch.tensor(new), theirs.parameters())
    for key, value in ours.state_dict().items():
        _close(value, theirs.state_dict()[key].numpy(), key)
    with pytest.raises(TypeError, match=r"expected torch\.Tensor"):
        utils.vector_to_parameters(new, ours.parameters())
    grads = np.linspace(-3, 3, 12).reshape(4, 3)
    ours[0].weight.grad = minidl.tensor(grads.copy())
    theirs[0].weight.grad = torch.tensor(grads.copy())
    assert utils.clip_grad_value_(ours.parameters(), 1.5) is None
    tnn.utils.clip_grad_value_(theirs.parameters(), 1.5)
    np.testing.assert_array_equal(ours[0].weight.grad.numpy(), theirs[0].weight.grad.numpy())
