"""The CPU fast path of nearest upsampling by 2 followed by a 3x3 convolution (a decoder's step), as one
Function over kernels/fast/upsample_conv.py: the four output phases as one 2x2 convolution of the small
image. The reference is ``conv2d(upsample_nearest2d(x, 2), w, b, padding=1)`` (functional/conv.py);
``nn.UpsampleConv2d`` picks between the two."""
from __future__ import annotations

from typing import Any, Optional

from tinygrad_cv.kernels.fast import upsample_conv
from tinygrad_cv.tensor import Function, Tensor, TensorLike


def fits(x: TensorLike, w: TensorLike, b: Optional[TensorLike], scale_factor: Any) -> bool:
    """Whether ``UpsampleConv3x3Fast`` computes this layer (see ``kernels.fast.upsample_conv.supports``)."""
    arrays = [a.data if isinstance(a, Tensor) else a for a in (x, w, b)]
    return upsample_conv.supports(*arrays, scale_factor)


class UpsampleConv3x3Fast(Function):
    def forward(self, x: Any, w: Any, b: Any) -> Any:
        self.x_shape = x.shape
        self.wp = upsample_conv.phase_weights(w)  # (4*O, C, 2, 2): the four phases' kernels
        y, rows = upsample_conv.forward(x, self.wp, b)
        self.rows = rows if self.needs_grad[1] else None  # only the weight gradient reads them
        return y

    def backward(self, grad: Any) -> tuple:
        return upsample_conv.backward(grad, self.wp, self.rows, self.x_shape, self.needs_grad)
