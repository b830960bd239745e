"""Instance normalisation as one fused op: the fast path of ``tinygrad_cv.nn.norm.instance_norm``.

The reference path composes mean, subtraction, square, mean, square root and division (six ops, each
keeping its own (N, C, H, W) intermediate for the backward pass). This op keeps only the output and
the per-plane inverse standard deviation, and applies the derivative in closed form. It works on
NumPy and CuPy arrays alike (``xp``), so it is also what runs on a GPU.
"""
from __future__ import annotations

from typing import Any

from tinygrad_cv import backend
from tinygrad_cv.tensor import Function

PLANE = (2, 3)  # the H, W axes of an (N, C, H, W) array: one statistic per sample and channel


class InstanceNormFast(Function):
    def forward(self, x: Any, eps: float) -> Any:
        xp = backend.get_array_module(x)
        centred = x - x.mean(axis=PLANE, keepdims=True)
        variance = xp.square(centred).mean(axis=PLANE, keepdims=True)
        self.inv_std = (1.0 / xp.sqrt(variance + eps)).astype(x.dtype)  # (N, C, 1, 1)
        centred *= self.inv_std
        self.y = centred  # (N, C, H, W), the normalised output
        return self.y

    def backward(self, grad: Any) -> Any:
        # y = (x - mu) s with s = 1/sqrt(var + eps): dx = s (g - mean(g) - y mean(g y)), means per plane.
        mean_g = grad.mean(axis=PLANE, keepdims=True)
        mean_gy = (grad * self.y).mean(axis=PLANE, keepdims=True)
        return self.inv_std * (grad - mean_g - self.y * mean_gy)
