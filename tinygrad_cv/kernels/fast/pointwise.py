"""1x1 convolution (stride 1, no padding, no groups) as one matrix product per image, with no copy.

A 1x1 convolution mixes channels at every pixel: y[n] = W @ x[n] with W = w.reshape(O, C) and x[n]
the (C, H*W) matrix of image n, which is already how an NCHW array lies in memory. The reference
(kernels/conv.py) goes through im2col, which copies x into columns, and transposes the result back;
here the reshapes are free views and NumPy's matmul runs one GEMM per image:

    forward      y[n]  = W @ x[n]                 (O, H*W)
    grad input   dx[n] = W^T @ dy[n]              (C, H*W)
    grad weight  dW    = sum_n dy[n] @ x[n]^T     (O, C)
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


def pointwise_forward(x: np.ndarray, w: np.ndarray, b: Optional[np.ndarray]) -> np.ndarray:
    """Shape: x (N, C, H, W), w (O, C, 1, 1), b (O,) or None -> (N, O, H, W)."""
    N, C, H, W = x.shape
    O = w.shape[0]
    y = np.matmul(w.reshape(O, C), x.reshape(N, C, H * W))  # (N, O, H*W)
    if b is not None:
        y += b.reshape(O, 1)
    return y.reshape(N, O, H, W)


def pointwise_grad_input(grad: np.ndarray, w: np.ndarray) -> np.ndarray:
    """dL/dx = W^T @ dy per image. Shape (N, C, H, W)."""
    N, O, H, W = grad.shape
    C = w.shape[1]
    dx = np.matmul(w.reshape(O, C).T, grad.reshape(N, O, H * W))  # (N, C, H*W)
    return dx.reshape(N, C, H, W)


def pointwise_grad_weight(grad: np.ndarray, x: np.ndarray, w_shape: Sequence[int]) -> np.ndarray:
    """dL/dW = sum_n dy[n] @ x[n]^T. Shape ``w_shape`` (O, C, 1, 1)."""
    N, O, H, W = grad.shape
    C = x.shape[1]
    dw = np.matmul(grad.reshape(N, O, H * W), x.reshape(N, C, H * W).transpose(0, 2, 1))  # (N, O, C)
    return dw.sum(axis=0).reshape(w_shape)
