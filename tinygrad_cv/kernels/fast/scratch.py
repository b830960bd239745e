"""Work buffers that a thread keeps from one call of a fast kernel to the next.

A kernel's temporaries (Winograd's transformed tiles, say) have the same few sizes on every call.
Allocating them afresh each time costs more than it seems: the C library hands big freed blocks back
to the operating system, and the next allocation of that size page-faults its memory in again, pages
the kernel must zero first (PERFORMANCE.md has what that cost). So each thread keeps one buffer per
name, grown when a call needs more, and a kernel takes views of it.

A view is valid until the same thread asks for the same name again: a kernel must not keep one past
its call, nor hand one to its caller.
"""
from __future__ import annotations

import math
import threading
from typing import Any, Tuple

import numpy as np

_local = threading.local()  # .buffers: {(name, dtype): 1-D array}


def work_buffer(name: str, shape: Tuple[int, ...], dtype: Any) -> np.ndarray:
    """An uninitialised C-contiguous array of ``shape``: a view of this thread's buffer ``name``."""
    buffers = _local.__dict__.setdefault("buffers", {})
    dtype, size = np.dtype(dtype), math.prod(shape)
    buffer = buffers.get((name, dtype))
    if buffer is None or buffer.size < size:
        buffer = buffers[(name, dtype)] = np.empty(size, dtype=dtype)
    return buffer[:size].reshape(shape)
