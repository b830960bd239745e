"""Reflection padding and a bias-free convolution as one op: the fast path of
``tinygrad_cv.nn.norm.reflect_conv2d`` (kernels/fast/reflect_conv.py does the arithmetic).

Forward: the padding is written straight into a channels-last buffer and the convolution reads its
windows in cache-sized bands. Backward: the gradient of the padded input is the same channels-last
convolution, of the gradient with the flipped kernel; the reference kernel (kernels/conv.py) gives
the weight's; and the padding's adjoint folds the border back onto the pixels it mirrors.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_cv.kernels import conv
from tinygrad_cv.kernels.fast.reflect_conv import (conv_grad_input_channels_last, conv_valid_channels_last,
                                                   fold_reflection, reflect_pad_channels_last)
from tinygrad_cv.tensor import Function, Tensor, TensorLike


def fits(x: TensorLike, w: TensorLike) -> bool:
    """NumPy float arrays, (N, C, H, W) and (O, C, K, K) with K odd and K // 2 < H, W."""
    x, w = (a.data if isinstance(a, Tensor) else a for a in (x, w))
    if not (isinstance(x, np.ndarray) and isinstance(w, np.ndarray) and x.dtype.kind == "f" == w.dtype.kind):
        return False
    if x.ndim != 4 or w.ndim != 4 or w.shape[1] != x.shape[1] or w.shape[2] != w.shape[3] or w.shape[2] % 2 == 0:
        return False
    return w.shape[2] // 2 < min(x.shape[2], x.shape[3])


class ReflectConv2dFast(Function):
    def forward(self, x: Any, w: Any, stride: int) -> Any:
        self.pad, self.stride, self.w = w.shape[2] // 2, stride, w
        xpad = reflect_pad_channels_last(x, self.pad)  # (N, H+2p, W+2p, C)
        self.xpad_shape = (x.shape[0], x.shape[1], xpad.shape[1], xpad.shape[2])
        self.xpad = xpad.transpose(0, 3, 1, 2) if self.needs_grad[1] else None  # NCHW view, for dw only
        return conv_valid_channels_last(xpad, w.astype(x.dtype, copy=False), stride)

    def backward(self, grad: Any) -> tuple:
        dx = dw = None
        if self.needs_grad[0]:
            Hp, Wp = self.xpad_shape[2:]
            gpad = conv_grad_input_channels_last(grad, self.w.astype(grad.dtype, copy=False), Hp, Wp, self.stride)
            dx = fold_reflection(gpad, self.pad)  # (N, C, H+2p, W+2p) -> (N, C, H, W)
        if self.needs_grad[1]:
            grad = np.ascontiguousarray(grad)
            dw = conv.conv2d_grad_weight(grad, np.ascontiguousarray(self.xpad), self.w.shape, self.stride, 0, 1)
        return dx, dw
