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
fast upsampling or convolution read without a copy. The copies and products of each block of images
run on a core of their own (``image_blocks``; the weight gradient sums one partial product per block). The rows matrix is KH*KW times the size of the
layer's input (kept for the weight gradient), so ``supports`` takes only layers where it is small.
"""
from __future__ import annotations

from typing import Any, Tuple

import numpy as np

from tinygrad_cv.kernels.fast.channels_last import padded
from tinygrad_cv.kernels.fast.parallel import parallel_map, split, workers
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


def tap_view(a: np.ndarray, win: Window, kh: int, kw: int, out_hw: Tuple[int, int]) -> np.ndarray:
    """The (N, OH, OW, C) strided view of a padded channels-last array that tap (kh, kw) reads."""
    (SH, SW), (OH, OW) = win.stride, out_hw
    return a[:, kh:kh + SH * (OH - 1) + 1:SH, kw:kw + SW * (OW - 1) + 1:SW, :]


def kernel_row_view(a: np.ndarray, win: Window, kh: int, out_hw: Tuple[int, int]) -> np.ndarray:
    """The (N, OH, OW, KW, C) view of a padded channels-last array that kernel row kh reads: for output
    pixel (i, j), the KW pixels from (i*SH + kh, j*SW) on, which lie side by side in memory (so one
    copy moves KW*C numbers at a time, not C)."""
    (SH, SW), (OH, OW), KW = win.stride, out_hw, win.kernel[1]
    n, h, w, c = a.strides
    start = a[:, kh:kh + 1]  # row kh of every image: the view begins there
    return np.lib.stride_tricks.as_strided(start, (a.shape[0], OH, OW, KW, a.shape[3]), (n, SH * h, SW * w, w, c),
                                           writeable=False)


def weight_matrix(w: np.ndarray) -> np.ndarray:
    """(O, C, KH, KW) -> (KH*KW*C, O), row (kh*KW + kw)*C + c: the order of the rows matrix's columns."""
    O, C, KH, KW = w.shape
    return w.transpose(2, 3, 1, 0).reshape(KH * KW * C, O)


def image_blocks(N: int) -> list:
    """The images cut into consecutive blocks, one or more per core: each block's copies and products
    run on a core of its own (parallel.py), with BLAS single-threaded meanwhile. (BLAS's own threads,
    woken for one product and spinning after it, slowed the small kernels around them.)"""
    return split(0, N, max(1, N // (2 * workers())), at_least=2 * workers())


def conv_forward(x: np.ndarray, w: np.ndarray, b: Any, stride: Any, padding: Any) -> Tuple[np.ndarray, np.ndarray]:
    """(y, rows): y (N, O, OH, OW), an NCHW view of a channels-last array; rows (N*OH*OW, KH*KW*C)."""
    N, C = x.shape[:2]
    O, _, KH, KW = w.shape
    win = Window.of((KH, KW), stride, padding)
    OH, OW = win.output_size(x.shape, "conv2d")
    xpad = padded(x, win.padding)  # no copy when x is a fast 3x3 convolution's output
    rows = np.empty((N, OH, OW, KH, KW, C), dtype=x.dtype)
    y = np.empty((N, OH, OW, O), dtype=x.dtype)
    w_mat = weight_matrix(w)

    def images(r: range) -> None:  # the rows of images r.start .. r.stop - 1, then their product
        for kh in range(KH):  # the KW taps of kernel row kh are KW consecutive pixels: KW*C numbers
            rows[r.start:r.stop, :, :, kh] = kernel_row_view(xpad[r.start:r.stop], win, kh, (OH, OW))
        out = y[r.start:r.stop].reshape(-1, O)
        np.matmul(rows[r.start:r.stop].reshape(-1, KH * KW * C), w_mat, out=out)
        if b is not None:
            out += b

    parallel_map(images, image_blocks(N))
    return y.transpose(0, 3, 1, 2), rows.reshape(N * OH * OW, KH * KW * C)


def grad_rows(grad: np.ndarray) -> np.ndarray:
    """dL/dy (N, O, OH, OW), any layout, as (N*OH*OW, O): a free view of a channels-last gradient."""
    return np.ascontiguousarray(grad.transpose(0, 2, 3, 1)).reshape(-1, grad.shape[1])


def conv_grad_weight(g_rows: np.ndarray, rows: np.ndarray, w_shape: Tuple[int, ...]) -> np.ndarray:
    """dL/dw (O, C, KH, KW) = rows^T @ dY, reordered from the rows matrix's column order: one partial
    product per block of rows on each core, added."""
    O, C, KH, KW = w_shape
    blocks = split(0, rows.shape[0], -(-rows.shape[0] // (2 * workers())))
    partials = parallel_map(lambda r: rows[r.start:r.stop].T @ g_rows[r.start:r.stop], blocks) or [rows.T @ g_rows]
    total = sum(partials[1:], partials[0])
    return np.ascontiguousarray(total.reshape(KH, KW, C, O).transpose(3, 2, 0, 1))


def conv_grad_input(g_rows: np.ndarray, w: np.ndarray, x_shape: Tuple[int, ...], stride: Any,
                    padding: Any) -> np.ndarray:
    """dL/dx (N, C, H, W), an NCHW view of a channels-last array: each tap's block of dY @ Wm^T added
    back where that tap read (overlapping windows add up), then the padding cut off; per block of images."""
    N, C, H, W = x_shape
    O, _, KH, KW = w.shape
    win = Window.of((KH, KW), stride, padding)
    OH, OW = win.output_size(x_shape, "conv2d")
    (ph, pw) = win.padding
    w_mat_t = weight_matrix(w).T  # (O, KH*KW*C)
    dxpad = np.zeros((N, H + 2 * ph, W + 2 * pw, C), dtype=g_rows.dtype)
    g = g_rows.reshape(N, OH * OW, O)

    def images(r: range) -> None:
        d_rows = (g[r.start:r.stop].reshape(-1, O) @ w_mat_t).reshape(-1, OH, OW, KH, KW, C)
        for kh in range(KH):
            for kw in range(KW):
                tap_view(dxpad[r.start:r.stop], win, kh, kw, (OH, OW))[...] += d_rows[:, :, :, kh, kw, :]

    parallel_map(images, image_blocks(N))
    return dxpad[:, ph:ph + H, pw:pw + W, :].transpose(0, 3, 1, 2)
