"""Page faults and system time per training step, with and without glibc keeping freed memory.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/page_faults.py
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE TINYGRAD_CV_KEEP_FREED_MEMORY=0 python benchmarks/page_faults.py

Trains, in this fresh process and nothing else before it, the conv autoencoder of lesson 06 and
``ae train`` (3x3 convolutions, max pooling, upsampling) and then case (c)'s strided one (or one of
them: --only), both on batches of 128 random 28x28 images, and prints each one's median step time, minor page faults and
system time per step (after a few warm-up steps). The setting is made at import
(kernels/fast/scratch.py, ``keep_freed_memory``); the second command leaves glibc's defaults.
"""
from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout, uninstalled
sys.path.insert(0, str(Path(__file__).resolve().parent))  # run.py (case (c)'s model)


def measure(name: str, step: Callable[[], object], steps: int) -> None:
    for _ in range(3):
        step()
    before, times = resource.getrusage(resource.RUSAGE_SELF), []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    after = resource.getrusage(resource.RUSAGE_SELF)
    print(f"{name}: median step {np.median(times) * 1e3:.1f} ms, "
          f"{(after.ru_minflt - before.ru_minflt) / steps:.0f} page faults and "
          f"{(after.ru_stime - before.ru_stime) / steps * 1e3:.1f} ms of system time per step")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--only", choices=("lesson", "c"), help="train only one of the two (each alone in the process)")
    args = parser.parse_args()
    from models.autoencoder import build_autoencoder, train_step
    from run import strided_conv_autoencoder
    from tinygrad_cv import optim
    from tinygrad_cv.kernels.fast import scratch

    print(f"glibc told to keep freed memory: {bool(scratch.KEEPS_FREED_MEMORY)}")
    rng = np.random.default_rng(0)
    x = rng.random((128, 1, 28, 28), dtype=np.float32)
    models = {"lesson": ("lesson 06's conv autoencoder", lambda: build_autoencoder("conv", (1, 28, 28), rng=rng)),
              "c": ("case (c)'s strided conv autoencoder", lambda: strided_conv_autoencoder(rng))}
    for key, (name, build) in models.items():
        if args.only not in (None, key):
            continue
        model = build()
        opt = optim.Adam(model.parameters(), lr=1e-3)
        measure(name, lambda: train_step(model, opt, x), args.steps)


if __name__ == "__main__":
    main()
