"""Contact sheets: many small pictures on one uint8 image, with labels.

The drawing functions (``image_grid``, ``labelled_rows``, ``filter_grid``, ``feature_map_grid``) take
arrays and return a uint8 (H, W, 3) picture to save with ``save_image``. The sheet makers at the
bottom (``channel_sheet``, ``layer_progression_sheet``, ``positive_negative_sheet``) render the
visualisations first, with ``optvis.visualize``.
"""
from __future__ import annotations

import math
from dataclasses import replace
from typing import Optional, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from tinygrad_cv.vision.optvis import VisSettings, channel, check_unit, pre_relu, visualize, visualize_channels

WHITE = 255
LABEL_HEIGHT = 14  # pixels of text under each picture


def _font(size: int = 11) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)  # a scalable font, Pillow >= 10.1
    except TypeError:
        return ImageFont.load_default()


def _text_width(text: str) -> int:
    return math.ceil(ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength(text, font=_font()))


def _check_images(images: Sequence[np.ndarray]) -> Tuple[int, int]:
    if not len(images):
        raise ValueError("need at least one image")
    shapes = {np.asarray(im).shape for im in images}
    if len(shapes) != 1 or any(len(s) != 3 or s[2] != 3 for s in shapes):
        raise ValueError(f"images must all be uint8 (H, W, 3) of one size, got shapes {sorted(shapes)}")
    h, w, _ = shapes.pop()
    return h, w


def image_grid(images: Sequence[np.ndarray], columns: Optional[int] = None, pad: int = 2,
               labels: Optional[Sequence[str]] = None) -> np.ndarray:
    """Tile equally sized uint8 (H, W, 3) images row by row, on white, with an optional label under each.

    Args:
        columns: pictures per row (default: the smallest square grid that fits them all).
        pad: white pixels between pictures and around the sheet.
    """
    h, w = _check_images(images)
    if labels is not None and len(labels) != len(images):
        raise ValueError(f"{len(labels)} labels for {len(images)} images")
    columns = columns or math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / columns)
    cell_h = h + (LABEL_HEIGHT if labels is not None else 0)
    sheet = Image.new("RGB", (pad + columns * (w + pad), pad + rows * (cell_h + pad)), (WHITE,) * 3)
    draw = ImageDraw.Draw(sheet)
    for i, image in enumerate(images):
        top, left = pad + (i // columns) * (cell_h + pad), pad + (i % columns) * (w + pad)
        sheet.paste(Image.fromarray(np.asarray(image, dtype=np.uint8)), (left, top))
        if labels is not None:
            draw.text((left + 1, top + h + 1), labels[i], fill=(0, 0, 0), font=_font())
    return np.asarray(sheet)


def labelled_rows(rows: Sequence[Tuple[str, Sequence[np.ndarray]]], pad: int = 2,
                  labels: Optional[Sequence[Sequence[str]]] = None) -> np.ndarray:
    """One row of pictures per (row label, images), the row label on the left.

    ``labels`` optionally gives a caption for every picture, row by row.
    """
    columns = max(len(images) for _, images in rows)
    h, w = _check_images([im for _, images in rows for im in images])
    row_sheets = []
    for i, (_, images) in enumerate(rows):
        blank = [np.full((h, w, 3), WHITE, np.uint8)] * (columns - len(images))
        captions = None if labels is None else list(labels[i]) + [""] * len(blank)
        row_sheets.append(image_grid(list(images) + blank, columns, pad, captions))
    margin = max(_text_width(name) for name, _ in rows) + 2 * pad + 4
    sheet = Image.new("RGB", (margin + row_sheets[0].shape[1], sum(r.shape[0] for r in row_sheets)), (WHITE,) * 3)
    draw = ImageDraw.Draw(sheet)
    top = 0
    for (name, _), row in zip(rows, row_sheets):
        sheet.paste(Image.fromarray(row), (margin, top))
        draw.text((pad + 2, top + row.shape[0] // 2 - 6), name, fill=(0, 0, 0), font=_font())
        top += row.shape[0]
    return np.asarray(sheet)


def upscale(image: np.ndarray, factor: int) -> np.ndarray:
    """Enlarge a uint8 (H, W, 3) picture by a whole factor, every pixel a visible square."""
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def filter_grid(weight: np.ndarray, channel_order: str = "RGB", zoom: int = 8, columns: int = 8) -> np.ndarray:
    """First-layer filters (O, 3, KH, KW) as small colour pictures.

    Each filter is shown on its own symmetric scale, grey = 0: 0.5 + w / (2 max|w|). A filter whose
    picture is, say, green on one side and magenta on the other responds to a green-magenta edge.
    ``channel_order`` is the order of the filter's input channels ("BGR" for Caffe weights), so the
    colours shown are the colours the filter responds to.
    """
    if weight.ndim != 4 or weight.shape[1] != 3:
        raise ValueError(f"filter_grid needs first-layer filters of shape (O, 3, KH, KW), got {weight.shape}")
    w = weight[:, ::-1] if channel_order == "BGR" else weight
    scale = np.abs(w).max(axis=(1, 2, 3), keepdims=True) + 1e-12
    pictures = (0.5 + w / (2 * scale)).transpose(0, 2, 3, 1)  # (O, KH, KW, 3)
    pictures = (pictures * 255).round().astype(np.uint8)
    return image_grid([upscale(p, zoom) for p in pictures], columns, pad=2)


def feature_map_grid(maps: np.ndarray, count: int = 16, columns: Optional[int] = None,
                     cmap: str = "viridis", labels: bool = True) -> np.ndarray:
    """The first ``count`` channels of one image's activations (C, H, W) as colour-mapped pictures,
    each scaled to its own range (dark = 0, the channel's maximum = bright)."""
    import matplotlib

    if maps.ndim != 3:
        raise ValueError(f"feature_map_grid needs one image's activations (C, H, W), got shape {maps.shape}")
    colormap = matplotlib.colormaps[cmap]
    pictures = []
    for m in maps[:count]:
        top = float(m.max())
        rgb = colormap(m / top if top > 0 else np.zeros_like(m))[..., :3]  # (H, W, 3) in [0, 1]
        pictures.append((rgb * 255).round().astype(np.uint8))
    captions = [f"ch {i}" for i in range(len(pictures))] if labels else None
    return image_grid(pictures, columns, labels=captions)


# ---- sheets that render their pictures first ---------------------------------------------------------
def channel_sheet(model, layer: str, channels: Sequence[int], settings: VisSettings = VisSettings(),
                  callbacks: Sequence = ()) -> np.ndarray:
    """A grid of one visualisation per channel of ``layer``, labelled with the channel numbers."""
    result = visualize_channels(model, layer, channels, settings, callbacks)
    return image_grid(list(result.images), labels=[f"{layer}:{c}" for c in channels])


def layer_progression_sheet(model, units: Sequence[Tuple[str, Sequence[int]]],
                            settings: VisSettings = VisSettings(), callbacks: Sequence = ()) -> np.ndarray:
    """One row per layer, e.g. [("conv1_2", [..]), ..., ("conv5_3", [..])]: edges -> textures ->
    patterns -> parts, as the layers get deeper."""
    rows = []
    for layer, channels in units:
        result = visualize_channels(model, layer, channels, settings, callbacks)
        rows.append((layer, list(result.images)))
    return labelled_rows(rows, labels=[[f"ch {c}" for c in channels] for _, channels in units])


def positive_negative_sheet(model, layer: str, channels: Sequence[int], settings: VisSettings = VisSettings(),
                            callbacks: Sequence = ()) -> np.ndarray:
    """For each channel, the image that excites it most (top row) and the one that inhibits it most
    (bottom row: the visualisation of minus the channel)."""
    check_unit({name: model.channels(name) for name in model.layer_names}, layer, channels)
    batch = replace(settings, batch=len(channels))
    objective = sum(channel(pre_relu(layer), c, batch=i) for i, c in enumerate(channels))
    positive = visualize(model, objective, batch, callbacks)
    negative = visualize(model, -objective, batch, callbacks)
    captions = [f"{layer}:{c}" for c in channels]
    return labelled_rows([("positive", list(positive.images)), ("negative", list(negative.images))],
                         labels=[captions, captions])
