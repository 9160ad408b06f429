"""minidl's random number generators: one seed makes a run reproducible.

Parameter initialization, dropout masks and data shuffling all draw from the
generator returned by :func:`generator`, so ``minidl.manual_seed(0)`` at the top
of a script fixes every one of them. Its state can be saved and restored
(:func:`get_rng_state`, :func:`set_rng_state`), e.g. in a checkpoint.

Threads: every thread has its own default generator. ``manual_seed``,
``generator``, ``get_rng_state`` and ``set_rng_state`` act on the calling
thread's generator only, so two threads that each call ``manual_seed`` and then
train are each reproducible, whatever the other one draws. (PyTorch shares one
generator among all threads; minidl does not, because a shared stream makes
every threaded run depend on the scheduler's interleaving.) A thread that never
calls ``manual_seed`` gets, when it first draws, a generator seeded from the
last seed ``manual_seed`` was given in the process (on any thread) and the
thread's place in the order in which threads first drew since then: a script
that seeds and then trains in one worker thread is reproducible, as it is in
PyTorch. Before any ``manual_seed``, a thread's generator is seeded from the
operating system's entropy. Seed each thread yourself when several threads draw
at once. A DataLoader with a ``seed`` draws from its own generator, never a
thread's.

Processes: after ``os.fork`` the child holds a copy of the parent's generators
(the same future draws); call ``manual_seed`` in the child for another stream.
"""

from __future__ import annotations

import copy
import itertools
import threading
from typing import Any

import numpy as np

_local = threading.local()
# The last seed manual_seed was given (on any thread), and the count of threads that
# have since drawn a generator of their own from it: an unseeded thread's generator
# is seeded with [seed, its number], so seeding and then training in a worker thread
# is reproducible. None before any manual_seed: unseeded threads take OS entropy.
_process_seed = None
_unseeded_threads = itertools.count(1)
_seed_lock = threading.Lock()


def generator() -> np.random.Generator:
    """The numpy ``Generator`` every random draw in minidl makes on the calling thread.

    >>> minidl.manual_seed(0)
    >>> minidl.random.generator().random() == np.random.default_rng(0).random()
    True
    """
    rng = getattr(_local, "generator", None)
    if rng is None:
        with _seed_lock:
            seed = _process_seed
            entropy = None if seed is None else [seed, next(_unseeded_threads)]
        rng = _local.generator = np.random.default_rng(entropy)
    return rng


def manual_seed(seed: int) -> None:
    """Seed the calling thread's generator, which init, dropout and shuffling draw from.

    >>> minidl.manual_seed(42)
    >>> a = minidl.randn(3)
    >>> minidl.manual_seed(42)
    >>> bool((minidl.randn(3) == a).all())
    True
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"manual_seed: expected a non-negative integer seed, got {seed!r}")
    global _process_seed, _unseeded_threads
    with _seed_lock:
        _process_seed = int(seed)
        _unseeded_threads = itertools.count(1)
    _local.generator = np.random.default_rng(int(seed))


def get_rng_state() -> dict[str, Any]:
    """A copy of the calling thread's generator state: a dict of plain values (JSON-safe).

    >>> state = minidl.random.get_rng_state()
    >>> x = minidl.rand(2)
    >>> minidl.random.set_rng_state(state)
    >>> bool((minidl.rand(2) == x).all())
    True
    """
    return dict(copy.deepcopy(generator().bit_generator.state))


def _check_state(state, where):
    """Raise ValueError (naming ``where``) unless ``state`` is a generator state of minidl's kind.

    A state comes from :func:`get_rng_state` or a seeded DataLoader's ``state_dict``.
    """
    expected = type(generator().bit_generator).__name__
    name = state.get("bit_generator") if isinstance(state, dict) else None
    if name != expected or not isinstance(state.get("state"), dict):
        raise ValueError(
            f"{where}: expected the state of a {expected} generator (from get_rng_state), "
            f"got {state!r:.80}"
        )
    probe = np.random.default_rng().bit_generator
    try:
        probe.state = copy.deepcopy(state)
    except (TypeError, ValueError, KeyError) as error:
        raise ValueError(f"{where}: the generator state is malformed ({error})") from None


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore, on the calling thread, a state returned by :func:`get_rng_state`."""
    _check_state(state, "set_rng_state")
    generator().bit_generator.state = copy.deepcopy(state)


__all__ = [
    "generator",
    "get_rng_state",
    "manual_seed",
    "set_rng_state",
]
