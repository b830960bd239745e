"""Instance normalisation, optionally scaled and shifted per channel, as one fused op: the fast path of
``instance_norm`` and ``conditional_instance_norm`` (``tinygrad_cv/nn/norm.py``).

The reference path composes mean, subtraction, square, mean, square root, division, product and
sum (each keeping its own (N, C, H, W) intermediate for the backward pass). This op keeps only the
normalised input and the per-plane inverse standard deviation, and applies the derivative in closed
form. An input that is a channels-last array seen as NCHW (what the fast convolutions return) is
reduced in its own memory order, and the output keeps that layout. It works on NumPy and CuPy
arrays alike (``xp``), so it is also what runs on a GPU.
"""
from __future__ import annotations

from typing import Any, Optional

from tinygrad_cv import backend
from tinygrad_cv.tensor import Function

PLANE = (2, 3)  # the H, W axes of an (N, C, H, W) array: one statistic per sample and channel


class InstanceNormFast(Function):
    def forward(self, x: Any, scale: Optional[Any], shift: Optional[Any], eps: float) -> Any:
        xp = backend.get_array_module(x)
        channels_last = x.transpose(0, 2, 3, 1).flags.c_contiguous
        a, axes = (x.transpose(0, 2, 3, 1), (1, 2)) if channels_last else (x, PLANE)
        centred = a - a.mean(axis=axes, keepdims=True)
        inv_std = (1.0 / xp.sqrt(xp.square(centred).mean(axis=axes, keepdims=True) + eps)).astype(x.dtype)
        centred *= inv_std  # the normalised input, x_hat
        self.x_hat = centred.transpose(0, 3, 1, 2) if channels_last else centred  # (N, C, H, W)
        self.inv_std = inv_std.transpose(0, 3, 1, 2) if channels_last else inv_std  # (N, C, 1, 1)
        self.scale = scale
        if scale is None:
            return self.x_hat
        out = self.x_hat * scale
        out += shift
        return out

    def backward(self, grad: Any) -> tuple:
        # z = s x_hat + b, x_hat = (x - mu) r with r = 1/sqrt(var + eps); with g_hat = s g:
        # dx = r (g_hat - mean(g_hat) - x_hat mean(g_hat x_hat)); ds = sum(g x_hat); db = sum(g); sums per plane.
        g_hat = grad if self.scale is None else grad * self.scale
        mean_g = g_hat.mean(axis=PLANE, keepdims=True)
        mean_gx = (g_hat * self.x_hat).mean(axis=PLANE, keepdims=True)
        dx = self.inv_std * (g_hat - mean_g - self.x_hat * mean_gx)
        dscale = (grad * self.x_hat).sum(axis=PLANE, keepdims=True) if self.needs_grad[1] else None
        dshift = grad.sum(axis=PLANE, keepdims=True) if self.needs_grad[2] else None
        return dx, dscale, dshift
