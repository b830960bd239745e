"""ReLU on raw arrays: y = max(x, 0); dL/dx = dL/dy where y > 0, else 0.

NumPy: ``maximum(x, 0)`` is one pass over memory (``x * (x > 0)`` would be two plus a temporary).
CuPy: one fused elementwise kernel each way, in kernels/cuda.py.
"""
from __future__ import annotations

from typing import Any

from tinygrad_cv import backend
from tinygrad_cv.kernels.dispatch import gpu_kernels


def relu_forward(x: Any) -> Any:
    """max(x, 0) elementwise, same dtype and device as x (NaN stays NaN)."""
    gpu = gpu_kernels(x)
    if gpu is not None:
        return gpu.relu_forward(x)
    return backend.get_array_module(x).maximum(x, 0)


def relu_backward(grad: Any, y: Any) -> Any:
    """Gradient of ReLU given its output y: pass grad where y > 0 (the subgradient at 0 is 0)."""
    gpu = gpu_kernels(grad)
    if gpu is not None:
        return gpu.relu_backward(grad, y)
    return grad * (y > 0)
