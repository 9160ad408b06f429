"""torch.nn habits an audit found diverging: each compared with torch itself."""

import numpy as np
import pytest

import minidl
from minidl import nn

torch = pytest.importorskip("torch")


@pytest.mark.parametrize(
    "make",
    [
        lambda L: L.nn.Linear(2, 3),
        lambda L: L.nn.Conv2d(1, 2, 3),
        lambda L: L.nn.Embedding(4, 2),
        lambda L: L.nn.BatchNorm1d(3),
        lambda L: L.nn.LayerNorm(3),
        lambda L: L.nn.GroupNorm(1, 2),
        lambda L: L.nn.ConvTranspose2d(2, 2, 3),
    ],
)
def test_layers_follow_the_default_dtype(make):
    minidl.set_default_dtype(minidl.float64)
    torch.set_default_dtype(torch.float64)
    try:
        ours, theirs = make(minidl), make(torch)
        for (name, a), (_, b) in zip(ours.state_dict().items(), theirs.state_dict().items()):
            assert str(np.asarray(a).dtype) == str(b.dtype).replace("torch.", ""), name
    finally:
        minidl.set_default_dtype(minidl.float32)
        torch.set_default_dtype(torch.float32)


def test_batchnorm_without_bias_as_torch():
    ours, theirs = nn.BatchNorm2d(3, bias=False), torch.nn.BatchNorm2d(3, bias=False)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert repr(ours).split("(", 1)[1] == repr(theirs).split("(", 1)[1]
    theirs.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()})


def test_conv_transpose_output_size():
    x = np.random.default_rng(0).standard_normal((1, 4, 9, 9))
    ours = nn.ConvTranspose2d(4, 6, 3, stride=2).double()
    theirs = torch.nn.ConvTranspose2d(4, 6, 3, stride=2).double()
    theirs.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()})
    got = ours(minidl.tensor(x), output_size=[20, 20])
    expected = theirs(torch.tensor(x), output_size=[20, 20])
    assert got.shape == tuple(expected.shape)
    np.testing.assert_allclose(got.numpy(), expected.detach().numpy(), rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="output size"):
        ours(minidl.tensor(x), output_size=[30, 30])


@pytest.mark.parametrize("factor, total", [(0.5, 3), (1.0 / 3, 4), (0.7, 0)])
def test_constant_lr_matches_torch(factor, total):
    ours_opt = minidl.optim.SGD([minidl.nn.Parameter(minidl.ones(1))], lr=0.3)
    theirs_opt = torch.optim.SGD([torch.nn.Parameter(torch.ones(1))], lr=0.3)
    ours = minidl.optim.lr_scheduler.ConstantLR(ours_opt, factor=factor, total_iters=total)
    theirs = torch.optim.lr_scheduler.ConstantLR(theirs_opt, factor=factor, total_iters=total)
    for _ in range(8):
        assert ours.get_last_lr() == pytest.approx(theirs.get_last_lr(), rel=1e-12, abs=1e-15)
        ours_opt.step()
        theirs_opt.step()
        ours.step()
        theirs.step()


def test_constant_lr_refuses_a_zero_factor_that_torch_would_divide_by_later():
    opt = minidl.optim.SGD([minidl.nn.Parameter(minidl.ones(1))], lr=0.3)
    with pytest.raises(ValueError, match="ConstantLR"):
        minidl.optim.lr_scheduler.ConstantLR(opt, factor=0.0)
