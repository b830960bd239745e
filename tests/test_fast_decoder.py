"""The fast kernels of a conv decoder (upsample + 3x3 conv down to few channels) against the reference.

nn.UpsampleConv2d (kernels/fast/upsample_conv.py) computes an upsample + conv pair as the four
output phases of one 2x2 convolution of the small image; it must equal the two reference ops in a row,
forward and backward.

kernels/fast/upsample.py writes the upsampled image into the fast convolution's padded channels-last
layout and sums the gradient's blocks as strided views. It must give the reference numbers for every
shape and layout it can receive. (The input gradient of the last 3x3 convolution, with few output
channels, is one product over the nine taps side by side: tests/test_fast_conv.py.)
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_cv as tg
import tinygrad_cv.functional as F
from tinygrad_cv import Tensor, nn
from tinygrad_cv.functional import upsample_conv_fast
from tinygrad_cv.kernels import upsample
from tinygrad_cv.kernels.fast import channels_last, upsample_conv
from tinygrad_cv.kernels.fast import upsample as fast_upsample


def rel_error(actual: np.ndarray, expected: np.ndarray) -> float:
    return float(np.abs(actual - expected).max() / max(np.abs(expected).max(), 1e-30))


@settings(max_examples=25, deadline=None)
@given(shape=st.tuples(st.integers(1, 3), st.integers(1, 6), st.integers(1, 6), st.integers(1, 6)),
       scale=st.sampled_from([1, 2, 3, (2, 3), (1, 2)]), padded=st.booleans(), seed=st.integers(0, 2**16))
def test_fast_upsample_kernels_equal_the_reference(shape, scale, padded, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(np.float32)
    x_in = channels_last.interior(channels_last.as_padded(x)) if padded else x  # both layouts it meets
    y = fast_upsample.upsample_nearest2d_forward(x_in, scale)
    assert np.array_equal(y, upsample.upsample_nearest2d_forward(x, scale))
    assert channels_last.padded_buffer_of(y) is not None  # the next fast 3x3 conv reads it in place
    g = rng.standard_normal(y.shape).astype(np.float32)
    expected = upsample.upsample_nearest2d_backward(g, scale)
    for grad in (g, channels_last.interior(channels_last.as_padded(g))):
        assert rel_error(fast_upsample.upsample_nearest2d_backward(grad, scale), expected) < 1e-6


def test_fast_upsample_refuses_what_the_reference_refuses():
    with pytest.raises(ValueError, match="4-D"):
        fast_upsample.upsample_nearest2d_forward(np.zeros((2, 3, 4), np.float32), 2)
    with pytest.raises(ValueError, match="whole number"):
        fast_upsample.upsample_nearest2d_forward(np.zeros((1, 1, 2, 2), np.float32), 1.5)


def test_upsample_then_conv_equals_the_reference_path_and_needs_no_layout_copy(monkeypatch):
    """The decoder's pattern, forward and backward, through the ops with fast paths on and off."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 5, 3, 4)).astype(np.float32)
    w, b = rng.standard_normal((1, 5, 3, 3)).astype(np.float32), rng.standard_normal(1).astype(np.float32)
    results = []
    for fast in (True, False):
        with tg.fast_paths(fast):
            xt, wt, bt = (Tensor(a, requires_grad=True) for a in (x, w, b))
            y = F.sigmoid(F.conv2d(F.upsample_nearest2d(F.relu(xt), 2), wt, bt, padding=1))
            (y * y).sum().backward()
            results.append([y.data, xt.grad, wt.grad, bt.grad])
    for got, expected in zip(*results):
        assert rel_error(got, expected) < 1e-5
    copies = []
    original = channels_last.np.empty

    def counting_empty(shape, *args, **kwargs):
        copies.append(tuple(shape))
        return original(shape, *args, **kwargs)

    with tg.fast_paths(True):
        up = F.upsample_nearest2d(Tensor(x), 2)
    monkeypatch.setattr(channels_last.np, "empty", counting_empty)
    assert channels_last.as_padded(up.data) is channels_last.padded_buffer_of(up.data) and not copies


# ---- the encoder's strided convolutions (kernels/fast/strided_conv.py) ---------------------------------------
@settings(max_examples=30, deadline=None)
@given(shape=st.tuples(st.integers(1, 3), st.integers(1, 5), st.integers(1, 5), st.integers(3, 9), st.integers(3, 9)),
       kernel=st.sampled_from([1, 2, 3, (3, 2)]), stride=st.sampled_from([2, 3, (2, 1), (1, 2)]),
       padding=st.sampled_from([0, 1, (1, 0)]), bias=st.booleans(), seed=st.integers(0, 2**16))
def test_fast_strided_conv_equals_the_reference_op(shape, kernel, stride, padding, bias, seed):
    N, C, O, H, W = shape
    rng = np.random.default_rng(seed)
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    w = rng.standard_normal((O, C, kh, kw)).astype(np.float32)
    b = rng.standard_normal(O).astype(np.float32) if bias else None
    results, ops = [], []
    for fast in (True, False):
        with tg.fast_paths(fast):
            inputs = [Tensor(a, requires_grad=True) for a in (x, w) + ((b,) if bias else ())]
            y = F.conv2d(*inputs[:2], inputs[2] if bias else None, stride=stride, padding=padding)
            ops.append(type(y._ctx).__name__)
            g = np.random.default_rng(seed + 1).standard_normal(y.shape).astype(np.float32)
            (y * Tensor(g)).sum().backward()
            results.append([y.data] + [t.grad for t in inputs])
    assert ops[0] != "Conv2d" and ops[1] == "Conv2d"  # a fast op against the reference
    for got, expected in zip(*results):
        assert got.shape == expected.shape and rel_error(got, expected) < 1e-4


@tg.fast_paths(True)
def test_strided_layers_take_the_fast_path_and_chain_in_channels_last():
    rng = np.random.default_rng(0)
    x = Tensor(rng.random((4, 1, 28, 28), dtype=np.float32), requires_grad=True)
    w1, w2 = (Tensor(rng.standard_normal(s).astype(np.float32), requires_grad=True) for s in [(16, 1, 3, 3), (32, 16, 3, 3)])
    h = F.relu(F.conv2d(x, w1, None, stride=2, padding=1))
    assert type(h._ctx.parents[0]._ctx).__name__ == "StridedConv2dFast"
    assert h.data.transpose(0, 2, 3, 1).flags.c_contiguous  # channels last: the next layer reads it as rows
    y = F.conv2d(h, w2, None, stride=2, padding=1)
    assert y.shape == (4, 32, 7, 7)
    y.sum().backward()
    with tg.fast_paths(False):
        x_ref = Tensor(x.data, requires_grad=True)
        F.conv2d(F.relu(F.conv2d(x_ref, Tensor(w1.data), None, stride=2, padding=1)), Tensor(w2.data), None,
                 stride=2, padding=1).sum().backward()
    assert rel_error(x.grad, x_ref.grad) < 1e-4


def test_strided_fast_path_leaves_big_layers_and_bad_input_to_the_reference(monkeypatch):
    from tinygrad_cv.kernels.fast import strided_conv

    x, w = np.zeros((2, 3, 8, 8), np.float32), np.zeros((4, 3, 3, 3), np.float32)
    assert strided_conv.supports(x, w, None, 2, 1, 1, 1)
    assert not strided_conv.supports(x, w, None, 1, 1, 1, 1)  # not strided: conv3x3 or the reference
    assert not strided_conv.supports(x, w, None, 2, 1, 2, 1)  # dilated
    assert not strided_conv.supports(x, np.zeros((4, 2, 3, 3), np.float32), None, 2, 1, 1, 1)  # channel mismatch
    assert not strided_conv.supports(x, np.zeros((4, 3, 9, 9), np.float32), None, 2, 0, 1, 1)  # kernel > image
    monkeypatch.setattr(strided_conv, "MAX_ROWS_BYTES", 100)
    assert not strided_conv.supports(x, w, None, 2, 1, 1, 1)
    with pytest.raises(ValueError, match="channels"):
        F.conv2d(Tensor(x), Tensor(np.zeros((4, 2, 3, 3), np.float32)), stride=2)


def test_strided_fast_conv_passes_gradcheck():
    from tinygrad_cv.gradcheck import gradcheck

    rng = np.random.default_rng(3)
    x, w, b = rng.standard_normal((2, 3, 7, 6)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    assert gradcheck(lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1), [x, w, b])


@settings(max_examples=25, deadline=None)
@given(shape=st.tuples(st.integers(1, 3), st.integers(1, 9), st.integers(1, 9), st.integers(1, 6), st.integers(1, 6)),
       padded=st.booleans(), bias=st.booleans(), seed=st.integers(0, 2**16))
def test_upsample_conv_layer_equals_upsample_then_conv(shape, padded, bias, seed):
    """Any batch, channels and size (odd ones too), input in either layout it meets, with or without
    a bias: the fast layer gives the reference pair's output and gradients for x, w and b."""
    N, C, O, H, W = shape
    rng = np.random.default_rng(seed)
    layer = nn.UpsampleConv2d(C, O, 3, bias=bias, rng=rng)
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    x_in = channels_last.interior(channels_last.as_padded(x)) if padded else x
    g = rng.standard_normal((N, O, 2 * H, 2 * W)).astype(np.float32)
    results = []
    for fast in (True, False):
        with tg.fast_paths(fast):
            layer.zero_grad()
            xt = Tensor(x_in, requires_grad=True)
            y = layer(xt)
            assert isinstance(y._ctx, upsample_conv_fast.UpsampleConv3x3Fast) == fast
            (y * Tensor(g)).sum().backward()
            results.append([y.data, xt.grad] + [p.grad for p in layer.parameters()])
    for fast_value, reference_value in zip(*results):
        assert fast_value.shape == reference_value.shape
        assert rel_error(fast_value, reference_value) < 1e-4


def test_upsample_conv_layer_passes_gradcheck():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 3, 4))
    w, b = rng.standard_normal((2, 3, 3, 3)), rng.standard_normal(2)
    assert upsample_conv_fast.fits(x, w, b, (2, 2))
    with tg.fast_paths(True):
        assert tg.gradcheck(lambda x, w, b: upsample_conv_fast.UpsampleConv3x3Fast.apply(x, w, b), [x, w, b])


def test_phase_weights_and_their_adjoint():
    """Each phase's 2x2 kernel sums the 3x3 taps that read the same small-image pixel (so the taps of a
    phase add up to the whole kernel; a corner tap of the window that only one 3x3 tap reads is that tap),
    and weight_from_phases is its adjoint: <P(w), v> = <w, P^T(v)>."""
    rng = np.random.default_rng(4)
    w = rng.standard_normal((2, 3, 3, 3))
    phases = upsample_conv.phase_weights(w).reshape(2, 2, 2, 3, 2, 2)  # (r, s, O, C, t, u)
    assert np.allclose(phases.sum(axis=(4, 5)), w.sum(axis=(2, 3))[None, None])
    assert np.allclose(phases[0, 0, :, :, 0, 0], w[:, :, 0, 0]) and np.allclose(phases[1, 1, :, :, 1, 1], w[:, :, 2, 2])
    assert np.allclose(phases[0, 0, :, :, 1, 1], w[:, :, 1:, 1:].sum(axis=(2, 3)))
    v = rng.standard_normal((8, 3, 2, 2))
    assert np.isclose((upsample_conv.phase_weights(w) * v).sum(), (w * upsample_conv.weight_from_phases(v)).sum())


def test_upsample_conv_layer_takes_the_reference_path_elsewhere_and_checks_its_kernel(monkeypatch):
    from tinygrad_cv.kernels.fast import strided_conv

    x = np.zeros((1, 2, 3, 3), np.float32)
    layer = nn.UpsampleConv2d(2, 4, 3)
    assert upsample_conv_fast.fits(x, layer.weight, layer.bias, (2, 2))
    monkeypatch.setattr(strided_conv, "MAX_ROWS_BYTES", 1 * 4 * 4 * 4 * 2 * 4 - 1)  # rows of 2x2 windows: 512 bytes
    assert not upsample_conv_fast.fits(x, layer.weight, layer.bias, (2, 2))  # too big to keep: the reference
    assert layer(Tensor(x)).shape == (1, 4, 6, 6)
    monkeypatch.undo()
    assert not upsample_conv_fast.fits(x, layer.weight, layer.bias, (3, 3))  # another scale
    assert not upsample_conv_fast.fits(x.astype(np.float64), layer.weight, layer.bias, (2, 2))  # mixed dtypes
    assert nn.UpsampleConv2d(2, 4, 5, scale_factor=3)(Tensor(x)).shape == (1, 4, 9, 9)  # reference path
    with pytest.raises(ValueError, match="odd"):
        nn.UpsampleConv2d(2, 4, 2)
