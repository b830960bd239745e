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
  is still there. The blocks are independent, so each core computes its own (kernels/parallel.py).
- A whole network of these layers never changes layout: ``interior(ypad)`` is an NCHW *view* of the
  padded buffer, and ``as_padded`` recognises such a view and hands back its buffer without a copy.

On layers with 64 channels or more, kernels/winograd.py computes the same convolution on the same
padded layout with 2.25x fewer multiplications. ``kernels/conv.py`` (im2col + one GEMM) stays the
reference: tests/test_fast_conv.py checks both files against it.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple

import numpy as np

from tinygrad_cv import backend
from tinygrad_cv.kernels.parallel import parallel_map, split, workers

# Rows of the output computed together: nine products are added into such a block, so it should
# stay in the CPU's caches meanwhile (measured on a 2-core AVX-512 machine: 1 MB blocks were best).
BLOCK_BYTES = 2**20
MIN_BLOCK_ROWS = 64  # but never so few rows that calls are mostly overhead


def applies(arrays: Sequence[Any], w_shape: Sequence[int], stride: Any, padding: Any, dilation: Any) -> bool:
    """Whether the shifted-GEMM path computes this convolution: NumPy arrays, all float32 or all
    float64 (the input, weight, ... in ``arrays``, None skipped), a 3x3 kernel, stride 1, padding 1,
    dilation 1. Everything else, CuPy arrays included, takes the im2col path of kernels/conv.py."""
    present = [a for a in arrays if a is not None]
    return (all(isinstance(a, np.ndarray) and a.dtype == present[0].dtype for a in present)
            and present[0].dtype in (np.float32, np.float64) and present[0].ndim == 4
            and len(w_shape) == 4 and tuple(w_shape[2:]) == (3, 3) and present[0].shape[1] == w_shape[1]
            and _as_pair(stride) == (1, 1) and _as_pair(padding) == (1, 1) and _as_pair(dilation) == (1, 1))


def _as_pair(value: Any) -> Tuple[int, ...]:
    return (value, value) if isinstance(value, (int, np.integer)) else tuple(value)


# ---- the padded channels-last layout -----------------------------------------------------------------
def interior(xpad: Any) -> Any:
    """(N, H+2, W+2, C) padded buffer -> (N, C, H, W) NCHW view of its inside (no copy)."""
    return xpad[:, 1:-1, 1:-1, :].transpose(0, 3, 1, 2)


def padded_buffer_of(x: Any) -> Optional[Any]:
    """The zero-bordered (N, H+2, W+2, C) buffer whose ``interior`` x is, or None if x is not one."""
    buffer = x.base
    if not (isinstance(buffer, np.ndarray) and buffer.ndim == 4 and buffer.flags.c_contiguous
            and buffer.dtype == x.dtype and x.ndim == 4
            and buffer.shape == (x.shape[0], x.shape[2] + 2, x.shape[3] + 2, x.shape[1])):
        return None
    view = interior(buffer)
    if view.strides != x.strides or _address(view) != _address(x) or not border_is_zero(buffer):
        return None
    return buffer


def as_padded(x: Any) -> Any:
    """The zero-bordered channels-last buffer of an (N, C, H, W) array, shape (N, H+2, W+2, C).

    If x *is* ``interior(buffer)`` of such a buffer (the output of ``conv3x3_padded``, say), that
    buffer is returned: no copy. Otherwise x is copied into a new one (one pass, NCHW -> NHWC).
    """
    buffer = padded_buffer_of(x)
    if buffer is not None:
        return buffer
    N, C, H, W = x.shape
    xpad = np.empty((N, H + 2, W + 2, C), dtype=x.dtype)
    interior(xpad)[...] = x
    return zero_border(xpad)


def empty_like_layout(x: Any, shape: Tuple[int, int, int, int]) -> Any:
    """An uninitialised (N, C, H, W) array of ``shape`` in x's layout: the interior of a new
    zero-bordered channels-last buffer when x is such an interior (so that a pooling layer between
    two convolutions keeps their layout), a plain C-order array otherwise."""
    N, C, H, W = shape
    if isinstance(x, np.ndarray) and padded_buffer_of(x) is not None:
        return interior(zero_border(np.empty((N, H + 2, W + 2, C), dtype=x.dtype)))
    return backend.get_array_module(x).empty(shape, dtype=x.dtype)


def zeros_like_layout(x: Any, shape: Tuple[int, int, int, int]) -> Any:
    """Like ``empty_like_layout``, filled with zeros."""
    out = empty_like_layout(x, shape)
    out[...] = 0
    return out


def pixel_rows(x: Any) -> Any:
    """(N, C, H, W) -> (N, P, C), a view with one row per pixel (for Gram matrices, say).

    When x is the interior of a zero-bordered buffer, the rows are the whole buffer's,
    P = (H+2)*(W+2), border rows of zeros included: they add nothing to a sum of products of rows.
    Otherwise P = H*W (a transposed view of x's memory; BLAS reads it as it is if x is contiguous).
    """
    buffer = padded_buffer_of(x) if isinstance(x, np.ndarray) else None
    if buffer is not None:
        return buffer.reshape(buffer.shape[0], -1, buffer.shape[3])  # (N, (H+2)*(W+2), C)
    N, C, H, W = x.shape
    return x.reshape(N, C, H * W).transpose(0, 2, 1)  # (N, H*W, C)


def from_pixel_rows(rows: Any, shape: Tuple[int, int, int, int]) -> Any:
    """The inverse of ``pixel_rows`` for a new array of rows (N, P, C): an (N, C, H, W) view."""
    N, C, H, W = shape
    if rows.shape[1] == (H + 2) * (W + 2):
        return interior(rows.reshape(N, H + 2, W + 2, C))
    return rows.transpose(0, 2, 1).reshape(N, C, H, W)


def _address(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


def border_is_zero(xpad: Any) -> bool:
    """True when the one-pixel border of an (N, H+2, W+2, C) buffer is all zeros."""
    return not (xpad[:, 0].any() or xpad[:, -1].any() or xpad[:, :, 0].any() or xpad[:, :, -1].any())


def zero_border(xpad: Any) -> Any:
    """Set the one-pixel border of an (N, H+2, W+2, C) buffer to zero, in place; returns it."""
    xpad[:, 0] = 0
    xpad[:, -1] = 0
    xpad[:, :, 0] = 0
    xpad[:, :, -1] = 0
    return xpad


# ---- weights as taps ------------------------------------------------------------------------------------
def taps(w: Any) -> Any:
    """(O, C, 3, 3) weights -> (9, O, C): tap t = 3*kh + kw is the matrix w[:, :, kh, kw].

    One contiguous (O, C) matrix per tap, so that BLAS can read it (or its transpose) in place.
    """
    O, C = w.shape[:2]
    return np.ascontiguousarray(w.reshape(O, C, 9).transpose(2, 0, 1))  # (9, O, C)


def taps_to_weight(tap_grads: Any) -> Any:
    """The inverse of ``taps``: (9, O, C) -> (O, C, 3, 3)."""
    _, O, C = tap_grads.shape
    return np.ascontiguousarray(tap_grads.transpose(1, 2, 0)).reshape(O, C, 3, 3)


def shifts(W: int) -> list:
    """Row offset s = (kh - 1)*(W+2) + (kw - 1) of each tap t = 3*kh + kw on the padded grid."""
    return [(kh - 1) * (W + 2) + (kw - 1) for kh in range(3) for kw in range(3)]


# ---- the kernels -------------------------------------------------------------------------------------------
def conv3x3_padded(xpad: Any, tap_mats: Any, bias: Optional[Any] = None, relu: bool = False,
                   transpose_taps: bool = False) -> Any:
    """The 3x3 stride-1 convolution of a zero-padded channels-last batch, as nine shifted GEMMs.

    Args:
        xpad: (N, H+2, W+2, C) input with a zero border (``as_padded`` makes one).
        tap_mats: (9, O, C) from ``taps(w)``; tap t multiplies the pixel at shift ``shifts(W)[t]``.
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
    offsets = shifts(Wp - 2)

    def block(rows: range) -> None:  # output rows [q0, q1): nine products added, then bias and ReLU
        q0, q1 = rows.start, rows.stop
        out, product = Y[q0:q1], np.empty((q1 - q0, out_channels), dtype=xpad.dtype)
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
    parallel_map(block, split(first, last, rows_per_block, at_least=2 * workers()))
    return zero_border(ypad)  # including the rows before ``first`` and after ``last``, never written


def conv3x3_padded_grad_input(gpad: Any, tap_mats: Any) -> Any:
    """dL/dx for y = conv3x3_padded(x, tap_mats), given dL/dy as a zero-bordered (N, H+2, W+2, O)
    buffer. Returns (N, H+2, W+2, C), zero-bordered: the gradient for the interior of x."""
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
    offsets = shifts(Wp - 2)

    def tap(t: int) -> None:
        s = offsets[t]
        np.matmul(G[first:last].T, X[first + s:last + s], out=grads[t])  # (O, rows) @ (rows, C)

    parallel_map(tap, range(9))
    return grads


def conv3x3_padded_grad_bias(gpad: Any) -> Any:
    """dL/db: the sum of dL/dy over every pixel (the border is zero). Shape (O,)."""
    return gpad.reshape(-1, gpad.shape[3]).sum(axis=0)


def relu_mask_grad(grad: Any, ypad: Any) -> Any:
    """dL/d(pre-ReLU) as a zero-bordered (N, H+2, W+2, O) buffer: grad where y > 0, else 0.

    grad: (N, O, H, W) gradient of the post-ReLU output y, in any memory layout; ypad: y's padded
    buffer. One pass, which is also where grad enters the padded layout if it is not in it already.
    """
    gpad = np.empty_like(ypad)
    grad_buffer = padded_buffer_of(grad)
    if grad_buffer is not None:  # both padded: whole contiguous buffers (zero borders stay zero)
        grad, y, out = (a.reshape(-1, a.shape[3]) for a in (grad_buffer, ypad, gpad))  # (pixels, O)
        axis = 0
    else:  # any layout: the NCHW views, cut along H
        y, out = interior(ypad), interior(gpad)
        axis = 2

    def rows(r: range) -> None:
        part = (slice(None),) * axis + (slice(r.start, r.stop),)
        np.multiply(grad[part], y[part] > 0, out=out[part])

    row_bytes = out.nbytes // out.shape[axis]
    parallel_map(rows, split(0, out.shape[axis], BLOCK_BYTES // row_bytes, at_least=2 * workers()))
    return zero_border(gpad)
