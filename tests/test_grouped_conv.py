"""Grouped convolution (``groups`` in F.conv2d / nn.Conv2d), its depthwise and 1x1 fast paths, batch
normalisation and ReLU6: values against plain NumPy loops, float64 gradient checks, fast = reference."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tinygrad_cv as tg
import tinygrad_cv.functional as F
from tinygrad_cv import Tensor, nn
from tinygrad_cv.functional import conv_fast, depthwise_fast, pointwise_fast
from tinygrad_cv.functional.strided_conv_fast import StridedConv2dFast
from tinygrad_cv.kernels.fast import channels_last, depthwise
from tinygrad_cv.kernels.geometry import Window

gradcheck_settings = settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])


def naive_grouped_conv(x, w, b, stride, padding, dilation, groups):
    """The definition, one output value at a time."""
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    N, C, H, W = x.shape
    O, Cg, KH, KW = w.shape
    xpad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    OH = (H + 2 * ph - dh * (KH - 1) - 1) // sh + 1
    OW = (W + 2 * pw - dw * (KW - 1) - 1) // sw + 1
    y = np.zeros((N, O, OH, OW))
    for o in range(O):
        g = o // (O // groups)
        for i in range(OH):
            for j in range(OW):
                window = xpad[:, g * Cg:(g + 1) * Cg, i * sh:i * sh + dh * (KH - 1) + 1:dh,
                              j * sw:j * sw + dw * (KW - 1) + 1:dw]
                y[:, o, i, j] = (window * w[o]).sum(axis=(1, 2, 3)) + (0 if b is None else b[o])
    return y


@st.composite
def grouped_geometries(draw):
    """groups 1-3, 1-2 input and output channels per group, kernel 1-3, stride 1-2, padding 0-1, dilation 1-2."""
    groups, cg, og = draw(st.integers(1, 3)), draw(st.integers(1, 2)), draw(st.integers(1, 2))
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    geometry = dict(stride=(draw(st.integers(1, 2)), draw(st.integers(1, 2))),
                    padding=(draw(st.integers(0, 1)), draw(st.integers(0, 1))),
                    dilation=(draw(st.integers(1, 2)), draw(st.integers(1, 2))))
    sides = tuple(draw(st.integers(max(1, d * (k - 1) + 1 - 2 * p), d * (k - 1) + 4))
                  for k, p, d in zip(kernel, geometry["padding"], geometry["dilation"]))
    x_shape = (draw(st.integers(1, 2)), groups * cg) + sides
    return x_shape, (groups * og, cg) + kernel, geometry, groups


def arrays(x_shape, w_shape, seed):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])


@gradcheck_settings
@given(case=grouped_geometries(), seed=st.integers(0, 2**16))
def test_grouped_conv_matches_loops_and_gradcheck(xp, case, seed):
    x_shape, w_shape, geometry, groups = case
    x, w, b = arrays(x_shape, w_shape, seed)
    y = F.conv2d(Tensor(xp.asarray(x)), Tensor(xp.asarray(w)), Tensor(xp.asarray(b)), groups=groups, **geometry)
    np.testing.assert_allclose(tg.backend.to_device(y.data, "cpu"),
                               naive_grouped_conv(x, w, b, groups=groups, **geometry), atol=1e-10)
    assert tg.gradcheck(lambda x, w, b: F.conv2d(x, w, b, groups=groups, **geometry), [xp.asarray(a) for a in (x, w, b)])


def run_both_paths(x, w, b, **kwargs):
    """Output and the three gradients of sum(y * r), on the fast and on the reference path."""
    r = np.random.default_rng(1).standard_normal(F.conv2d(Tensor(x), Tensor(w), None, **kwargs).shape)
    results = []
    for fast in (True, False):
        with tg.fast_paths(fast):
            ts = [Tensor(a, requires_grad=True) for a in (x, w, b)]
            y = F.conv2d(*ts, **kwargs)
            (y * r.astype(x.dtype)).sum().backward()
            results.append([y.data] + [t.grad for t in ts])
    return results


DEPTHWISE_GEOMETRIES = [  # kernel, stride, padding, dilation
    (3, 1, 1, 1), (5, 2, 2, 1), (3, 2, 0, 1), (5, 1, (2, 1), 1), (3, (3, 2), (1, 2), 1), (3, 2, 3, 2), (2, 3, 0, (1, 3)),
    (3, (2, 1), (1, 2), (2, 2)), (3, 1, (3, 0), 1)]


@pytest.mark.parametrize("kernel, stride, padding, dilation", DEPTHWISE_GEOMETRIES)
def test_depthwise_forward_paths_agree_with_the_definition(kernel, stride, padding, dilation):
    """Each of the three forward paths (taps, rows where the width stride is 1, windows) on its own."""
    rng = np.random.default_rng(3)
    x, w, b = rng.standard_normal((2, 5, 10, 11)), rng.standard_normal((5, 1, kernel, kernel)), rng.standard_normal(5)
    win = Window.of(kernel, stride, padding, dilation)
    out_hw = win.output_size(x.shape)
    expected = naive_grouped_conv(x, w, b, win.stride, win.padding, win.dilation, groups=5)
    paths = [depthwise.forward_taps, depthwise.forward_windows] + [depthwise.forward_rows] * (win.stride[1] == 1)
    for path in paths:
        np.testing.assert_allclose(path(x, w, b, win, out_hw), expected, rtol=1e-10, atol=1e-10, err_msg=path.__name__)


def test_depthwise_rows_path_notices_weights_changed_in_place():
    """The tap weights repeated along a row are kept between calls, but not past an in-place update."""
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal((1, 3, 6, 7)), rng.standard_normal((3, 1, 3, 3))
    geometry = dict(stride=(1, 1), padding=(1, 1), dilation=(1, 1))
    for _ in range(2):
        np.testing.assert_allclose(depthwise.depthwise_forward(x, w, None, 1, 1),
                                   naive_grouped_conv(x, w, None, groups=3, **geometry), rtol=1e-10, atol=1e-10)
        w *= -0.5  # as an optimiser's step would


@pytest.mark.parametrize("channels", [6, depthwise.EINSUM_MIN_CHANNELS, depthwise.WINDOWS_MIN_CHANNELS])
@pytest.mark.parametrize("kernel, stride, padding, dilation", DEPTHWISE_GEOMETRIES)
def test_depthwise_fast_equals_reference(kernel, stride, padding, dilation, channels):
    """The fast path reads rows of the padded input with einsum (stride 1 along the width, fewer than
    WINDOWS_MIN_CHANNELS channels), or cuts strided inputs into stride phases (few channels) or reads
    one window view with einsum (many): odd sizes, strides 2 and 3, padding larger than the stride,
    dilation."""
    rng = np.random.default_rng(0)
    C = channels
    x, w, b = rng.standard_normal((2, C, 11, 9)), rng.standard_normal((C, 1, kernel, kernel)), rng.standard_normal(C)
    assert conv_fast.grouped_fast_op(x, w, b, stride, padding, dilation, C) is depthwise_fast.DepthwiseConv2dFast
    fast, reference = run_both_paths(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=C)
    for a, r in zip(fast, reference):
        np.testing.assert_allclose(a, r, rtol=1e-10, atol=1e-10)


def test_depthwise_einsum_reads_a_channels_last_input_in_place():
    """An NCHW view of a channels-last array with no padding (what the explicit SAME pad of a strided
    layer gives) is read through the window view without a copy; the result is channels-last too."""
    rng = np.random.default_rng(2)
    C = depthwise.EINSUM_MIN_CHANNELS
    x = rng.standard_normal((2, 9, 8, C)).transpose(0, 3, 1, 2)
    w, b = rng.standard_normal((C, 1, 3, 3)), rng.standard_normal(C)
    win = Window.of((3, 3), 2, 0)
    assert np.shares_memory(channels_last.padded(x, win.padding), x)
    y = depthwise.depthwise_forward(x, w, b, 2, 0)
    assert y.transpose(0, 2, 3, 1).flags.c_contiguous
    np.testing.assert_allclose(y, naive_grouped_conv(x, w, b, groups=C, stride=(2, 2), padding=(0, 0),
                                                     dilation=(1, 1)), rtol=1e-10, atol=1e-10)


def test_pointwise_fast_equals_reference_in_float32():
    rng = np.random.default_rng(0)
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in ((3, 5, 4, 6), (7, 5, 1, 1), (7,)))
    assert conv_fast.grouped_fast_op(x, w, b, 1, 0, 1, 1) is pointwise_fast.PointwiseConv2dFast
    fast, reference = run_both_paths(x, w, b)
    for a, r in zip(fast, reference):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, r, rtol=1e-4, atol=1e-4)


def test_fast_paths_decline_what_they_do_not_compute():
    x = np.zeros((1, 4, 5, 5))
    assert conv_fast.grouped_fast_op(x, np.zeros((4, 2, 3, 3)), None, 1, 1, 1, 2) is None  # grouped, not depthwise
    assert conv_fast.grouped_fast_op(x, np.zeros((4, 4, 1, 1)), None, 2, 0, 1, 1) is StridedConv2dFast  # not pointwise
    assert conv_fast.grouped_fast_op(x.astype(np.float32), np.zeros((4, 1, 3, 3)), None, 1, 1, 1, 4) is None  # dtypes differ


def test_grouped_conv_errors_name_the_shapes():
    with pytest.raises(ValueError, match="groups=3"):
        F.conv2d(Tensor(np.zeros((1, 4, 5, 5))), Tensor(np.zeros((4, 2, 3, 3))), groups=3)
    with pytest.raises(ValueError, match="groups=3 must divide"):
        nn.Conv2d(4, 6, 3, groups=3)


def test_conv2d_layer_depthwise_shapes():
    layer = nn.Conv2d(6, 6, 3, padding=1, groups=6)
    assert layer.weight.shape == (6, 1, 3, 3)
    assert layer(Tensor(np.zeros((2, 6, 7, 7), dtype=np.float32))).shape == (2, 6, 7, 7)


# ---- batch normalisation and ReLU6 -----------------------------------------------------------------
def test_batchnorm_training_matches_formula_and_updates_running_stats_like_pytorch():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3, 5, 6)) * 2 + 1
    bn = nn.BatchNorm2d(3, eps=1e-3, momentum=0.1)
    bn.weight.data, bn.bias.data = np.array([1.0, 2.0, -0.5]), np.array([0.0, 0.5, 1.0])
    y = bn(Tensor(x)).data
    mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
    expected = (x - mean[:, None, None]) / np.sqrt(var[:, None, None] + 1e-3) * bn.weight.data[:, None, None] \
        + bn.bias.data[:, None, None]
    np.testing.assert_allclose(y, expected, atol=1e-10)
    # PyTorch: running = 0.9 * running + 0.1 * batch, with the unbiased variance (count 4*5*6 = 120).
    np.testing.assert_allclose(bn.running_mean.data, 0.1 * mean, rtol=1e-6)
    np.testing.assert_allclose(bn.running_var.data, 0.9 + 0.1 * var * 120 / 119, rtol=1e-6)


def test_batchnorm_eval_uses_running_stats():
    rng = np.random.default_rng(1)
    bn = nn.BatchNorm2d(3, eps=1e-3).eval()
    bn.running_mean.data, bn.running_var.data = rng.standard_normal(3), rng.random(3) + 0.5
    bn.weight.data, bn.bias.data = rng.standard_normal(3), rng.standard_normal(3)
    x = rng.standard_normal((2, 3, 4, 4))
    expected = (x - bn.running_mean.data[:, None, None]) / np.sqrt(bn.running_var.data[:, None, None] + 1e-3) \
        * bn.weight.data[:, None, None] + bn.bias.data[:, None, None]
    np.testing.assert_allclose(bn(Tensor(x)).data, expected, atol=1e-10)
    before = bn.running_mean.data.copy()
    bn(Tensor(x))
    np.testing.assert_array_equal(bn.running_mean.data, before)  # eval never updates the averages


@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_gradcheck(training):
    rng = np.random.default_rng(2)
    bn = nn.BatchNorm2d(2, eps=1e-3).train(training)
    bn.running_var.data = np.array([0.7, 1.3])

    def fn(x, w, b):
        bn.weight, bn.bias = w, b
        return bn(x)

    assert tg.gradcheck(fn, [rng.standard_normal((3, 2, 3, 2)), rng.standard_normal(2), rng.standard_normal(2)])


def test_relu6_clips_and_passes_gradient_inside():
    x = Tensor(np.array([-1.0, 0.5, 3.0, 7.0]), requires_grad=True)
    y = nn.ReLU6()(x)
    y.sum().backward()
    np.testing.assert_array_equal(y.data, [0.0, 0.5, 3.0, 6.0])
    np.testing.assert_array_equal(x.grad, [0.0, 1.0, 1.0, 0.0])
