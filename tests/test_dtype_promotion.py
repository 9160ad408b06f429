"""Type promotion against PyTorch: the dtype of every mixed-dtype result.

Operands are 1-d and 0-d tensors of {bool, uint8, int32, int64, float32, float64}
and the Python scalars True, 2 and 2.5. The expected dtype of each pair is torch's,
computed at run time (nothing hard-coded): where torch raises (``-`` on bools),
minidl must raise too. torch's rules differ from numpy's: a 0-d tensor or a Python
scalar only decides the result's dtype when it is of a higher category
(bool < integer < float) than the dimensioned tensors, and int / int is a float.
"""

import numpy as np
import pytest

import minidl

torch = pytest.importorskip("torch")

DTYPES = ("bool", "uint8", "int32", "int64", "float32", "float64")
ERRORS = (RuntimeError, TypeError, ValueError)


def _dtype_name(x):
    if isinstance(x, torch.Tensor):
        return str(x.dtype).replace("torch.", "")
    return str(np.dtype(x.dtype))


def _values(dtype, ndim):
    if dtype == "bool":
        data = [True, False, True]
    else:
        data = [1, 2, 3]
    array = np.array(data, dtype=dtype)
    return array if ndim == 1 else array[1].copy().reshape(())


class Operand:
    """One operand, made in either library: a tensor (from a numpy array) or a Python scalar."""

    def __init__(self, label, array=None, scalar=None):
        self.label, self.array, self.scalar = label, array, scalar

    def make(self, lib):
        if self.array is None:
            return self.scalar
        return lib.tensor(self.array)

    def __repr__(self):
        return self.label


TENSORS = [
    Operand(f"{d}-{'1d' if n else '0d'}", array=_values(d, n)) for d in DTYPES for n in (1, 0)
]
SCALARS = [Operand("True", scalar=True), Operand("2", scalar=2), Operand("2.5", scalar=2.5)]

BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "truediv": lambda a, b: a / b,
    "eq": lambda a, b: a == b,
    "lt": lambda a, b: a < b,
    "ge": lambda a, b: a >= b,
}

PAIRS = [(a, b) for a in TENSORS for b in TENSORS + SCALARS] + [
    (s, t)
    for s in SCALARS
    for t in TENSORS  # reflected: 2.5 - tensor
]


def _compare(what, expected, make_got):
    """torch's ``expected`` (a tensor, or the exception it raised) against minidl's result."""
    if isinstance(expected, Exception):
        with pytest.raises(ERRORS):
            got = make_got()
            pytest.fail(f"{what}: torch raises ({expected}), minidl gives {_dtype_name(got)}")
        return
    got = make_got()
    assert isinstance(got, minidl.Tensor), f"{what}: got {type(got).__name__}"
    assert _dtype_name(got) == _dtype_name(expected), (
        f"{what}: dtype {_dtype_name(got)} but torch gives {_dtype_name(expected)}"
    )
    g, e = np.asarray(got.data), expected.numpy()
    assert g.shape == e.shape, f"{what}: shape {g.shape} but torch gives {e.shape}"
    if e.dtype.kind == "f":
        assert np.allclose(g, e, rtol=1e-6, equal_nan=True), f"{what}: {g} but torch gives {e}"
    else:
        assert np.array_equal(g, e), f"{what}: {g} but torch gives {e}"


def _torch_result(fn):
    try:
        with np.errstate(all="ignore"):
            return fn()
    except RuntimeError as error:  # torch's refusals: the pair is one minidl must refuse too
        return error


@pytest.mark.parametrize("op", sorted(BINARY))
@pytest.mark.parametrize("a, b", PAIRS, ids=[f"{a}-{b}" for a, b in PAIRS])
def test_binary_promotion(op, a, b):
    fn = BINARY[op]
    expected = _torch_result(lambda: fn(a.make(torch), b.make(torch)))
    if not isinstance(expected, Exception) and op in ("add", "mul", "truediv", "sub"):
        if a.array is not None and b.array is not None:  # the table agrees with result_type
            rt = torch.result_type(a.make(torch), b.make(torch))
            if op != "truediv":
                assert expected.dtype == rt
    with np.errstate(all="ignore"):
        _compare(f"{a} {op} {b}", expected, lambda: fn(a.make(minidl), b.make(minidl)))


WHERE_OPERANDS = [t for t in TENSORS] + SCALARS
WHERE_PAIRS = [(a, b) for a in WHERE_OPERANDS for b in WHERE_OPERANDS]


@pytest.mark.parametrize("a, b", WHERE_PAIRS, ids=[f"{a}-{b}" for a, b in WHERE_PAIRS])
def test_where_promotion(a, b):
    condition = np.array([True, False, False])
    expected = _torch_result(
        lambda: torch.where(torch.tensor(condition), a.make(torch), b.make(torch))
    )
    _compare(
        f"where(cond, {a}, {b})",
        expected,
        lambda: minidl.where(minidl.tensor(condition), a.make(minidl), b.make(minidl)),
    )


FLOAT_FUNCTIONS = ("exp", "sqrt", "sigmoid", "log", "sin")
INT_LIKE = ("bool", "uint8", "int32", "int64")


@pytest.mark.parametrize("name", FLOAT_FUNCTIONS)
@pytest.mark.parametrize("dtype", (*INT_LIKE, "float64"))
def test_float_functions_of_ints_give_default_float(name, dtype):
    array = _values(dtype, 1)
    expected = getattr(torch.tensor(array), name)()
    with np.errstate(all="ignore"):
        _compare(f"{name}({dtype})", expected, lambda: getattr(minidl.tensor(array), name)())


def _with_default_float64(fn):
    """fn(lib) under float64 as the default dtype in both libraries, restored afterwards."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        expected = _torch_result(lambda: fn(torch))
    finally:
        torch.set_default_dtype(old)
    assert minidl.get_default_dtype() == minidl.float32
    minidl.set_default_dtype(minidl.float64)
    try:
        with np.errstate(all="ignore"):
            _compare(f"{fn.__doc__} with default float64", expected, lambda: fn(minidl))
    finally:
        minidl.set_default_dtype(minidl.float32)
    assert minidl.get_default_dtype() == minidl.float32


def _default_cases():
    cases = []
    for dtype in INT_LIKE:
        array = _values(dtype, 1)
        for name in FLOAT_FUNCTIONS:
            cases.append((f"{name}({dtype})", lambda L, a=array, n=name: getattr(L.tensor(a), n)()))
        cases.append((f"{dtype} * 2.5", lambda L, a=array: L.tensor(a) * 2.5))
        cases.append((f"{dtype} / {dtype}", lambda L, a=array: L.tensor(a) / L.tensor(a)))
    cases += [
        ("tensor(2.5)", lambda L: L.tensor(2.5)),
        ("tensor([1.0, 2])", lambda L: L.tensor([1.0, 2])),
        ("float32 * 2.5", lambda L: L.tensor(np.ones(2, np.float32)) * 2.5),
        (
            "float32 + float64-0d",
            lambda L: L.tensor(np.ones(2, np.float32)) + L.tensor(np.float64(1)),
        ),
        ("where(cond, 1, 2.5)", lambda L: L.where(L.tensor([True, False]), 1, 2.5)),
        ("zeros(2)", lambda L: L.zeros(2)),
        ("arange(0, 1, 0.5)", lambda L: L.arange(0, 1, 0.5)),
    ]
    return cases


DEFAULT_CASES = _default_cases()


@pytest.mark.parametrize("label, fn", DEFAULT_CASES, ids=[c[0] for c in DEFAULT_CASES])
def test_default_dtype_float64(label, fn):
    def run(lib):
        return fn(lib)

    run.__doc__ = label
    _with_default_float64(run)


def test_set_default_dtype_roundtrip():
    try:
        minidl.set_default_dtype(minidl.float64)
        assert minidl.tensor(1.5).dtype == np.float64
    finally:
        minidl.set_default_dtype(minidl.float32)
    assert minidl.tensor(1.5).dtype == np.float32
    assert minidl.get_default_dtype() == minidl.float32


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "name, fn",
    [
        pytest.param(*case, id=case[0])
        for case in [
            ("sum", lambda x: x.sum()),
            ("sum-dim", lambda x: x.sum(dim=0)),
            ("sum-keepdim", lambda x: x.sum(dim=-1, keepdim=True)),
            ("prod", lambda x: x.prod()),
            ("cumsum", lambda x: x.cumsum(dim=0)),
            ("mean", lambda x: x.mean()),  # torch refuses ints: "could not infer output dtype"
            ("amax", lambda x: x.amax(dim=0)),
            ("argmax", lambda x: x.argmax()),
        ]
    ],
)
def test_reduction_dtype(name, fn, dtype):
    """sum/prod/cumsum of bool and integers give int64, as in torch; amax keeps the dtype."""
    array = _values(dtype, 1)
    expected = _torch_result(lambda: fn(torch.tensor(array)))
    _compare(f"{name}({dtype})", expected, lambda: fn(minidl.tensor(array)))


@pytest.mark.parametrize(
    "label, target, value",
    [
        ("int64 += 2", "int64", 2),
        ("int64 += 2.5", "int64", 2.5),  # torch: result type Float can't be cast to Long
        ("int32 += int64", "int32", np.array([1, 2, 3], np.int64)),
        ("float32 += float64", "float32", np.array([1.5, 2.5, 3.5], np.float64)),
        ("float32 += int64", "float32", np.array([1, 2, 3], np.int64)),
        ("uint8 += True", "uint8", True),
        ("bool += True", "bool", True),
        ("bool += 2", "bool", 2),
        ("int64 *= 1.5", "int64", 1.5),
    ],
)
def test_inplace_keeps_dtype(label, target, value):
    """In-place arithmetic keeps self's dtype; a float result into an int tensor is refused."""
    array = _values(target, 1)

    def run(lib):
        x = lib.tensor(array)
        v = lib.tensor(value) if isinstance(value, np.ndarray) else value
        if "*=" in label:
            x *= v
        else:
            x += v
        return x

    expected = _torch_result(lambda: run(torch))
    _compare(label, expected, lambda: run(minidl))


def test_dtype_constants_are_numpy_dtypes():
    for name in DTYPES:
        dtype = getattr(minidl, name)
        assert np.dtype(dtype) == np.dtype(name), f"minidl.{name} is {dtype!r}"
        t = minidl.tensor(np.zeros(2), dtype=dtype)
        assert _dtype_name(t) == name
        assert _dtype_name(torch.tensor(np.zeros(2), dtype=getattr(torch, name))) == name


def test_uint8_over_255_is_float32():
    expected = torch.tensor(np.zeros(3, np.uint8)) / 255
    got = minidl.tensor(np.zeros(3, np.uint8)) / 255
    assert _dtype_name(got) == _dtype_name(expected) == "float32"


# Layers with parameters compute in their parameters' dtype: torch refuses an input of
# another dtype (float64 into a float32 Linear, int64 into a float32 Conv2d) with a
# RuntimeError instead of promoting; minidl must refuse where torch does, naming the layer,
# and give torch's dtype where torch accepts.
_LAYERS = {
    "Linear": (lambda m: m.Linear(3, 2), (4, 3)),
    "Conv1d": (lambda m: m.Conv1d(2, 3, 3), (2, 2, 6)),
    "Conv2d": (lambda m: m.Conv2d(2, 3, 3), (2, 2, 5, 5)),
    "ConvTranspose2d": (lambda m: m.ConvTranspose2d(2, 3, 3), (2, 2, 4, 4)),
    "BatchNorm1d": (lambda m: m.BatchNorm1d(3), (4, 3)),
    "BatchNorm2d": (lambda m: m.BatchNorm2d(2), (3, 2, 4, 4)),
    "LayerNorm": (lambda m: m.LayerNorm(3), (4, 3)),
    "GroupNorm": (lambda m: m.GroupNorm(1, 2), (3, 2, 4)),
    "InstanceNorm1d": (lambda m: m.InstanceNorm1d(2, affine=True), (3, 2, 5)),
    "PReLU": (lambda m: m.PReLU(), (4, 3)),
}


@pytest.mark.parametrize("name", sorted(_LAYERS))
@pytest.mark.parametrize("module_dtype", ["float32", "float64"])
@pytest.mark.parametrize("input_dtype", ["float32", "float64", "int64"])
@pytest.mark.parametrize("training", [True, False])
def test_layers_refuse_mixed_dtypes_as_torch_does(name, module_dtype, input_dtype, training):
    make, shape = _LAYERS[name]
    data = (np.arange(np.prod(shape)).reshape(shape) % 5).astype(input_dtype)
    theirs = make(torch.nn).to(getattr(torch, module_dtype)).train(training)
    expected = _torch_result(lambda: theirs(torch.from_numpy(data.copy())))
    ours = make(minidl.nn).to(getattr(minidl, module_dtype)).train(training)
    if isinstance(expected, Exception):
        with pytest.raises(RuntimeError, match=r"expected the input and \w+ to have the same"):
            ours(minidl.from_numpy(data.copy()))
    else:  # the weights differ (each library draws its own): the dtypes must not
        got = ours(minidl.from_numpy(data))
        assert _dtype_name(got) == _dtype_name(expected), f"{name} on {input_dtype}"


def test_functionals_refuse_mixed_dtypes_naming_themselves():
    F = minidl.nn.functional
    x64 = minidl.ones(2, 3, 4, dtype="float64")
    w32 = minidl.ones(3)
    calls = {
        "linear": lambda: F.linear(x64, minidl.ones(2, 4)),
        "conv1d": lambda: F.conv1d(x64, minidl.ones(2, 3, 1)),
        "batch_norm": lambda: F.batch_norm(x64, None, None, w32, None, training=True),
        "layer_norm": lambda: F.layer_norm(x64, (4,), minidl.ones(4)),
        "group_norm": lambda: F.group_norm(x64, 1, w32),
        "instance_norm": lambda: F.instance_norm(x64, weight=w32),
        "prelu": lambda: F.prelu(x64, minidl.ones(1)),
    }
    for name, call in calls.items():
        with pytest.raises(RuntimeError, match=rf"^{name}: expected the input and \w+ to have"):
            call()
