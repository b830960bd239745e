"""Depthwise convolution (groups = channels, one KH x KW filter per channel) without im2col.

The reference (kernels/conv.py with ``groups = C``) copies every window into a column and runs C
matrix products of shape (1, KH*KW) @ (KH*KW, N*OH*OW): a copy KH*KW times the image and a batch of
tiny products. Here each kernel tap is one strided view of the padded image (as in
geometry.window_views) and the convolution is KH*KW multiply-adds of whole views, each scaled by one
weight per channel:

    y[n, c]  = b[c] + sum_t w[c, t] * view_t[n, c]            (t = kh*KW + kw)
    dx_pad   = sum_t  w[c, t] * dy   added onto view_t's pixels
    dw[c, t] = sum_{n, i, j} dy[n, c, i, j] * view_t[n, c, i, j]

Layout: the work is done channels-last, (N, H, W, C), and each tap's view is a block of whole rows:
the padded input is written once, cut into its stride phases (``_phases``: with stride 2, four
images of every other row and column, so that a strided tap reads a contiguous block of one phase),
and each tap's weights are repeated along an output row (``_tap_weights``). Then a multiply-add runs
over OW*C consecutive numbers at a time, where broadcasting a (C,) weight would cut it into loops of
C (numbers measured under the CPU lock: the 16 depthwise layers of EfficientNet-Lite0 took 35 ms
with (C,) weights and strided views, 14 ms so). Outputs are returned as NCHW *views* of
channels-last arrays (the convention of this folder), which elementwise ops keep and the 1x1 fast
path (pointwise.py) reads without a copy. One thread: cutting the output into one block per core
(parallel.py) made these memory-bound loops slower on a 2-core machine (PERFORMANCE.md).

The forward pass is instead one ``np.einsum`` over a window view of the padded image, which einsum
runs as a multiply-accumulate over consecutive numbers, in one pass, with an output row kept in cache
over all of its taps (the loop above makes two passes over the whole output per tap: multiply, then
add). With stride 1 along the width, the view is (N, OH, KH, KW, OW*C): for a tap, an output row's
OW*C numbers are OW*C consecutive numbers of one padded input row, so einsum's innermost loop is that
long, against the tap weights repeated along the row. With a stride along the width they are not
consecutive, and the view is (N, OH, OW, C, KH, KW) against (KH, KW, C) filters: an inner loop of C
numbers, which pays from ``EINSUM_MIN_CHANNELS`` on; below it the loop above is faster. Numbers
(EfficientNet-Lite0's 16 layers: 13.5 ms with the loop, 8.0 ms so) are in PERFORMANCE.md. From
``WINDOWS_MIN_CHANNELS`` on, the window view is used at stride 1 too: an inner loop of C numbers is
then long enough, and each weight is read once instead of once per output column.
"""
from __future__ import annotations

from typing import Any, List, Optional, Sequence, Tuple

import numpy as np
from numpy.lib.stride_tricks import as_strided

from tinygrad_cv.kernels.fast.channels_last import padded
from tinygrad_cv.kernels.fast.weight_cache import PreparedWeights
from tinygrad_cv.kernels.geometry import Window

EINSUM_MIN_CHANNELS = 64  # with a stride along the width, einsum over (C,) filters pays from here on
WINDOWS_MIN_CHANNELS = 240  # with stride 1 too, from here on: rows of C read each weight once


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


def _phases(x: np.ndarray, win: Window) -> np.ndarray:
    """(N, C, H, W) -> the zero-padded image channels-last, cut into its SH x SW stride phases:
    (SH, SW, N, HQ, WQ, C) with phases[a, b, n, i, j] = xpad[n, i*SH + a, j*SW + b], in one copy.
    With stride 1 there is one phase, the padded image itself; with stride 2 a tap reads every other
    pixel of the padded image but a contiguous block of one phase."""
    N, C, H, W = x.shape
    (ph, pw), (SH, SW) = win.padding, win.stride
    HQ, WQ = -(-(H + 2 * ph) // SH), -(-(W + 2 * pw) // SW)
    phases = np.zeros((SH, SW, N, HQ, WQ, C), dtype=x.dtype)
    xt = x.transpose(0, 2, 3, 1)
    for a in range(SH):
        rows, i = _phase_range(a, ph, H, SH)
        for b in range(SW):
            cols, j = _phase_range(b, pw, W, SW)
            phases[a, b, :, i, j] = xt[:, rows, cols]
    return phases


def _phase_range(a: int, pad: int, n: int, stride: int) -> Tuple[slice, slice]:
    """Phase ``a`` of a padded axis of input size n holds padded positions i*stride + a, which are
    input positions i*stride + a - pad: (those input positions, the phase positions i holding them)."""
    first = max(0, -(-(pad - a) // stride))
    inputs = range(first * stride + a - pad, n, stride)
    return slice(inputs.start, n, stride), slice(first, first + len(inputs))


def _unphase(phases: np.ndarray, win: Window, x_shape: Sequence[int]) -> np.ndarray:
    """The inverse of ``_phases`` without the padding: (N, C, H, W), an NCHW view of channels-last."""
    N, C, H, W = x_shape
    (ph, pw), (SH, SW) = win.padding, win.stride
    if SH == SW == 1:
        return phases[0, 0, :, ph:ph + H, pw:pw + W].transpose(0, 3, 1, 2)
    out = np.empty((N, H, W, C), dtype=phases.dtype)
    for a in range(SH):
        rows, i = _phase_range(a, ph, H, SH)
        for b in range(SW):
            cols, j = _phase_range(b, pw, W, SW)
            out[:, rows, cols] = phases[a, b, :, i, j]
    return out.transpose(0, 3, 1, 2)


def _taps(phases: np.ndarray, win: Window, out_hw: Tuple[int, int]) -> List[np.ndarray]:
    """The KH*KW views of the padded image that the taps read, each (N, OH, OW, C): tap (kh, kw) reads
    xpad[n, i*SH + kh*DH, j*SW + kw*DW], a contiguous block of rows of one phase (``_phases``), so
    that each row of a view is OW*C consecutive numbers."""
    (KH, KW), (SH, SW), (DH, DW) = win.kernel, win.stride, win.dilation
    OH, OW = out_hw
    views = []
    for kh in range(KH):
        for kw in range(KW):
            (i, a), (j, b) = divmod(kh * DH, SH), divmod(kw * DW, SW)
            views.append(phases[a, b, :, i:i + OH, j:j + OW])
    return views


def _tap_weights(w: np.ndarray, OW: int) -> np.ndarray:
    """(C, 1, KH, KW) -> (KH*KW, OW, C): row t is tap t's weights repeated along an output row, so
    that a multiply of a tap's view runs over whole rows (OW*C numbers) instead of C at a time."""
    C = w.shape[0]
    return np.ascontiguousarray(np.broadcast_to(w.reshape(C, -1).T[:, None, :], (w[0].size, OW, C)))


def depthwise_forward(x: np.ndarray, w: np.ndarray, b: Optional[np.ndarray], stride: Any = 1,
                      padding: Any = 0, dilation: Any = 1) -> np.ndarray:
    """y = conv2d(x, w, b, groups=C). Shape: x (N, C, H, W), w (C, 1, KH, KW) -> (N, C, OH, OW),
    an NCHW view of a channels-last array."""
    win, out_hw = _geometry(x.shape, w.shape, stride, padding, dilation)
    if win.stride[1] == 1 and x.shape[1] < WINDOWS_MIN_CHANNELS:
        return forward_rows(x, w, b, win, out_hw)
    if x.shape[1] >= EINSUM_MIN_CHANNELS:
        return forward_windows(x, w, b, win, out_hw)
    return forward_taps(x, w, b, win, out_hw)


def forward_taps(x: np.ndarray, w: np.ndarray, b: Optional[np.ndarray], win: Window,
                 out_hw: Tuple[int, int]) -> np.ndarray:
    """y = sum over taps t of view_t * w_taps[t]: two passes over the output per tap, any stride."""
    taps = _taps(_phases(x, win), win, out_hw)
    w_taps = _tap_weights(w, out_hw[1])  # (KH*KW, OW, C)
    y = np.multiply(taps[0], w_taps[0])  # (N, OH, OW, C)
    scratch = np.empty_like(y)
    for t in range(1, len(taps)):
        np.multiply(taps[t], w_taps[t], out=scratch)
        y += scratch
    if b is not None:
        y += b
    return y.transpose(0, 3, 1, 2)


def forward_rows(x: np.ndarray, w: np.ndarray, b: Optional[np.ndarray], win: Window,
                 out_hw: Tuple[int, int], flipped: bool = False) -> np.ndarray:
    """Stride 1 along the width: y[n, i, m] = sum over kh, kw of rows[n, i, kh, kw, m] * w_taps[kh, kw, m],
    m = j*C + c running over an output row, rows[n, i, kh, kw] = the padded input row i*SH + kh*DH from
    column kw*DW on, OW*C consecutive numbers (so nothing is copied). ``flipped``: with w's kernels
    turned by 180 degrees (the input gradient's convolution)."""
    N, C = x.shape[:2]
    (OH, OW), (KH, KW), (SH, _), (DH, DW) = out_hw, win.kernel, win.stride, win.dilation
    xpad = padded(x, win.padding)  # C-contiguous along (W, C): column j, channel c is number j*C + c of a row
    sn, sh, sw, sc = xpad.strides
    rows = as_strided(xpad, (N, OH, KH, KW, OW * C), (sn, SH * sh, DH * sh, DW * sw, sc), writeable=False)
    y = np.empty((N, OH, OW * C), dtype=x.dtype)
    np.einsum("niabm,abm->nim", rows, _row_weights(w, OW, flipped), out=y)
    y = y.reshape(N, OH, OW, C)
    if b is not None:
        y += b
    return y.transpose(0, 3, 1, 2)


_repeated_by_width = PreparedWeights(lambda w: {})  # weight array -> {(OW, flipped): taps along a row}


def _row_weights(w: np.ndarray, OW: int, flipped: bool) -> np.ndarray:
    """``_tap_weights`` (of the flipped kernels if asked) as (KH, KW, OW*C), kept while ``w`` is
    unchanged (a frozen network's passes would otherwise rebuild them every time: 1 ms of
    EfficientNet-Lite0's 30)."""
    by_width = _repeated_by_width(w)
    if (OW, flipped) not in by_width:
        kernels = w[:, :, ::-1, ::-1] if flipped else w
        by_width[(OW, flipped)] = _tap_weights(kernels, OW).reshape(*w.shape[2:], -1)
    return by_width[(OW, flipped)]


def forward_windows(x: np.ndarray, w: np.ndarray, b: Optional[np.ndarray], win: Window,
                    out_hw: Tuple[int, int]) -> np.ndarray:
    """y[n, i, j, c] = sum over kh, kw of windows[n, i, j, c, kh, kw] * w[c, kh, kw], any stride."""
    N, C = x.shape[:2]
    y = np.empty((N, *out_hw, C), dtype=x.dtype)
    filters = np.ascontiguousarray(w[:, 0].transpose(1, 2, 0))  # (KH, KW, C)
    np.einsum("nijcab,abc->nijc", _windows(padded(x, win.padding), win, out_hw), filters, out=y)
    if b is not None:
        y += b
    return y.transpose(0, 3, 1, 2)


def _windows(xpad: np.ndarray, win: Window, out_hw: Tuple[int, int]) -> np.ndarray:
    """A read-only view (N, OH, OW, C, KH, KW) of the padded channels-last image:
    windows[n, i, j, c, kh, kw] = xpad[n, i*SH + kh*DH, j*SW + kw*DW, c]. Nothing is copied."""
    (KH, KW), (SH, SW), (DH, DW) = win.kernel, win.stride, win.dilation
    sn, sh, sw, sc = xpad.strides
    shape = (xpad.shape[0], *out_hw, xpad.shape[3], KH, KW)
    return as_strided(xpad, shape, (sn, SH * sh, SW * sw, sc, DH * sh, DW * sw), writeable=False)


def depthwise_grad_input(grad: np.ndarray, w: np.ndarray, x_shape: Sequence[int], stride: Any = 1,
                         padding: Any = 0, dilation: Any = 1) -> np.ndarray:
    """dL/dx: every tap adds its weight times dy back onto the pixels it read. Shape ``x_shape``."""
    N, C, H, W = x_shape
    win, (OH, OW) = _geometry(x_shape, w.shape, stride, padding, dilation)
    (KH, KW), (DH, DW) = win.kernel, win.dilation
    spread = (DH * (KH - 1) - win.padding[0], DW * (KW - 1) - win.padding[1])
    if win.stride == (1, 1) and min(spread) >= 0:
        # With stride 1 that is the convolution of dy, padded by D*(K-1) - p, with the flipped kernel.
        flipped = Window.of((KH, KW), 1, spread, (DH, DW))
        return forward_rows(grad, w, None, flipped, (H, W), flipped=True)
    (ph, pw), (SH, SW) = win.padding, win.stride
    g = channels_last(grad)  # (N, OH, OW, C)
    dphases = np.zeros((SH, SW, N, -(-(H + 2 * ph) // SH), -(-(W + 2 * pw) // SW), C), dtype=grad.dtype)
    w_taps = _tap_weights(w, OW)
    scratch = np.empty_like(g)
    for t, view in enumerate(_taps(dphases, win, (OH, OW))):
        np.multiply(g, w_taps[t], out=scratch)
        view += scratch
    return _unphase(dphases, win, x_shape)


def depthwise_grad_weight(grad: np.ndarray, x: np.ndarray, w_shape: Sequence[int], stride: Any = 1,
                          padding: Any = 0, dilation: Any = 1) -> np.ndarray:
    """dL/dw[c, t] = sum over n, i, j of dy * view_t. Shape ``w_shape`` (C, 1, KH, KW)."""
    win, out_hw = _geometry(x.shape, w_shape, stride, padding, dilation)
    taps = _taps(_phases(x, win), win, out_hw)
    g = channels_last(grad)
    dw = np.stack([np.einsum("nhwc,nhwc->c", g, view) for view in taps], axis=1)  # (C, KH*KW)
    return dw.reshape(w_shape)
