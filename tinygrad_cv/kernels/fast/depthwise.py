"""Depthwise convolution (groups = channels, one KH x KW filter per channel) without im2col.

The reference (kernels/conv.py with ``groups = C``) copies every window into a column and runs C
matrix products of shape (1, KH*KW) @ (KH*KW, N*OH*OW): a copy KH*KW times the image and a batch of
tiny products. Here each kernel tap is one strided view of the padded image (as in
geometry.window_views) and the convolution is KH*KW multiply-adds of whole views, each scaled by one
weight per channel:

    y[n, c]  = b[c] + sum_t w[c, t] * view_t[n, c]            (t = kh*KW + kw)
    dx_pad   = sum_t  w[c, t] * dy   added onto view_t's pixels
    dw[c, t] = sum_{n, i, j} dy[n, c, i, j] * view_t[n, c, i, j]

Layout: the work is done channels-last, (N, H, W, C), where the per-channel weight of a tap
broadcasts along the contiguous last axis, so every multiply-add is one long vector loop even for the
7 x 7 maps of the last blocks (in NCHW the inner loop would be 7 numbers long). The padded input is
written channels-last in one copy; outputs are returned as NCHW *views* of channels-last arrays (the
convention of this folder), which elementwise ops keep and the 1x1 fast path (pointwise.py) reads
without a copy. One thread: cutting the channels into one block per core (parallel.py) made these
memory-bound loops slower on a 2-core machine (PERFORMANCE.md).
"""
from __future__ import annotations

from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

from tinygrad_cv.kernels.geometry import Window


def supports(x: Any, w: Any, b: Any, stride: Any, padding: Any, dilation: Any, groups: int) -> bool:
    """A depthwise convolution of NumPy float arrays of one dtype: w (C, 1, KH, KW), groups = C."""
    arrays = [a for a in (x, w, b) if a is not None]
    return (all(isinstance(a, np.ndarray) and a.dtype == x.dtype for a in arrays)
            and x.dtype in (np.float32, np.float64) and x.ndim == 4 and w.ndim == 4
            and groups == x.shape[1] == w.shape[0] and w.shape[1] == 1)


def channels_last(a: np.ndarray) -> np.ndarray:
    """(N, C, H, W) -> (N, H, W, C), C-contiguous: a free view when ``a`` is already such a view."""
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1))


def _geometry(x_shape: Sequence[int], w_shape: Sequence[int], stride: Any, padding: Any,
              dilation: Any) -> Tuple[Window, Tuple[int, int]]:
    win = Window.of(tuple(w_shape[2:]), stride, padding, dilation)
    return win, win.output_size(x_shape, "depthwise_conv2d")


def _taps(xpad: np.ndarray, win: Window, out_hw: Tuple[int, int]) -> List[np.ndarray]:
    """The KH*KW strided views of a channels-last padded image, each (N, OH, OW, C)."""
    (KH, KW), (SH, SW), (DH, DW) = win.kernel, win.stride, win.dilation
    OH, OW = out_hw
    return [xpad[:, kh * DH:kh * DH + SH * (OH - 1) + 1:SH, kw * DW:kw * DW + SW * (OW - 1) + 1:SW]
            for kh in range(KH) for kw in range(KW)]


def _padded(x: np.ndarray, padding: Tuple[int, int]) -> np.ndarray:
    """(N, C, H, W) -> zero-padded (N, H + 2ph, W + 2pw, C), in one copy."""
    N, C, H, W = x.shape
    ph, pw = padding
    xpad = np.zeros((N, H + 2 * ph, W + 2 * pw, C), dtype=x.dtype)
    xpad[:, ph:ph + H, pw:pw + W] = x.transpose(0, 2, 3, 1)
    return xpad


def depthwise_forward(x: np.ndarray, w: np.ndarray, b: Optional[np.ndarray], stride: Any = 1,
                      padding: Any = 0, dilation: Any = 1) -> np.ndarray:
    """y = conv2d(x, w, b, groups=C). Shape: x (N, C, H, W), w (C, 1, KH, KW) -> (N, C, OH, OW),
    an NCHW view of a channels-last array."""
    N, C = x.shape[:2]
    win, (OH, OW) = _geometry(x.shape, w.shape, stride, padding, dilation)
    taps = _taps(_padded(x, win.padding), win, (OH, OW))
    w_taps = w.reshape(C, -1).T  # (KH*KW, C): row t scales tap t, channel by channel
    y = np.multiply(taps[0], w_taps[0])  # (N, OH, OW, C)
    scratch = np.empty_like(y)
    for t in range(1, len(taps)):
        np.multiply(taps[t], w_taps[t], out=scratch)
        y += scratch
    if b is not None:
        y += b
    return y.transpose(0, 3, 1, 2)


def depthwise_grad_input(grad: np.ndarray, w: np.ndarray, x_shape: Sequence[int], stride: Any = 1,
                         padding: Any = 0, dilation: Any = 1) -> np.ndarray:
    """dL/dx: every tap adds its weight times dy back onto the pixels it read. Shape ``x_shape``."""
    N, C, H, W = x_shape
    win, out_hw = _geometry(x_shape, w.shape, stride, padding, dilation)
    (ph, pw) = win.padding
    g = channels_last(grad)  # (N, OH, OW, C)
    dxpad = np.zeros((N, H + 2 * ph, W + 2 * pw, C), dtype=grad.dtype)
    taps = _taps(dxpad, win, out_hw)
    w_taps = w.reshape(C, -1).T  # (KH*KW, C)
    scratch = np.empty_like(g)
    for t, view in enumerate(taps):
        np.multiply(g, w_taps[t], out=scratch)
        view += scratch
    return dxpad[:, ph:ph + H, pw:pw + W].transpose(0, 3, 1, 2)


def depthwise_grad_weight(grad: np.ndarray, x: np.ndarray, w_shape: Sequence[int], stride: Any = 1,
                          padding: Any = 0, dilation: Any = 1) -> np.ndarray:
    """dL/dw[c, t] = sum over n, i, j of dy * view_t. Shape ``w_shape`` (C, 1, KH, KW)."""
    win, out_hw = _geometry(x.shape, w_shape, stride, padding, dilation)
    taps = _taps(_padded(x, win.padding), win, out_hw)
    g = channels_last(grad)
    dw = np.stack([np.einsum("nhwc,nhwc->c", g, view) for view in taps], axis=1)  # (C, KH*KW)
    return dw.reshape(w_shape)
