"""Reflection padding and a "valid" convolution of any kernel size and stride, channels-last.

The 26-style network pads every convolution's input by reflection (9x9 and 3x3 kernels, strides 1
and 2). Here the padding is written straight into a channels-last buffer (N, H+2p, W+2p, C), and the
convolution reads it as a strided view of windows (N, OH, OW, KH, KW, C): a band of output rows at a
time is copied into an im2col matrix small enough to stay in cache and multiplied by the
(KH*KW*C, O) weight matrix, one band per core (``parallel.py``). The result is channels-last too; the
NCHW array returned is a view of it, so the next layer's padding reads it without a transpose copy.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from tinygrad_cv.kernels.fast.parallel import parallel_map, split, workers

BAND_BYTES = 1 << 21  # about 2 MiB of im2col rows per block: stays in a core's cache


def reflect_pad_channels_last(x: np.ndarray, p: int) -> np.ndarray:
    """(N, C, H, W) -> (N, H+2p, W+2p, C), the border the mirror image of the edge (np.pad 'reflect');
    needs p < H and p < W."""
    N, C, H, W = x.shape
    out = np.empty((N, H + 2 * p, W + 2 * p, C), dtype=x.dtype)
    out[:, p:p + H, p:p + W] = x.transpose(0, 2, 3, 1)
    if p:
        out[:, :p, p:p + W] = out[:, 2 * p:p:-1, p:p + W]  # row p - i mirrors row p + i
        out[:, p + H:, p:p + W] = out[:, p + H - 2:H - 2 if H > 1 else None:-1, p:p + W]
        out[:, :, :p] = out[:, :, 2 * p:p:-1]
        out[:, :, p + W:] = out[:, :, p + W - 2:W - 2 if W > 1 else None:-1]
    return out


def fold_reflection(gpad: np.ndarray, p: int) -> np.ndarray:
    """The adjoint of reflection padding on an NCHW gradient: (N, C, H+2p, W+2p) -> (N, C, H, W),
    each border value added onto the pixel it mirrors."""
    if p == 0:
        return gpad
    g = gpad[:, :, :, p:-p].copy()
    W = g.shape[3]
    g[:, :, :, 1:p + 1] += gpad[:, :, :, p - 1::-1]  # left border, nearest column first
    g[:, :, :, W - 1 - p:W - 1] += gpad[:, :, :, :p + W - 1:-1]
    out = g[:, :, p:-p].copy()
    H = out.shape[2]
    out[:, :, 1:p + 1] += g[:, :, p - 1::-1]
    out[:, :, H - 1 - p:H - 1] += g[:, :, :p + H - 1:-1]
    return out


def conv_valid_channels_last(xpad: np.ndarray, w: np.ndarray, stride: int) -> np.ndarray:
    """y[n, o, i, j] = sum_{kh, kw, c} w[o, c, kh, kw] * xpad[n, i*stride + kh, j*stride + kw, c].

    Args: xpad (N, Hp, Wp, C) channels-last, w (O, C, KH, KW). Returns (N, O, OH, OW), a view of a
    channels-last (N, OH, OW, O) array.
    """
    N, Hp, Wp, C = xpad.shape
    O, _, KH, KW = w.shape
    OH, OW = (Hp - KH) // stride + 1, (Wp - KW) // stride + 1
    wmat = np.ascontiguousarray(w.transpose(2, 3, 1, 0).reshape(KH * KW * C, O))  # (KH*KW*C, O)
    xpad = np.ascontiguousarray(xpad)
    sN, sH, sW, sC = xpad.strides
    windows = as_strided(xpad, (N, OH, OW, KH, KW, C), (sN, sH * stride, sW * stride, sH, sW, sC))
    y = np.empty((N, OH, OW, O), dtype=xpad.dtype)
    rows = max(1, BAND_BYTES // (OW * KH * KW * C * xpad.itemsize))
    bands = [(n, r) for n in range(N) for r in split(0, OH, rows, at_least=2 * workers())]

    def band(block: Any) -> None:
        n, r = block
        cols = windows[n, r.start:r.stop].reshape(-1, KH * KW * C)  # (rows*OW, KH*KW*C), the im2col copy
        np.matmul(cols, wmat, out=y[n, r.start:r.stop].reshape(-1, O))

    parallel_map(band, bands)
    return y.transpose(0, 3, 1, 2)
