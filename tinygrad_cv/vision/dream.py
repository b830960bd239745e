"""Deep Dream: amplify whatever a layer already sees in a photo (Mordvintsev, Olah & Tyka, "Inceptionism:
Going Deeper into Neural Networks", Google Research blog, 2015, and their ``deepdream`` notebook).

Gradient *ascent* on the photo's pixels for the mean square of a layer's activations: patterns the
layer half-recognises get stronger, until the photo is covered in them. Four tricks from the notebook
make it work on real photos:

- **octaves**: dream first on a small copy (each octave 1.4x smaller), so large structures appear,
  then move up in size;
- **detail re-injection**: the *change* made at a small octave is upscaled and added to the photo at
  the next size, so the fine detail that downscaling had removed comes back from the original;
- **gradient normalisation**: each step moves the pixels by ``step_size`` times the gradient divided
  by its mean absolute value, so the step is the same size whatever the layer's scale;
- **random roll**: the image is shifted by a random offset before each step (and back after), so no
  pixel grid or tile seam stays in place long enough to leave a mark.

Large images are split into tiles for the gradient so that memory stays bounded; each tile's
objective is weighted by its share of the image, so the tiles add up to the whole image's objective.

Why this does not use ``render.render``: its optimisers (Adam, L-BFGS) step on one graph; here the
gradient is assembled from separate graphs (tiles) and the step is normalised, which is the
notebook's plain update rule, a few lines below.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, List, Optional, Sequence, Tuple

import numpy as np

from tinygrad_cv import backend, no_grad
from tinygrad_cv.functional.resample import resize_bilinear
from tinygrad_cv.tensor import Tensor
from tinygrad_cv.vision.image import resize
from tinygrad_cv.vision.optvis import channel, layer_energy, network_features
from tinygrad_cv.vision.render import FeatureFn, Objective
from tinygrad_cv.vision.style import to_tensor, to_uint8


POOL_GRID = 32  # VGG16's five 2x2 poolings: tiles starting on multiples of 32 pool like the whole image


@dataclass(frozen=True)
class DreamSettings:
    """Defaults from the deepdream notebook (octave_n=4, octave_scale=1.4, iter_n=10, jitter=32,
    step_size=1.5 on 0..255 pixels), with a deeper layer of VGG16 in place of GoogLeNet's inception_4c."""

    layer: str = "conv4_2"
    channel: Optional[int] = None  # None: the whole layer (mean square); else one channel's mean
    octaves: int = 4
    octave_scale: float = 1.4
    steps: int = 10  # per octave
    step_size: float = 1.5 / 255  # pixels are in [0, 1] here
    roll: int = 32  # largest random shift, in pixels
    tile_size: int = 512  # the gradient is computed in tiles of about this side (seams on POOL_GRID)
    seed: int = 0


@dataclass
class DreamStep:
    """What a callback sees after each step."""

    octave: int  # 0-based, smallest first
    octaves: int
    step: int  # 1-based within the octave
    steps: int
    size: Tuple[int, int]  # (height, width) of this octave
    value: float  # the objective before the step
    image: Any  # the image after the step: (1, 3, height, width) array in [0, 1], not to be modified


@dataclass
class DreamResult:
    image: np.ndarray  # uint8 (H, W, 3), the input's size
    sizes: List[Tuple[int, int]] = field(default_factory=list)  # octave sizes, smallest first
    history: List[float] = field(default_factory=list)  # objective per step
    seconds: float = 0.0
    status: str = "done"  # or "interrupted" (Ctrl-C): the image is then the last completed step


def dream_objective(settings: DreamSettings) -> Objective:
    if settings.channel is None:
        return layer_energy(settings.layer)
    return channel(settings.layer, settings.channel)


def octave_sizes(height: int, width: int, octaves: int, scale: float) -> List[Tuple[int, int]]:
    """(height, width) of each octave, smallest first, the last one being the input's size."""
    if octaves < 1 or scale <= 1:
        raise ValueError(f"need octaves >= 1 and octave_scale > 1, got {octaves} and {scale}")
    sizes = [(round(height / scale ** k), round(width / scale ** k)) for k in reversed(range(octaves))]
    if min(sizes[0]) < 16:
        raise ValueError(f"octave 1 of {octaves} would be {sizes[0][1]}x{sizes[0][0]} px (input "
                         f"{width}x{height}, scale {scale}): use fewer octaves or a larger image")
    return sizes


def tile_slices(n: int, tile: int, align: int = 1) -> List[slice]:
    """Split range(n) into ceil(n / tile) nearly equal consecutive pieces whose starts are multiples
    of ``align`` (so a piece may be up to align - 1 longer than ``tile``)."""
    count = math.ceil(n / tile)
    inner = {round(i * n / count / align) * align for i in range(1, count)}
    edges = sorted({0, n} | {e for e in inner if 0 < e < n})
    return [slice(a, b) for a, b in zip(edges, edges[1:])]


def tiled_gradient(features: FeatureFn, objective: Objective, image: Any, tile: int,
                   align: int = POOL_GRID) -> Tuple[Any, float]:
    """Gradient of ``objective`` with respect to an (1, 3, H, W) array, computed tile by tile.

    Each tile's objective is weighted by its share of the pixels, so for a mean over positions the
    tiles sum to the whole image's value. Tiles start on multiples of ``align`` so that their pooling
    windows are the whole image's. Still, a pixel's gradient changes wherever its receptive field
    (76 px for VGG16's conv4_2) crosses a seam: there the tile sees zero padding, not its neighbour.
    """
    xp = backend.get_array_module(image)
    grad = xp.zeros_like(image)
    total = 0.0
    height, width = image.shape[2:]
    for rows in tile_slices(height, tile, align):
        for cols in tile_slices(width, tile, align):
            piece = Tensor(xp.ascontiguousarray(image[:, :, rows, cols]), requires_grad=True)
            value, _ = objective(features(piece, objective.layers), piece)
            share = piece.size / image.size
            (value * share).backward()
            grad[:, :, rows, cols] = piece.grad
            total += value.item() * share
    return grad, total


def dream_step(features: FeatureFn, objective: Objective, image: Any, settings: DreamSettings,
               rng: np.random.Generator) -> Tuple[Any, float]:
    """One normalised gradient-ascent step at a random roll; returns the new image and the value."""
    xp = backend.get_array_module(image)
    dy, dx = (int(v) for v in rng.integers(-settings.roll, settings.roll + 1, size=2))
    rolled = xp.roll(image, (dy, dx), axis=(2, 3))
    grad, value = tiled_gradient(features, objective, rolled, settings.tile_size)
    grad = xp.roll(grad, (-dy, -dx), axis=(2, 3))
    step = settings.step_size / (float(xp.abs(grad).mean()) + 1e-12)
    return xp.clip(image + step * grad, 0.0, 1.0), value


def dream(model, photo: np.ndarray, settings: DreamSettings = DreamSettings(),
          callbacks: Sequence[Callable[[DreamStep], None]] = ()) -> DreamResult:
    """Deep Dream a uint8 (H, W, 3) photo with a VGG ``model``; returns an image of the same size."""
    start = time.perf_counter()
    height, width = photo.shape[:2]
    sizes = octave_sizes(height, width, settings.octaves, settings.octave_scale)
    features, objective = network_features(model), dream_objective(settings)
    rng = np.random.default_rng(settings.seed)
    # Octave bases come straight from the photo (Lanczos, antialiased), so each one has all the
    # detail its size can hold; only the dream's own changes are carried up between octaves.
    bases = [to_tensor(resize(photo, size), model.device).data for size in sizes]
    detail = backend.get_array_module(bases[0]).zeros_like(bases[0])
    history: List[float] = []
    image, status = bases[0], "done"
    try:
        for k, (size, base) in enumerate(zip(sizes, bases)):
            with no_grad():
                detail = resize_bilinear(Tensor(detail), size).data
            image = backend.get_array_module(base).clip(base + detail, 0.0, 1.0)
            for step in range(1, settings.steps + 1):
                image, value = dream_step(features, objective, image, settings, rng)
                history.append(value)
                for callback in callbacks:
                    callback(DreamStep(k, len(sizes), step, settings.steps, size, value, image))
            detail = image - base
    except KeyboardInterrupt:
        status = "interrupted"
    result = resize(to_uint8(backend.to_device(image, "cpu")), (height, width))  # no-op unless interrupted
    return DreamResult(result, sizes, history, time.perf_counter() - start, status)
