"""Max and average pooling that keep the fast convolutions' layout, with max pooling on every core.

The same tap-by-tap loops as the reference (kernels/pool.py), with two differences:
- the output is allocated in the input's layout (``empty_like_layout``): between two fast 3x3
  convolutions that is the padded channels-last layout, so the next convolution needs no copy;
- max pooling cuts its output rows into about 1 MB slices, one thread per core (parallel.py). The
  backward pass does the same when windows do not overlap (stride >= kernel), and when they tile the
  input (stride = kernel, as in VGG) it writes each pixel's gradient once instead of zeroing the
  whole gradient first and adding into it.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np

from tinygrad_cv.kernels.fast.channels_last import empty_like_layout
from tinygrad_cv.kernels.fast.parallel import parallel_map, split, workers
from tinygrad_cv.kernels.geometry import IntOrPair, Window, index_dtype, window_views
from tinygrad_cv.kernels.im2col import pad2d
from tinygrad_cv.kernels.pool import pool_window


def max_pool2d_forward(x: np.ndarray, kernel_size: IntOrPair, stride: Optional[IntOrPair] = None,
                       padding: IntOrPair = 0) -> Tuple[np.ndarray, np.ndarray]:
    """As ``kernels.pool.max_pool2d_forward``, in x's layout and on every core."""
    win, out_hw = pool_window(x.shape, kernel_size, stride, padding, "max_pool2d")
    tap_views = window_views(pad2d(x, win.padding, value=float("-inf")), win, out_hw)
    y = empty_like_layout(x, tap_views[0].shape)
    argmax = np.zeros_like(y, dtype=index_dtype(win))  # same memory order as y

    def pool_rows(r: slice) -> None:  # output rows r: independent of the other rows
        out, best = y[:, :, r], argmax[:, :, r]
        out[...] = tap_views[0][:, :, r]
        for t, view in enumerate(tap_views[1:], start=1):
            better = view[:, :, r] > out  # strict: on a tie the earlier tap keeps the max
            # best = t where better. t exceeds every index stored so far, so one maximum does it
            # (faster than a masked assignment in NumPy).
            np.maximum(best, better * best.dtype.type(t), out=best)
            np.maximum(out, view[:, :, r], out=out)

    parallel_map(pool_rows, row_slices(y))
    return y, argmax


def max_pool2d_backward(grad: np.ndarray, argmax: np.ndarray, x_shape: Sequence[int], kernel_size: IntOrPair,
                        stride: Optional[IntOrPair] = None, padding: IntOrPair = 0) -> np.ndarray:
    """As ``kernels.pool.max_pool2d_backward``, in grad's layout and on every core."""
    win, out_hw = pool_window(x_shape, kernel_size, stride, padding, "max_pool2d")
    tiled = win.stride == win.kernel  # the windows tile the input: each pixel is in one window at most
    dxpad = _padded_empty(grad, x_shape, win)
    if tiled:  # the windows write every pixel they cover; only the rest (an odd size's last row) needs zeros
        dxpad[:, :, out_hw[0] * win.kernel[0]:] = 0
        dxpad[:, :, :, out_hw[1] * win.kernel[1]:] = 0
    else:
        dxpad[...] = 0
    views = window_views(dxpad, win, out_hw)

    def scatter_rows(r: slice) -> None:  # output rows r; their windows overlap no other rows'
        for t, view in enumerate(views):
            if tiled:  # every pixel of a window is written once: no zeros first, no adding
                np.multiply(grad[:, :, r], argmax[:, :, r] == t, out=view[:, :, r])
            else:
                view[:, :, r] += grad[:, :, r] * (argmax[:, :, r] == t)

    parallel_map(scatter_rows, row_slices(grad) if win.stride[0] >= win.kernel[0] else [slice(None)])
    return _crop(dxpad, win)


def avg_pool2d_forward(x: np.ndarray, kernel_size: IntOrPair, stride: Optional[IntOrPair] = None,
                       padding: IntOrPair = 0) -> np.ndarray:
    """As ``kernels.pool.avg_pool2d_forward``, in x's layout."""
    win, out_hw = pool_window(x.shape, kernel_size, stride, padding, "avg_pool2d")
    tap_views = window_views(pad2d(x, win.padding), win, out_hw)
    y = empty_like_layout(x, tap_views[0].shape)
    y[...] = tap_views[0]
    for view in tap_views[1:]:
        y += view
    y *= 1.0 / len(tap_views)
    return y


def avg_pool2d_backward(grad: np.ndarray, x_shape: Sequence[int], kernel_size: IntOrPair,
                        stride: Optional[IntOrPair] = None, padding: IntOrPair = 0) -> np.ndarray:
    """As ``kernels.pool.avg_pool2d_backward``, in grad's layout."""
    win, out_hw = pool_window(x_shape, kernel_size, stride, padding, "avg_pool2d")
    dxpad = _padded_empty(grad, x_shape, win)
    dxpad[...] = 0
    share = grad * (1.0 / (win.kernel[0] * win.kernel[1]))
    for view in window_views(dxpad, win, out_hw):
        view += share
    return _crop(dxpad, win)


def row_slices(y: np.ndarray) -> list:
    """Output rows (axis 2 of (N, C, OH, OW)) in slices of about 1 MB, at least two per core."""
    if y.size == 0:
        return [slice(None)]
    row_bytes = y.nbytes // y.shape[2]
    return [slice(r.start, r.stop) for r in split(0, y.shape[2], max(1, 2**20 // row_bytes), at_least=2 * workers())]


def _padded_empty(like: np.ndarray, x_shape: Sequence[int], win: Window) -> np.ndarray:
    """An uninitialised array of the padded input's shape in the layout of ``like``."""
    N, C, H, W = x_shape
    ph, pw = win.padding
    return empty_like_layout(like, (N, C, H + 2 * ph, W + 2 * pw))


def _crop(xpad: np.ndarray, win: Window) -> np.ndarray:
    ph, pw = win.padding
    return xpad[:, :, ph:xpad.shape[2] - ph, pw:xpad.shape[3] - pw]
