"""Anomaly mode: find the first operation whose output or gradient became NaN or inf.

Off by default, since it costs one ``isfinite`` pass per op. When a loss turns NaN, wrap the step:

    with tg.detect_anomaly():
        loss = model(x).mean()      # raises AnomalyError naming the first op that made NaN/inf
        loss.backward()             # likewise for the backward pass
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator, Sequence

from tinygrad_cv import backend

_enabled = False


class AnomalyError(FloatingPointError):
    """A forward or backward value became NaN or inf while detect_anomaly() was on."""


@contextlib.contextmanager
def detect_anomaly() -> Iterator[None]:
    """Check every forward output and every backward gradient for NaN/inf; raise naming the op."""
    global _enabled
    previous, _enabled = _enabled, True
    try:
        yield
    finally:
        _enabled = previous


def enabled() -> bool:
    return _enabled


def check_finite(arrays: Sequence[Any], op: str, where: str, inputs: Sequence[Any]) -> None:
    """Raise AnomalyError naming ``op.where`` and the shapes if any of ``arrays`` holds NaN or inf."""
    for array in arrays:
        if array is None:
            continue
        xp = backend.get_array_module(array)
        if bool(xp.isfinite(array).all()):
            continue
        bad = "NaN" if bool(xp.isnan(array).any()) else "inf"
        shapes = ", ".join(str(tuple(getattr(a, "shape", ()))) for a in inputs if a is not None)
        raise AnomalyError(f"{op}.{where} produced {bad} (output shape {tuple(array.shape)}; input shapes {shapes})")
