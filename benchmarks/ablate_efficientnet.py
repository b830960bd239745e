"""What each inference change buys EfficientNet-Lite0's forward pass, switched on and off in one process:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/ablate_efficientnet.py [--rounds 100]

Variants (all with the fast paths on, under ``no_grad``, 224 px, random weights):
- ``op by op``: every MBConv block as its separate ops (the fused block switched off);
- ``fused``: the block as one fused step (kernels/fast/mbconv.py);
- and each of the two with the stride-1 depthwise layers of many channels kept on the rows einsum
  (``WINDOWS_MIN_CHANNELS`` out of reach) instead of the windows einsum.
In every round each variant runs once untimed and once timed, the variants taking turns, so that a
slow moment of the machine falls on all of them; the medians are printed, with each variant's ratio
to the first. Every variant's logits are checked against the first's.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout, uninstalled


def main() -> None:
    from models.efficientnet import MBConv, load_efficientnet
    from tinygrad_cv import Tensor, no_grad
    from tinygrad_cv.kernels.fast import depthwise

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=100)
    args = parser.parse_args()

    model = load_efficientnet(weights="random", seed=0)
    x = Tensor(np.random.default_rng(0).uniform(-1, 1, (1, 3, 224, 224)).astype(np.float32))
    fused_fits, windows = MBConv._fused_fits, depthwise.WINDOWS_MIN_CHANNELS

    def variant(fused: bool, many_channels_windows: bool):
        def run() -> np.ndarray:
            MBConv._fused_fits = fused_fits if fused else (lambda self, x: False)
            depthwise.WINDOWS_MIN_CHANNELS = windows if many_channels_windows else 10**9
            try:
                with no_grad():
                    return model(x).data
            finally:
                MBConv._fused_fits, depthwise.WINDOWS_MIN_CHANNELS = fused_fits, windows
        return run

    variants = {"op by op, rows einsum at stride 1": variant(False, False),
                "op by op, windows from 240 channels": variant(False, True),
                "fused, rows einsum at stride 1": variant(True, False),
                "fused, windows from 240 channels (the default)": variant(True, True)}
    first = None
    for name, run in variants.items():
        logits = run()
        first = logits if first is None else first
        np.testing.assert_allclose(logits, first, rtol=1e-4, atol=1e-4 * np.abs(first).max(), err_msg=name)
    times = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, run in variants.items():
            run()
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    base = float(np.median(times[next(iter(variants))]))
    print(f"EfficientNet-Lite0 forward, 224 px, median of {args.rounds} rounds")
    print("| variant | ms | ratio to the first |\n|---|---|---|")
    for name, ts in times.items():
        print(f"| {name} | {np.median(ts) * 1e3:.2f} | {np.median(ts) / base:.2f} |")


if __name__ == "__main__":
    main()
