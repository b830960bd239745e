"""The one switch between the reference path of every op and its CPU fast path.

Each op whose speed matters has two implementations: the reference (``functional/conv.py`` over
``kernels/``, the code a student reads first) and a fast one (``functional/*_fast.py`` over
``kernels/fast/``), tested against it. The op's lowercase wrapper picks one in a single visible line,
asking ``enabled()`` here. Fast paths are on by default; turn them off to run the reference:

    with tg.fast_paths(False):      # every op on its reference path
        loss = model(x).sum()

    @tg.fast_paths(False)           # the same, for a whole function
    def reference_step(): ...
"""
from __future__ import annotations

import contextlib
from typing import Iterator

_enabled = True


@contextlib.contextmanager
def fast_paths(enabled: bool) -> Iterator[None]:
    """Switch the CPU fast paths on or off inside a ``with`` block (or a decorated function)."""
    global _enabled
    previous, _enabled = _enabled, bool(enabled)
    try:
        yield
    finally:
        _enabled = previous


def enabled() -> bool:
    """Whether ops may take their fast path now."""
    return _enabled
