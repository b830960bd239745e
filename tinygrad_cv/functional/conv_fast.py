"""The CPU fast path of the 3x3 convolution, as a Function of its own.

Read functional/conv.py first: these ops compute the same numbers (up to float32 rounding), and the
wrappers there take them when ``fast_paths`` is on and the inputs fit.

``Conv3x3Fast``: a 3x3 convolution with stride 1 and padding 1 on NumPy arrays (every layer of VGG).
It computes in the zero-padded channels-last layout of kernels/fast/channels_last.py, either as
row-offset GEMMs (kernels/fast/conv3x3.py: three per block of rows, or with few input channels, an
image, one over all nine taps), or with many channels by Winograd F(4x4, 3x3), or F(2x2, 3x3) on
small images (kernels/fast/winograd.py), with the ReLU fused when asked; the forward pass and the
gradient with respect to the input may take different kernels (``conv3x3_paths``). Frozen weights
are rearranged for the kernels once and kept while they stay unchanged (kernels/fast/weight_cache.py).
Its output is an NCHW view of the padded buffer, which the next such layer (and the fast pooling
kernels between them) reads without a copy.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Tuple, Type

import numpy as np

from tinygrad_cv.functional.depthwise_fast import DepthwiseConv2dFast
from tinygrad_cv.functional.pointwise_fast import PointwiseConv2dFast
from tinygrad_cv.functional.strided_conv_fast import StridedConv2dFast
from tinygrad_cv.kernels.fast import conv3x3, depthwise, pointwise, strided_conv, winograd
from tinygrad_cv.kernels.fast.channels_last import as_padded, interior
from tinygrad_cv.kernels.fast.scratch import work_buffer
from tinygrad_cv.kernels.fast.weight_cache import PreparedWeights
from tinygrad_cv.kernels.geometry import IntOrPair
from tinygrad_cv.tensor import Function, Tensor, TensorLike


def _array(a: Optional[TensorLike]) -> Any:
    return a.data if isinstance(a, Tensor) else a


def conv3x3_fits(x: TensorLike, w: TensorLike, b: Optional[TensorLike], stride: IntOrPair, padding: IntOrPair,
                 dilation: IntOrPair) -> bool:
    """Whether ``Conv3x3Fast`` computes this convolution (see ``kernels.fast.conv3x3.supports``)."""
    return conv3x3.supports(_array(x), _array(w), _array(b), stride, padding, dilation)


def grouped_fast_op(x: TensorLike, w: TensorLike, b: Optional[TensorLike], stride: IntOrPair,
                    padding: IntOrPair, dilation: IntOrPair, groups: int) -> Optional[Type[Function]]:
    """The fast Function for a depthwise (groups = channels), a 1x1 or a small strided convolution, or None.

    Depthwise: functional/depthwise_fast.py (kernels/fast/depthwise.py); 1x1 with stride 1 and no
    padding: functional/pointwise_fast.py (kernels/fast/pointwise.py). EfficientNet is made of both.
    """
    arrays = (_array(x), _array(w), _array(b), stride, padding, dilation, groups)
    if depthwise.supports(*arrays):
        return DepthwiseConv2dFast
    if pointwise.supports(*arrays):
        return PointwiseConv2dFast
    if strided_conv.supports(*arrays):  # small strided layers: im2col channels-last (strided_conv.py)
        return StridedConv2dFast
    return None


def pool_fits(x: TensorLike) -> bool:
    """Whether the fast pooling kernels (kernels/fast/pool.py) take this input: a 4-D float NumPy array."""
    x = _array(x)
    return isinstance(x, np.ndarray) and x.ndim == 4 and x.dtype.kind == "f"


# How each kernel wants its weights: for the forward pass, and for dL/dx (the kernel flipped and
# channels swapped: conv3x3.py's row matrices of the flipped taps, or Winograd's transform of it).
_forward_weights = {
    "gathered": conv3x3.weight_rows, "rows": conv3x3.weight_rows,
    "winograd2x2": lambda w: winograd.filter_transform(w, winograd.F2x2),
    "winograd4x4": lambda w: winograd.filter_transform(w, winograd.F4x4),
}
_gradient_weights = {
    "gathered": conv3x3.weight_rows, "rows": conv3x3.flipped_weight_rows,
    "winograd2x2": lambda w: winograd.filter_transform(conv3x3.gradient_kernel(w), winograd.F2x2),
    "winograd4x4": lambda w: winograd.filter_transform(conv3x3.gradient_kernel(w), winograd.F4x4),
}
# Kept while a weight array is unchanged, by (forward kernel, gradient kernel).
_prepared: Dict[Tuple[str, str], PreparedWeights] = {}


def conv3x3_paths(N: int, C: int, O: int, H: int, W: int) -> Tuple[str, str]:
    """Which kernels compute a 3x3 convolution of C input and O output channels on N images of H x W,
    and its gradient with respect to the input."""
    if C <= conv3x3.FEW_CHANNELS:
        return "gathered", "gathered"  # an image: one GEMM over the nine taps side by side

    def kernel(tiling: Optional[winograd.Tiling]) -> str:
        return "rows" if tiling is None else f"winograd{tiling.m}x{tiling.m}"

    return kernel(winograd.tiling_for(N, C, O, H, W)), kernel(winograd.tiling_for(N, O, C, H, W, forward=False))


def prepared_weights(paths: Tuple[str, str]) -> PreparedWeights:
    """The weights as the two kernels of ``paths`` want them: (forward, gradient with respect to x)."""
    if paths not in _prepared:
        _prepared[paths] = PreparedWeights(lambda w: (_forward_weights[paths[0]](w), _gradient_weights[paths[1]](w)))
    return _prepared[paths]


class Conv3x3Fast(Function):
    def forward(self, x: Any, w: Any, b: Any, relu: bool) -> Any:
        xpad = as_padded(x)  # (N, H+2, W+2, C); no copy when x came out of another such convolution
        self.relu, self.w_shape = relu, w.shape
        self.xpad = xpad if self.needs_grad[1] else None  # only the weight gradient reads it
        self.paths = conv3x3_paths(x.shape[0], w.shape[1], w.shape[0], x.shape[2], x.shape[3])
        prepare = prepared_weights(self.paths)
        # Weights being trained change at every step: prepare them afresh, not kept.
        self.weights = prepare.prepare(w) if self.needs_grad[1] else prepare(w)
        if self.paths[0].startswith("winograd"):
            ypad = winograd.winograd_conv3x3_padded(xpad, self.weights[0], b, relu=relu)
        else:
            ypad = conv3x3.conv3x3_padded(xpad, self.weights[0], b, relu=relu)
        self.ypad = ypad if relu else None  # the ReLU's mask
        return interior(ypad)  # (N, O, H, W), a view of the channels-last buffer

    def backward(self, grad: Any) -> tuple:
        if self.relu:  # (N, H+2, W+2, O), read only inside this method: a work buffer, no fresh pages
            gpad = conv3x3.relu_mask_grad(grad, self.ypad, out=work_buffer("Conv3x3Fast.gpad", self.ypad.shape, self.ypad.dtype))
        else:
            gpad = as_padded(grad)
        dx = dw = db = None
        if self.needs_grad[0] and self.paths[1] == "gathered":
            dx = conv3x3.conv3x3_padded_grad_input_gathered(gpad, self.weights[1])
        elif self.needs_grad[0] and self.paths[1].startswith("winograd"):
            dx = interior(winograd.winograd_conv3x3_padded(gpad, self.weights[1]))  # the flipped matrices
        elif self.needs_grad[0]:
            dx = interior(conv3x3.conv3x3_padded_grad_input(gpad, self.weights[1]))
        if self.needs_grad[1]:
            dw = conv3x3.weight_from_taps(conv3x3.conv3x3_padded_grad_weight(self.xpad, gpad))
        if self.needs_grad[2]:
            db = conv3x3.conv3x3_padded_grad_bias(gpad)
        return dx, dw, db
