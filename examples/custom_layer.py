"""Write your own layer: a Swish activation with a learnable slope, checked, trained, saved.

    python examples/custom_layer.py           # about half a minute
    python examples/custom_layer.py --quick   # a few seconds

Swish (Ramachandran et al., 2017) is ``x * sigmoid(beta * x)``. Here ``beta`` is
learned, one value per feature. The layer shows the two halves of extending
minidl:

- an operation with its own forward and backward, as a ``minidl.autograd.Function``
  working on numpy arrays, checked against central differences with
  ``minidl.gradcheck``;
- a layer, as a ``minidl.nn.Module`` holding a ``Parameter`` (beta) and a buffer
  (how many training batches it has seen), which then works like any built-in
  layer: inside ``Sequential``, with the Trainer, in ``state_dict``, saved with
  ``minidl.save`` and loaded back.
"""

# isort: off
import minidl  # before numpy: minidl tunes OpenBLAS's threads, which numpy loads

import argparse
import os
import sys
import tempfile

import numpy as np

from minidl import nn
from minidl.autograd import Function
from minidl.data import datasets

# isort: on


class SwishFunction(Function):
    """y = x * sigmoid(beta * x), beta broadcast over axis 1 (features)."""

    @staticmethod
    def forward(ctx, x, beta):
        shape = (1, -1) + (1,) * (x.ndim - 2)
        b = beta.reshape(shape)
        s = 1.0 / (1.0 + np.exp(-b * x))
        ctx.save_for_backward(x, b, s)
        return x * s

    @staticmethod
    def backward(ctx, grad):
        x, b, s = ctx.saved_tensors
        # d/dx = s + x * s * (1 - s) * beta;  d/dbeta = x * s * (1 - s) * x
        slope = s * (1 - s)
        dx = grad * (s + b * x * slope)
        axes = tuple(i for i in range(x.ndim) if i != 1)
        dbeta = (grad * x * x * slope).sum(axis=axes)
        return dx, dbeta


class Swish(nn.Module):
    """Swish with a learnable ``beta`` per feature; input (N, features, ...)."""

    def __init__(self, features, beta=1.0):
        super().__init__()
        self.features = features
        self.beta = nn.Parameter(np.full(features, beta, dtype=np.float32))
        self.register_buffer("batches_seen", np.zeros((), dtype=np.int64))

    def forward(self, x):
        if x.ndim < 2 or x.shape[1] != self.features:
            raise ValueError(
                f"{self!r}: expected input of shape (N, {self.features}, ...), got {x.shape}"
            )
        if self.training:
            self.batches_seen.data += 1
        return SwishFunction.apply(x, self.beta)

    def extra_repr(self):
        return f"features={self.features}"


def check_gradients():
    minidl.manual_seed(0)
    layer = Swish(5).double()
    layer.beta.data[...] = np.linspace(0.5, 2.0, 5)
    x = minidl.randn(4, 5, dtype="float64", requires_grad=True)
    assert minidl.gradcheck(lambda t, beta: layer(t), (x, layer.beta))
    images = minidl.randn(2, 5, 3, 3, dtype="float64", requires_grad=True)
    assert minidl.gradcheck(lambda t, beta: layer(t), (images, layer.beta))
    print("gradcheck: Swish's gradients match central differences (float64)")


def build(features=128):
    return nn.Sequential(
        nn.Flatten(), nn.Dense(784, features), Swish(features), nn.Dense(features, 10)
    )


def load_data(quick, data_dir):
    """MNIST where it can be had, else the sample bundled with minidl: (name, train, test).

    When neither is there (``--data-dir`` names a folder without MNIST), the script
    exits with the places searched and the fixes.
    """
    try:
        name = datasets.choose_dataset(
            "auto", data_dir, sample_fallback=True, data_dir_option="--data-dir"
        )
    except (FileNotFoundError, minidl.CorruptFileError) as error:
        sys.exit(str(error))  # the places searched and the fixes, without a traceback
    train = datasets.open_dataset(name, "train", data_dir, normalize=True)
    test = datasets.open_dataset(name, "test", data_dir, normalize=True)
    if quick:
        train = minidl.data.Subset(train, np.arange(min(5000, len(train))))
        test = minidl.data.Subset(test, np.arange(min(1000, len(test))))
    return name, train, test


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--epochs", type=int, default=3, help="training epochs")
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help="a folder holding MNIST's files, searched before $MINIDL_DATA/mnist, the cache "
        "and /usr/share/datasets (without MNIST anywhere: the bundled sample)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="5,000 training and 1,000 test images, 1 epoch"
    )
    args = parser.parse_args(argv)
    check_gradients()

    name, train, test = load_data(args.quick, args.data_dir)
    minidl.manual_seed(0)
    model = build()
    print(model)
    trainer = minidl.Trainer(
        model,
        minidl.optim.Adam(model.parameters(), lr=1e-3),
        loss=nn.CrossEntropyLoss(),
        metrics=["accuracy"],
        verbose=2,
    )
    loader = minidl.data.DataLoader(train, batch_size=64, shuffle=True)
    test_loader = minidl.data.DataLoader(test, batch_size=1000)
    trainer.fit(loader, epochs=1 if args.quick else args.epochs, val_data=test_loader)
    swish = model[2]
    print(
        f"{name}: test accuracy {trainer.evaluate(test_loader)['accuracy']:.4f}; Swish saw "
        f"{int(swish.batches_seen.item())} batches; learned beta: mean "
        f"{swish.beta.data.mean():.3f}, range [{swish.beta.data.min():.3f}, "
        f"{swish.beta.data.max():.3f}]"
    )

    path = os.path.join(tempfile.mkdtemp(), "swish_mlp.npz")
    minidl.save(dict(model.state_dict()), path)
    restored = build()
    restored.load_state_dict(minidl.load(path))
    x, _ = test[np.arange(256)]
    model.eval(), restored.eval()
    same = np.array_equal(model(minidl.tensor(x)).data, restored(minidl.tensor(x)).data)
    print(f"saved to {path} and loaded into a fresh model: identical outputs: {same}")
    if not same:
        raise SystemExit("the reloaded model differs")
    return model


if __name__ == "__main__":
    main(sys.argv[1:])
