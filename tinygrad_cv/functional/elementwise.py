"""Elementwise functions: exp, log, sqrt, abs, clip, maximum and the activations."""
from __future__ import annotations

from typing import Any, Optional

from tinygrad_cv import backend
from tinygrad_cv.kernels.relu import relu_backward, relu_forward
from tinygrad_cv.tensor import Function, Tensor, TensorLike


class Exp(Function):
    def forward(self, a: Any) -> Any:
        self.out = backend.get_array_module(a).exp(a)
        return self.out

    def backward(self, grad: Any) -> Any:
        return grad * self.out


def exp(a: TensorLike) -> Tensor:
    """e^a. d/da = e^a (the output, kept from forward)."""
    return Exp.apply(a)


class Log(Function):
    def forward(self, a: Any) -> Any:
        self.a = a
        return backend.get_array_module(a).log(a)

    def backward(self, grad: Any) -> Any:
        return grad / self.a


def log(a: TensorLike) -> Tensor:
    """Natural logarithm. d/da = 1/a."""
    return Log.apply(a)


class Sqrt(Function):
    def forward(self, a: Any) -> Any:
        self.out = backend.get_array_module(a).sqrt(a)
        return self.out

    def backward(self, grad: Any) -> Any:
        return grad / (2 * self.out)


def sqrt(a: TensorLike) -> Tensor:
    """Square root. d/da = 1 / (2 sqrt(a))."""
    return Sqrt.apply(a)


class Abs(Function):
    def forward(self, a: Any) -> Any:
        self.a = a
        return backend.get_array_module(a).abs(a)

    def backward(self, grad: Any) -> Any:
        return grad * backend.get_array_module(self.a).sign(self.a)


def abs(a: TensorLike) -> Tensor:  # noqa: A001 - the natural name
    """|a|. d/da = sign(a), taken as 0 at a = 0."""
    return Abs.apply(a)


class Clip(Function):
    def forward(self, a: Any, low: Optional[float], high: Optional[float]) -> Any:
        xp = backend.get_array_module(a)
        out = xp.clip(a, low, high)
        self.inside = out == a if self.needs_grad[0] else None  # gradient passes where clipping did nothing
        return out

    def backward(self, grad: Any) -> Any:
        return grad * self.inside


def clip(a: TensorLike, low: Optional[float], high: Optional[float]) -> Tensor:
    """Clamp to [low, high] (either may be None). Gradient 1 inside the range, 0 where clipped."""
    return Clip.apply(a, low=low, high=high)


class Maximum(Function):
    def forward(self, a: Any, b: Any) -> Any:
        xp = backend.get_array_module(a, b)
        out = xp.maximum(a, b)
        self.a_wins = a >= b  # ties send the whole gradient to a, so it is counted exactly once
        return out

    def backward(self, grad: Any) -> tuple:
        return grad * self.a_wins, grad * ~self.a_wins


def maximum(a: TensorLike, b: TensorLike) -> Tensor:
    """Elementwise max with broadcasting. The gradient goes to the larger input (to a on ties)."""
    return Maximum.apply(a, b)


class ReLU(Function):
    def forward(self, a: Any) -> Any:
        self.out = relu_forward(a)
        return self.out

    def backward(self, grad: Any) -> Any:
        return relu_backward(grad, self.out)


def relu(a: TensorLike) -> Tensor:
    """max(a, 0). d/da = 1 where a > 0, else 0. Kernels in tinygrad_cv/kernels/relu.py."""
    return ReLU.apply(a)


class Sigmoid(Function):
    def forward(self, a: Any) -> Any:
        xp = backend.get_array_module(a)
        # 1/(1+e^-a) overflows e^-a for very negative a; 0.5*(1+tanh(a/2)) is the same and stable.
        self.out = 0.5 * (1 + xp.tanh(0.5 * a))
        return self.out

    def backward(self, grad: Any) -> Any:
        return grad * self.out * (1 - self.out)


def sigmoid(a: TensorLike) -> Tensor:
    """1 / (1 + e^-a), computed stably. d/da = s (1 - s)."""
    return Sigmoid.apply(a)


class Tanh(Function):
    def forward(self, a: Any) -> Any:
        self.out = backend.get_array_module(a).tanh(a)
        return self.out

    def backward(self, grad: Any) -> Any:
        return grad * (1 - self.out * self.out)


def tanh(a: TensorLike) -> Tensor:
    """Hyperbolic tangent. d/da = 1 - tanh(a)^2."""
    return Tanh.apply(a)
