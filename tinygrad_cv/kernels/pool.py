"""Max and average pooling on raw arrays, written as loops over the KH*KW kernel taps.

For each tap (kh, kw), ``window_views`` gives one strided view of the padded input holding that tap's
value for every output pixel at once, so a 2x2 pool is four whole-array operations, never a loop over
pixels. The backward passes walk the same views of a zero gradient image and add into them.

Max-pool ties are broken deterministically: the tap that comes first in row-major order of the window
(top-most, then left-most) wins, and only that input receives the gradient. This is what a strict
``>`` while scanning the taps in order gives, and what PyTorch's CPU kernel does. The forward pass
keeps, for every output, the index kh*KW + kw of the winning tap (``argmax``, uint8 when the window
has at most 256 taps); the backward pass routes each output gradient to that tap. A NaN in a window
makes its maximum NaN (``maximum`` propagates it), as in PyTorch.

Max pooling on NumPy arrays is done in slices of output rows, one thread per core
(kernels/parallel.py), and keeps the padded channels-last layout of the fast 3x3 convolutions
(kernels/conv3x3.py) when its input comes in it, so the convolution after it needs no copy.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple

import numpy as np

from tinygrad_cv import backend
from tinygrad_cv.kernels.conv3x3 import empty_like_layout, zeros_like_layout
from tinygrad_cv.kernels.dispatch import gpu_kernels
from tinygrad_cv.kernels.im2col import IntOrPair, Window, pad2d, window_views
from tinygrad_cv.kernels.parallel import parallel_map, split, workers


def pool_window(x_shape: Sequence[int], kernel_size: IntOrPair, stride: Optional[IntOrPair], padding: IntOrPair,
                op: str) -> Tuple[Window, Tuple[int, int]]:
    """The pooling Window (stride defaults to the kernel size, as in PyTorch) and the output (OH, OW).

    ValueError naming the shapes for a non-4-D input, a padding over half the kernel (PyTorch's rule:
    a window must never lie entirely in the padding) or a window larger than the padded input.
    """
    if len(x_shape) != 4:
        raise ValueError(f"{op}: input must be 4-D (N, C, H, W), got shape {tuple(x_shape)}")
    win = Window.of(kernel_size, kernel_size if stride is None else stride, padding)
    if any(2 * p > k for p, k in zip(win.padding, win.kernel)):
        raise ValueError(f"{op}: padding {win.padding} must be at most half the kernel size {win.kernel}")
    return win, win.output_size(x_shape, op)


def max_pool2d_forward(x: Any, kernel_size: IntOrPair, stride: Optional[IntOrPair] = None,
                       padding: IntOrPair = 0) -> Tuple[Any, Any]:
    """Maximum over each window (padding counts as -inf, so it never wins).

    Returns:
        y: (N, C, OH, OW) maxima; argmax: (N, C, OH, OW) index kh*KW + kw of the winning tap
        (the first one in row-major order on ties).
    """
    win, (OH, OW) = pool_window(x.shape, kernel_size, stride, padding, "max_pool2d")
    gpu = gpu_kernels(x)
    if gpu is not None:
        return gpu.max_pool2d_forward(x, win, (OH, OW))
    xp = backend.get_array_module(x)
    taps = window_views(pad2d(x, win.padding, value=float("-inf")), win, (OH, OW))
    y = empty_like_layout(x, taps[0].shape)  # channels-last between two fast 3x3 convolutions
    argmax = xp.zeros_like(y, dtype=index_dtype(win))  # same memory order as y

    def rows(r: slice) -> None:  # output rows r: independent of the other rows
        out, best = y[:, :, r], argmax[:, :, r]
        out[...] = taps[0][:, :, r]
        for t, view in enumerate(taps[1:], start=1):
            better = view[:, :, r] > out  # strict: on a tie the earlier tap keeps the max
            # best = t where better. t exceeds every index stored so far, so one maximum does it
            # (several times faster than a masked assignment in NumPy).
            xp.maximum(best, better * best.dtype.type(t), out=best)
            xp.maximum(out, view[:, :, r], out=out)

    parallel_map(rows, row_slices(y))
    return y, argmax


def max_pool2d_backward(grad: Any, argmax: Any, x_shape: Sequence[int], kernel_size: IntOrPair,
                        stride: Optional[IntOrPair] = None, padding: IntOrPair = 0) -> Any:
    """Send each output's gradient to the input that won its window; shape ``x_shape``.

    Inputs that won several overlapping windows receive the sum; inputs that won none receive 0.
    """
    win, (OH, OW) = pool_window(x_shape, kernel_size, stride, padding, "max_pool2d")
    gpu = gpu_kernels(grad)
    if gpu is not None:
        return gpu.max_pool2d_backward(grad, argmax, tuple(x_shape), win, (OH, OW))
    dx = _zero_padded(grad, x_shape, win)
    views = window_views(dx, win, (OH, OW))

    def rows(r: slice) -> None:  # output rows r; their windows overlap no other rows' (see below)
        for t, view in enumerate(views):
            view[:, :, r] += grad[:, :, r] * (argmax[:, :, r] == t)

    # Output rows can be done in parallel only if their windows do not overlap (stride >= kernel).
    parallel_map(rows, row_slices(grad) if win.stride[0] >= win.kernel[0] else [slice(None)])
    return _crop(dx, win)


def avg_pool2d_forward(x: Any, kernel_size: IntOrPair, stride: Optional[IntOrPair] = None,
                       padding: IntOrPair = 0) -> Any:
    """Mean over each window, padding counted as zeros (PyTorch's count_include_pad=True)."""
    win, (OH, OW) = pool_window(x.shape, kernel_size, stride, padding, "avg_pool2d")
    taps = window_views(pad2d(x, win.padding), win, (OH, OW))
    y = empty_like_layout(x, taps[0].shape)
    y[...] = taps[0]
    for view in taps[1:]:
        y += view
    y *= 1.0 / len(taps)
    return y


def avg_pool2d_backward(grad: Any, x_shape: Sequence[int], kernel_size: IntOrPair,
                        stride: Optional[IntOrPair] = None, padding: IntOrPair = 0) -> Any:
    """Every input of a window receives 1/(KH*KW) of the window's gradient; shape ``x_shape``."""
    win, (OH, OW) = pool_window(x_shape, kernel_size, stride, padding, "avg_pool2d")
    dx = _zero_padded(grad, x_shape, win)
    share = grad * (1.0 / (win.kernel[0] * win.kernel[1]))
    for view in window_views(dx, win, (OH, OW)):
        view += share
    return _crop(dx, win)


def row_slices(y: Any) -> list:
    """Output rows (axis 2 of (N, C, OH, OW)) in slices of about 1 MB, for ``parallel_map``. One
    slice for CuPy arrays: the GPU is parallel already."""
    if not isinstance(y, np.ndarray) or y.size == 0:
        return [slice(None)]
    row_bytes = y.nbytes // y.shape[2]
    return [slice(r.start, r.stop) for r in split(0, y.shape[2], max(1, 2**20 // row_bytes), at_least=2 * workers())]


def index_dtype(win: Window) -> Any:
    """Smallest unsigned integer type that can hold a tap index kh*KW + kw."""
    return np.uint8 if win.kernel[0] * win.kernel[1] <= 256 else np.int32


def _zero_padded(like: Any, x_shape: Sequence[int], win: Window) -> Any:
    """Zeros of the padded input's shape, dtype, device and (see ``empty_like_layout``) layout of ``like``."""
    N, C, H, W = x_shape
    ph, pw = win.padding
    return zeros_like_layout(like, (N, C, H + 2 * ph, W + 2 * pw))


def _crop(xpad: Any, win: Window) -> Any:
    """Remove the padding added around a (N, C, H, W) array."""
    ph, pw = win.padding
    return xpad[:, :, ph:xpad.shape[2] - ph, pw:xpad.shape[3] - pw]
