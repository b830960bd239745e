"""The fast 3x3 convolution (kernels/conv3x3.py) against the im2col reference (kernels/conv.py).

The shifted-GEMM path must give the im2col path's numbers (relative error < 1e-4 in float32) for every
batch size, channel count and image size, forward and backward, alone, fused with ReLU, and chained
through pooling layers that keep its padded channels-last layout.
"""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_cv as tg
import tinygrad_cv.functional as F
from tinygrad_cv import Tensor, kernels
from tinygrad_cv.functional.conv import conv2d_relu
from tinygrad_cv.kernels import conv3x3, winograd

shapes = st.tuples(st.integers(1, 3), st.integers(1, 7), st.integers(1, 7), st.integers(1, 9), st.integers(1, 9))


def rel_error(actual: np.ndarray, expected: np.ndarray) -> float:
    return float(np.abs(actual - expected).max() / max(np.abs(expected).max(), 1e-30))


def arrays(shape, seed, dtype=np.float32):
    N, C, O, H, W = shape
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((O, C, 3, 3)).astype(dtype)
    b = rng.standard_normal(O).astype(dtype)
    g = rng.standard_normal((N, O, H, W)).astype(dtype)
    return x, w, b, g


# ---- the kernels against im2col + GEMM ---------------------------------------------------------------
@settings(max_examples=30)
@given(shape=shapes, seed=st.integers(0, 2**16))
def test_shifted_gemms_match_im2col_forward_and_gradients(shape, seed):
    x, w, b, g = arrays(shape, seed)
    xpad, tap_mats = conv3x3.as_padded(x), conv3x3.taps(w)
    y = conv3x3.interior(conv3x3.conv3x3_padded(xpad, tap_mats, b))
    assert rel_error(y, kernels.conv2d_forward(x, w, b, 1, 1)) < 1e-4

    gpad = conv3x3.as_padded(g)
    dx = conv3x3.interior(conv3x3.conv3x3_padded_grad_input(gpad, tap_mats))
    dw = conv3x3.taps_to_weight(conv3x3.conv3x3_padded_grad_weight(xpad, gpad))
    db = conv3x3.conv3x3_padded_grad_bias(gpad)
    assert rel_error(dx, kernels.conv2d_grad_input(g, w, x.shape, 1, 1)) < 1e-4
    assert rel_error(dw, kernels.conv2d_grad_weight_im2col(g, x, w.shape, 1, 1)) < 1e-4
    assert rel_error(kernels.conv2d_grad_weight(g, x, w.shape, 1, 1), dw) < 1e-6  # dispatches here
    assert rel_error(db, kernels.conv2d_grad_bias(g)) < 1e-4


def test_output_is_zero_bordered_and_blocks_cover_every_row(monkeypatch):
    """Tiny blocks (many per image, some straddling two images) give the same result as one block."""
    x, w, b, _ = arrays((3, 4, 5, 6, 7), seed=1)
    whole = conv3x3.conv3x3_padded(conv3x3.as_padded(x), conv3x3.taps(w), b, relu=True)
    monkeypatch.setattr(conv3x3, "MIN_BLOCK_ROWS", 5)
    monkeypatch.setattr(conv3x3, "BLOCK_BYTES", 1)
    blocks = conv3x3.conv3x3_padded(conv3x3.as_padded(x), conv3x3.taps(w), b, relu=True)
    np.testing.assert_allclose(whole, blocks, rtol=1e-5, atol=1e-5)  # BLAS may round blocks differently
    assert conv3x3.border_is_zero(whole) and conv3x3.border_is_zero(blocks)
    expected = np.maximum(kernels.conv2d_forward(x, w, b, 1, 1), 0)
    assert rel_error(conv3x3.interior(whole), expected) < 1e-4


def test_taps_round_trip_and_order():
    w = np.arange(2 * 3 * 9, dtype=np.float32).reshape(2, 3, 3, 3)
    tap_mats = conv3x3.taps(w)
    assert tap_mats.shape == (9, 2, 3) and tap_mats.flags.c_contiguous
    np.testing.assert_array_equal(tap_mats[3 * 2 + 1], w[:, :, 2, 1])
    np.testing.assert_array_equal(conv3x3.taps_to_weight(tap_mats), w)
    assert conv3x3.shifts(5) == [-8, -7, -6, -1, 0, 1, 6, 7, 8]  # rows of the 7-wide padded grid


# ---- the padded layout ------------------------------------------------------------------------------------
def test_as_padded_reuses_a_padded_buffer_and_copies_anything_else():
    x, w, b, _ = arrays((2, 3, 4, 5, 6), seed=2)
    xpad = conv3x3.as_padded(x)
    assert xpad.shape == (2, 7, 8, 3) and conv3x3.border_is_zero(xpad)
    np.testing.assert_array_equal(conv3x3.interior(xpad), x)
    assert conv3x3.as_padded(conv3x3.interior(xpad)) is xpad  # no copy between layers
    cropped = conv3x3.interior(xpad)[:, :, 1:]
    assert conv3x3.padded_buffer_of(cropped) is None  # a view of part of it is not its interior
    np.testing.assert_array_equal(conv3x3.interior(conv3x3.as_padded(cropped)), cropped)
    xpad[0, 0, 3, 1] = 1.0  # a non-zero border: not a padded image any more
    again = conv3x3.as_padded(conv3x3.interior(xpad))
    assert again is not xpad and conv3x3.border_is_zero(again)


def test_conv_pool_conv_keeps_the_layout_and_the_values():
    rng = np.random.default_rng(3)
    x = Tensor(rng.standard_normal((2, 3, 8, 6)).astype(np.float32), requires_grad=True)
    w1, w2 = (rng.standard_normal(s).astype(np.float32) for s in [(4, 3, 3, 3), (5, 4, 3, 3)])
    h = conv2d_relu(x, w1, None, padding=1)
    p = F.max_pool2d(h, 2)
    assert conv3x3.padded_buffer_of(h.data) is not None and conv3x3.padded_buffer_of(p.data) is not None
    a = F.avg_pool2d(conv2d_relu(p, w2, None, padding=1), 2)
    assert conv3x3.padded_buffer_of(a.data) is not None
    (a * Tensor(rng.standard_normal(a.shape).astype(np.float32))).sum().backward()

    def reference(x):  # the im2col path: contiguous copies of the inputs never match a padded buffer
        h = np.maximum(kernels.conv2d_forward(np.ascontiguousarray(x), w1, None, 1, 1), 0)
        p, _ = kernels.max_pool2d_forward(h, 2)
        return kernels.avg_pool2d_forward(np.maximum(kernels.conv2d_forward(p, w2, None, 1, 1), 0), 2)

    assert rel_error(a.data, reference(x.data)) < 1e-4
    assert x.grad.shape == x.shape and np.isfinite(x.grad).all()


# ---- the differentiable ops, on both paths ------------------------------------------------------------------
@settings(max_examples=8)
@given(shape=st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(1, 3), st.integers(1, 5),
                       st.integers(1, 5)), seed=st.integers(0, 2**16), relu=st.booleans())
def test_fast_conv_ops_pass_gradcheck(shape, seed, relu):
    x, w, b, _ = arrays(shape, seed, np.float64)
    x += 0.1 * np.sign(x)  # keep pre-activations away from the ReLU kink (finite differences)
    op = conv2d_relu if relu else F.conv2d
    assert conv3x3.applies((x, w, b), w.shape, 1, 1, 1)
    assert tg.gradcheck(lambda x, w, b: op(x, w, b, padding=1), [x, w, b])


@settings(max_examples=15)
@given(shape=shapes, seed=st.integers(0, 2**16), relu=st.booleans())
def test_fast_and_reference_paths_of_the_ops_agree(shape, seed, relu):
    x, w, b, g = arrays(shape, seed)
    op = conv2d_relu if relu else F.conv2d
    results = []
    for fast in (True, False):
        with pytest.MonkeyPatch.context() as mp:
            if not fast:
                mp.setattr(conv3x3, "applies", lambda *args, **kwargs: False)
            xt, wt, bt = (Tensor(a, requires_grad=True) for a in (x, w, b))
            y = op(xt, wt, bt, padding=1)
            (y * Tensor(g)).sum().backward()
            results.append((y.data, xt.grad, wt.grad, bt.grad))
    for fast, reference in zip(*results):
        assert rel_error(fast, reference) < 1e-4


def test_frozen_weights_keep_no_input_and_get_no_gradient():
    x, w, b, _ = arrays((1, 3, 4, 6, 6), seed=4)
    xt = Tensor(x, requires_grad=True)
    y = conv2d_relu(xt, Tensor(w), Tensor(b), padding=1)
    assert y._ctx.xpad is None  # only the weight gradient would read it
    y.sum().backward()
    assert xt.grad.shape == x.shape


def test_other_geometries_and_float16_take_the_reference_path():
    x, w, _, _ = arrays((1, 2, 2, 5, 5), seed=5)
    assert conv3x3.applies((x, w, None), w.shape, 1, (1, 1), 1)
    assert not conv3x3.applies((x, w), w.shape, 2, 1, 1)
    assert not conv3x3.applies((x, w), w.shape, 1, 0, 1)
    assert not conv3x3.applies((x, w), w.shape, 1, 1, 2)
    assert not conv3x3.applies((x, w[:, :, :2]), w[:, :, :2].shape, 1, 1, 1)
    assert not conv3x3.applies((x.astype(np.float16), w.astype(np.float16)), w.shape, 1, 1, 1)
    assert not conv3x3.applies((x, w.astype(np.float64)), w.shape, 1, 1, 1)  # mixed: NumPy's rules
    y = F.conv2d(Tensor(x), Tensor(w), stride=2, padding=1)
    assert rel_error(y.data, kernels.conv2d_forward(x, w, None, 2, 1)) < 1e-6


def test_no_im2col_sized_buffer():
    """Forward + backward of a 64-channel 256x256 layer: peak memory well under im2col's 9x buffer
    (the output, the gradients and a few cache-sized Winograd bands)."""
    x, w, b, _ = arrays((1, 64, 64, 256, 256), seed=6)
    activation = x.nbytes
    xt = Tensor(x, requires_grad=True)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        conv2d_relu(xt, Tensor(w), Tensor(b), padding=1).sum().backward()
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert peak < 6 * activation, f"peak {peak / activation:.1f}x the activation (im2col alone is 9x)"


# ---- Gram matrices read the padded buffer in place --------------------------------------------------------
@pytest.mark.parametrize("padded", [True, False])
def test_gram_matrix_on_padded_and_plain_features(padded):
    from tinygrad_cv.vision.style import gram_matrix

    x, w, b, _ = arrays((2, 3, 4, 5, 3), seed=7, dtype=np.float64)
    if padded:  # the fused op's output is a view of its padded buffer; a separate relu makes a new array
        features = lambda x: conv2d_relu(x, w, b, padding=1)  # noqa: E731
    else:
        features = lambda x: F.relu(F.conv2d(x, w, b, padding=1))  # noqa: E731
    f = features(Tensor(x))
    assert (conv3x3.padded_buffer_of(f.data) is not None) == padded
    expected = np.einsum("nchw,ndhw->ncd", f.data, f.data) / (5 * 3)
    np.testing.assert_allclose(gram_matrix(f).data, expected, rtol=1e-12)
    assert tg.gradcheck(lambda x: gram_matrix(features(x)), [x + 0.1 * np.sign(x)])


# ---- Winograd F(2x2, 3x3) ------------------------------------------------------------------------------
@settings(max_examples=30)
@given(shape=shapes, seed=st.integers(0, 2**16), band_bytes=st.sampled_from([1, 2000, 2**30]))
def test_winograd_matches_im2col_forward_and_input_gradient(shape, seed, band_bytes):
    """Odd and even sizes (a half-used last tile), one band of tile rows or many."""
    x, w, b, g = arrays(shape, seed)
    U = winograd.filter_transform(conv3x3.taps(w))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(winograd, "BAND_BYTES", band_bytes)
        ypad = winograd.winograd_conv3x3_padded(conv3x3.as_padded(x), U, b, relu=True)
        dxpad = winograd.winograd_conv3x3_padded(conv3x3.as_padded(g), U, flipped=True)
    assert conv3x3.border_is_zero(ypad) and conv3x3.border_is_zero(dxpad)
    assert rel_error(conv3x3.interior(ypad), np.maximum(kernels.conv2d_forward(x, w, b, 1, 1), 0)) < 1e-4
    assert rel_error(conv3x3.interior(dxpad), kernels.conv2d_grad_input(g, w, x.shape, 1, 1)) < 1e-4


def test_winograd_flip_permutes_the_tile_positions():
    """The transform of the flipped kernel is U with tile rows/columns 0 and 3 swapped."""
    w = np.random.default_rng(8).standard_normal((2, 3, 3, 3))
    U = winograd.filter_transform(conv3x3.taps(w))
    U_of_flipped = winograd.filter_transform(conv3x3.taps(w[:, :, ::-1, ::-1]))
    np.testing.assert_allclose(U[winograd.FLIP], U_of_flipped, rtol=1e-12)


def test_winograd_accuracy_on_a_vgg_sized_layer():
    """float32 Winograd vs a float64 direct convolution: rounding-level error (about 5e-7)."""
    rng = np.random.default_rng(9)
    x = np.maximum(rng.standard_normal((1, 128, 16, 16)), 0)
    w = rng.standard_normal((128, 128, 3, 3)) * np.sqrt(2 / (9 * 128))
    expected = kernels.conv2d_forward(x, w, None, 1, 1)
    U = winograd.filter_transform(conv3x3.taps(w.astype(np.float32)))
    y = conv3x3.interior(winograd.winograd_conv3x3_padded(conv3x3.as_padded(x.astype(np.float32)), U))
    direct = kernels.conv2d_forward(x.astype(np.float32), w.astype(np.float32), None, 1, 1)
    assert rel_error(y, expected) < 5e-6
    assert rel_error(direct, expected) < 5e-6


@settings(max_examples=6)
@given(shape=st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(1, 3), st.integers(1, 5),
                       st.integers(1, 5)), seed=st.integers(0, 2**16), relu=st.booleans())
def test_winograd_ops_pass_gradcheck(shape, seed, relu):
    x, w, b, _ = arrays(shape, seed, np.float64)
    x += 0.1 * np.sign(x)
    op = conv2d_relu if relu else F.conv2d
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(winograd, "MIN_CHANNELS", 1)  # small channel counts take the Winograd path too
        y = op(Tensor(x, requires_grad=True), Tensor(w), Tensor(b), padding=1)
        assert y._ctx.U is not None
        assert tg.gradcheck(lambda x, w, b: op(x, w, b, padding=1), [x, w, b])


def test_vgg_sized_channels_choose_winograd():
    assert winograd.worth_it(64, 128) and winograd.worth_it(512, 512)
    assert not winograd.worth_it(3, 64) and not winograd.worth_it(64, 3)  # VGG's first layer
    x, w, b, _ = arrays((1, 128, 128, 4, 4), seed=10)
    y = conv2d_relu(Tensor(x, requires_grad=True), Tensor(w), Tensor(b), padding=1)
    assert y._ctx.U is not None and y._ctx.taps is None


def test_fast_path_checks_shapes_like_the_reference():
    x, w, _, _ = arrays((1, 2, 3, 4, 4), seed=11)
    with pytest.raises(ValueError, match=r"bias must have shape \(3,\)"):
        conv2d_relu(Tensor(x), Tensor(w), Tensor(np.zeros(1, np.float32)), padding=1)
    with pytest.raises(ValueError, match="input has 2 channels"):
        F.conv2d(Tensor(x), Tensor(w[:, :1]), padding=1)


# ---- blocks on every core ------------------------------------------------------------------------------
def test_parallel_map_keeps_order_and_does_not_nest():
    import threading

    from tinygrad_cv.kernels import parallel

    names = set()

    def block(i):
        names.add(threading.current_thread().name)
        return [i * i, parallel.parallel_map(lambda j: j + i, range(3))]  # nested: runs in this thread

    out = parallel.parallel_map(block, range(8))
    assert out == [[i * i, [i, i + 1, i + 2]] for i in range(8)]
    if parallel.workers() > 1 and parallel._controller() is not None:
        assert all(name.startswith("tinygrad_cv") for name in names)
    assert parallel.split(0, 10, 4) == [range(0, 4), range(4, 8), range(8, 10)]
    assert parallel.split(3, 10, 100, at_least=3) == [range(3, 6), range(6, 9), range(9, 10)]
    assert parallel.split(0, 0, 4, at_least=2) == []


def test_one_core_and_many_cores_give_the_same_convolution(monkeypatch):
    from tinygrad_cv.kernels import parallel

    x, w, b, _ = arrays((2, 128, 128, 9, 7), seed=12)
    many = conv3x3.interior(winograd.winograd_conv3x3_padded(conv3x3.as_padded(x), winograd.filter_transform(
        conv3x3.taps(w)), b, relu=True))
    monkeypatch.setattr(parallel, "workers", lambda: 1)
    one = conv3x3.interior(winograd.winograd_conv3x3_padded(conv3x3.as_padded(x), winograd.filter_transform(
        conv3x3.taps(w)), b, relu=True))
    np.testing.assert_allclose(many, one, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("rows", [0, 1, 7, 3000])
def test_parallel_matrix_products_match_numpy(rows):
    from tinygrad_cv.kernels import parallel

    rng = np.random.default_rng(13)
    a = rng.standard_normal((rows, 6, 2))[:, :, 0]  # a non-contiguous view
    b = rng.standard_normal((rows, 5))
    np.testing.assert_allclose(parallel.matmul_at_b(a, b), a.T @ b, rtol=1e-10, atol=1e-10)
    c = rng.standard_normal((6, 4))
    out = np.empty((rows, 4))
    assert parallel.matmul(a, c, out=out) is out
    np.testing.assert_allclose(out, a @ c, rtol=1e-10, atol=1e-12)
