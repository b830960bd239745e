"""Losses: mean squared error, mean absolute error, binary cross-entropy (on probabilities or logits).

Each reduces to a scalar mean by default (``reduction="sum"`` or ``"none"`` also work), and the
target is treated as a constant: no gradient flows into it, as in PyTorch.
"""
from __future__ import annotations

from typing import Any

from tinygrad_cv import backend
from tinygrad_cv.tensor import Function, Tensor, TensorLike

_REDUCTIONS = ("mean", "sum", "none")


def _reduce(values: Any, reduction: str) -> Any:
    if reduction == "mean":
        return values.mean()
    return values.sum() if reduction == "sum" else values


def _reduce_backward(grad: Any, shape: tuple, reduction: str) -> Any:
    """Spread the upstream gradient of the reduced loss back over the per-element losses."""
    if reduction == "none":
        return grad
    count = 1
    for n in shape:
        count *= n
    return grad / count if reduction == "mean" else grad


def _check(name: str, pred: Tensor, target: Tensor, reduction: str) -> None:
    if pred.shape != target.shape:
        raise ValueError(f"{name}: prediction shape {pred.shape} differs from target shape {target.shape}")
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{name}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")


class MSELoss(Function):
    def forward(self, pred: Any, target: Any, reduction: str) -> Any:
        self.diff, self.reduction = pred - target, reduction
        return _reduce(self.diff * self.diff, reduction)

    def backward(self, grad: Any) -> tuple:
        return _reduce_backward(grad, self.diff.shape, self.reduction) * 2 * self.diff, None


def mse_loss(pred: TensorLike, target: TensorLike, reduction: str = "mean") -> Tensor:
    """mean((pred - target)^2). d/dpred = 2 (pred - target) / n."""
    pred, target = _tensors(pred, target)
    _check("mse_loss", pred, target, reduction)
    return MSELoss.apply(pred, target.detach(), reduction=reduction)


class L1Loss(Function):
    def forward(self, pred: Any, target: Any, reduction: str) -> Any:
        diff = pred - target
        self.sign, self.reduction = backend.get_array_module(diff).sign(diff), reduction
        return _reduce(abs(diff), reduction)

    def backward(self, grad: Any) -> tuple:
        return _reduce_backward(grad, self.sign.shape, self.reduction) * self.sign, None


def l1_loss(pred: TensorLike, target: TensorLike, reduction: str = "mean") -> Tensor:
    """mean(|pred - target|). d/dpred = sign(pred - target) / n (0 where equal)."""
    pred, target = _tensors(pred, target)
    _check("l1_loss", pred, target, reduction)
    return L1Loss.apply(pred, target.detach(), reduction=reduction)


class BinaryCrossEntropy(Function):
    def forward(self, p: Any, t: Any, reduction: str, eps: float) -> Any:
        xp = backend.get_array_module(p)
        self.p, self.t, self.reduction = xp.clip(p, eps, 1 - eps), t, reduction
        losses = -(t * xp.log(self.p) + (1 - t) * xp.log(1 - self.p))
        return _reduce(losses, reduction)

    def backward(self, grad: Any) -> tuple:
        local = (self.p - self.t) / (self.p * (1 - self.p))
        return _reduce_backward(grad, self.p.shape, self.reduction) * local, None


def binary_cross_entropy(p: TensorLike, target: TensorLike, reduction: str = "mean", eps: float = 1e-7) -> Tensor:
    """-[t log p + (1-t) log(1-p)] for probabilities p in (0, 1); p is clipped to [eps, 1-eps].

    d/dp = (p - t) / (p (1 - p)). Prefer binary_cross_entropy_with_logits when you have logits.
    """
    p, target = _tensors(p, target)
    _check("binary_cross_entropy", p, target, reduction)
    return BinaryCrossEntropy.apply(p, target.detach(), reduction=reduction, eps=eps)


class BinaryCrossEntropyWithLogits(Function):
    def forward(self, x: Any, t: Any, reduction: str) -> Any:
        xp = backend.get_array_module(x)
        # log(1 + e^x) - t x, rewritten as max(x, 0) - t x + log(1 + e^-|x|) so e^ never overflows.
        losses = xp.maximum(x, 0) - t * x + xp.log1p(xp.exp(-abs(x)))
        self.x, self.t, self.reduction = x, t, reduction
        return _reduce(losses, reduction)

    def backward(self, grad: Any) -> tuple:
        xp = backend.get_array_module(self.x)
        sigmoid = 0.5 * (1 + xp.tanh(0.5 * self.x))
        return _reduce_backward(grad, self.x.shape, self.reduction) * (sigmoid - self.t), None


def binary_cross_entropy_with_logits(logits: TensorLike, target: TensorLike, reduction: str = "mean") -> Tensor:
    """Binary cross-entropy of sigmoid(logits), computed stably from the logits. d/dx = sigmoid(x) - t."""
    logits, target = _tensors(logits, target)
    _check("binary_cross_entropy_with_logits", logits, target, reduction)
    return BinaryCrossEntropyWithLogits.apply(logits, target.detach(), reduction=reduction)


def _tensors(pred: TensorLike, target: TensorLike) -> tuple:
    """Both as Tensors; a constant target takes the prediction's dtype and device."""
    pred = pred if isinstance(pred, Tensor) else Tensor(pred)
    if not isinstance(target, Tensor):
        target = Tensor(backend.to_device(backend.get_array_module(target).asarray(target), pred.device), dtype=pred.dtype)
    return pred, target
