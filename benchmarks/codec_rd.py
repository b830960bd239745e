"""Rate-distortion on the MNIST test digits: the autoencoder codec against PCA and JPEG.

    python benchmarks/codec_rd.py [--codes 32 64] [--epochs 5] [--out runs/codec]

Trains one dense autoencoder (784-512-k-512-784, MSE, Adam 1e-3, batch 128) per code size k on the
60,000 training digits, fits PCA with the same k, and runs both through the same pipeline of
models/codec.py (standardise, uniform quantiser, LZMA over the symbols, decode) for a range of steps;
JPEG (Pillow) codes the 10,000 test digits tiled into one image over its quality range. Writes
rate_distortion.png (every point, and each method's upper envelope), rate_distortion.json (all points
and the largest gain of the autoencoder over JPEG at equal rate in 0.1-0.5 bpp) into --out, and prints
a table. Bits are the compressed bytes times 8 over the 7,840,000 test pixels.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import List

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout, uninstalled

from models import codec  # noqa: E402
from models.autoencoder import DenseAutoencoder, encode, map_batches, train_step  # noqa: E402
from tinygrad_cv import optim  # noqa: E402
from tinygrad_cv.data import DataLoader, load_split  # noqa: E402
from tinygrad_cv.pca import fit_pca  # noqa: E402

STEPS = (0.02, 0.03, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5)  # quantiser steps in standard deviations
QUALITIES = (1, 3, 5, 8, 10, 15, 20, 30, 50, 75, 90)


def train_dense(train_images: np.ndarray, k: int, epochs: int, hidden: int = 512, seed: int = 0) -> DenseAutoencoder:
    from tqdm import tqdm

    rng = np.random.default_rng(seed)
    model = DenseAutoencoder((1, 28, 28), (hidden,), k, rng=rng)
    opt = optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(train_images, batch_size=128, seed=seed)
    with tqdm(total=epochs * len(loader), desc=f"dense AE, code {k}", unit="batch", file=sys.stderr) as bar:
        for epoch in range(epochs):
            for (x,) in loader.batches(epoch):
                train_step(model, opt, x)
                bar.update(1)
    return model


def autoencoder_points(model: DenseAutoencoder, train_images: np.ndarray, test_images: np.ndarray,
                       steps=STEPS) -> List[codec.RatePoint]:
    train_codes = encode(model, train_images)
    return [codec.transform_codec_point("autoencoder", lambda x: encode(model, x),
                                        lambda z: map_batches(model, model.decode, z), train_codes, test_images, s)
            for s in steps]


def pca_points(train_images: np.ndarray, test_images: np.ndarray, k: int, steps=STEPS) -> List[codec.RatePoint]:
    pca = fit_pca(train_images.astype(np.float64), k)
    enc = lambda x: pca.encode(x.reshape(len(x), -1))  # noqa: E731
    dec = lambda z: pca.decode(z).reshape(-1, 1, 28, 28)  # noqa: E731
    return [codec.transform_codec_point("PCA", enc, dec, enc(train_images), test_images, s) for s in steps]


def plot(points: List[codec.RatePoint], path: Path, title: str) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot(1, 1, 1)
    for method, colour in (("autoencoder", "C0"), ("PCA", "C1"), ("JPEG", "C2")):
        mine = [p for p in points if p.method == method]
        ax.scatter([p.bpp for p in mine], [p.psnr for p in mine], s=10, color=colour, alpha=0.4)
        env = codec.upper_envelope(mine)
        ax.plot([p.bpp for p in env], [p.psnr for p in env], "-", color=colour, label=method)
    ax.axvspan(0.1, 0.5, color="grey", alpha=0.08, label="0.1-0.5 bpp")
    ax.set(xlabel="bits per pixel (compressed bytes x 8 / pixels)", ylabel="PSNR (dB)", xscale="log", title=title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--codes", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--out", default="runs/codec")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    train, test = load_split("mnist")
    points: List[codec.RatePoint] = [codec.jpeg_point(test.images, q) for q in QUALITIES]
    started = time.perf_counter()
    for k in args.codes:
        model = train_dense(train.images, k, args.epochs)
        model.save(str(out / f"dense_{k}.npz"))
        points += autoencoder_points(model, train.images, test.images)
        points += pca_points(train.images, test.images, k)
    gain = codec.best_gain([p for p in points if p.method == "autoencoder"], [p for p in points if p.method == "JPEG"])
    for p in sorted(points, key=lambda p: (p.method, p.bpp)):
        print(f"{p.method:>12} {p.setting:>18}: {p.bpp:.3f} bpp, {p.psnr:.2f} dB")
    print(f"largest gain of the autoencoder over JPEG at equal rate in 0.1-0.5 bpp: {gain['gain_db']:+.2f} dB "
          f"at {gain['bpp']:.3f} bpp ({time.perf_counter() - started:.0f} s of training and coding)")
    plot(points, out / "rate_distortion.png", "MNIST test digits: autoencoder codec vs PCA vs JPEG")
    (out / "rate_distortion.json").write_text(json.dumps(
        {"points": [dataclasses.asdict(p) for p in points], "gain_over_jpeg": gain, "epochs": args.epochs,
         "codes": args.codes}, indent=2) + "\n")
    print(f"saved {out / 'rate_distortion.png'} and {out / 'rate_distortion.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
