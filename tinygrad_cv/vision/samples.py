"""Images that work offline on any machine: bundled photos and a style image drawn by the project.

- Content photos ship with scikit-learn (installed with tinygrad_cv): ``china.jpg`` (a temple) and
  ``flower.jpg``, both released by their authors under CC BY 2.0 (see sklearn.datasets.load_sample_image).
- The default style image, "swirls", is painted here from a seed: thousands of short, thick brush
  strokes that follow a smooth swirling flow field, in a night-sky palette of blues and yellows. It has
  what a style image needs (strong colours, visible strokes, texture at several scales) and no licence
  question, since it is generated.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

CONTENT_PHOTOS = ("china.jpg", "flower.jpg")

# Night-sky palette: deep blues, teal, pale and warm yellows (RGB).
SWIRL_PALETTE = np.array([
    [16, 34, 84], [28, 62, 130], [48, 96, 168], [86, 140, 196], [20, 110, 130],
    [230, 200, 70], [245, 226, 140], [250, 244, 210], [200, 150, 40], [12, 20, 48],
])


def sample_photo(name: str = "china.jpg") -> np.ndarray:
    """A bundled photo as uint8 (H, W, 3): 'china.jpg' (427 x 640) or 'flower.jpg'."""
    if name not in CONTENT_PHOTOS:
        raise ValueError(f"unknown sample photo {name!r}; choose from {CONTENT_PHOTOS}")
    from sklearn.datasets import load_sample_image

    return np.ascontiguousarray(load_sample_image(name))


def _flow_field(size: Tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A smooth angle per pixel (radians): low-frequency waves plus a few vortices. Shape (H, W)."""
    h, w = size
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    angle = 0.6 * np.sin(2 * np.pi * y / h * 1.5) + 0.4 * np.cos(2 * np.pi * x / w * 2.0)
    for cx, cy, spin in zip(rng.uniform(0, w, 5), rng.uniform(0, h, 5), rng.choice([-1.0, 1.0], 5)):
        dx, dy = x - cx, y - cy
        near = np.exp(-(dx * dx + dy * dy) / (0.15 * min(h, w)) ** 2)
        angle += spin * near * (np.arctan2(dy, dx) + np.pi / 2)  # circle around (cx, cy)
    return angle


def swirl_painting(size: Tuple[int, int] = (384, 512), strokes: int = 9000, seed: int = 1889) -> np.ndarray:
    """Paint the 'swirls' style image: uint8 (H, W, 3), the same for the same arguments."""
    h, w = size
    rng = np.random.default_rng(seed)
    field = _flow_field(size, rng)
    canvas = Image.new("RGB", (w, h), tuple(int(v) for v in SWIRL_PALETTE[0]))
    draw = ImageDraw.Draw(canvas)
    for _ in range(strokes):
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        # Warm colours gather in a few "stars"; the rest of the sky is blue.
        warm = np.exp(-((x / w - 0.7) ** 2 + (y / h - 0.25) ** 2) / 0.02) + 0.25 * rng.random()
        colour = SWIRL_PALETTE[rng.integers(5, 9) if rng.random() < warm else rng.integers(0, 5)]
        colour = np.clip(colour + rng.normal(0, 12, 3), 0, 255).astype(int)
        points = [(x, y)]
        for _ in range(int(rng.integers(4, 12))):
            a = field[int(np.clip(y, 0, h - 1)), int(np.clip(x, 0, w - 1))]
            x, y = x + 4 * np.cos(a), y + 4 * np.sin(a)
            points.append((float(x), float(y)))
        draw.line(points, fill=tuple(int(c) for c in colour), width=int(rng.integers(3, 8)), joint="curve")
    return np.asarray(canvas.filter(ImageFilter.SMOOTH_MORE))


# Photos that ship with the installed libraries: scikit-learn (2), scikit-image (8: its data folder
# holds these files, no download) and matplotlib (1). Used where a method is measured over many pictures.
BUNDLED_PHOTOS = ("china.jpg", "flower.jpg", "astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field",
                  "brick", "grass", "gravel", "grace_hopper.jpg")


def bundled_photo(name: str) -> np.ndarray:
    """One of BUNDLED_PHOTOS as uint8 (H, W, 3); grayscale textures (brick, grass, gravel) become RGB."""
    from tinygrad_cv.vision.image import load_image, to_rgb_uint8

    if name in CONTENT_PHOTOS:
        return sample_photo(name)
    if name == "grace_hopper.jpg":
        from matplotlib import cbook

        return load_image(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    if name not in BUNDLED_PHOTOS:
        raise ValueError(f"unknown bundled photo {name!r}; choose from {', '.join(BUNDLED_PHOTOS)}")
    from skimage import data

    return to_rgb_uint8(getattr(data, name)())
