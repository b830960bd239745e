"""Numerical checks of analytic gradients.

``gradcheck`` compares every partial derivative with a central difference
(f(x + eps) - f(x - eps)) / (2 eps) in float64: exact enough to catch any wrong backward, but it
costs two evaluations per input element, so it is for small inputs.

``check_vjp`` (after HIPS autograd) checks a whole Jacobian at once along random directions: for a
random input direction u and output direction v, the backward pass gives J^T v and a central
difference gives J u, and <v, J u> must equal <J^T v, u>. That costs two evaluations and one backward
whatever the size, so it fits VGG-sized ops.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from tinygrad_cv import backend
from tinygrad_cv.tensor import Tensor


def _float64_leaves(inputs: Sequence[Any]) -> list:
    leaves = []
    for x in inputs:
        data = x.data if isinstance(x, Tensor) else x
        xp = backend.get_array_module(data)
        leaves.append(Tensor(xp.array(data, dtype=xp.float64), requires_grad=True))
    return leaves


def _weighted_output(fn: Callable, leaves: list, weights: Any) -> Tensor:
    out = fn(*leaves)
    return (out * weights).sum() if weights is not None else out.sum()


def gradcheck(
    fn: Callable[..., Tensor],
    inputs: Sequence[Any],
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    seed: int = 0,
) -> bool:
    """Check the analytic gradient of ``fn`` against central differences, in float64.

    A non-scalar output is reduced to the scalar ``sum(out * w)`` with fixed random weights ``w``, so
    every output element is checked, each with its own weight.

    Args:
        fn: takes Tensors (one per input) and returns a Tensor.
        inputs: arrays or Tensors; copied to float64 leaves that require grad.
        eps, atol, rtol: step and tolerances (|analytic - numeric| <= atol + rtol |numeric|).
    Returns:
        True; raises AssertionError naming the input, the element and both values otherwise.
    """
    leaves = _float64_leaves(inputs)
    out = fn(*leaves)
    xp = backend.get_array_module(out.data)
    weights = None
    if out.size != 1:
        weights = xp.asarray(np.random.default_rng(seed).standard_normal(out.shape))
    loss = (out * weights).sum() if weights is not None else out.sum()
    loss.backward()
    for k, leaf in enumerate(leaves):
        analytic = leaf.grad if leaf.grad is not None else xp.zeros_like(leaf.data)
        numeric = xp.zeros_like(leaf.data)
        flat, num_flat = leaf.data.reshape(-1), numeric.reshape(-1)  # views into the leaf
        for i in range(flat.size):
            original = float(flat[i])
            flat[i] = original + eps
            plus = float(_weighted_output(fn, leaves, weights).data)
            flat[i] = original - eps
            minus = float(_weighted_output(fn, leaves, weights).data)
            flat[i] = original
            num_flat[i] = (plus - minus) / (2 * eps)
        bad = abs(analytic - numeric) > atol + rtol * abs(numeric)
        if bool(bad.any()):
            idx = tuple(int(i) for i in np.argwhere(backend.to_device(bad, "cpu"))[0])
            raise AssertionError(
                f"gradcheck: input {k} (shape {leaf.shape}) element {idx}: analytic "
                f"{float(analytic[idx]):.8g} vs numeric {float(numeric[idx]):.8g}; "
                f"{int(bad.sum())} of {bad.size} elements out of tolerance"
            )
    return True


def check_vjp(
    fn: Callable[..., Tensor],
    inputs: Sequence[Any],
    eps: float = 1e-6,
    rtol: float = 1e-5,
    seed: int = 0,
) -> bool:
    """Check <v, J u> == <J^T v, u> along random directions u (inputs) and v (output), in float64.

    Two forward evaluations and one backward, however large the inputs. Raises AssertionError with
    both numbers when they differ by more than ``rtol`` relative to their size.
    """
    leaves = _float64_leaves(inputs)
    rng = np.random.default_rng(seed)
    xp = backend.get_array_module(leaves[0].data)
    out = fn(*leaves)
    v = xp.asarray(rng.standard_normal(out.shape))
    (out * v).sum().backward()
    us = [xp.asarray(rng.standard_normal(leaf.shape)) for leaf in leaves]
    jtv_u = float(sum((leaf.grad * u).sum() for leaf, u in zip(leaves, us) if leaf.grad is not None))

    def shifted(sign: float) -> Any:
        moved = [Tensor(leaf.data + sign * eps * u) for leaf, u in zip(leaves, us)]
        return fn(*moved).data

    v_ju = float((v * (shifted(+1) - shifted(-1)) / (2 * eps)).sum())
    scale = max(abs(jtv_u), abs(v_ju), 1e-12)
    if abs(jtv_u - v_ju) > rtol * scale:
        raise AssertionError(f"check_vjp: <J^T v, u> = {jtv_u:.10g} but <v, J u> = {v_ju:.10g}")
    return True
