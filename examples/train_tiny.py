"""The smallest real training run: a two-layer network learns to separate two spirals.

Everything here is written with minidl's tensors and autograd alone, to show what
they do by themselves: a hidden layer of tanh units, a softmax cross-entropy loss
built from exp/log/max, and plain gradient descent. The same network with
``minidl.nn`` layers, a ``minidl.optim`` optimizer and ``minidl.Trainer`` is a few
lines; ``examples/train_mnist.py`` trains real models that way.

    python examples/train_tiny.py            # about 5 seconds on 2 cores
    python examples/train_tiny.py --quick    # a few hundred steps, for smoke tests
"""

import argparse
import time

import numpy as np

import minidl


def two_spirals(points_per_class, noise, rng):
    """Points on two interleaved spirals, shape (2 * points_per_class, 2), and their labels."""
    turns = np.sqrt(rng.uniform(0.05, 1.0, points_per_class)) * 3 * np.pi
    arm = np.stack([turns * np.cos(turns), turns * np.sin(turns)], axis=1) / (3 * np.pi)
    inputs = np.concatenate([arm, -arm]) + rng.normal(0.0, noise, (2 * points_per_class, 2))
    labels = np.repeat([0, 1], points_per_class)
    return inputs.astype(np.float32), labels


def cross_entropy(logits, labels):
    """Mean negative log-likelihood of ``labels`` (N,) under softmax(``logits``) (N, K)."""
    shift = logits.amax(1, keepdim=True).detach()
    log_norm = (logits - shift).exp().sum(axis=1, keepdims=True).log() + shift
    log_probs = logits - log_norm
    return -log_probs[np.arange(len(labels)), labels].mean()


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--steps", type=int, default=3000, help="gradient-descent steps")
    parser.add_argument("--hidden", type=int, default=64, help="tanh units in the hidden layer")
    parser.add_argument("--lr", type=float, default=0.5, help="learning rate")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data and the weights")
    parser.add_argument("--quick", action="store_true", help="300 steps, for smoke tests")
    args = parser.parse_args(argv)
    steps = 300 if args.quick else args.steps

    minidl.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    train_x, train_y = two_spirals(500, 0.02, rng)
    test_x, test_y = two_spirals(500, 0.02, rng)
    inputs, test_inputs = minidl.tensor(train_x), minidl.tensor(test_x)

    hidden = args.hidden
    w1 = minidl.tensor(minidl.randn(2, hidden).data * 2.0, requires_grad=True)
    b1 = minidl.zeros(hidden, requires_grad=True)
    w2 = minidl.tensor(minidl.randn(hidden, 2).data / np.sqrt(hidden), requires_grad=True)
    b2 = minidl.zeros(2, requires_grad=True)
    params = [w1, b1, w2, b2]

    def forward(x):
        return ((x @ w1 + b1).tanh()) @ w2 + b2

    print(
        f"two spirals: {len(train_y)} training points, a 2-{hidden}-2 tanh network, "
        f"{steps} steps of gradient descent (lr {args.lr})"
    )
    start = time.perf_counter()
    for step in range(1, steps + 1):
        loss = cross_entropy(forward(inputs), train_y)
        for p in params:
            p.grad = None
        loss.backward()
        with minidl.no_grad():
            for p in params:
                p.data -= args.lr * p.grad.data
        if step % (steps // 10) == 0 or step == 1:
            accuracy = (forward(inputs).argmax(axis=1).numpy() == train_y).mean()
            print(f"step {step:5d}  loss {loss.item():.4f}  train accuracy {accuracy:.3f}")
    with minidl.no_grad():
        test_accuracy = (forward(test_inputs).argmax(axis=1).numpy() == test_y).mean()
    elapsed = time.perf_counter() - start
    print(f"test accuracy {test_accuracy:.3f} after {steps} steps in {elapsed:.1f} s")
    return test_accuracy


if __name__ == "__main__":
    main()
