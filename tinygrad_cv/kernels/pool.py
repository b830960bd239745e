"""Max and average pooling on raw arrays, written as loops over the KH*KW kernel taps.

For each tap (kh, kw), ``window_views`` gives one strided view of the padded input holding that tap's
value for every output pixel at once, so a 2x2 pool is four whole-array operations, never a loop over
pixels. The backward passes walk the same views of a zero gradient image and add into them.

Max-pool ties are broken deterministically: the tap that comes first in row-major order of the window
(top-most, then left-most) wins, and only that input receives the gradient. This is what a strict
``>`` while scanning the taps in order gives, and what PyTorch's CPU kernel does. The forward pass
keeps, for every output, the index kh*KW + kw of the winning tap (``argmax``); the backward pass
routes each output gradient to that tap. A NaN in a window makes its maximum NaN, as in PyTorch.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple

from tinygrad_cv import backend
from tinygrad_cv.kernels.dispatch import gpu_kernels
from tinygrad_cv.kernels.geometry import IntOrPair, Window, index_dtype, window_views
from tinygrad_cv.kernels.im2col import pad2d


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
    win, out_hw = pool_window(x.shape, kernel_size, stride, padding, "max_pool2d")
    gpu = gpu_kernels(x)
    if gpu is not None:
        return gpu.max_pool2d_forward(x, win, out_hw)
    xp = backend.get_array_module(x)
    tap_views = window_views(pad2d(x, win.padding, value=float("-inf")), win, out_hw)
    y = tap_views[0].copy()
    argmax = xp.zeros(y.shape, dtype=index_dtype(win))
    for t, view in enumerate(tap_views[1:], start=1):
        argmax[view > y] = t  # strict: on a tie the earlier tap keeps the maximum
        y = xp.maximum(y, view)  # (not where(view > y, ...): maximum also propagates NaN)
    return y, argmax


def max_pool2d_backward(grad: Any, argmax: Any, x_shape: Sequence[int], kernel_size: IntOrPair,
                        stride: Optional[IntOrPair] = None, padding: IntOrPair = 0) -> Any:
    """Send each output's gradient to the input that won its window; shape ``x_shape``.

    Inputs that won several overlapping windows receive the sum; inputs that won none receive 0.
    """
    win, out_hw = pool_window(x_shape, kernel_size, stride, padding, "max_pool2d")
    gpu = gpu_kernels(grad)
    if gpu is not None:
        return gpu.max_pool2d_backward(grad, argmax, tuple(x_shape), win, out_hw)
    dxpad = _zeros_padded(grad, x_shape, win)
    for t, view in enumerate(window_views(dxpad, win, out_hw)):
        view += grad * (argmax == t)
    return _crop(dxpad, win)


def avg_pool2d_forward(x: Any, kernel_size: IntOrPair, stride: Optional[IntOrPair] = None,
                       padding: IntOrPair = 0) -> Any:
    """Mean over each window, padding counted as zeros (PyTorch's count_include_pad=True)."""
    win, out_hw = pool_window(x.shape, kernel_size, stride, padding, "avg_pool2d")
    tap_views = window_views(pad2d(x, win.padding), win, out_hw)
    return sum(tap_views[1:], tap_views[0]) * (1.0 / len(tap_views))


def avg_pool2d_backward(grad: Any, x_shape: Sequence[int], kernel_size: IntOrPair,
                        stride: Optional[IntOrPair] = None, padding: IntOrPair = 0) -> Any:
    """Every input of a window receives 1/(KH*KW) of the window's gradient; shape ``x_shape``."""
    win, out_hw = pool_window(x_shape, kernel_size, stride, padding, "avg_pool2d")
    dxpad = _zeros_padded(grad, x_shape, win)
    share = grad * (1.0 / (win.kernel[0] * win.kernel[1]))
    for view in window_views(dxpad, win, out_hw):
        view += share
    return _crop(dxpad, win)


def _zeros_padded(like: Any, x_shape: Sequence[int], win: Window) -> Any:
    """Zeros of the padded input's shape, with the dtype and device of ``like``."""
    N, C, H, W = x_shape
    ph, pw = win.padding
    return backend.get_array_module(like).zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=like.dtype)


def _crop(xpad: Any, win: Window) -> Any:
    """Remove the padding added around a (N, C, H, W) array."""
    ph, pw = win.padding
    return xpad[:, :, ph:xpad.shape[2] - ph, pw:xpad.shape[3] - pw]
