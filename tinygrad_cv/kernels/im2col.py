"""im2col and col2im: turn a convolution into one matrix product, and back.

A convolution slides a (C, KH, KW) window over the (zero-padded) image and takes a dot product with
each of the O filters at every stop. im2col copies the window under every output pixel into one
column of a matrix, so that all those dot products become a single matrix product (GEMM) that BLAS
runs near the machine's peak:

    cols = im2col(x, (KH, KW), ...)        # (C*KH*KW, N*OH*OW): one column per output pixel
    y    = w.reshape(O, C*KH*KW) @ cols    # (O, N*OH*OW): one row per filter

col2im is the adjoint of im2col (not its inverse): where windows overlap, a pixel was copied into
several columns, so col2im *adds* every column entry back onto the pixel it came from. That is exactly
what the backward pass of the copy needs.

Column order: row index (c, kh, kw) matches ``w.reshape(O, -1)``; column index (n, oh, ow). The batch
is folded into the columns so that one GEMM serves the whole batch.
"""
from __future__ import annotations

from typing import Any, Sequence, Tuple

from tinygrad_cv import backend
from tinygrad_cv.kernels.dispatch import gpu_kernels
from tinygrad_cv.kernels.geometry import IntOrPair, Window, window_views


def pad2d(x: Any, padding: Tuple[int, int], value: float = 0.0) -> Any:
    """(N, C, H, W) -> (N, C, H + 2ph, W + 2pw) with ``value`` around; x itself when padding is 0."""
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    N, C, H, W = x.shape
    out = backend.get_array_module(x).full((N, C, H + 2 * ph, W + 2 * pw), value, dtype=x.dtype)
    out[:, :, ph:ph + H, pw:pw + W] = x
    return out


def im2col(x: Any, kernel_size: IntOrPair, stride: IntOrPair = 1, padding: IntOrPair = 0,
           dilation: IntOrPair = 1) -> Any:
    """Copy every convolution window of x into a column.

    Args:
        x: (N, C, H, W) images.
        kernel_size, stride, padding, dilation: int or (height, width) pair, as in PyTorch.
    Returns:
        cols: (C*KH*KW, N*OH*OW), same dtype and device as x.
    """
    if x.ndim != 4:
        raise ValueError(f"im2col: input must be 4-D (N, C, H, W), got shape {tuple(x.shape)}")
    win = Window.of(kernel_size, stride, padding, dilation)
    OH, OW = win.output_size(x.shape, "im2col")
    gpu = gpu_kernels(x)
    if gpu is not None:
        return gpu.im2col(x, win, (OH, OW))
    xp = backend.get_array_module(x)
    N, C = x.shape[:2]
    KH, KW = win.kernel
    views = window_views(pad2d(x, win.padding), win, (OH, OW))  # KH*KW views, each (N, C, OH, OW)
    cols = xp.stack([view.transpose(1, 0, 2, 3) for view in views], axis=1)  # (C, KH*KW, N, OH, OW)
    return cols.reshape(C * KH * KW, N * OH * OW)  # a view: stack made the one copy


def col2im(cols: Any, x_shape: Sequence[int], kernel_size: IntOrPair, stride: IntOrPair = 1,
           padding: IntOrPair = 0, dilation: IntOrPair = 1) -> Any:
    """The adjoint of im2col: add each column entry back onto the input pixel it was copied from.

    Args:
        cols: (C*KH*KW, N*OH*OW), as im2col returns.
        x_shape: (N, C, H, W) of the image im2col was applied to.
    Returns:
        (N, C, H, W) array with, at every pixel, the sum of all column entries copied from it.
    """
    win = Window.of(kernel_size, stride, padding, dilation)
    N, C, H, W = x_shape
    OH, OW = win.output_size(x_shape, "col2im")
    KH, KW = win.kernel
    if tuple(cols.shape) != (C * KH * KW, N * OH * OW):
        raise ValueError(f"col2im: cols has shape {tuple(cols.shape)}, expected "
                         f"{(C * KH * KW, N * OH * OW)} for input shape {tuple(x_shape)} and {win}")
    gpu = gpu_kernels(cols)
    if gpu is not None:
        return gpu.col2im(cols, tuple(x_shape), win, (OH, OW))
    ph, pw = win.padding
    cols = cols.reshape(C, KH * KW, N, OH, OW)
    xpad = backend.get_array_module(cols).zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=cols.dtype)
    # One strided add per kernel tap: tap t of every window at once.
    for t, view in enumerate(window_views(xpad, win, (OH, OW))):
        view += cols[:, t].transpose(1, 0, 2, 3)  # (N, C, OH, OW)
    return xpad[:, :, ph:ph + H, pw:pw + W]
