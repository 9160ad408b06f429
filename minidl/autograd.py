"""Reverse-mode automatic differentiation: ``Function``, its ``ctx``, and the backward walk.

Every differentiable operation is a :class:`Function` subclass with a
``forward`` and a ``backward``, both working on numpy arrays. Calling
``MyFunction.apply(*inputs)`` runs ``forward`` on the arrays behind the
tensor inputs and, when any input requires grad (and grad mode is on), records a
:class:`Context` in the result's ``_ctx``: the function, its inputs and what
``forward`` saved. ``Tensor.backward`` walks those records in reverse
topological order (iteratively, so graphs of any depth work) and frees what each
one saved once it has been used, unless asked to retain the graph.
"""

from __future__ import annotations

import functools
import inspect
import sys
import threading
from collections.abc import Callable
from typing import Any, Literal, TypeVar, cast

import numpy as np

_state = threading.local()

# The tensor class that results are made of: minidl.tensor builds on this module and
# names its class with the ``result_type`` decorator, so this module imports nothing
# from it (no import cycle between the two).
Tensor = None


def result_type(cls):
    """Class decorator naming the tensor class whose instances Functions take and return.

    With the class known, the backward walk measures once how many references it
    holds itself to a gradient it hands to a leaf (see :func:`_calibrate_ownership`).
    """
    global Tensor
    Tensor = cls
    _calibrate_ownership()
    return cls


_Function = TypeVar("_Function", bound=Callable[..., Any])


def is_grad_enabled() -> bool:
    """Whether operations currently record a graph for backward.

    >>> minidl.is_grad_enabled()
    True
    >>> with minidl.no_grad():
    ...     minidl.is_grad_enabled()
    False
    """
    return getattr(_state, "enabled", True)


def _set_grad_enabled(enabled):
    _state.enabled = bool(enabled)


class _GradMode:
    """Context manager and decorator that sets grad mode, restoring the previous one.

    As a decorator it works with and without parentheses (``@no_grad`` and
    ``@no_grad()``), as PyTorch's does.
    """

    enabled = True

    def __new__(cls, func: Callable[..., Any] | None = None) -> Any:
        mode = super().__new__(cls)
        if func is None:
            return mode
        if not callable(func):
            raise TypeError(f"{cls.__name__}: expected nothing or a function, got {func!r}")
        return mode(func)

    def __enter__(self) -> _GradMode:
        self._previous = is_grad_enabled()
        _set_grad_enabled(self.enabled)
        return self

    def __exit__(self, *exc_info: object) -> Literal[False]:
        _set_grad_enabled(self._previous)
        return False

    def __call__(self, func: _Function) -> _Function:
        mode = self.enabled
        if inspect.isgeneratorfunction(func):

            @functools.wraps(func)
            def generator(*args, **kwargs):
                # the mode holds while the generator's body runs, not while its caller does
                with set_grad_enabled(mode):
                    inner = func(*args, **kwargs)
                while True:
                    with set_grad_enabled(mode):
                        try:
                            value = next(inner)
                        except StopIteration as stop:
                            return stop.value
                    yield value

            return cast("_Function", generator)

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with set_grad_enabled(mode):
                return func(*args, **kwargs)

        return cast("_Function", wrapper)


class no_grad(_GradMode):
    """Turn off graph recording, as a context manager or a decorator.

    Inside it, results of operations do not require grad, so no graph (and no
    saved activations) is kept: use it for evaluation and for in-place updates.

    >>> w = minidl.ones(3, requires_grad=True)
    >>> with minidl.no_grad():
    ...     y = w * 2
    >>> y.requires_grad
    False
    >>> @minidl.no_grad
    ... def evaluate(x):
    ...     return (x * w).sum()
    >>> evaluate(minidl.ones(3)).requires_grad
    False
    """

    enabled = False


class enable_grad(_GradMode):
    """Turn graph recording back on inside a ``no_grad`` block (context manager or decorator).

    >>> w = minidl.ones(2, requires_grad=True)
    >>> with minidl.no_grad(), minidl.enable_grad():
    ...     (w * 2).requires_grad
    True
    """

    enabled = True


class set_grad_enabled(_GradMode):
    """Set grad mode to ``mode``: as a call, a context manager (restoring it) or a decorator.

    >>> with minidl.set_grad_enabled(False):
    ...     minidl.is_grad_enabled()
    False
    >>> minidl.is_grad_enabled()
    True
    """

    def __new__(cls, mode: bool) -> Any:
        return super().__new__(cls)

    def __init__(self, mode: bool) -> None:
        if not isinstance(mode, (bool, np.bool_)):
            raise TypeError(f"set_grad_enabled: expected a bool, got {mode!r}")
        self.enabled = bool(mode)
        self._previous = is_grad_enabled()
        _set_grad_enabled(mode)  # takes effect at once, as torch's does

    def __enter__(self) -> _GradMode:
        return self

    def __call__(self, func: _Function) -> _Function:
        _set_grad_enabled(self._previous)  # decorating does not change the mode, as in torch
        return super().__call__(func)


def _modified_error(shape, dtype, function, expected, found):
    return RuntimeError(
        "one of the variables needed for gradient computation has been modified by an "
        f"inplace operation: [{dtype} {list(shape)}], saved by {function}, is at version "
        f"{found}; expected version {expected} instead. Hint: modify a copy (x.clone()) "
        "or do the in-place operation before the tensor is used."
    )


class Context:
    """What one call of a :class:`Function` keeps for its backward.

    ``forward`` may store arrays with :meth:`save_for_backward` and any other
    values as attributes (``ctx.axis = axis``). ``needs_input_grad`` is a tuple of
    booleans, one per argument of ``forward``, telling which inputs want a
    gradient. Everything is dropped after backward unless the graph is retained.

    A saved array that is an input's (or the output's) data is checked when it is
    read back: if that tensor was modified in place since, reading it raises
    PyTorch's "modified by an inplace operation" error instead of giving a wrong
    gradient.
    """

    # Defaults shared by every context (an instance sets only what differs): a context
    # is made for every operation, recorded or not, so its construction is kept short.
    inputs = ()
    edges = ()
    released = False
    _saved = ()
    _versions = ()
    _retained = None
    _hooks = None

    def __init__(self, function, needs_input_grad):
        self.function = function
        self.needs_input_grad = needs_input_grad

    def save_for_backward(self, *arrays):
        """Keep ``arrays`` for backward; read them back as ``ctx.saved_tensors``."""
        self._saved = arrays

    @property
    def saved_tensors(self):
        """The arrays given to :meth:`save_for_backward`, in order."""
        if self.released:
            raise RuntimeError(_SECOND_BACKWARD.format(self.function.__name__))
        for box, expected, shape, dtype in self._versions:
            if box[0] != expected:
                raise _modified_error(shape, dtype, self.function.__name__, expected, box[0])
        return self._saved

    def _record_versions(self, tensors):
        """Remember the version of each tensor whose data was saved as it is."""
        versions = []
        for array in self._saved:
            for tensor in tensors:
                if array is tensor._data:
                    box = tensor._version_box
                    versions.append((box, box[0], array.shape, array.dtype))
                    break
        self._versions = tuple(versions)

    def _release(self):
        """Drop the inputs and everything saved, so their memory can be reused."""
        function, retained, hooks = self.function, self._retained, self._hooks
        self.__dict__.clear()
        self.function = function
        self.needs_input_grad = ()
        self.released = True
        if retained is not None:
            self._retained = retained
        if hooks is not None:
            self._hooks = hooks


_SECOND_BACKWARD = (
    "Trying to backward through the graph a second time (through {}): its saved "
    "values were freed by the first backward. Call .backward(retain_graph=True) the "
    "first time if you need to backward twice."
)


class Function:
    """Base class of differentiable operations, with explicit forward and backward.

    Subclass it with two static methods and call it through ``apply``:

    * ``forward(ctx, *args, **kwargs)`` receives numpy arrays in place of the
      tensor arguments (other arguments as given) and returns a numpy array.
    * ``backward(ctx, grad)`` receives the gradient of the output (an array of the
      output's shape; do not modify it in place) and returns one gradient per
      positional argument of ``forward``: an array of that input's shape, or
      ``None`` for inputs that are not tensors or need no gradient
      (``ctx.needs_input_grad[i]`` says which do).

    >>> class Cube(Function):
    ...     @staticmethod
    ...     def forward(ctx, x):
    ...         ctx.save_for_backward(x)
    ...         return x ** 3
    ...     @staticmethod
    ...     def backward(ctx, grad):
    ...         (x,) = ctx.saved_tensors
    ...         return 3 * x ** 2 * grad
    >>> x = minidl.tensor([1.0, 2.0], requires_grad=True)
    >>> Cube.apply(x).sum().backward()
    >>> x.grad
    tensor([ 3., 12.])
    """

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("Function subclasses implement forward(ctx, *args)")

    @staticmethod
    def backward(ctx, grad):
        raise NotImplementedError("Function subclasses implement backward(ctx, grad)")

    @classmethod
    def apply(cls, *args, **kwargs):
        """Run ``forward`` on ``args`` and record the call for backward when needed.

        A result that shares memory with a tensor input (a view: reshape, permute,
        basic indexing) shares that input's version counter, so an in-place change
        through either is seen by both.
        """
        arrays = list(args)
        needs = []
        tensors = []
        edges = []
        needed = False
        for index, arg in enumerate(args):
            if isinstance(arg, Tensor):
                arrays[index] = arg._data
                tensors.append(arg)
                requires = arg._requires_grad
                needs.append(requires)
                needed = needed or requires
                # the edge is the input's producer as it is now: an input later changed
                # in place gets a new producer, which this call must not see
                producer = arg._ctx
                edges.append(arg if producer is None else producer)
            else:
                needs.append(False)
                edges.append(None)
        ctx = Context(cls, tuple(needs))
        result = cls.forward(ctx, *arrays, **kwargs)
        if type(result) is not np.ndarray:
            result = np.asarray(result._data if isinstance(result, Tensor) else result)
        out = Tensor._wrap(result)
        if result.base is not None or _is_data_of(result, tensors):
            for tensor in tensors:
                if np.may_share_memory(result, tensor._data):
                    out._version_box = tensor._version_box
                    out._base = tensor if tensor._base is None else tensor._base
                    break
        if needed and is_grad_enabled():
            if result.dtype.kind != "f":
                raise TypeError(
                    f"{cls.__name__}.forward returned dtype {result.dtype}; differentiable "
                    "operations must return a floating-point array"
                )
            ctx.inputs = args
            ctx.edges = tuple(edges)
            if ctx._saved:
                ctx._record_versions([*tensors, out])
            out._ctx = ctx
            out._requires_grad = True
        return out


def _is_data_of(array, tensors):
    """Whether ``array`` is the very data array of one of ``tensors``."""
    for tensor in tensors:
        if tensor._data is array:
            return True
    return False


def _topological_order(root_ctxs):
    """Contexts reachable from ``root_ctxs``, each before every context that feeds it.

    An iterative depth-first post-order: a context is placed once all of its
    inputs' contexts are, so reversing the list puts every consumer first. On the
    stack a context is to be visited; a None above a context means its inputs are
    all placed (the context was expanded), so it is placed next.
    """
    order = []
    visited = set()
    stack = root_ctxs[::-1]
    push, pop = stack.append, stack.pop
    while stack:
        ctx = pop()
        if ctx is None:
            order.append(pop())
            continue
        if ctx in visited:
            continue
        if ctx.released:
            raise RuntimeError(_SECOND_BACKWARD.format(ctx.function.__name__))
        visited.add(ctx)
        push(ctx)
        push(None)
        for edge in ctx.edges:
            if isinstance(edge, Context) and edge not in visited:
                push(edge)
    order.reverse()
    return order


class HookHandle:
    """What ``register_hook`` returns: ``remove()`` unregisters the hook."""

    def __init__(self, hooks, hook, counter=None):
        self._hooks, self._hook, self._counter = hooks, hook, counter

    def remove(self) -> None:
        """Unregister the hook (a second call does nothing)."""
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)
            if self._counter is not None:
                self._counter[0] -= 1


def _run_hooks(hooks, grad):
    for hook in list(hooks):
        changed = hook(Tensor._wrap(grad))
        if changed is not None:
            changed = changed._data if isinstance(changed, Tensor) else np.asarray(changed)
            if changed.shape != grad.shape or changed.dtype != grad.dtype:
                raise RuntimeError(
                    f"hook {hook!r} returned a gradient of shape {changed.shape} and dtype "
                    f"{changed.dtype}; expected shape {grad.shape} and dtype {grad.dtype}"
                )
            grad = changed
    return grad


def _accumulate_leaf(tensor, grad, may_own=False):
    """Add ``grad`` (the leaf's whole gradient from this backward) into its ``.grad``.

    The leaf's hooks see that whole gradient once, as in PyTorch. A later gradient
    is added in place. The first one becomes ``.grad`` itself, without a copy, when
    ``may_own`` (the walk made or was handed ``grad`` and holds only its own
    references to it) and :func:`_ownable` finds nobody else can see it: as
    torch's AccumulateGrad steals a gradient no other tensor refers to. A gradient
    a hook replaced is copied.
    """
    if tensor._hooks:
        hooked = _run_hooks(tensor._hooks, grad)
        if hooked is not grad:
            grad, may_own = hooked, False
        hooked = None  # no reference of ours may outlive the check below
    current = tensor._grad
    if current is not None:
        np.add(current._data, grad, out=current._data, casting="unsafe")
    elif may_own and sys.getrefcount(grad) == _WALK_REFERENCES and _ownable(grad, tensor):
        tensor._grad = Tensor._wrap(grad)
    else:
        tensor._grad = Tensor._wrap(np.array(grad, dtype=tensor.dtype, copy=True))
    post_hooks = getattr(tensor, "_post_accumulate_hooks", None)
    if post_hooks:
        for hook in list(post_hooks):
            hook(tensor)


def _ownable(grad, tensor):
    """Whether ``grad``, which only the walk refers to, can be ``tensor``'s ``.grad`` as it
    is: a plain array that owns its memory (no view of another array, no borrowed
    buffer), C-contiguous, writeable, of the tensor's shape and dtype."""
    if type(grad) is not np.ndarray or grad.base is not None:
        return False
    flags = grad.flags
    data = tensor._data
    return (
        flags.owndata
        and flags.c_contiguous
        and flags.writeable
        and grad.dtype == data.dtype
        and grad.shape == data.shape
    )


# How many references to a leaf's gradient the walk itself holds when it calls
# sys.getrefcount in _accumulate_leaf (the walk's local variable, the argument,
# getrefcount's own): a count above it means someone else holds the array too (a
# tensor, a hook, a saved context, another leaf's pending gradient, the caller).
# The number depends on the interpreter, so it is measured once
# (_calibrate_ownership) by walking a graph whose backward returns a fresh array;
# 0, never a real count, makes every first gradient a copy.
_WALK_REFERENCES = 0
_FRESH_IDS: list[int] = []  # the ids of the arrays _FreshGradient.backward made


class _FreshGradient(Function):
    """The calibration graph's operation: its backward returns a new array nobody else
    holds, and notes the array's id (not the array: that would be a reference)."""

    @staticmethod
    def forward(ctx, x):
        return np.array(x)

    @staticmethod
    def backward(ctx, grad):
        fresh = np.ones(grad.shape, dtype=grad.dtype)
        _FRESH_IDS.append(id(fresh))
        return fresh


def _calibrate_ownership():
    """Find the walk's own reference count (``_WALK_REFERENCES``).

    Tries counts from 1 up: the first at which a leaf's ``.grad`` is the very array
    backward returned (rather than a copy) is the number of references the walk
    holds itself; with any smaller count the leaf copies. Leaves it 0 (always copy)
    if no count up to 32 works.
    """
    global _WALK_REFERENCES
    # a trace or profile function (a debugger, a profiler) may hold the frames' local
    # variables, which would count here and not in the walks measured later
    trace, profile = sys.gettrace(), sys.getprofile()
    sys.settrace(None)
    sys.setprofile(None)
    try:
        for count in range(1, 33):
            _WALK_REFERENCES = count
            leaf = Tensor._wrap(np.zeros(2))
            leaf._requires_grad = True
            with enable_grad():
                out = _FreshGradient.apply(leaf)
            _walk([(out, np.ones(2))], retain_graph=False)
            if id(leaf._grad._data) == _FRESH_IDS.pop():
                return
        _WALK_REFERENCES = 0
    finally:
        sys.settrace(trace)
        sys.setprofile(profile)


def _initial_grad(tensor, grad, where):
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{where}: expected Tensors to differentiate, got {type(tensor).__name__}")
    if not tensor._requires_grad:
        raise RuntimeError(
            f"{where}: element 0 of tensors does not require grad and does not have a grad_fn "
            "(did you create it under no_grad, or from inputs that do not require grad?)"
        )
    if grad is None:
        if tensor._data.size != 1:
            raise RuntimeError(
                f"{where}: grad can be implicitly created only for scalar outputs; this "
                f"tensor has shape {tensor.shape}, so pass a gradient of that shape"
            )
        return np.ones(tensor.shape, dtype=tensor.dtype)
    grad = np.asarray(grad._data if isinstance(grad, Tensor) else grad, dtype=tensor.dtype)
    if grad.shape != tensor.shape:
        raise ValueError(
            f"{where}: grad has shape {grad.shape} but the tensor has shape {tensor.shape}"
        )
    return grad


def backward(tensor, grad=None, retain_graph=False):
    """Compute gradients of ``tensor`` with respect to the leaves that require grad.

    ``Tensor.backward`` calls this; see there.
    """
    grad = _initial_grad(tensor, grad, "backward")
    _walk([(tensor, grad)], retain_graph)


def _walk(roots, retain_graph, capture=None):
    """Propagate gradients from ``roots`` ((tensor, grad) pairs) back through the graph.

    Without ``capture`` every leaf that requires grad accumulates into ``.grad``,
    once, with the sum of what reached it. With ``capture`` (a dict from id(leaf
    tensor or context) to a list) the gradients of those nodes are collected there
    instead (before their hooks, as torch.autograd.grad does), and no leaf's
    ``.grad`` changes.
    """
    pending = {}  # id(context) -> the sum of the gradients of its output so far
    leaves = {}  # id(leaf tensor) -> the sum of its gradients so far
    leaf_tensors = {}  # id(leaf tensor) -> the tensor
    sums = set()  # the keys whose sum is an array this walk made (so it adds in place)
    root_ctxs = []
    for tensor, grad in roots:
        ctx = tensor._ctx
        if ctx is None:
            leaf_tensors[id(tensor)] = tensor
            _add(leaves, sums, id(tensor), grad)
        else:
            _add(pending, sums, id(ctx), grad)
            root_ctxs.append(ctx)
    with no_grad():
        order = _topological_order(root_ctxs)
        # leaves with post-accumulate hooks get their gradient as soon as the last
        # context that feeds them has run (DistributedDataParallel starts reducing a
        # bucket there, while the rest of the backward runs), the others at the end
        early = _last_uses(order) if capture is None and _post_accumulate_hooks[0] else None
        for index, ctx in enumerate(order):
            out_grad = pending.pop(id(ctx), None)
            if out_grad is not None:
                _backward_node(ctx, out_grad, pending, leaves, leaf_tensors, sums, capture)
                if not retain_graph:
                    ctx._release()
            if early is not None and index in early:
                out_grad = None
                for tensor in early[index]:
                    _accumulate_now(tensor, leaves, leaf_tensors)
    out_grad = None  # keep no reference to a gradient a leaf may take over
    for key, tensor in leaf_tensors.items():
        # popped, so that from here the walk's only references to the gradient are
        # ``grad`` and the argument: what _calibrate_ownership measures
        grad = leaves.pop(key)
        if capture is None:
            _accumulate_leaf(tensor, grad, may_own=True)
        elif key in capture:
            capture[key].append(grad)


# How many post-accumulate hooks exist in the process (a one-element list, so the
# tensors that register them can count): while there are none, the walk does not
# look for the last use of each leaf.
_post_accumulate_hooks = [0]


def _last_uses(order):
    """``{index in order: [leaves]}``: for each leaf with post-accumulate hooks, the
    position of the last context (in the walk's order) that passes it a gradient."""
    last = {}
    for index, ctx in enumerate(order):
        for edge in ctx.edges:
            if (
                edge is not None
                and not isinstance(edge, Context)
                and getattr(edge, "_post_accumulate_hooks", None)
            ):
                last[id(edge)] = (index, edge)
    early = {}
    for index, tensor in last.values():
        early.setdefault(index, []).append(tensor)
    return early


def _accumulate_now(tensor, leaves, leaf_tensors):
    """Accumulate a leaf's complete gradient before the walk ends (see _last_uses)."""
    key = id(tensor)
    if key in leaves:
        leaf_tensors.pop(key, None)
        _accumulate_leaf(tensor, leaves.pop(key))


def _backward_node(ctx, out_grad, pending, leaves, leaf_tensors, sums, capture):
    """Run one context's backward on ``out_grad`` and add what it returns into the
    pending sums of its inputs' producers (``pending``) or leaves (``leaves``).

    A function of its own so that no reference to a returned gradient outlives it.
    """
    if capture is not None and id(ctx) in capture:
        capture[id(ctx)].append(out_grad)
    if ctx._hooks:
        out_grad = _run_hooks(ctx._hooks, out_grad)
    if ctx._retained is not None:
        kept = ctx._retained()
        if kept is not None:
            _accumulate_leaf(kept, out_grad)
    function = ctx.function
    input_grads = function.backward(ctx, out_grad)
    inputs = ctx.inputs
    if not isinstance(input_grads, tuple):
        input_grads = (input_grads,)
    if len(input_grads) != len(inputs):
        raise RuntimeError(
            f"{function.__name__}.backward returned {len(input_grads)} gradients "
            f"but forward took {len(inputs)} inputs"
        )
    for parent, edge, grad in zip(inputs, ctx.edges, input_grads):
        if grad is None or edge is None or not parent._requires_grad:
            continue
        if type(grad) is not np.ndarray:
            grad = np.asarray(grad._data if isinstance(grad, Tensor) else grad)
        data = parent._data
        if grad.shape != data.shape:
            raise RuntimeError(
                f"{function.__name__}.backward returned a gradient of shape "
                f"{grad.shape} for an input of shape {data.shape}"
            )
        if grad.dtype != data.dtype:
            grad = grad.astype(data.dtype)
        if isinstance(edge, Context):
            _add(pending, sums, id(edge), grad)
        else:
            key = id(edge)
            if key not in leaf_tensors:
                leaf_tensors[key] = edge
            _add(leaves, sums, key, grad)


def _add(pending, sums, key, grad):
    """Sum ``grad`` into ``pending[key]``.

    The first gradient is kept as it is (it may be shared: several inputs of an
    addition get the same array). The second makes a new array, the sum, recorded
    in ``sums``; later ones add into that array in place.
    """
    previous = pending.get(key)
    if previous is None:
        pending[key] = grad
    elif key in sums:
        np.add(previous, grad, out=previous)
    else:
        total = previous + grad
        # 0-d arrays add up to a numpy scalar; keep an array, so later sums add in place
        pending[key] = total if type(total) is np.ndarray else np.asarray(total)
        sums.add(key)


def grad(
    outputs,
    inputs,
    grad_outputs=None,
    retain_graph=None,
    create_graph=False,
    allow_unused=False,
):
    """The gradients of ``outputs`` with respect to ``inputs``, without touching ``.grad``.

    As ``torch.autograd.grad`` for first-order gradients: ``outputs`` and
    ``inputs`` are Tensors or sequences of them; ``grad_outputs`` the vectors of
    the vector-Jacobian products (None for one-element outputs). Returns a tuple
    with one gradient per input (None for an unused input when
    ``allow_unused=True``). The graph is freed unless ``retain_graph=True``.

    >>> x = minidl.tensor([1.0, 2.0], requires_grad=True)
    >>> (g,) = minidl.autograd.grad((x * x).sum(), x)
    >>> g, x.grad
    (tensor([2., 4.]), None)
    """
    if create_graph:
        raise NotImplementedError(
            "autograd.grad: create_graph=True (gradients that are themselves differentiable, "
            "for higher-order derivatives) is not supported by minidl"
        )
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    single = isinstance(inputs, Tensor)
    inputs = [inputs] if single else list(inputs)
    if grad_outputs is None or isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs] * len(outputs) if grad_outputs is None else [grad_outputs]
    grad_outputs = list(grad_outputs)
    if len(grad_outputs) != len(outputs):
        raise ValueError(
            f"autograd.grad: got {len(grad_outputs)} grad_outputs for {len(outputs)} outputs"
        )
    capture = {}
    for tensor in inputs:
        if not isinstance(tensor, Tensor) or not tensor._requires_grad:
            raise RuntimeError(
                "autograd.grad: One of the differentiated Tensors does not require grad"
            )
        capture.setdefault(id(tensor._ctx if tensor._ctx is not None else tensor), [])
    roots = [(out, _initial_grad(out, g, "autograd.grad")) for out, g in zip(outputs, grad_outputs)]
    _walk(roots, bool(retain_graph), capture)
    results = []
    for tensor in inputs:
        found = capture[id(tensor._ctx if tensor._ctx is not None else tensor)]
        if not found:
            if not allow_unused:
                raise RuntimeError(
                    "autograd.grad: One of the differentiated Tensors appears to not have been "
                    "used in the graph. Set allow_unused=True if this is the desired behavior."
                )
            results.append(None)
            continue
        total = found[0]
        for more in found[1:]:
            total = total + more
        results.append(Tensor._wrap(np.array(total, dtype=tensor.dtype)))
    return tuple(results)


__all__ = [
    "Context",
    "Function",
    "HookHandle",
    "backward",
    "enable_grad",
    "grad",
    "is_grad_enabled",
    "no_grad",
    "result_type",
    "set_grad_enabled",
]
