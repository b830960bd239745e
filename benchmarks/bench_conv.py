"""How fast is our convolution? VGG-shaped layers and the VGG16 conv stack, next to PyTorch CPU.

Run (NumPy's BLAS at full speed; the two variables are unset for the benchmark only):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_conv.py [--size 256]

Prints, for each case, the median time of tinygrad_cv and (when torch is importable) of PyTorch on
the same shapes and the same number of threads, their ratio (ours / torch, lower is better) and the
achieved GFLOP/s next to a measured float32 GEMM GFLOP/s of this machine: the ceiling that an
im2col + GEMM convolution can approach but not pass. Last, the peak memory of one convolution of a
1x64x512x512 input with 64 3x3 filters, forward + backward, against the size of its im2col buffer.

The "VGG16 conv stack" is VGG16's features up to the ReLU after conv5_3: 13 convolutions with ReLU
and the 4 max pools between blocks, weights frozen, backward to the input only (as in style transfer).
torch is only a reference here; tinygrad_cv never imports it.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Callable, List, Optional, Tuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout, uninstalled

import tinygrad_cv.functional as F  # noqa: E402
from tinygrad_cv import Tensor, no_grad  # noqa: E402

try:
    import torch
except ImportError:
    torch = None

VGG16 = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512]
# (C_in, C_out, side at a 256x256 input): one layer per distinct VGG shape, scaled with --size.
VGG_LAYERS = [(3, 64, 256), (64, 64, 256), (64, 128, 128), (128, 128, 128), (128, 256, 64),
              (256, 256, 64), (256, 512, 32), (512, 512, 32), (512, 512, 16)]


def median_times(fns: List[Optional[Callable[[], object]]], repeats: int) -> List[Optional[float]]:
    """Median wall time of each fn() over ``repeats`` rounds, after one warm-up round.

    The functions take turns within each round (ours, torch, ours, torch, ...), so that a machine
    shared with other work slows both sides alike and the ratio stays fair. None entries stay None.
    """
    live = [fn for fn in fns if fn is not None]
    times: dict = {id(fn): [] for fn in live}
    for round_ in range(repeats + 1):
        for fn in live:
            start = time.perf_counter()
            fn()
            if round_ > 0:
                times[id(fn)].append(time.perf_counter() - start)
    return [statistics.median(times[id(fn)]) if fn is not None else None for fn in fns]


def blas_threads() -> int:
    """Threads NumPy's BLAS uses (threadpoolctl when installed, else the usual environment/CPUs)."""
    try:
        from threadpoolctl import threadpool_info

        infos = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        if infos:
            return int(infos[0]["num_threads"])
    except ImportError:
        pass
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return os.cpu_count() or 1


def gemm_gflops(n: int = 2048, repeats: int = 5) -> float:
    """float32 n x n matrix product through NumPy: the machine's practical ceiling, in GFLOP/s."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((n, n), dtype=np.float32), rng.standard_normal((n, n), dtype=np.float32)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def conv_flops(c_in: int, c_out: int, side: int, k: int = 3) -> float:
    """Multiply-adds x 2 of one 3x3, stride-1, same-size convolution on a batch of one."""
    return 2.0 * c_in * c_out * k * k * side * side


# ---- tinygrad_cv ------------------------------------------------------------------------------------
def ours_layer(c_in: int, c_out: int, side: int) -> Tuple[Callable, Callable]:
    """(forward, forward + backward to input, weight and bias) of one 3x3 conv layer, as callables."""
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((1, c_in, side, side), dtype=np.float32), requires_grad=True)
    w = Tensor(rng.standard_normal((c_out, c_in, 3, 3), dtype=np.float32) * 0.05, requires_grad=True)
    b = Tensor(np.zeros(c_out, np.float32), requires_grad=True)

    def forward():
        with no_grad():
            F.conv2d(x, w, b, padding=1)

    def forward_backward():
        F.conv2d(x, w, b, padding=1).sum().backward()

    return forward, forward_backward


def ours_vgg16(weights: List[Tuple[np.ndarray, np.ndarray]]) -> Callable[[Tensor], Tensor]:
    """Our VGG16 features (frozen weights: plain arrays, no gradient) as a function of the input."""
    def net(x: Tensor) -> Tensor:
        convs = iter(weights)
        for item in VGG16:
            if item == "M":
                x = F.max_pool2d(x, 2)
            else:
                w, b = next(convs)
                x = F.relu(F.conv2d(x, w, b, padding=1))
        return x
    return net


# ---- PyTorch (reference only) -------------------------------------------------------------------
def torch_layer(c_in: int, c_out: int, side: int) -> Tuple[Callable, Callable]:
    x = torch.randn(1, c_in, side, side, requires_grad=True)
    w = (torch.randn(c_out, c_in, 3, 3) * 0.05).requires_grad_()
    b = torch.zeros(c_out, requires_grad=True)

    def forward():
        with torch.no_grad():
            torch.nn.functional.conv2d(x, w, b, padding=1)

    def forward_backward():
        torch.nn.functional.conv2d(x, w, b, padding=1).sum().backward()

    return forward, forward_backward


def torch_vgg16(weights: List[Tuple[np.ndarray, np.ndarray]]):
    layers, convs = [], iter(weights)
    for item in VGG16:
        if item == "M":
            layers.append(torch.nn.MaxPool2d(2))
        else:
            w, b = next(convs)
            conv = torch.nn.Conv2d(w.shape[1], w.shape[0], 3, padding=1)
            conv.weight.data = torch.from_numpy(w.copy())
            conv.bias.data = torch.from_numpy(b.copy())
            layers += [conv, torch.nn.ReLU()]
    net = torch.nn.Sequential(*layers)
    for p in net.parameters():
        p.requires_grad_(False)
    return net


# ---- the report -----------------------------------------------------------------------------------
def row(name: str, flops: float, ours: float, theirs: Optional[float]) -> str:
    ratio = f"{ours / theirs:6.2f}" if theirs else "     -"
    torch_s = f"{theirs:9.4f}" if theirs else "        -"
    torch_gf = f"{flops / theirs / 1e9:8.1f}" if theirs else "       -"
    return f"{name:34s} {ours:9.4f} {torch_s} {ratio} {flops / ours / 1e9:8.1f} {torch_gf}"


def header() -> str:
    return f"{'':34s} {'ours s':>9s} {'torch s':>9s} {'ratio':>6s} {'GFLOP/s':>8s} {'torch':>8s}"


def bench_layers(size: int, repeats: int) -> None:
    print(f"\nVGG-shaped 3x3 convolutions, batch 1 (sides scaled to a {size}x{size} input)")
    print(header())
    for c_in, c_out, side in VGG_LAYERS:
        side = side * size // 256
        flops = conv_flops(c_in, c_out, side)
        fwd, fwd_bwd = ours_layer(c_in, c_out, side)
        t_fwd, t_fwd_bwd = torch_layer(c_in, c_out, side) if torch else (None, None)
        fwd, t_fwd = median_times([fwd, t_fwd], repeats)
        fwd_bwd, t_fwd_bwd = median_times([fwd_bwd, t_fwd_bwd], repeats)
        name = f"{c_in:3d}->{c_out:3d} @ {side}x{side}"
        print(row(name + " fwd", flops, fwd, t_fwd))
        print(row(name + " fwd+bwd (x, w, b)", 3 * flops, fwd_bwd, t_fwd_bwd))


def bench_vgg16(size: int, repeats: int) -> None:
    rng = np.random.default_rng(0)
    weights, c_in, flops, side = [], 3, 0.0, size
    for item in VGG16:
        if item == "M":
            side //= 2
            continue
        std = np.sqrt(2.0 / (9 * c_in))  # He init keeps activations in range through 13 ReLUs
        weights.append(((rng.standard_normal((item, c_in, 3, 3)) * std).astype(np.float32),
                        np.zeros(item, np.float32)))
        flops += conv_flops(c_in, item, side)
        c_in = item
    x0 = rng.random((1, 3, size, size), dtype=np.float32)
    net = ours_vgg16(weights)

    def forward():
        with no_grad():
            return net(Tensor(x0)).numpy()

    def forward_backward():
        x = Tensor(x0, requires_grad=True)
        net(x).sum().backward()

    if torch:
        tnet = torch_vgg16(weights)

        def torch_forward():
            with torch.no_grad():
                return tnet(torch.from_numpy(x0)).numpy()

        def torch_forward_backward():
            x = torch.from_numpy(x0.copy()).requires_grad_()
            tnet(x).sum().backward()

        ours_out, torch_out = forward(), torch_forward()
        diff = np.abs(ours_out - torch_out).max() / np.abs(torch_out).max()
        print(f"\n(same weights: max |ours - torch| / max |torch| = {diff:.1e} on the conv5_3 output)")
    else:
        torch_forward = torch_forward_backward = None
    fwd, t_fwd = median_times([forward, torch_forward], repeats)
    fwd_bwd, t_fwd_bwd = median_times([forward_backward, torch_forward_backward], repeats)
    print(f"\nVGG16 conv stack (13 convs + ReLU + 4 max pools), 1x3x{size}x{size}, weights frozen")
    print(header())
    print(row("forward", flops, fwd, t_fwd))
    print(row("forward + backward to the input", 2 * flops, fwd_bwd, t_fwd_bwd))


def bench_memory(side: int = 512, channels: int = 64) -> None:
    """Peak extra memory (NumPy allocations, via tracemalloc) of one conv forward + backward."""
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((1, channels, side, side), dtype=np.float32), requires_grad=True)
    w = Tensor(rng.standard_normal((channels, channels, 3, 3), dtype=np.float32) * 0.05, requires_grad=True)
    b = Tensor(np.zeros(channels, np.float32), requires_grad=True)
    cols_bytes = channels * 9 * side * side * 4
    tracemalloc.start()
    start = time.perf_counter()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    F.conv2d(x, w, b, padding=1).sum().backward()
    peak = tracemalloc.get_traced_memory()[1] - base
    seconds = time.perf_counter() - start
    tracemalloc.stop()
    print(f"\nPeak memory, conv 1x{channels}x{side}x{side} * {channels}x{channels}x3x3, forward + backward "
          f"(x, w, b), {seconds:.2f} s under tracemalloc:")
    print(f"  im2col buffer {cols_bytes / 2**20:.0f} MiB; peak beyond the inputs {peak / 2**20:.0f} MiB "
          f"= {peak / cols_bytes:.2f}x the buffer (target < 4x)")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=256, help="input side for the VGG cases (default 256)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per case; the median is shown")
    parser.add_argument("--skip-layers", action="store_true", help="only the VGG16 stack and memory")
    parser.add_argument("--skip-memory", action="store_true", help="skip the 512x512 memory measurement")
    args = parser.parse_args(argv)

    threads = blas_threads()
    if torch:
        torch.set_num_threads(threads)
    unset = [v for v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if v in os.environ]
    print(f"NumPy {np.__version__}, BLAS threads {threads}; torch "
          f"{torch.__version__ + f' ({torch.get_num_threads()} threads)' if torch else 'not installed'}")
    if unset:
        print(f"note: {', '.join(unset)} set: NumPy's BLAS may run at reduced speed (see the docstring)")
    print(f"float32 GEMM ceiling (2048^3 through NumPy): {gemm_gflops():.0f} GFLOP/s")
    if not args.skip_layers:
        bench_layers(args.size, args.repeats)
    bench_vgg16(args.size, args.repeats)
    if not args.skip_memory:
        bench_memory()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
