"""Every op of the core: forward against a NumPy expression, backward against float64 central differences."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_cv as tg
import tinygrad_cv.functional as F
from tinygrad_cv import Tensor

shapes = hnp.array_shapes(min_dims=0, max_dims=4, min_side=1, max_side=3)
pairs = hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, min_side=1, max_side=3)


def values(shape, low=-2.0, high=2.0):
    return hnp.arrays(np.float64, shape, elements=st.floats(low, high, allow_nan=False, width=64))


def away_from_zero(a, margin=0.3):
    """Move values out of (-margin, margin): kinks (abs, relu, clip) and poles (1/x) live at 0."""
    return np.where(np.abs(a) < margin, np.where(a < 0, -margin, margin), a)


def softmax_ref(a, axis):
    e = np.exp(a - a.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def check(fn, ref, *arrays, **tol):
    out = fn(*[Tensor(a) for a in arrays])
    np.testing.assert_allclose(out.numpy(), ref(*arrays), rtol=1e-10, atol=1e-12)
    assert out.dtype == np.float64  # float64 kept when given
    assert tg.gradcheck(fn, arrays, **tol)


UNARY = {
    "neg": (F.neg, np.negative, None),
    "exp": (F.exp, np.exp, None),
    "log": (F.log, np.log, "positive"),
    "sqrt": (F.sqrt, np.sqrt, "positive"),
    "abs": (F.abs, np.abs, "kink"),
    "relu": (F.relu, lambda a: np.maximum(a, 0), "kink"),
    "sigmoid": (F.sigmoid, lambda a: 1 / (1 + np.exp(-a)), None),
    "tanh": (F.tanh, np.tanh, None),
    "clip": (lambda a: F.clip(a, -0.5, 1.0), lambda a: np.clip(a, -0.5, 1.0), "clip"),
    "pow3": (lambda a: F.pow(a, 3), lambda a: a**3, None),
    "pow_half": (lambda a: a**0.5, np.sqrt, "positive"),
}


@pytest.mark.parametrize("name", list(UNARY))
@given(data=st.data())
def test_unary(name, data):
    fn, ref, domain = UNARY[name]
    a = data.draw(values(data.draw(shapes)))
    if domain == "positive":
        a = np.abs(a) + 0.5
    elif domain == "kink":
        a = away_from_zero(a)
    elif domain == "clip":  # keep away from the clip edges too
        a = np.where(np.abs(a + 0.5) < 0.1, -0.7, np.where(np.abs(a - 1.0) < 0.1, 1.2, a))
    check(fn, ref, a)


BINARY = {
    "add": (F.add, np.add),
    "sub": (F.sub, np.subtract),
    "mul": (F.mul, np.multiply),
    "div": (F.div, np.divide),
    "maximum": (F.maximum, np.maximum),
}


@pytest.mark.parametrize("name", list(BINARY))
@given(data=st.data())
def test_binary_broadcasting(name, data):
    fn, ref = BINARY[name]
    (sa, sb), _ = data.draw(pairs)
    a, b = data.draw(values(sa)), data.draw(values(sb))
    if name == "div":
        b = away_from_zero(b, 0.5)
    if name == "maximum":  # ties are a kink: put a on a grid of 0.2 steps and b between its points
        a, b = np.round(a * 5) / 5, np.round(b * 5) / 5 + 0.1
    check(fn, ref, a, b)


def test_operators_with_scalars_and_arrays_on_either_side():
    x = Tensor(np.array([1.0, 2.0, 4.0], dtype=np.float32), requires_grad=True)
    arr = np.array([1.0, 1.0, 2.0], dtype=np.float32)
    y = (2 + x) * 3 - 1 / x + arr * x - x / 2 + (1 - x) + arr - (-x) ** 2
    expected = (2 + x.data) * 3 - 1 / x.data + arr * x.data - x.data / 2 + (1 - x.data) + arr - x.data**2
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-6)
    assert y.dtype == np.float32  # Python scalars and float32 arrays do not upcast
    y.sum().backward()
    np.testing.assert_allclose(x.grad, 3 + 1 / x.data**2 + arr - 0.5 - 1 - 2 * x.data, rtol=1e-5)


@given(data=st.data())
def test_matmul_batched_and_1d(data):
    n, k, m = (data.draw(st.integers(1, 3)) for _ in range(3))
    batch_a = data.draw(st.sampled_from([(), (3,), (2, 1)]))
    batch_b = data.draw(st.sampled_from([(), (1,), (3,)]))
    a = data.draw(values(batch_a + (n, k)))
    b = data.draw(values(batch_b + (k, m)))
    check(F.matmul, np.matmul, a, b)
    v = data.draw(values((k,)))
    check(F.matmul, np.matmul, a, v)
    check(F.matmul, np.matmul, v, b)
    check(F.matmul, np.matmul, v, v)


@pytest.mark.parametrize("op", ["sum", "mean", "max"])
@given(data=st.data())
def test_reductions(op, data):
    shape = data.draw(shapes)
    a = data.draw(values(shape))
    if op == "max":  # distinct values so the max is unique (ties are tested separately)
        a = a + np.arange(a.size).reshape(shape) * 1e-2
    axis = data.draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1) if shape else st.none()))
    if shape and data.draw(st.booleans()):
        axis = tuple(sorted(set(data.draw(st.lists(st.integers(0, len(shape) - 1), min_size=1, max_size=len(shape))))))
    keepdims = data.draw(st.booleans())
    fn = getattr(F, op)
    check(lambda t: fn(t, axis, keepdims), lambda x: getattr(np, op if op != "max" else "amax")(x, axis=axis, keepdims=keepdims), a)


def test_max_ties_share_the_gradient():
    x = Tensor(np.array([1.0, 3.0, 3.0, 2.0]), requires_grad=True)
    F.max(x).backward()
    np.testing.assert_array_equal(x.grad, [0, 0.5, 0.5, 0])


@pytest.mark.parametrize("fn,ref", [(F.softmax, softmax_ref), (F.log_softmax, lambda a, axis: np.log(softmax_ref(a, axis)))])
@given(data=st.data())
def test_softmax_family(fn, ref, data):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=4, max_side=3))
    a = data.draw(values(shape, -5, 5))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    check(lambda t: fn(t, axis), lambda x: ref(x, axis), a)


def test_softmax_is_stable_for_huge_inputs():
    a = Tensor(np.array([[1000.0, 1001.0, 1002.0]], dtype=np.float32))
    assert np.all(np.isfinite(F.softmax(a).numpy()))
    np.testing.assert_allclose(F.log_softmax(a).numpy(), [[-2.407606, -1.407606, -0.407606]], rtol=1e-5)


@given(data=st.data())
def test_reshape_transpose_permute(data):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=4, max_side=3))
    a = data.draw(values(shape))
    perm = data.draw(st.permutations(range(len(shape))))
    check(lambda t: F.transpose(t, perm), lambda x: np.transpose(x, perm), a)
    check(lambda t: t.permute(*perm), lambda x: np.transpose(x, perm), a)
    check(lambda t: F.reshape(t, (-1,)), lambda x: x.reshape(-1), a)
    check(lambda t: t.reshape(shape[::-1]), lambda x: x.reshape(shape[::-1]), a)


@given(data=st.data())
def test_getitem(data):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=4, max_side=4))
    a = data.draw(values(shape))
    index = data.draw(hnp.basic_indices(shape, allow_newaxis=True))
    check(lambda t: t[index], lambda x: x[index], a)


def test_getitem_integer_array_accumulates_repeats():
    a = np.arange(5.0)
    idx = np.array([0, 2, 2, 4])
    check(lambda t: t[idx], lambda x: x[idx], a)
    x = Tensor(a, requires_grad=True)
    x[idx].sum().backward()
    np.testing.assert_array_equal(x.grad, [1, 0, 2, 0, 1])


@given(data=st.data())
def test_pad(data):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=4, max_side=3))
    a = data.draw(values(shape))
    widths = [(data.draw(st.integers(0, 2)), data.draw(st.integers(0, 2))) for _ in shape]
    check(lambda t: F.pad(t, widths, value=0.5), lambda x: np.pad(x, widths, constant_values=0.5), a)


@given(data=st.data())
def test_concatenate_and_stack(data):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=3))
    axis = data.draw(st.integers(0, len(shape) - 1))
    other = list(shape)
    other[axis] = data.draw(st.integers(1, 3))
    a, b = data.draw(values(shape)), data.draw(values(tuple(other)))
    check(lambda x, y: F.concatenate([x, y], axis), lambda x, y: np.concatenate([x, y], axis), a, b)
    c = data.draw(values(shape))
    check(lambda x, y: F.stack([x, y, x], axis), lambda x, y: np.stack([x, y, x], axis), a, c)


@given(data=st.data())
def test_losses(data):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=4, max_side=3))
    pred, target = data.draw(values(shape)), data.draw(values(shape))
    pred = target + away_from_zero(pred - target)  # |.| has a kink where pred == target
    check(lambda p: F.mse_loss(p, target), lambda p: np.mean((p - target) ** 2), pred)
    check(lambda p: F.l1_loss(p, target, reduction="sum"), lambda p: np.sum(np.abs(p - target)), pred)
    probs = 1 / (1 + np.exp(-pred))
    t01 = (target > 0).astype(np.float64)
    bce = lambda p: -np.mean(t01 * np.log(p) + (1 - t01) * np.log(1 - p))  # noqa: E731
    check(lambda p: F.binary_cross_entropy(p, t01), bce, probs)
    check(lambda x: F.binary_cross_entropy_with_logits(x, t01, reduction="none"),
          lambda x: -(t01 * np.log(1 / (1 + np.exp(-x))) + (1 - t01) * np.log(1 - 1 / (1 + np.exp(-x)))), pred)


def test_bce_with_logits_is_stable():
    x = Tensor(np.array([-200.0, 200.0], dtype=np.float32), requires_grad=True)
    loss = F.binary_cross_entropy_with_logits(x, np.array([1.0, 0.0]))
    np.testing.assert_allclose(loss.item(), 200.0, rtol=1e-6)
    loss.backward()
    np.testing.assert_allclose(x.grad, [-0.5, 0.5])


UNARY_DAG = [F.exp, F.tanh, F.sigmoid, lambda t: t * t, lambda t: F.sqrt(t * t + 1)]
BINARY_DAG = [F.add, F.sub, F.mul, lambda a, b: a / (b * b + 1), F.maximum]


@given(data=st.data())
def test_random_expression_dags_with_reused_nodes(data):
    """Graphs of 3-10 ops whose nodes feed several consumers: accumulation must add every path."""
    plan = data.draw(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 4), st.integers(0, 99), st.integers(0, 99)), min_size=3, max_size=10))
    x0, y0 = np.random.default_rng(len(plan)).uniform(-1, 1, size=(2, 2, 3))

    def fn(x, y):
        nodes = [x, y]
        for kind, op, i, j in plan:
            a, b = nodes[i % len(nodes)], nodes[j % len(nodes)]
            nodes.append(UNARY_DAG[op](a) if kind == 0 else BINARY_DAG[op](a, b))
        return nodes[-1] + nodes[-2]

    assert tg.gradcheck(fn, [x0, y0])
