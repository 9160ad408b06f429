"""``Module`` and ``Parameter``: layers with state, as in PyTorch.

Assigning a :class:`Parameter` or a :class:`Module` to an attribute registers
it; :meth:`Module.register_buffer` registers state that is not learned (running
statistics). Parameters and buffers are listed recursively, in registration
order, under dotted names (``"0.weight"``, ``"block.bn.running_mean"``); those
names and the array layouts are PyTorch's, so state dicts move between minidl
and PyTorch models of the same architecture.
"""

from __future__ import annotations

import contextlib
import warnings
from collections import OrderedDict, namedtuple
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..autograd import Function, is_grad_enabled, no_grad
from ..tensor import _NO_CUDA, Tensor, _to_dtype

if TYPE_CHECKING:
    from numpy.typing import DTypeLike
    from typing_extensions import Self


class Parameter(Tensor):
    """A Tensor that a Module learns: it requires grad, and assigning it to a Module registers it.

    >>> p = minidl.nn.Parameter(minidl.zeros(2, 3))
    >>> p.requires_grad, p.shape
    (True, (2, 3))
    """

    def __init__(self, data: Any, requires_grad: bool = True) -> None:
        array = data.numpy() if isinstance(data, Tensor) else np.asarray(data)
        self._init(array, requires_grad)  # a Parameter keeps its data's dtype, as torch's

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class RemovableHandle:
    """Returned by the ``register_*_hook`` methods; ``remove()`` unregisters the hook."""

    _next_id = 0

    def __init__(self, hooks: Any) -> None:
        self._hooks = hooks
        self.id = RemovableHandle._next_id
        RemovableHandle._next_id += 1

    def remove(self) -> None:
        """Unregister the hook (a second call does nothing)."""
        self._hooks.pop(self.id, None)


IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class StateDictError(RuntimeError, ValueError):
    """What ``load_state_dict`` raises: a RuntimeError, as torch's, and a ValueError, as
    minidl's was before (so code written for either catches it)."""


def _as_array(value):
    """A state-dict value as a numpy array: Tensors, numpy arrays, and torch tensors."""
    if isinstance(value, Tensor):
        return value.numpy()
    if hasattr(value, "detach") and hasattr(
        value, "cpu"
    ):  # a torch tensor, without importing torch
        value = value.detach().cpu().numpy()
    return np.asarray(value)


class _HookJoin(Function):
    """Joins the tensors crossing one side of a module call into a single graph node.

    torch's BackwardHookFunction is one node with many outputs, so the gradients
    of all of a module's inputs (or outputs) arrive together; minidl's Functions
    have one output, so the node's output is a 0-d token that each crossing
    tensor's :class:`_HookSelect` depends on. The walk reaches this node after
    every select node, when all the gradients are known.
    """

    @staticmethod
    def forward(ctx, *arrays, side):
        ctx.side = side
        return np.zeros((), dtype=arrays[0].dtype)

    @staticmethod
    def backward(ctx, grad):
        return ctx.side.joined()


class _HookSelect(Function):
    """Passes one crossing tensor through (sharing its data) and hands its gradient to
    the side's :class:`_HookJoin`, which returns it to the tensor's producer."""

    @staticmethod
    def forward(ctx, token, x, side, position):
        ctx.side, ctx.position = side, position
        return x

    @staticmethod
    def backward(ctx, grad):
        ctx.side.grads[ctx.position] = grad
        return np.zeros((), dtype=grad.dtype), None


class _HookSide:
    """The tensors of one side (inputs or outputs) of a module call, and their gradients.

    As in torch, on the input side every Tensor has a gradient (zeros when the
    backward did not reach it or it needs none); on the output side those are None.
    """

    def __init__(self, count, on_join, zeros_for_missing):
        self.count = count
        self.on_join = on_join
        self.zeros_for_missing = zeros_for_missing
        self.positions = []  # the tensors passed through the join (they require grad)
        self.tensors = {}  # position -> (shape, dtype) of every Tensor
        self.grads = {}

    def wrap(self, values):
        """``values`` with each tensor that requires grad passed through the join."""
        values = list(values)
        self.tensors = {
            i: (v.shape, v.dtype) for i, v in enumerate(values) if isinstance(v, Tensor)
        }
        self.positions = [i for i in self.tensors if values[i].requires_grad]
        if not self.positions or not is_grad_enabled():
            self.positions = []
            return tuple(values)
        token = _HookJoin.apply(*[values[i] for i in self.positions], side=self)
        for i in self.positions:
            values[i] = _HookSelect.apply(token, values[i], side=self, position=i)
        return tuple(values)

    def packed(self):
        """One entry per value: its gradient as a Tensor, or None."""
        packed = []
        for i in range(self.count):
            if i in self.grads:
                packed.append(Tensor._wrap(self.grads[i]))
            elif self.zeros_for_missing and i in self.tensors:
                packed.append(Tensor._wrap(np.zeros(*self.tensors[i])))
            else:
                packed.append(None)
        return tuple(packed)

    def joined(self):
        grads = self.on_join(self)
        self.grads = {}
        return tuple(
            grads[i]._data if isinstance(grads[i], Tensor) else grads[i] for i in self.positions
        )


class _ModuleBackwardHook:
    """One call of a module with full backward hooks (torch's ``utils.hooks.BackwardHook``)."""

    def __init__(self, module, hooks, args):
        self.module, self.hooks = module, hooks
        self.grad_outputs = None
        self.inputs = _HookSide(len(args), self._inputs_ready, zeros_for_missing=True)
        self.outputs = None

    def wrap_output(self, output):
        single = not isinstance(output, tuple)
        values = (output,) if single else output
        self.outputs = _HookSide(len(values), self._outputs_ready, zeros_for_missing=False)
        values = self.outputs.wrap(values)
        return values[0] if single else values

    def _outputs_ready(self, side):
        self.grad_outputs = side.packed()
        if not self.inputs.positions:  # no input requires grad: fire now
            warnings.warn(
                "Full backward hook is firing when gradients are computed with respect to "
                "module outputs since no inputs require gradients",
                stacklevel=2,
            )
            grad_inputs = (None,) * self.inputs.count
            for hook in self.hooks:
                result = hook(self.module, grad_inputs, self.grad_outputs)
                if result is not None and not (
                    isinstance(result, tuple) and all(item is None for item in result)
                ):
                    raise RuntimeError(
                        "Backward hook for Modules where no input requires gradient should "
                        "always return None or None for all gradients."
                    )
            self.grad_outputs = None
        return [side.grads.get(i) for i in range(side.count)]

    def _inputs_ready(self, side):
        grad_input = side.packed()
        if self.grad_outputs is None:  # the gradient did not come through the outputs
            return grad_input
        for hook in self.hooks:
            result = hook(self.module, grad_input, self.grad_outputs)
            if result is None:
                continue
            result = tuple(result)
            if len(result) != len(grad_input):
                raise RuntimeError(
                    "Backward hook returned an invalid number of grad_input, got "
                    f"{len(result)}, but expected {len(grad_input)}"
                )
            grad_input = result
        self.grad_outputs = None
        return grad_input


def _refuse_non_tensor(module, args, error):
    """Turn the AttributeError a layer hits on a list (or another non-Tensor) input into
    a TypeError naming the layer; return quietly when ``error`` has another cause."""
    culprit = getattr(error, "obj", None)
    for arg in args:
        if arg is culprit and not isinstance(arg, Tensor):
            raise _not_a_tensor(module, arg) from error


def _not_a_tensor(module, value):
    """The TypeError for a layer called with ``value``, which is not a Tensor."""
    return TypeError(
        f"{type(module).__name__}: expected a minidl Tensor as input (convert with "
        f"minidl.tensor), got {type(value).__name__}"
    )


@contextlib.contextmanager
def evaluating(module: Module) -> Iterator[Module]:
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


# Where Module.__getattr__ looks for a name, in order.
_REGISTRIES = ("_parameters", "_buffers", "_modules")


def _registered(module, registry, name):
    """``getattr(module, name)`` for a name held in ``registry`` (``module._parameters`` or
    ``module._buffers``), read from the registry directly.

    Layers call this on their hot path: a registered name is only found after normal
    attribute lookup fails, through ``Module.__getattr__``, about 1.5 us a name (more
    than a small layer's kernel). A name not in the registry (deleted, or replaced by a
    plain attribute, as weight normalization does) goes through ``getattr``.
    """
    return registry[name] if name in registry else getattr(module, name)


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

    def __init__(self) -> None:
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())
        object.__setattr__(self, "_backward_hooks", OrderedDict())

    # ------------------------------------------------------------------ registration
    def _require_init(self):
        if "_parameters" not in self.__dict__:
            raise RuntimeError(
                f"{type(self).__name__}: call super().__init__() before assigning parameters, "
                "buffers or sub-modules"
            )

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, Parameter):
            self._require_init()
            self._forget(name, keep=self._parameters)
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._require_init()
            self._forget(name, keep=self._modules)
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

    def _forget(self, name, keep=None):
        """Unregister ``name`` everywhere but in ``keep``, the registry about to receive it:
        as in torch, a name assigned again keeps its place in the order."""
        for registry in (self._parameters, self._buffers, self._modules):
            if registry is not keep:
                registry.pop(name, None)
        self._non_persistent.discard(name)
        self.__dict__.pop(name, None)

    def __getattr__(self, name: str) -> Any:
        # only called when normal lookup fails: parameters, buffers and sub-modules
        state = self.__dict__
        for registry in _REGISTRIES:
            values = state.get(registry)
            if values is not None and name in values:
                return values[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        for registry in (self._parameters, self._buffers, self._modules):
            if name in registry:
                del registry[name]
                return
        object.__delattr__(self, name)

    def register_parameter(self, name: str, parameter: Parameter | None) -> None:
        """Register ``parameter`` (a Parameter or None) under ``name``."""
        self._register(self._parameters, name, parameter, Parameter, "register_parameter")

    def register_buffer(self, name: str, value: Tensor | None, persistent: bool = True) -> None:
        """Register state that is not learned (e.g. running statistics) under ``name``.

        ``value`` is a Tensor, an array, or None. Buffers appear in ``state_dict``
        unless ``persistent=False``, and follow ``to(dtype)`` when they are float.

        >>> layer = minidl.nn.Module()
        >>> layer.register_buffer("count", np.zeros((), dtype=np.int64))
        >>> layer.state_dict()["count"]
        array(0)
        """
        self._require_init()
        self._forget(name, keep=self._buffers)
        if value is not None and not isinstance(value, Tensor):
            value = Tensor._of(np.asarray(value))
        self._buffers[name] = value
        if not persistent:
            self._non_persistent.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        """Register ``module`` (or None) as a sub-module called ``name``."""
        self._register(self._modules, name, module, Module, "add_module")

    def _register(self, registry, name, value, kind, where):
        """Put ``value`` (a ``kind`` or None) in ``registry`` as ``name``, forgetting the old."""
        if value is not None and not isinstance(value, kind):
            raise TypeError(f"{where}: expected a {kind.__name__} or None for '{name}'")
        self._require_init()
        self._forget(name, keep=registry)
        registry[name] = value

    # ------------------------------------------------------------------ traversal
    def named_children(self) -> Iterator[tuple[str, Module]]:
        """(name, module) for each direct sub-module, in registration order."""
        for name, module in self._modules.items():
            if module is not None:
                yield name, module

    def children(self) -> Iterator[Module]:
        """The direct sub-modules, in registration order."""
        for _, module in self.named_children():
            yield module

    def named_modules(
        self, memo: set[Module] | None = None, prefix: str = "", remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Module]]:
        """(dotted name, module) for this module and every module below it, depth first.

        A module reachable by several paths is given once (under its first name)
        unless ``remove_duplicate=False``; ``memo`` is a set of modules to skip.
        Arguments and order are torch's.

        >>> model = minidl.nn.Sequential(minidl.nn.Dense(2, 2), minidl.nn.ReLU())
        >>> [name for name, _ in model.named_modules()]
        ['', '0', '1']
        """
        seen = set() if memo is None else {id(module) for module in memo}
        stack = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if remove_duplicate:
                if id(module) in seen:
                    continue
                seen.add(id(module))
            yield name, module
            children = [
                (f"{name}.{child_name}" if name else child_name, child)
                for child_name, child in module.named_children()
            ]
            stack.extend(reversed(children))

    def modules(self) -> Iterator[Module]:
        """This module and every module below it, each once."""
        for _, module in self.named_modules():
            yield module

    def _named_members(self, registry, prefix, recurse, remove_duplicate):
        seen = set()
        if recurse:
            modules = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate)
        else:
            modules = [(prefix, self)]
        for module_prefix, module in modules:
            for name, value in getattr(module, registry).items():
                if value is None or id(value) in seen:
                    continue
                if remove_duplicate:
                    seen.add(id(value))
                yield (f"{module_prefix}.{name}" if module_prefix else name), value

    def named_parameters(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Parameter]]:
        """(dotted name, Parameter) pairs, in a stable order; a shared parameter appears once.

        Arguments are torch's: ``prefix`` starts every name, ``recurse=False`` lists
        this module's own, ``remove_duplicate=False`` repeats a shared parameter.

        >>> [name for name, _ in minidl.nn.Dense(2, 3).named_parameters(prefix="fc")]
        ['fc.weight', 'fc.bias']
        """
        return self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        """The parameters, in the order of :meth:`named_parameters`."""
        for _, parameter in self.named_parameters(recurse=recurse):
            yield parameter

    def named_buffers(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Tensor]]:
        """(dotted name, buffer Tensor) pairs; arguments as :meth:`named_parameters`'."""
        return self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        """The buffers, in the order of :meth:`named_buffers`."""
        for _, buffer in self.named_buffers(recurse=recurse):
            yield buffer

    def apply(self, fn: Callable[[Module], Any]) -> Self:
        """Call ``fn(module)`` on every sub-module (children first) and on self; returns self."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # ------------------------------------------------------------------ modes and state
    def train(self, mode: bool = True) -> Self:
        """Set training mode (``mode=True``) or evaluation mode, recursively; returns self."""
        if not isinstance(mode, bool):
            raise ValueError(f"train: expected a bool, got {mode!r}")
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self) -> Self:
        """Set evaluation mode recursively (``train(False)``); returns self."""
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Self:
        """Set ``requires_grad`` on every parameter (``False`` freezes them); returns self."""
        for parameter in self.parameters():
            parameter.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of all parameters: to None (default) or to zeros."""
        for parameter in self.parameters():
            if set_to_none or parameter.grad is None:
                parameter.grad = None
            else:
                parameter.grad.numpy()[...] = 0

    def to(
        self,
        *args: Any,
        dtype: DTypeLike | None = None,
        device: Any = None,
        non_blocking: bool = False,
    ) -> Self:
        """Convert every float parameter and buffer (and gradient) to a dtype, and/or move
        the module to a device (only the CPU exists); returns self, as torch's ``Module.to``.

        ``to(minidl.float64)``, ``to("cpu")``, ``to(minidl.device("cpu"))``,
        ``to("cpu", minidl.float64)``, ``to(device=..., dtype=...)``, ``to(tensor)``
        (its dtype); ``non_blocking`` is accepted. Integer parameters and buffers
        (``num_batches_tracked``) keep their dtype.

        >>> minidl.nn.Dense(2, 3).to(np.float64).weight.dtype
        dtype('float64')
        >>> device = "cuda" if minidl.cuda.is_available() else "cpu"
        >>> minidl.nn.Dense(2, 3).to(device).weight.device
        device(type='cpu')
        """
        dtype = _to_dtype("Module.to", args, dtype, device)
        if dtype is None:
            return self
        try:
            dtype = np.dtype(dtype)
        except TypeError:
            raise TypeError(
                f"Module.to: expected a dtype or a device, got {type(dtype).__name__}"
            ) from None
        if dtype.kind != "f" or dtype not in (np.float32, np.float64):
            raise TypeError(f"Module.to: expected float32 or float64, got {dtype}")
        for tensor in [*self.parameters(), *self.buffers()]:
            if tensor.dtype.kind == "f":
                # a change of dtype, which assigning .data refuses (it keeps the dtype)
                tensor._data = tensor._data.astype(dtype)
                if tensor.grad is not None:
                    tensor.grad._data = tensor.grad._data.astype(dtype)
        return self

    def cpu(self) -> Self:
        """This module, which is on the CPU already (torch's ``Module.cpu``); returns self.

        >>> layer = minidl.nn.Dense(2, 3)
        >>> layer.cpu() is layer
        True
        """
        return self

    def cuda(self, device: Any = None) -> Self:
        """Refused: minidl computes on the CPU only (``minidl.cuda.is_available()`` is False).

        >>> minidl.nn.Dense(2, 3).cuda()  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        RuntimeError: Module.cuda: minidl computes on the CPU only (no CUDA); ...
        """
        raise RuntimeError(_NO_CUDA.format("Module.cuda"))

    def float(self) -> Self:
        """Convert float parameters and buffers to float32; returns self."""
        return self.to(np.float32)

    def double(self) -> Self:
        """Convert float parameters and buffers to float64 (for gradient checks); returns self."""
        return self.to(np.float64)

    def _state_targets(self):
        """Name -> Tensor of every parameter and persistent buffer, as torch's state_dict
        lists them: recursively through every path, so a module or parameter shared by
        two paths appears under both names."""
        targets = OrderedDict()
        for prefix, module in self.named_modules(remove_duplicate=False):
            dot = f"{prefix}." if prefix else ""
            for name, parameter in module._parameters.items():
                if parameter is not None:
                    targets[dot + name] = parameter
            for name, buffer in module._buffers.items():
                if buffer is not None and name not in module._non_persistent:
                    targets[dot + name] = buffer
        return targets

    def state_dict(self) -> OrderedDict[str, np.ndarray]:
        """Parameters and persistent buffers: an ordered dict of numpy arrays (shared, not copied).

        Keys, their order and layouts are PyTorch's (a module or parameter reachable
        by two paths is listed under both, as torch lists it); ``torch.from_numpy``
        on each value gives a state dict a torch model of the same architecture loads.

        >>> list(minidl.nn.BatchNorm(3).state_dict())
        ['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked']
        """
        return OrderedDict((key, tensor.numpy()) for key, tensor in self._state_targets().items())

    def load_state_dict(self, state: Mapping[str, Any], strict: bool = True) -> Any:
        """Copy ``state`` (name -> array, Tensor or torch tensor) into the parameters and buffers.

        Values are copied into the existing arrays, converted to their dtype
        (float to float, integer to integer). Any shape or dtype mismatch raises
        :class:`StateDictError` (a RuntimeError, as torch's, and a ValueError)
        listing all of them; with ``strict``, so do missing and unexpected keys.
        Returns ``(missing_keys, unexpected_keys)``, as torch's: with
        ``strict=False`` the keys that were not loaded.

        >>> a, b = minidl.nn.Dense(2, 3), minidl.nn.Dense(2, 3)
        >>> b.load_state_dict(a.state_dict())
        IncompatibleKeys(missing_keys=[], unexpected_keys=[])
        >>> b.load_state_dict({"weight": a.weight}, strict=False).missing_keys
        ['bias']
        """
        targets = self._state_targets()
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
            raise StateDictError(
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
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement forward()")

    def register_forward_hook(self, hook: Callable[..., Any]) -> RemovableHandle:
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

    def register_forward_pre_hook(self, hook: Callable[..., Any]) -> RemovableHandle:
        """Call ``hook(module, args)`` before every forward; returns a removable handle.

        ``args`` is the tuple of positional arguments; a hook that returns something
        other than None replaces them (a non-tuple is wrapped in a 1-tuple), as in torch.

        >>> layer = minidl.nn.Identity()
        >>> handle = layer.register_forward_pre_hook(lambda m, args: args[0] * 2)
        >>> layer(minidl.ones(2))
        tensor([2., 2.])
        """
        handle = RemovableHandle(self._forward_pre_hooks)
        self._forward_pre_hooks[handle.id] = hook
        return handle

    def register_full_backward_hook(self, hook: Callable[..., Any]) -> RemovableHandle:
        """Call ``hook(module, grad_input, grad_output)`` once the gradients with respect to
        the module's positional inputs are computed; returns a removable handle.

        ``grad_input`` and ``grad_output`` are tuples with one entry per positional
        input and per output (a Tensor, or None for a non-Tensor, an input that needs
        no gradient, or a tensor the backward did not reach). A hook may return a
        tuple of the same length to replace ``grad_input``. As torch's, the hook is
        set up through autograd Functions around the inputs and outputs: if no input
        requires grad it fires (with a warning) when ``grad_output`` is known, with
        ``grad_input`` all None, and must then return None.

        >>> layer = minidl.nn.Dense(3, 2)
        >>> seen = []
        >>> handle = layer.register_full_backward_hook(
        ...     lambda m, gin, gout: seen.append((gin[0].shape, gout[0].shape)))
        >>> layer(minidl.ones(4, 3, requires_grad=True)).sum().backward()
        >>> seen
        [((4, 3), (4, 2))]
        """
        handle = RemovableHandle(self._backward_hooks)
        self._backward_hooks[handle.id] = hook
        return handle

    def _has_call_hooks(self):
        """Whether a call runs hooks around ``forward`` (forward-pre, forward or backward)."""
        return bool(self._forward_pre_hooks or self._backward_hooks or self._forward_hooks)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            if not self._has_call_hooks():
                return self.forward(*args, **kwargs)  # the common case, kept short
            return self._call_with_hooks(args, kwargs)
        except AttributeError as error:
            _refuse_non_tensor(self, args, error)
            raise

    def _call_with_hooks(self, args, kwargs):
        for hook in list(self._forward_pre_hooks.values()):
            replaced = hook(self, args)
            if replaced is not None:
                args = replaced if isinstance(replaced, tuple) else (replaced,)
        backward_hook = None
        if self._backward_hooks:
            backward_hook = _ModuleBackwardHook(self, list(self._backward_hooks.values()), args)
            args = backward_hook.inputs.wrap(args)
        output = self.forward(*args, **kwargs)
        for hook in list(self._forward_hooks.values()):
            replaced = hook(self, args, output)
            if replaced is not None:
                output = replaced
        if backward_hook is not None:
            output = backward_hook.wrap_output(output)
        return output

    # ------------------------------------------------------------------ printing
    def extra_repr(self) -> str:
        """The text inside this module's parentheses in its repr (layers override it)."""
        return ""

    def __repr__(self) -> str:
        lines = []
        extra = self.extra_repr()
        if extra:
            lines.extend(extra.split("\n"))
        for name, module in self._modules.items():
            text = repr(module).replace("\n", "\n  ")
            lines.append(f"({name}): {text}")
        if not lines:
            return f"{type(self).__name__}()"
        if len(lines) == 1 and not self._modules:
            return f"{type(self).__name__}({extra})"
        return f"{type(self).__name__}(\n  " + "\n  ".join(lines) + "\n)"

    def summary(self, input_shape: Sequence[int], dtype: DTypeLike = np.float32) -> str:
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


def _index(index, length, where):
    """``index`` (an int, negative counting from the end) as a position in [0, length)."""
    if not isinstance(index, (int, np.integer)) or isinstance(index, bool):
        raise TypeError(f"{where}: indices must be integers or slices, not {type(index).__name__}")
    position = int(index) + length if index < 0 else int(index)
    if not 0 <= position < length:
        raise IndexError(f"{where}: index {index} is out of range")
    return position


class ModuleList(Module):
    """A list of sub-modules, registered under the names "0", "1", ... (torch's ``nn.ModuleList``).

    Supports ``len``, iteration, indexing (an int gives a module, a slice a new
    ModuleList), assignment and deletion by index (the names are renumbered),
    ``append``, ``extend``, ``insert`` and ``+=``. It has no ``forward``: call
    its modules in yours.

    >>> layers = minidl.nn.ModuleList([minidl.nn.Dense(4, 4) for _ in range(2)])
    >>> layers.append(minidl.nn.ReLU())
    ModuleList(
      (0): Dense(in_features=4, out_features=4, bias=True)
      (1): Dense(in_features=4, out_features=4, bias=True)
      (2): ReLU()
    )
    >>> list(layers.state_dict())
    ['0.weight', '0.bias', '1.weight', '1.bias']
    """

    def __init__(self, modules: Iterable[Module] | None = None) -> None:
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def _check(self, module, where):
        if not isinstance(module, Module):
            raise TypeError(f"ModuleList.{where}: expected a Module, got {type(module).__name__}")
        return module

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return type(self)(list(self._modules.values())[index])
        return list(self._modules.values())[_index(index, len(self), "ModuleList")]

    def __setitem__(self, index: int, module: Module) -> None:
        position = _index(index, len(self), "ModuleList")
        self._modules[str(position)] = self._check(module, "__setitem__")

    def __delitem__(self, index: int | slice) -> None:
        modules = list(self._modules.values())
        if isinstance(index, slice):
            del modules[index]
        else:
            del modules[_index(index, len(self), "ModuleList")]
        self._renumber(modules)

    def _renumber(self, modules):
        self._modules.clear()
        for position, module in enumerate(modules):
            self._modules[str(position)] = module

    def __iadd__(self, modules: Iterable[Module]) -> Self:
        return self.extend(modules)

    def append(self, module: Module) -> Self:
        """Add ``module`` at the end; returns self."""
        self._modules[str(len(self))] = self._check(module, "append")
        return self

    def extend(self, modules: Iterable[Module]) -> Self:
        """Append each module of the iterable ``modules``; returns self."""
        if isinstance(modules, Module) and not isinstance(modules, ModuleList):
            raise TypeError(
                "ModuleList.extend should be called with an iterable, but got "
                f"{type(modules).__name__}"
            )
        for module in list(modules):
            self.append(module)
        return self

    def insert(self, index: int, module: Module) -> None:
        """Insert ``module`` before position ``index`` (names are renumbered)."""
        modules = list(self._modules.values())
        modules.insert(index, self._check(module, "insert"))
        self._renumber(modules)


class ModuleDict(Module):
    """An ordered dict of named sub-modules (torch's ``nn.ModuleDict``).

    Built from a dict, an OrderedDict or (name, module) pairs; supports ``[]``,
    ``in``, ``len``, iteration over the names, ``keys``, ``values``, ``items``,
    ``update``, ``pop`` and ``clear``. It has no ``forward``.

    >>> heads = minidl.nn.ModuleDict({"a": minidl.nn.Dense(4, 2), "b": minidl.nn.Dense(4, 3)})
    >>> heads["b"](minidl.ones(1, 4)).shape, list(heads)
    ((1, 3), ['a', 'b'])
    """

    def __init__(
        self, modules: Mapping[str, Module] | Iterable[tuple[str, Module]] | None = None
    ) -> None:
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key: str) -> Module:
        return self._modules[key]

    def __setitem__(self, key: str, module: Module) -> None:
        if not isinstance(key, str):
            raise TypeError(f"ModuleDict: keys must be strings, got {type(key).__name__}")
        self.add_module(key, module)

    def __delitem__(self, key: str) -> None:
        del self._modules[key]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[str]:
        return iter(self._modules)

    def __contains__(self, key: object) -> bool:
        return key in self._modules

    def keys(self) -> Any:
        """The names, in insertion order."""
        return self._modules.keys()

    def values(self) -> Any:
        """The modules, in insertion order."""
        return self._modules.values()

    def items(self) -> Any:
        """(name, module) pairs, in insertion order."""
        return self._modules.items()

    def clear(self) -> None:
        """Remove every module."""
        self._modules.clear()

    def pop(self, key: str) -> Module:
        """Remove the module called ``key`` and return it."""
        module = self._modules[key]
        del self._modules[key]
        return module

    def update(self, modules: Mapping[str, Module] | Iterable[tuple[str, Module]]) -> None:
        """Add (or replace) modules from a mapping or from (name, module) pairs."""
        items = modules.items() if hasattr(modules, "items") else modules
        for entry in items:
            if not isinstance(entry, (tuple, list)) or len(entry) != 2:
                raise TypeError(
                    "ModuleDict.update: expected a mapping or (name, module) pairs, got an "
                    f"element {entry!r}"
                )
            self[entry[0]] = entry[1]


class ParameterList(Module):
    """A list of Parameters, registered under the names "0", "1", ... (torch's
    ``nn.ParameterList``); a Tensor or array given is made a Parameter.

    Supports ``len``, iteration, indexing, assignment by index, ``append``,
    ``extend`` and ``+=``.

    >>> weights = minidl.nn.ParameterList([minidl.zeros(2), minidl.zeros(3)])
    >>> [name for name, _ in weights.named_parameters()], type(weights[1]).__name__
    (['0', '1'], 'Parameter')
    """

    def __init__(self, values: Iterable[Any] | None = None) -> None:
        super().__init__()
        if values is not None:
            self.extend(values)

    @staticmethod
    def _as_parameter(value):
        return value if isinstance(value, Parameter) else Parameter(value)

    def __len__(self) -> int:
        return len(self._parameters)

    def __iter__(self) -> Iterator[Parameter]:
        return iter(self._parameters.values())

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return type(self)(list(self._parameters.values())[index])
        return list(self._parameters.values())[_index(index, len(self), "ParameterList")]

    def __setitem__(self, index: int, value: Any) -> None:
        position = _index(index, len(self), "ParameterList")
        self._parameters[str(position)] = self._as_parameter(value)

    def __iadd__(self, values: Iterable[Any]) -> Self:
        return self.extend(values)

    def append(self, value: Any) -> Self:
        """Add ``value`` (made a Parameter) at the end; returns self."""
        self._parameters[str(len(self))] = self._as_parameter(value)
        return self

    def extend(self, values: Iterable[Any]) -> Self:
        """Append each of ``values``; returns self."""
        if isinstance(values, Tensor):
            raise TypeError("ParameterList.extend should be called with an iterable, got a Tensor")
        for value in list(values):
            self.append(value)
        return self

    def extra_repr(self) -> str:
        return "\n".join(
            f"({name}): Parameter containing: [{p.dtype} of size {'x'.join(map(str, p.shape))}]"
            for name, p in self._parameters.items()
        )
