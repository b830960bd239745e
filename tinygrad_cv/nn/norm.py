"""Batch normalisation (Ioffe & Szegedy 2015) and ReLU6, as in PyTorch.

BatchNorm2d normalises each channel by its mean and variance over the batch and the positions, then
scales and shifts it by learned ``weight`` and ``bias``:

    y = (x - mean_c) / sqrt(var_c + eps) * weight_c + bias_c

- training mode: mean and (biased) variance of this batch; the running averages are updated with
  ``running = (1 - momentum) * running + momentum * batch_value``, using the *unbiased* variance,
  exactly as PyTorch does.
- eval mode: the running averages instead, so the layer is a fixed per-channel affine map
  ``y = x * scale_c + shift_c``, which can be folded into the convolution before it.

It is built from differentiable ops (mean, sub, mul, sqrt), so its gradient, including the terms
through the batch statistics in training mode, comes from the engine and is checked by gradcheck.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

from tinygrad_cv import functional as F
from tinygrad_cv.nn.module import Module, Parameter
from tinygrad_cv.tensor import Tensor


class BatchNorm2d(Module):
    """Per-channel normalisation of (N, C, H, W) activations; parameters named as PyTorch's
    (weight, bias, running_mean, running_var; the running ones never require a gradient)."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1) -> None:
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.weight = Parameter(np.ones(num_features, dtype=np.float32))
        self.bias = Parameter(np.zeros(num_features, dtype=np.float32))
        self.running_mean = Parameter(np.zeros(num_features, dtype=np.float32), requires_grad=False)
        self.running_var = Parameter(np.ones(num_features, dtype=np.float32), requires_grad=False)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != self.num_features:
            raise ValueError(f"BatchNorm2d({self.num_features}) expects (N, {self.num_features}, H, W), got {x.shape}")
        if not self.training:
            scale, shift = self.scale_shift()
            return x * scale.reshape(1, -1, 1, 1) + shift.reshape(1, -1, 1, 1)
        mean = x.mean(axis=(0, 2, 3), keepdims=True)  # (1, C, 1, 1)
        centred = x - mean
        var = (centred * centred).mean(axis=(0, 2, 3), keepdims=True)  # biased, as used to normalise
        self._update_running(mean.data.reshape(-1), var.data.reshape(-1), x.size // self.num_features)
        inv_std = (var + self.eps) ** -0.5
        return centred * inv_std * self.weight.reshape(1, -1, 1, 1) + self.bias.reshape(1, -1, 1, 1)

    def scale_shift(self) -> Tuple[Tensor, Tensor]:
        """Eval mode as an affine map: scale = weight / sqrt(running_var + eps), shift = bias -
        running_mean * scale, each of shape (C,) (differentiable in weight and bias)."""
        scale = self.weight * (self.running_var.data + self.eps) ** -0.5
        return scale, self.bias - scale * self.running_mean.data

    def _update_running(self, mean, var, count: int) -> None:
        unbiased = var * (count / max(count - 1, 1))
        m = self.momentum
        self.running_mean.data = ((1 - m) * self.running_mean.data + m * mean).astype(self.running_mean.dtype)
        self.running_var.data = ((1 - m) * self.running_var.data + m * unbiased).astype(self.running_var.dtype)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


class ReLU6(Module):
    """min(max(x, 0), 6), MobileNet's and EfficientNet-Lite's activation (robust to low precision)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.clip(x, 0.0, 6.0)
