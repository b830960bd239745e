"""The three ways kernels/fast/depthwise.py computes a depthwise forward pass, on EfficientNet-Lite0's
16 depthwise layers at 224 px, one after the other in the same run:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_depthwise.py [--repeats 30]

- taps:    one multiply and one add of a strided view per kernel tap (two passes over the output each);
- rows:    one einsum over rows of the padded input (stride 1 along the width only);
- windows: one einsum over (OH, OW, C, KH, KW) windows, an inner loop of C numbers;
- chosen:  what ``depthwise_forward`` takes (the stride-2 layers get their SAME padding beforehand,
           as the model does, so their input is a padded channels-last array).
Each cell is the median of --repeats calls on random float32 data; every path's output is checked
against the taps path.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Callable, List, Tuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout, uninstalled


def lite0_depthwise_layers(side: int = 224) -> List[Tuple[int, int, int, int]]:
    """(channels, input side, kernel, stride) of each depthwise layer, the input side after SAME padding."""
    from models.efficientnet import STAGES, STEM_CHANNELS, same_padding

    layers, size, channels = [], math.ceil(side / 2), STEM_CHANNELS
    for repeats, kernel, stride, expand, out in STAGES:
        for r in range(repeats):
            s = stride if r == 0 else 1
            hidden = channels * expand
            if s == 1:
                layers.append((hidden, size, kernel, 1))
            else:
                layers.append((hidden, size + sum(same_padding(size, kernel, s)), kernel, s))
            size, channels = math.ceil(size / s), out
    return layers


def median_ms(fn: Callable[[], np.ndarray], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1e3


def main() -> None:
    from tinygrad_cv.kernels.fast import depthwise
    from tinygrad_cv.kernels.geometry import Window

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    # As inside a running network: glibc hands out big arrays from fresh pages (mmap) until one that
    # size has been freed, then from memory it keeps. Fresh pages cost a page fault each, which made
    # the first layers here 3-4x slower than in the model.
    np.ones(2**24, np.uint8)
    rng = np.random.default_rng(0)
    totals = {"taps": 0.0, "rows": 0.0, "windows": 0.0, "chosen": 0.0}
    print("| layer | taps ms | rows ms | windows ms | chosen ms |\n|---|---|---|---|---|")
    for C, side, kernel, stride in lite0_depthwise_layers():
        padding = (kernel - 1) // 2 if stride == 1 else 0
        x = rng.standard_normal((1, side, side, C), dtype=np.float32).transpose(0, 3, 1, 2)  # channels-last
        w, b = rng.standard_normal((C, 1, kernel, kernel), dtype=np.float32), rng.standard_normal(C, dtype=np.float32)
        win = Window.of(kernel, stride, padding)
        out_hw = win.output_size(x.shape)
        paths = {"taps": lambda: depthwise.forward_taps(x, w, b, win, out_hw),
                 "rows": (lambda: depthwise.forward_rows(x, w, b, win, out_hw)) if stride == 1 else None,
                 "windows": lambda: depthwise.forward_windows(x, w, b, win, out_hw),
                 "chosen": lambda: depthwise.depthwise_forward(x, w, b, stride, padding)}
        expected = paths["taps"]()
        cells = []
        for name, fn in paths.items():
            if fn is None:
                cells.append("-")
                continue
            np.testing.assert_allclose(fn(), expected, rtol=1e-5, atol=1e-5)
            ms = median_ms(fn, args.repeats)
            totals[name] += ms if name != "rows" else 0.0
            cells.append(f"{ms:.2f}")
        print(f"| {C} x {side}^2, {kernel}x{kernel}, stride {stride} | " + " | ".join(cells) + " |")
    print(f"| all 16 | {totals['taps']:.2f} | (stride 1 only) | {totals['windows']:.2f} | {totals['chosen']:.2f} |")


if __name__ == "__main__":
    main()
