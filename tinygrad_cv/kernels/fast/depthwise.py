"""Depthwise convolution (groups = channels, one KH x KW filter per channel) without im2col.

The reference (kernels/conv.py with ``groups = C``) copies every window into a column and runs C
matrix products of shape (1, KH*KW) @ (KH*KW, N*OH*OW): a copy KH*KW times the image and a batch of
tiny products. Here each kernel tap is one strided view of the padded image (geometry.window_views)
and the convolution is KH*KW multiply-adds of whole views, each scaled by one weight per channel:

    y[n, c] = b[c] + sum_t w[c, t] * view_t[n, c]            (t = kh*KW + kw)
    dx_pad  = sum_t  w[c, t] * dy   added onto view_t's pixels
    dw[c, t] = sum_{n, i, j} dy[n, c, i, j] * view_t[n, c, i, j]

No extra memory beyond the padded input and the output; NumPy arrays, float32 or float64.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from tinygrad_cv.kernels.geometry import Window, pair, window_views
from tinygrad_cv.kernels.im2col import pad2d


def supports(x: Any, w: Any, b: Any, stride: Any, padding: Any, dilation: Any, groups: int) -> bool:
    """A depthwise convolution of NumPy float arrays of one dtype: w (C, 1, KH, KW), groups = C."""
    arrays = [a for a in (x, w, b) if a is not None]
    return (all(isinstance(a, np.ndarray) and a.dtype == x.dtype for a in arrays)
            and x.dtype in (np.float32, np.float64) and x.ndim == 4 and w.ndim == 4
            and groups == x.shape[1] == w.shape[0] and w.shape[1] == 1)


def _taps(xpad: np.ndarray, w_shape: Sequence[int], stride: Any, padding: Any, dilation: Any, x_shape: Sequence[int]):
    win = Window.of(tuple(w_shape[2:]), stride, padding, dilation)
    out_hw = win.output_size(x_shape, "depthwise_conv2d")
    return window_views(xpad, win, out_hw)  # KH*KW views, each (N, C, OH, OW)


def depthwise_forward(x: np.ndarray, w: np.ndarray, b: Optional[np.ndarray], stride: Any = 1,
                      padding: Any = 0, dilation: Any = 1) -> np.ndarray:
    """y = conv2d(x, w, b, groups=C). Shape: x (N, C, H, W), w (C, 1, KH, KW) -> (N, C, OH, OW)."""
    C = x.shape[1]
    taps = _taps(pad2d(x, pair(padding, "padding")), w.shape, stride, padding, dilation, x.shape)
    w_taps = w.reshape(C, -1, 1, 1)  # (C, KH*KW, 1, 1)
    y = np.multiply(taps[0], w_taps[:, 0])  # (N, C, OH, OW)
    scratch = np.empty_like(y)
    for t in range(1, len(taps)):
        np.multiply(taps[t], w_taps[:, t], out=scratch)
        y += scratch
    if b is not None:
        y += b.reshape(C, 1, 1)
    return y


def depthwise_grad_input(grad: np.ndarray, w: np.ndarray, x_shape: Sequence[int], stride: Any = 1,
                         padding: Any = 0, dilation: Any = 1) -> np.ndarray:
    """dL/dx: every tap adds its weight times dy back onto the pixels it read. Shape ``x_shape``."""
    N, C, H, W = x_shape
    ph, pw = pair(padding, "padding")
    dxpad = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=grad.dtype)
    taps = _taps(dxpad, w.shape, stride, padding, dilation, x_shape)
    w_taps = w.reshape(C, -1, 1, 1)
    scratch = np.empty_like(grad)
    for t, view in enumerate(taps):
        np.multiply(grad, w_taps[:, t], out=scratch)
        view += scratch
    return dxpad[:, :, ph:ph + H, pw:pw + W]


def depthwise_grad_weight(grad: np.ndarray, x: np.ndarray, w_shape: Sequence[int], stride: Any = 1,
                          padding: Any = 0, dilation: Any = 1) -> np.ndarray:
    """dL/dw[c, t] = sum over n, i, j of dy * view_t. Shape ``w_shape`` (C, 1, KH, KW)."""
    taps = _taps(pad2d(x, pair(padding, "padding")), w_shape, stride, padding, dilation, x.shape)
    dw = np.stack([np.einsum("nchw,nchw->c", grad, view) for view in taps], axis=1)  # (C, KH*KW)
    return dw.reshape(w_shape)
