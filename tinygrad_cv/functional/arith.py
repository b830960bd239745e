"""Arithmetic: + - * / negation, powers and matrix products.

Every backward below may return a gradient in the broadcast shape of the output; the engine sums it
back to each input's shape (tensor.unbroadcast), so broadcasting is handled once, not per op.
"""
from __future__ import annotations

from typing import Any

from tinygrad_cv.tensor import Function, Tensor, TensorLike


class Add(Function):
    def forward(self, a: Any, b: Any) -> Any:
        return a + b

    def backward(self, grad: Any) -> tuple:
        return grad, grad


def add(a: TensorLike, b: TensorLike) -> Tensor:
    """a + b with NumPy broadcasting. d/da = 1, d/db = 1."""
    return Add.apply(a, b)


class Sub(Function):
    def forward(self, a: Any, b: Any) -> Any:
        return a - b

    def backward(self, grad: Any) -> tuple:
        return grad, -grad


def sub(a: TensorLike, b: TensorLike) -> Tensor:
    """a - b with broadcasting. d/da = 1, d/db = -1."""
    return Sub.apply(a, b)


class Mul(Function):
    def forward(self, a: Any, b: Any) -> Any:
        self.a, self.b = a, b
        return a * b

    def backward(self, grad: Any) -> tuple:
        return grad * self.b, grad * self.a


def mul(a: TensorLike, b: TensorLike) -> Tensor:
    """a * b elementwise with broadcasting. d/da = b, d/db = a."""
    return Mul.apply(a, b)


class Div(Function):
    def forward(self, a: Any, b: Any) -> Any:
        self.a, self.b = a, b
        return a / b

    def backward(self, grad: Any) -> tuple:
        grad_a = grad / self.b
        return grad_a, -grad_a * self.a / self.b


def div(a: TensorLike, b: TensorLike) -> Tensor:
    """a / b elementwise with broadcasting. d/da = 1/b, d/db = -a/b^2."""
    return Div.apply(a, b)


class Neg(Function):
    def forward(self, a: Any) -> Any:
        return -a

    def backward(self, grad: Any) -> Any:
        return -grad


def neg(a: TensorLike) -> Tensor:
    """-a."""
    return Neg.apply(a)


class Pow(Function):
    def forward(self, a: Any, exponent: float) -> Any:
        self.a, self.exponent = a, exponent
        return a**exponent

    def backward(self, grad: Any) -> Any:
        return grad * self.exponent * self.a ** (self.exponent - 1)


def pow(a: TensorLike, exponent: float) -> Tensor:  # noqa: A001 - mirrors the ** operator
    """a ** exponent for a constant (Python number) exponent. d/da = p * a^(p-1)."""
    if isinstance(exponent, Tensor) or not isinstance(exponent, (int, float)):
        raise ValueError(f"pow: the exponent must be a Python number, got {type(exponent).__name__}")
    return Pow.apply(a, exponent=exponent)


class MatMul(Function):
    def forward(self, a: Any, b: Any) -> Any:
        if a.ndim == 0 or b.ndim == 0 or a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
            raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not fit (inner sizes differ)")
        self.a, self.b = a, b
        return a @ b

    def backward(self, grad: Any) -> tuple:
        a, b = self.a, self.b
        # Treat 1-D operands as a row (a) or a column (b) so both rules below are plain matrix rules.
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g2 = grad.reshape(grad.shape + (1,)) if b.ndim == 1 else grad
        g2 = g2[..., None, :] if a.ndim == 1 else g2
        # Each product only when its input wants a gradient (an image batch or frozen weights do not).
        grad_a = g2 @ b2.swapaxes(-1, -2) if self.needs_grad[0] else None  # dL/dA = dL/dC B^T
        grad_b = a2.swapaxes(-1, -2) @ g2 if self.needs_grad[1] else None  # dL/dB = A^T dL/dC
        # Undo the 1-D promotion; batch axes that were broadcast are summed by the engine.
        grad_a = grad_a[..., 0, :] if a.ndim == 1 and grad_a is not None else grad_a
        grad_b = grad_b[..., 0] if b.ndim == 1 and grad_b is not None else grad_b
        return grad_a, grad_b


def matmul(a: TensorLike, b: TensorLike) -> Tensor:
    """Matrix product with NumPy's rules: batched over leading axes, 1-D operands promoted.

    Shape: (..., N, K) @ (..., K, M) -> (..., N, M). dL/dA = dL/dC B^T, dL/dB = A^T dL/dC.
    """
    return MatMul.apply(a, b)
