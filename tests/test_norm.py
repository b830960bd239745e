"""Instance normalisation, conditional instance normalisation and reflection padding: values against
NumPy, gradients against float64 central differences, the fast path against the reference."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_cv as tg
from tinygrad_cv import Tensor
from tinygrad_cv.backend import to_device
from tinygrad_cv.nn.norm import (ConditionalInstanceNorm2d, conditional_instance_norm, instance_norm,
                                 reflect_conv2d, reflection_pad2d)

image_shapes = st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(2, 5), st.integers(2, 5))


def rand(shape, seed=0, xp=np):
    return xp.asarray(np.random.default_rng(seed).normal(size=shape))


@pytest.mark.parametrize("fast", [True, False])
def test_instance_norm_has_zero_mean_and_unit_variance(xp, fast):
    x = rand((2, 3, 7, 5), xp=xp) * 3 + 1
    with tg.fast_paths(fast):
        y = instance_norm(Tensor(x)).numpy()
    np.testing.assert_allclose(y.mean(axis=(2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=(2, 3)), 1, atol=1e-5)


@pytest.mark.parametrize("fast", [True, False])
@given(shape=image_shapes, seed=st.integers(0, 2**16))
def test_instance_norm_gradient(shape, seed, fast):
    with tg.fast_paths(fast):
        assert tg.gradcheck(lambda x: instance_norm(x), [rand(shape, seed)])


@given(shape=image_shapes, seed=st.integers(0, 2**16))
def test_instance_norm_fast_equals_reference(shape, seed):
    x, g = rand(shape, seed), rand(shape, seed + 1)
    results = []
    for fast in (True, False):
        with tg.fast_paths(fast):
            t = Tensor(x.copy(), requires_grad=True)
            y = instance_norm(t)
            (y * Tensor(g)).sum().backward()
            results.append((y.numpy(), t.grad))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-8, atol=1e-10)


@given(shape=image_shapes, styles=st.integers(1, 4), per_image=st.booleans(), seed=st.integers(0, 2**16))
def test_conditional_instance_norm_gradient(shape, styles, per_image, seed):
    N, C = shape[:2]
    w = rand((N, styles) if per_image else (styles,), seed + 1)
    gamma, beta = rand((styles, C), seed + 2), rand((styles, C), seed + 3)
    assert tg.gradcheck(lambda x, w, g, b: conditional_instance_norm(x, w, g, b), [rand(shape, seed), w, gamma, beta])


def test_conditional_instance_norm_values_and_one_hot(xp):
    x = rand((2, 3, 4, 6), xp=xp)
    gamma, beta = rand((5, 3), 1, xp), rand((5, 3), 2, xp)
    one_hot = xp.eye(5)[2]
    z = conditional_instance_norm(Tensor(x), one_hot, gamma, beta).numpy()
    xn, gn, bn = (to_device(a, "cpu") for a in (x, gamma, beta))
    normed = (xn - xn.mean(axis=(2, 3), keepdims=True)) / np.sqrt(xn.var(axis=(2, 3), keepdims=True) + 1e-5)
    np.testing.assert_allclose(z, normed * gn[2][None, :, None, None] + bn[2][None, :, None, None], atol=1e-12)
    blend = conditional_instance_norm(Tensor(x), xp.asarray([0, 0.25, 0, 0.75, 0]), gamma, beta).numpy()
    mix_g = 0.25 * gn[1] + 0.75 * gn[3]
    mix_b = 0.25 * bn[1] + 0.75 * bn[3]
    np.testing.assert_allclose(blend, normed * mix_g[None, :, None, None] + mix_b[None, :, None, None], atol=1e-12)


def test_conditional_instance_norm_rejects_mismatches():
    x = np.zeros((1, 3, 4, 4))
    with pytest.raises(ValueError, match="styles"):
        conditional_instance_norm(x, np.ones(4), np.ones((5, 3)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="channels"):
        conditional_instance_norm(x, np.ones(5), np.ones((5, 2)), np.zeros((5, 2)))


def test_conditional_instance_norm_module_starts_as_instance_norm():
    layer = ConditionalInstanceNorm2d(3, styles=4)
    x = rand((1, 3, 5, 5)).astype(np.float32)
    np.testing.assert_allclose(layer(Tensor(x), np.eye(4)[1]).numpy(), instance_norm(Tensor(x)).numpy(), atol=1e-6)
    assert [n for n, _ in layer.named_parameters()] == ["gamma", "beta"]


@given(shape=image_shapes, ph=st.integers(0, 4), pw=st.integers(0, 4), seed=st.integers(0, 2**16))
def test_reflection_pad_matches_numpy_and_its_gradient(shape, ph, pw, seed):
    ph, pw = min(ph, shape[2] - 1), min(pw, shape[3] - 1)
    x = rand(shape, seed)
    expected = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), mode="reflect")
    np.testing.assert_array_equal(reflection_pad2d(Tensor(x), (ph, pw)).numpy(), expected)
    assert tg.gradcheck(lambda t: reflection_pad2d(t, (ph, pw)), [x])


def test_reflection_pad_on_the_array_module(xp):
    x = xp.arange(2 * 3 * 4 * 5, dtype=xp.float32).reshape(2, 3, 4, 5)
    out = reflection_pad2d(Tensor(x), 3).numpy()
    np.testing.assert_array_equal(out, np.pad(np.arange(120, dtype=np.float32).reshape(2, 3, 4, 5),
                                              ((0, 0), (0, 0), (3, 3), (3, 3)), mode="reflect"))


def test_reflection_pad_on_each_side_separately():
    x = rand((1, 2, 5, 6))
    expected = np.pad(x, ((0, 0), (0, 0), (0, 3), (2, 1)), mode="reflect")
    np.testing.assert_array_equal(reflection_pad2d(Tensor(x), (0, 3, 2, 1)).numpy(), expected)
    assert tg.gradcheck(lambda t: reflection_pad2d(t, (0, 3, 2, 1)), [x])


def test_reflection_pad_too_wide_is_a_clear_error():
    with pytest.raises(ValueError, match="at least 5 pixels"):
        reflection_pad2d(np.zeros((1, 1, 4, 8)), 4)


@given(shape=image_shapes, styles=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_conditional_instance_norm_fast_equals_reference(shape, styles, seed):
    N, C = shape[:2]
    x, w, g = rand(shape, seed), np.abs(rand((styles,), seed + 1)), rand(shape, seed + 4)
    gamma, beta = rand((styles, C), seed + 2), rand((styles, C), seed + 3)
    results = []
    for fast in (True, False):
        with tg.fast_paths(fast):
            leaves = [Tensor(a.copy(), requires_grad=True) for a in (x, gamma, beta)]
            z = conditional_instance_norm(leaves[0], w, leaves[1], leaves[2])
            (z * Tensor(g)).sum().backward()
            results.append([z.numpy()] + [t.grad for t in leaves])
    for fast_value, reference_value in zip(*results):
        np.testing.assert_allclose(fast_value, reference_value, rtol=1e-8, atol=1e-10)


def test_fused_norm_reads_channels_last_input():
    x = rand((2, 5, 4, 3)).transpose(0, 3, 1, 2)  # (2, 3, 5, 4) NCHW view of a channels-last array
    assert x.transpose(0, 2, 3, 1).flags.c_contiguous
    with tg.fast_paths(True):
        fast = instance_norm(Tensor(x)).numpy()
    with tg.fast_paths(False):
        reference = instance_norm(Tensor(np.ascontiguousarray(x))).numpy()
    np.testing.assert_allclose(fast, reference, atol=1e-12)


conv_cases = st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(1, 3), st.sampled_from([1, 3, 5]),
                       st.sampled_from([1, 2]), st.integers(0, 2**16))


@given(case=conv_cases, extra=st.tuples(st.integers(0, 4), st.integers(0, 4)))
def test_reflect_conv_fast_equals_reference(case, extra):
    N, C, O, K, stride, seed = case
    H, W = K // 2 + 1 + extra[0], K // 2 + 1 + extra[1]
    x, w = rand((N, C, H, W), seed), rand((O, C, K, K), seed + 1)
    g_shape = None
    results = []
    for fast in (True, False):
        with tg.fast_paths(fast):
            tx, tw = Tensor(x.copy(), requires_grad=True), Tensor(w.copy(), requires_grad=True)
            y = reflect_conv2d(tx, tw, stride)
            g_shape = g_shape or y.shape
            (y * Tensor(rand(g_shape, seed + 2))).sum().backward()
            results.append((y.numpy(), tx.grad, tw.grad))
    for fast_value, reference_value in zip(*results):
        np.testing.assert_allclose(fast_value, reference_value, rtol=1e-9, atol=1e-10)


def test_reflect_conv_gradient_on_the_reference_path():
    with tg.fast_paths(False):
        assert tg.gradcheck(lambda x, w: reflect_conv2d(x, w, 2), [rand((1, 2, 5, 4)), rand((3, 2, 3, 3), 1)])
