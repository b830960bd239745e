"""Strided convolutions of small layers as im2col in the channels-last layout.

The reference (kernels/conv.py) lays im2col's columns out as (C*KH*KW, N*OH*OW) and the output as
(O, N*OH*OW), so every layer pays for transposes between that and NCHW: the output is copied to
NCHW, the gradient is copied back to (O, N*OH*OW), and the weight gradient recomputes im2col. For
the small strided layers of an autoencoder's encoder those copies, not the products, are the time.

Here one pixel is one row, channels last, as in the other fast kernels:

    rows   = xpad[n, i*SH + kh, j*SW + kw, :] for every output pixel (n, i, j) and tap (kh, kw):
             a (N*OH*OW, KH*KW*C) matrix, copied tap by tap out of strided views of xpad
    forward      Y  = rows @ Wm             (N*OH*OW, O), Wm = w as (KH*KW*C, O)
    grad weight  dW = rows^T @ dY           (KH*KW*C, O)  [rows kept from the forward pass]
    grad input   dx = the nine (KH*KW) tap blocks of dY @ Wm^T added back onto a padded buffer

Outputs are NCHW views of channels-last arrays (like pointwise.py's), which the following ReLU,
fast upsampling or convolution read without a copy. The rows matrix is KH*KW times the size of the
layer's input (kept for the weight gradient), so ``supports`` takes only layers where it is small.
"""
from __future__ import annotations

from typing import Any, Tuple

import numpy as np

from tinygrad_cv.kernels.fast.channels_last import padded_buffer_of
from tinygrad_cv.kernels.geometry import Window

MAX_ROWS_BYTES = 64 * 2**20  # above this the reference (which does not keep im2col) is the better trade


def supports(x: Any, w: Any, b: Any, stride: Any, padding: Any, dilation: Any, groups: int) -> bool:
    """A strided (stride > 1 on some axis), undilated, ungrouped convolution of NumPy float arrays
    of one dtype whose rows matrix fits in MAX_ROWS_BYTES. Anything the reference would refuse is
    left to it (so that its error message is the one raised)."""
    arrays = [a for a in (x, w, b) if a is not None]
    if not (all(isinstance(a, np.ndarray) and a.dtype == x.dtype for a in arrays)
            and x.dtype in (np.float32, np.float64) and x.ndim == 4 and w.ndim == 4 and groups == 1
            and w.shape[1] == x.shape[1] and (b is None or b.shape == (w.shape[0],))):
        return False
    try:
        win = Window.of(w.shape[2:], stride, padding, dilation)
        OH, OW = win.output_size(x.shape)
    except (ValueError, TypeError):
        return False
    rows_bytes = x.shape[0] * OH * OW * w.shape[1] * w.shape[2] * w.shape[3] * x.itemsize
    return win.stride != (1, 1) and win.dilation == (1, 1) and rows_bytes <= MAX_ROWS_BYTES


def padded_channels_last(x: np.ndarray, padding: Tuple[int, int]) -> np.ndarray:
    """x (N, C, H, W) as a zero-padded (N, H+2ph, W+2pw, C) array; no copy when x is already the
    interior of such a buffer with a one-pixel border (the output of a fast 3x3 convolution)."""
    ph, pw = padding
    if (ph, pw) == (1, 1) and (buffer := padded_buffer_of(x)) is not None:
        return buffer
    N, C, H, W = x.shape
    xpad = np.zeros((N, H + 2 * ph, W + 2 * pw, C), dtype=x.dtype)
    xpad[:, ph:ph + H, pw:pw + W, :] = x.transpose(0, 2, 3, 1)
    return xpad


def tap_view(a: np.ndarray, win: Window, kh: int, kw: int, out_hw: Tuple[int, int]) -> np.ndarray:
    """The (N, OH, OW, C) strided view of a padded channels-last array that tap (kh, kw) reads."""
    (SH, SW), (OH, OW) = win.stride, out_hw
    return a[:, kh:kh + SH * (OH - 1) + 1:SH, kw:kw + SW * (OW - 1) + 1:SW, :]


def weight_matrix(w: np.ndarray) -> np.ndarray:
    """(O, C, KH, KW) -> (KH*KW*C, O), row (kh*KW + kw)*C + c: the order of the rows matrix's columns."""
    O, C, KH, KW = w.shape
    return w.transpose(2, 3, 1, 0).reshape(KH * KW * C, O)


def conv_forward(x: np.ndarray, w: np.ndarray, b: Any, stride: Any, padding: Any) -> Tuple[np.ndarray, np.ndarray]:
    """(y, rows): y (N, O, OH, OW), an NCHW view of a channels-last array; rows (N*OH*OW, KH*KW*C)."""
    N, C = x.shape[:2]
    O, _, KH, KW = w.shape
    win = Window.of((KH, KW), stride, padding)
    OH, OW = win.output_size(x.shape, "conv2d")
    xpad = padded_channels_last(x, win.padding)
    rows = np.empty((N, OH, OW, KH, KW, C), dtype=x.dtype)
    for kh in range(KH):
        for kw in range(KW):
            rows[:, :, :, kh, kw, :] = tap_view(xpad, win, kh, kw, (OH, OW))
    rows = rows.reshape(N * OH * OW, KH * KW * C)
    y = rows @ weight_matrix(w)  # (N*OH*OW, O)
    if b is not None:
        y += b
    return y.reshape(N, OH, OW, O).transpose(0, 3, 1, 2), rows


def grad_rows(grad: np.ndarray) -> np.ndarray:
    """dL/dy (N, O, OH, OW), any layout, as (N*OH*OW, O): a free view of a channels-last gradient."""
    return np.ascontiguousarray(grad.transpose(0, 2, 3, 1)).reshape(-1, grad.shape[1])


def conv_grad_weight(g_rows: np.ndarray, rows: np.ndarray, w_shape: Tuple[int, ...]) -> np.ndarray:
    """dL/dw (O, C, KH, KW) = rows^T @ dY, reordered from the rows matrix's column order."""
    O, C, KH, KW = w_shape
    return np.ascontiguousarray((rows.T @ g_rows).reshape(KH, KW, C, O).transpose(3, 2, 0, 1))


def conv_grad_input(g_rows: np.ndarray, w: np.ndarray, x_shape: Tuple[int, ...], stride: Any,
                    padding: Any) -> np.ndarray:
    """dL/dx (N, C, H, W), an NCHW view of a channels-last array: each tap's block of dY @ Wm^T added
    back where that tap read (overlapping windows add up), then the padding cut off."""
    N, C, H, W = x_shape
    O, _, KH, KW = w.shape
    win = Window.of((KH, KW), stride, padding)
    OH, OW = win.output_size(x_shape, "conv2d")
    (ph, pw) = win.padding
    d_rows = (g_rows @ weight_matrix(w).T).reshape(N, OH, OW, KH, KW, C)
    dxpad = np.zeros((N, H + 2 * ph, W + 2 * pw, C), dtype=g_rows.dtype)
    for kh in range(KH):
        for kw in range(KW):
            tap_view(dxpad, win, kh, kw, (OH, OW))[...] += d_rows[:, :, :, kh, kw, :]
    return dxpad[:, ph:ph + H, pw:pw + W, :].transpose(0, 3, 1, 2)
