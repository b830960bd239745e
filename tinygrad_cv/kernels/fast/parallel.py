"""Cut a kernel's work into independent blocks and run them on every core at once.

A BLAS library parallelises each matrix product on its own: every call is split across the cores,
and returns when the last core is done. That suits a few big products. The fast convolutions make
hundreds of modest ones per layer, with bias, ReLU and Winograd's transforms in between, which NumPy
runs on one core. So instead the kernels cut their output into blocks that need no coordination (rows
of the image, bands of Winograd tiles, kernel taps) and give them to one thread per core:

- NumPy releases Python's global interpreter lock inside matrix products and elementwise loops, so
  the threads really compute at the same time, products and elementwise work alike;
- BLAS is asked to use a single thread meanwhile (through threadpoolctl), so that the two levels of
  parallelism do not fight over the cores;
- a thread that falls behind (another program wants its core) simply takes fewer blocks. Nobody waits
  for it before the very last block, where a BLAS call that splits every product waits at every call
  (PERFORMANCE.md has what that cost on a busy machine).

Without threadpoolctl (it comes with scikit-learn) or with a single core, blocks run one after the
other and BLAS parallelises each product itself, as usual.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterable, List, Optional

_state = threading.local()  # .inside: this thread is already running a block
_executor: Optional[ThreadPoolExecutor] = None
_blas_controller: Any = None


def workers() -> int:
    """The number of cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def parallel_map(fn: Callable[[Any], Any], blocks: Iterable[Any]) -> List[Any]:
    """[fn(block) for block in blocks], computed by one thread per core; results in order.

    Blocks must be independent (write disjoint parts of the output). A call from inside a block
    runs its blocks one after the other (no nested thread pools).
    """
    blocks = list(blocks)
    controller = _controller()
    if len(blocks) < 2 or workers() < 2 or controller is None or getattr(_state, "inside", False):
        return [fn(block) for block in blocks]
    with controller.limit(limits=1, user_api="blas"):
        return list(_pool().map(lambda block: _run(fn, block), blocks))


def split(start: int, stop: int, size: int, at_least: int = 0) -> List[range]:
    """[start, stop) cut into consecutive ranges of about ``size`` (fewer than ``size`` at the end),
    and into at least ``at_least`` ranges when there are that many elements (so that every core gets
    some of a small layer)."""
    total = max(stop - start, 0)
    if at_least and total:
        size = min(size, -(-total // at_least))
    size = max(size, 1)
    return [range(lo, min(lo + size, stop)) for lo in range(start, stop, size)]


def _run(fn: Callable[[Any], Any], block: Any) -> Any:
    _state.inside = True
    try:
        return fn(block)
    finally:
        _state.inside = False


def _pool() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=workers(), thread_name_prefix="tinygrad_cv")
    return _executor


def _forget_pool() -> None:
    """In a child made by fork the pool's threads do not exist: start a new pool when needed."""
    global _executor
    _executor = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def _controller() -> Any:
    """threadpoolctl's controller of the loaded BLAS libraries, or None without threadpoolctl."""
    global _blas_controller
    if _blas_controller is None:
        try:
            from threadpoolctl import ThreadpoolController  # noqa: PLC0415 - optional
        except ImportError:
            _blas_controller = False
        else:
            _blas_controller = ThreadpoolController()
    return _blas_controller or None
