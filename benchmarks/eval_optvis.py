"""Does feature visualisation work? Two measurements on VGG16 with its ImageNet weights.

1. Activation: for 8 channels (drawn with a fixed seed) of each of conv3_1, conv4_1 and conv5_1, the
   mean activation (after the ReLU) of the channel on its visualisation (the final uint8 picture,
   seen without any transform; the optimisation itself maximises the channel before its ReLU, see
   ``optvis.pre_relu``) against the channel's average over natural photos: five 128 px crops of each bundled
   photo (scikit-learn's china.jpg and flower.jpg, and scikit-image's astronaut, chelsea, coffee and
   rocket when scikit-image is installed). The issue asks for a ratio of at least 10.
2. Spectrum: the share of spectral energy above half the Nyquist frequency (0.25 cycles per pixel)
   of the default visualisation (Fourier parametrisation, decorrelated colour, standard transforms)
   against a naive one (raw pixels, RGB, no transforms), for the same channels; photos for scale.

Run (about half an hour on 2 free cores; NumPy's BLAS at full speed):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/eval_optvis.py [--steps 256] [--out runs/eval_optvis]

Writes a markdown table (results.md) and the pictures (one sheet per layer and parametrisation).
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Dict, List

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout, uninstalled

from models.vgg import load_vgg  # noqa: E402
from tinygrad_cv.vision.image import save_image  # noqa: E402
from tinygrad_cv.vision.optvis import (VisSettings, high_frequency_share, mean_channel_activation,  # noqa: E402
                                       visualize_channels)
from tinygrad_cv.vision.samples import CONTENT_PHOTOS, sample_photo  # noqa: E402
from tinygrad_cv.vision.sheets import image_grid  # noqa: E402
from tinygrad_cv.vision.style import fit_longest_side  # noqa: E402

LAYERS = ("conv3_1", "conv4_1", "conv5_1")
SIDE = 128


def natural_photos() -> Dict[str, np.ndarray]:
    photos = {name: sample_photo(name) for name in CONTENT_PHOTOS}
    try:
        import skimage.data
    except ImportError:
        return photos
    for name in ("astronaut", "chelsea", "coffee", "rocket"):
        photos[name] = getattr(skimage.data, name)()
    return photos


def crops(photo: np.ndarray, side: int = SIDE) -> np.ndarray:
    """Five side x side crops (corners and centre) of the photo scaled so its short side is 1.25 side."""
    h, w = photo.shape[:2]
    scaled = fit_longest_side(photo, round(1.25 * side * max(h, w) / min(h, w)))
    h, w = scaled.shape[:2]
    corners = [(0, 0), (0, w - side), (h - side, 0), (h - side, w - side), ((h - side) // 2, (w - side) // 2)]
    return np.stack([scaled[y:y + side, x:x + side] for y, x in corners])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=VisSettings().steps)
    parser.add_argument("--channels", type=int, default=8, help="channels per layer")
    parser.add_argument("--layers", nargs="+", default=list(LAYERS))
    parser.add_argument("--out", default="runs/eval_optvis")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    vgg = load_vgg("vgg16")
    photos = natural_photos()
    photo_crops = np.concatenate([crops(p) for p in photos.values()])  # (5 * photos, 128, 128, 3)
    print(f"natural photos: {', '.join(photos)} ({len(photo_crops)} crops of {SIDE} px)")
    photo_hf = [high_frequency_share(c) for c in photo_crops]
    rng = np.random.default_rng(0)
    default = VisSettings(size=SIDE, steps=args.steps)
    naive = replace(default, param="pixel", decorrelate=False, transforms=False)
    rows: List[str] = []
    spectra: List[str] = []
    for layer in args.layers:
        channels = sorted(int(c) for c in rng.choice(vgg.channels(layer), args.channels, replace=False))
        pictures = {}
        for name, settings in (("fft", default), ("pixel", naive)):
            start = time.perf_counter()
            result = visualize_channels(vgg, layer, channels, settings)
            pictures[name] = result.images
            print(f"{layer} {name}: {len(channels)} channels x {settings.steps} steps in "
                  f"{time.perf_counter() - start:.0f} s", flush=True)
            save_image(out / f"{layer}_{name}.png",
                       image_grid(list(result.images), columns=len(channels), labels=[f"{layer}:{c}" for c in channels]))
        for i, c in enumerate(channels):
            vis = float(mean_channel_activation(vgg, pictures["fft"][i:i + 1], layer, c)[0])
            natural = mean_channel_activation(vgg, photo_crops, layer, c)
            rows.append(f"| {layer} | {c} | {vis:.1f} | {natural.mean():.2f} | {vis / max(natural.mean(), 1e-9):.0f}x "
                        f"| {natural.max():.1f} | {vis / max(natural.max(), 1e-9):.1f}x |")
            spectra.append(f"| {layer} | {c} | {high_frequency_share(pictures['fft'][i]):.3f} "
                           f"| {high_frequency_share(pictures['pixel'][i]):.3f} |")
        print("\n".join(rows[-len(channels):]), flush=True)
    report = [
        f"# Feature visualisation on VGG16 (ImageNet): {args.steps} Adam steps at {SIDE} px\n",
        f"Natural photos: {', '.join(photos)}; {len(photo_crops)} crops of {SIDE} px.\n",
        "| layer | channel | visualisation | photos (mean) | ratio | photos (max crop) | ratio to max |",
        "|---|---|---|---|---|---|---|", *rows, "",
        "Share of spectral energy above half Nyquist (0.25 cycles/px), lower is smoother:\n",
        "| layer | channel | FFT + decorrelation + transforms | pixel, no transforms |", "|---|---|---|---|", *spectra, "",
        f"Photo crops for scale: mean share {np.mean(photo_hf):.3f} (range {min(photo_hf):.3f}..{max(photo_hf):.3f}).",
    ]
    (out / "results.md").write_text("\n".join(report) + "\n")
    print("\n".join(report))
    print(f"wrote {out / 'results.md'} and the sheets beside it")


if __name__ == "__main__":
    main()
