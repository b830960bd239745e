"""Weights in the form a fast kernel computes with, kept while the weights stay what they were.

The fast 3x3 convolution first rearranges its weights: one (3*C, O) matrix per kernel row
(conv3x3.py) or Winograd's transformed filters (winograd.py), for the forward pass and for the
input gradient. For a frozen network (style transfer optimises the pixels, never VGG's weights)
that is the same work on every call, about 5% of a VGG step; so it is done once per weight array
and kept.

Kept, but never trusted blindly: an array can be written in place (an optimiser's ``p.data -= ...``,
a loaded state dict, a student's experiment). Each entry holds a private copy of the weights it was
made from, and a call uses the entry only if the array is the same object with the same bits; else
the weights are prepared again. Comparing is one read of the weights and of the copy, several times
cheaper than preparing them. An entry goes when its weight array is garbage-collected.
"""
from __future__ import annotations

import weakref
from typing import Any, Callable, Dict, Tuple

import numpy as np

from tinygrad_cv.kernels.fast.parallel import parallel_map

COMPARE_CHUNK = 2**18  # elements compared at a time, one chunk per core (no weight-sized temporary)


class PreparedWeights:
    """``cache(w)`` is ``prepare(w)``, from the last call on the same unchanged array if there was one."""

    def __init__(self, prepare: Callable[[np.ndarray], Any]) -> None:
        self.prepare = prepare
        self.entries: Dict[int, Tuple[weakref.ref, np.ndarray, Any]] = {}

    def __call__(self, w: np.ndarray) -> Any:
        entry = self.entries.get(id(w))
        if entry is not None and entry[0]() is w and same_bits(entry[1], w):
            return entry[2]
        prepared, key, entries = self.prepare(w), id(w), self.entries

        def forget(_: weakref.ref) -> None:  # w was garbage-collected
            entries.pop(key, None)

        entries[key] = (weakref.ref(w, forget), w.copy(), prepared)
        return prepared

    def clear(self) -> None:
        self.entries.clear()


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two arrays have the same shape, dtype and bytes (so NaN equals itself, -0.0 != 0.0)."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    as_ints = np.dtype(f"u{a.dtype.itemsize}")
    if not (a.flags.c_contiguous and b.flags.c_contiguous):
        return bool(np.array_equal(a.view(as_ints), b.view(as_ints)))
    a, b = a.reshape(-1).view(as_ints), b.reshape(-1).view(as_ints)
    return all(parallel_map(lambda i: np.array_equal(a[i:i + COMPARE_CHUNK], b[i:i + COMPARE_CHUNK]),
                            range(0, a.size, COMPARE_CHUNK)))
