"""Optimisers: SGD (momentum, weight decay), Adam, and an L-BFGS bridge to SciPy.

SGD and Adam update ``p.data`` in place from ``p.grad`` (under no_grad: an update is not part of
any graph). The L-BFGS bridge hands a flat float64 vector to scipy.optimize.minimize, as L-BFGS
needs a whole-problem view (line search, curvature pairs) that a per-step optimiser does not give.
"""
from __future__ import annotations

import math

from dataclasses import dataclass
from typing import Any, Callable, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from tinygrad_cv import backend
from tinygrad_cv.tensor import Tensor


class Optimizer:
    def __init__(self, params: Iterable[Tensor], lr: float) -> None:
        self.params: List[Tensor] = list(params)
        if not self.params:
            raise ValueError("optimizer got an empty parameter list")
        if lr <= 0:
            raise ValueError(f"learning rate must be positive, got {lr}")
        self.lr = lr

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict:
        """Arrays of the optimiser's state by name, so a checkpoint can resume exactly."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class SGD(Optimizer):
    """p <- p - lr * v, v <- momentum * v + (grad + weight_decay * p). Plain SGD when momentum = 0."""

    def __init__(self, params: Iterable[Tensor], lr: float = 0.01, momentum: float = 0.0, weight_decay: float = 0.0) -> None:
        super().__init__(params, lr)
        self.momentum, self.weight_decay = momentum, weight_decay
        self.velocity: List[Any] = [None] * len(self.params)

    def step(self) -> None:
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            g = p.grad + self.weight_decay * p.data if self.weight_decay else p.grad
            if self.momentum:
                v = self.velocity[i]
                self.velocity[i] = g if v is None else self.momentum * v + g
                g = self.velocity[i]
            p.data -= self.lr * g

    def state_dict(self) -> dict:
        return {f"velocity.{i}": v for i, v in enumerate(self.velocity) if v is not None}

    def load_state_dict(self, state: dict) -> None:
        for i, p in enumerate(self.params):
            v = state.get(f"velocity.{i}")
            self.velocity[i] = None if v is None else backend.to_device(v, p.device).astype(p.dtype)


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015, Algorithm 1): bias-corrected running means of g and g^2.

    m <- b1 m + (1-b1) g;  v <- b2 v + (1-b2) g^2;  p <- p - lr * m_hat / (sqrt(v_hat) + eps).
    weight_decay adds weight_decay * p to the gradient (L2 regularisation, as torch.optim.Adam).
    """

    def __init__(self, params: Iterable[Tensor], lr: float = 1e-3, betas: Sequence[float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0) -> None:
        super().__init__(params, lr)
        self.b1, self.b2 = betas
        self.eps, self.weight_decay = eps, weight_decay
        self.t = 0
        self.m = [backend.get_array_module(p.data).zeros_like(p.data) for p in self.params]
        self.v = [backend.get_array_module(p.data).zeros_like(p.data) for p in self.params]

    def step(self) -> None:
        self.t += 1
        correction1 = 1 - self.b1**self.t
        correction2 = 1 - self.b2**self.t
        for p, m, v in zip(self.params, self.m, self.v):
            if p.grad is None:
                continue
            xp = backend.get_array_module(p.data)
            g = p.grad + self.weight_decay * p.data if self.weight_decay else p.grad
            m *= self.b1
            m += (1 - self.b1) * g
            v *= self.b2
            step = g * g  # one scratch array, reused in place below: small nets spend a share of
            step *= 1 - self.b2  # their step here, and every temporary is a fresh allocation
            v += step
            # lr * m_hat / (sqrt(v_hat) + eps) with m_hat = m / c1, sqrt(v_hat) = sqrt(v) / sqrt(c2)
            xp.sqrt(v, out=step)
            step *= 1 / math.sqrt(correction2)
            step += self.eps
            xp.divide(m, step, out=step)
            step *= self.lr / correction1
            p.data -= step

    def state_dict(self) -> dict:
        state = {"t": np.array(self.t)}
        for i, (m, v) in enumerate(zip(self.m, self.v)):
            state[f"m.{i}"], state[f"v.{i}"] = m, v
        return state

    def load_state_dict(self, state: dict) -> None:
        self.t = int(state["t"])
        for i, p in enumerate(self.params):
            self.m[i] = backend.to_device(state[f"m.{i}"], p.device).astype(p.dtype)
            self.v[i] = backend.to_device(state[f"v.{i}"], p.device).astype(p.dtype)


@dataclass
class LBFGSResult:
    loss: float  # the loss at the returned point
    iterations: int  # L-BFGS iterations done
    evaluations: int  # loss+gradient evaluations (line searches take several per iteration)
    message: str  # SciPy's reason for stopping, or "stopped by callback"


class LBFGS:
    """Minimise a loss over Tensors in place with scipy.optimize.minimize(method="L-BFGS-B").

    Usage::

        opt = LBFGS([image], max_iter=300)
        def closure():                  # recompute the loss and its gradient at the current params
            opt.zero_grad()
            loss = compute_loss(image)
            loss.backward()
            return loss
        result = opt.run(closure, callback=lambda it, loss: print(it, loss))

    SciPy works in float64 on the CPU; the bridge copies the flat vector into each Tensor (in its own
    dtype and device) before every evaluation and gathers the gradients back. ``bounds=(low, high)``
    keeps every element inside a box (style transfer keeps pixels in [0, 1] this way). The callback gets
    (iteration, loss) after each iteration; raising StopIteration in it ends the run early, at the
    last accepted point. On return the Tensors hold the best point SciPy accepted.
    """

    def __init__(self, params: Iterable[Tensor], max_iter: int = 100, history: int = 10, tol: float = 0.0,
                 max_eval: Optional[int] = None, bounds: Optional[Tuple[float, float]] = None) -> None:
        self.params = list(params)
        self.bounds = bounds  # (low, high) for every element: L-BFGS-B's box constraints
        self.max_iter, self.history, self.tol = max_iter, history, tol
        self.max_eval = max_eval if max_eval is not None else max_iter * 5 // 4 + 5

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def _get_flat(self) -> np.ndarray:
        return np.concatenate([backend.to_device(p.data, "cpu").astype(np.float64).ravel() for p in self.params])

    def _set_flat(self, flat: np.ndarray) -> None:
        offset = 0
        for p in self.params:
            chunk = flat[offset : offset + p.size].reshape(p.shape)
            p.data = backend.to_device(chunk.astype(p.dtype), p.device)
            offset += p.size

    def _flat_grad(self) -> np.ndarray:
        grads = [np.zeros(p.size) if p.grad is None else backend.to_device(p.grad, "cpu").astype(np.float64).ravel() for p in self.params]
        return np.concatenate(grads)

    def run(self, closure: Callable[[], Tensor], callback: Optional[Callable[[int, float], None]] = None) -> LBFGSResult:
        from scipy.optimize import Bounds, minimize  # SciPy is needed only here

        state = {"loss": float("nan"), "evals": 0, "iter": 0}

        def fun(flat: np.ndarray) -> tuple:
            self._set_flat(flat)
            loss = closure()
            state["evals"] += 1
            state["loss"] = float(loss.item())
            return state["loss"], self._flat_grad()

        def on_iteration(intermediate_result: Any) -> None:
            state["iter"] += 1
            if callback is not None:
                callback(state["iter"], float(intermediate_result.fun))

        options = {"maxiter": self.max_iter, "maxfun": self.max_eval, "maxcor": self.history, "ftol": self.tol, "gtol": self.tol}
        x0 = self._get_flat()
        bounds = None
        if self.bounds is not None:
            bounds = Bounds(np.full(x0.size, self.bounds[0]), np.full(x0.size, self.bounds[1]))
            x0 = np.clip(x0, *self.bounds)
        result = minimize(fun, x0, jac=True, method="L-BFGS-B", bounds=bounds, callback=on_iteration, options=options)
        self._set_flat(result.x)  # the best accepted point, not the last line-search probe
        message = "stopped by callback" if result.status == 99 else str(result.message)
        return LBFGSResult(float(result.fun), state["iter"], state["evals"], message)
