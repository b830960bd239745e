"""ReLU on raw arrays: y = max(x, 0); dL/dx = dL/dy where y > 0, else 0."""
from __future__ import annotations

from typing import Any


def relu_forward(x: Any) -> Any:
    """max(x, 0) elementwise, same dtype and device as x."""
    return x * (x > 0)


def relu_backward(grad: Any, y: Any) -> Any:
    """Gradient of ReLU given its output y: pass grad where y > 0 (the subgradient at 0 is 0)."""
    return grad * (y > 0)
