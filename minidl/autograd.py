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

import functools
import threading

import numpy as np

_state = threading.local()

# The tensor class that results are made of: minidl.tensor builds on this module and
# names its class with the ``result_type`` decorator, so this module imports nothing
# from it (no import cycle between the two).
Tensor = None


def result_type(cls):
    """Class decorator naming the tensor class whose instances Functions take and return."""
    global Tensor
    Tensor = cls
    return cls


def is_grad_enabled():
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
    """Context manager and decorator that sets grad mode, restoring the previous one."""

    enabled = True

    def __enter__(self):
        self._previous = is_grad_enabled()
        _set_grad_enabled(self.enabled)
        return self

    def __exit__(self, *exc_info):
        _set_grad_enabled(self._previous)
        return False

    def __call__(self, func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return func(*args, **kwargs)

        return wrapper


class no_grad(_GradMode):
    """Turn off graph recording, as a context manager or a decorator.

    Inside it, results of operations do not require grad, so no graph (and no
    saved activations) is kept: use it for evaluation and for in-place updates.

    >>> w = minidl.ones(3, requires_grad=True)
    >>> with minidl.no_grad():
    ...     y = w * 2
    >>> y.requires_grad
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


class Context:
    """What one call of a :class:`Function` keeps for its backward.

    ``forward`` may store arrays with :meth:`save_for_backward` and any other
    values as attributes (``ctx.axis = axis``). ``needs_input_grad`` is a tuple of
    booleans, one per argument of ``forward``, telling which inputs want a
    gradient. Everything is dropped after backward unless the graph is retained.
    """

    def __init__(self, function, needs_input_grad):
        self.function = function
        self.needs_input_grad = needs_input_grad
        self.inputs = ()
        self.released = False
        self._saved = ()
        self._retained = None

    def save_for_backward(self, *arrays):
        """Keep ``arrays`` for backward; read them back as ``ctx.saved_tensors``."""
        self._saved = arrays

    @property
    def saved_tensors(self):
        """The arrays given to :meth:`save_for_backward`, in order."""
        if self.released:
            raise RuntimeError(_SECOND_BACKWARD.format(self.function.__name__))
        return self._saved

    def _release(self):
        """Drop the inputs and everything saved, so their memory can be reused."""
        function = self.function
        retained = self._retained
        self.__dict__.clear()
        self.function = function
        self.needs_input_grad = ()
        self.inputs = ()
        self.released = True
        self._saved = ()
        self._retained = retained


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
        """Run ``forward`` on ``args`` and record the call for backward when needed."""
        arrays = []
        needs = []
        any_needs = False
        for arg in args:
            if isinstance(arg, Tensor):
                arrays.append(arg.data)
                needs.append(arg.requires_grad)
                any_needs = any_needs or arg.requires_grad
            else:
                arrays.append(arg)
                needs.append(False)
        record = any_needs and is_grad_enabled()
        ctx = Context(cls, tuple(needs))
        result = cls.forward(ctx, *arrays, **kwargs)
        if isinstance(result, Tensor):
            result = result.data
        out = Tensor._wrap(np.asarray(result))
        if record:
            if out.dtype.kind != "f":
                raise TypeError(
                    f"{cls.__name__}.forward returned dtype {out.dtype}; differentiable "
                    "operations must return a floating-point array"
                )
            ctx.inputs = args
            out._ctx = ctx
            out.requires_grad = True
        return out


def _topological_order(root_ctx):
    """Contexts reachable from ``root_ctx``, each before every context that feeds it.

    An iterative depth-first post-order: a context is placed once all of its
    inputs' contexts are, so reversing the list puts every consumer first.
    """
    order = []
    visited = set()
    stack = [(root_ctx, False)]
    while stack:
        ctx, expanded = stack.pop()
        if expanded:
            order.append(ctx)
            continue
        if id(ctx) in visited:
            continue
        if ctx.released:
            raise RuntimeError(_SECOND_BACKWARD.format(ctx.function.__name__))
        visited.add(id(ctx))
        stack.append((ctx, True))
        for parent in ctx.inputs:
            if isinstance(parent, Tensor) and parent._ctx is not None:
                if id(parent._ctx) not in visited:
                    stack.append((parent._ctx, False))
    order.reverse()
    return order


def _accumulate_leaf(tensor, grad):
    """Add ``grad`` into a leaf tensor's ``.grad`` (a fresh array the first time)."""
    if tensor.grad is None:
        tensor.grad = Tensor._wrap(np.array(grad, dtype=tensor.dtype, copy=True))
    else:
        tensor.grad.data = tensor.grad.data + grad


def backward(tensor, grad=None, retain_graph=False):
    """Compute gradients of ``tensor`` with respect to the leaves that require grad.

    ``Tensor.backward`` calls this; see there.
    """
    if not tensor.requires_grad:
        raise RuntimeError(
            "backward: this tensor does not require grad and has no graph "
            "(did you create it under no_grad, or from inputs that do not require grad?)"
        )
    if grad is None:
        if tensor.data.size != 1:
            raise RuntimeError(
                f"backward: grad can be implicitly created only for scalar outputs; this "
                f"tensor has shape {tensor.shape}, so pass grad= (an array of that shape)"
            )
        grad = np.ones(tensor.shape, dtype=tensor.dtype)
    else:
        grad = np.asarray(grad.data if isinstance(grad, Tensor) else grad, dtype=tensor.dtype)
        if grad.shape != tensor.shape:
            raise ValueError(
                f"backward: grad has shape {grad.shape} but the tensor has shape {tensor.shape}"
            )
    if tensor._ctx is None:
        _accumulate_leaf(tensor, grad)
        return
    root = tensor._ctx
    pending = {id(root): grad}
    with no_grad():
        for ctx in _topological_order(root):
            out_grad = pending.pop(id(ctx), None)
            if out_grad is None:
                continue
            if ctx._retained is not None:
                kept = ctx._retained()
                if kept is not None:
                    _accumulate_leaf(kept, out_grad)
            input_grads = ctx.function.backward(ctx, out_grad)
            inputs = ctx.inputs
            if not isinstance(input_grads, tuple):
                input_grads = (input_grads,)
            if len(input_grads) != len(inputs):
                raise RuntimeError(
                    f"{ctx.function.__name__}.backward returned {len(input_grads)} gradients "
                    f"but forward took {len(inputs)} inputs"
                )
            for parent, parent_grad in zip(inputs, input_grads):
                if parent_grad is None or not isinstance(parent, Tensor):
                    continue
                if not parent.requires_grad:
                    continue
                if isinstance(parent_grad, Tensor):
                    parent_grad = parent_grad.data
                parent_grad = np.asarray(parent_grad)
                if parent_grad.shape != parent.shape:
                    raise RuntimeError(
                        f"{ctx.function.__name__}.backward returned a gradient of shape "
                        f"{parent_grad.shape} for an input of shape {parent.shape}"
                    )
                if parent_grad.dtype != parent.dtype:
                    parent_grad = parent_grad.astype(parent.dtype)
                if parent._ctx is None:
                    _accumulate_leaf(parent, parent_grad)
                else:
                    key = id(parent._ctx)
                    previous = pending.get(key)
                    pending[key] = parent_grad if previous is None else previous + parent_grad
            if not retain_graph:
                ctx._release()
