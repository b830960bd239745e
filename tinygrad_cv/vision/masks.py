"""Semantic masks for style transfer: "the sky takes the style of the sky" (Luan et al. 2017, section 3.2).

A content mask and a style mask are images painted in flat colours, the same colour meaning the same
kind of region (sky, building, water...). The style loss is then computed per region: each layer's
features are multiplied by the region's mask, resized to that layer, before their Gram matrix, so the
sky of the output is asked to have the textures and colours of the sky of the style photo only.

Masks are read forgivingly: they may have another size than their photo (they are resized), and
colours may be off a little (JPEG, antialiased edges): a colour is a region when it covers at least
MIN_SHARE of the mask, colours closer than TOLERANCE (per channel, 0..255) are the same region, and
every other pixel joins the nearest region. A content region with no match in the style mask is an
error naming its colour; style regions the content lacks are ignored.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

import tinygrad_cv.functional as F
from tinygrad_cv.tensor import Tensor
from tinygrad_cv.vision.render import Objective

TOLERANCE = 40  # per channel, 0..255: Luan's masks use pure colours; JPEG noise stays well below this
MIN_SHARE = 0.005  # a colour on fewer pixels than this is an edge or noise, not a region


def palette(mask: np.ndarray, tolerance: int = TOLERANCE, min_share: float = MIN_SHARE) -> np.ndarray:
    """The region colours of a uint8 (H, W, 3) mask, most frequent first: (R, 3) int."""
    colours, counts = np.unique(mask.reshape(-1, 3), axis=0, return_counts=True)
    chosen: List[np.ndarray] = []
    for i in np.argsort(-counts):
        if counts[i] < min_share * counts.sum():
            break
        colour = colours[i].astype(int)
        if all(np.abs(colour - c).max() > tolerance for c in chosen):
            chosen.append(colour)
    return np.array(chosen)


def label(mask: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """Index of the nearest palette colour (largest channel difference) for every pixel: (H, W) int."""
    distance = np.abs(mask[:, :, None, :].astype(int) - colours[None, None]).max(axis=-1)  # (H, W, R)
    return distance.argmin(axis=-1)


def name(colour: np.ndarray) -> str:
    r, g, b = (int(v) for v in colour)
    return f"#{r:02x}{g:02x}{b:02x} (RGB {r}, {g}, {b})"


def match_masks(content_mask: np.ndarray, style_mask: np.ndarray,
                tolerance: int = TOLERANCE) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Regions shared by two colour-coded masks.

    Returns:
        colours (R, 3), and one float32 map per region for each mask: (R, Hc, Wc) and (R, Hs, Ws),
        1 inside the region, 0 outside, at the masks' own sizes.
    Raises:
        ValueError naming a content colour that the style mask does not have.
    """
    content_colours = palette(content_mask, tolerance)
    style_colours = palette(style_mask, tolerance)
    if not len(content_colours) or not len(style_colours):
        raise ValueError(f"a mask needs flat colours, each on at least {MIN_SHARE:.1%} of its pixels")
    to_content = np.full(len(style_colours), -1)  # style region -> content region, -1: unused
    for r, colour in enumerate(content_colours):
        near = [s for s, c in enumerate(style_colours) if np.abs(c - colour).max() <= tolerance]
        if not near:
            raise ValueError(f"content mask colour {name(colour)} has no match in the style mask, whose colours "
                             f"are {', '.join(name(c) for c in style_colours)} (tolerance {tolerance} per channel)")
        to_content[near] = r
    content_labels = label(content_mask, content_colours)
    style_labels = to_content[label(style_mask, style_colours)]
    R = len(content_colours)
    content_maps = np.stack([content_labels == r for r in range(R)]).astype(np.float32)
    style_maps = np.stack([style_labels == r for r in range(R)]).astype(np.float32)
    return content_colours, content_maps, style_maps


def resize_maps(maps: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """(R, H, W) region maps -> (R, h, w), each pixel the share of its area inside the region (box filter)."""
    h, w = size
    return np.stack([np.asarray(Image.fromarray(m, mode="F").resize((w, h), Image.Resampling.BOX)) for m in maps])


def masked_gram(features: Tensor, weights: np.ndarray) -> Tensor:
    """Gram matrix of features weighted by a (h, w) map: sum_p m_p^2 F_p F_p^T / sum_p m_p^2. (1, C, C)."""
    m = Tensor(weights[None, None].astype(features.dtype)).to(features.device)  # (1, 1, h, w)
    return F.gram_matrix(features * m) / float((weights.astype(np.float64) ** 2).mean())


def region_grams(features: Dict[str, Tensor], maps: np.ndarray, layers: Sequence[str]) -> List[List[Optional[Tensor]]]:
    """Per layer, per region: the masked Gram matrix (None where the region vanishes at that layer)."""
    grams: List[List[Optional[Tensor]]] = []
    for name_ in layers:
        layer_maps = resize_maps(maps, features[name_].shape[2:])
        grams.append([masked_gram(features[name_], m) if (m ** 2).mean() > 1e-8 else None for m in layer_maps])
    return grams


def masked_style_loss(layers: Sequence[str], targets: List[List[Optional[Tensor]]], maps: List[np.ndarray],
                      weights: Sequence[float], shares: Sequence[float]):
    """Style loss per region: sum over layers l and regions r of
    w_l * share_r * |G_lr(image) - G_lr(style)|^2 / |G_lr(style)|^2, G_lr the Gram matrix of layer l's
    features weighted by region r's mask, share_r the region's part of the content image.

    Args:
        targets: from ``region_grams`` on the style image's features and the style mask.
        maps: per layer, the content's (R, h, w) region maps at that layer's size.
    """
    total = float(sum(weights))
    pairs = [(li, r) for li in range(len(layers)) for r in range(len(shares))
             if targets[li][r] is not None and (maps[li][r] ** 2).mean() > 1e-8]
    scales = {pair: float((targets[pair[0]][pair[1]].data.astype(np.float64) ** 2).sum()) + 1e-12 for pair in pairs}

    def fn(feats: Dict[str, Tensor], image: Tensor) -> Tensor:
        parts = []
        for li, r in pairs:
            gram = masked_gram(feats[layers[li]], maps[li][r])
            error = F.mse_loss(gram, targets[li][r], reduction="sum") / scales[(li, r)]
            parts.append(error * (weights[li] / total * shares[r]))
        return sum(parts[1:], parts[0])

    return Objective.term("style", fn, layers)
