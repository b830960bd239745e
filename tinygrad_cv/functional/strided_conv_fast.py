"""The CPU fast path of strided convolutions in small layers (an encoder's stride-2 convolutions), as
a Function over kernels/fast/strided_conv.py: im2col in the channels-last layout, kept for the weight
gradient. The reference is ``Conv2d`` in functional/conv.py."""
from __future__ import annotations

from typing import Any

from tinygrad_cv.kernels.fast import strided_conv
from tinygrad_cv.kernels.fast.channels_last import channel_sums
from tinygrad_cv.kernels.geometry import IntOrPair
from tinygrad_cv.tensor import Function


class StridedConv2dFast(Function):
    def forward(self, x: Any, w: Any, b: Any, stride: IntOrPair = 1, padding: IntOrPair = 0, **geometry: Any) -> Any:
        self.x_shape, self.w, self.geometry = x.shape, w, (stride, padding)
        y, rows = strided_conv.conv_forward(x, w, b, stride, padding)
        self.rows = rows if self.needs_grad[1] else None  # only the weight gradient reads them
        return y

    def backward(self, grad: Any) -> tuple:
        g_rows = strided_conv.grad_rows(grad)  # (N*OH*OW, O)
        dx = dw = db = None
        if self.needs_grad[0]:
            dx = strided_conv.conv_grad_input(g_rows, self.w, self.x_shape, *self.geometry)
        if self.needs_grad[1]:
            dw = strided_conv.conv_grad_weight(g_rows, self.rows, self.w.shape)
        if self.needs_grad[2]:
            db = channel_sums(g_rows)
        return dx, dw, db
