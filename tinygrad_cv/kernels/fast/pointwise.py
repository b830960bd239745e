"""1x1 convolution (stride 1, no padding, no groups) as one matrix product over all pixels.

A 1x1 convolution mixes channels at every pixel. With the pixels as the rows of a matrix,
X = x as (N*H*W, C), and W = w.reshape(O, C):

    forward      Y  = X @ W^T      (N*H*W, O)
    grad input   dX = dY @ W       (N*H*W, C)
    grad weight  dW = dY^T @ X     (O, C)

X is a free view of a channels-last array (what the depthwise fast path and this one return, as NCHW
views), and also of a plain NCHW array when N = 1 (then X is the transpose of the (C, H*W) matrix,
which BLAS reads as it is); otherwise one copy makes it. The reference (kernels/conv.py) goes through
im2col. Outputs are NCHW views of channels-last arrays, like depthwise.py's.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from tinygrad_cv.kernels.geometry import pair


def supports(x: Any, w: Any, b: Any, stride: Any, padding: Any, dilation: Any, groups: int) -> bool:
    """A 1x1, stride 1, padding 0, groups 1 convolution of NumPy float arrays of one dtype."""
    arrays = [a for a in (x, w, b) if a is not None]
    return (all(isinstance(a, np.ndarray) and a.dtype == x.dtype for a in arrays)
            and x.dtype in (np.float32, np.float64) and x.ndim == 4 and w.ndim == 4 and groups == 1
            and w.shape[1:] == (x.shape[1], 1, 1) and pair(stride, "stride") == (1, 1)
            and pair(padding, "padding") == (0, 0))


def pixel_rows(a: np.ndarray) -> np.ndarray:
    """(N, C, H, W) -> (N*H*W, C), one row per pixel; a view whenever the layout allows."""
    N, C, H, W = a.shape
    return a.transpose(0, 2, 3, 1).reshape(N * H * W, C)


def from_pixel_rows(rows: np.ndarray, N: int, H: int, W: int) -> np.ndarray:
    """(N*H*W, C) -> (N, C, H, W), an NCHW view of the channels-last rows."""
    return rows.reshape(N, H, W, -1).transpose(0, 3, 1, 2)


def pointwise_forward(x: np.ndarray, w: np.ndarray, b: Optional[np.ndarray]) -> np.ndarray:
    """Shape: x (N, C, H, W), w (O, C, 1, 1), b (O,) or None -> (N, O, H, W)."""
    N, C, H, W = x.shape
    y = pixel_rows(x) @ w.reshape(-1, C).T  # (N*H*W, O)
    if b is not None:
        y += b
    return from_pixel_rows(y, N, H, W)


def pointwise_grad_input(grad: np.ndarray, w: np.ndarray) -> np.ndarray:
    """dL/dx = dY @ W. Shape (N, C, H, W)."""
    N, O, H, W = grad.shape
    return from_pixel_rows(pixel_rows(grad) @ w.reshape(O, -1), N, H, W)


def pointwise_grad_weight(grad: np.ndarray, x: np.ndarray, w_shape: Sequence[int]) -> np.ndarray:
    """dL/dW = dY^T @ X. Shape ``w_shape`` (O, C, 1, 1)."""
    return (pixel_rows(grad).T @ pixel_rows(x)).reshape(w_shape)
