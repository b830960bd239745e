"""The CPU fast path of the depthwise convolution (``conv2d(..., groups=C)`` with one filter per
channel), as a Function over kernels/fast/depthwise.py: tap-by-tap multiply-adds of strided views,
no im2col. The reference is ``Conv2d`` in functional/conv.py with ``groups``."""
from __future__ import annotations

from typing import Any

from tinygrad_cv.kernels.fast import depthwise
from tinygrad_cv.kernels.geometry import IntOrPair
from tinygrad_cv.tensor import Function


class DepthwiseConv2dFast(Function):
    def forward(self, x: Any, w: Any, b: Any, stride: IntOrPair = 1, padding: IntOrPair = 0,
                dilation: IntOrPair = 1) -> Any:
        self.x_shape, self.w, self.geometry = x.shape, w, (stride, padding, dilation)
        self.x = x if self.needs_grad[1] else None  # only the weight gradient reads the input
        return depthwise.depthwise_forward(x, w, b, *self.geometry)

    def backward(self, grad: Any) -> tuple:
        dx = dw = db = None
        if self.needs_grad[0]:
            dx = depthwise.depthwise_grad_input(grad, self.w, self.x_shape, *self.geometry)
        if self.needs_grad[1]:
            dw = depthwise.depthwise_grad_weight(grad, self.x, self.w.shape, *self.geometry)
        if self.needs_grad[2]:
            db = grad.sum(axis=(0, 2, 3))
        return dx, dw, db
