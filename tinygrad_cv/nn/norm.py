"""Normalisation layers. First instance normalisation, its conditional form, and reflection padding:
the pieces of a feed-forward style-transfer network.

- Instance normalisation (Ulyanov, Vedaldi & Lempitsky 2016, "Instance Normalization: The Missing
  Ingredient for Fast Stylization") normalises every channel of every image on its own, over H and W:
  the contrast of the photo is removed before it is painted, which is what made feed-forward
  stylisation work.
- Conditional instance normalisation (Dumoulin, Shlens & Kudlur 2017, "A Learned Representation for
  Artistic Style", eq. 5) then scales and shifts each channel by a (gamma, beta) pair that belongs to
  one style: one network, N styles, and the styles blend by mixing their pairs.
- Reflection padding mirrors the border instead of adding zeros, so the painted image gets no dark
  frame.

All three are compositions of the differentiable ops in ``tinygrad_cv.functional``, so their
gradients come from the ops they are made of. The normalisations have a fused fast path
(``functional/norm_fast.py``), and reflection padding followed by a convolution has one
(``functional/reflect_conv_fast.py``), each chosen in one line below.

Batch normalisation (Ioffe & Szegedy 2015) and ReLU6, as in PyTorch, are at the end of the file.
"""
from __future__ import annotations

from typing import Any, Tuple, Union

import numpy as np

from tinygrad_cv import functional as F
from tinygrad_cv.functional import fast_paths, norm_fast, reflect_conv_fast
from tinygrad_cv.nn.module import Module, Parameter
from tinygrad_cv.tensor import Tensor, TensorLike

EPS = 1e-5  # as in PyTorch's InstanceNorm2d and in the 26-style network's graph


def _as_tensor(x: TensorLike) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def instance_norm(x: TensorLike, eps: float = EPS) -> Tensor:
    """(x - mean) / sqrt(var + eps), mean and (biased) variance over H, W of each sample and channel.

    Shape: (N, C, H, W) -> (N, C, H, W); every (n, c) plane of the output has mean 0 and variance
    var / (var + eps), i.e. 1 unless the plane is nearly constant.
    Gradient: dx = (g - mean(g) - y mean(g y)) / sqrt(var + eps), means over the plane.
    """
    x = _as_tensor(x)
    if x.ndim != 4:
        raise ValueError(f"instance_norm expects (N, C, H, W), got shape {x.shape}")
    if fast_paths.enabled():
        return norm_fast.InstanceNormFast.apply(x, None, None, eps=eps)
    centred = x - x.mean(axis=(2, 3), keepdims=True)
    variance = (centred * centred).mean(axis=(2, 3), keepdims=True)
    return centred / (variance + eps).sqrt()


def style_affine(style_weights: TensorLike, gamma: TensorLike, beta: TensorLike) -> Tuple[Tensor, Tensor]:
    """The scale and shift of a blend of styles: gamma = w @ Gamma, beta = w @ Beta.

    Args:
        style_weights: (S,) for one blend, or (N, S) for one blend per image.
        gamma, beta: (S, C), one row per style.
    Returns:
        (scale, shift), each (1, C, 1, 1) or (N, C, 1, 1), ready to broadcast over (N, C, H, W).
    """
    w, gamma, beta = _as_tensor(style_weights), _as_tensor(gamma), _as_tensor(beta)
    if gamma.ndim != 2 or beta.shape != gamma.shape:
        raise ValueError(f"gamma and beta must both be (styles, channels), got {gamma.shape} and {beta.shape}")
    if w.ndim not in (1, 2) or w.shape[-1] != gamma.shape[0]:
        raise ValueError(f"style_weights of shape {w.shape} do not match {gamma.shape[0]} styles")
    w = w.reshape(-1, gamma.shape[0])  # (N or 1, S)
    C = gamma.shape[1]
    return (w @ gamma).reshape(-1, C, 1, 1), (w @ beta).reshape(-1, C, 1, 1)


def conditional_instance_norm(x: TensorLike, style_weights: TensorLike, gamma: TensorLike, beta: TensorLike,
                              eps: float = EPS) -> Tensor:
    """Instance normalisation, then each channel scaled and shifted by the chosen style's pair.

    z = gamma_s * (x - mean) / sqrt(var + eps) + beta_s, with gamma_s = w @ Gamma and beta_s = w @ Beta
    (Dumoulin et al. 2017, eq. 5; a one-hot w picks one style, a convex w blends them).

    Shapes: x (N, C, H, W); style_weights (S,) or (N, S); gamma, beta (S, C). Returns (N, C, H, W).
    """
    x = _as_tensor(x)
    scale, shift = style_affine(style_weights, gamma, beta)
    if x.ndim != 4 or x.shape[1] != scale.shape[1]:
        raise ValueError(f"conditional_instance_norm: input {x.shape} does not have the {scale.shape[1]} "
                         "channels of gamma and beta")
    if fast_paths.enabled():
        return norm_fast.InstanceNormFast.apply(x, scale, shift, eps=eps)
    return instance_norm(x, eps) * scale + shift


def _mirror(x: Tensor, before: int, after: int, axis: int) -> Tensor:
    """Reflect rows (axis 2) or columns (axis 3) onto each side, the edge itself not repeated:
    [a b c d] with before = after = 2 becomes [c b | a b c d | c b]."""
    if before == after == 0:
        return x
    n = x.shape[axis]
    if max(before, after) >= n:
        raise ValueError(f"reflection padding of {max(before, after)} needs at least {max(before, after) + 1} "
                         f"pixels along axis {axis}, the input {x.shape} has {n}")
    lead = (slice(None),) * axis
    parts = [x[lead + (slice(before, 0, -1),)]] if before else []  # x[before], ..., x[1]
    parts.append(x)
    stop = n - 2 - after
    if after:
        parts.append(x[lead + (slice(n - 2, stop if stop >= 0 else None, -1),)])  # x[n-2], ..., x[n-1-after]
    return F.concatenate(parts, axis=axis)


def reflection_pad2d(x: TensorLike, padding: Union[int, Tuple[int, ...]]) -> Tensor:
    """Pad with the mirror image of the border (``np.pad`` mode 'reflect', PyTorch's ReflectionPad2d,
    ONNX Pad mode 'reflect').

    ``padding``: p (all sides), (ph, pw) (top and bottom, left and right), or (top, bottom, left, right).
    Made of slices and one concatenation per axis, so the gradient is theirs: each padded pixel's
    gradient is added onto the pixel it mirrors.
    Shape: (N, C, H, W) -> (N, C, H + top + bottom, W + left + right); each pad must be < H (or W).
    """
    x = _as_tensor(x)
    p = (int(padding),) * 4 if isinstance(padding, (int, np.integer)) else tuple(int(v) for v in padding)
    p = (p[0], p[0], p[1], p[1]) if len(p) == 2 else p
    if x.ndim != 4 or len(p) != 4 or min(p) < 0:
        raise ValueError(f"reflection_pad2d expects (N, C, H, W) and non-negative padding, got {x.shape}, "
                         f"{padding}")
    return _mirror(_mirror(x, p[0], p[1], 2), p[2], p[3], 3)


def reflect_conv2d(x: TensorLike, w: TensorLike, stride: int = 1) -> Tensor:
    """``conv2d(reflection_pad2d(x, K // 2), w, stride=stride)`` for an (O, C, K, K) kernel, K odd, no
    bias: the convolution of the style network, whose output keeps the input's size (stride 1) or
    halves it, rounding up (stride 2)."""
    if fast_paths.enabled() and reflect_conv_fast.fits(x, w):
        return reflect_conv_fast.ReflectConv2dFast.apply(x, w, stride=stride)
    w = _as_tensor(w)
    return F.conv2d(reflection_pad2d(x, w.shape[2] // 2), w, None, stride=stride)


class ConditionalInstanceNorm2d(Module):
    """One (gamma, beta) row per style for ``channels`` channels: gamma (styles, C), beta (styles, C).

    Initialised to gamma = 1, beta = 0 (plain instance normalisation) for every style.
    """

    def __init__(self, channels: int, styles: int) -> None:
        self.channels, self.styles = channels, styles
        self.gamma = Parameter(np.ones((styles, channels), np.float32))
        self.beta = Parameter(np.zeros((styles, channels), np.float32))

    def forward(self, x: Tensor, style_weights: Any) -> Tensor:
        return conditional_instance_norm(x, style_weights, self.gamma, self.beta)

    def extra_repr(self) -> str:
        return f"{self.channels}, styles={self.styles}"


# ---- batch normalisation and ReLU6 ------------------------------------------------------------------
# Batch normalisation (Ioffe & Szegedy 2015) and ReLU6, as in PyTorch.
#
# BatchNorm2d normalises each channel by its mean and variance over the batch and the positions, then
# scales and shifts it by learned ``weight`` and ``bias``:
#
#     y = (x - mean_c) / sqrt(var_c + eps) * weight_c + bias_c
#
# - training mode: mean and (biased) variance of this batch; the running averages are updated with
#   ``running = (1 - momentum) * running + momentum * batch_value``, using the *unbiased* variance,
#   exactly as PyTorch does.
# - eval mode: the running averages instead, so the layer is a fixed per-channel affine map
#   ``y = x * scale_c + shift_c``, which can be folded into the convolution before it.
#
# It is built from differentiable ops (mean, sub, mul, sqrt), so its gradient, including the terms
# through the batch statistics in training mode, comes from the engine and is checked by gradcheck.


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
