"""Reflection padding and a "valid" convolution of any kernel size and stride, channels-last.

The 26-style network pads every convolution's input by reflection (9x9 and 3x3 kernels, strides 1
and 2). Here the padding is written straight into a channels-last buffer (N, H+2p, W+2p, C), and the
convolution reads it as a strided view of windows (N, OH, OW, KH, KW, C): a band of output rows at a
time is copied into an im2col matrix small enough to stay in cache and multiplied by the
(KH*KW*C, O) weight matrix, one band per core (``style_layers.conv_bands``, which also widens thin
products). The result is channels-last too; the NCHW array returned is a view of it, so the next
layer's padding reads it without a transpose copy. The gradient with respect to the padded input is
the same kind of convolution, of the gradient with the flipped kernel (``conv_grad_input_channels_last``).
"""
from __future__ import annotations

import numpy as np

from tinygrad_cv.kernels.fast.style_layers import conv_bands


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
    channels-last (N, OH, OW, O) array. The bands and the blocked products of ``style_layers.conv_bands``.
    """
    y, _, _ = conv_bands(xpad, np.ascontiguousarray(w, dtype=xpad.dtype), stride, stats=False)
    return y.transpose(0, 3, 1, 2)


def conv_grad_input_channels_last(grad: np.ndarray, w: np.ndarray, Hp: int, Wp: int, stride: int) -> np.ndarray:
    """dL/dxpad for y = conv_valid_channels_last(xpad, w, stride) and dL/dy = grad (N, O, OH, OW).

    dxpad[r] = sum_kh w[kh] * g[(r - kh) / stride] over the kh that divide evenly: the "valid" correlation
    of the gradient, spread out by the stride (zeros between) and zero-padded by K - 1, with the kernel
    flipped and its channels swapped. Returns (N, C, Hp, Wp), a view of a channels-last array.
    """
    N, O, OH, OW = grad.shape
    _, C, KH, KW = w.shape
    spread = np.zeros((N, Hp + KH - 1, Wp + KW - 1, O), dtype=grad.dtype)
    spread[:, KH - 1:KH + (OH - 1) * stride:stride, KW - 1:KW + (OW - 1) * stride:stride] = grad.transpose(0, 2, 3, 1)
    return conv_valid_channels_last(spread, w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3), 1)
