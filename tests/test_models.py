"""minidl.models: the ready-made networks the examples and benchmarks train."""

import doctest

import numpy as np
import pytest

import minidl
import minidl.models as models
from minidl import nn


def _layer_types(model):
    return [type(layer).__name__ for layer in model]


def test_docstring_examples():
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(models, "minidl.models", globs={"minidl": minidl, "np": np}):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.attempted > 0 and result.failed == 0, f"{result.failed} example(s) failed"


def test_bn_paper_mlp_is_figure_1():
    assert _layer_types(models.bn_paper_mlp(batch_norm=False)) == [
        "Flatten",
        *["Dense", "Sigmoid"] * 3,
        "Dense",
    ]
    with_bn = models.bn_paper_mlp(batch_norm=True)
    assert _layer_types(with_bn) == ["Flatten", *["Dense", "BatchNorm", "Sigmoid"] * 3, "Dense"]
    dense = [layer for layer in with_bn if isinstance(layer, nn.Dense)]
    shapes = [tuple(layer.weight.shape) for layer in dense]
    assert shapes == [(100, 784), (100, 100), (100, 100), (10, 100)]
    # BatchNorm's shift replaces the bias of the layer before it; the output layer keeps its own
    assert [layer.bias is None for layer in dense] == [True, True, True, False]


def test_small_cnn_layers_and_shapes():
    assert _layer_types(models.small_cnn(batch_norm=False)) == [
        *["Conv2D", "ReLU", "MaxPool2D"] * 2,
        "Flatten",
        "Dense",
        "ReLU",
        "Dense",
    ]
    model = models.small_cnn(batch_norm=True, in_channels=3, classes=7)
    assert _layer_types(model) == [
        *["Conv2D", "BatchNorm2D", "ReLU", "MaxPool2D"] * 2,
        "Flatten",
        "Dense",
        "BatchNorm",
        "ReLU",
        "Dense",
    ]
    assert tuple(model[0].weight.shape) == (32, 3, 3, 3) and model[0].bias is None
    assert model(minidl.randn(4, 3, 28, 28)).shape == (4, 7)


@pytest.mark.parametrize("build", [models.bn_paper_mlp, models.small_cnn])
@pytest.mark.parametrize("batch_norm", [False, True])
def test_the_same_seed_gives_the_same_weights(build, batch_norm):
    minidl.manual_seed(7)
    first = build(batch_norm=batch_norm).state_dict()
    minidl.manual_seed(7)
    second = build(batch_norm=batch_norm).state_dict()
    assert list(first) == list(second)
    for name in first:
        np.testing.assert_array_equal(first[name], second[name], err_msg=name)
