"""Seconds per training epoch of the autoencoders on the digits, next to PyTorch CPU on the same model.

Run (NumPy's BLAS at full speed; the two variables are unset for the benchmark only):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_autoencoder.py [--model conv|dense] [--epochs 3]

Both frameworks train the same network from the same initial weights (copied into PyTorch) on the
same batches with Adam: the 1,438 training digits of the fixed split, batch 32 (45 steps an epoch).
Printed per framework: the median seconds per epoch over --epochs epochs (after one warm-up epoch
that is not counted), and the held-out MSE after them, which should agree to a few digits since
the arithmetic is the same up to float32 rounding. PyTorch runs with as many threads as NumPy's BLAS.
On a machine that is busy with other work, add OPENBLAS_NUM_THREADS=1 (PyTorch then gets one
thread too): OpenBLAS threads that wait for a busy core can make the small GEMMs of this model
several times slower, and the numbers stop meaning anything.
torch is only a reference here; tinygrad_cv never imports it.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, List

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout, uninstalled

from models.autoencoder import build_autoencoder, reconstruction_mse, train_step  # noqa: E402
from tinygrad_cv import nn, optim  # noqa: E402
from tinygrad_cv.data import DataLoader, load_split  # noqa: E402
from tinygrad_cv.nn.conv import Conv2d, MaxPool2d, Upsample, UpsampleConv2d  # noqa: E402

try:
    import torch
except ImportError:
    torch = None


def torch_copy(model: nn.Module) -> "torch.nn.Module":
    """The same layers in PyTorch, with our weights copied in (the layouts are PyTorch's already)."""
    def half(seq: nn.Sequential) -> "torch.nn.Sequential":
        layers = []
        for layer in seq.layers:
            if isinstance(layer, nn.Linear):
                t = torch.nn.Linear(layer.in_features, layer.out_features, bias=layer.bias is not None)
            elif isinstance(layer, UpsampleConv2d):  # the pair it computes in one layer
                conv = torch.nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, 1, layer.padding)
                for name, p in conv.named_parameters():
                    p.data = torch.from_numpy(getattr(layer, name).data.copy())
                layers += [torch.nn.Upsample(scale_factor=layer.scale_factor, mode="nearest"), conv]
                continue
            elif isinstance(layer, Conv2d):
                t = torch.nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride, layer.padding)
            elif isinstance(layer, MaxPool2d):
                t = torch.nn.MaxPool2d(layer.kernel_size, layer.stride)
            elif isinstance(layer, Upsample):
                t = torch.nn.Upsample(scale_factor=layer.scale_factor, mode="nearest")
            elif isinstance(layer, nn.Unflatten):
                t = torch.nn.Unflatten(1, layer.shape)
            else:
                t = {nn.ReLU: torch.nn.ReLU, nn.Sigmoid: torch.nn.Sigmoid, nn.Flatten: torch.nn.Flatten}[type(layer)]()
            for name, p in t.named_parameters():
                p.data = torch.from_numpy(getattr(layer, name).data.copy())
            layers.append(t)
        return torch.nn.Sequential(*layers)

    return torch.nn.Sequential(half(model.encoder), half(model.decoder))


def epoch_times(run_epoch: Callable[[int], None], epochs: int) -> List[float]:
    """Seconds of epochs 1..epochs; epoch 0 is a warm-up (allocations, caches) and not counted."""
    run_epoch(0)
    times = []
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        run_epoch(epoch)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("conv", "dense"), default="conv")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--code", type=int, default=8)
    args = parser.parse_args()

    train, held_out = load_split("digits")
    loader = DataLoader(train.images, batch_size=args.batch_size, seed=0)
    ours = build_autoencoder(args.model, train.image_shape, args.code, rng=np.random.default_rng(0))
    reference = torch_copy(ours) if torch is not None else None  # copied before any training step
    opt = optim.Adam(ours.parameters(), lr=3e-3)

    def ours_epoch(epoch: int) -> None:
        for (x,) in loader.batches(epoch):
            train_step(ours, opt, x)

    threads = os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS") or str(os.cpu_count())
    print(f"{args.model} autoencoder, digits, batch {args.batch_size}, {len(loader)} steps an epoch, "
          f"{threads} threads; median of {args.epochs} epochs after a warm-up epoch")
    t = epoch_times(ours_epoch, args.epochs)
    ours_s = statistics.median(t)
    print(f"  tinygrad_cv : {ours_s:.3f} s/epoch, held-out MSE after {args.epochs + 1} epochs "
          f"{reconstruction_mse(ours, held_out.images):.5f}")
    if reference is None:
        print("  PyTorch     : not installed (reference only)")
        return
    torch.set_num_threads(int(threads))
    torch_opt = torch.optim.Adam(reference.parameters(), lr=3e-3)

    def torch_epoch(epoch: int) -> None:
        for (x,) in loader.batches(epoch):
            xb = torch.from_numpy(x)
            torch_opt.zero_grad()
            loss = torch.nn.functional.mse_loss(reference(xb), xb)
            loss.backward()
            torch_opt.step()

    torch_s = statistics.median(epoch_times(torch_epoch, args.epochs))
    with torch.no_grad():
        xt = torch.from_numpy(held_out.images)
        mse = float(((reference(xt) - xt) ** 2).mean())
    print(f"  PyTorch {torch.__version__}: {torch_s:.3f} s/epoch, held-out MSE after {args.epochs + 1} epochs {mse:.5f}")
    print(f"  ratio (ours / PyTorch): {ours_s / torch_s:.1f}x")


if __name__ == "__main__":
    main()
