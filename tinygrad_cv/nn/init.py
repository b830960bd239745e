"""Weight initialisation with a seedable generator.

Kaiming (He et al. 2015) keeps the variance of activations constant through ReLU layers:
Var(w) = 2 / fan_in. Xavier/Glorot (2010) balances forward and backward variance for tanh/sigmoid:
Var(w) = 2 / (fan_in + fan_out). "Uniform" variants draw from U(-b, b) with b = sqrt(3 Var).
All functions return float32 NumPy arrays; move them to a device with Module.to().
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np

_rng = np.random.default_rng(0)


def manual_seed(seed: int) -> None:
    """Reset the generator that initialisers use when no ``rng`` is passed."""
    global _rng
    _rng = np.random.default_rng(seed)


def _generator(rng: Optional[np.random.Generator]) -> np.random.Generator:
    return rng if rng is not None else _rng


def fans(shape: Sequence[int]) -> tuple:
    """(fan_in, fan_out) of a Linear (out, in) or conv (out, in, KH, KW) weight shape."""
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def kaiming_uniform(shape: Sequence[int], gain: float = math.sqrt(2.0), rng: Optional[np.random.Generator] = None) -> np.ndarray:
    """U(-b, b) with b = gain * sqrt(3 / fan_in). gain sqrt(2) suits ReLU."""
    bound = gain * math.sqrt(3.0 / fans(shape)[0])
    return _generator(rng).uniform(-bound, bound, size=tuple(shape)).astype(np.float32)


def kaiming_normal(shape: Sequence[int], gain: float = math.sqrt(2.0), rng: Optional[np.random.Generator] = None) -> np.ndarray:
    """N(0, gain^2 / fan_in)."""
    std = gain / math.sqrt(fans(shape)[0])
    return (_generator(rng).standard_normal(tuple(shape)) * std).astype(np.float32)


def xavier_uniform(shape: Sequence[int], gain: float = 1.0, rng: Optional[np.random.Generator] = None) -> np.ndarray:
    """U(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = fans(shape)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return _generator(rng).uniform(-bound, bound, size=tuple(shape)).astype(np.float32)


def xavier_normal(shape: Sequence[int], gain: float = 1.0, rng: Optional[np.random.Generator] = None) -> np.ndarray:
    """N(0, gain^2 * 2 / (fan_in + fan_out))."""
    fan_in, fan_out = fans(shape)
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    return (_generator(rng).standard_normal(tuple(shape)) * std).astype(np.float32)


def uniform_bias(fan_in: int, size: int, rng: Optional[np.random.Generator] = None) -> np.ndarray:
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)), PyTorch's default for biases."""
    bound = 1.0 / math.sqrt(fan_in)
    return _generator(rng).uniform(-bound, bound, size=size).astype(np.float32)


def random_like(name: str, shape: Sequence[int], rng: np.random.Generator) -> np.ndarray:
    """A random float32 value for the parameter ``name`` of a trained network with batch norm:
    He-normal weights (std sqrt(2 / fan_in)), and BatchNorm statistics and scales of order one, so that
    activations keep a plausible size through the network (what tests, runs without a download and the
    randomisation checks of attribution maps need)."""
    if name.endswith("running_var"):
        value = rng.uniform(0.5, 2.0, shape)
    elif name.endswith("running_mean") or name.endswith("bias"):
        value = rng.normal(0.0, 0.1, shape)
    elif len(shape) == 1:  # BatchNorm scale
        value = rng.uniform(0.5, 1.5, shape)
    else:
        value = rng.normal(0.0, math.sqrt(2.0 / int(np.prod(shape[1:]))), shape)
    return value.astype(np.float32)
