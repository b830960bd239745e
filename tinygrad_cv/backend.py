"""Where the arrays live: the one module that imports CuPy.

Everything else asks this module for the array module of its inputs (``xp``), exactly as DeZero does:
``xp = get_array_module(x)`` gives ``numpy`` for NumPy arrays and ``cupy`` for CuPy arrays, so one
piece of array code serves both devices. CuPy is imported lazily, the first time someone asks, and
its absence is not an error until a GPU is really requested.
"""
from __future__ import annotations

import functools
from typing import Any

import numpy as np

_cupy: Any = None  # the cupy module once imported, False when it cannot be imported
_cupy_error: str = ""


def _import_cupy() -> Any:
    """Import cupy once; return the module or None (and remember why not)."""
    global _cupy, _cupy_error
    if _cupy is None:
        try:
            import cupy  # noqa: PLC0415 - the only import of cupy in the project

            _cupy = cupy
        except Exception as exc:  # ImportError, or a broken CUDA install raising at import
            _cupy, _cupy_error = False, f"{type(exc).__name__}: {exc}"
    return _cupy or None


def cupy_module() -> Any:
    """The cupy module, or raise a RuntimeError saying how to install it."""
    cp = _import_cupy()
    if cp is None:
        raise RuntimeError(
            "the 'cuda' device needs CuPy: pip install 'tinygrad_cv[gpu]' (see README, 'GPU') "
            f"[import failed with {_cupy_error}]"
        )
    return cp


def gpu_available() -> bool:
    """True when CuPy imports and sees at least one CUDA device."""
    cp = _import_cupy()
    if cp is None:
        return False
    try:
        return cp.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def gpu_status() -> str:
    """One line for ``tinygrad-cv doctor`` and skip reasons: why the GPU is or is not usable."""
    cp = _import_cupy()
    if cp is None:
        return f"CuPy not importable ({_cupy_error})"
    try:
        count = cp.cuda.runtime.getDeviceCount()
    except Exception as exc:
        return f"CuPy {cp.__version__} imported, but no CUDA device: {exc}"
    name = cp.cuda.runtime.getDeviceProperties(0)["name"]
    name = name.decode() if isinstance(name, bytes) else name
    return f"CuPy {cp.__version__}, {count} device(s), device 0: {name}"


def is_cupy_array(a: Any) -> bool:
    """True for a cupy.ndarray; never imports cupy just to answer no."""
    return type(a).__module__.startswith("cupy")


def get_array_module(*arrays: Any) -> Any:
    """``numpy`` or ``cupy``, whichever owns the arrays (scalars and None are ignored)."""
    for a in arrays:
        if is_cupy_array(a):
            return cupy_module()
    return np


def device_of(a: Any) -> str:
    """'cuda' for a cupy array, 'cpu' for anything else."""
    return "cuda" if is_cupy_array(a) else "cpu"


def constant(value: Any, dtype: Any, device: str) -> Any:
    """A Python scalar, list or array as an array of ``dtype`` on ``device``, for an op's constant
    input. Scalars on the GPU come from a cache (see ``gpu_scalar``); anything else is converted,
    and copied to the GPU when ``device`` is 'cuda' (an array already there stays where it is)."""
    if device == "cuda" and isinstance(value, (int, float)):
        return gpu_scalar(float(value), np.dtype(dtype).str)
    array = get_array_module(value).asarray(value, dtype=dtype)
    return to_device(array, "cuda") if device == "cuda" else array


@functools.lru_cache(maxsize=1024)
def gpu_scalar(value: float, dtype: str) -> Any:
    """A 0-d CuPy array holding ``value``, made once per (value, dtype) and shared afterwards.

    The constants of a loss (its weights, 0.5, 1/N ...) come back at every step. Copying each one
    to the GPU anew costs a host-to-device transfer per op, which at small image sizes takes longer
    than the arithmetic. Ops never write into their inputs, so sharing one array is safe.
    """
    return cupy_module().asarray(np.asarray(value, dtype=dtype))


def to_device(a: Any, device: str) -> Any:
    """Copy (or pass through) an array to 'cpu' or 'cuda'."""
    if device == "cpu":
        return a.get() if is_cupy_array(a) else np.asarray(a)
    if device == "cuda":
        return cupy_module().asarray(a)
    raise ValueError(f"unknown device {device!r}: expected 'cpu' or 'cuda'")
