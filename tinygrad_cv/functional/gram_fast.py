"""The Gram matrix of NumPy features as one op over kernels/fast/gram.py: no copy of the features
(it reads a fast convolution's padded channels-last buffer in place) and products on every core.
The reference is the plain ``F @ F^T / (H W)`` of functional/gram.py."""
from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_cv.kernels.fast import gram
from tinygrad_cv.tensor import Function, Tensor


def fits(features: Tensor) -> bool:
    """Whether ``GramFast`` takes these features: a float NumPy array."""
    return isinstance(features.data, np.ndarray) and features.dtype.kind == "f"


class GramFast(Function):
    def forward(self, features: Any) -> Any:
        self.shape = features.shape
        self.rows = gram.pixel_rows(features)  # (N, P, C), a view
        self.scale = 1.0 / (features.shape[2] * features.shape[3])
        return gram.gram(self.rows, self.scale)  # (N, C, C)

    def backward(self, grad: Any) -> Any:
        d_rows = gram.gram_grad_rows(self.rows, grad, self.scale)  # (N, P, C)
        return gram.from_pixel_rows(d_rows, self.shape)  # (N, C, H, W)
