"""Bilinear resampling: forward against a naive loop and SciPy, gradients against central differences,
and the geometry helpers (rotation, shift, resize) against exact answers."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

import tinygrad_cv as tg
from tinygrad_cv import Tensor
from tinygrad_cv.functional.resample import PADDINGS, affine_sample, bilinear_sample, fold_positions, resize_bilinear
from tinygrad_cv.vision.optvis import centred_affine

SCIPY_MODE = {"zeros": "grid-constant", "border": "nearest", "reflect": "mirror"}


def reference_sample(x: np.ndarray, rows: np.ndarray, cols: np.ndarray, padding: str) -> np.ndarray:
    """Bilinear interpolation one output pixel at a time, straight from the definition."""
    N, C, H, W = x.shape
    rows = np.broadcast_to(rows, (N,) + rows.shape[-2:])
    cols = np.broadcast_to(cols, (N,) + cols.shape[-2:])
    out = np.zeros((N, C) + rows.shape[1:])

    def pixel(n, r, c):
        if padding == "zeros" and not (0 <= r < H and 0 <= c < W):
            return np.zeros(C)
        return x[n, :, min(max(r, 0), H - 1), min(max(c, 0), W - 1)]

    for n in range(N):
        for i in range(rows.shape[1]):
            for j in range(rows.shape[2]):
                r = float(fold_positions(np.array(rows[n, i, j]), H, padding))
                c = float(fold_positions(np.array(cols[n, i, j]), W, padding))
                r0, c0 = math.floor(r), math.floor(c)
                fr, fc = r - r0, c - c0
                out[n, :, i, j] = ((1 - fr) * (1 - fc) * pixel(n, r0, c0) + (1 - fr) * fc * pixel(n, r0, c0 + 1)
                                   + fr * (1 - fc) * pixel(n, r0 + 1, c0) + fr * fc * pixel(n, r0 + 1, c0 + 1))
    return out


def positions(rng, shape, h, w):
    """Sample positions that reach up to 3 pixels outside the image on every side."""
    return rng.uniform(-3, h + 2, shape), rng.uniform(-3, w + 2, shape)


@pytest.mark.parametrize("padding", PADDINGS)
def test_forward_matches_naive_loop_and_scipy(xp, padding):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 5, 6))
    rows, cols = positions(rng, (4, 7), 5, 6)
    out = bilinear_sample(Tensor(xp.asarray(x)), rows, cols, padding).numpy()
    np.testing.assert_allclose(out, reference_sample(x, rows, cols, padding), atol=1e-12)
    scipy = np.stack([[ndimage.map_coordinates(x[n, c], [rows, cols], order=1, mode=SCIPY_MODE[padding])
                       for c in range(3)] for n in range(2)])
    np.testing.assert_allclose(out, scipy, atol=1e-12)


@pytest.mark.parametrize("padding", PADDINGS)
def test_gradient_shared_and_per_image_positions(padding):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 2, 4, 5))
    shared = positions(rng, (3, 4), 4, 5)
    per_image = positions(rng, (2, 3, 4), 4, 5)
    assert tg.gradcheck(lambda a: bilinear_sample(a, *shared, padding=padding), [x])
    assert tg.gradcheck(lambda a: bilinear_sample(a, *per_image, padding=padding), [x])


@pytest.mark.parametrize("padding", PADDINGS)
def test_gradient_of_rotation_scale_and_resize(padding):
    """The geometry feature visualisation uses: rotate + scale about the centre, and resizing up."""
    x = np.random.default_rng(5).standard_normal((2, 2, 5, 6))
    matrix = centred_affine(angle=17.0, scale=1.1, in_size=(5, 6), out_size=(6, 7), shift=(0.3, -0.4))
    assert tg.gradcheck(lambda a: affine_sample(a, matrix, (6, 7), padding=padding), [x])
    assert tg.gradcheck(lambda a: resize_bilinear(a, (7, 9), padding=padding), [x])


def test_gradient_adds_up_where_positions_repeat():
    x = Tensor(np.zeros((1, 1, 3, 3)), requires_grad=True)
    rows = np.full((4, 4), 0.25)  # every output reads between rows 0 and 1 at column 2
    cols = np.full((4, 4), 2.0)
    bilinear_sample(x, rows, cols).sum().backward()
    expected = np.zeros((3, 3))
    expected[0, 2], expected[1, 2] = 16 * 0.75, 16 * 0.25
    np.testing.assert_allclose(x.grad[0, 0], expected)


@settings(max_examples=10)
@given(h=st.integers(1, 5), w=st.integers(1, 5), oh=st.integers(1, 4), ow=st.integers(1, 4),
       padding=st.sampled_from(PADDINGS), seed=st.integers(0, 2**16))
def test_any_shape_matches_reference(h, w, oh, ow, padding, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((1, 2, h, w))
    rows, cols = positions(rng, (1, oh, ow), h, w)
    out = bilinear_sample(Tensor(x), rows, cols, padding).numpy()
    np.testing.assert_allclose(out, reference_sample(x, rows, cols, padding), atol=1e-12)


def test_float32_stays_float32():
    x = Tensor(np.ones((1, 3, 4, 4), np.float32), requires_grad=True)
    out = resize_bilinear(x, (6, 6))
    out.sum().backward()
    assert out.dtype == np.float32 and x.grad.dtype == np.float32


def test_rotation_by_90_degrees_is_rot90(xp):
    x = np.random.default_rng(2).standard_normal((1, 2, 6, 6))
    out = affine_sample(Tensor(xp.asarray(x)), centred_affine(90, in_size=(6, 6))).numpy()
    np.testing.assert_allclose(out, np.rot90(x, k=1, axes=(2, 3)), atol=1e-12)  # counter-clockwise


def test_identity_shift_and_scale():
    x = np.random.default_rng(3).standard_normal((2, 1, 5, 7))
    np.testing.assert_allclose(affine_sample(Tensor(x), centred_affine(in_size=(5, 7))).numpy(), x, atol=1e-12)
    moved = affine_sample(Tensor(x), centred_affine(in_size=(5, 7), shift=(1, 2)), padding="zeros").numpy()
    np.testing.assert_allclose(moved[:, :, 1:, 2:], x[:, :, :-1, :-2], atol=1e-12)  # content moves down/right
    np.testing.assert_allclose(moved[:, :, 0], 0)
    zoomed = affine_sample(Tensor(x), centred_affine(scale=2.0, in_size=(5, 7))).numpy()
    np.testing.assert_allclose(zoomed[:, :, 2, 3], x[:, :, 2, 3])  # the centre stays put
    np.testing.assert_allclose(zoomed[:, :, 2, 5], x[:, :, 2, 4])  # 2 px right of centre reads 1 px right


def test_resize_halving_averages_2x2_blocks_and_keeps_size():
    x = np.random.default_rng(4).standard_normal((1, 3, 4, 6))
    half = resize_bilinear(Tensor(x), (2, 3)).numpy()
    np.testing.assert_allclose(half, x.reshape(1, 3, 2, 2, 3, 2).mean(axis=(3, 5)), atol=1e-12)
    np.testing.assert_allclose(resize_bilinear(Tensor(x), (4, 6)).numpy(), x)
    assert tg.gradcheck(lambda a: resize_bilinear(a, (5, 4)), [x[:, :1]])


def test_errors_name_shapes():
    x = Tensor(np.zeros((1, 1, 3, 3)))
    with pytest.raises(ValueError, match="padding"):
        bilinear_sample(x, np.zeros((2, 2)), np.zeros((2, 2)), padding="wrap")
    with pytest.raises(ValueError, match=r"\(2, 2\) and \(2, 3\)"):
        bilinear_sample(x, np.zeros((2, 2)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="N, C, H, W"):
        bilinear_sample(Tensor(np.zeros((3, 3))), np.zeros((2, 2)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="matrix"):
        affine_sample(x, np.eye(3))
