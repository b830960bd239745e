"""The padded channels-last layout that the fast 3x3 convolutions compute in.

An (N, C, H, W) activation is kept as the inside of a zero-bordered (N, H+2, W+2, C) buffer. The
fast convolution reads the buffer as a matrix with one row per pixel (conv3x3.py), and writes its
output in the same layout, so a whole network of such layers never copies between layouts:
``interior(buffer)`` is the NCHW *view* every other op sees, and ``as_padded`` recognises such a
view and hands back its buffer.
"""
from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np


def interior(xpad: np.ndarray) -> np.ndarray:
    """(N, H+2, W+2, C) padded buffer -> (N, C, H, W) NCHW view of its inside (no copy)."""
    return xpad[:, 1:-1, 1:-1, :].transpose(0, 3, 1, 2)


def padded_buffer_of(x: Any) -> Optional[np.ndarray]:
    """The zero-bordered (N, H+2, W+2, C) buffer whose ``interior`` x is, or None if x is not one."""
    buffer = getattr(x, "base", None)
    if not (isinstance(buffer, np.ndarray) and buffer.ndim == 4 and buffer.flags.c_contiguous
            and buffer.dtype == x.dtype and x.ndim == 4
            and buffer.shape == (x.shape[0], x.shape[2] + 2, x.shape[3] + 2, x.shape[1])):
        return None
    view = interior(buffer)
    same_memory = view.strides == x.strides and _address(view) == _address(x)
    return buffer if same_memory and border_is_zero(buffer) else None


def as_padded(x: np.ndarray) -> np.ndarray:
    """The zero-bordered channels-last buffer of an (N, C, H, W) array, shape (N, H+2, W+2, C).

    If x *is* ``interior(buffer)`` of such a buffer (a fast convolution's output, say), that buffer
    is returned: no copy. Otherwise x is copied into a new one (one pass, NCHW -> NHWC).
    """
    buffer = padded_buffer_of(x)
    if buffer is not None:
        return buffer
    N, C, H, W = x.shape
    xpad = np.empty((N, H + 2, W + 2, C), dtype=x.dtype)
    interior(xpad)[...] = x
    return zero_border(xpad)


def padded(x: np.ndarray, padding: Tuple[int, int]) -> np.ndarray:
    """x (N, C, H, W) zero-padded by (ph, pw) on each side, channels-last: (N, H+2ph, W+2pw, C).

    No copy when x already is the inside of such an array: with no padding, an NCHW view of a
    channels-last array is returned as that array; with padding 1, ``as_padded`` finds the buffer of
    a fast convolution's output. Otherwise one copy, and only the border is zeroed.
    """
    ph, pw = padding
    xt = x.transpose(0, 2, 3, 1)
    if ph == pw == 0 and xt.flags.c_contiguous:
        return xt
    if (ph, pw) == (1, 1):
        return as_padded(x)
    N, C, H, W = x.shape
    xpad = zero_bordered((N, H, W, C), ((ph, ph), (pw, pw)), x.dtype)
    xpad[:, ph:ph + H, pw:pw + W] = xt
    return xpad


def zero_bordered(inner: Tuple[int, int, int, int], pads: Tuple[Tuple[int, int], Tuple[int, int]],
                  dtype: Any) -> np.ndarray:
    """A channels-last buffer around an (N, H, W, C) inside, padded by pads ((top, bottom), (left,
    right)): the border zeroed, the inside left for the caller to write."""
    N, H, W, C = inner
    (top, bottom), (left, right) = pads
    buf = np.empty((N, H + top + bottom, W + left + right, C), dtype=dtype)
    buf[:, :top], buf[:, top + H:], buf[:, :, :left], buf[:, :, left + W:] = 0, 0, 0, 0
    return buf


def empty_like_layout(x: np.ndarray, shape: Tuple[int, int, int, int]) -> np.ndarray:
    """An uninitialised (N, C, H, W) array of ``shape`` in x's layout: the interior of a new
    zero-bordered channels-last buffer when x is such an interior (so that a pooling layer between
    two convolutions keeps their layout), a plain C-order array otherwise."""
    N, C, H, W = shape
    if padded_buffer_of(x) is not None:
        return interior(zero_border(np.empty((N, H + 2, W + 2, C), dtype=x.dtype)))
    return np.empty(shape, dtype=x.dtype)


def channel_sums(rows: np.ndarray) -> np.ndarray:
    """The sum over pixels of each channel of a (pixels, C) matrix (a bias gradient): one pass of
    einsum over the rows, where ``rows.sum(axis=0)`` of such a tall, narrow matrix ran 1.5-4 times slower."""
    return np.einsum("pc->c", rows)


def border_is_zero(xpad: np.ndarray) -> bool:
    """True when the one-pixel border of an (N, H+2, W+2, C) buffer is all zeros."""
    return not (xpad[:, 0].any() or xpad[:, -1].any() or xpad[:, :, 0].any() or xpad[:, :, -1].any())


def zero_border(xpad: np.ndarray) -> np.ndarray:
    """Set the one-pixel border of an (N, H+2, W+2, C) buffer to zero, in place; returns it."""
    xpad[:, 0] = 0
    xpad[:, -1] = 0
    xpad[:, :, 0] = 0
    xpad[:, :, -1] = 0
    return xpad


def _address(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]
