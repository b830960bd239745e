"""Pictures of attribution maps and of their sanity checks (matplotlib, no pyplot: no window, no globals).

- ``overlay_figure``: the photo with a map laid over it as a colour-mapped layer, and a colour bar;
- ``maps_figure``: photos in rows, one column per method;
- ``randomization_figure``: Spearman correlation against the cascade of randomised layers, drawn as
  Adebayo et al. (2018, Fig. 2): one line per method, layers from the classifier down to the stem;
- ``deletion_figure``: class probability against the share of pixels removed, one line per order.
``save_figure`` writes a PNG atomically.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple, Union

import numpy as np

from tinygrad_cv.io.cache import atomic_write

SEQUENTIAL, DIVERGING = "inferno", "RdBu_r"  # non-negative maps; signed maps (integrated gradients)
CLIP_PERCENTILE = 99.5  # the colour scale's end, as a percentile of |map|


def _new_figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def save_figure(fig: Any, path: Union[str, Path], dpi: int = 110) -> Path:
    """Write a figure as PNG under a temporary name, then rename it into place."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    with atomic_write(path) as f:
        f.write(buffer.getvalue())
    return Path(path)


def _draw_map(ax: Any, photo: np.ndarray, saliency: np.ndarray, signed: bool, alpha: float) -> Any:
    """Photo in grey underneath (so the colours of the map read clearly), the map on top."""
    grey = photo.astype(np.float32).mean(axis=2) / 255.0
    ax.imshow(grey, cmap="gray", vmin=0.0, vmax=1.0)
    # Pixel maps (gradients, integrated gradients) have a few extreme pixels that would leave the rest of
    # the map in one colour: the colour scale stops at the 99.5th percentile of |map| (values above it
    # get the end colour). Grad-CAM is smooth, and its percentile is close to its maximum.
    top = float(np.percentile(np.abs(saliency), CLIP_PERCENTILE)) or float(np.abs(saliency).max()) or 1.0
    if signed:
        layer = ax.imshow(saliency, cmap=DIVERGING, vmin=-top, vmax=top, alpha=alpha)
    else:
        layer = ax.imshow(saliency, cmap=SEQUENTIAL, vmin=0.0, vmax=top, alpha=alpha)
    ax.set_xticks([])
    ax.set_yticks([])
    return layer


def overlay_figure(photo: np.ndarray, saliency: np.ndarray, title: str = "", signed: bool = False,
                   alpha: float = 0.6) -> Any:
    """The photo (uint8 (H, W, 3)) with ``saliency`` (H, W) over it and a colour bar.

    ``signed`` maps (integrated gradients) use a diverging colour map centred on zero: red pushes the
    class up, blue pushes it down.
    """
    if photo.shape[:2] != saliency.shape:
        raise ValueError(f"overlay: photo {photo.shape[:2]} and map {saliency.shape} differ in size")
    fig = _new_figure(5.2, 4.4)
    ax = fig.add_subplot(1, 1, 1)
    layer = _draw_map(ax, photo, saliency, signed, alpha)
    fig.colorbar(layer, ax=ax, fraction=0.046, pad=0.04)
    ax.set_title(title, fontsize=9)
    return fig


def maps_figure(rows: List[Tuple[str, np.ndarray, Dict[str, np.ndarray]]], methods: Sequence[str]) -> Any:
    """One row per (label, photo, {method: map}); the photo first, then one column per method."""
    fig = _new_figure(2.2 * (len(methods) + 1), 2.3 * len(rows))
    for r, (label, photo, maps) in enumerate(rows):
        ax = fig.add_subplot(len(rows), len(methods) + 1, r * (len(methods) + 1) + 1)
        ax.imshow(photo)
        ax.set_title(label, fontsize=8)
        ax.axis("off")
        for c, method in enumerate(methods):
            ax = fig.add_subplot(len(rows), len(methods) + 1, r * (len(methods) + 1) + c + 2)
            _draw_map(ax, photo, maps[method], method == "integrated-gradients", 0.65)
            if r == 0:
                ax.set_title(method, fontsize=8)
    fig.tight_layout()
    return fig


def randomization_figure(layers: Sequence[str], correlations: Dict[str, Sequence[float]], title: str = "") -> Any:
    """Spearman correlation (trained map vs randomised map) after each cascade step, per method."""
    fig = _new_figure(max(6.0, 0.32 * len(layers) + 2), 3.6)
    ax = fig.add_subplot(1, 1, 1)
    steps = np.arange(len(layers) + 1)
    for method, values in correlations.items():
        ax.plot(steps, [1.0] + list(values), marker="o", markersize=3, label=method)
    ax.set_xticks(steps)
    ax.set_xticklabels(["trained"] + list(layers), rotation=90, fontsize=7)
    ax.axhline(0.0, color="gray", linewidth=0.6)
    ax.set_ylim(-0.3, 1.05)
    ax.set_ylabel("Spearman rank correlation\nwith the trained network's map")
    ax.set_xlabel("randomised down to (cascading, from the classifier)")
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=9)
    return fig


def deletion_figure(fractions: Sequence[float], curves: Dict[str, Sequence[float]], title: str = "") -> Any:
    """Class probability against the share of pixels removed, one line per order (map or random)."""
    fig = _new_figure(5.0, 3.5)
    ax = fig.add_subplot(1, 1, 1)
    for label, curve in curves.items():
        ax.plot(fractions, curve, label=label, linestyle="--" if label.startswith("random") else "-")
    ax.set_xlabel("share of pixels replaced by grey (most attributed first)")
    ax.set_ylabel("class probability")
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=9)
    return fig
