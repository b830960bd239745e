"""The CPU fast paths (kernels/fast/, functional/*_fast.py) against the reference path.

Every fast op must give the reference op's numbers (relative error < 1e-4 in float32) for every
batch size, channel count and image size, forward and backward, alone, fused with ReLU, and chained
through pooling layers that keep its padded channels-last layout. The reference side of each
comparison runs under ``fast_paths(False)``; the fast side under ``fast_paths(True)``, so these tests
mean the same whether the suite runs with ``--reference`` or not.
"""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_cv as tg
import tinygrad_cv.functional as F
from tinygrad_cv import Tensor
from tinygrad_cv.functional import conv_fast, gram_fast
from tinygrad_cv.kernels import conv, pool
from tinygrad_cv.kernels.fast import channels_last, conv3x3, parallel, winograd
from tinygrad_cv.kernels.fast import pool as fast_pool

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


def tile_matrices(w, tiling):
    """Winograd's transformed filters for the convolution and for its gradient with respect to the input."""
    return winograd.filter_transform(w, tiling), winograd.filter_transform(conv3x3.gradient_kernel(w), tiling)


def run_both_paths(fn, *inputs):
    """fn(*tensors) and the gradients of sum(fn * g) for each input, with fast paths on and off.
    ``g`` is the last input (a constant)."""
    results = []
    for fast in (True, False):
        with tg.fast_paths(fast):
            tensors = [Tensor(a, requires_grad=True) for a in inputs[:-1]]
            y = fn(*tensors)
            (y * Tensor(inputs[-1])).sum().backward()
            results.append([y.data] + [t.grad for t in tensors])
    return results


# ---- the ops: fast against reference ----------------------------------------------------------------
@settings(max_examples=15)
@given(shape=shapes, seed=st.integers(0, 2**16), relu=st.booleans())
def test_fast_conv3x3_equals_the_reference_op(shape, seed, relu):
    x, w, b, g = arrays(shape, seed)
    op = F.conv2d_relu if relu else F.conv2d
    fast, reference = run_both_paths(lambda x, w, b: op(x, w, b, padding=1), x, w, b, g)
    for got, expected in zip(fast, reference):
        assert rel_error(got, expected) < 1e-4


@pytest.mark.parametrize("shape, paths", [((2, 128, 128, 9, 6), ("winograd2x2", "winograd2x2")),
                                          ((2, 256, 256, 9, 6), ("winograd2x2", "winograd2x2")),
                                          ((1, 128, 96, 23, 22), ("rows", "winograd4x4")),
                                          ((2, 128, 136, 17, 14), ("winograd4x4", "winograd4x4"))])
def test_winograd_layers_equal_the_reference_op(shape, paths):
    """Winograd, 4x4 tiles on bigger images, in the forward pass from 128 channels and for the input
    gradient from 32; sizes that the tiles do not divide (a part-used last tile)."""
    x, w, b, g = arrays(shape, seed=shape[1])
    fast, reference = run_both_paths(lambda x, w, b: F.conv2d_relu(x, w, b, padding=1), x, w, b, g)
    for got, expected in zip(fast, reference):
        assert rel_error(got, expected) < 1e-4
    with tg.fast_paths(True):
        y = F.conv2d(Tensor(x, requires_grad=True), w, b, padding=1)
    assert isinstance(y._ctx, conv_fast.Conv3x3Fast) and y._ctx.paths == paths


@pytest.mark.parametrize("channels, paths", [((3, 5), ("gathered", "gathered")), ((8, 16), ("gathered", "gathered")),
                                             ((9, 4), ("rows", "rows")), ((32, 16), ("rows", "rows")),
                                             ((64, 128), ("rows", "winograd2x2")), ((16, 1), ("rows", "rows")),
                                             ((128, 128), ("winograd2x2", "winograd2x2"))])
def test_each_conv3x3_kernel_equals_the_reference_op(channels, paths):
    """Few input channels (an image), some, many: each of the kernels, forward and all gradients."""
    C, O = channels
    x, w, b, g = arrays((2, C, O, 7, 6), seed=C)
    fast, reference = run_both_paths(lambda x, w, b: F.conv2d_relu(x, w, b, padding=1), x, w, b, g)
    for got, expected in zip(fast, reference):
        assert rel_error(got, expected) < 1e-4
    with tg.fast_paths(True):
        y = F.conv2d(Tensor(x, requires_grad=True), Tensor(w), Tensor(b), padding=1)
    assert y._ctx.paths == paths


@pytest.mark.parametrize("padding", [0, 1])
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_fast_pooling_equals_the_reference_op(kind, padding):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 9, 8)).astype(np.float32)
    x[0, 0, :2, :2] = 1.0  # a tie: the first tap must win on both paths
    g = rng.standard_normal((2, 3, 4, 4) if padding == 0 else (2, 3, 5, 5)).astype(np.float32)
    op = F.max_pool2d if kind == "max" else F.avg_pool2d
    fast, reference = run_both_paths(lambda x: op(x, 2, padding=padding), x, g)
    for got, expected in zip(fast, reference):
        np.testing.assert_array_equal(got, expected)


def test_conv_pool_conv_keeps_the_layout_and_the_values():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 8, 6)).astype(np.float32)
    w1, w2 = (rng.standard_normal(s).astype(np.float32) for s in [(4, 3, 3, 3), (5, 4, 3, 3)])
    g = rng.standard_normal((2, 5, 2, 1)).astype(np.float32)

    def net(x, w1, w2):
        h = F.max_pool2d(F.conv2d_relu(x, w1, None, padding=1), 2)
        return F.avg_pool2d(F.conv2d_relu(h, w2, None, padding=1), 2)

    fast, reference = run_both_paths(net, x, w1, w2, g)
    for got, expected in zip(fast, reference):
        assert rel_error(got, expected) < 1e-4
    with tg.fast_paths(True):
        h = F.conv2d_relu(Tensor(x), Tensor(w1), None, padding=1)
        p = F.max_pool2d(h, 2)
        a = F.avg_pool2d(F.conv2d_relu(p, Tensor(w2), None, padding=1), 2)
    assert all(channels_last.padded_buffer_of(t.data) is not None for t in (h, p, a))


@pytest.mark.parametrize("padded", [True, False])
def test_fast_gram_matrix_equals_the_reference(padded):
    """On a fast conv's output (read in its padded buffer) and on a plain array."""
    x, w, b, _ = arrays((2, 3, 4, 5, 3), seed=7, dtype=np.float64)
    g = np.random.default_rng(8).standard_normal((2, 4, 4))

    def features_gram(x, w, b):
        f = F.conv2d_relu(x, w, b, padding=1) if padded else F.relu(F.conv2d(x, w, b, padding=1))
        return F.gram_matrix(f)

    fast, reference = run_both_paths(features_gram, x, w, b, g)
    for got, expected in zip(fast, reference):
        assert rel_error(got, expected) < 1e-10
    with tg.fast_paths(True):
        xt = Tensor(x, requires_grad=True)
        f = F.conv2d_relu(xt, w, b, padding=1) if padded else F.relu(F.conv2d(xt, w, b, padding=1))
        assert (channels_last.padded_buffer_of(f.data) is not None) == padded
        assert isinstance(F.gram_matrix(f)._ctx, gram_fast.GramFast)


# ---- gradient checks of the fast ops ----------------------------------------------------------------
@settings(max_examples=8)
@given(shape=st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(1, 3), st.integers(1, 5),
                       st.integers(1, 5)), seed=st.integers(0, 2**16), relu=st.booleans())
def test_fast_conv_ops_pass_gradcheck(shape, seed, relu):
    x, w, b, _ = arrays(shape, seed, np.float64)
    x += 0.1 * np.sign(x)  # keep pre-activations away from the ReLU kink (finite differences)
    op = F.conv2d_relu if relu else F.conv2d
    with tg.fast_paths(True):
        assert conv_fast.conv3x3_fits(x, w, b, 1, 1, 1)
        assert tg.gradcheck(lambda x, w, b: op(x, w, b, padding=1), [x, w, b])
        assert tg.gradcheck(lambda x: F.gram_matrix(op(x, w, b, padding=1)), [x])


@pytest.mark.parametrize("shape, paths", [((1, 128, 128, 5, 4), ("winograd2x2", "winograd2x2")),
                                          ((1, 128, 136, 16, 29), ("winograd4x4", "winograd4x4")),
                                          ((1, 64, 48, 16, 29), ("rows", "winograd4x4"))])
def test_winograd_op_passes_a_vjp_check(shape, paths):
    """Winograd: <J^T v, u> = <v, J u> for x, w and b in a few evaluations."""
    x, w, b, _ = arrays(shape, seed=9, dtype=np.float64)
    with tg.fast_paths(True):
        assert F.conv2d(Tensor(x, requires_grad=True), w, b, padding=1)._ctx.paths == paths
        assert tg.check_vjp(lambda x, w, b: F.conv2d(x, w, b, padding=1), [x, w, b])


# ---- when the fast path is taken ---------------------------------------------------------------------
def test_fast_paths_switch_chooses_the_function_class():
    x, w, b, _ = arrays((1, 2, 3, 5, 5), seed=5)
    with tg.fast_paths(True):
        assert isinstance(F.conv2d(Tensor(x, requires_grad=True), w, b, padding=1)._ctx, conv_fast.Conv3x3Fast)
        assert F.max_pool2d(Tensor(x, requires_grad=True), 2)._ctx.kernels is fast_pool
    with tg.fast_paths(False):
        assert type(F.conv2d(Tensor(x, requires_grad=True), w, b, padding=1)._ctx).__name__ == "Conv2d"
        assert F.max_pool2d(Tensor(x, requires_grad=True), 2)._ctx.kernels is pool

    @tg.fast_paths(False)
    def reference_conv():
        return F.conv2d(Tensor(x, requires_grad=True), w, b, padding=1)

    with tg.fast_paths(True):
        assert type(reference_conv()._ctx).__name__ == "Conv2d"


def test_other_geometries_and_dtypes_take_the_reference_path():
    x, w, b, _ = arrays((1, 2, 2, 5, 5), seed=5)
    assert conv_fast.conv3x3_fits(x, w, None, 1, (1, 1), 1)
    assert not conv_fast.conv3x3_fits(x, w, b, 2, 1, 1)
    assert not conv_fast.conv3x3_fits(x, w, b, 1, 0, 1)
    assert not conv_fast.conv3x3_fits(x, w, b, 1, 1, 2)
    assert not conv_fast.conv3x3_fits(x, w[:, :, :2], b, 1, 1, 1)
    assert not conv_fast.conv3x3_fits(x.astype(np.float16), w.astype(np.float16), None, 1, 1, 1)
    assert not conv_fast.conv3x3_fits(x, w.astype(np.float64), b, 1, 1, 1)  # mixed: NumPy's rules
    assert not conv_fast.conv3x3_fits(x, w, b[:1], 1, 1, 1)  # a wrong bias: the reference explains it


def test_fast_conv_checks_shapes_like_the_reference():
    x, w, _, _ = arrays((1, 2, 3, 4, 4), seed=11)
    with pytest.raises(ValueError, match=r"bias must have shape \(3,\)"):
        F.conv2d_relu(Tensor(x), Tensor(w), Tensor(np.zeros(1, np.float32)), padding=1)
    with pytest.raises(ValueError, match="input has 2 channels"):
        F.conv2d(Tensor(x), Tensor(w[:, :1]), padding=1)


def test_frozen_weights_keep_no_input():
    x, w, b, _ = arrays((1, 3, 4, 6, 6), seed=4)
    xt = Tensor(x, requires_grad=True)
    with tg.fast_paths(True):
        y = F.conv2d_relu(xt, Tensor(w), Tensor(b), padding=1)
    assert y._ctx.xpad is None  # only the weight gradient would read it
    y.sum().backward()
    assert xt.grad.shape == x.shape


def test_no_im2col_sized_buffer():
    """Forward + backward of a 64-channel 256x256 layer: peak memory well under im2col's 9x buffer
    (the output, the gradients and a few cache-sized Winograd bands)."""
    x, w, b, _ = arrays((1, 64, 64, 256, 256), seed=6)
    xt = Tensor(x, requires_grad=True)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        with tg.fast_paths(True):
            F.conv2d_relu(xt, Tensor(w), Tensor(b), padding=1).sum().backward()
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert peak < 6 * x.nbytes, f"peak {peak / x.nbytes:.1f}x the activation (im2col alone is 9x)"


# ---- the fast kernels themselves ---------------------------------------------------------------------
@settings(max_examples=40)
@given(shape=shapes, seed=st.integers(0, 2**16), few=st.sampled_from([0, 8]),
       block_bytes=st.sampled_from([1, 2**20]))
def test_shifted_gemms_match_im2col_forward_and_gradients(shape, seed, few, block_bytes):
    """Three products per block, or one over all nine taps (FEW_CHANNELS); many tiny blocks or a few."""
    x, w, b, g = arrays(shape, seed)
    xpad, gpad = channels_last.as_padded(x), channels_last.as_padded(g)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(conv3x3, "FEW_CHANNELS", few)
        mp.setattr(conv3x3, "BLOCK_BYTES", block_bytes)
        mp.setattr(conv3x3, "MIN_BLOCK_ROWS", 1)
        ypad = conv3x3.conv3x3_padded(xpad, conv3x3.weight_rows(w), b, relu=True)
        dxpad = conv3x3.conv3x3_padded_grad_input(gpad, conv3x3.flipped_weight_rows(w))
    assert channels_last.border_is_zero(ypad) and channels_last.border_is_zero(dxpad)
    assert rel_error(channels_last.interior(ypad), np.maximum(conv.conv2d_forward(x, w, b, 1, 1), 0)) < 1e-4
    assert rel_error(channels_last.interior(dxpad), conv.conv2d_grad_input(g, w, x.shape, 1, 1)) < 1e-4
    dw = conv3x3.weight_from_taps(conv3x3.conv3x3_padded_grad_weight(xpad, gpad))
    assert rel_error(dw, conv.conv2d_grad_weight(g, x, w.shape, 1, 1)) < 1e-4
    assert rel_error(conv3x3.conv3x3_padded_grad_bias(gpad), conv.conv2d_grad_bias(g)) < 1e-4


@settings(max_examples=30)
@given(shape=shapes, seed=st.integers(0, 2**16), block_bytes=st.sampled_from([1, 2**20]))
def test_gathered_input_gradient_matches_im2col(shape, seed, block_bytes):
    x, w, b, g = arrays(shape, seed)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(conv3x3, "BLOCK_BYTES", block_bytes)
        mp.setattr(conv3x3, "MIN_BLOCK_ROWS", 1)
        dx = conv3x3.conv3x3_padded_grad_input_gathered(channels_last.as_padded(g), conv3x3.weight_rows(w))
    assert dx.shape == x.shape and rel_error(dx, conv.conv2d_grad_input(g, w, x.shape, 1, 1)) < 1e-4


def test_output_is_zero_bordered_and_blocks_cover_every_row(monkeypatch):
    """Tiny blocks (many per image, some straddling two images) give the same result as one block."""
    x, w, b, _ = arrays((3, 9, 5, 6, 7), seed=1)
    whole = conv3x3.conv3x3_padded(channels_last.as_padded(x), conv3x3.weight_rows(w), b, relu=True)
    monkeypatch.setattr(conv3x3, "MIN_BLOCK_ROWS", 5)
    monkeypatch.setattr(conv3x3, "BLOCK_BYTES", 1)
    blocks = conv3x3.conv3x3_padded(channels_last.as_padded(x), conv3x3.weight_rows(w), b, relu=True)
    np.testing.assert_allclose(whole, blocks, rtol=1e-5, atol=1e-5)  # BLAS may round blocks differently
    assert channels_last.border_is_zero(whole) and channels_last.border_is_zero(blocks)
    assert rel_error(channels_last.interior(whole), np.maximum(conv.conv2d_forward(x, w, b, 1, 1), 0)) < 1e-4


def test_weight_matrices_and_tap_order():
    w = np.arange(2 * 3 * 9, dtype=np.float32).reshape(2, 3, 3, 3)
    rows = conv3x3.weight_rows(w)
    assert rows.shape == (3, 9, 2) and rows.flags.c_contiguous
    np.testing.assert_array_equal(rows[2, 1 * 3 + 0], w[:, 0, 2, 1])  # kernel row 2, tap kw = 1, channel 0
    flipped = conv3x3.flipped_weight_rows(w)
    assert flipped.shape == (3, 6, 3)
    np.testing.assert_array_equal(flipped[0, 2 * 2 + 1], w[1, :, 2, 0])  # (kh, kw) = (0, 2) is w's (2, 0)
    taps = np.stack([w[:, :, kh, kw] for kh in range(3) for kw in range(3)])
    np.testing.assert_array_equal(conv3x3.weight_from_taps(taps), w)
    assert conv3x3.tap_offsets(5) == [-8, -7, -6, -1, 0, 1, 6, 7, 8]  # rows of the 7-wide padded grid


def test_as_padded_reuses_a_padded_buffer_and_copies_anything_else():
    x, _, _, _ = arrays((2, 3, 4, 5, 6), seed=2)
    xpad = channels_last.as_padded(x)
    assert xpad.shape == (2, 7, 8, 3) and channels_last.border_is_zero(xpad)
    np.testing.assert_array_equal(channels_last.interior(xpad), x)
    assert channels_last.as_padded(channels_last.interior(xpad)) is xpad  # no copy between layers
    cropped = channels_last.interior(xpad)[:, :, 1:]
    assert channels_last.padded_buffer_of(cropped) is None  # a view of part of it is not its interior
    np.testing.assert_array_equal(channels_last.interior(channels_last.as_padded(cropped)), cropped)
    xpad[0, 0, 3, 1] = 1.0  # a non-zero border: not a padded image any more
    again = channels_last.as_padded(channels_last.interior(xpad))
    assert again is not xpad and channels_last.border_is_zero(again)


@settings(max_examples=30)
@given(shape=shapes, seed=st.integers(0, 2**16), band_bytes=st.sampled_from([1, 2000, 2**30]),
       tiling=st.sampled_from([winograd.F2x2, winograd.F4x4]))
def test_winograd_matches_im2col_forward_and_input_gradient(shape, seed, band_bytes, tiling):
    """Sizes that the tiles divide and that they do not, one band of tile rows or many."""
    x, w, b, g = arrays(shape, seed)
    forward, flipped = tile_matrices(w, tiling)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(winograd, "BAND_BYTES", band_bytes)
        ypad = winograd.winograd_conv3x3_padded(channels_last.as_padded(x), forward, b, relu=True)
        dxpad = winograd.winograd_conv3x3_padded(channels_last.as_padded(g), flipped)
    assert channels_last.border_is_zero(ypad) and channels_last.border_is_zero(dxpad)
    assert rel_error(channels_last.interior(ypad), np.maximum(conv.conv2d_forward(x, w, b, 1, 1), 0)) < 1e-4
    assert rel_error(channels_last.interior(dxpad), conv.conv2d_grad_input(g, w, x.shape, 1, 1)) < 1e-4


@pytest.mark.parametrize("tiling", [winograd.F2x2, winograd.F4x4])
def test_winograd_matrices_compute_a_1d_correlation(tiling):
    """The definition, in 1-D and float64: A^T [(G g) * (B^T d)] = the m outputs of g sliding over d."""
    rng = np.random.default_rng(7)
    d, g = rng.standard_normal(tiling.a), rng.standard_normal(3)
    expected = [d[i:i + 3] @ g for i in range(tiling.m)]
    np.testing.assert_allclose(tiling.A_T @ ((tiling.G @ g) * (tiling.B_T @ d)), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("tiling, bound", [(winograd.F2x2, 5e-6), (winograd.F4x4, 1e-5)])
def test_winograd_accuracy_on_a_vgg_sized_layer(tiling, bound):
    """float32 Winograd vs a float64 direct convolution: about 5e-7 (2x2 tiles), 4e-6 (4x4 tiles)."""
    rng = np.random.default_rng(9)
    x = np.maximum(rng.standard_normal((1, 128, 32, 32)), 0)
    w = rng.standard_normal((128, 128, 3, 3)) * np.sqrt(2 / (9 * 128))
    expected = conv.conv2d_forward(x, w, None, 1, 1)
    forward, _ = tile_matrices(w.astype(np.float32), tiling)
    y = channels_last.interior(winograd.winograd_conv3x3_padded(channels_last.as_padded(x.astype(np.float32)), forward))
    direct = conv.conv2d_forward(x.astype(np.float32), w.astype(np.float32), None, 1, 1)
    assert rel_error(y, expected) < bound
    assert rel_error(direct, expected) < 5e-6


def test_vgg_sized_layers_choose_winograd():
    assert winograd.tiling_for(1, 3, 64, 256, 256) is None  # VGG's first layer: conv3x3.py's one GEMM
    assert winograd.tiling_for(1, 64, 64, 256, 256) is None  # forward: the direct sums below 128 channels
    assert winograd.tiling_for(1, 64, 64, 256, 256, forward=False) is winograd.F4x4
    assert winograd.tiling_for(1, 512, 512, 32, 21) is winograd.F4x4
    assert winograd.tiling_for(1, 512, 512, 16, 16) is winograd.F2x2  # 16 tiles of 4x4: too few
    assert winograd.tiling_for(4, 512, 512, 16, 16) is winograd.F4x4
    assert winograd.tiling_for(64, 16, 32, 28, 28, forward=False) is None  # few channels: the row products


def test_fast_max_pool_kernel_equals_the_reference_on_a_padded_layout():
    x = channels_last.interior(channels_last.as_padded(np.random.default_rng(4).standard_normal((2, 5, 9, 7))))
    y, arg = fast_pool.max_pool2d_forward(x, 3, 2, 1)
    y_ref, arg_ref = pool.max_pool2d_forward(np.ascontiguousarray(x), 3, 2, 1)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(arg, arg_ref)
    assert channels_last.padded_buffer_of(y) is not None
    g = np.random.default_rng(5).standard_normal(y.shape)
    np.testing.assert_array_equal(fast_pool.max_pool2d_backward(g, arg, x.shape, 3, 2, 1),
                                  pool.max_pool2d_backward(g, arg_ref, x.shape, 3, 2, 1))


# ---- blocks on every core ------------------------------------------------------------------------------
def test_parallel_map_keeps_order_and_does_not_nest():
    import threading

    names = set()

    def block(i):
        names.add(threading.current_thread().name)
        return [i * i, parallel.parallel_map(lambda j: j + i, range(3))]  # nested: runs in this thread

    out = parallel.parallel_map(block, range(8))
    assert out == [[i * i, [i, i + 1, i + 2]] for i in range(8)]
    assert names <= {threading.current_thread().name} | {f"tinygrad_cv_{k}" for k in range(parallel.workers())}
    assert len(names) <= parallel.workers()


def test_parallel_map_raises_a_blocks_error_after_every_block_ran():
    done = []

    def block(i):
        if i == 3:
            raise ValueError("block 3")
        done.append(i)

    with pytest.raises(ValueError, match="block 3"):
        parallel.parallel_map(block, range(10))
    assert sorted(done) == [i for i in range(10) if i != 3]
    assert parallel.parallel_map(lambda i: i, range(5)) == list(range(5))  # the helpers still work
    assert parallel.split(0, 10, 4) == [range(0, 4), range(4, 8), range(8, 10)]
    assert parallel.split(3, 10, 100, at_least=3) == [range(3, 6), range(6, 9), range(9, 10)]
    assert parallel.split(0, 0, 4, at_least=2) == []


def test_split_evenly_gives_every_core_the_same_share(monkeypatch):
    monkeypatch.setattr(parallel, "workers", lambda: 2)
    assert parallel.split_evenly(0, 21, 8) == [range(0, 5), range(5, 10), range(10, 15), range(15, 21)]
    assert parallel.split_evenly(3, 10, 100) == [range(3, 6), range(6, 10)]
    assert parallel.split_evenly(0, 1, 8) == [range(0, 1)] and parallel.split_evenly(4, 4, 8) == []
    monkeypatch.setattr(parallel, "workers", lambda: 3)
    assert [len(r) for r in parallel.split_evenly(0, 16, 4)] == [2, 3, 3, 2, 3, 3]


def test_one_core_and_many_cores_give_the_same_convolution(monkeypatch):
    x, w, b, _ = arrays((2, 128, 128, 19, 17), seed=12)

    def winograd_conv():
        forward, _ = tile_matrices(w, winograd.F4x4)
        return channels_last.interior(winograd.winograd_conv3x3_padded(channels_last.as_padded(x), forward, b, relu=True))

    many = winograd_conv()
    monkeypatch.setattr(parallel, "workers", lambda: 1)
    # Blocks of another size may take other BLAS kernels: float32 rounding, relative to the output's scale.
    np.testing.assert_allclose(many, winograd_conv(), rtol=1e-5, atol=1e-5 * np.abs(many).max())


def test_the_reference_option_switches_the_fast_paths_off(request):
    from tinygrad_cv.functional import fast_paths

    assert fast_paths.enabled() == (not request.config.getoption("--reference"))


# ---- frozen weights, prepared once --------------------------------------------------------------------
@pytest.mark.parametrize("channels", [(3, 8), (16, 8), (128, 128)])
def test_frozen_weights_are_prepared_once_and_again_after_an_in_place_write(channels):
    C, O = channels
    x, w, b, _ = arrays((1, C, O, 6, 5), seed=20)
    weight = Tensor(w)  # frozen: requires_grad is False

    def fast_and_reference():
        with tg.fast_paths(True):
            y = F.conv2d(Tensor(x, requires_grad=True), weight, Tensor(b), padding=1)
        with tg.fast_paths(False):
            return y, F.conv2d(Tensor(x), weight, Tensor(b), padding=1).data

    first, expected = fast_and_reference()
    second, _ = fast_and_reference()
    assert second._ctx.weights is first._ctx.weights  # prepared once
    weight.data[O - 1, C - 1, 2, 0] += 1.0  # in place: the same array, other bits
    third, changed = fast_and_reference()
    assert third._ctx.weights is not first._ctx.weights
    assert rel_error(third.data, changed) < 1e-4 and rel_error(first.data, expected) < 1e-4
    assert rel_error(third.data, expected) > 1e-4


def test_weights_trained_by_an_optimiser_between_frozen_uses():
    """Frozen (kept), then trained in place by SGD, then frozen again: every use sees the new weights."""
    x, w, b, g = arrays((2, 128, 128, 5, 4), seed=21)
    weight = tg.nn.Parameter(w.copy(), requires_grad=False)
    optimiser = tg.optim.SGD([weight], lr=0.1)

    def conv(fast):
        with tg.fast_paths(fast):
            return F.conv2d_relu(Tensor(x, requires_grad=True), weight, Tensor(b), padding=1)

    for step in range(3):
        assert rel_error(conv(True).data, conv(False).data) < 1e-4
        weight.requires_grad = True
        with tg.fast_paths(step % 2 == 0):
            (conv(True) * Tensor(g)).sum().backward()
        optimiser.step()
        optimiser.zero_grad()
        weight.requires_grad = False
    assert rel_error(weight.data, w) > 1e-3


def test_prepared_weights_compare_bits_and_go_with_their_array():
    import gc

    from tinygrad_cv.kernels.fast import weight_cache

    calls = []
    cache = weight_cache.PreparedWeights(lambda w: calls.append(1) or w.sum())
    w = np.arange(3 * weight_cache.COMPARE_CHUNK, dtype=np.float32)
    cache(w), cache(w)
    assert len(calls) == 1
    w[-1] = np.nan  # past the first chunk; NaN equals itself bitwise
    cache(w), cache(w)
    assert len(calls) == 2
    assert not weight_cache.same_bits(np.zeros(3), -np.zeros(3))
    assert not weight_cache.same_bits(np.zeros(4, np.float32), np.zeros(4, np.float64))
    assert not weight_cache.same_bits(np.zeros((2, 2)), np.zeros(4))
    a = np.random.default_rng(0).standard_normal((4, 6))
    assert weight_cache.same_bits(a[:, ::2], a[:, ::2].copy())
    del w
    gc.collect()
    assert cache.entries == {}
