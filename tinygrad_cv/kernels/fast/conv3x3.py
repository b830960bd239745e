"""3x3 convolutions with stride 1 and padding 1 as nine shifted matrix products (VGG's fast path).

Every convolution in VGG has a 3x3 kernel, stride 1 and padding 1. For that one geometry there is a
way to skip im2col's copy, which is 9x the size of the input (600 MB for a 64-channel 512x512 image).

Keep each image zero-padded and channels-last, and read it as a matrix with one row per pixel:

    xpad: (N, H+2, W+2, C) with a border of zeros;  X = xpad.reshape(-1, C)   # (N*(H+2)*(W+2), C)

Number the pixels of the padded grid row by row, so pixel (i, j) of image n is row
q = (n*(H+2) + i)*(W+2) + j of X. Moving one pixel right adds 1 to q, one pixel down adds W+2. The
convolution's tap (kh, kw) looks at the pixel (kh - 1, kw - 1) away, that is, at row q + s(kh, kw) with
s = (kh - 1)*(W+2) + (kw - 1). So, with ``T[kh, kw] = w[:, :, kh, kw].T`` (C, O):

    Y[q] = b + sum over the nine taps of  X[q + s(kh, kw)] @ T[kh, kw]

and for all output rows q in a range [q0, q1) at once, X[q0 + s : q1 + s] is a *contiguous block of
rows* of X: a matrix that BLAS reads where it lies. The whole convolution is nine matrix products
added into one output, with no copy of the input at all (``conv3x3_padded``).

The output Y has the same padded shape as the input, (N, H+2, W+2, O), ready for the next layer. Rows
q on the border (i or j equal to 0 or H+1, W+1) get meaningless sums (their taps wrap into the
neighbouring row or image); they are set back to zero at the end, so Y is zero-padded too.

Backward, the same idea twice (``conv3x3_padded_grad_input``, ``conv3x3_padded_grad_weight``):
- dL/dX[r] = sum_t dL/dY[r - s_t] @ T_t^T: the same nine shifted products, with the taps reversed
  (s -> -s is (kh, kw) -> (2 - kh, 2 - kw)) and each tap transposed (C <-> O). That is the
  "convolution with the flipped kernel" of kernels/conv.py, on the padded grid.
- dL/dT_t = sum_q X[q + s_t]^T dL/dY[q]: one product per tap with the long pixel axis inside.

Memory and speed, which is what this is for:
- No 9x buffer: the extra memory is the output (and a zero border of one pixel).
- The output is computed in blocks of rows small enough to stay in the CPU cache while its nine
  products are added into it (``BLOCK_BYTES``), then bias and ReLU are applied to the block while it
  is still there. The blocks are independent, so each core computes its own (parallel.py).
- A whole network of these layers never changes layout (channels_last.py).

With many channels, winograd.py computes the same convolution on the same padded layout with 2.25x
fewer multiplications. ``kernels/conv.py`` (im2col + one GEMM) stays the reference:
tests/test_fast_conv.py checks both files against it.
"""
from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np

from tinygrad_cv.kernels.fast import thin_conv
from tinygrad_cv.kernels.fast.channels_last import channel_sums, interior, padded_buffer_of, zero_border
from tinygrad_cv.kernels.fast.parallel import parallel_map, split, workers
from tinygrad_cv.kernels.fast.scratch import work_buffer

BLOCK_BYTES = 2**20  # output rows computed together: small enough to stay in cache (PERFORMANCE.md)
MIN_BLOCK_ROWS = 64  # but never so few rows that calls are mostly overhead
FEW_CHANNELS = 8  # up to this many input channels (an RGB image): one GEMM over the gathered taps


def supports(x: Any, w: Any, b: Any, stride: Any, padding: Any, dilation: Any) -> bool:
    """Whether these arrays and settings are a convolution this module computes: NumPy arrays, all
    float32 or all float64 (b may be None), a 3x3 kernel, stride 1, padding 1, dilation 1."""
    arrays = [a for a in (x, w, b) if a is not None]
    return (all(isinstance(a, np.ndarray) and a.dtype == x.dtype for a in arrays)
            and x.dtype in (np.float32, np.float64) and x.ndim == 4 and w.ndim == 4
            and w.shape[1:] == (x.shape[1], 3, 3) and (b is None or b.shape == (w.shape[0],))
            and all(_as_pair(v) == (1, 1) for v in (stride, padding, dilation)))


def _as_pair(value: Any) -> Tuple[int, ...]:
    return (value, value) if isinstance(value, (int, np.integer)) else tuple(value)


# ---- weights as taps ------------------------------------------------------------------------------------
def weight_per_tap(w: Any) -> Any:
    """(O, C, 3, 3) weights -> (9, O, C): tap t = 3*kh + kw is the matrix w[:, :, kh, kw].

    One contiguous (O, C) matrix per tap, so that BLAS can read it (or its transpose) in place.
    """
    O, C = w.shape[:2]
    return np.ascontiguousarray(w.reshape(O, C, 9).transpose(2, 0, 1))  # (9, O, C)


def weight_from_taps(tap_grads: Any) -> Any:
    """The inverse of ``weight_per_tap``: (9, O, C) -> (O, C, 3, 3)."""
    _, O, C = tap_grads.shape
    return np.ascontiguousarray(tap_grads.transpose(1, 2, 0)).reshape(O, C, 3, 3)


def tap_offsets(W: int) -> list:
    """Row offset s = (kh - 1)*(W+2) + (kw - 1) of each tap t = 3*kh + kw on the padded grid."""
    return [(kh - 1) * (W + 2) + (kw - 1) for kh in range(3) for kw in range(3)]


# ---- the kernels -------------------------------------------------------------------------------------------
def conv3x3_padded(xpad: Any, tap_mats: Any, bias: Optional[Any] = None, relu: bool = False,
                   transpose_taps: bool = False) -> Any:
    """The 3x3 stride-1 convolution of a zero-padded channels-last batch, as nine shifted GEMMs.

    Args:
        xpad: (N, H+2, W+2, C) input with a zero border (``as_padded`` makes one).
        tap_mats: (9, O, C) from ``weight_per_tap(w)``; tap t multiplies the pixel at row offset
            ``tap_offsets(W)[t]``.
        bias: (O,) or None. relu: apply max(., 0) to the result (fused, while it is in cache).
        transpose_taps: use tap 8 - t transposed, (C, O), for tap t: the adjoint convolution,
            which maps O channels back to C (see ``conv3x3_padded_grad_input``).
    Returns:
        (N, H+2, W+2, O) output (O = C when transpose_taps) with a zero border; its ``interior`` is the
        NCHW result.
    """
    N, Hp, Wp, C = xpad.shape
    out_channels = tap_mats.shape[2] if transpose_taps else tap_mats.shape[1]
    X = xpad.reshape(-1, C)  # (N*(H+2)*(W+2), C), a view
    ypad = np.empty((N, Hp, Wp, out_channels), dtype=xpad.dtype)
    Y = ypad.reshape(-1, out_channels)  # (N*(H+2)*(W+2), O), a view
    offsets = tap_offsets(Wp - 2)

    def output_block(rows: range) -> None:  # rows [q0, q1): nine products added, then bias and ReLU
        q0, q1 = rows.start, rows.stop
        out = Y[q0:q1]  # the products go through this thread's buffer: a fresh one would page-fault
        product = work_buffer("conv3x3.product", (q1 - q0, out_channels), xpad.dtype)
        for t, s in enumerate(offsets):
            tap = tap_mats[8 - t] if transpose_taps else tap_mats[t].T  # (C, O) either way
            np.matmul(X[q0 + s:q1 + s], tap, out=out if t == 0 else product)  # (rows, C) @ (C, O)
            if t > 0:
                out += product
        if bias is not None:
            out += bias
        if relu:
            np.maximum(out, 0, out=out)

    # Output rows whose nine taps all stay inside X: from the first to the last interior pixel.
    first, last = Wp + 1, X.shape[0] - Wp - 1
    rows_per_block = max(MIN_BLOCK_ROWS, BLOCK_BYTES // (out_channels * xpad.itemsize))
    parallel_map(output_block, split(first, last, rows_per_block, at_least=2 * workers()))
    return zero_border(ypad)  # including the rows before ``first`` and after ``last``, never written


def conv3x3_padded_grad_input(gpad: Any, tap_mats: Any) -> Any:
    """dL/dx for y = conv3x3_padded(x, tap_mats), given dL/dy as a zero-bordered (N, H+2, W+2, O)
    buffer. Returns (N, H+2, W+2, C), zero-bordered: the gradient for the interior of x."""
    if gpad.shape[3] <= thin_conv.MAX_CHANNELS:  # few output channels: one product (thin_conv.py)
        return thin_conv.grad_input_few_outputs(gpad, tap_mats, tap_offsets(gpad.shape[2] - 2))
    return conv3x3_padded(gpad, tap_mats, transpose_taps=True)


def conv3x3_padded_grad_weight(xpad: Any, gpad: Any) -> Any:
    """dL/dtaps, shape (9, O, C), for y = conv3x3_padded(xpad, taps); ``taps_to_weight`` makes it OIHW.

    gpad: dL/dy as a zero-bordered (N, H+2, W+2, O) buffer (its zero border keeps the meaningless
    border sums of the forward pass out of the gradient).
    """
    N, Hp, Wp, C = xpad.shape
    O = gpad.shape[3]
    X = xpad.reshape(-1, C)  # (N*(H+2)*(W+2), C)
    G = gpad.reshape(-1, O)  # (N*(H+2)*(W+2), O)
    first, last = Wp + 1, X.shape[0] - Wp - 1
    grads = np.empty((9, O, C), dtype=xpad.dtype)
    offsets = tap_offsets(Wp - 2)

    def grad_of_tap(t: int) -> None:
        s = offsets[t]
        np.matmul(G[first:last].T, X[first + s:last + s], out=grads[t])  # (O, rows) @ (rows, C)

    parallel_map(grad_of_tap, range(9))
    return grads


def conv3x3_padded_grad_bias(gpad: Any) -> Any:
    """dL/db: the sum of dL/dy over every pixel (the border is zero). Shape (O,)."""
    return channel_sums(gpad.reshape(-1, gpad.shape[3]))


# ---- few input channels: the nine taps side by side, one GEMM ---------------------------------------------
# With C = 3 (VGG's first layer) each of the nine products above has K = 3: BLAS runs them at a
# fraction of its speed. Gathering the nine taps' pixels side by side, row q of a (rows, 9*C) matrix
# holds X[q + s_t] for t = 0..8, makes it one product with K = 9*C (im2col, for a block of rows at a
# time). The three taps of a kernel row kh are three consecutive pixels, 3*C consecutive numbers of
# X, so the gathering is three strided copies.
def weight_matrix(w: Any) -> Any:
    """(O, C, 3, 3) weights -> (9*C, O): row t*C + c holds w[:, c, kh, kw] for tap t = 3*kh + kw."""
    O, C = w.shape[:2]
    return np.ascontiguousarray(w.transpose(2, 3, 1, 0).reshape(9 * C, O))


def conv3x3_padded_gathered(xpad: Any, w_mat: Any, bias: Optional[Any] = None, relu: bool = False) -> Any:
    """``conv3x3_padded`` for few input channels: (N, H+2, W+2, C) -> (N, H+2, W+2, O), zero-bordered,
    with ``w_mat`` = ``weight_matrix(w)``."""
    N, Hp, Wp, C = xpad.shape
    O = w_mat.shape[1]
    flat = np.ascontiguousarray(xpad).reshape(-1)
    ypad = np.empty((N, Hp, Wp, O), dtype=xpad.dtype)
    Y = ypad.reshape(-1, O)

    def output_block(rows: range) -> None:
        q0, q1 = rows.start, rows.stop
        gathered = work_buffer("conv3x3.gathered", (q1 - q0, 3, 3 * C), xpad.dtype)
        for kh in range(3):  # taps (kh, 0..2): pixels q + (kh - 1)*(W+2) - 1 + (0, 1, 2)
            start = (q0 + (kh - 1) * Wp - 1) * C
            gathered[:, kh] = np.lib.stride_tricks.as_strided(flat[start:], (q1 - q0, 3 * C), (C * flat.itemsize, flat.itemsize))
        out = Y[q0:q1]
        np.matmul(gathered.reshape(q1 - q0, 9 * C), w_mat, out=out)
        if bias is not None:
            out += bias
        if relu:
            np.maximum(out, 0, out=out)

    first, last = Wp + 1, Y.shape[0] - Wp - 1
    rows_per_block = max(MIN_BLOCK_ROWS, BLOCK_BYTES // ((O + 9 * C) * xpad.itemsize))
    parallel_map(output_block, split(first, last, rows_per_block, at_least=2 * workers()))
    return zero_border(ypad)


def conv3x3_padded_grad_input_gathered(gpad: Any, w_mat: Any) -> Any:
    """dL/dx for y = conv3x3_padded_gathered(x, w_mat), from the zero-bordered dL/dy (N, H+2, W+2, O).

    One product P = w_mat @ G^T, (9*C, pixels): row t*C + c of P is what each pixel of dL/dy sends
    to channel c of the pixel at offset s_t from it. Then dL/dx[c, r] = sum_t P[t*C + c, r - s_t], nine
    shifted additions of whole rows of P. Returns the (N, C, H, W) gradient (a view of a (C, N, H+2,
    W+2) array: channels first, as an image's gradient is usually wanted).
    """
    N, Hp, Wp, O = gpad.shape
    C = w_mat.shape[0] // 9
    G = gpad.reshape(-1, O)
    pixels = G.shape[0]
    P = np.empty((9 * C, pixels), dtype=gpad.dtype)
    parallel_map(lambda r: np.matmul(w_mat, G[r.start:r.stop].T, out=P[:, r.start:r.stop]),
                 split(0, pixels, max(MIN_BLOCK_ROWS, BLOCK_BYTES // ((O + 9 * C) * gpad.itemsize)), at_least=2 * workers()))
    dx = np.zeros((C, pixels), dtype=gpad.dtype)
    offsets = tap_offsets(Wp - 2)

    def input_block(rows: range) -> None:  # the pixels in rows, all channels
        r0, r1 = rows.start, rows.stop
        for t, s in enumerate(offsets):
            dx[:, r0:r1] += P[t * C:(t + 1) * C, r0 - s:r1 - s]

    parallel_map(input_block, split(Wp + 1, pixels - Wp - 1, BLOCK_BYTES // (C * gpad.itemsize), at_least=2 * workers()))
    return dx.reshape(C, N, Hp, Wp)[:, :, 1:-1, 1:-1].transpose(1, 0, 2, 3)


def relu_mask_grad(grad: Any, ypad: Any, out: Optional[Any] = None) -> Any:
    """dL/d(pre-ReLU) as a zero-bordered (N, H+2, W+2, O) buffer: grad where y > 0, else 0.

    grad: (N, O, H, W) gradient of the post-ReLU output y, in any memory layout; ypad: y's padded
    buffer; out: where to write the result (a new array if None). One pass, which is also where grad
    enters the padded layout if it is not in it already.
    """
    gpad = np.empty_like(ypad) if out is None else out
    grad_buffer = padded_buffer_of(grad)
    if grad_buffer is not None:  # both padded: whole contiguous buffers (zero borders stay zero)
        grad, y, out = (a.reshape(-1, a.shape[3]) for a in (grad_buffer, ypad, gpad))  # (pixels, O)
        axis = 0
    else:  # any layout: the NCHW views, cut along H
        y, out = interior(ypad), interior(gpad)
        axis = 2

    def mask_rows(r: range) -> None:
        part = (slice(None),) * axis + (slice(r.start, r.stop),)
        np.multiply(grad[part], y[part] > 0, out=out[part])

    row_bytes = out.nbytes // out.shape[axis]
    parallel_map(mask_rows, split(0, out.shape[axis], BLOCK_BYTES // row_bytes, at_least=2 * workers()))
    return zero_border(gpad)
