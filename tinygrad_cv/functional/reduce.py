"""Reductions (sum, mean, max over axes) and the normalisers softmax / log_softmax."""
from __future__ import annotations

from typing import Any, Optional, Union

from tinygrad_cv import backend
from tinygrad_cv.tensor import Function, Tensor, TensorLike

Axis = Optional[Union[int, tuple]]


def _normalise_axis(axis: Axis, ndim: int) -> tuple:
    """The reduced axes as a sorted tuple of non-negative ints (all axes for None)."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    # (this module defines its own sum and max, so Python's builtins are not used here)
    for ax in axes:
        if not -ndim <= ax < (ndim or 1):
            raise ValueError(f"axis {ax} is out of range for an array of {ndim} dimensions")
    return tuple(sorted(ax % (ndim or 1) for ax in axes))


def _restore_reduced(grad: Any, axes: tuple, keepdims: bool) -> Any:
    """Put size-1 axes back where a reduction without keepdims removed them, so grad broadcasts."""
    if keepdims:
        return grad
    for ax in axes:
        grad = backend.get_array_module(grad).expand_dims(grad, ax)
    return grad


class Sum(Function):
    def forward(self, a: Any, axis: Axis, keepdims: bool) -> Any:
        self.shape, self.keepdims = a.shape, keepdims
        self.axes = _normalise_axis(axis, a.ndim)
        return a.sum(axis=self.axes, keepdims=keepdims)

    def backward(self, grad: Any) -> Any:
        grad = _restore_reduced(grad, self.axes, self.keepdims)
        return backend.get_array_module(grad).broadcast_to(grad, self.shape)


def sum(a: TensorLike, axis: Axis = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Sum over ``axis`` (all by default). The gradient is copied back to every summed element."""
    return Sum.apply(a, axis=axis, keepdims=keepdims)


def mean(a: TensorLike, axis: Axis = None, keepdims: bool = False) -> Tensor:
    """Mean over ``axis`` (all by default): the sum divided by the count, so each element receives
    grad / count."""
    a = a if isinstance(a, Tensor) else Tensor(a)
    count = 1
    for ax in _normalise_axis(axis, a.ndim):
        count *= a.shape[ax]
    return sum(a, axis, keepdims) / count


class Max(Function):
    def forward(self, a: Any, axis: Axis, keepdims: bool) -> Any:
        self.keepdims = keepdims
        self.axes = _normalise_axis(axis, a.ndim)
        out = a.max(axis=self.axes, keepdims=True)
        is_max = (a == out).astype(a.dtype)
        # Ties share the gradient equally, so the result does not depend on element order.
        self.share = is_max / is_max.sum(axis=self.axes, keepdims=True)
        return out if keepdims else out.squeeze(axis=self.axes)

    def backward(self, grad: Any) -> Any:
        return _restore_reduced(grad, self.axes, self.keepdims) * self.share


def max(a: TensorLike, axis: Axis = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Maximum over ``axis``. The gradient goes to the maximal element(s), split equally on ties."""
    return Max.apply(a, axis=axis, keepdims=keepdims)


class Softmax(Function):
    def forward(self, a: Any, axis: int) -> Any:
        xp = backend.get_array_module(a)
        shifted = a - a.max(axis=axis, keepdims=True)  # e^(a - max) never overflows
        e = xp.exp(shifted)
        self.out, self.axis = e / e.sum(axis=axis, keepdims=True), axis
        return self.out

    def backward(self, grad: Any) -> Any:
        # J^T g for J = diag(s) - s s^T is s * (g - <g, s>).
        s = self.out
        return s * (grad - (grad * s).sum(axis=self.axis, keepdims=True))


def softmax(a: TensorLike, axis: int = -1) -> Tensor:
    """exp(a) / sum(exp(a)) along ``axis``, shifted by the max for stability.

    Backward: dL/da = s * (g - sum(g * s)), the Jacobian-vector product without the Jacobian.
    """
    return Softmax.apply(a, axis=axis)


class LogSoftmax(Function):
    def forward(self, a: Any, axis: int) -> Any:
        xp = backend.get_array_module(a)
        shifted = a - a.max(axis=axis, keepdims=True)
        out = shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))
        self.softmax, self.axis = xp.exp(out), axis
        return out

    def backward(self, grad: Any) -> Any:
        return grad - self.softmax * grad.sum(axis=self.axis, keepdims=True)


def log_softmax(a: TensorLike, axis: int = -1) -> Tensor:
    """a - logsumexp(a) along ``axis``, stable for large inputs. dL/da = g - softmax(a) sum(g)."""
    return LogSoftmax.apply(a, axis=axis)
