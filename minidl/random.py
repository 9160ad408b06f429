"""minidl's random number generator: one seed makes a run reproducible.

Parameter initialization, dropout masks and data shuffling all draw from the
generator returned by :func:`generator`, so ``minidl.manual_seed(0)`` at the top
of a script fixes every one of them. Its state can be saved and restored
(:func:`get_rng_state`, :func:`set_rng_state`), e.g. in a checkpoint.
"""

import copy

import numpy as np

_generator = np.random.default_rng()


def manual_seed(seed):
    """Seed minidl's generator, which parameter init, dropout and shuffling draw from.

    >>> minidl.manual_seed(42)
    >>> a = minidl.randn(3)
    >>> minidl.manual_seed(42)
    >>> bool((minidl.randn(3) == a).all())
    True
    """
    global _generator
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"manual_seed: expected a non-negative integer seed, got {seed!r}")
    _generator = np.random.default_rng(int(seed))


def generator():
    """The numpy ``Generator`` every random draw in minidl uses."""
    return _generator


def get_rng_state():
    """A copy of the generator's state: a dict of plain values (JSON-serializable).

    >>> state = minidl.random.get_rng_state()
    >>> x = minidl.rand(2)
    >>> minidl.random.set_rng_state(state)
    >>> bool((minidl.rand(2) == x).all())
    True
    """
    return copy.deepcopy(_generator.bit_generator.state)


def set_rng_state(state):
    """Restore a state returned by :func:`get_rng_state`."""
    name = state.get("bit_generator") if isinstance(state, dict) else None
    if name != type(_generator.bit_generator).__name__:
        raise ValueError(
            f"set_rng_state: expected a state of a {type(_generator.bit_generator).__name__} "
            f"generator (from get_rng_state), got {state!r:.80}"
        )
    _generator.bit_generator.state = copy.deepcopy(state)
