"""Nearest upsampling by 2 followed by a 3x3 convolution (stride 1, padding 1), computed on the small image.

A decoder doubles its image and convolves it. The upsampled image is four copies of every pixel:
pixel (2i + r, 2j + s) of it is pixel (i, j) of the small image x, for the phases r, s in {0, 1}.
So a 3x3 tap at row offset kh - 1 from output row 2i + r reads upsampled row 2i + r + kh - 1, which is
small-image row i + (r + kh - 1) // 2:

    phase r = 0:  taps kh = 0, 1, 2 read small rows i - 1, i, i
    phase r = 1:  taps kh = 0, 1, 2 read small rows i,     i, i + 1

(the same for columns). Each output phase is therefore a convolution of the *small* image with a
3x3 kernel whose taps are sums of the original ones (``PHASE_ROWS`` says which original tap lands on which small-image neighbour; a phase leaves one
row and one column of its kernel at zero). The four phases stacked are one 3x3 convolution of x with
4*O output channels, whose output pixel (i, j) holds the 2x2 block (2i + r, 2j + s) of the result.
Backward, the gradient's 2x2 blocks become the 4*O channels of one small image, the convolution's
two gradients give dL/dx directly on the small image (no upsampled gradient to sum) and the
gradient of the phase kernels, whose entries are added back onto the taps that made them.

That convolution of the small image is computed one of two ways (``uses_im2col``):
- im2col of the small image, channels last, and one product (strided_conv.py's kernels, stride 1):
  cols (N*H*W, 9*C) @ (9*C, 4*O). For a decoder's inner layer (32 -> 16 channels at 7x7) this took
  5 ms forward and 6 ms backward against 9 and 8 ms for the other way (median of 20, batch 128);
- conv3x3.py's nine shifted products on the padded buffer, when 4*O is a few channels (a last layer
  to one grey channel): a product with N = 4 runs far below BLAS's speed, and conv3x3.py has a
  one-product input gradient for that case (thin_conv.py). 16 -> 1 at 14x14: 3.5 and 4.9 ms against
  8.0 and 8.1 ms for im2col.
Against upsampling and then convolving, nothing of the upsampled size is made but the output.
"""
from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np

from tinygrad_cv.kernels.fast import conv3x3, strided_conv, thin_conv
from tinygrad_cv.kernels.fast.channels_last import as_padded, interior, zero_border

# PHASE_ROWS[r, kh, t] = 1 when, in output phase r, tap kh reads small-image neighbour t - 1.
PHASE_ROWS = np.array([[[1, 0, 0], [0, 1, 0], [0, 1, 0]],
                       [[0, 1, 0], [0, 1, 0], [0, 0, 1]]], dtype=np.float64)


def supports(x: Any, w: Any, b: Any, scale_factor: Tuple[int, int]) -> bool:
    """NumPy float arrays of one dtype, a (O, C, 3, 3) kernel for x's C channels, and a scale of 2."""
    arrays = [a for a in (x, w, b) if a is not None]
    return (all(isinstance(a, np.ndarray) and a.dtype == x.dtype for a in arrays)
            and x.dtype in (np.float32, np.float64) and x.ndim == 4 and w.ndim == 4
            and w.shape[1:] == (x.shape[1], 3, 3) and (b is None or b.shape == (w.shape[0],))
            and tuple(scale_factor) == (2, 2))


def phase_weights(w: np.ndarray) -> np.ndarray:
    """(O, C, 3, 3) kernel -> (4*O, C, 3, 3): output channel (2r + s)*O + o is phase (r, s) of o, its
    tap (t, u) the sum of the original taps that read small-image neighbour (t - 1, u - 1)."""
    O, C = w.shape[:2]
    rows = PHASE_ROWS.astype(w.dtype)
    by_row = np.tensordot(rows, w, axes=([1], [2]))  # (r, t, O, C, kw): the kernel rows summed
    both = np.tensordot(rows, by_row, axes=([1], [4]))  # (s, u, r, t, O, C): the columns too
    return np.ascontiguousarray(both.transpose(2, 0, 4, 5, 3, 1)).reshape(4 * O, C, 3, 3)


def weight_from_phases(d_phases: np.ndarray) -> np.ndarray:
    """The adjoint of ``phase_weights``: dL/dw (O, C, 3, 3) from dL/dW_phases (4*O, C, 3, 3)."""
    O, C = d_phases.shape[0] // 4, d_phases.shape[1]
    rows = PHASE_ROWS.astype(d_phases.dtype)
    by_row = np.tensordot(d_phases.reshape(2, 2, O, C, 3, 3), rows, axes=([0, 4], [0, 2]))  # (s, O, C, u, kh)
    return np.tensordot(by_row, rows, axes=([0, 3], [0, 2]))  # (O, C, kh, kw)


def uses_im2col(out_channels: int) -> bool:
    """Whether the phases' convolution (4 * out_channels outputs) runs as im2col and one product."""
    return 4 * out_channels > thin_conv.MAX_CHANNELS


def from_phases(y: np.ndarray, O: int) -> np.ndarray:
    """(N, H, W, 4*O) phases of every small pixel, any strides -> (N, O, 2H, 2W), an NCHW view of a
    new channels-last array: channel (2r + s)*O + o of pixel (i, j) goes to pixel (2i + r, 2j + s)."""
    N, H, W = y.shape[:3]
    out = np.empty((N, 2 * H, 2 * W, O), dtype=y.dtype)
    out.reshape(N, H, 2, W, 2, O)[...] = y.reshape(N, H, W, 2, 2, O).transpose(0, 1, 3, 2, 4, 5)
    return out.transpose(0, 3, 1, 2)


def to_phases(grad: np.ndarray, out: np.ndarray) -> np.ndarray:
    """The inverse of ``from_phases``: dL/dy (N, O, 2H, 2W) written into out (N, H, W, 4*O)."""
    N, O, H2, W2 = grad.shape
    blocks = grad.transpose(0, 2, 3, 1).reshape(N, H2 // 2, 2, W2 // 2, 2, O).transpose(0, 1, 3, 2, 4, 5)
    out.reshape(N, H2 // 2, W2 // 2, 2, 2, O)[...] = blocks
    return out


# ---- im2col of the small image, one product -------------------------------------------------------------
def forward_im2col(x: np.ndarray, wp: np.ndarray, b: Optional[np.ndarray]) -> Tuple[np.ndarray, np.ndarray]:
    """y = conv2d(upsample_nearest2d(x, 2), w, b, padding=1), (N, C, H, W) -> (N, O, 2H, 2W), given
    wp = phase_weights(w); also the im2col rows of x, which the weight gradient reads."""
    y, cols = strided_conv.conv_forward(x, wp, None if b is None else np.tile(b, 4), 1, 1)
    return from_phases(y.transpose(0, 2, 3, 1), wp.shape[0] // 4), cols


def backward_im2col(grad: np.ndarray, wp: np.ndarray, cols: Optional[np.ndarray], x_shape: Tuple[int, ...],
                    needs: Tuple[bool, bool, bool]) -> tuple:
    """(dL/dx, dL/dw, dL/db) from dL/dy, for ``forward_im2col``; None where ``needs`` says no."""
    N, O, H2, W2 = grad.shape
    g_rows = to_phases(grad, np.empty((N, H2 // 2, W2 // 2, 4 * O), dtype=grad.dtype)).reshape(-1, 4 * O)
    dx = strided_conv.conv_grad_input(g_rows, wp, x_shape, 1, 1) if needs[0] else None
    dw = weight_from_phases(strided_conv.conv_grad_weight(g_rows, cols, wp.shape)) if needs[1] else None
    db = g_rows.sum(axis=0).reshape(4, O).sum(axis=0) if needs[2] else None
    return dx, dw, db


# ---- nine shifted products on the padded small image (few outputs) --------------------------------------
def forward_padded(x: np.ndarray, wp: np.ndarray, b: Optional[np.ndarray]) -> Tuple[np.ndarray, np.ndarray]:
    """As ``forward_im2col``; also returns x's zero-bordered channels-last buffer (for the weight gradient)."""
    xpad = as_padded(x)  # (N, H+2, W+2, C); no copy when x is the interior of such a buffer
    taps = conv3x3.weight_per_tap(wp)  # (9, 4*O, C)
    ypad = conv3x3.conv3x3_padded(xpad, taps, None if b is None else np.tile(b, 4))  # (N, H+2, W+2, 4*O)
    return from_phases(ypad[:, 1:-1, 1:-1], wp.shape[0] // 4), xpad


def backward_padded(grad: np.ndarray, wp: np.ndarray, xpad: Optional[np.ndarray], needs: Tuple[bool, bool, bool]) -> tuple:
    """(dL/dx, dL/dw, dL/db) from dL/dy, for ``forward_padded``; None where ``needs`` says no."""
    N, O, H2, W2 = grad.shape
    gpad = np.empty((N, H2 // 2 + 2, W2 // 2 + 2, 4 * O), dtype=grad.dtype)
    to_phases(grad, gpad[:, 1:-1, 1:-1])
    zero_border(gpad)
    taps = conv3x3.weight_per_tap(wp)
    dx = interior(conv3x3.conv3x3_padded_grad_input(gpad, taps)) if needs[0] else None
    dw = weight_from_phases(conv3x3.weight_from_taps(conv3x3.conv3x3_padded_grad_weight(xpad, gpad))) if needs[1] else None
    db = conv3x3.conv3x3_padded_grad_bias(gpad).reshape(4, O).sum(axis=0) if needs[2] else None
    return dx, dw, db
