"""Nearest upsampling by 2 followed by a 3x3 convolution (stride 1, padding 1), computed on the small image.

A decoder doubles its image and convolves it. The upsampled image is four copies of every pixel:
pixel (2i + r, 2j + s) of it is pixel (i, j) of the small image x, for the phases r, s in {0, 1}.
So a 3x3 tap at row offset kh - 1 from output row 2i + r reads upsampled row 2i + r + kh - 1, which is
small-image row i + (r + kh - 1) // 2:

    phase r = 0:  taps kh = 0, 1, 2 read small rows i - 1, i, i
    phase r = 1:  taps kh = 0, 1, 2 read small rows i,     i, i + 1

(the same for columns). Each output phase reads only two rows and two columns of the small image: a
2x2 window, rows i - 1 + r and i + r, whose kernel taps are sums of the original ones (``PHASE_TAPS``
says which original tap lands on which window row). On x zero-padded by one pixel, the window of
phase (r, s) for output pixel (i, j) starts at padded pixel (i + r, j + s). So one 2x2 convolution of
x with padding 1 and 4*O output channels holds all four phases at its (H+1) x (W+1) window positions:

    y[2i + r, 2j + s] = z[i + r, j + s, channel block 2r + s]

(each block is read at H x W of the positions; the other row and column are computed and dropped).
The 2x2 convolution is im2col in the channels-last layout and one product, strided_conv.py's kernels
with stride 1: rows (N*(H+1)*(W+1), 4*C) @ (4*C, 4*O). Upsampling and then convolving multiplies
(N*2H*2W, 9*C) rows by (9*C, O): 36*H*W multiply-adds per image, input and output channel against
16*(H+1)*(W+1) here (0.58 of them at 7x7, 0.51 at 14x14), and its rows come from an upsampled copy
(PERFORMANCE.md has the timings against the earlier ways).
Backward, every pixel of dL/dy goes back to its (position, block) slot, zero elsewhere; the 2x2
convolution's input gradient is then dL/dx on the small image directly, and its weight gradient is
added back onto the 3x3 taps that made each phase tap.
"""
from __future__ import annotations

from typing import Any, Iterator, Optional, Tuple

import numpy as np

from tinygrad_cv.kernels.fast import strided_conv
from tinygrad_cv.kernels.fast.channels_last import channel_sums

# PHASE_TAPS[r, t, kh] = 1 when, in output phase r, tap kh of the 3x3 kernel reads row t of the 2x2 window.
PHASE_TAPS = np.array([[[1, 0, 0], [0, 1, 1]],
                       [[1, 1, 0], [0, 0, 1]]], dtype=np.float64)


def supports(x: Any, w: Any, b: Any, scale_factor: Tuple[int, int]) -> bool:
    """NumPy float arrays of one dtype, a (O, C, 3, 3) kernel for x's C channels, a scale of 2, and
    rows (kept for the weight gradient) within strided_conv.MAX_ROWS_BYTES."""
    arrays = [a for a in (x, w, b) if a is not None]
    if not (all(isinstance(a, np.ndarray) and a.dtype == x.dtype for a in arrays)
            and x.dtype in (np.float32, np.float64) and x.ndim == 4 and w.ndim == 4
            and w.shape[1:] == (x.shape[1], 3, 3) and (b is None or b.shape == (w.shape[0],))
            and tuple(scale_factor) == (2, 2)):
        return False
    N, C, H, W = x.shape
    return N * (H + 1) * (W + 1) * 4 * C * x.itemsize <= strided_conv.MAX_ROWS_BYTES


def phase_weights(w: np.ndarray) -> np.ndarray:
    """(O, C, 3, 3) kernel -> (4*O, C, 2, 2): output channel (2r + s)*O + o is phase (r, s) of o, its
    tap (t, u) the sum of the original taps that read row t and column u of the phase's window."""
    O, C = w.shape[:2]
    taps = PHASE_TAPS.astype(w.dtype)
    by_row = np.tensordot(taps, w, axes=([2], [2]))  # (r, t, O, C, kw): the kernel rows summed
    both = np.tensordot(taps, by_row, axes=([2], [4]))  # (s, u, r, t, O, C): the columns too
    return np.ascontiguousarray(both.transpose(2, 0, 4, 5, 3, 1)).reshape(4 * O, C, 2, 2)


def weight_from_phases(d_phases: np.ndarray) -> np.ndarray:
    """The adjoint of ``phase_weights``: dL/dw (O, C, 3, 3) from dL/dW_phases (4*O, C, 2, 2)."""
    O, C = d_phases.shape[0] // 4, d_phases.shape[1]
    taps = PHASE_TAPS.astype(d_phases.dtype)
    by_row = np.tensordot(d_phases.reshape(2, 2, O, C, 2, 2), taps, axes=([0, 4], [0, 1]))  # (s, O, C, u, kh)
    return np.tensordot(by_row, taps, axes=([0, 3], [0, 1]))  # (O, C, kh, kw)


def phase_blocks(O: int) -> Iterator[Tuple[int, int, slice]]:
    """(r, s, the channels of block 2r + s) for the four phases: where ``from_phases`` and its adjoint
    find phase (r, s) among the 4*O output channels."""
    for r in (0, 1):
        for s in (0, 1):
            yield r, s, slice((2 * r + s) * O, (2 * r + s + 1) * O)


def from_phases(z: np.ndarray, O: int) -> np.ndarray:
    """(N, H+1, W+1, 4*O) window outputs, any strides -> y (N, O, 2H, 2W), an NCHW view of a new
    channels-last array: pixel (2i + r, 2j + s) is channel block 2r + s at position (i + r, j + s)."""
    N, H, W = z.shape[0], z.shape[1] - 1, z.shape[2] - 1
    out = np.empty((N, 2 * H, 2 * W, O), dtype=z.dtype)
    for r, s, block in phase_blocks(O):
        out[:, r::2, s::2] = z[:, r:r + H, s:s + W, block]
    return out.transpose(0, 3, 1, 2)


def to_phases(grad: np.ndarray) -> np.ndarray:
    """The adjoint of ``from_phases``: dL/dy (N, O, 2H, 2W), any layout -> (N, H+1, W+1, 4*O), zero
    where a position's block is not read."""
    N, O, H2, W2 = grad.shape
    H, W = H2 // 2, W2 // 2
    g = grad.transpose(0, 2, 3, 1)  # (N, 2H, 2W, O): a view
    z = np.zeros((N, H + 1, W + 1, 4 * O), dtype=grad.dtype)
    for r, s, block in phase_blocks(O):
        z[:, r:r + H, s:s + W, block] = g[:, r::2, s::2]
    return z


def forward(x: np.ndarray, wp: np.ndarray, b: Optional[np.ndarray]) -> Tuple[np.ndarray, np.ndarray]:
    """y = conv2d(upsample_nearest2d(x, 2), w, b, padding=1), (N, C, H, W) -> (N, O, 2H, 2W), given
    wp = phase_weights(w); also the im2col rows of x's 2x2 windows, which the weight gradient reads."""
    z, rows = strided_conv.conv_forward(x, wp, None if b is None else np.tile(b, 4), 1, 1)  # (N, 4*O, H+1, W+1)
    return from_phases(z.transpose(0, 2, 3, 1), wp.shape[0] // 4), rows


def backward(grad: np.ndarray, wp: np.ndarray, rows: Optional[np.ndarray], x_shape: Tuple[int, ...],
             needs: Tuple[bool, bool, bool]) -> tuple:
    """(dL/dx, dL/dw, dL/db) from dL/dy, for ``forward``; None where ``needs`` says no."""
    O = wp.shape[0] // 4
    g_rows = to_phases(grad).reshape(-1, 4 * O)
    dx = strided_conv.conv_grad_input(g_rows, wp, x_shape, 1, 1) if needs[0] else None
    dw = weight_from_phases(strided_conv.conv_grad_weight(g_rows, rows, wp.shape)) if needs[1] else None
    db = channel_sums(g_rows).reshape(4, O).sum(axis=0) if needs[2] else None
    return dx, dw, db
