"""Work buffers that a thread keeps from one call of a fast kernel to the next, and the C library's
threshold for keeping freed memory.

A kernel's temporaries (Winograd's transformed tiles, say) have the same few sizes on every call.
Allocating them afresh each time costs more than it seems: the C library hands big freed blocks back
to the operating system, and the next allocation of that size page-faults its memory in again, pages
the kernel must zero first (PERFORMANCE.md has what that cost). So each thread keeps one buffer per
name, grown when a call needs more, and a kernel takes views of it.

A view is valid until the same thread asks for the same name again: a kernel must not keep one past
its call, nor hand one to its caller.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import math
import os
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


def keep_freed_memory(trim_bytes: int = 256 * 2**20) -> bool:
    """Have glibc keep freed memory for the next arrays instead of handing it back to the system.

    glibc serves a block of 128 KB or more from fresh pages (mmap) and gives them back when it is
    freed; it raises that limit to the biggest block it has seen freed (up to 32 MB), and it hands
    the top of its heap back whenever more than twice the limit lies free there. A training loop frees
    most of its arrays at the end of every step, so the next step page-faults its memory in again, a
    page at a time, each page zeroed first: lesson 06's conv autoencoder faulted about 9,000 times a
    step (32-35 ms of system time in a 175 ms step), case (c)'s about 3,000 (PERFORMANCE.md). Here both
    limits are set once (``mallopt``): blocks up to 32 MB from the heap, and up to ``trim_bytes`` kept
    free at its top. It applies to the whole process, and to a PyTorch model in it too.

    Called at import unless the environment sets TINYGRAD_CV_KEEP_FREED_MEMORY=0. Returns whether
    the limits were set (False under a C library other than glibc).
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version  # glibc's: mallopt's parameters below are glibc's
    except (OSError, AttributeError):
        return False
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    return bool(libc.mallopt(M_MMAP_THRESHOLD, 32 * 2**20)) and bool(libc.mallopt(M_TRIM_THRESHOLD, trim_bytes))


KEEPS_FREED_MEMORY = os.environ.get("TINYGRAD_CV_KEEP_FREED_MEMORY", "1") != "0" and keep_freed_memory()
