"""Differentiable operations: one Function class and one lowercase wrapper each.

``import tinygrad_cv.functional as F`` and call ``F.conv2d``, ``F.relu``, ``F.mse_loss``, ...
Each module groups related ops; read any one of them to see the forward/backward pattern. Modules
whose name says ``fast`` hold the CPU fast paths, switched by ``tinygrad_cv.fast_paths``.
"""
from tinygrad_cv.functional.arith import add, div, matmul, mul, neg, pow, sub
from tinygrad_cv.functional.conv import (avg_pool2d, conv2d, conv2d_relu, conv_transpose2d, max_pool2d,
                                         upsample_nearest2d)
from tinygrad_cv.functional.elementwise import abs, clip, exp, log, maximum, relu, sigmoid, sqrt, tanh
from tinygrad_cv.functional.fourier import fourier_synthesis
from tinygrad_cv.functional.gram import gram_matrix
from tinygrad_cv.functional.loss import binary_cross_entropy, binary_cross_entropy_with_logits, l1_loss, mse_loss
from tinygrad_cv.functional.reduce import log_softmax, max, mean, softmax, sum
from tinygrad_cv.functional.resample import affine_sample, bilinear_sample, resize_bilinear
from tinygrad_cv.functional.shape import concatenate, getitem, pad, permute, reshape, stack, transpose

__all__ = [
    "add", "sub", "mul", "div", "neg", "pow", "matmul",
    "conv2d", "conv2d_relu", "conv_transpose2d", "max_pool2d", "avg_pool2d", "upsample_nearest2d",
    "exp", "log", "sqrt", "abs", "clip", "maximum", "relu", "sigmoid", "tanh",
    "fourier_synthesis", "gram_matrix",
    "mse_loss", "l1_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits",
    "sum", "mean", "max", "softmax", "log_softmax",
    "bilinear_sample", "affine_sample", "resize_bilinear",
    "reshape", "transpose", "permute", "getitem", "pad", "concatenate", "stack",
]
