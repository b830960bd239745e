"""3x3 convolutions with stride 1 and padding 1 as shifted matrix products (VGG's fast path).

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
rows* of X: the convolution is nine matrix products added into one output. The three taps of one
kernel row read three neighbouring rows of X; copied side by side (rows q - 1, q, q + 1 make one row
of 3*C numbers), they make one product with K = 3*C instead of three thin ones, so the code does
three products per block (``conv3x3_padded``), and one with K = 9*C for an RGB image.

The output Y has the same padded shape as the input, (N, H+2, W+2, O), ready for the next layer. Rows
q on the border (i or j equal to 0 or H+1, W+1) get meaningless sums (their taps wrap into the
neighbouring row or image); they are set back to zero at the end, so Y is zero-padded too.

Backward, the same idea twice (``conv3x3_padded_grad_input``, ``conv3x3_padded_grad_weight``):
- dL/dX[r] = sum_t dL/dY[r - s_t] @ T_t^T: the same shifted products, with the taps reversed
  (s -> -s is (kh, kw) -> (2 - kh, 2 - kw)) and each tap transposed (C <-> O). That is the
  "convolution with the flipped kernel" of kernels/conv.py, on the padded grid.
- dL/dT_t = sum_q X[q + s_t]^T dL/dY[q]: one product per tap with the long pixel axis inside.

Memory and speed, which is what this is for:
- No 9x buffer: the extra memory is the output (and a zero border of one pixel), and per core the
  side-by-side copy of one block's rows.
- The output is computed in blocks of rows small enough to stay in the CPU cache while its
  products are added into it (``BLOCK_BYTES``), then bias and ReLU are applied to the block while it
  is still there. The blocks are independent, so each core computes its own (parallel.py).
- A whole network of these layers never changes layout (channels_last.py).

With many channels, winograd.py computes the same convolution on the same padded layout with 4x
(2.25x on small images) fewer multiplications (``winograd.tiling_for`` says when).
``kernels/conv.py`` (im2col + one GEMM) stays the reference: tests/test_fast_conv.py checks both
files against it.
"""
from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np

from tinygrad_cv.kernels.fast.channels_last import channel_sums, interior, padded_buffer_of, zero_border
from tinygrad_cv.kernels.fast.parallel import parallel_map, split, workers
from tinygrad_cv.kernels.fast.scratch import work_buffer

BLOCK_BYTES = 2**20  # output rows computed together: small enough to stay in cache (PERFORMANCE.md)
MIN_BLOCK_ROWS = 64  # but never so few rows that calls are mostly overhead
FEW_CHANNELS = 8  # up to this many input channels (an RGB image): one GEMM over all nine taps side by side


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


# ---- weights as matrices ----------------------------------------------------------------------------------
def weight_rows(w: Any) -> Any:
    """(O, C, 3, 3) weights -> (3, 3*C, O): kernel row kh as one matrix, row kw*C + c holding
    w[:, c, kh, kw] (the three taps of the row stacked, in the order their pixels lie in X)."""
    O, C = w.shape[:2]
    return np.ascontiguousarray(w.transpose(2, 3, 1, 0).reshape(3, 3 * C, O))


def gradient_kernel(w: Any) -> Any:
    """(O, C, 3, 3) -> (C, O, 3, 3), the adjoint convolution's kernel: each filter flipped in both
    directions, the channels swapped. Convolving dL/dy with it gives dL/dx (winograd.py's kernel
    transforms it too)."""
    return w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)


def flipped_weight_rows(w: Any) -> Any:
    """``weight_rows`` of ``gradient_kernel(w)``, (3, 3*O, C)."""
    return weight_rows(gradient_kernel(w))


def weight_from_taps(tap_grads: Any) -> Any:
    """(9, O, C), tap t = 3*kh + kw the matrix w[:, :, kh, kw] -> (O, C, 3, 3)."""
    _, O, C = tap_grads.shape
    return np.ascontiguousarray(tap_grads.transpose(1, 2, 0)).reshape(O, C, 3, 3)


def tap_offsets(W: int) -> list:
    """Row offset s = (kh - 1)*(W+2) + (kw - 1) of each tap t = 3*kh + kw on the padded grid."""
    return [(kh - 1) * (W + 2) + (kw - 1) for kh in range(3) for kw in range(3)]


# ---- the kernels -------------------------------------------------------------------------------------------
def conv3x3_padded(xpad: Any, w_rows: Any, bias: Optional[Any] = None, relu: bool = False) -> Any:
    """The 3x3 stride-1 convolution of a zero-padded channels-last batch, as three GEMMs per block.

    Args:
        xpad: (N, H+2, W+2, C) input with a zero border (``as_padded`` makes one).
        w_rows: (3, 3*C, O) from ``weight_rows(w)`` (or ``flipped_weight_rows``: the adjoint).
        bias: (O,) or None. relu: apply max(., 0) to the result (fused, while it is in cache).
    Returns:
        (N, H+2, W+2, O) output with a zero border; its ``interior`` is the NCHW result.

    The three taps of kernel row kh read three consecutive rows of X, X[q + s - 1 .. q + s + 1] with
    s = (kh - 1)*(W+2): 3*C consecutive numbers. Each block of output rows first copies, for every row
    of X it reads, that row and its two neighbours side by side into a (rows, 3*C) buffer; then the
    convolution is three products with K = 3*C, one per kernel row, at row offsets 0, W+2 and 2*(W+2)
    of the buffer. Nine products with K = C would read X in place, but BLAS runs thin products
    slowly and each of the nine results must be added into the output (PERFORMANCE.md). With few
    input channels (an RGB image) the three kernel rows are gathered side by side too: one product
    with K = 9*C.
    """
    N, Hp, Wp, C = xpad.shape
    O = w_rows.shape[2]
    flat = np.ascontiguousarray(xpad).reshape(-1)
    ypad = np.empty((N, Hp, Wp, O), dtype=xpad.dtype)
    Y = ypad.reshape(-1, O)  # (N*(H+2)*(W+2), O), a view
    nine = C <= FEW_CHANNELS

    def pixel_triples(first_row: int, rows: int) -> Any:  # (rows, 3*C): rows q - 1, q, q + 1 of X, side by side
        return np.lib.stride_tricks.as_strided(flat[(first_row - 1) * C:], (rows, 3 * C), (C * flat.itemsize, flat.itemsize))

    def output_block(block: range) -> None:  # output rows [q0, q1): gather, three products (or one), bias, ReLU
        q0, q1 = block.start, block.stop
        out = Y[q0:q1]
        if nine:
            gathered = work_buffer("conv3x3.gathered", (q1 - q0, 3, 3 * C), xpad.dtype)
            for kh in range(3):
                gathered[:, kh] = pixel_triples(q0 + (kh - 1) * Wp, q1 - q0)
            np.matmul(gathered.reshape(q1 - q0, 9 * C), w_rows.reshape(9 * C, O), out=out)
        else:  # X rows q0 - (W+2) .. q1 + (W+2) - 1 as triples, this thread's buffer (no fresh pages)
            gathered = work_buffer("conv3x3.gathered", (q1 - q0 + 2 * Wp, 3 * C), xpad.dtype)
            gathered[...] = pixel_triples(q0 - Wp, q1 - q0 + 2 * Wp)
            product = work_buffer("conv3x3.product", (q1 - q0, O), xpad.dtype)
            for kh in range(3):
                np.matmul(gathered[kh * Wp:kh * Wp + q1 - q0], w_rows[kh], out=out if kh == 0 else product)
                if kh > 0:
                    out += product
        if bias is not None:
            out += bias
        if relu:
            np.maximum(out, 0, out=out)

    # Output rows whose nine taps all stay inside X: from the first to the last interior pixel.
    first, last = Wp + 1, Y.shape[0] - Wp - 1
    rows_per_block = max(MIN_BLOCK_ROWS, BLOCK_BYTES // (max(C, O) * xpad.itemsize))
    parallel_map(output_block, split(first, last, rows_per_block, at_least=2 * workers()))
    return zero_border(ypad)  # including the rows before ``first`` and after ``last``, never written


def conv3x3_padded_grad_input(gpad: Any, w_rows_flipped: Any) -> Any:
    """dL/dx for y = conv3x3_padded(x, weight_rows(w)), given dL/dy as a zero-bordered (N, H+2, W+2, O)
    buffer and ``flipped_weight_rows(w)``. Returns (N, H+2, W+2, C), zero-bordered: the gradient for
    the interior of x."""
    return conv3x3_padded(gpad, w_rows_flipped)


def conv3x3_padded_grad_weight(xpad: Any, gpad: Any) -> Any:
    """dL/dw per tap, shape (9, O, C), for y = conv3x3_padded(xpad, weight_rows(w)); ``weight_from_taps``
    makes it OIHW.

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


# ---- few input channels: the input gradient ---------------------------------------------------------------
def conv3x3_padded_grad_input_gathered(gpad: Any, w_rows: Any) -> Any:
    """dL/dx for y = conv3x3_padded(x, w_rows) with few input channels (C <= FEW_CHANNELS: an image),
    from the zero-bordered dL/dy (N, H+2, W+2, O). The adjoint convolution would make thin products
    (C outputs); this makes one wide one instead.

    One product P = w_mat @ G^T, (9*C, pixels), with w_mat = w_rows as a (9*C, O) matrix (row
    t*C + c for tap t = 3*kh + kw): row t*C + c of P is what each pixel of dL/dy sends
    to channel c of the pixel at offset s_t from it. Then dL/dx[c, r] = sum_t P[t*C + c, r - s_t], nine
    shifted additions of whole rows of P. Returns the (N, C, H, W) gradient (a view of a (C, N, H+2,
    W+2) array: channels first, as an image's gradient is usually wanted).
    """
    N, Hp, Wp, O = gpad.shape
    C = w_rows.shape[1] // 3
    w_mat = w_rows.reshape(9 * C, O)
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
