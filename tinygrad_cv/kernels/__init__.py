"""Pure array kernels (no Tensor, no autograd)."""
from tinygrad_cv.kernels.relu import relu_backward, relu_forward

__all__ = ["relu_forward", "relu_backward"]
