"""Convolution, pooling and upsampling ops and layers: float64 gradient checks, modules, errors.

The kernels' values are checked against loops in test_kernels.py; here the question is whether the
ops' backward passes are the true derivatives (central differences, float64, Hypothesis geometries)
and whether the layers behave like PyTorch's.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tinygrad_cv as tg
import tinygrad_cv.functional as F
from tinygrad_cv import Tensor, optim
from tinygrad_cv.functional import conv as conv_ops
from tinygrad_cv.kernels.geometry import Window
from tinygrad_cv.nn.conv import AvgPool2d, Conv2d, ConvTranspose2d, MaxPool2d, Upsample

# Each example costs two forward passes per input element, so fewer examples than elsewhere.
gradcheck_settings = settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])


@st.composite
def small_geometries(draw):
    """A small convolution: batch 1-2, channels 1-3, kernel 1-3, stride 1-2, padding 0-1, dilation 1-2."""
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = (draw(st.integers(0, 1)), draw(st.integers(0, 1)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    sides = [draw(st.integers(max(1, d * (k - 1) + 1 - 2 * p), d * (k - 1) + 4))
             for k, p, d in zip(kernel, padding, dilation)]
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3))) + tuple(sides)
    return shape, draw(st.integers(1, 3)), kernel, dict(stride=stride, padding=padding, dilation=dilation)


def random(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape)


def on(xp, *arrays):
    return [xp.asarray(a) for a in arrays]


# ---- gradient checks ------------------------------------------------------------------------------
@gradcheck_settings
@given(geometry=small_geometries(), seed=st.integers(0, 2**16))
def test_conv2d_gradcheck(xp, geometry, seed):
    shape, O, kernel, settings_ = geometry
    x, w, b = random(shape, seed), random((O, shape[1]) + kernel, seed + 1), random(O, seed + 2)
    assert tg.gradcheck(lambda x, w, b: F.conv2d(x, w, b, **settings_), on(xp, x, w, b))


@gradcheck_settings
@given(geometry=small_geometries(), seed=st.integers(0, 2**16))
def test_conv_transpose2d_gradcheck(xp, geometry, seed):
    """conv_transpose2d maps a conv2d output of this geometry back up to the conv2d input's shape."""
    shape, C_in, kernel, settings_ = geometry
    out_hw = Window.of(kernel, **settings_).output_size(shape)
    extra = tuple((n + 2 * p - d * (k - 1) - 1) % s for n, p, d, k, s in zip(
        shape[2:], settings_["padding"], settings_["dilation"], kernel, settings_["stride"]))
    x = random((shape[0], C_in) + out_hw, seed)
    w, b = random((C_in, shape[1]) + kernel, seed + 1), random(shape[1], seed + 2)
    fn = lambda x, w, b: F.conv_transpose2d(x, w, b, output_padding=extra, **settings_)  # noqa: E731
    assert fn(*[Tensor(a) for a in (x, w, b)]).shape == shape
    assert tg.gradcheck(fn, on(xp, x, w, b))


@st.composite
def pool_geometries(draw):
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, kernel[0] // 2)), draw(st.integers(0, kernel[1] // 2)))
    sides = tuple(draw(st.integers(max(1, k - 2 * p), 7)) for k, p in zip(kernel, padding))
    return (draw(st.integers(1, 2)), draw(st.integers(1, 2))) + sides, kernel, stride, padding


@gradcheck_settings
@given(geometry=pool_geometries(), seed=st.integers(0, 2**16))
def test_pooling_gradcheck(xp, geometry, seed):
    shape, kernel, stride, padding = geometry
    # Distinct values spaced far beyond eps: no window has a tie that a +-eps step could flip.
    x = np.random.default_rng(seed).permutation(np.prod(shape)).reshape(shape) * 0.01
    assert tg.gradcheck(lambda x: F.max_pool2d(x, kernel, stride, padding), on(xp, x))
    assert tg.gradcheck(lambda x: F.avg_pool2d(x, kernel, stride, padding), on(xp, x))


def test_upsample_gradcheck(xp):
    x = random((2, 2, 3, 2), 0)
    assert tg.gradcheck(lambda x: F.upsample_nearest2d(x, (2, 3)), on(xp, x))


def test_relu_after_conv_gradcheck_and_vjp_at_a_larger_size(xp):
    """A conv-ReLU-pool chain; check_vjp covers a layer too big for element-wise differences."""
    x, w, b = random((1, 2, 5, 6), 0), random((3, 2, 3, 3), 1), random(3, 2)
    chain = lambda x, w, b: F.max_pool2d(F.relu(F.conv2d(x, w, b, padding=1)), 2)  # noqa: E731
    assert tg.gradcheck(chain, on(xp, x, w, b))
    big = on(xp, random((2, 8, 24, 20), 3), random((16, 8, 3, 3), 4), random(16, 5))
    assert tg.check_vjp(lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1), big)


# ---- what backward computes -----------------------------------------------------------------------
@tg.fast_paths(False)  # the reference Conv2d (Conv3x3Fast is checked in test_fast_conv.py)
def test_weight_gradient_is_skipped_when_only_the_input_needs_one(monkeypatch):
    from tinygrad_cv.kernels import conv as conv_kernels

    calls = []
    real = conv_kernels.conv2d_grad_weight
    monkeypatch.setattr(conv_kernels, "conv2d_grad_weight", lambda *a, **k: calls.append(1) or real(*a, **k))
    x = Tensor(random((1, 2, 6, 6), 0).astype(np.float32), requires_grad=True)
    w = Tensor(random((3, 2, 3, 3), 1).astype(np.float32))  # frozen, as in style transfer
    F.conv2d(x, w, padding=1).sum().backward()
    assert calls == [] and x.grad.shape == x.shape and w.grad is None
    w.requires_grad = True
    F.conv2d(x, w, padding=1).sum().backward()
    assert calls == [1] and w.grad.shape == w.shape


def test_float32_in_float32_out():
    x = Tensor(random((2, 3, 8, 8), 0).astype(np.float32), requires_grad=True)
    conv = Conv2d(3, 4, 3, padding=1, rng=np.random.default_rng(0))
    y = F.upsample_nearest2d(F.avg_pool2d(F.max_pool2d(conv(x), 2), 2), 2)
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == conv.weight.grad.dtype == conv.bias.grad.dtype == np.float32


def test_conv2d_rejects_bad_tensors_naming_shapes():
    w = Tensor(np.zeros((4, 3, 3, 3), np.float32))
    with pytest.raises(ValueError, match=r"4-D \(N, C, H, W\), got shape \(3, 16, 16\)"):
        F.conv2d(Tensor(np.zeros((3, 16, 16), np.float32)), w)
    with pytest.raises(ValueError, match=r"input has 1 channels.*\(2, 1, 16, 16\).*expects 3"):
        Conv2d(3, 4, 3)(Tensor(np.zeros((2, 1, 16, 16), np.float32)))
    with pytest.raises(ValueError, match=r"stride must be >= 1, got \(0, 0\)"):
        F.conv2d(Tensor(np.zeros((1, 3, 16, 16), np.float32)), w, stride=0)


# ---- layers -----------------------------------------------------------------------------------------
def test_conv2d_layer_like_pytorch():
    conv = Conv2d(3, 8, (3, 5), stride=2, padding=(1, 2), rng=np.random.default_rng(0))
    assert [name for name, _ in conv.named_parameters()] == ["weight", "bias"]
    assert conv.weight.shape == (8, 3, 3, 5) and conv.bias.shape == (8,)
    bound = 1 / math.sqrt(3 * 3 * 5)  # kaiming_uniform(a=sqrt(5)) and the bias rule give 1/sqrt(fan_in)
    assert np.abs(conv.weight.data).max() <= bound and np.abs(conv.weight.data).max() > 0.9 * bound
    assert np.abs(conv.bias.data).max() <= bound
    again = Conv2d(3, 8, (3, 5), stride=2, padding=(1, 2), rng=np.random.default_rng(0))
    np.testing.assert_array_equal(conv.weight.data, again.weight.data)
    x = Tensor(random((2, 3, 9, 10), 1).astype(np.float32))
    expected = F.conv2d(x, conv.weight, conv.bias, stride=2, padding=(1, 2))
    np.testing.assert_array_equal(conv(x).numpy(), expected.numpy())
    assert conv(x).shape == (2, 8, 5, 5)
    assert [n for n, _ in Conv2d(3, 8, 3, bias=False).named_parameters()] == ["weight"]


def test_conv_transpose2d_layer_doubles_the_size():
    up = ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1, rng=np.random.default_rng(0))
    assert up.weight.shape == (4, 2, 3, 3)
    assert np.abs(up.weight.data).max() <= 1 / math.sqrt(2 * 9)  # PyTorch's fan_in reads axis 1
    assert up(Tensor(np.zeros((1, 4, 7, 5), np.float32))).shape == (1, 2, 14, 10)


def test_pool_and_upsample_layers():
    x = Tensor(random((1, 2, 8, 6), 0).astype(np.float32))
    assert MaxPool2d(2)(x).shape == (1, 2, 4, 3)
    assert MaxPool2d(3, stride=1, padding=1)(x).shape == (1, 2, 8, 6)
    assert AvgPool2d(2, stride=(2, 3))(x).shape == (1, 2, 4, 2)
    np.testing.assert_array_equal(Upsample(2)(x).numpy(), x.numpy().repeat(2, 2).repeat(2, 3))
    assert "kernel_size=2" in repr(MaxPool2d(2)) and MaxPool2d(2).parameters() == []
    with pytest.raises(ValueError, match="mode='nearest'"):
        Upsample(2, mode="bilinear")


def test_a_conv_layer_learns_a_sobel_filter():
    """End to end: SGD through conv2d's backward recovers the filter that made the targets."""
    sobel = np.array([[[[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]]]], np.float32)
    images = Tensor(random((8, 1, 12, 12), 0).astype(np.float32))
    target = F.conv2d(images, Tensor(sobel), padding=1)
    conv = Conv2d(1, 1, 3, padding=1, rng=np.random.default_rng(0))
    opt = optim.Adam(conv.parameters(), lr=0.05)
    for _ in range(300):
        conv.zero_grad()
        loss = F.mse_loss(conv(images), target)
        loss.backward()
        opt.step()
    assert loss.item() < 1e-4
    np.testing.assert_allclose(conv.weight.data, sobel, atol=2e-2)


def test_function_classes_are_the_documented_ops():
    """The wrappers exported by tinygrad_cv.functional are the ones defined next to their Functions."""
    for name in ["conv2d", "conv2d_relu", "conv_transpose2d", "max_pool2d", "avg_pool2d", "upsample_nearest2d"]:
        assert getattr(F, name) is getattr(conv_ops, name)
