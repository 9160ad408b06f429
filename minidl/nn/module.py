"""``Module`` and ``Parameter``: layers with state, as in PyTorch.

Assigning a :class:`Parameter` or a :class:`Module` to an attribute registers
it; :meth:`Module.register_buffer` registers state that is not learned (running
statistics). Parameters and buffers are listed recursively, in registration
order, under dotted names (``"0.weight"``, ``"block.bn.running_mean"``); those
names and the array layouts are PyTorch's, so state dicts move between minidl
and PyTorch models of the same architecture.
"""

import contextlib
from collections import OrderedDict, namedtuple

import numpy as np

from ..autograd import no_grad
from ..tensor import Tensor


class Parameter(Tensor):
    """A Tensor that a Module learns: it requires grad, and assigning it to a Module registers it.

    >>> p = minidl.nn.Parameter(minidl.zeros(2, 3))
    >>> p.requires_grad, p.shape
    (True, (2, 3))
    """

    def __init__(self, data, requires_grad=True):
        array = data.numpy() if isinstance(data, Tensor) else np.asarray(data)
        self._init(array, requires_grad)  # a Parameter keeps its data's dtype, as torch's

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


class RemovableHandle:
    """Returned by ``register_forward_hook``; ``remove()`` unregisters the hook."""

    _next_id = 0

    def __init__(self, hooks):
        self._hooks = hooks
        self.id = RemovableHandle._next_id
        RemovableHandle._next_id += 1

    def remove(self):
        """Unregister the hook (a second call does nothing)."""
        self._hooks.pop(self.id, None)


IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


def _as_array(value):
    """A state-dict value as a numpy array: Tensors, numpy arrays, and torch tensors."""
    if isinstance(value, Tensor):
        return value.numpy()
    if hasattr(value, "detach") and hasattr(
        value, "cpu"
    ):  # a torch tensor, without importing torch
        value = value.detach().cpu().numpy()
    return np.asarray(value)


@contextlib.contextmanager
def evaluating(module):
    """Run the block with ``module`` in evaluation mode under no_grad, then put every
    sub-module back in the mode it had (modes may differ between sub-modules).

    >>> model = minidl.nn.Sequential(minidl.nn.Dropout(0.5))
    >>> with minidl.nn.module.evaluating(model):
    ...     model.training
    False
    >>> model.training
    True
    """
    modes = [(m, m.training) for m in module.modules()]
    try:
        module.eval()
        with no_grad():
            yield module
    finally:
        for sub_module, mode in modes:
            object.__setattr__(sub_module, "training", mode)


class Module:
    """Base class of layers and models.

    Subclass it, create parameters and sub-modules in ``__init__`` (after calling
    ``super().__init__()``), and compute the output in ``forward``; call the
    module itself to run ``forward`` with its hooks.

    >>> class TwoLayer(minidl.nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.hidden = minidl.nn.Dense(4, 8)
    ...         self.out = minidl.nn.Dense(8, 2)
    ...     def forward(self, x):
    ...         return self.out(self.hidden(x).relu())
    >>> model = TwoLayer()
    >>> [name for name, _ in model.named_parameters()]
    ['hidden.weight', 'hidden.bias', 'out.weight', 'out.bias']
    >>> model(minidl.ones(3, 4)).shape
    (3, 2)
    """

    def __init__(self):
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())

    # ------------------------------------------------------------------ registration
    def _require_init(self):
        if "_parameters" not in self.__dict__:
            raise RuntimeError(
                f"{type(self).__name__}: call super().__init__() before assigning parameters, "
                "buffers or sub-modules"
            )

    def __setattr__(self, name, value):
        if isinstance(value, Parameter):
            self._require_init()
            self._forget(name)
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._require_init()
            self._forget(name)
            self._modules[name] = value
        elif "_parameters" in self.__dict__ and name in self._parameters:
            if value is not None:
                raise TypeError(
                    f"cannot assign a {type(value).__name__} to parameter '{name}' of "
                    f"{type(self).__name__}: use a minidl.nn.Parameter or None"
                )
            self._parameters[name] = None
        elif "_buffers" in self.__dict__ and name in self._buffers:
            if value is not None and not isinstance(value, Tensor):
                value = Tensor._of(np.asarray(value))
            self._buffers[name] = value
        elif "_modules" in self.__dict__ and name in self._modules and value is None:
            self._modules[name] = None
        else:
            object.__setattr__(self, name, value)

    def _forget(self, name):
        for registry in (self._parameters, self._buffers, self._modules):
            registry.pop(name, None)
        self.__dict__.pop(name, None)

    def __getattr__(self, name):
        # only called when normal lookup fails: parameters, buffers and sub-modules
        for registry in ("_parameters", "_buffers", "_modules"):
            values = self.__dict__.get(registry)
            if values is not None and name in values:
                return values[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for registry in (self._parameters, self._buffers, self._modules):
            if name in registry:
                del registry[name]
                return
        object.__delattr__(self, name)

    def register_parameter(self, name, parameter):
        """Register ``parameter`` (a Parameter or None) under ``name``."""
        self._register(self._parameters, name, parameter, Parameter, "register_parameter")

    def register_buffer(self, name, value, persistent=True):
        """Register state that is not learned (e.g. running statistics) under ``name``.

        ``value`` is a Tensor, an array, or None. Buffers appear in ``state_dict``
        unless ``persistent=False``, and follow ``to(dtype)`` when they are float.

        >>> layer = minidl.nn.Module()
        >>> layer.register_buffer("count", np.zeros((), dtype=np.int64))
        >>> layer.state_dict()["count"]
        array(0)
        """
        self._require_init()
        self._forget(name)
        if value is not None and not isinstance(value, Tensor):
            value = Tensor._of(np.asarray(value))
        self._buffers[name] = value
        if not persistent:
            self._non_persistent.add(name)

    def add_module(self, name, module):
        """Register ``module`` (or None) as a sub-module called ``name``."""
        self._register(self._modules, name, module, Module, "add_module")

    def _register(self, registry, name, value, kind, where):
        """Put ``value`` (a ``kind`` or None) in ``registry`` as ``name``, forgetting the old."""
        if value is not None and not isinstance(value, kind):
            raise TypeError(f"{where}: expected a {kind.__name__} or None for '{name}'")
        self._require_init()
        self._forget(name)
        registry[name] = value

    # ------------------------------------------------------------------ traversal
    def named_children(self):
        """(name, module) for each direct sub-module, in registration order."""
        for name, module in self._modules.items():
            if module is not None:
                yield name, module

    def children(self):
        """The direct sub-modules, in registration order."""
        for _, module in self.named_children():
            yield module

    def named_modules(self, prefix=""):
        """(dotted name, module) for this module and every module below it, each once."""
        seen = set()
        stack = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            children = [
                (f"{name}.{child_name}" if name else child_name, child)
                for child_name, child in module.named_children()
            ]
            stack.extend(reversed(children))

    def modules(self):
        """This module and every module below it, each once."""
        for _, module in self.named_modules():
            yield module

    def _named_members(self, registry, recurse):
        seen = set()
        modules = self.named_modules() if recurse else [("", self)]
        for prefix, module in modules:
            for name, value in getattr(module, registry).items():
                if value is None or id(value) in seen:
                    continue
                seen.add(id(value))
                yield (f"{prefix}.{name}" if prefix else name), value

    def named_parameters(self, recurse=True):
        """(dotted name, Parameter) pairs, in a stable order; a shared parameter appears once."""
        return self._named_members("_parameters", recurse)

    def parameters(self, recurse=True):
        """The parameters, in the order of :meth:`named_parameters`."""
        for _, parameter in self.named_parameters(recurse):
            yield parameter

    def named_buffers(self, recurse=True):
        """(dotted name, buffer Tensor) pairs."""
        return self._named_members("_buffers", recurse)

    def buffers(self, recurse=True):
        """The buffers, in the order of :meth:`named_buffers`."""
        for _, buffer in self.named_buffers(recurse):
            yield buffer

    def apply(self, fn):
        """Call ``fn(module)`` on every sub-module (children first) and on self; returns self."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # ------------------------------------------------------------------ modes and state
    def train(self, mode=True):
        """Set training mode (``mode=True``) or evaluation mode, recursively; returns self."""
        if not isinstance(mode, bool):
            raise ValueError(f"train: expected a bool, got {mode!r}")
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self):
        """Set evaluation mode recursively (``train(False)``); returns self."""
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        """Set ``requires_grad`` on every parameter (``False`` freezes them); returns self."""
        for parameter in self.parameters():
            parameter.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none=True):
        """Reset the gradients of all parameters: to None (default) or to zeros."""
        for parameter in self.parameters():
            if set_to_none or parameter.grad is None:
                parameter.grad = None
            else:
                parameter.grad.numpy()[...] = 0

    def to(self, dtype):
        """Convert every float parameter and buffer (and gradient) to ``dtype``; returns self.

        >>> minidl.nn.Dense(2, 3).to(np.float64).weight.dtype
        dtype('float64')
        """
        dtype = np.dtype(dtype)
        if dtype.kind != "f" or dtype not in (np.float32, np.float64):
            raise TypeError(f"to: expected float32 or float64, got {dtype}")
        for tensor in [*self.parameters(), *self.buffers()]:
            if tensor.dtype.kind == "f":
                # a change of dtype, which assigning .data refuses (it keeps the dtype)
                tensor._data = tensor._data.astype(dtype)
                if tensor.grad is not None:
                    tensor.grad._data = tensor.grad._data.astype(dtype)
        return self

    def float(self):
        """Convert float parameters and buffers to float32; returns self."""
        return self.to(np.float32)

    def double(self):
        """Convert float parameters and buffers to float64 (for gradient checks); returns self."""
        return self.to(np.float64)

    def state_dict(self):
        """Parameters and persistent buffers: an ordered dict of numpy arrays (shared, not copied).

        Keys and layouts are PyTorch's; ``torch.from_numpy`` on each value gives a
        state dict a torch model of the same architecture loads.

        >>> list(minidl.nn.BatchNorm(3).state_dict())
        ['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked']
        """
        state = OrderedDict()
        for prefix, module in self.named_modules():
            dot = f"{prefix}." if prefix else ""
            for name, parameter in module._parameters.items():
                if parameter is not None:
                    state[dot + name] = parameter.numpy()
            for name, buffer in module._buffers.items():
                if buffer is not None and name not in module._non_persistent:
                    state[dot + name] = buffer.numpy()
        return state

    def load_state_dict(self, state, strict=True):
        """Copy ``state`` (name -> array, Tensor or torch tensor) into the parameters and buffers.

        Values are copied into the existing arrays, converted to their dtype
        (float to float, integer to integer). Any shape or dtype mismatch raises
        ValueError listing all of them; with ``strict``, so do missing and
        unexpected keys. Returns ``(missing_keys, unexpected_keys)``.

        >>> a, b = minidl.nn.Dense(2, 3), minidl.nn.Dense(2, 3)
        >>> b.load_state_dict(a.state_dict())
        IncompatibleKeys(missing_keys=[], unexpected_keys=[])
        """
        targets = OrderedDict()
        for prefix, module in self.named_modules():
            dot = f"{prefix}." if prefix else ""
            for name, parameter in module._parameters.items():
                if parameter is not None:
                    targets[dot + name] = parameter
            for name, buffer in module._buffers.items():
                if buffer is not None and name not in module._non_persistent:
                    targets[dot + name] = buffer
        missing = [key for key in targets if key not in state]
        unexpected = [key for key in state if key not in targets]
        problems = []
        arrays = {}
        for key, target in targets.items():
            if key not in state:
                continue
            value = _as_array(state[key])
            if value.shape != target.shape:
                problems.append(
                    f"size mismatch for {key}: copying a value of shape {value.shape}, the "
                    f"shape in the current model is {target.shape}"
                )
            elif value.dtype.kind not in "biuf" or (
                (value.dtype.kind == "f") != (target.dtype.kind == "f")
            ):
                problems.append(
                    f"dtype mismatch for {key}: copying a value of dtype {value.dtype} into "
                    f"a {target.dtype} tensor"
                )
            else:
                arrays[key] = value
        if strict:
            if missing:
                problems.insert(0, "Missing key(s): " + ", ".join(f'"{k}"' for k in missing))
            if unexpected:
                problems.insert(
                    1 if missing else 0,
                    "Unexpected key(s): " + ", ".join(f'"{k}"' for k in unexpected),
                )
        if problems:
            raise ValueError(
                f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                + "\n\t".join(problems)
            )
        with no_grad():
            for key, value in arrays.items():
                target = targets[key].numpy()
                if target.ndim == 0:
                    targets[key].data = np.array(value, dtype=target.dtype)
                else:
                    target[...] = value
        return IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------------ calling
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must implement forward()")

    def register_forward_hook(self, hook):
        """Call ``hook(module, inputs, output)`` after every forward; returns a removable handle.

        A hook that returns something other than None replaces the output.

        >>> layer = minidl.nn.ReLU()
        >>> shapes = []
        >>> handle = layer.register_forward_hook(lambda m, i, o: shapes.append(o.shape))
        >>> _ = layer(minidl.ones(2, 3))
        >>> handle.remove()
        >>> shapes
        [(2, 3)]
        """
        handle = RemovableHandle(self._forward_hooks)
        self._forward_hooks[handle.id] = hook
        return handle

    def __call__(self, *args, **kwargs):
        output = self.forward(*args, **kwargs)
        for hook in list(self._forward_hooks.values()):
            replaced = hook(self, args, output)
            if replaced is not None:
                output = replaced
        return output

    # ------------------------------------------------------------------ printing
    def extra_repr(self):
        """The text inside this module's parentheses in its repr (layers override it)."""
        return ""

    def __repr__(self):
        lines = []
        extra = self.extra_repr()
        if extra:
            lines.extend(extra.split("\n"))
        for name, module in self._modules.items():
            text = repr(module).replace("\n", "\n  ")
            lines.append(f"({name}): {text}")
        if not self._modules:
            return f"{type(self).__name__}({extra})"
        return f"{type(self).__name__}(\n  " + "\n  ".join(lines) + "\n)"

    def summary(self, input_shape, dtype=np.float32):
        """Print (and return) each layer's output shape and parameter count, and the totals.

        ``input_shape`` excludes the batch dimension, as in Keras. The model runs
        one forward pass on zeros in evaluation mode, under no_grad; its mode is
        restored afterwards.

        >>> text = minidl.nn.Sequential(minidl.nn.Dense(4, 3), minidl.nn.ReLU()).summary((4,))
        Layer (type)          Output Shape      Param #
        ===============================================
        0 (Dense)             (None, 3)         15
        1 (ReLU)              (None, 3)         0
        ===============================================
        Total params: 15
        Trainable params: 15
        Non-trainable params: 0
        """
        records = []
        handles = []
        for name, module in self.named_modules():
            if next(module.children(), None) is not None:
                continue  # containers: their leaves are listed

            def record(layer, inputs, output, name=name):
                own = sum(p.numel() for p in layer.parameters(recurse=False))
                records.append((name or type(layer).__name__, layer, output.shape, own))

            handles.append(module.register_forward_hook(record))
        try:
            with evaluating(self):
                self(Tensor._of(np.zeros((2, *input_shape), dtype=dtype)))
        finally:
            for handle in handles:
                handle.remove()
        rows = [
            (f"{name} ({type(layer).__name__})", str((None, *shape[1:])), str(count))
            for name, layer, shape, count in records
        ]
        header = ("Layer (type)", "Output Shape", "Param #")
        widths = [max(len(r[i]) for r in [header, *rows]) + 4 for i in range(2)]
        total = sum(p.numel() for p in self.parameters())
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        width = sum(widths) + max(len(r[2]) for r in [header, *rows])
        width = max(width, 47)
        lines = [f"{header[0]:{widths[0]}}{header[1]:{widths[1]}}{header[2]}", "=" * width]
        lines += [f"{a:{widths[0]}}{b:{widths[1]}}{c}" for a, b, c in rows]
        lines += [
            "=" * width,
            f"Total params: {total:,}",
            f"Trainable params: {trainable:,}",
            f"Non-trainable params: {total - trainable:,}",
        ]
        text = "\n".join(lines)
        print(text)
        return text
