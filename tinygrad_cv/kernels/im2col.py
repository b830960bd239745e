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

import functools
from dataclasses import dataclass
from typing import Any, Sequence, Tuple, Union

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from tinygrad_cv import backend
from tinygrad_cv.kernels.dispatch import gpu_kernels

IntOrPair = Union[int, Sequence[int]]


def pair(value: IntOrPair, name: str) -> Tuple[int, int]:
    """3 -> (3, 3); (3, 5) -> (3, 5). Raises ValueError for anything else."""
    if isinstance(value, (int, np.integer)):
        return int(value), int(value)
    values = tuple(value)
    if len(values) != 2 or not all(isinstance(v, (int, np.integer)) for v in values):
        raise ValueError(f"{name} must be an int or a pair of ints (height, width), got {value!r}")
    return int(values[0]), int(values[1])


@dataclass(frozen=True)
class Window:
    """How a window slides over an image, per axis (height, width).

    kernel: window size. stride: step between stops. padding: zeros added on each side first.
    dilation: spacing between the window's taps (1 = adjacent; 2 = every other pixel, a 3x3 kernel
    then spans 5x5). Build one with ``Window.of`` from ints or pairs, as PyTorch accepts them.
    """

    kernel: Tuple[int, int]
    stride: Tuple[int, int] = (1, 1)
    padding: Tuple[int, int] = (0, 0)
    dilation: Tuple[int, int] = (1, 1)

    @classmethod
    def of(cls, kernel_size: IntOrPair, stride: IntOrPair = 1, padding: IntOrPair = 0,
           dilation: IntOrPair = 1) -> "Window":
        """Normalise ints to pairs and check the values (ValueError naming the bad one)."""
        settings = (kernel_size, stride, padding, dilation)
        if all(map(_plain_ints, settings)):  # a network asks for the same few windows at every step
            return _window_of(cls, *settings)  # so each one is built and checked once
        return cls.build(*settings)

    @classmethod
    def build(cls, kernel_size: IntOrPair, stride: IntOrPair = 1, padding: IntOrPair = 0,
              dilation: IntOrPair = 1) -> "Window":
        """``of`` without the cache."""
        win = cls(pair(kernel_size, "kernel_size"), pair(stride, "stride"), pair(padding, "padding"),
                  pair(dilation, "dilation"))
        for name in ("kernel", "stride", "dilation"):
            if min(getattr(win, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(win, name)}")
        if min(win.padding) < 0:
            raise ValueError(f"padding must be >= 0, got {win.padding}")
        return win

    @property
    def span(self) -> Tuple[int, int]:
        """Extent of one window on the padded image: dilation * (kernel - 1) + 1 per axis."""
        return tuple(d * (k - 1) + 1 for k, d in zip(self.kernel, self.dilation))  # type: ignore

    def output_size(self, x_shape: Sequence[int], op: str = "im2col") -> Tuple[int, int]:
        """(OH, OW) for an (N, C, H, W) input; ValueError if the window does not fit."""
        H, W = x_shape[-2], x_shape[-1]
        Hp, Wp = H + 2 * self.padding[0], W + 2 * self.padding[1]
        if self.span[0] > Hp or self.span[1] > Wp:
            raise ValueError(
                f"{op}: kernel {self.kernel} with dilation {self.dilation} spans {self.span}, larger "
                f"than the padded input {(Hp, Wp)} (input shape {tuple(x_shape)}, padding {self.padding})"
            )
        OH = (Hp - self.span[0]) // self.stride[0] + 1
        OW = (Wp - self.span[1]) // self.stride[1] + 1
        return OH, OW


def _plain_ints(value: Any) -> bool:
    """An int or a tuple of ints (not bools or floats, which compare equal to ints in a cache)."""
    return type(value) is int or (type(value) is tuple and all(type(v) is int for v in value))


@functools.lru_cache(maxsize=256)
def _window_of(cls: type, kernel_size: IntOrPair, stride: IntOrPair, padding: IntOrPair,
               dilation: IntOrPair) -> Window:
    return cls.build(kernel_size, stride, padding, dilation)


def pad2d(x: Any, padding: Tuple[int, int], value: float = 0.0) -> Any:
    """(N, C, H, W) -> (N, C, H + 2ph, W + 2pw) with ``value`` around; x itself when padding is 0."""
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    xp = backend.get_array_module(x)
    N, C, H, W = x.shape
    out = xp.full((N, C, H + 2 * ph, W + 2 * pw), value, dtype=x.dtype)
    out[:, :, ph:ph + H, pw:pw + W] = x
    return out


def window_views(xpad: Any, win: Window, out_hw: Tuple[int, int]) -> list:
    """The KH*KW strided views ``xpad[:, :, tap rows, tap cols]``, one per kernel tap (kh, kw).

    View (kh, kw) has shape (N, C, OH, OW) and holds, for every output pixel, the input value under
    tap (kh, kw) of its window. Pooling and col2im loop over these KH*KW views (never over pixels).
    """
    (KH, KW), (SH, SW), (DH, DW) = win.kernel, win.stride, win.dilation
    OH, OW = out_hw
    views = []
    for kh in range(KH):
        for kw in range(KW):
            h0, w0 = kh * DH, kw * DW
            views.append(xpad[:, :, h0:h0 + SH * (OH - 1) + 1:SH, w0:w0 + SW * (OW - 1) + 1:SW])
    return views


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
    N, C = x.shape[:2]
    (KH, KW), (SH, SW), (DH, DW) = win.kernel, win.stride, win.dilation
    xpad = pad2d(x, win.padding)
    # Every window position at stride 1, as a strided view of xpad: no copy yet.
    patches = sliding_window_view(xpad, win.span, axis=(2, 3))  # (N, C, Hp-spanH+1, Wp-spanW+1, spanH, spanW)
    patches = patches[:, :, ::SH, ::SW, ::DH, ::DW]  # (N, C, OH, OW, KH, KW), keep strided stops/taps
    patches = patches.transpose(1, 4, 5, 0, 2, 3)  # (C, KH, KW, N, OH, OW)
    # The one copy: a C-order reshape walks OW innermost, reading input rows contiguously (stride 1).
    return patches.reshape(C * KH * KW, N * OH * OW)


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
    cols = cols.reshape(C, KH, KW, N, OH, OW)
    xpad = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=cols.dtype)
    # One strided add per kernel tap (KH*KW of them): tap (kh, kw) of every window at once.
    for tap, view in enumerate(window_views(xpad, win, (OH, OW))):
        kh, kw = divmod(tap, KW)
        view += cols[:, kh, kw].transpose(1, 0, 2, 3)  # (N, C, OH, OW)
    return xpad[:, :, ph:ph + H, pw:pw + W]
