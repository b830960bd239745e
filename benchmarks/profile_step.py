"""Where the time of one step goes: cProfile over repeated runs of a benchmark case.

    python benchmarks/profile_step.py --case b --side 256 [--device cuda] [--top 30]

Runs case (a) (VGG16 to conv5_1, forward + backward) or (b) (one style-transfer evaluation) from
benchmarks/run.py a few times to warm up, then --runs times under cProfile, and prints the functions
that take the most time by their own code (tottime). On the GPU a kernel launch returns at once, so
the time shows up where the CPU waits for the GPU (a synchronize, or a copy to the host); what the
profile shows best there is the Python and launch overhead per step.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench  # noqa: E402  (benchmarks/run.py)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--case", choices=("a", "b"), default="b")
    parser.add_argument("--side", type=int, default=256)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    bench.DEVICE = args.device
    from models.vgg import load_vgg

    model = load_vgg("vgg16", weights="random", seed=0).to(args.device)
    if args.case == "a":
        step = bench.case_vgg(model, args.side)[0][0]
    else:
        step = bench.ours_style_eval(model, args.side)
    for _ in range(3):
        step()
    bench.synchronize()
    start = time.perf_counter()
    for _ in range(args.runs):
        step()
    bench.synchronize()
    plain = (time.perf_counter() - start) / args.runs
    if args.device == "cuda":  # CPU time of the launches against the GPU's own time, per step
        from cupyx.profiler import benchmark

        print(benchmark(step, n_repeat=args.runs, n_warmup=1, name=f"case ({args.case}) {args.side} px"))
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(args.runs):
        step()
    bench.synchronize()
    profiler.disable()
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text).sort_stats("tottime")
    stats.print_stats(args.top)
    print(f"case ({args.case}) at {args.side} px on {args.device}: {plain * 1e3:.2f} ms per step without the "
          f"profiler; {stats.total_calls / args.runs:.0f} Python calls per step")
    print(text.getvalue())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
