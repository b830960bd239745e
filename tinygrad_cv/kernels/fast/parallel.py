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

The calling thread works too: it posts the blocks as a job, wakes the helper threads (one per other
core), and takes blocks itself until none is left; a helper that wakes late finds fewer or none.
concurrent.futures' pool, which this replaced, made the caller wait while a future per block was
handed to a sleeping thread: 0.34 ms for a call of four empty blocks, paid by every fast kernel
(PERFORMANCE.md).
"""
from __future__ import annotations

import os
import threading
from typing import Any, Callable, Iterable, List, Optional

_state = threading.local()  # .inside: this thread is already running a block
_team: Optional["_Team"] = None
_blas_controller: Any = None


def workers() -> int:
    """The number of cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def parallel_map(fn: Callable[[Any], Any], blocks: Iterable[Any]) -> List[Any]:
    """[fn(block) for block in blocks], computed by this thread and one helper per other core; results
    in order. The first exception a block raises is raised here, after every block has finished.

    Blocks must be independent (write disjoint parts of the output). A call from inside a block
    runs its blocks one after the other (no nested parallelism).
    """
    blocks = list(blocks)
    controller = _controller()
    if len(blocks) < 2 or workers() < 2 or controller is None or getattr(_state, "inside", False):
        return [fn(block) for block in blocks]
    with controller.limit(limits=1, user_api="blas"):
        job, team = _Job(fn, blocks), _the_team()
        team.post(job)
        job.work()
        job.finished.wait()
        team.retire(job)  # no thread keeps the job (and what its blocks refer to) past this call
    if job.error is not None:
        raise job.error
    return job.results


def split(start: int, stop: int, size: int, at_least: int = 0) -> List[range]:
    """[start, stop) cut into consecutive ranges of about ``size`` (fewer than ``size`` at the end),
    and into at least ``at_least`` ranges when there are that many elements (so that every core gets
    some of a small layer)."""
    total = max(stop - start, 0)
    if at_least and total:
        size = min(size, -(-total // at_least))
    size = max(size, 1)
    return [range(lo, min(lo + size, stop)) for lo in range(start, stop, size)]


def split_evenly(start: int, stop: int, size: int) -> List[range]:
    """[start, stop) cut into ranges of at most about ``size``, as many as a multiple of the cores
    and of sizes that differ by one at most: every core gets the same share of the work (bands of
    8, 8 and 5 rows on two cores would leave one core idle for a third of the time)."""
    total, cores = max(stop - start, 0), workers()
    pieces = max(1, -(-total // max(size, 1)))  # enough for ranges of at most ``size``
    pieces = min(total, -(-pieces // cores) * cores)  # rounded up to a multiple of the cores
    bounds = [start + total * i // max(pieces, 1) for i in range(pieces + 1)]
    return [range(lo, hi) for lo, hi in zip(bounds, bounds[1:])]


class _Job:
    """One call's blocks; whichever thread is free claims the next one (under a lock)."""

    def __init__(self, fn: Callable[[Any], Any], blocks: List[Any]) -> None:
        self.fn, self.blocks, self.results = fn, blocks, [None] * len(blocks)
        self.count, self.claimed, self.unfinished = len(blocks), 0, len(blocks)
        self.error: Optional[BaseException] = None
        self.lock, self.finished = threading.Lock(), threading.Event()

    def work(self) -> None:
        """Run unclaimed blocks until there are none."""
        while True:
            with self.lock:
                i = self.claimed
                if i == self.count:
                    return
                self.claimed = i + 1
                fn, block = self.fn, self.blocks[i]
            _state.inside = True
            try:
                self.results[i] = fn(block)
            except BaseException as error:  # noqa: BLE001 - handed to the caller
                self.error = self.error or error
            finally:
                _state.inside = False
            with self.lock:
                self.unfinished -= 1
                if self.unfinished == 0:
                    self.fn = self.blocks = None  # a helper that wakes late must not keep them alive
                    self.finished.set()


class _Team:
    """Helper threads that sleep until a job is posted, then work on it."""

    def __init__(self, helpers: int) -> None:
        self.job: Optional[_Job] = None
        self.posted = threading.Condition()
        self.generation = 0
        for k in range(helpers):
            threading.Thread(target=self._loop, name=f"tinygrad_cv_{k}", daemon=True).start()

    def post(self, job: _Job) -> None:
        with self.posted:
            self.job, self.generation = job, self.generation + 1
            self.posted.notify_all()

    def retire(self, job: _Job) -> None:
        with self.posted:
            if self.job is job:
                self.job = None

    def _loop(self) -> None:
        seen = 0
        while True:
            with self.posted:
                while self.generation == seen:
                    self.posted.wait()
                seen, job = self.generation, self.job
            if job is not None:
                job.work()
            job = None


def _the_team() -> _Team:
    global _team
    if _team is None:
        _team = _Team(workers() - 1)
    return _team


def _forget_team() -> None:
    """In a child made by fork the helper threads do not exist: start new ones when needed."""
    global _team
    _team = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_team)


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
