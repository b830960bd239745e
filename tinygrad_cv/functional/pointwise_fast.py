"""The CPU fast path of the 1x1 convolution, as a Function over kernels/fast/pointwise.py: one
matrix product per image on free reshapes of NCHW, no im2col. The reference is ``Conv2d`` in
functional/conv.py."""
from __future__ import annotations

from typing import Any

from tinygrad_cv.kernels.fast import pointwise
from tinygrad_cv.tensor import Function


class PointwiseConv2dFast(Function):
    def forward(self, x: Any, w: Any, b: Any, **geometry: Any) -> Any:  # stride 1, padding 0: nothing to keep
        self.w = w
        self.x = x if self.needs_grad[1] else None  # only the weight gradient reads the input
        return pointwise.pointwise_forward(x, w, b)

    def backward(self, grad: Any) -> tuple:
        dx = dw = db = None
        if self.needs_grad[0]:
            dx = pointwise.pointwise_grad_input(grad, self.w)
        if self.needs_grad[1]:
            dw = pointwise.pointwise_grad_weight(grad, self.x, self.w.shape)
        if self.needs_grad[2]:
            db = grad.sum(axis=(0, 2, 3))
        return dx, dw, db
