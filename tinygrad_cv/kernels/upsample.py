"""Nearest-neighbour upsampling by an integer factor, and its adjoint.

Forward: every pixel becomes an sh x sw block of copies. Backward: the gradient of a pixel is the sum
of the gradients of its block. Both are a reshape away from broadcasting and summing, so they are
written once with ``xp`` and serve NumPy and CuPy alike.
"""
from __future__ import annotations

from typing import Any, Sequence, Tuple, Union

from tinygrad_cv import backend

Scale = Union[int, float, Sequence[Union[int, float]]]


def scale_pair(scale_factor: Scale) -> Tuple[int, int]:
    """2 -> (2, 2); (2, 3) -> (2, 3); 2.0 -> (2, 2). ValueError unless positive whole numbers."""
    values = tuple(scale_factor) if isinstance(scale_factor, (tuple, list)) else (scale_factor,) * 2
    if len(values) != 2 or any(float(v) != int(v) or int(v) < 1 for v in values):
        raise ValueError(f"upsample_nearest2d: scale_factor must be a positive whole number or a pair of "
                         f"them, got {scale_factor!r}")
    return int(values[0]), int(values[1])


def upsample_nearest2d_forward(x: Any, scale_factor: Scale) -> Any:
    """(N, C, H, W) -> (N, C, H*sh, W*sw), each pixel repeated into an sh x sw block."""
    if x.ndim != 4:
        raise ValueError(f"upsample_nearest2d: input must be 4-D (N, C, H, W), got shape {tuple(x.shape)}")
    sh, sw = scale_pair(scale_factor)
    N, C, H, W = x.shape
    xp = backend.get_array_module(x)
    blocks = xp.broadcast_to(x[:, :, :, None, :, None], (N, C, H, sh, W, sw))  # a view, no copy
    return blocks.reshape(N, C, H * sh, W * sw)  # the one copy


def upsample_nearest2d_backward(grad: Any, scale_factor: Scale) -> Any:
    """(N, C, H*sh, W*sw) -> (N, C, H, W): the sum of the gradient over each block."""
    sh, sw = scale_pair(scale_factor)
    N, C, Hs, Ws = grad.shape
    blocks = grad.reshape(N, C, Hs // sh, sh, Ws // sw, sw)  # (N, C, H, sh, W, sw)
    return blocks.sum(axis=(3, 5))
