"""Pure array kernels: no Tensor, no autograd, just arrays in and arrays out.

Reading order: im2col.py (windows -> columns) -> conv.py (a convolution as one matrix product, and
its three gradients) -> conv3x3.py (VGG's 3x3 convolutions as nine shifted matrix products, without
im2col: the fast path) -> pool.py -> upsample.py -> relu.py. cuda.py holds the CUDA versions of im2col,
col2im, max pooling and ReLU; dispatch.py is the one place that picks NumPy or CUDA code from the
array type of the input. The differentiable ops in tinygrad_cv/functional call these functions.
"""
from tinygrad_cv.kernels.conv import (
    check_conv2d_arrays,
    conv2d_forward,
    conv2d_grad_bias,
    conv2d_grad_input,
    conv2d_grad_input_col2im,
    conv2d_grad_input_flipped,
    conv2d_grad_weight,
    conv2d_grad_weight_im2col,
    conv_transpose2d_forward,
    conv_transpose2d_output_shape,
)
from tinygrad_cv.kernels import conv3x3
from tinygrad_cv.kernels.im2col import Window, col2im, im2col
from tinygrad_cv.kernels.pool import avg_pool2d_backward, avg_pool2d_forward, max_pool2d_backward, max_pool2d_forward
from tinygrad_cv.kernels.relu import relu_backward, relu_forward
from tinygrad_cv.kernels.upsample import upsample_nearest2d_backward, upsample_nearest2d_forward

__all__ = [
    "Window", "im2col", "col2im", "conv3x3",
    "check_conv2d_arrays", "conv2d_forward", "conv2d_grad_input", "conv2d_grad_input_col2im", "conv2d_grad_input_flipped",
    "conv2d_grad_weight", "conv2d_grad_weight_im2col", "conv2d_grad_bias", "conv_transpose2d_forward", "conv_transpose2d_output_shape",
    "max_pool2d_forward", "max_pool2d_backward", "avg_pool2d_forward", "avg_pool2d_backward",
    "upsample_nearest2d_forward", "upsample_nearest2d_backward",
    "relu_forward", "relu_backward",
]
