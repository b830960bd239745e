"""Convolution, pooling and upsampling as differentiable ops.

Each op is a thin pairing of kernels from tinygrad_cv/kernels: the forward kernel above, the
gradient kernels below. The arithmetic (im2col, one matrix product, col2im) lives in kernels/conv.py,
where it can be read and tested without autograd.

Gradients that nobody asked for are not computed: a convolution inside a frozen VGG, differentiated
with respect to the image (style transfer, feature visualisation), skips the weight gradient, which
would cost as much as the forward pass, and does not even keep its input for it.

conv2d and conv2d_relu have a CPU fast path (conv_fast.py), the poolings and the upsampling fast
kernels (kernels/fast/pool.py, upsample.py); each wrapper below says in one line when it is taken, and
``tinygrad_cv.fast_paths(False)`` turns them all off.
"""
from __future__ import annotations

from types import ModuleType
from typing import Any, Optional

from tinygrad_cv.functional import conv_fast, fast_paths
from tinygrad_cv.functional.elementwise import relu
from tinygrad_cv.kernels import conv, pool, upsample
from tinygrad_cv.kernels.fast import pool as fast_pool, upsample as fast_upsample
from tinygrad_cv.kernels.geometry import IntOrPair
from tinygrad_cv.kernels.upsample import Scale
from tinygrad_cv.tensor import Function, Tensor, TensorLike


class Conv2d(Function):
    def forward(self, x: Any, w: Any, b: Any, stride: IntOrPair = 1, padding: IntOrPair = 0,
                dilation: IntOrPair = 1, groups: int = 1) -> Any:
        self.x_shape, self.w, self.geometry = x.shape, w, (stride, padding, dilation, groups)
        self.x = x if self.needs_grad[1] else None  # only the weight gradient reads the input
        return conv.conv2d_forward(x, w, b, *self.geometry)

    def backward(self, grad: Any) -> tuple:
        dx = dw = db = None
        if self.needs_grad[0]:
            dx = conv.conv2d_grad_input(grad, self.w, self.x_shape, *self.geometry)
        if self.needs_grad[1]:
            dw = conv.conv2d_grad_weight(grad, self.x, self.w.shape, *self.geometry)
        if self.needs_grad[2]:
            db = conv.conv2d_grad_bias(grad)
        return dx, dw, db


def conv2d(x: TensorLike, w: TensorLike, b: Optional[TensorLike] = None, stride: IntOrPair = 1,
           padding: IntOrPair = 0, dilation: IntOrPair = 1, groups: int = 1) -> Tensor:
    """2-D cross-correlation, as ``torch.nn.functional.conv2d``.

    y[n, o, i, j] = b[o] + sum_{c,kh,kw} w[o, c, kh, kw] * xpad[n, g*C/G + c, i*SH + kh*DH, j*SW + kw*DW]

    Args:
        x: (N, C, H, W) input. w: (O, C/G, KH, KW) filters. b: (O,) bias or None.
        stride, padding, dilation: int or (height, width) pair; padding adds zeros on both sides.
        groups: G; output o belongs to group g = o // (O/G) (G = C: depthwise, one filter per channel).
    Returns:
        (N, O, OH, OW) with OH = (H + 2*ph - DH*(KH-1) - 1) // SH + 1, likewise OW.
    Gradients: dx is the transposed convolution of dy with w, dw = sum over pixels of dy * window,
    db = sum of dy over N, OH, OW (kernels/conv.py derives each as one matrix product).
    Raises ValueError naming the shapes for a non-4-D input, a channel mismatch, a kernel larger
    than the padded input, or a stride, dilation or kernel size below 1.
    """
    if fast_paths.enabled() and conv_fast.conv3x3_fits(x, w, b, stride, padding, dilation):
        return conv_fast.Conv3x3Fast.apply(x, w, b, relu=False)
    if fast_paths.enabled() and (fast := conv_fast.grouped_fast_op(x, w, b, stride, padding, dilation, groups)):
        return fast.apply(x, w, b, stride=stride, padding=padding, dilation=dilation)
    return Conv2d.apply(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)


def conv2d_relu(x: TensorLike, w: TensorLike, b: Optional[TensorLike] = None, stride: IntOrPair = 1,
                padding: IntOrPair = 0, dilation: IntOrPair = 1) -> Tensor:
    """``relu(conv2d(x, w, b, ...))``. The fast path computes both as one op, which keeps only the
    ReLU's output (its sign is the mask the backward pass needs). Arguments and shapes as ``conv2d``."""
    if fast_paths.enabled() and conv_fast.conv3x3_fits(x, w, b, stride, padding, dilation):
        return conv_fast.Conv3x3Fast.apply(x, w, b, relu=True)
    return relu(conv2d(x, w, b, stride, padding, dilation))


class ConvTranspose2d(Function):
    def forward(self, x: Any, w: Any, b: Any, stride: IntOrPair = 1, padding: IntOrPair = 0,
                output_padding: IntOrPair = 0, dilation: IntOrPair = 1) -> Any:
        self.x, self.w, self.geometry = x, w, (stride, padding, dilation)
        return conv.conv_transpose2d_forward(x, w, b, stride, padding, output_padding, dilation)

    def backward(self, grad: Any) -> tuple:
        # y = A^T x, where A is conv2d with weight w (mapping y's space to x's). So dx = A dy, and
        # since <dy, A_w^T x> = <A_w dy, x>, dw is conv2d's weight gradient with input dy and
        # output gradient x.
        dx = dw = db = None
        if self.needs_grad[0]:
            dx = conv.conv2d_forward(grad, self.w, None, *self.geometry)
        if self.needs_grad[1]:
            dw = conv.conv2d_grad_weight(self.x, grad, self.w.shape, *self.geometry)
        if self.needs_grad[2]:
            db = conv.conv2d_grad_bias(grad)
        return dx, dw, db


def conv_transpose2d(x: TensorLike, w: TensorLike, b: Optional[TensorLike] = None, stride: IntOrPair = 1,
                     padding: IntOrPair = 0, output_padding: IntOrPair = 0, dilation: IntOrPair = 1) -> Tensor:
    """Transposed convolution, as ``torch.nn.functional.conv_transpose2d`` (without groups).

    The adjoint of ``conv2d`` with the same weight, stride, padding and dilation: each input pixel
    adds a copy of the kernel, scaled by its value, onto the output. Used to upsample in decoders.

    Args:
        x: (N, C_in, H, W). w: (C_in, C_out, KH, KW), PyTorch's layout. b: (C_out,) or None.
        output_padding: extra rows/columns on the bottom/right, < stride: several output sizes map
            to the same input size under conv2d, and this picks one.
    Returns:
        (N, C_out, H_out, W_out), H_out = (H-1)*SH - 2*ph + DH*(KH-1) + output_padding + 1.
    """
    return ConvTranspose2d.apply(x, w, b, stride=stride, padding=padding, output_padding=output_padding,
                                 dilation=dilation)


class MaxPool2d(Function):
    def forward(self, x: Any, kernel_size: IntOrPair, stride: Optional[IntOrPair], padding: IntOrPair,
                kernels: ModuleType) -> Any:
        self.x_shape, self.window, self.kernels = x.shape, (kernel_size, stride, padding), kernels
        y, self.argmax = kernels.max_pool2d_forward(x, kernel_size, stride, padding)
        return y

    def backward(self, grad: Any) -> Any:
        return self.kernels.max_pool2d_backward(grad, self.argmax, self.x_shape, *self.window)


def max_pool2d(x: TensorLike, kernel_size: IntOrPair, stride: Optional[IntOrPair] = None,
               padding: IntOrPair = 0) -> Tensor:
    """Maximum over each kernel_size window, as ``torch.nn.functional.max_pool2d``.

    stride defaults to kernel_size; padding (at most half the kernel) is -inf, so it never wins.
    Gradient: each output's gradient goes to the one input that held the window's maximum. On ties
    the first in row-major window order (top-most, then left-most) gets it, deterministically.
    """
    kernels = fast_pool if fast_paths.enabled() and conv_fast.pool_fits(x) else pool
    return MaxPool2d.apply(x, kernel_size=kernel_size, stride=stride, padding=padding, kernels=kernels)


class AvgPool2d(Function):
    def forward(self, x: Any, kernel_size: IntOrPair, stride: Optional[IntOrPair], padding: IntOrPair,
                kernels: ModuleType) -> Any:
        self.x_shape, self.window, self.kernels = x.shape, (kernel_size, stride, padding), kernels
        return kernels.avg_pool2d_forward(x, kernel_size, stride, padding)

    def backward(self, grad: Any) -> Any:
        return self.kernels.avg_pool2d_backward(grad, self.x_shape, *self.window)


def avg_pool2d(x: TensorLike, kernel_size: IntOrPair, stride: Optional[IntOrPair] = None,
               padding: IntOrPair = 0) -> Tensor:
    """Mean over each kernel_size window, as ``torch.nn.functional.avg_pool2d``.

    stride defaults to kernel_size; zero padding counts in the mean (count_include_pad=True).
    Gradient: every input of a window receives 1/(KH*KW) of that window's gradient.
    """
    kernels = fast_pool if fast_paths.enabled() and conv_fast.pool_fits(x) else pool
    return AvgPool2d.apply(x, kernel_size=kernel_size, stride=stride, padding=padding, kernels=kernels)


class UpsampleNearest2d(Function):
    def forward(self, x: Any, scale_factor: Scale, kernels: ModuleType) -> Any:
        self.scale_factor, self.kernels = scale_factor, kernels
        return kernels.upsample_nearest2d_forward(x, scale_factor)

    def backward(self, grad: Any) -> Any:
        return self.kernels.upsample_nearest2d_backward(grad, self.scale_factor)


def upsample_nearest2d(x: TensorLike, scale_factor: Scale) -> Tensor:
    """Repeat every pixel into a scale_factor x scale_factor block (a whole number, or a pair):
    (N, C, H, W) -> (N, C, H*sh, W*sw). Gradient: the sum of the gradient over each block."""
    kernels = fast_upsample if fast_paths.enabled() and conv_fast.pool_fits(x) else upsample
    return UpsampleNearest2d.apply(x, scale_factor=scale_factor, kernels=kernels)
