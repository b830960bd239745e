"""Feed-forward style transfer with a multi-style network: paint, blend, lay out all styles, and
store a style of one's own.

The network (``models/stylenet.py``) is passed in; this module knows only that it is called as
``net(image, style_weights)`` and keeps one (gamma, beta) pair per style in each normalisation layer
(``net.norms()``). Dumoulin, Shlens & Kudlur 2017, section 4.2: a new style is just a new pair per
layer, so a style file is small (990 numbers for the 26-style network).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Tuple, Union

import numpy as np

from tinygrad_cv import backend
from tinygrad_cv.io.cache import atomic_write
from tinygrad_cv.tensor import Tensor, no_grad
from tinygrad_cv.vision.image import to_rgb_uint8

PathLike = Union[str, Path]
STYLE_FILE_KIND = "tinygrad_cv style (gamma, beta per normalisation layer)"


def to_input(rgb: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) -> float32 (1, 3, H, W) in [0, 1], the network's input."""
    return (to_rgb_uint8(rgb).astype(np.float32) / 255).transpose(2, 0, 1)[None]


def to_uint8(x: Any) -> np.ndarray:
    """(1, 3, H, W) in [0, 1] (array or Tensor, any device) -> uint8 (H, W, 3)."""
    x = backend.to_device(x.data if isinstance(x, Tensor) else x, "cpu")
    return (np.clip(x[0].transpose(1, 2, 0), 0, 1) * 255).round().astype(np.uint8)


def stylize(net: Any, photo: np.ndarray, style_weights: Any) -> np.ndarray:
    """Paint a uint8 (H, W, 3) photo in one style or blend; returns uint8 (H, W, 3). No gradients kept."""
    x = Tensor(to_input(photo))
    if net.device == "cuda":
        x = x.to("cuda")
    with no_grad():
        return to_uint8(net(x, style_weights))


def parse_mix(text: str, styles: int) -> np.ndarray:
    """'3:0.5,19:0.5' -> a length-``styles`` weight vector (unlisted styles weigh 0).

    ValueError for a malformed entry, an index out of range, a repeated index, or a weight that is
    not a finite non-negative number, or when all weights are 0.
    """
    weights = np.zeros(styles, np.float32)
    seen = set()
    for entry in text.split(","):
        index, sep, value = entry.strip().partition(":")
        try:
            i, w = int(index), float(value)
        except ValueError:
            raise ValueError(f"--mix entry {entry.strip()!r} is not STYLE:WEIGHT (e.g. 3:0.5)") from None
        if not sep or not 0 <= i < styles:
            raise ValueError(f"--mix entry {entry.strip()!r}: style {i} is out of range 0..{styles - 1}"
                             if sep else f"--mix entry {entry.strip()!r} is not STYLE:WEIGHT (e.g. 3:0.5)")
        if not np.isfinite(w) or w < 0:
            raise ValueError(f"--mix entry {entry.strip()!r}: weights must be finite and non-negative")
        if i in seen:
            raise ValueError(f"--mix lists style {i} twice")
        seen.add(i)
        weights[i] = w
    if not weights.any():
        raise ValueError("--mix: all weights are 0, so no style would be applied")
    return weights


def style_sheet(net: Any, photo: np.ndarray, columns: int = 7) -> np.ndarray:
    """The photo and then every style of the network, each labelled with its index, as one uint8 sheet."""
    from tinygrad_cv.vision.sheets import image_grid

    images = [to_rgb_uint8(photo)] + [stylize(net, photo, net.one_hot(s)) for s in range(net.styles)]
    labels = ["photo"] + [f"style {s}" for s in range(net.styles)]
    return image_grid(images, columns=columns, labels=labels)


def interpolation_strip(net: Any, photo: np.ndarray, a: int, b: int, steps: int = 5) -> Tuple[list, list]:
    """Pictures of (1 - t) style a + t style b for t evenly spaced in [0, 1], and their labels."""
    images, labels = [], []
    for t in np.linspace(0, 1, steps):
        images.append(stylize(net, photo, (1 - t) * net.one_hot(a) + t * net.one_hot(b)))
        labels.append(f"{1 - t:.2g}x{a} + {t:.2g}x{b}")
    return images, labels


# ---- a style of one's own: one (gamma, beta) pair per normalisation layer -----------------------
def style_parameters(net: Any, style_weights: Any) -> Tuple[Dict[str, np.ndarray], Dict[str, np.ndarray]]:
    """The (gamma, beta) of a blend, per layer name: w @ Gamma and w @ Beta, as NumPy (C,) arrays."""
    w = np.asarray(net.style_vector(np.asarray(style_weights, np.float32)), np.float64)
    gammas, betas = {}, {}
    for name, norm in net.norms():
        layer = name[: -len(".norm")]
        gammas[layer] = (w @ backend.to_device(norm.gamma.data, "cpu")).astype(np.float32)
        betas[layer] = (w @ backend.to_device(norm.beta.data, "cpu")).astype(np.float32)
    return gammas, betas


def save_style_file(path: PathLike, gammas: Dict[str, np.ndarray], betas: Dict[str, np.ndarray],
                    info: Dict[str, Any]) -> None:
    """Write ``{layer}.gamma`` / ``{layer}.beta`` arrays and a JSON ``__meta__`` atomically."""
    arrays = {f"{k}.gamma": np.asarray(v, np.float32) for k, v in gammas.items()}
    arrays.update({f"{k}.beta": np.asarray(v, np.float32) for k, v in betas.items()})
    meta = json.dumps({"kind": STYLE_FILE_KIND, **info})
    with atomic_write(Path(path)) as f:
        np.savez(f, **arrays, __meta__=np.array(meta))


def load_style_file(path: PathLike, net: Any) -> Tuple[Dict[str, np.ndarray], Dict[str, np.ndarray], dict]:
    """Read a style file and check that it fits ``net``: one (C,) gamma and beta per normalisation layer.

    ValueError naming the problem for a file that is not a style file, is damaged, or belongs to
    another network.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such style file: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        meta = json.loads(str(arrays.pop("__meta__")))
    except Exception as exc:  # a damaged zip, a non-npz file, a missing or broken __meta__
        raise ValueError(f"{path} is not a readable style file ({type(exc).__name__}: {exc})") from None
    if meta.get("kind") != STYLE_FILE_KIND:
        raise ValueError(f"{path} is not a style file written by tinygrad-cv fast-style --train-style")
    gammas, betas = {}, {}
    for name, norm in net.norms():
        layer = name[: -len(".norm")]
        for key, store in ((f"{layer}.gamma", gammas), (f"{layer}.beta", betas)):
            if key not in arrays or arrays[key].shape != (norm.channels,) or not np.isfinite(arrays[key]).all():
                found = arrays[key].shape if key in arrays else "nothing"
                raise ValueError(f"{path} does not fit this network: {key} should be {norm.channels} finite "
                                 f"numbers, found {found}")
            store[layer] = arrays[key]
    return gammas, betas, meta
