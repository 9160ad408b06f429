"""minidl against PyTorch, op by op: forward values, result dtypes and gradients.

Every op in the tables below is written once, as ``fn(L, *inputs)`` where ``L`` is
the library module (``minidl`` or ``torch``): minidl spells these ops as torch
does, so one callable drives both. The inputs are built from the same numpy
arrays in both libraries; float inputs require grad, and the gradient check runs
``backward`` on a weighted sum of every float output (fixed random weights) and
compares ``.grad`` of every float input. Each op runs in float32 and float64.

The torch side of every test runs first, so a failure raised inside minidl is the
feature missing or broken in minidl, never an invalid test.
"""

import math
import zlib

import numpy as np
import pytest

import minidl

torch = pytest.importorskip("torch")

FLOATS = ("float32", "float64")
TOLERANCES = {"float32": (1e-6, 1e-6), "float64": (1e-10, 1e-12)}  # (rtol, atol)


# --------------------------------------------------------------------------- helpers
def _dtype_name(x):
    """'float32', 'int64', 'bool', ... for a minidl tensor, a torch tensor or a numpy array."""
    if isinstance(x, torch.Tensor):
        return str(x.dtype).replace("torch.", "")
    return str(np.dtype(x.dtype))


def _numpy(x):
    """The values of a minidl or torch tensor (or a number) as a numpy array."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    if isinstance(x, minidl.Tensor):
        return np.asarray(x.data)
    return np.asarray(x)


def _is_float(x):
    return _dtype_name(x).startswith("float")


def _tolerance(dtype, scale=1.0):
    rtol, atol = TOLERANCES[str(np.dtype(dtype))]
    return rtol * scale, atol * scale


def assert_same(what, got, expected, rtol=None, atol=None, dtype=True):
    """minidl's ``got`` matches torch's ``expected``: shape, dtype name, values (NaNs in place).

    Float values compare with ``rtol``/``atol`` (from the dtype unless given); every
    other dtype compares exactly. ``what`` names the op, dtype and quantity.
    """
    assert isinstance(got, minidl.Tensor), (
        f"{what}: expected a minidl.Tensor, got {type(got).__name__}"
    )
    g, e = _numpy(got), _numpy(expected)
    assert tuple(g.shape) == tuple(e.shape), (
        f"{what}: shape {tuple(g.shape)} but torch gives {tuple(e.shape)}"
    )
    if dtype:
        assert _dtype_name(got) == _dtype_name(expected), (
            f"{what}: dtype {_dtype_name(got)} but torch gives {_dtype_name(expected)}"
        )
    if e.dtype.kind == "f" and g.dtype.kind in "fiub":
        if rtol is None:
            rtol, atol = _tolerance(e.dtype)
        g64, e64 = g.astype(np.float64), e.astype(np.float64)
        nan_g, nan_e = np.isnan(g64), np.isnan(e64)
        assert np.array_equal(nan_g, nan_e), (
            f"{what}: NaN at {np.argwhere(nan_g).tolist()} but torch has NaN at "
            f"{np.argwhere(nan_e).tolist()}\n got {g}\n torch {e}"
        )
        ok = np.isclose(g64, e64, rtol=rtol, atol=atol, equal_nan=True)
        if not ok.all():
            bad = np.argwhere(~ok)[:5].tolist()
            with np.errstate(invalid="ignore"):
                worst = np.nanmax(np.abs(g64 - e64)[~ok]) if (~ok).any() else 0.0
            raise AssertionError(
                f"{what}: values differ (rtol={rtol}, atol={atol}) at {bad}, "
                f"max |diff| {worst:.3g}\n got {g}\n torch {e}"
            )
    else:
        assert np.array_equal(g, e), f"{what}: values differ\n got {g}\n torch {e}"


def _outputs(out):
    """An op's result as a list of tensors (tuples, named pairs and lists flattened)."""
    if isinstance(out, (tuple, list)):
        return list(out)
    return [out]


def _seed(*parts):
    return zlib.crc32("/".join(map(str, parts)).encode())


# Input specs: each builds a numpy array from (rng, float dtype).
def R(*shape):
    """Standard normal."""
    return lambda rng, dt: rng.standard_normal(shape).astype(dt)


def P(*shape):
    """Positive, in [0.5, 2)."""
    return lambda rng, dt: rng.uniform(0.5, 2.0, shape).astype(dt)


def U(*shape):
    """In (-0.9, 0.9)."""
    return lambda rng, dt: rng.uniform(-0.9, 0.9, shape).astype(dt)


def A(*shape):
    """Away from zero: |x| in [0.5, 2), random sign (divisors)."""

    def make(rng, dt):
        magnitude = rng.uniform(0.5, 2.0, shape)
        return (magnitude * rng.choice([-1.0, 1.0], shape)).astype(dt)

    return make


def S(*shape):
    """Small integers -2..2 stored as floats (so equality and ties occur)."""
    return lambda rng, dt: rng.integers(-2, 3, shape).astype(dt)


def I(low, high, *shape):  # noqa: E743 - the int-input spec, read next to R, P, U
    """Integers in [low, high), int64."""
    return lambda rng, dt: rng.integers(low, high, shape).astype(np.int64)


def B(*shape):
    """Random booleans."""
    return lambda rng, dt: rng.random(shape) < 0.5


def C(values, dtype=None):
    """A constant array; ``dtype`` None means the test's float dtype."""
    return lambda rng, dt: np.array(values, dtype=dt if dtype is None else dtype)


def make_inputs(specs, dtype, seed, requires_grad=True):
    """(minidl inputs, torch inputs, arrays): float inputs require grad when asked."""
    rng = np.random.default_rng(seed)
    arrays = [spec(rng, np.dtype(dtype)) for spec in specs]
    m_inputs, t_inputs = [], []
    for array in arrays:
        grad = requires_grad and array.dtype.kind == "f"
        t_inputs.append(torch.tensor(array, requires_grad=grad))
        m_inputs.append(minidl.tensor(array, requires_grad=grad))
    return m_inputs, t_inputs, arrays


def _weighted_sum(lib, outputs, weights):
    loss = None
    for out, weight in zip(outputs, weights):
        term = (out * lib.tensor(weight)).sum()
        loss = term if loss is None else loss + term
    return loss


def check_op(name, fn, specs, dtype, grad=True, scale=1.0):
    """Run ``fn`` in torch then in minidl on the same inputs; compare results and gradients."""
    what = f"{name} [{dtype}]"
    seed = _seed(name, dtype)
    m_in, t_in, _ = make_inputs(specs, dtype, seed, requires_grad=grad)
    t_out = _outputs(fn(torch, *t_in))  # torch first: its failure is the test's, not minidl's
    m_out = _outputs(fn(minidl, *m_in))
    assert len(m_out) == len(t_out), f"{what}: {len(m_out)} outputs, torch gives {len(t_out)}"
    rtol, atol = _tolerance(dtype, scale)
    for i, (m, t) in enumerate(zip(m_out, t_out)):
        assert_same(f"{what} output {i}", m, t, rtol, atol)
    if not grad:
        return
    rng = np.random.default_rng(seed + 1)
    differentiable = [i for i, t in enumerate(t_out) if t.requires_grad]
    for i in range(len(t_out)):
        if i not in differentiable and _is_float(t_out[i]) and any(x.requires_grad for x in t_in):
            assert not m_out[i].requires_grad, f"{what}: output {i} requires grad, torch's not"
    if not differentiable:
        return
    weights = [
        np.asarray(rng.standard_normal(tuple(t_out[i].shape))).astype(
            t_out[i].detach().numpy().dtype
        )
        for i in differentiable
    ]
    _weighted_sum(torch, [t_out[i] for i in differentiable], weights).backward()
    for i in differentiable:
        assert m_out[i].requires_grad, f"{what}: output {i} does not require grad"
    _weighted_sum(minidl, [m_out[i] for i in differentiable], weights).backward()
    for k, (m, t) in enumerate(zip(m_in, t_in)):
        if not t.requires_grad:
            continue
        if t.grad is None:  # torch: this input does not reach the outputs
            assert m.grad is None or not np.any(_numpy(m.grad)), (
                f"{what}: input {k} gets a nonzero gradient, torch gives none"
            )
            continue
        assert m.grad is not None, f"{what}: input {k} has no .grad after backward"
        assert_same(f"{what} grad of input {k}", m.grad, t.grad, rtol, atol)


def _params(table, dtypes=FLOATS):
    """pytest params (name, fn, specs, options, dtype) from a table of (name, fn, specs[, opts])."""
    params = []
    for row in table:
        name, fn, specs = row[:3]
        options = row[3] if len(row) > 3 else {}
        for dt in options.get("dtypes", dtypes):
            params.append(pytest.param(name, fn, specs, options, dt, id=f"{name}-{dt}"))
    return params


def _run(name, fn, specs, options, dtype):
    check_op(name, fn, specs, dtype, grad=options.get("grad", True), scale=options.get("scale", 1))


# --------------------------------------------------------------------------- element-wise
# name -> input spec (the domain where the function is defined and smooth)
UNARY = {
    "abs": R,
    "sign": R,
    "floor": R,
    "ceil": R,
    "round": R,
    "trunc": R,
    "exp": R,
    "expm1": R,
    "log": P,
    "log2": P,
    "log10": P,
    "log1p": U,
    "sqrt": P,
    "rsqrt": P,
    "sin": R,
    "cos": R,
    "tanh": R,
    "sigmoid": R,
    "relu": R,
    "erf": R,
}

UNARY_TABLE = []
for _name, _domain in UNARY.items():
    _fn = (lambda n: lambda L, x: getattr(x, n)())(_name)
    UNARY_TABLE += [
        (f"{_name}", _fn, [_domain(3, 4)]),
        (f"{_name}-0d", _fn, [_domain()]),
        (f"{_name}-empty", _fn, [_domain(0, 3)]),
    ]
UNARY_TABLE += [
    ("neg-operator", lambda L, x: -x, [R(3, 4)]),
    ("abs-builtin", lambda L, x: abs(x), [R(3, 4)]),
    ("exp-function", lambda L, x: L.exp(x), [R(3, 4)]),
    ("sigmoid-large", lambda L, x: x.sigmoid(), [C([-100.0, -30.0, 0.0, 30.0, 100.0])]),
    ("clamp", lambda L, x: x.clamp(-0.5, 0.5), [R(3, 4)]),
    ("clamp-min", lambda L, x: x.clamp(min=0.1), [R(3, 4)]),
]


@pytest.mark.parametrize("name, fn, specs, options, dtype", _params(UNARY_TABLE))
def test_unary(name, fn, specs, options, dtype):
    _run(name, fn, specs, options, dtype)


SPECIAL = [float("nan"), float("inf"), -float("inf"), 0.0, -0.0, 1.0, -1.0, 0.5, -2.5, 1e-30]


@pytest.mark.parametrize("name", sorted(UNARY))
@pytest.mark.parametrize("dtype", FLOATS)
def test_unary_nan_inf(name, dtype):
    """Forward on NaN, +-inf, +-0 and values off the domain: NaNs must land where torch's do."""
    array = np.array(SPECIAL, dtype=dtype)
    with np.errstate(all="ignore"):
        expected = getattr(torch.tensor(array), name)()
        got = getattr(minidl.tensor(array), name)()
    assert_same(f"{name} [{dtype}] on {SPECIAL}", got, expected)


# Broadcasting shape pairs for binary ops.
PAIRS = [
    ((3, 4), (3, 4)),
    ((3, 4), (4,)),
    ((2, 1, 4), (3, 1)),
    ((), (3, 4)),
    ((3, 4), ()),
    ((0, 3), (3,)),
]

BINARY = {
    # name: (fn, spec of a, spec of b, options)
    "add": (lambda L, a, b: a + b, R, R, {}),
    "sub": (lambda L, a, b: a - b, R, R, {}),
    "mul": (lambda L, a, b: a * b, R, R, {}),
    "div": (lambda L, a, b: a / b, R, A, {}),
    "pow": (lambda L, a, b: a**b, P, R, {}),
    "pow-method": (lambda L, a, b: a.pow(b), P, R, {}),
    "maximum": (lambda L, a, b: L.maximum(a, b), R, R, {}),
    "minimum": (lambda L, a, b: L.minimum(a, b), R, R, {}),
    "remainder": (lambda L, a, b: a % b, R, A, {}),
    "floordiv": (lambda L, a, b: a // b, R, A, {"grad": False}),  # torch: no derivative
    "add-function": (lambda L, a, b: L.add(a, b), R, R, {}),
    "where-compare": (lambda L, a, b: L.where(a > b, a, b), R, R, {}),
}

BINARY_TABLE = []
for _name, (_fn, _da, _db, _opts) in BINARY.items():
    for _sa, _sb in PAIRS:
        BINARY_TABLE.append((f"{_name}-{_sa}-{_sb}", _fn, [_da(*_sa), _db(*_sb)], _opts))
BINARY_TABLE += [
    ("add-scalar", lambda L, a: a + 2.5, [R(3, 4)]),
    ("radd-scalar", lambda L, a: 2.5 + a, [R(3, 4)]),
    ("rsub-scalar", lambda L, a: 2.5 - a, [R(3, 4)]),
    ("mul-int-scalar", lambda L, a: a * 3, [R(3, 4)]),
    ("div-scalar", lambda L, a: a / 3, [R(3, 4)]),
    ("rdiv-scalar", lambda L, a: 3 / a, [A(3, 4)]),
    ("pow-scalar", lambda L, a: a**2, [R(3, 4)]),
    ("pow-half", lambda L, a: a**0.5, [P(3, 4)]),
    ("pow-minus-one", lambda L, a: a**-1, [A(3, 4)]),
    ("rpow-scalar", lambda L, a: 2**a, [R(3, 4)]),
    ("mod-scalar", lambda L, a: a % 0.7, [R(3, 4)]),
    ("rmod-scalar", lambda L, a: 2.5 % a, [A(3, 4)], {"grad": False}),  # torch: no derivative
    ("floordiv-scalar", lambda L, a: a // 0.7, [R(3, 4)], {"grad": False}),
    ("maximum-ties", lambda L, a, b: L.maximum(a, b), [S(3, 4), S(3, 4)]),
    ("minimum-ties", lambda L, a, b: L.minimum(a, b), [S(3, 4), S(3, 4)]),
    (
        "maximum-nan",
        lambda L, a, b: L.maximum(a, b),
        [C([float("nan"), 1.0, float("inf")]), C([0.0, float("nan"), 1.0])],
        {"grad": False},
    ),
    (
        "minimum-nan",
        lambda L, a, b: L.minimum(a, b),
        [C([float("nan"), 1.0, -float("inf")]), C([0.0, float("nan"), 1.0])],
        {"grad": False},
    ),
    ("matmul", lambda L, a, b: a @ b, [R(2, 3, 4), R(4, 5)], {"scale": 4}),
]


@pytest.mark.parametrize("name, fn, specs, options, dtype", _params(BINARY_TABLE))
def test_binary(name, fn, specs, options, dtype):
    _run(name, fn, specs, options, dtype)


COMPARISONS = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
}

COMPARISON_TABLE = []
for _name, _op in COMPARISONS.items():
    COMPARISON_TABLE += [
        (f"{_name}-operator", (lambda op: lambda L, a, b: op(a, b))(_op), [S(3, 4), S(4)]),
        (f"{_name}-method", (lambda n: lambda L, a, b: getattr(a, n)(b))(_name), [S(3, 4), S(4)]),
        (f"{_name}-scalar", (lambda op: lambda L, a: op(a, 1.0))(_op), [S(3, 4)]),
        (
            f"{_name}-nan",
            (lambda op: lambda L, a, b: op(a, b))(_op),
            [C([float("nan"), 1.0, float("inf")]), C([float("nan"), 1.0, 2.0])],
        ),
        (f"{_name}-int", (lambda op: lambda L, a, b: op(a, b))(_op), [I(-2, 3, 3, 4), I(-2, 3, 4)]),
    ]


@pytest.mark.parametrize("name, fn, specs, options, dtype", _params(COMPARISON_TABLE))
def test_comparison(name, fn, specs, options, dtype):
    """Comparisons give bool tensors that do not require grad."""
    _run(name, fn, specs, options, dtype)


INT_TABLE = [
    ("int-floordiv", lambda L, a, b: a // b, [I(-9, 10, 3, 4), C([-3, -2, 2, 3], np.int64)]),
    ("int-mod", lambda L, a, b: a % b, [I(-9, 10, 3, 4), C([-3, -2, 2, 3], np.int64)]),
    ("int-floordiv-scalar", lambda L, a: a // 4, [I(-9, 10, 3, 4)]),
    ("int-mod-scalar", lambda L, a: a % -4, [I(-9, 10, 3, 4)]),
    ("int-and", lambda L, a, b: a & b, [I(-9, 10, 3, 4), I(-9, 10, 4)]),
    ("int-or", lambda L, a, b: a | b, [I(-9, 10, 3, 4), I(-9, 10, 4)]),
    ("int-xor", lambda L, a, b: a ^ b, [I(-9, 10, 3, 4), I(-9, 10, 4)]),
    ("int-invert", lambda L, a: ~a, [I(-9, 10, 3, 4)]),
    ("bool-and", lambda L, a, b: a & b, [B(3, 4), B(4)]),
    ("bool-or", lambda L, a, b: a | b, [B(3, 4), B(4)]),
    ("bool-xor", lambda L, a, b: a ^ b, [B(3, 4), B(4)]),
    ("bool-invert", lambda L, a: ~a, [B(3, 4)]),
    ("logical_and", lambda L, a, b: L.logical_and(a, b), [B(3, 4), B(4)]),
    ("logical_or", lambda L, a, b: L.logical_or(a, b), [B(3, 4), B(4)]),
    ("logical_not", lambda L, a: L.logical_not(a), [B(3, 4)]),
    ("logical_and-float", lambda L, a, b: L.logical_and(a, b), [S(3, 4), S(4)]),
    ("logical_not-int", lambda L, a: L.logical_not(a), [I(-1, 2, 5)]),
    ("isnan", lambda L, a: L.isnan(a), [C(SPECIAL)]),
    ("isinf", lambda L, a: L.isinf(a), [C(SPECIAL)]),
    ("isfinite", lambda L, a: L.isfinite(a), [C(SPECIAL)]),
    ("isfinite-int", lambda L, a: L.isfinite(a), [I(-3, 3, 4)]),
    (
        "isclose",
        lambda L, a, b: L.isclose(a, b),
        [C([1.0, 1.0, float("nan"), 2.0]), C([1.0 + 1e-9, 1.1, float("nan"), 2.0])],
    ),
    (
        "isclose-equal_nan",
        lambda L, a, b: L.isclose(a, b, rtol=0.2, atol=0.0, equal_nan=True),
        [C([1.0, 1.0, float("nan"), 2.0]), C([1.0 + 1e-9, 1.1, float("nan"), 3.0])],
    ),
]


@pytest.mark.parametrize("name, fn, specs, options, dtype", _params(INT_TABLE, ("float64",)))
def test_integer_and_logical(name, fn, specs, options, dtype):
    _run(name, fn, specs, {"grad": False}, dtype)


def test_allclose():
    for a, b, kwargs in [
        ([1.0, 2.0], [1.0, 2.0 + 1e-9], {}),
        ([1.0, 2.0], [1.0, 2.1], {}),
        ([1.0, 2.0], [1.0, 2.1], {"rtol": 0.1}),
        ([1.0, float("nan")], [1.0, float("nan")], {}),
        ([1.0, float("nan")], [1.0, float("nan")], {"equal_nan": True}),
        ([1.0, 2.0], [1.0, 2.5], {"atol": 1.0}),
    ]:
        a64, b64 = np.array(a), np.array(b)
        expected = torch.allclose(torch.tensor(a64), torch.tensor(b64), **kwargs)
        got = minidl.allclose(minidl.tensor(a64), minidl.tensor(b64), **kwargs)
        assert isinstance(got, bool), f"allclose{kwargs}: returns {type(got).__name__}, not bool"
        assert got == expected, f"allclose({a}, {b}, {kwargs}): {got}, torch {expected}"


# --------------------------------------------------------------------------- reductions
X3 = (2, 3, 4)

REDUCTION_TABLE = []
for _op in ("sum", "mean", "amax", "amin"):
    REDUCTION_TABLE.append(
        (f"{_op}-all", (lambda op: lambda L, x: getattr(x, op)())(_op), [R(*X3)])
    )
    for _dim in (0, -1, (0, 2), (-1, 0)):
        for _keep in (False, True):
            _fn = (lambda op, d, kd: lambda L, x: getattr(x, op)(dim=d, keepdim=kd))(
                _op, _dim, _keep
            )
            REDUCTION_TABLE.append((f"{_op}-dim{_dim}-keep{_keep}", _fn, [R(*X3)]))
for _dim in (None, 1, (0, 2), -1):
    for _kwargs in (
        {},
        {"correction": 0},
        {"correction": 1},
        {"correction": 2},
        {"unbiased": False},
        {"unbiased": True},
        {"keepdim": True},
    ):
        if _dim is None and "keepdim" in _kwargs:
            continue
        if _dim is not None and "unbiased" in _kwargs and isinstance(_dim, tuple):
            continue
        for _op in ("var", "std"):
            if _dim is None:
                _fn = (lambda op, kw: lambda L, x: getattr(x, op)(**kw))(_op, _kwargs)
            else:
                _fn = (lambda op, d, kw: lambda L, x: getattr(x, op)(dim=d, **kw))(
                    _op, _dim, _kwargs
                )
            _label = ",".join(f"{k}={v}" for k, v in _kwargs.items())
            REDUCTION_TABLE.append((f"{_op}-dim{_dim}-{_label}", _fn, [R(*X3)], {"scale": 4}))

REDUCTION_TABLE += [
    ("sum-function", lambda L, x: L.sum(x, dim=1), [R(*X3)]),
    ("mean-function", lambda L, x: L.mean(x, dim=-1, keepdim=True), [R(*X3)]),
    ("prod", lambda L, x: x.prod(), [A(3, 4)], {"scale": 4}),
    ("prod-dim", lambda L, x: x.prod(dim=1), [A(*X3)]),
    ("prod-dim-keep", lambda L, x: x.prod(-1, keepdim=True), [A(*X3)]),
    ("prod-one-zero", lambda L, x: x.prod(dim=1), [C([[1.5, 0.0, 2.0], [1.0, 2.0, 3.0]])]),
    ("prod-two-zeros", lambda L, x: x.prod(dim=1), [C([[1.5, 0.0, 0.0], [0.0, 2.0, 3.0]])]),
    ("logsumexp", lambda L, x: x.logsumexp(dim=1), [R(*X3)]),
    ("logsumexp-keep", lambda L, x: x.logsumexp(-1, keepdim=True), [R(*X3)]),
    ("logsumexp-large", lambda L, x: x.logsumexp(dim=0), [C([[1000.0, -1000.0], [999.0, -1e4]])]),
    (
        "logsumexp-inf",
        lambda L, x: x.logsumexp(dim=0),
        [C([[-float("inf"), 1.0], [-float("inf"), 2.0]])],
        {"grad": False},
    ),
    ("cumsum-0", lambda L, x: x.cumsum(dim=0), [R(*X3)]),
    ("cumsum-neg", lambda L, x: x.cumsum(-1), [R(*X3)]),
    ("norm", lambda L, x: x.norm(), [R(*X3)]),
    ("norm-dim", lambda L, x: x.norm(dim=1), [R(*X3)]),
    ("norm-p2-keep", lambda L, x: x.norm(p=2, dim=-1, keepdim=True), [R(*X3)]),
    ("norm-p1", lambda L, x: x.norm(p=1, dim=0), [R(*X3)]),
    ("softmax-last", lambda L, x: x.softmax(dim=-1), [R(*X3)]),
    ("softmax-0", lambda L, x: x.softmax(0), [R(*X3)]),
    ("softmax-large", lambda L, x: x.softmax(dim=1), [C([[1000.0, 0.0, -1000.0]])]),
    ("log_softmax-last", lambda L, x: x.log_softmax(dim=-1), [R(*X3)]),
    ("log_softmax-1", lambda L, x: x.log_softmax(1), [R(*X3)]),
    ("log_softmax-large", lambda L, x: x.log_softmax(dim=1), [C([[1000.0, 0.0, -1000.0]])]),
    ("max-full", lambda L, x: x.max(), [R(*X3)]),
    ("min-full", lambda L, x: x.min(), [R(*X3)]),
    ("max-full-ties", lambda L, x: x.max(), [C([[1.0, 3.0], [3.0, 0.0]])]),
    ("amax-ties", lambda L, x: x.amax(dim=1), [C([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])]),
    ("max-dim", lambda L, x: x.max(dim=1), [R(*X3)]),
    ("max-dim-positional", lambda L, x: x.max(-1), [R(*X3)]),
    ("max-dim-keep", lambda L, x: x.max(dim=0, keepdim=True), [R(*X3)]),
    ("min-dim", lambda L, x: x.min(dim=1), [R(*X3)]),
    ("min-dim-keep", lambda L, x: x.min(-1, keepdim=True), [R(*X3)]),
    ("max-dim-values", lambda L, x: x.max(dim=1).values, [R(*X3)]),
    ("max-dim-indices", lambda L, x: x.max(dim=1).indices, [R(*X3)]),
    ("min-dim-indices", lambda L, x: x.min(dim=2).indices, [R(*X3)]),
    ("argmax", lambda L, x: x.argmax(), [R(*X3)]),
    ("argmax-dim", lambda L, x: x.argmax(dim=1), [R(*X3)]),
    ("argmax-keep", lambda L, x: x.argmax(dim=-1, keepdim=True), [R(*X3)]),
    ("argmin-dim", lambda L, x: x.argmin(dim=0), [R(*X3)]),
    ("argmin", lambda L, x: x.argmin(), [R(*X3)]),
    ("all", lambda L, x: x.all(), [B(3, 4)]),
    ("all-dim", lambda L, x: x.all(dim=1), [B(3, 4)]),
    ("any-dim-keep", lambda L, x: x.any(dim=0, keepdim=True), [B(3, 4)]),
    ("any", lambda L, x: x.any(), [B(3, 4)]),
    ("all-float", lambda L, x: x.all(dim=-1), [S(3, 4)]),
    ("sort", lambda L, x: x.sort(), [R(*X3)]),
    ("sort-dim0-descending", lambda L, x: x.sort(dim=0, descending=True), [R(*X3)]),
    ("sort-values", lambda L, x: x.sort(dim=1).values, [R(*X3)]),
    ("argsort", lambda L, x: x.argsort(dim=1), [R(*X3)]),
    ("argsort-descending", lambda L, x: x.argsort(dim=-1, descending=True), [R(*X3)]),
    ("topk", lambda L, x: x.topk(2), [R(*X3)]),
    ("topk-dim-smallest", lambda L, x: x.topk(2, dim=1, largest=False), [R(*X3)]),
    ("topk-indices", lambda L, x: x.topk(3, dim=0).indices, [R(5, 3)]),
    # 0-d tensors take dim=0 and dim=-1
    ("sum-0d-dim0", lambda L, x: x.sum(dim=0), [R()]),
    ("sum-0d-dim-1-keep", lambda L, x: x.sum(dim=-1, keepdim=True), [R()]),
    ("mean-0d-dim0", lambda L, x: x.mean(dim=0), [R()]),
    ("amax-0d", lambda L, x: x.amax(dim=-1), [R()]),
    ("prod-0d", lambda L, x: x.prod(dim=0), [R()]),
    ("cumsum-0d", lambda L, x: x.cumsum(dim=0), [R()]),
    ("softmax-0d", lambda L, x: x.softmax(dim=0), [R()]),
    ("log_softmax-0d", lambda L, x: x.log_softmax(dim=-1), [R()]),
    ("logsumexp-0d", lambda L, x: x.logsumexp(dim=0), [R()]),
    ("max-0d-dim", lambda L, x: x.max(dim=0), [R()]),
    ("argmax-0d-dim", lambda L, x: x.argmax(dim=-1), [R()]),
    ("var-0d-correction0", lambda L, x: x.var(dim=0, correction=0), [R()]),
    ("norm-0d", lambda L, x: x.norm(dim=0), [R()]),
    ("all-0d", lambda L, x: x.all(dim=0), [B()]),
    # empty tensors, shape (0, 3)
    ("sum-empty", lambda L, x: x.sum(), [R(0, 3)]),
    ("sum-empty-dim0", lambda L, x: x.sum(dim=0), [R(0, 3)]),
    ("sum-empty-dim1", lambda L, x: x.sum(dim=1), [R(0, 3)]),
    ("mean-empty-dim0", lambda L, x: x.mean(dim=0), [R(0, 3)], {"grad": False}),
    ("mean-empty-dim1", lambda L, x: x.mean(dim=1), [R(0, 3)]),
    ("prod-empty-dim0", lambda L, x: x.prod(dim=0), [R(0, 3)]),
    ("amax-empty-dim1", lambda L, x: x.amax(dim=1), [R(0, 3)]),
    ("cumsum-empty", lambda L, x: x.cumsum(dim=0), [R(0, 3)]),
    ("softmax-empty", lambda L, x: x.softmax(dim=1), [R(0, 3)]),
    ("logsumexp-empty-dim0", lambda L, x: x.logsumexp(dim=0), [R(0, 3)], {"grad": False}),
    ("var-empty-dim1", lambda L, x: x.var(dim=1), [R(0, 3)]),
    ("argmax-empty-dim1", lambda L, x: x.argmax(dim=1), [R(0, 3)]),
    ("any-empty", lambda L, x: x.any(dim=0), [C(np.zeros((0, 3)), bool)]),
    ("all-empty", lambda L, x: x.all(), [C(np.zeros((0, 3)), bool)]),
]


@pytest.mark.parametrize("name, fn, specs, options, dtype", _params(REDUCTION_TABLE))
def test_reduction(name, fn, specs, options, dtype):
    _run(name, fn, specs, options, dtype)


@pytest.mark.parametrize(
    "name, fn",
    [
        ("amax-empty-dim0", lambda x: x.amax(dim=0)),
        ("max-empty-dim0", lambda x: x.max(dim=0)),
        ("argmax-empty-dim0", lambda x: x.argmax(dim=0)),
        ("max-empty", lambda x: x.max()),
        ("sum-dim-out-of-range", lambda x: x.sum(dim=2)),
        ("softmax-dim-out-of-range", lambda x: x.softmax(dim=-3)),
    ],
)
def test_reduction_errors(name, fn):
    """Where torch refuses a reduction (an empty reduced dim, a dim out of range), minidl does."""
    array = np.zeros((0, 3), np.float32)
    with pytest.raises((IndexError, RuntimeError)):
        fn(torch.tensor(array))
    with pytest.raises((IndexError, RuntimeError, ValueError)):
        fn(minidl.tensor(array))


def test_max_dim_is_a_named_pair():
    data = np.random.default_rng(0).standard_normal((3, 4))
    m, t = minidl.tensor(data), torch.tensor(data)
    for call in (
        lambda x: x.max(dim=1),
        lambda x: x.min(1),
        lambda x: x.sort(dim=1),
        lambda x: x.topk(2, dim=1),
    ):
        got, expected = call(m), call(t)
        values, indices = got  # unpacks as a pair
        assert_same("named pair .values", got.values, expected.values)
        assert_same("named pair .indices", got.indices, expected.indices)
        assert values is got[0] or np.array_equal(_numpy(values), _numpy(got.values))
        assert np.array_equal(_numpy(indices), _numpy(got[1]))
        assert len(got) == 2


def test_variance_of_offset_float32_data():
    """float32 variance of 1e6 + N(0, 1) data within 1e-5 of the float64 truth (no cancellation)."""
    data = (1e6 + np.random.default_rng(3).standard_normal(10_000)).astype(np.float32)
    truth = np.var(data.astype(np.float64), ddof=1)
    got = minidl.tensor(data).var()
    assert _dtype_name(got) == "float32"
    assert abs(float(got.item()) - truth) <= 1e-5 * truth, (
        f"var of 1e6 + N(0, 1) in float32: {got.item()}, float64 truth {truth} "
        f"(torch float32 gives {torch.tensor(data).var().item()})"
    )
    std = minidl.tensor(data).std(correction=0)
    truth_std = np.std(data.astype(np.float64))
    assert abs(float(std.item()) - truth_std) <= 1e-5 * truth_std, (
        f"std of 1e6 + N(0, 1) in float32: {std.item()}, float64 truth {truth_std}"
    )


# --------------------------------------------------------------------------- shapes, indexing
def _index(L, values):
    return L.tensor(np.array(values, dtype=np.int64))


def _mask(L, values):
    return L.tensor(np.array(values, dtype=bool))


SHAPE_TABLE = [
    ("unsqueeze-0", lambda L, x: x.unsqueeze(0), [R(3, 4)]),
    ("unsqueeze-neg", lambda L, x: x.unsqueeze(-1), [R(3, 4)]),
    ("unsqueeze-0d", lambda L, x: x.unsqueeze(0), [R()]),
    ("squeeze", lambda L, x: x.squeeze(), [R(1, 3, 1, 4)]),
    ("squeeze-dim", lambda L, x: x.squeeze(0), [R(1, 3, 1, 4)]),
    ("squeeze-neg-dim", lambda L, x: x.squeeze(dim=-2), [R(1, 3, 1, 4)]),
    ("squeeze-not-one", lambda L, x: x.squeeze(1), [R(1, 3, 1, 4)]),  # torch: a no-op
    ("squeeze-0d", lambda L, x: x.squeeze(), [R()]),
    ("expand", lambda L, x: x.expand(2, 3, 4), [R(3, 1)]),
    ("expand-minus-one", lambda L, x: x.expand(-1, 4), [R(3, 1)]),
    ("expand-tuple", lambda L, x: x.expand((2, 3, 4)), [R(4)]),
    ("expand_as", lambda L, x, y: x.expand_as(y), [R(3, 1), R(2, 3, 4)]),
    ("view", lambda L, x: x.view(4, 3), [R(3, 4)]),
    ("view-minus-one", lambda L, x: x.view(-1), [R(3, 4)]),
    ("view-tuple", lambda L, x: x.view((2, -1)), [R(3, 4)]),
    ("view_as", lambda L, x, y: x.view_as(y), [R(3, 4), R(6, 2)]),
    ("reshape", lambda L, x: x.reshape(2, -1), [R(3, 4)]),
    ("reshape-tuple", lambda L, x: x.reshape((6, 2)), [R(3, 4)]),
    ("reshape-0d", lambda L, x: x.reshape(1, 1), [R()]),
    ("reshape-empty", lambda L, x: x.reshape(3, 0), [R(0, 3)]),
    ("repeat", lambda L, x: x.repeat(2, 3), [R(3, 4)]),  # torch's repeat is numpy's tile
    ("repeat-more-dims", lambda L, x: x.repeat(2, 1, 3), [R(3, 4)]),
    ("flip", lambda L, x: x.flip(0), [R(*X3)]),
    ("flip-dims", lambda L, x: x.flip((0, -1)), [R(*X3)]),
    ("roll", lambda L, x: x.roll(1, 0), [R(*X3)]),
    ("roll-neg", lambda L, x: x.roll(-2, dims=-1), [R(*X3)]),
    ("roll-multi", lambda L, x: x.roll(shifts=(1, 2), dims=(0, 1)), [R(*X3)]),
    ("roll-flat", lambda L, x: x.roll(3), [R(3, 4)]),
    ("split-size", lambda L, x: x.split(2, dim=1), [R(3, 5)]),
    ("split-sizes", lambda L, x: x.split([1, 3], dim=-1), [R(3, 4)]),
    ("split-default-dim", lambda L, x: x.split(2), [R(5, 2)]),
    ("chunk", lambda L, x: x.chunk(2, dim=0), [R(4, 3)]),
    ("chunk-uneven", lambda L, x: x.chunk(3, dim=1), [R(2, 4)]),  # torch: 2 chunks of 2
    ("chunk-five-in-three", lambda L, x: x.chunk(3), [R(5, 2)]),
    ("gather", lambda L, x, i: x.gather(1, i), [R(3, 4), C([[0, 0], [3, 1], [2, 2]], np.int64)]),
    ("gather-dim0", lambda L, x, i: x.gather(0, i), [R(3, 4), C([[2, 0, 1, 1]], np.int64)]),
    (
        "scatter",
        lambda L, x, i, s: x.scatter(1, i, s),
        [R(3, 4), C([[0, 2], [3, 1], [1, 0]], np.int64), R(3, 2)],
    ),
    ("scatter-value", lambda L, x, i: x.scatter(0, i, 1.5), [R(3, 4), C([[2, 0, 1, 1]], np.int64)]),
    (
        "scatter_add",
        lambda L, x, i, s: x.scatter_add(1, i, s),
        [R(3, 4), C([[0, 0, 2], [3, 1, 3], [1, 1, 1]], np.int64), R(3, 3)],
    ),
    ("index_select", lambda L, x: x.index_select(1, _index(L, [3, 0, 0])), [R(3, 4)]),
    ("index_select-neg", lambda L, x: x.index_select(-3, _index(L, [1])), [R(*X3)]),
    ("masked_fill", lambda L, x, m: x.masked_fill(m, 0.5), [R(3, 4), B(3, 4)]),
    ("masked_fill-broadcast", lambda L, x, m: x.masked_fill(m, -float("inf")), [R(3, 4), B(4)]),
    ("tril", lambda L, x: x.tril(), [R(4, 5)]),
    ("tril-1", lambda L, x: x.tril(1), [R(4, 5)]),
    ("triu", lambda L, x: x.triu(), [R(4, 5)]),
    ("triu-neg", lambda L, x: x.triu(diagonal=-1), [R(2, 4, 5)]),
    ("transpose", lambda L, x: x.transpose(0, -1), [R(*X3)]),
    ("permute", lambda L, x: x.permute(2, 0, 1), [R(*X3)]),
    ("flatten", lambda L, x: x.flatten(1), [R(*X3)]),
    ("clone", lambda L, x: x.clone() * 2, [R(3, 4)]),
    ("contiguous", lambda L, x: x.transpose(0, 1).contiguous(), [R(3, 4)]),
    ("detach", lambda L, x: x.detach() * x, [R(3, 4)]),
    ("to-float64", lambda L, x: x.to(L.float64) * 2, [R(3, 4)]),
    ("to-float32", lambda L, x: x.to(L.float32) * 2, [R(3, 4)]),
    ("to-int64", lambda L, x: x.to(L.int64), [R(3, 4)]),
    ("to-cpu", lambda L, x: x.to("cpu") * 2, [R(3, 4)]),
    ("cat", lambda L, a, b: L.cat([a, b]), [R(2, 3), R(4, 3)]),
    ("cat-dim", lambda L, a, b: L.cat((a, b), dim=-1), [R(2, 3), R(2, 1)]),
    ("cat-empty", lambda L, a, b: L.cat([a, b], dim=0), [R(0, 3), R(2, 3)]),
    ("concatenate", lambda L, a, b: L.concatenate([a, b], dim=1), [R(2, 3), R(2, 2)]),
    ("stack", lambda L, a, b: L.stack([a, b]), [R(2, 3), R(2, 3)]),
    ("stack-dim", lambda L, a, b: L.stack([a, b], dim=-1), [R(2, 3), R(2, 3)]),
    ("stack-0d", lambda L, a, b: L.stack([a, b]), [R(), R()]),
    ("where", lambda L, c, a, b: L.where(c, a, b), [B(3, 4), R(3, 4), R(3, 4)]),
    ("where-broadcast", lambda L, c, a, b: L.where(c, a, b), [B(3, 1), R(4), R(3, 4)]),
    ("where-scalar", lambda L, c, a: L.where(c, a, 0.0), [B(3, 4), R(3, 4)]),
    ("outer", lambda L, a, b: L.outer(a, b), [R(3), R(4)]),
    ("einsum-matmul", lambda L, a, b: L.einsum("ij,jk->ik", a, b), [R(3, 4), R(4, 2)]),
    ("einsum-batch", lambda L, a, b: L.einsum("bij,bjk->bik", a, b), [R(2, 3, 4), R(2, 4, 2)]),
    ("einsum-outer", lambda L, a, b: L.einsum("i,j->ij", a, b), [R(3), R(4)]),
    ("einsum-sum", lambda L, a: L.einsum("ij->j", a), [R(3, 4)]),
    ("einsum-transpose", lambda L, a: L.einsum("ij->ji", a), [R(3, 4)]),
    ("one_hot", lambda L, i: L.nn.functional.one_hot(i, num_classes=5), [C([0, 3, 1], np.int64)]),
    ("one_hot-infer", lambda L, i: L.nn.functional.one_hot(i), [C([[0, 2], [1, 1]], np.int64)]),
]


@pytest.mark.parametrize("name, fn, specs, options, dtype", _params(SHAPE_TABLE))
def test_shape_op(name, fn, specs, options, dtype):
    _run(name, fn, specs, options, dtype)


INDEX_TABLE = [
    ("int", lambda L, x: x[1], [R(*X3)]),
    ("negative-int", lambda L, x: x[-1, -2], [R(*X3)]),
    ("slice", lambda L, x: x[:, 1:3], [R(*X3)]),
    ("slice-step", lambda L, x: x[::2, :, 1::2], [R(*X3)]),
    ("ellipsis", lambda L, x: x[..., -1], [R(*X3)]),
    ("none", lambda L, x: x[None, :, None, 0], [R(*X3)]),
    ("list", lambda L, x: x[[0, 0, 1]], [R(*X3)]),  # repeated indices accumulate
    ("tensor-index", lambda L, x: x[_index(L, [2, 0, 2])], [R(4, 3)]),
    ("int-slice-list", lambda L, x: x[0, :, [0, 1]], [R(*X3)]),  # torch: (3, 2), numpy: (2, 3)
    ("int-ellipsis-list", lambda L, x: x[1, ..., [0, 1]], [R(*X3)]),
    ("int-slice-list-tensor", lambda L, x: x[0, :, _index(L, [3, 1, 3])], [R(*X3)]),
    ("list-slice-list", lambda L, x: x[[0, 1], :, [1, 2]], [R(*X3)]),
    ("slice-list-list", lambda L, x: x[:, [0, 2], [1, 3]], [R(*X3)]),
    ("slice-list", lambda L, x: x[:, [2, 0]], [R(*X3)]),
    ("list-int-list", lambda L, x: x[[0, 1], 1, [0, 2]], [R(*X3)]),
    ("int-list-slice", lambda L, x: x[0, [2, 1]], [R(*X3)]),
    ("2d-tensor-index", lambda L, x: x[_index(L, [[0, 1], [1, 1]])], [R(3, 4)]),
    ("mask", lambda L, x: x[x > 0], [R(3, 4)]),
    ("mask-rows", lambda L, x: x[_mask(L, [True, False, True])], [R(3, 4)]),
    ("int-mask", lambda L, x: x[1, _mask(L, [True, False, True, True])], [R(3, 4)]),
    ("0d-ellipsis", lambda L, x: x[...] * 2, [R()]),
    ("0d-none", lambda L, x: x[None], [R()]),
    ("empty-slice", lambda L, x: x[2:2], [R(3, 4)]),
]


@pytest.mark.parametrize("name, fn, specs, options, dtype", _params(INDEX_TABLE))
def test_getitem(name, fn, specs, options, dtype):
    _run(f"getitem-{name}", fn, specs, options, dtype)


def _assign(index_fn, value_fn=None):
    """fn(L, x, v): a non-leaf copy of x with ``y[index] = value``, recorded for autograd."""

    def fn(L, x, *values):
        y = x * 1.0
        value = values[0] if values else None
        if value_fn is not None:
            value = value_fn(L, value)
        y[index_fn(L)] = value
        return y * 2

    return fn


SETITEM_TABLE = [
    ("int-tensor", _assign(lambda L: 0), [R(*X3), R(3, 4)]),
    ("broadcast-row", _assign(lambda L: (slice(1, None),)), [R(3, 4), R(4)]),
    ("broadcast-column", _assign(lambda L: (slice(None), 1)), [R(3, 4), R(1)]),
    ("scalar", _assign(lambda L: (slice(None), 1), lambda L, v: 5.0), [R(3, 4)]),
    ("scalar-0d-tensor", _assign(lambda L: (1, 2)), [R(3, 4), R()]),
    ("list", _assign(lambda L: [0, 2]), [R(3, 4), R(2, 4)]),
    ("tensor-index", _assign(lambda L: _index(L, [2, 0])), [R(3, 4), R(4)]),
    ("torch-layout", _assign(lambda L: (0, slice(None), [0, 1])), [R(*X3), R(3, 2)]),
    (
        "mask",
        _assign(lambda L: _mask(L, [[True, False, True, False]] * 3), lambda L, v: 0.0),
        [R(3, 4)],
    ),
    ("mask-tensor-value", _assign(lambda L: _mask(L, [True, False, True])), [R(3, 4), R(4)]),
    ("ellipsis", _assign(lambda L: (Ellipsis, 0)), [R(*X3), R(3)]),
    (
        "value-from-graph",
        _assign(lambda L: (slice(None), 0), lambda L, v: v.exp()),
        [R(3, 4), R(3)],
    ),
]


@pytest.mark.parametrize("name, fn, specs, options, dtype", _params(SETITEM_TABLE))
def test_setitem(name, fn, specs, options, dtype):
    """``y[index] = value`` on a non-leaf: torch's broadcasting, gradients to y and value."""
    _run(f"setitem-{name}", fn, specs, options, dtype)


def test_setitem_plain_tensor_broadcasts():
    for index, value in [
        ((slice(None), 0), 7.0),
        ((0, slice(None), [0, 1]), np.arange(6.0).reshape(3, 2)),
        ((Ellipsis, 1), np.arange(3.0)),
        ((slice(None),), np.arange(4.0)),
    ]:
        t = torch.zeros(2, 3, 4, dtype=torch.float64)
        m = minidl.zeros(2, 3, 4, dtype=minidl.float64)
        t[index] = torch.tensor(value) if isinstance(value, np.ndarray) else value
        m[index] = minidl.tensor(value) if isinstance(value, np.ndarray) else value
        assert_same(f"setitem {index} = {value!r}", m, t)


# --------------------------------------------------------------------------- in-place
def _inplace(chain):
    def fn(L, x, *others):
        y = x * 1.5  # a non-leaf: in-place on it is recorded
        chain(y, *others)
        return y

    return fn


def _iadd(y, z):
    y += z


def _isub(y, z):
    y -= z


def _imul(y, z):
    y *= z


def _idiv(y, z):
    y /= z


def _augmented_chain(y, z):
    y += z
    y *= 3
    y -= 1
    y /= 2


INPLACE_TABLE = [
    ("iadd", _inplace(_iadd), [R(3, 4), R(4)]),
    ("isub", _inplace(_isub), [R(3, 4), R(3, 1)]),
    ("imul-scalar", _inplace(lambda y: _imul(y, 3.0)), [R(3, 4)]),
    ("imul", _inplace(_imul), [R(3, 4), R(4)]),
    ("idiv", _inplace(_idiv), [R(3, 4), A(4)]),
    ("augmented-chain", _inplace(_augmented_chain), [R(3, 4), R(4)]),
    ("add_", _inplace(lambda y, z: y.add_(z)), [R(3, 4), R(4)]),
    ("add_-scalar", _inplace(lambda y: y.add_(2.0)), [R(3, 4)]),
    ("sub_", _inplace(lambda y, z: y.sub_(z)), [R(3, 4), R(3, 4)]),
    ("mul_", _inplace(lambda y, z: y.mul_(z)), [R(3, 4), R(3, 4)]),
    ("div_", _inplace(lambda y, z: y.div_(z)), [R(3, 4), A(4)]),
    ("zero_", _inplace(lambda y: y.zero_()), [R(3, 4)]),
    ("fill_", _inplace(lambda y: y.fill_(2.5)), [R(3, 4)]),
    ("copy_", _inplace(lambda y, z: y.copy_(z)), [R(3, 4), R(4)]),
    ("clamp_", _inplace(lambda y: y.clamp_(-0.5, 0.5)), [R(3, 4)]),
    ("clamp_-min", _inplace(lambda y: y.clamp_(min=0.0)), [R(3, 4)]),
    ("chained-returns-self", lambda L, x: (x * 1.0).add_(1.0).mul_(2.0).sub_(0.5), [R(3, 4)]),
]


@pytest.mark.parametrize("name, fn, specs, options, dtype", _params(INPLACE_TABLE))
def test_inplace_recorded(name, fn, specs, options, dtype):
    """In-place ops on non-leaf tensors: values and the gradients through them match torch."""
    _run(f"inplace-{name}", fn, specs, options, dtype)


@pytest.mark.parametrize("dtype", FLOATS)
def test_inplace_returns_self_and_keeps_dtype(dtype):
    data = np.random.default_rng(1).standard_normal((3, 4)).astype(dtype)
    for name, op in [
        ("add_", lambda x: x.add_(1)),
        ("sub_", lambda x: x.sub_(2.5)),
        ("mul_", lambda x: x.mul_(3)),
        ("div_", lambda x: x.div_(4)),
        ("zero_", lambda x: x.zero_()),
        ("fill_", lambda x: x.fill_(7)),
        ("clamp_", lambda x: x.clamp_(min=-0.1, max=0.2)),
        ("copy_", lambda x: x.copy_(x * 0 + 2)),
    ]:
        t, m = torch.tensor(data), minidl.tensor(data)
        t_result, m_result = op(t), op(m)
        assert t_result is t
        assert m_result is m, f"{name} [{dtype}]: does not return self"
        assert_same(f"{name} [{dtype}] in place", m, t)


def test_normal_and_uniform_in_place():
    for dtype in (minidl.float32, minidl.float64):
        x = minidl.zeros(20_000, dtype=dtype)
        assert x.normal_(mean=2.0, std=0.5) is x
        assert _dtype_name(x) == str(np.dtype(dtype)) and tuple(x.shape) == (20_000,)
        values = _numpy(x)
        assert abs(values.mean() - 2.0) < 0.03 and abs(values.std() - 0.5) < 0.03
        assert x.uniform_(-1.0, 3.0) is x
        values = _numpy(x)
        assert values.min() >= -1.0 and values.max() < 3.0
        assert abs(values.mean() - 1.0) < 0.05
        assert _dtype_name(x) == str(np.dtype(dtype))
    w = minidl.zeros(3, 4, requires_grad=True)
    with minidl.no_grad():
        w.normal_()
        w.uniform_()
    assert w.requires_grad and w.is_leaf


LEAF_ERROR = "a leaf Variable that requires grad is being used in an in-place operation"


@pytest.mark.parametrize(
    "name, op",
    [
        ("add_", lambda x: x.add_(1.0)),
        ("iadd", lambda x: x.__iadd__(1.0)),
        ("isub", lambda x: x.__isub__(1.0)),
        ("imul", lambda x: x.__imul__(2.0)),
        ("itruediv", lambda x: x.__itruediv__(2.0)),
        ("mul_", lambda x: x.mul_(2.0)),
        ("sub_", lambda x: x.sub_(1.0)),
        ("div_", lambda x: x.div_(2.0)),
        ("zero_", lambda x: x.zero_()),
        ("fill_", lambda x: x.fill_(1.0)),
        ("copy_", lambda x: x.copy_(x.detach() * 2)),
        ("clamp_", lambda x: x.clamp_(0.0, 1.0)),
        ("normal_", lambda x: x.normal_()),
        ("uniform_", lambda x: x.uniform_()),
        ("setitem", lambda x: x.__setitem__(0, 5.0)),
    ],
)
def test_inplace_on_leaf_requiring_grad_raises(name, op):
    """torch: RuntimeError 'a leaf Variable that requires grad is being used in an in-place
    operation.' (for setitem: 'a view of a leaf Variable ...'); under no_grad it is allowed."""
    t = torch.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        op(t)
    m = minidl.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match=LEAF_ERROR) as info:
        op(m)
    assert np.array_equal(_numpy(m), np.ones(3)), f"{name}: the leaf changed despite the error"
    del info
    # allowed under no_grad, the leaf stays a leaf that requires grad
    with torch.no_grad():
        op(t)
    with minidl.no_grad():
        op(m)
    assert m.requires_grad and m.is_leaf and m.grad_fn is None
    if name not in ("normal_", "uniform_"):  # random: only the deterministic ops compare values
        assert_same(f"{name} under no_grad", m, t.detach(), dtype=False)


SAVED_ERROR = "one of the variables needed for gradient computation has been modified by an inplace"


def _saved_result_modified(L):
    x = L.ones(3, requires_grad=True)
    y = x.exp()  # exp saves its result
    y.add_(1)
    y.sum().backward()
    return x


def _saved_input_modified(L):
    x = L.ones(3, requires_grad=True)
    a = x * 2
    b = a * a  # mul saves both operands
    a.mul_(3)
    b.sum().backward()
    return x


def _unsaved_input_modified(L):
    x = L.ones(3, requires_grad=True)
    a = x * 2
    b = a + 1  # add saves nothing
    a.mul_(3)
    b.sum().backward()
    return x


def _saved_by_sigmoid_modified_through_setitem(L):
    x = L.ones(3, requires_grad=True)
    y = x.sigmoid()  # sigmoid saves its result
    y[0] = 0.0
    y.sum().backward()
    return x


def _modified_after_backward_use(L):
    x = L.ones(3, requires_grad=True)
    a = x * 2
    b = (a * a).sum()
    b.backward()  # the saved a was used already
    a.mul_(3)
    return x


@pytest.mark.parametrize(
    "name, scenario",
    [
        ("exp-result-add_", _saved_result_modified),
        ("mul-input-mul_", _saved_input_modified),
        ("add-input-mul_", _unsaved_input_modified),
        ("sigmoid-result-setitem", _saved_by_sigmoid_modified_through_setitem),
        ("modified-after-backward", _modified_after_backward_use),
    ],
)
def test_modified_saved_tensor(name, scenario):
    """Backward refuses a value modified in place after it was saved for backward, as torch does."""
    try:
        t_x = scenario(torch)
        t_error = None
    except RuntimeError as error:
        t_error = error
        assert SAVED_ERROR in str(error)
    if t_error is not None:
        with pytest.raises(RuntimeError, match=SAVED_ERROR):
            scenario(minidl)
    else:
        m_x = scenario(minidl)
        assert_same(f"{name}: gradient", m_x.grad, t_x.grad)


# --------------------------------------------------------------------------- factories
def _dt(lib, name):
    return getattr(lib, name)


FACTORY_TABLE = [
    ("zeros", lambda L: L.zeros(2, 3)),
    ("zeros-tuple", lambda L: L.zeros((2, 3))),
    ("zeros-int64", lambda L: L.zeros(2, dtype=L.int64)),
    ("zeros-bool", lambda L: L.zeros(2, dtype=L.bool)),
    ("zeros-0d", lambda L: L.zeros(())),
    ("zeros-empty", lambda L: L.zeros(0, 3)),
    ("ones", lambda L: L.ones(3)),
    ("ones-float64", lambda L: L.ones(2, 2, dtype=L.float64)),
    ("ones-uint8", lambda L: L.ones(2, dtype=L.uint8)),
    ("full-float", lambda L: L.full((2, 3), 1.5)),
    ("full-int", lambda L: L.full((2,), 3)),  # torch: int64
    ("full-bool", lambda L: L.full((2,), True)),  # torch: bool
    ("full-dtype", lambda L: L.full((2, 2), 3, dtype=L.float64)),
    ("full_like", lambda L: L.full_like(L.zeros(2, 3, dtype=L.float64), 7)),
    ("full_like-int-keeps-int", lambda L: L.full_like(L.zeros(3, dtype=L.int32), 2.7)),
    ("full_like-dtype", lambda L: L.full_like(L.zeros(3), 2, dtype=L.int64)),
    ("zeros_like", lambda L: L.zeros_like(L.ones(2, 3, dtype=L.int32))),
    ("ones_like", lambda L: L.ones_like(L.zeros(2, dtype=L.float64))),
    ("ones_like-dtype", lambda L: L.ones_like(L.zeros(2), dtype=L.bool)),
    ("eye", lambda L: L.eye(3)),
    ("eye-rect", lambda L: L.eye(2, 4)),
    ("eye-dtype", lambda L: L.eye(3, dtype=L.int64)),
    ("linspace", lambda L: L.linspace(0, 1, 5)),
    ("linspace-steps", lambda L: L.linspace(-1.0, 2.0, steps=7)),
    ("linspace-float64", lambda L: L.linspace(0, 1, 11, dtype=L.float64)),
    ("linspace-one", lambda L: L.linspace(3, 5, 1)),
    ("arange", lambda L: L.arange(5)),
    ("arange-start-step", lambda L: L.arange(1, 10, 3)),
    ("arange-float", lambda L: L.arange(0, 1, 0.25)),
    ("arange-negative-step", lambda L: L.arange(5, 0, -2)),
    ("arange-dtype", lambda L: L.arange(4, dtype=L.float64)),
    ("tensor-ints", lambda L: L.tensor([1, 2, 3])),
    ("tensor-floats", lambda L: L.tensor([1.0, 2.5])),
    ("tensor-mixed", lambda L: L.tensor([1, 2.5])),
    ("tensor-bools", lambda L: L.tensor([True, False])),
    ("tensor-0d-int", lambda L: L.tensor(3)),
    ("tensor-0d-float", lambda L: L.tensor(3.5)),
    ("tensor-0d-bool", lambda L: L.tensor(True)),
    ("tensor-nested", lambda L: L.tensor([[1, 2], [3, 4]], dtype=L.int32)),
    ("tensor-dtype-float64", lambda L: L.tensor([1, 2], dtype=L.float64)),
    ("tensor-numpy-float64", lambda L: L.tensor(np.arange(3.0))),
    ("tensor-numpy-int32", lambda L: L.tensor(np.arange(3, dtype=np.int32))),
    ("tensor-numpy-uint8", lambda L: L.tensor(np.arange(3, dtype=np.uint8))),
    ("tensor-numpy-bool", lambda L: L.tensor(np.array([True, False]))),
    ("tensor-empty-list", lambda L: L.tensor([])),
]


@pytest.mark.parametrize("name, fn", [pytest.param(n, f, id=n) for n, f in FACTORY_TABLE])
def test_factory(name, fn):
    expected = fn(torch)
    got = fn(minidl)
    assert_same(name, got, expected)
    assert not got.requires_grad


@pytest.mark.parametrize(
    "name, fn, shape, dtype",
    [
        ("empty", lambda L: L.empty(2, 3), (2, 3), "float32"),
        ("empty-tuple-dtype", lambda L: L.empty((4,), dtype=L.float64), (4,), "float64"),
        ("randn", lambda L: L.randn(2, 3), (2, 3), "float32"),
        ("randn-tuple", lambda L: L.randn((3, 2), dtype=L.float64), (3, 2), "float64"),
        ("rand", lambda L: L.rand(5), (5,), "float32"),
        ("randn_like", lambda L: L.randn_like(L.zeros(2, 3, dtype=L.float64)), (2, 3), "float64"),
        ("rand_like", lambda L: L.rand_like(L.zeros(4)), (4,), "float32"),
        ("randint", lambda L: L.randint(0, 10, (50,)), (50,), "int64"),
        ("randint-high-only", lambda L: L.randint(3, (2, 5)), (2, 5), "int64"),
        ("randint-dtype", lambda L: L.randint(-2, 2, (4,), dtype=L.int32), (4,), "int32"),
    ],
)
def test_random_factory(name, fn, shape, dtype):
    expected = fn(torch)
    assert tuple(expected.shape) == shape and _dtype_name(expected) == dtype  # the table is torch's
    got = fn(minidl)
    assert isinstance(got, minidl.Tensor)
    assert tuple(got.shape) == shape, f"{name}: shape {tuple(got.shape)}, torch {shape}"
    assert _dtype_name(got) == dtype, f"{name}: dtype {_dtype_name(got)}, torch {dtype}"


def test_random_factory_ranges():
    minidl.manual_seed(0)
    r = _numpy(minidl.randint(-3, 4, (2000,)))
    assert r.min() == -3 and r.max() == 3
    r = _numpy(minidl.randint(5, (2000,)))
    assert r.min() == 0 and r.max() == 4
    u = _numpy(minidl.rand(5000))
    assert u.min() >= 0 and u.max() < 1 and abs(u.mean() - 0.5) < 0.03
    n = _numpy(minidl.randn(5000))
    assert abs(n.mean()) < 0.05 and abs(n.std() - 1) < 0.05


def test_factories_requires_grad():
    for make in (
        lambda L: L.zeros(2, requires_grad=True),
        lambda L: L.ones(2, 3, requires_grad=True),
        lambda L: L.full((2,), 1.5, requires_grad=True),
        lambda L: L.randn(3, requires_grad=True),
        lambda L: L.tensor([1.0, 2.0], requires_grad=True),
        lambda L: L.linspace(0, 1, 3, requires_grad=True),
        lambda L: L.eye(2, requires_grad=True),
        lambda L: L.zeros_like(L.ones(2), requires_grad=True),
    ):
        assert make(torch).requires_grad
        x = make(minidl)
        assert x.requires_grad and x.is_leaf


def test_default_dtype_changes_factories():
    assert minidl.get_default_dtype() == minidl.float32
    try:
        minidl.set_default_dtype(minidl.float64)
        assert minidl.get_default_dtype() == minidl.float64
        for fn in (
            lambda L: L.zeros(2),
            lambda L: L.ones(2),
            lambda L: L.full((2,), 1.5),
            lambda L: L.tensor([1.0]),
            lambda L: L.tensor(2.5),
            lambda L: L.arange(0, 1, 0.5),
            lambda L: L.linspace(0, 1, 3),
            lambda L: L.eye(2),
            lambda L: L.randn(2),
            lambda L: L.rand(2),
            lambda L: L.empty(2),
            lambda L: L.tensor([1, 2]),
            lambda L: L.arange(3),
        ):
            old = torch.get_default_dtype()
            torch.set_default_dtype(torch.float64)
            try:
                expected = _dtype_name(fn(torch))
            finally:
                torch.set_default_dtype(old)
            assert _dtype_name(fn(minidl)) == expected
    finally:
        minidl.set_default_dtype(minidl.float32)
    assert _dtype_name(minidl.zeros(2)) == "float32"


def test_device():
    d = minidl.device("cpu")
    assert str(d) == "cpu"
    x = minidl.ones(2)
    assert np.array_equal(_numpy(x.to("cpu")), np.ones(2))
    assert np.array_equal(_numpy(x.to(d)), np.ones(2))
    with pytest.raises((ValueError, RuntimeError, TypeError), match="cuda"):
        minidl.device("cuda")
    with pytest.raises((ValueError, RuntimeError, TypeError), match="cuda"):
        x.to("cuda")


# --------------------------------------------------------------------------- tensor methods
def test_size_dim_numel_item_tolist():
    data = np.arange(24.0).reshape(2, 3, 4)
    t, m = torch.tensor(data), minidl.tensor(data)
    assert tuple(m.size()) == tuple(t.size())
    for d in (0, 1, 2, -1, -3):
        assert m.size(d) == t.size(d) and isinstance(m.size(d), int)
    assert m.dim() == t.dim() == 3
    assert m.numel() == t.numel() == 24
    assert m.tolist() == t.tolist()
    assert minidl.tensor(2.5).dim() == 0 and minidl.tensor(2.5).size() == ()
    assert minidl.zeros(0, 3).numel() == 0
    for value in (2.5, 3, True):
        expected = torch.tensor(value).item()
        got = minidl.tensor(value).item()
        assert got == expected and type(got) is type(expected), (
            f"item of tensor({value!r}): {got!r} ({type(got).__name__}), torch {expected!r}"
        )
    assert minidl.tensor([[7]]).item() == 7
    with pytest.raises((ValueError, RuntimeError)):
        minidl.ones(2).item()
    assert minidl.tensor(3).tolist() == 3
    assert minidl.tensor([True, False]).tolist() == [True, False]
    with pytest.raises((IndexError, ValueError, RuntimeError)):
        m.size(3)


def test_detach_and_detach_():
    x = minidl.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    d = y.detach()
    assert not d.requires_grad and d.is_leaf
    d_t = torch.tensor([1.0, 2.0], requires_grad=True) * 2
    assert d_t.detach_() is not None
    assert y.detach_() is y
    assert not y.requires_grad and y.is_leaf and y.grad_fn is None
    assert np.array_equal(_numpy(y), [2.0, 4.0])


def test_clone_is_a_copy():
    x = minidl.tensor([1.0, 2.0])
    c = x.clone()
    c += 1
    assert np.array_equal(_numpy(x), [1.0, 2.0])
    d = x.detach()
    d += 1  # detach shares the data, as in torch
    assert np.array_equal(_numpy(x), [2.0, 3.0])


# --------------------------------------------------------------------------- autograd
def test_sgd_loop_trains_like_torch():
    rng = np.random.default_rng(5)
    features = rng.standard_normal((64, 3)).astype(np.float32)
    true_w = np.array([1.5, -2.0, 0.5], np.float32)
    targets = features @ true_w

    def train(L):
        x, y = L.tensor(features), L.tensor(targets)
        w = L.zeros(3, requires_grad=True)
        for _ in range(100):
            loss = ((x @ w - y) ** 2).mean()
            loss.backward()
            with L.no_grad():
                w -= 0.1 * w.grad
            w.grad = None
        return w

    t_w, m_w = train(torch), train(minidl)
    assert np.allclose(t_w.detach().numpy(), true_w, atol=1e-4)  # torch converges
    assert m_w.is_leaf and m_w.requires_grad and _dtype_name(m_w) == "float32"
    assert np.allclose(_numpy(m_w), t_w.detach().numpy(), rtol=0, atol=1e-5), (
        f"SGD: minidl ends at {_numpy(m_w)}, torch at {t_w.detach().numpy()}"
    )


@pytest.mark.parametrize("dtype", FLOATS)
def test_sgd_through_data_keeps_numpy_dtype(dtype):
    w = minidl.tensor(np.array([1.0, -1.0], dtype), requires_grad=True)
    memory = w.numpy()
    (w * w).sum().backward()
    w.data -= 0.25 * w.grad  # as in torch: .data is a tensor outside autograd
    assert isinstance(w.data, minidl.Tensor) and not w.data.requires_grad
    assert w.numpy() is memory, "the update was not made in place"
    assert w.dtype == np.dtype(dtype)
    assert np.allclose(w.numpy(), [0.5, -0.5])
    assert w.is_leaf and w.requires_grad
    w.grad.data.zero_()  # torch's idiom for clearing a gradient
    assert not w.grad.numpy().any()


def test_grad_assignment():
    x = minidl.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError):  # torch: RuntimeError, "attempting to assign a gradient..."
        x.grad = minidl.zeros(2)
    with pytest.raises(RuntimeError):
        x.grad = np.zeros((3, 1), np.float32)
    with pytest.raises(RuntimeError):  # torch: "assigned grad has data of a different type"
        x.grad = np.zeros(3, np.float64)
    x.grad = np.full(3, 2.0, np.float32)  # accepted, converted
    assert isinstance(x.grad, minidl.Tensor)
    assert np.array_equal(_numpy(x.grad), [2.0, 2.0, 2.0])
    (x * 3).sum().backward()  # and accumulated into
    assert np.array_equal(_numpy(x.grad), [5.0, 5.0, 5.0])
    x.grad = None
    assert x.grad is None
    with pytest.raises((ValueError, RuntimeError)):
        x.data = np.zeros(4, np.float32)
    x.data = np.full(3, 4.0, np.float32)
    assert np.array_equal(_numpy(x), [4.0, 4.0, 4.0])


def test_uint8_image_division_is_float32():
    image = minidl.tensor(np.zeros(3, np.uint8))
    expected = torch.tensor(np.zeros(3, np.uint8)) / 255
    assert _dtype_name(image / 255) == _dtype_name(expected) == "float32"


def test_autograd_grad():
    def run(L):
        x = L.tensor([1.0, 2.0, 3.0], requires_grad=True)
        w = L.tensor([0.5, -1.0, 2.0], requires_grad=True)
        unused = L.tensor([1.0], requires_grad=True)
        y = (x * x * w).sum()
        gx, gw, gu = L.autograd.grad(y, [x, w, unused], allow_unused=True)
        return x, w, unused, gx, gw, gu

    _, _, _, tgx, tgw, tgu = run(torch)
    mx, mw, mu, mgx, mgw, mgu = run(minidl)
    assert tgu is None and mgu is None
    assert_same("autograd.grad dx", mgx, tgx)
    assert_same("autograd.grad dw", mgw, tgw)
    assert mx.grad is None and mw.grad is None and mu.grad is None  # .grad untouched


def test_autograd_grad_leaves_existing_grad_alone():
    x = minidl.tensor([1.0, 2.0], requires_grad=True)
    x.grad = minidl.tensor([10.0, 10.0])
    (g,) = minidl.autograd.grad((x * x).sum(), x)
    assert np.array_equal(_numpy(g), [2.0, 4.0])
    assert np.array_equal(_numpy(x.grad), [10.0, 10.0])


def test_autograd_grad_outputs_and_errors():
    def run(L):
        x = L.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
        y = x.exp() * 2
        return L.autograd.grad(y, x, grad_outputs=L.tensor([[1.0, 0.0], [0.5, -1.0]]))

    (expected,) = run(torch)
    got = run(minidl)
    assert isinstance(got, tuple) and len(got) == 1
    assert_same("autograd.grad with grad_outputs", got[0], expected)

    for L, unused_error in ((torch, RuntimeError), (minidl, RuntimeError)):
        x = L.tensor([1.0], requires_grad=True)
        z = L.tensor([1.0], requires_grad=True)
        with pytest.raises(unused_error):  # not used in the graph, and allow_unused is off
            L.autograd.grad((x * 2).sum(), [x, z])

    for L in (torch, minidl):  # retain_graph defaults to freeing the graph
        x = L.tensor([1.0, 2.0], requires_grad=True)
        y = (x.exp() * x).sum()
        L.autograd.grad(y, x, retain_graph=True)
        L.autograd.grad(y, x)
        with pytest.raises(RuntimeError):
            L.autograd.grad(y, x)

    x = minidl.tensor([1.0], requires_grad=True)
    with pytest.raises(NotImplementedError):
        minidl.autograd.grad((x * x).sum(), x, create_graph=True)


def test_hooks_modify_gradient():
    def run(L):
        x = L.tensor([1.0, -2.0, 3.0], requires_grad=True)
        seen = []
        x.register_hook(lambda g: g * 2)  # leaf: .grad gets the doubled gradient
        y = x * x
        y.register_hook(lambda g: seen.append(g.clone()))  # returns None: grad unchanged
        y.register_hook(lambda g: g + 1)  # flows on into x
        z = y.exp().sum() + y.sum()
        z.backward()
        return x, seen

    (tx, t_seen), (mx, m_seen) = run(torch), run(minidl)
    assert_same("hooks: x.grad", mx.grad, tx.grad)
    assert len(m_seen) == len(t_seen) == 1
    assert_same("hooks: gradient seen by a hook", m_seen[0], t_seen[0])


def test_retain_grad():
    def run(L):
        x = L.tensor([1.0, 2.0], requires_grad=True)
        y = x * 3
        y.retain_grad()
        z = y * y
        (z.sum()).backward()
        return x, y, z

    (tx, ty, _), (mx, my, mz) = run(torch), run(minidl)
    assert_same("retain_grad: y.grad", my.grad, ty.grad)
    assert_same("retain_grad: x.grad", mx.grad, tx.grad)
    assert mz.grad is None  # non-leaf without retain_grad


def test_grad_accumulates_and_backward_twice():
    def run(L):
        x = L.tensor([1.0, 2.0], requires_grad=True)
        (x * x).sum().backward()
        (x * 3).sum().backward()
        y = (x.exp()).sum()
        y.backward(retain_graph=True)
        y.backward()
        return x

    assert_same("accumulated grad", run(minidl).grad, run(torch).grad)


def test_no_grad_forms():
    x = minidl.ones(2, requires_grad=True)

    @minidl.no_grad
    def bare(v):
        return v * 2

    @minidl.no_grad()
    def called(v):
        return v * 2

    assert not bare(x).requires_grad
    assert not called(x).requires_grad
    assert minidl.is_grad_enabled()
    with minidl.no_grad():
        assert not (x * 2).requires_grad
        with minidl.enable_grad():
            assert (x * 2).requires_grad
        assert not minidl.is_grad_enabled()
    assert (x * 2).requires_grad

    @minidl.enable_grad()
    def enabled(v):
        return v * 2

    with minidl.no_grad():
        assert enabled(x).requires_grad


def test_set_grad_enabled():
    x = minidl.ones(2, requires_grad=True)
    try:
        minidl.set_grad_enabled(False)
        assert not minidl.is_grad_enabled()
        assert not (x * 2).requires_grad
    finally:
        minidl.set_grad_enabled(True)
    assert minidl.is_grad_enabled() and (x * 2).requires_grad


def test_set_grad_enabled_as_context_manager():
    x = minidl.ones(2, requires_grad=True)
    with minidl.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert minidl.is_grad_enabled()
    with minidl.no_grad(), minidl.set_grad_enabled(True):
        assert (x * 2).requires_grad
    assert minidl.is_grad_enabled()


def test_softmax_rows_sum_to_one_float32_large():
    data = np.random.default_rng(2).standard_normal((4, 1000)).astype(np.float32) * 30
    s = minidl.tensor(data).softmax(dim=-1)
    assert np.allclose(_numpy(s).sum(axis=-1), 1.0, atol=1e-5)
    assert math.isclose(
        float(_numpy(s).max()), float(torch.tensor(data).softmax(-1).max()), rel_tol=1e-5
    )


def test_einsum_with_a_repeated_subscript_in_one_operand_is_refused_clearly():
    # torch computes traces and diagonals this way; minidl does not (yet), and says so
    for equation in ("ii->", "ii->i"):
        with pytest.raises(NotImplementedError, match="repeated subscripts"):
            minidl.einsum(equation, minidl.ones(3, 3))
