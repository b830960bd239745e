"""The raw kernels against naive loops, scipy.signal.correlate2d and their own adjoints.

Every kernel test takes the ``xp`` fixture: it runs on NumPy, and on CuPy (the CUDA kernels) where a
GPU is present, always comparing with the same NumPy/loop reference (1e-5 relative for float32).
The naive references loop over output pixels and do one small dot product per pixel: slow, and
obviously the definition.
"""
from __future__ import annotations

import tracemalloc
from dataclasses import dataclass
from typing import Tuple

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.signal import correlate2d

from tinygrad_cv import backend
from tinygrad_cv.kernels import conv, im2col, pool, relu, upsample
from tinygrad_cv.kernels.geometry import Window, pair

# The xp fixture is stateless, so sharing it between Hypothesis examples is safe.
fixture_ok = settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=100)


# ---- references ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    """One convolution geometry with its input and weight shapes."""

    N: int
    C: int
    O: int
    H: int
    W: int
    kernel: Tuple[int, int]
    stride: Tuple[int, int]
    padding: Tuple[int, int]
    dilation: Tuple[int, int]
    seed: int

    @property
    def x_shape(self):
        return (self.N, self.C, self.H, self.W)

    @property
    def w_shape(self):
        return (self.O, self.C) + self.kernel

    @property
    def settings(self):
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation)

    @property
    def out_hw(self):
        return Window(self.kernel, self.stride, self.padding, self.dilation).output_size(self.x_shape)

    def arrays(self, dtype=np.float64):
        rng = np.random.default_rng(self.seed)
        x = rng.standard_normal(self.x_shape).astype(dtype)
        w = rng.standard_normal(self.w_shape).astype(dtype)
        b = rng.standard_normal(self.O).astype(dtype)
        return x, w, b


@st.composite
def cases(draw, max_side_extra=6):
    """Batch 1-3, channels 1-8, kernel 1-5, stride 1-3, padding 0-2, dilation 1-2, H != W mostly."""
    kernel = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    sides = []
    for k, p, d in zip(kernel, padding, dilation):
        smallest = max(1, d * (k - 1) + 1 - 2 * p)  # the window must fit in the padded input
        sides.append(draw(st.integers(smallest, smallest + max_side_extra)))
    return Case(draw(st.integers(1, 3)), draw(st.integers(1, 8)), draw(st.integers(1, 8)), sides[0], sides[1],
                kernel, stride, padding, dilation, draw(st.integers(0, 2**16)))


def padded(x, padding, value=0.0):
    (ph, pw) = pair(padding, "padding")
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value)


def window_slices(i, j, kernel, stride, dilation):
    """Rows and columns of the padded input under output pixel (i, j)."""
    (KH, KW), (SH, SW), (DH, DW) = kernel, stride, dilation
    return (slice(i * SH, i * SH + DH * (KH - 1) + 1, DH), slice(j * SW, j * SW + DW * (KW - 1) + 1, DW))


def naive_conv2d(x, w, b, case):
    xpad = padded(x, case.padding)
    OH, OW = case.out_hw
    y = np.zeros((case.N, case.O, OH, OW))
    for n in range(case.N):
        for i in range(OH):
            for j in range(OW):
                rows, cols = window_slices(i, j, case.kernel, case.stride, case.dilation)
                y[n, :, i, j] = np.tensordot(w, xpad[n, :, rows, cols], axes=3)
    return y if b is None else y + b[None, :, None, None]


def naive_conv2d_grads(x, w, g, case):
    """(dx, dw) of sum(g * conv2d(x, w)) by looping over output pixels."""
    ph, pw = case.padding
    xpad = padded(x, case.padding)
    dxpad, dw = np.zeros_like(xpad), np.zeros_like(w)
    OH, OW = case.out_hw
    for n in range(case.N):
        for i in range(OH):
            for j in range(OW):
                rows, cols = window_slices(i, j, case.kernel, case.stride, case.dilation)
                dxpad[n, :, rows, cols] += np.tensordot(g[n, :, i, j], w, axes=1)
                dw += np.multiply.outer(g[n, :, i, j], xpad[n, :, rows, cols])
    return dxpad[:, :, ph:ph + case.H, pw:pw + case.W], dw


def scipy_conv2d(x, w, case):
    """Sum over input channels of scipy's 2-D correlation, with a dilated kernel and subsampling."""
    (DH, DW), (SH, SW) = case.dilation, case.stride
    xpad = padded(x, case.padding)
    OH, OW = case.out_hw
    y = np.zeros((case.N, case.O, OH, OW))
    for n in range(case.N):
        for o in range(case.O):
            for c in range(case.C):
                dilated = np.zeros((DH * (case.kernel[0] - 1) + 1, DW * (case.kernel[1] - 1) + 1))
                dilated[::DH, ::DW] = w[o, c]
                full = correlate2d(xpad[n, c], dilated, mode="valid")
                y[n, o] += full[::SH, ::SW][:OH, :OW]
    return y


def on(xp, *arrays):
    """Copy NumPy arrays to xp's device."""
    out = [xp.asarray(a) for a in arrays]
    return out[0] if len(out) == 1 else out


def cpu(a):
    return backend.to_device(a, "cpu")


# ---- im2col / col2im ----------------------------------------------------------------------------
@fixture_ok
@given(case=cases())
def test_im2col_columns_are_the_windows(xp, case):
    x, _, _ = case.arrays()
    cols = cpu(im2col.im2col(on(xp, x), case.kernel, **case.settings))
    OH, OW = case.out_hw
    xpad = padded(x, case.padding)
    assert cols.shape == (case.C * case.kernel[0] * case.kernel[1], case.N * OH * OW)
    for n, i, j in [(0, 0, 0), (case.N - 1, OH - 1, OW - 1), (case.N // 2, OH // 2, OW - 1)]:
        rows, cs = window_slices(i, j, case.kernel, case.stride, case.dilation)
        np.testing.assert_array_equal(cols[:, (n * OH + i) * OW + j], xpad[n, :, rows, cs].reshape(-1))


@fixture_ok
@given(case=cases())
def test_col2im_is_the_adjoint_of_im2col(xp, case):
    """<im2col(x), c> == <x, col2im(c)> for random x and c: col2im is exactly the transpose."""
    x, _, _ = case.arrays()
    c = np.random.default_rng(case.seed + 1).standard_normal(
        (case.C * case.kernel[0] * case.kernel[1], case.N * case.out_hw[0] * case.out_hw[1]))
    lhs = float((cpu(im2col.im2col(on(xp, x), case.kernel, **case.settings)) * c).sum())
    back = cpu(im2col.col2im(on(xp, c), case.x_shape, case.kernel, **case.settings))
    assert back.shape == case.x_shape
    np.testing.assert_allclose(lhs, float((x * back).sum()), rtol=1e-10)


# ---- convolution --------------------------------------------------------------------------------
@fixture_ok
@given(case=cases())
def test_conv2d_forward_matches_naive_loop_and_scipy(xp, case):
    x, w, b = case.arrays()
    y = cpu(conv.conv2d_forward(*on(xp, x, w, b), **case.settings))
    np.testing.assert_allclose(y, naive_conv2d(x, w, b, case), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(y - b[None, :, None, None], scipy_conv2d(x, w, case), rtol=1e-10, atol=1e-10)


@fixture_ok
@given(case=cases())
def test_conv2d_gradients_match_naive_loop(xp, case):
    x, w, _ = case.arrays()
    g = np.random.default_rng(case.seed + 2).standard_normal((case.N, case.O) + case.out_hw)
    dx_ref, dw_ref = naive_conv2d_grads(x, w, g, case)
    dx = cpu(conv.conv2d_grad_input(*on(xp, g, w), case.x_shape, **case.settings))
    dw = cpu(conv.conv2d_grad_weight(*on(xp, g, x), case.w_shape, **case.settings))
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(dw, dw_ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(cpu(conv.conv2d_grad_bias(on(xp, g))), g.sum(axis=(0, 2, 3)), rtol=1e-10)


@fixture_ok
@given(case=cases())
def test_grad_input_flipped_convolution_equals_col2im(xp, case):
    """For stride 1, the flipped-kernel convolution and col2im give the same input gradient."""
    case = Case(case.N, case.C, case.O, case.H, case.W, case.kernel, (1, 1),
                tuple(min(p, d * (k - 1)) for p, d, k in zip(case.padding, case.dilation, case.kernel)),
                case.dilation, case.seed)
    x, w, _ = case.arrays()
    g = np.random.default_rng(case.seed + 3).standard_normal((case.N, case.O) + case.out_hw)
    # dx[i] = sum_kh g[i + ph - kh*DH] w[kh]: a correlation of g, padded by DH*(KH-1) - ph, with w
    # reversed along kh and kw and its channel axes swapped.
    full = tuple(d * (k - 1) - p for d, k, p in zip(case.dilation, case.kernel, case.padding))
    w_flipped = np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))  # (C, O, KH, KW)
    flipped = cpu(conv.conv2d_forward(*on(xp, g, w_flipped), None, 1, full, case.dilation))
    via_col2im = cpu(conv.conv2d_grad_input(*on(xp, g, w), case.x_shape, **case.settings))
    np.testing.assert_allclose(flipped, via_col2im, rtol=1e-10, atol=1e-10)


def naive_conv_transpose2d(x, w, case, output_padding):
    """Stamp w, scaled by each input pixel, onto the output; then crop the padding."""
    (SH, SW), (ph, pw), (DH, DW) = case.stride, case.padding, case.dilation
    KH, KW = case.kernel
    N, C_in, H, W = x.shape
    full = np.zeros((N, w.shape[1], (H - 1) * SH + DH * (KH - 1) + 1 + output_padding[0],
                     (W - 1) * SW + DW * (KW - 1) + 1 + output_padding[1]))
    for n in range(N):
        for i in range(H):
            for j in range(W):
                rows, cols = window_slices(i, j, case.kernel, case.stride, case.dilation)
                full[n, :, rows, cols] += np.tensordot(x[n, :, i, j], w, axes=1)
    return full[:, :, ph:full.shape[2] - ph, pw:full.shape[3] - pw]


@fixture_ok
@given(case=cases(), data=st.data())
def test_conv_transpose2d_is_the_adjoint_of_conv2d(xp, case, data):
    """<conv2d(x, w), y> == <x, conv_transpose2d(y, w)>, and it matches a stamping loop."""
    x, w, _ = case.arrays()
    y = np.random.default_rng(case.seed + 4).standard_normal((case.N, case.O) + case.out_hw)
    # The output_padding that brings conv_transpose2d back to x's size exactly.
    extra = tuple((n + 2 * p - d * (k - 1) - 1) % s for n, p, d, k, s in zip(
        (case.H, case.W), case.padding, case.dilation, case.kernel, case.stride))
    xt = cpu(conv.conv_transpose2d_forward(*on(xp, y, w), None, output_padding=extra, **case.settings))
    assert xt.shape == case.x_shape
    lhs = float((cpu(conv.conv2d_forward(*on(xp, x, w), **case.settings)) * y).sum())
    np.testing.assert_allclose(lhs, float((x * xt).sum()), rtol=1e-9)
    np.testing.assert_allclose(xt, naive_conv_transpose2d(y, w, case, extra), rtol=1e-10, atol=1e-10)


def test_conv2d_float32_stays_float32_and_close_to_float64(xp):
    case = Case(2, 5, 7, 13, 9, (3, 3), (1, 2), (1, 0), (1, 1), seed=3)
    x, w, b = case.arrays(np.float32)
    y32 = conv.conv2d_forward(*on(xp, x, w, b), **case.settings)
    assert y32.dtype == np.float32
    y64 = naive_conv2d(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), case)
    np.testing.assert_allclose(cpu(y32), y64, rtol=1e-5, atol=1e-5)
    g = np.ones(y32.shape, np.float32)
    assert conv.conv2d_grad_input(on(xp, g), on(xp, w), x.shape, **case.settings).dtype == np.float32
    assert conv.conv2d_grad_weight(on(xp, g), on(xp, x), w.shape, **case.settings).dtype == np.float32


def test_conv_on_gpu_equals_numpy_in_float32(xp):
    """The CUDA kernels and cuBLAS give the NumPy results to 1e-5 relative (trivially so on NumPy)."""
    case = Case(2, 8, 6, 17, 12, (3, 2), (2, 1), (1, 2), (2, 1), seed=4)
    x, w, b = case.arrays(np.float32)
    g = np.random.default_rng(5).standard_normal((case.N, case.O) + case.out_hw).astype(np.float32)
    pairs = [
        (conv.conv2d_forward(x, w, b, **case.settings), conv.conv2d_forward(*on(xp, x, w, b), **case.settings)),
        (conv.conv2d_grad_input(g, w, x.shape, **case.settings),
         conv.conv2d_grad_input(*on(xp, g, w), x.shape, **case.settings)),
        (conv.conv2d_grad_weight(g, x, w.shape, **case.settings),
         conv.conv2d_grad_weight(*on(xp, g, x), w.shape, **case.settings)),
    ]
    for expected, got in pairs:
        np.testing.assert_allclose(cpu(got), expected, rtol=1e-5, atol=1e-5 * float(np.abs(expected).max()))


# ---- pooling, upsampling, ReLU ------------------------------------------------------------------
@st.composite
def pool_cases(draw):
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    p = (draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2)))
    H = draw(st.integers(max(1, k[0] - 2 * p[0]), 9))
    W = draw(st.integers(max(1, k[1] - 2 * p[1]), 9))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), H, W)
    return shape, k, s, p, draw(st.integers(0, 2**16))


def naive_max_pool(x, k, s, p):
    xpad = padded(x, p, value=-np.inf)
    N, C = x.shape[:2]
    win = Window.of(k, s, p)
    OH, OW = win.output_size(x.shape)
    y, arg = np.zeros((N, C, OH, OW)), np.zeros((N, C, OH, OW), int)
    for i in range(OH):
        for j in range(OW):
            rows, cols = window_slices(i, j, win.kernel, win.stride, (1, 1))
            windows = xpad[:, :, rows, cols].reshape(N, C, -1)
            y[:, :, i, j] = windows.max(axis=-1)
            arg[:, :, i, j] = windows.argmax(axis=-1)  # numpy: the first maximum in row-major order
    return y, arg


def naive_max_pool_backward(g, arg, x_shape, k, s, p):
    win = Window.of(k, s, p)
    (ph, pw), KW = win.padding, win.kernel[1]
    dx = np.zeros((x_shape[0], x_shape[1], x_shape[2] + 2 * ph, x_shape[3] + 2 * pw))
    for n, c, i, j in np.ndindex(*g.shape):
        kh, kw = divmod(arg[n, c, i, j], KW)
        dx[n, c, i * win.stride[0] + kh, j * win.stride[1] + kw] += g[n, c, i, j]
    return dx[:, :, ph:ph + x_shape[2], pw:pw + x_shape[3]]


@fixture_ok
@given(case=pool_cases(), ties=st.booleans())
def test_max_pool_matches_naive_loop(xp, case, ties):
    shape, k, s, p, seed = case
    rng = np.random.default_rng(seed)
    # With ties=True the values are small integers, so most windows hold several equal maxima.
    x = rng.integers(-2, 3, shape).astype(np.float64) if ties else rng.standard_normal(shape)
    y, arg = pool.max_pool2d_forward(on(xp, x), k, s, p)
    y_ref, arg_ref = naive_max_pool(x, k, s, p)
    np.testing.assert_array_equal(cpu(y), y_ref)
    np.testing.assert_array_equal(cpu(arg), arg_ref)
    g = rng.standard_normal(y_ref.shape)
    dx = cpu(pool.max_pool2d_backward(on(xp, g), arg, shape, k, s, p))
    np.testing.assert_allclose(dx, naive_max_pool_backward(g, arg_ref, shape, k, s, p), rtol=1e-12, atol=1e-12)


def test_max_pool_ties_go_to_the_first_element_in_window_order(xp):
    x = np.array([[[[1.0, 5.0, 5.0, 0.0],
                    [5.0, 5.0, 0.0, 5.0],
                    [2.0, 2.0, 3.0, 3.0],
                    [2.0, 2.0, 3.0, 3.0]]]])
    y, arg = pool.max_pool2d_forward(on(xp, x), 2)
    np.testing.assert_array_equal(cpu(y), [[[[5.0, 5.0], [2.0, 3.0]]]])
    np.testing.assert_array_equal(cpu(arg), [[[[1, 0], [0, 0]]]])  # tap index kh*KW + kw
    dx = cpu(pool.max_pool2d_backward(on(xp, np.ones((1, 1, 2, 2))), arg, x.shape, 2))
    np.testing.assert_array_equal(dx, [[[[0, 1, 1, 0], [0, 0, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]]]])


@fixture_ok
@given(case=pool_cases())
def test_avg_pool_matches_naive_loop_and_its_adjoint(xp, case):
    shape, k, s, p, seed = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    win = Window.of(k, s, p)
    OH, OW = win.output_size(shape)
    xpad = padded(x, p)
    ref = np.zeros(shape[:2] + (OH, OW))
    for i in range(OH):
        for j in range(OW):
            rows, cols = window_slices(i, j, win.kernel, win.stride, (1, 1))
            ref[:, :, i, j] = xpad[:, :, rows, cols].mean(axis=(2, 3))
    y = cpu(pool.avg_pool2d_forward(on(xp, x), k, s, p))
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(ref.shape)
    dx = cpu(pool.avg_pool2d_backward(on(xp, g), shape, k, s, p))
    np.testing.assert_allclose(float((y * g).sum()), float((x * dx).sum()), rtol=1e-10)


def test_upsample_nearest_is_repeat_and_backward_sums_blocks(xp):
    x = np.arange(2 * 3 * 2 * 3, dtype=np.float64).reshape(2, 3, 2, 3)
    y = cpu(upsample.upsample_nearest2d_forward(on(xp, x), (2, 3)))
    np.testing.assert_array_equal(y, x.repeat(2, axis=2).repeat(3, axis=3))
    g = np.random.default_rng(0).standard_normal(y.shape)
    dx = cpu(upsample.upsample_nearest2d_backward(on(xp, g), (2, 3)))
    np.testing.assert_allclose(float((y * g).sum()), float((x * dx).sum()), rtol=1e-12)
    with pytest.raises(ValueError, match="scale_factor"):
        upsample.upsample_nearest2d_forward(on(xp, x), 1.5)


def test_relu_forward_backward(xp):
    x = np.array([-2.0, -0.0, 0.0, 0.5, 3.0, np.nan], dtype=np.float32)
    y = cpu(relu.relu_forward(on(xp, x)))
    np.testing.assert_array_equal(y[:5], [0, 0, 0, 0.5, 3.0])
    assert np.isnan(y[5])
    g = np.arange(1, 7, dtype=np.float32)
    dx = cpu(relu.relu_backward(on(xp, g), on(xp, y)))
    np.testing.assert_array_equal(dx, [0, 0, 0, 4, 5, 0])  # the subgradient at 0 is 0
    assert y.dtype == dx.dtype == np.float32


# ---- bad input ----------------------------------------------------------------------------------
@pytest.mark.parametrize("x_shape, w_shape, settings, message", [
    ((3, 8, 8), (4, 3, 3, 3), {}, r"4-D.*\(3, 8, 8\)"),
    ((1, 2, 8, 8), (4, 3, 3, 3), {}, r"2 channels.*\(1, 2, 8, 8\).*expects 3.*\(4, 3, 3, 3\)"),
    ((1, 3, 2, 2), (4, 3, 5, 5), {"padding": 1}, r"kernel \(5, 5\).*spans \(5, 5\).*padded input \(4, 4\).*\(1, 3, 2, 2\)"),
    ((1, 3, 8, 8), (4, 3, 3, 3), {"stride": 0}, r"stride must be >= 1, got \(0, 0\)"),
    ((1, 3, 8, 8), (4, 3, 3, 3), {"dilation": (1, 0)}, r"dilation must be >= 1"),
    ((1, 3, 8, 8), (4, 3, 3, 3), {"padding": -1}, r"padding must be >= 0"),
])
def test_conv2d_rejects_bad_input_naming_shapes(x_shape, w_shape, settings, message):
    with pytest.raises(ValueError, match=message):
        conv.conv2d_forward(np.zeros(x_shape), np.zeros(w_shape), **settings)


def test_pool_and_transpose_reject_bad_input():
    with pytest.raises(ValueError, match=r"4-D.*\(8, 8\)"):
        pool.max_pool2d_forward(np.zeros((8, 8)), 2)
    with pytest.raises(ValueError, match=r"padding \(2, 2\) must be at most half the kernel size \(3, 3\)"):
        pool.max_pool2d_forward(np.zeros((1, 1, 8, 8)), 3, padding=2)
    with pytest.raises(ValueError, match=r"spans \(3, 3\).*padded input \(2, 2\)"):
        pool.avg_pool2d_forward(np.zeros((1, 1, 2, 2)), 3)
    with pytest.raises(ValueError, match=r"output_padding \(2, 2\).*stride \(2, 2\)"):
        conv.conv_transpose2d_forward(np.zeros((1, 3, 4, 4)), np.zeros((3, 2, 3, 3)), stride=2, output_padding=2)
    with pytest.raises(ValueError, match=r"input \(1, 4, 4, 4\) and weight \(3, 2, 3, 3\)"):
        conv.conv_transpose2d_forward(np.zeros((1, 4, 4, 4)), np.zeros((3, 2, 3, 3)))


# ---- memory -------------------------------------------------------------------------------------
def test_conv_forward_backward_peak_memory_stays_under_four_im2col_buffers():
    """Forward + all three gradients never hold more than 4x the im2col buffer beyond the inputs.

    (The benchmark measures the same at 1x64x512x512; a small copy of it keeps the suite fast.)
    """
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 16, 64, 64), dtype=np.float32)
    w = rng.standard_normal((16, 16, 3, 3), dtype=np.float32)
    b = np.zeros(16, np.float32)
    cols_bytes = 16 * 9 * 64 * 64 * 4
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        y = conv.conv2d_forward(x, w, b, padding=1)
        g = np.ones_like(y)
        dw = conv.conv2d_grad_weight(g, x, w.shape, padding=1)
        dx = conv.conv2d_grad_input(g, w, x.shape, padding=1)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert dx.shape == x.shape and dw.shape == w.shape
    assert cols_bytes < peak < 4 * cols_bytes, f"peak {peak / cols_bytes:.2f}x the im2col buffer"
