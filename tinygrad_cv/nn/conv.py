"""Convolution, pooling and upsampling layers: Conv2d, ConvTranspose2d, MaxPool2d, AvgPool2d, Upsample,
UpsampleConv2d.

Shapes, names and default initialisation follow PyTorch, so a state dict converted from PyTorch loads
as is and what a student learns here transfers.
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np

from tinygrad_cv import functional as F
from tinygrad_cv.functional import fast_paths, upsample_conv_fast
from tinygrad_cv.kernels.geometry import IntOrPair, pair
from tinygrad_cv.kernels.upsample import Scale, scale_pair
from tinygrad_cv.nn import init
from tinygrad_cv.nn.module import Module, Parameter
from tinygrad_cv.tensor import Tensor

# PyTorch initialises conv weights with kaiming_uniform_(a=sqrt(5)): gain sqrt(2 / (1 + a^2)) =
# 1/sqrt(3), which makes the bound 1/sqrt(fan_in), the same as its default bias bound.
_TORCH_DEFAULT_GAIN = 1 / math.sqrt(3)


class Conv2d(Module):
    """2-D convolution layer: weight (out_channels, in_channels / groups, KH, KW), bias (out_channels,).

    ``groups = in_channels = out_channels`` is a depthwise convolution (one filter per channel).
    Initialised like PyTorch's default: weight and bias from U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
    fan_in = in_channels * KH * KW; reproducible through ``rng`` or nn.init.manual_seed.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntOrPair, stride: IntOrPair = 1,
                 padding: IntOrPair = 0, dilation: IntOrPair = 1, bias: bool = True,
                 rng: Optional[np.random.Generator] = None, groups: int = 1) -> None:
        if groups < 1 or in_channels % groups or out_channels % groups:
            raise ValueError(f"Conv2d: groups={groups} must divide in_channels={in_channels} and "
                             f"out_channels={out_channels}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.stride, self.padding, self.dilation = stride, padding, dilation
        shape = (out_channels, in_channels // groups) + self.kernel_size
        self.weight = Parameter(init.kaiming_uniform(shape, gain=_TORCH_DEFAULT_GAIN, rng=rng))
        fan_in = init.fans(shape)[0]
        self.bias = Parameter(init.uniform_bias(fan_in, out_channels, rng=rng)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, dilation={self.dilation}, groups={self.groups}, bias={self.bias is not None}")


class ConvTranspose2d(Module):
    """Transposed convolution layer: weight (in_channels, out_channels, KH, KW), PyTorch's layout.

    Initialised like PyTorch's default, whose fan_in for this layer is out_channels * KH * KW (it
    reads the weight's second axis).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntOrPair, stride: IntOrPair = 1,
                 padding: IntOrPair = 0, output_padding: IntOrPair = 0, dilation: IntOrPair = 1,
                 bias: bool = True, rng: Optional[np.random.Generator] = None) -> None:
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.stride, self.padding, self.output_padding, self.dilation = stride, padding, output_padding, dilation
        shape = (in_channels, out_channels) + self.kernel_size
        self.weight = Parameter(init.kaiming_uniform(shape, gain=_TORCH_DEFAULT_GAIN, rng=rng))
        fan_in = init.fans(shape)[0]
        self.bias = Parameter(init.uniform_bias(fan_in, out_channels, rng=rng)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        return F.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding, self.output_padding,
                                  self.dilation)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, output_padding={self.output_padding}, bias={self.bias is not None}")


class MaxPool2d(Module):
    """Max pooling; stride defaults to kernel_size. Ties: the first element in window order wins."""

    def __init__(self, kernel_size: IntOrPair, stride: Optional[IntOrPair] = None, padding: IntOrPair = 0) -> None:
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x: Tensor) -> Tensor:
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool2d(Module):
    """Average pooling; stride defaults to kernel_size; zero padding counts in the mean."""

    def __init__(self, kernel_size: IntOrPair, stride: Optional[IntOrPair] = None, padding: IntOrPair = 0) -> None:
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class Upsample(Module):
    """Nearest-neighbour upsampling by a whole-number factor (the only mode implemented)."""

    def __init__(self, scale_factor: Scale = 2, mode: str = "nearest") -> None:
        if mode != "nearest":
            raise ValueError(f"Upsample: only mode='nearest' is implemented, got mode={mode!r}")
        self.scale_factor, self.mode = scale_pair(scale_factor), mode

    def forward(self, x: Tensor) -> Tensor:
        return F.upsample_nearest2d(x, self.scale_factor)

    def extra_repr(self) -> str:
        return f"scale_factor={self.scale_factor}, mode={self.mode!r}"


class UpsampleConv2d(Conv2d):
    """A decoder's step: nearest upsampling by ``scale_factor``, then a ``kernel_size`` convolution with
    stride 1 and "same" padding (kernel_size // 2). The same numbers, parameters and initialisation as
    ``Upsample(scale_factor)`` followed by ``Conv2d(in_channels, out_channels, kernel_size,
    padding=kernel_size // 2)``, in one layer, so that the fast path can compute the pair on the small
    image (functional/upsample_conv_fast.py: for a 3x3 kernel and a scale of 2, each of the four
    output phases is a convolution of the small image, and nothing of the upsampled size is made).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, scale_factor: Scale = 2,
                 bias: bool = True, rng: Optional[np.random.Generator] = None) -> None:
        if kernel_size % 2 != 1:
            raise ValueError(f"UpsampleConv2d: kernel_size must be odd (for the same padding), got {kernel_size}")
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=bias, rng=rng)
        self.scale_factor = scale_pair(scale_factor)

    def forward(self, x: Tensor) -> Tensor:
        if fast_paths.enabled() and upsample_conv_fast.fits(x, self.weight, self.bias, self.scale_factor):
            return upsample_conv_fast.UpsampleConv3x3Fast.apply(x, self.weight, self.bias)
        return F.conv2d(F.upsample_nearest2d(x, self.scale_factor), self.weight, self.bias, padding=self.padding)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"scale_factor={self.scale_factor}, bias={self.bias is not None}")
