"""The one place where a kernel chooses between its NumPy code and its CUDA code.

Every kernel that has a hand-written GPU version starts with

    gpu = gpu_kernels(x)
    if gpu is not None:
        return gpu.im2col(...)

and continues with its NumPy code. The choice is made from the array type of the input (the device
belongs to the data), and ``kernels/cuda.py`` is imported only when a CuPy array actually arrives, so
nothing here needs CuPy on a machine without a GPU. Kernels written only in terms of ``xp`` (the
array module, NumPy or CuPy) and matrix products need no dispatch at all.
"""
from __future__ import annotations

from types import ModuleType
from typing import Any, Optional

from tinygrad_cv import backend


def gpu_kernels(x: Any) -> Optional[ModuleType]:
    """``tinygrad_cv.kernels.cuda`` when ``x`` is a CuPy array, else None (use the NumPy code)."""
    if not backend.is_cupy_array(x):
        return None
    from tinygrad_cv.kernels import cuda  # noqa: PLC0415 - lazy: compiles CUDA code on first use

    return cuda
