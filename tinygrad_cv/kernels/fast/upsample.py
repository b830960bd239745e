"""Nearest-neighbour upsampling in the fast convolutions' layout (the reference is kernels/upsample.py).

A decoder upsamples and then convolves (``Upsample(2)`` followed by a 3x3 ``Conv2d``). The reference
writes the upsampled image in NCHW; the fast 3x3 convolution then copies it once more into its padded
channels-last buffer (channels_last.py). Here the forward pass writes the copies straight into such a
buffer and returns its ``interior``, so that convolution reads it in place.

The backward pass sums the gradient over each sh x sw block. The reference reshapes the gradient to
(N, C, H, sh, W, sw) and sums two axes; for a gradient that is the interior of a padded buffer (what
the fast convolution's backward pass returns) that reshape is a full copy, and the sum over two short
axes is slow. Here each of the sh*sw offsets of the block is a strided view of the gradient, and the
sum is sh*sw - 1 additions of whole views, in channels-last order when the gradient is laid out so.
"""
from __future__ import annotations

import numpy as np

from tinygrad_cv.kernels.fast.channels_last import interior, zero_border
from tinygrad_cv.kernels.upsample import Scale, scale_pair


def upsample_nearest2d_forward(x: np.ndarray, scale_factor: Scale) -> np.ndarray:
    """As ``kernels.upsample.upsample_nearest2d_forward``: (N, C, H, W) -> (N, C, H*sh, W*sw), as the
    interior (an NCHW view) of a zero-bordered (N, H*sh+2, W*sw+2, C) channels-last buffer."""
    if x.ndim != 4:
        raise ValueError(f"upsample_nearest2d: input must be 4-D (N, C, H, W), got shape {tuple(x.shape)}")
    sh, sw = scale_pair(scale_factor)
    N, C, H, W = x.shape
    ypad = zero_border(np.empty((N, H * sh + 2, W * sw + 2, C), dtype=x.dtype))
    blocks = ypad[:, 1:-1, 1:-1, :].reshape(N, H, sh, W, sw, C)  # a view: both splits keep the strides
    blocks[...] = x.transpose(0, 2, 3, 1)[:, :, None, :, None, :]  # (N, H, 1, W, 1, C) broadcast: one pass
    return interior(ypad)


def upsample_nearest2d_backward(grad: np.ndarray, scale_factor: Scale) -> np.ndarray:
    """As ``kernels.upsample.upsample_nearest2d_backward``: (N, C, H*sh, W*sw) -> (N, C, H, W), the sum
    over each block. Returned in the gradient's channel order: channels-last memory (an NCHW view)
    when the channels of grad are its innermost axis, plain NCHW otherwise."""
    sh, sw = scale_pair(scale_factor)
    N, C, Hs, Ws = grad.shape
    channels_last = grad.strides[1] == grad.itemsize and C > 1
    g = grad.transpose(0, 2, 3, 1) if channels_last else grad  # spatial axes at 1, 2 or 2, 3
    axes = (1, 2) if channels_last else (2, 3)

    def offset(a: int, b: int) -> np.ndarray:  # the block's pixel (a, b) of every block: a strided view
        index = [slice(None)] * 4
        index[axes[0]], index[axes[1]] = slice(a, None, sh), slice(b, None, sw)
        return g[tuple(index)]

    out = offset(0, 0).copy(order="C")
    for a in range(sh):
        for b in range(sw):
            if a or b:
                np.add(out, offset(a, b), out=out)
    return out.transpose(0, 3, 1, 2) if channels_last else out
