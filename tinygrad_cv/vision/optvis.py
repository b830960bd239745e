"""Feature visualisation: change an image until a chosen unit of a network fires as hard as it can.

Erhan et al. (2009) maximised a unit's activation by gradient ascent on the input; Simonyan et al.
(2014) did it for class scores; Olah, Mordvintsev & Schubert, "Feature Visualization" (Distill, 2017)
showed which ingredients make the pictures readable. The code is split as in their Lucid library and
its PyTorch port lucent, into four small parts that meet in the render loop of ``render.py``:

- **objectives**: what to maximise. ``channel`` (a channel's mean activation), ``neuron`` (one
  position of a channel), ``layer_energy`` (mean square of a whole layer: Deep Dream),
  ``class_logit``, ``diversity`` (across a batch). They are ``Objective``s, so they combine as
  ``channel("conv4_1", 42) - channel("conv4_1", 7)`` or ``-channel(...)`` (the negative picture).
  Pictures of a convolution's channel maximise it before its ReLU (``pre_relu``), so that channels
  that are silent on a grey image still have a gradient.
- **parametrisations**: how the optimised numbers become an image. ``PixelImage`` (one number per
  pixel), ``FourierImage`` (a spectrum scaled by 1/frequency), both with optional colour
  decorrelation and a sigmoid that keeps pixels in (0, 1).
- **transforms**: random pad, jitter, scale and rotation applied before every step, so the picture
  must work from slightly different viewpoints (differentiable: ``functional/resample.py``).
- **regularisers**: ``l2``, total variation (``tv``), and an occasional blur (``blur_every``).

Why the extra machinery: a network's gradient with respect to its input is dominated by high
frequencies (strided convolutions and pooling alias them), so naive pixel ascent paints
high-frequency noise that fires the unit but shows nothing (lessons/04_feature_visualization.py
shows it). The Fourier parametrisation with 1/f scaling makes every frequency equally easy to
change (a whitened, "preconditioned" gradient), and the transforms punish patterns that only
work at one exact pixel offset.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

import tinygrad_cv.functional as F
from tinygrad_cv import backend, no_grad
from tinygrad_cv.functional.resample import affine_sample, resize_bilinear
from tinygrad_cv.tensor import Tensor
from tinygrad_cv.vision.render import (Callback, FeatureFn, Features, ImageParam, Objective, RenderSettings,
                                       StepInfo, render)
from tinygrad_cv.vision.style import tv_loss

LOGITS = "logits"  # the pseudo-layer name under which ``network_features`` returns class logits


@dataclass(frozen=True)
class VisSettings:
    """How a visualisation is rendered. The recipe is lucent's ``render_vis`` (Adam, FFT
    parametrisation with decorrelated colour, the standard transforms), with 256 steps instead of
    512 so that one 128 px picture of a conv4 channel takes about a minute on a 2-core CPU.

    Four departures, for VGG16, measured with benchmarks/eval_optvis.py and lesson 4:
    - a light blur of the parametrisation every 4 steps (as Yosinski et al. 2015, "Understanding
      Neural Networks Through Deep Visualization", blur every few steps). Lucent's recipe alone
      leaves a fine dotted lattice on VGG16's pictures (probably the pooling strides showing
      through the gradient), about 30% of their energy above half Nyquist; the blur removes most;
    - the blur also removes part of what the optimiser builds, so the learning rate is 0.2, not
      0.05: at 0.05 with the blur, 3 of 8 conv3_1 channels stayed under 10x their average on photos;
    - 1/f^1.5 instead of 1/f: more of each step goes into large shapes, which the blur leaves alone;
    - the last 32 steps see the picture without transforms, as it will be shown: the transforms
      make the picture robust, but a picture that works under every small shift, scale and turn
      fires its channel about 20% less than it could when seen plainly. Without these steps, 1 of
      16 conv3_1 channels stayed under 10x; the blur still runs, so they add little fine detail
      (energy above half Nyquist 0.10 -> 0.14 on average, naive pixels: 0.43).
    ``replace(VisSettings(), lr=0.05, decay_power=1.0, blur_every=0, plain_steps=0)`` is lucent's recipe.
    """

    size: int = 128  # side of the square image, in pixels
    steps: int = 256  # Adam steps
    lr: float = 0.2  # Adam's; lucent's is 0.05 (see above)
    param: str = "fft"  # "fft" (FourierImage) or "pixel" (PixelImage)
    decay_power: float = 1.5  # FourierImage's scale is 1/f^decay_power; Lucid's is 1 (see above)
    decorrelate: bool = True  # optimise in the decorrelated colour space of ImageNet photos
    transforms: bool = True  # lucent's standard_transforms: pad, jitter, scale, rotate, jitter
    plain_steps: int = 32  # the last this many steps skip the transforms (see above); lucent: 0
    batch: int = 1  # images optimised together (a channel grid, or a diversity objective)
    l2_weight: float = 0.0  # off by default: the FFT param, transforms and blur keep pixels tame
    tv_weight: float = 0.0
    blur_every: int = 4  # blur the parametrisation every this many steps (0: never); lucent: never
    blur_sigma: float = 0.5  # pixels: each blur keeps 73% of the amplitude at half Nyquist, 29% at Nyquist
    seed: int = 0
    # Random crops instead of lucent's transforms (None: lucent's). (low, high): each view is a square
    # crop of low..high of the side at a random place, resized to ``size``, flipped half the time.
    crops: Optional[Tuple[float, float]] = None
    views: int = 1  # transformed copies of the picture per step, scored together (their mean)


# Class visualisation on EfficientNet-Lite0 (``tinygrad-cv visualize --model efficientnet-lite0 --class K``),
# tuned with benchmarks/eval_classvis.py and by looking at the pictures. The picture must be *robust*:
# classified as K after random crops of 60-90% of its side and flips, not only as rendered. So each
# step scores 2 random crops of 50-100% of the side (with flips) resized to 224 px, which also keeps
# the network's input at the size it was trained on; the objective is the class's log-probability
# (``class_log_prob``), which, unlike the raw logit, also pushes the other classes down. Against
# VGG16's defaults: lr 0.05 (0.1 and 0.2 paint saturated blobs), 1/f^1.25 and a blur every 8 steps
# (without the blur: fine, grey, repeated detail; with VGG16's 1/f^1.5 and a blur every 4: blurry
# colour fields). 160 steps keep one picture under a minute on 2 idle cores.
CLASS_SETTINGS = VisSettings(size=224, steps=160, lr=0.05, decay_power=1.25, blur_every=8, crops=(0.5, 1.0),
                             views=2, plain_steps=0)
EFFICIENTNET_SETTINGS = VisSettings(size=224, steps=160)


# ---- objectives ------------------------------------------------------------------------------------
def _channel_of(features: Features, layer: str, n: int, batch: Optional[int]) -> Tensor:
    """Activations of channel n of ``layer``, shape (N, H, W), or (1, H, W) for one batch index."""
    acts = features[layer]
    if not 0 <= n < acts.shape[1]:
        raise ValueError(f"channel {n} is out of range for {layer}, which has {acts.shape[1]} channels "
                         f"(0..{acts.shape[1] - 1})")
    return acts[:, n] if batch is None else acts[batch:batch + 1, n]


def channel(layer: str, n: int, batch: Optional[int] = None) -> Objective:
    """Mean activation of channel ``n`` of ``layer``, over positions (and images, or one image)."""
    return Objective.term(f"{layer}:{n}", lambda feats, image: _channel_of(feats, layer, n, batch).mean(), [layer])


def neuron(layer: str, n: int, batch: Optional[int] = None) -> Objective:
    """Activation of channel ``n`` at the centre position of ``layer``: one unit, one receptive field."""

    def fn(feats: Features, image: Tensor) -> Tensor:
        acts = _channel_of(feats, layer, n, batch)  # (N, H, W)
        return acts[:, acts.shape[1] // 2, acts.shape[2] // 2].mean()

    return Objective.term(f"{layer}:{n}@centre", fn, [layer])


def layer_energy(layer: str) -> Objective:
    """Mean square of every activation of ``layer``: the Deep Dream objective (amplify whatever the
    layer already sees)."""
    return Objective.term(f"{layer}^2", lambda feats, image: (feats[layer] * feats[layer]).mean(), [layer])


def class_logit(index: int, batch: Optional[int] = None) -> Objective:
    """The network's pre-softmax score for ImageNet class ``index`` (needs a model with a classifier;
    ``network_features`` provides the scores under the name ``LOGITS``)."""

    def fn(feats: Features, image: Tensor) -> Tensor:
        logits = feats[LOGITS]
        if not 0 <= index < logits.shape[1]:
            raise ValueError(f"class {index} is out of range: the classifier has {logits.shape[1]} classes")
        return (logits[:, index] if batch is None else logits[batch:batch + 1, index]).mean()

    return Objective.term(f"class {index}", fn, [LOGITS])


def class_log_prob(index: int, batch: Optional[int] = None) -> Objective:
    """The log-probability of ImageNet class ``index``: its logit minus the log-sum-exp of all logits.
    Maximising it raises the class *and* lowers the others, which is what a confident classification
    is (the raw logit can grow while other classes grow too)."""

    def fn(feats: Features, image: Tensor) -> Tensor:
        logits = feats[LOGITS]
        if not 0 <= index < logits.shape[1]:
            raise ValueError(f"class {index} is out of range: the classifier has {logits.shape[1]} classes "
                             f"(0..{logits.shape[1] - 1})")
        log_probs = F.log_softmax(logits, axis=1)
        return (log_probs[:, index] if batch is None else log_probs[batch:batch + 1, index]).mean()

    return Objective.term(f"log p(class {index})", fn, [LOGITS])


def diversity(layer: str) -> Objective:
    """Minus the mean cosine similarity between the Gram matrices of different images of a batch.

    Higher is more diverse: add it with a weight to a channel objective, and the batch shows several
    different things the channel responds to (Olah et al. 2017, "Diversity"). For N images with
    Gram matrices G_i: -sum_{i != j} <G_i, G_j> / (|G_i| |G_j|) / N.
    """

    def fn(feats: Features, image: Tensor) -> Tensor:
        grams = F.gram_matrix(feats[layer])  # (N, C, C)
        n = grams.shape[0]
        flat = grams.reshape(n, -1)  # (N, C*C)
        unit = flat / ((flat * flat).sum(axis=1, keepdims=True) + 1e-12).sqrt()
        similarity = unit @ unit.T  # (N, N), ones on the diagonal
        return (similarity.sum() - n) * (-1.0 / n)

    return Objective.term(f"diversity {layer}", fn, [layer])


# ---- regularisers: Objectives on the image itself; subtract them when maximising ------------------------
def l2(constant: float = 0.5) -> Objective:
    """Mean squared distance of the pixels from ``constant`` (mid grey): keeps colours moderate."""
    return Objective.term("l2", lambda feats, image: ((image - constant) * (image - constant)).mean())


def tv() -> Objective:
    """Total variation: mean squared difference of neighbouring pixels (shared with style transfer)."""
    return tv_loss()


# ---- the network as a feature function -----------------------------------------------------------------
PRE_RELU = ":pre"  # "conv5_1:pre" names conv5_1's convolution output before its ReLU


def network_features(model) -> FeatureFn:
    """``(rgb01_image, layers) -> {layer: activations}`` for a VGG.

    Besides the model's own layer names (activations after the ReLU) it knows two more:
    ``"conv5_1:pre"``, a convolution's output *before* its ReLU, and ``LOGITS``, the class scores (a
    second pass through the convolutions, so combine it with others sparingly).
    """

    if LOGITS in getattr(model, "layer_names", ()):  # every unit is a named output (EfficientNet)
        return lambda x, layers: model(model.normalize(x), layers=list(layers))

    def features(x: Tensor, layers: Sequence[str]) -> Features:
        inputs = model.normalize(x)
        below = {name: _layer_below(model, name[:-len(PRE_RELU)]) for name in layers if name.endswith(PRE_RELU)}
        plain = [name for name in layers if name != LOGITS and name not in below]
        asked = list(dict.fromkeys(plain + [b for b in below.values() if b is not None]))
        found = model(inputs, layers=asked) if asked else {}
        for name, previous in below.items():
            conv = getattr(model, name[:-len(PRE_RELU)])
            found[name] = F.conv2d(inputs if previous is None else found[previous], conv.weight, conv.bias, padding=1)
        if LOGITS in layers:
            found[LOGITS] = model.classify(inputs)
        return found

    return features


def _layer_below(model, conv: str) -> Optional[str]:
    """The layer whose output feeds convolution ``conv`` (None for the first one, which sees the image)."""
    names = model.layer_names
    if conv not in names or not conv.startswith("conv"):
        raise ValueError(f"{conv + PRE_RELU!r}: only convolutions have a pre-ReLU output; valid layers are "
                         f"{', '.join(n for n in names if n.startswith('conv'))}")
    i = names.index(conv)
    return names[i - 1] if i > 0 else None


def pre_relu(layer: str) -> str:
    """The name under which ``network_features`` gives a convolution's output before its ReLU.

    Visualisations maximise this by default, as lucent does with torchvision's VGG (whose hooks see
    the convolution before the separate ReLU module): from a grey start about one conv5 channel in
    five is zero everywhere after the ReLU, so its gradient is zero and it could never be drawn.
    Pooling layers have no ReLU of their own and keep their name.
    """
    return layer + PRE_RELU if layer.startswith("conv") else layer


def check_unit(layer_channels: Mapping[str, int], layer: str, channels: Sequence[int] = ()) -> None:
    """ValueError listing the valid layer names, or the valid channel range, on a bad choice.

    Args:
        layer_channels: layer name -> channel count, e.g. ``dict(models.vgg.layer_plan("vgg16"))``.
    """
    if layer not in layer_channels:
        raise ValueError(f"unknown layer {layer!r}: valid layers are {', '.join(layer_channels)}")
    count = layer_channels[layer]
    bad = [c for c in channels if not 0 <= c < count]
    if bad:
        raise ValueError(f"channel {bad[0]} is out of range for {layer}, which has {count} channels: "
                         f"choose 0..{count - 1}")


# ---- parametrisations -------------------------------------------------------------------------------------
# The square root of the colour covariance of ImageNet photos (RGB), as published in Lucid
# (lucid/optvis/param/color.py, "color_correlation_svd_sqrt"; Olah et al. 2017). Columns are the
# three decorrelated colour directions: brightness first, then two colour-opponent axes. The lesson
# compares it with the covariance of the bundled photos. Normalised so the largest column has length 1.
COLOR_CORRELATION_SVD_SQRT = np.array([[0.26, 0.09, 0.02],
                                       [0.27, 0.00, -0.05],
                                       [0.27, -0.09, 0.03]])
COLOR_MATRIX = COLOR_CORRELATION_SVD_SQRT / np.linalg.norm(COLOR_CORRELATION_SVD_SQRT, axis=0).max()


def to_rgb(t: Tensor, decorrelate: bool = True) -> Tensor:
    """Unconstrained (N, 3, H, W) values -> RGB in (0, 1): mix the decorrelated colour channels
    into RGB (rgb = COLOR_MATRIX @ t at every pixel), then squash with a sigmoid."""
    if decorrelate:
        # The same 3 x 3 matrix applied at every pixel is a 1 x 1 convolution with 3 filters.
        mix = backend.to_device(COLOR_MATRIX.astype(t.dtype).reshape(3, 3, 1, 1), t.device)  # (O, I, 1, 1)
        t = F.conv2d(t, mix)
    return F.sigmoid(t)


def gaussian_blur_array(a, sigma: float):
    """Blur the last two axes of an array with a Gaussian of ``sigma`` pixels (reflect at edges)."""
    xp = backend.get_array_module(a)
    radius = max(1, math.ceil(3 * sigma))
    taps = np.exp(-np.arange(-radius, radius + 1) ** 2 / (2 * sigma * sigma))
    taps /= taps.sum()
    for axis in (-2, -1):
        size = a.shape[axis]
        widths = [(0, 0)] * a.ndim
        widths[axis] = (radius, radius)
        padded = xp.pad(a, widths, mode="reflect" if size > radius else "edge")
        a = sum(float(t) * xp.take(padded, xp.arange(k, k + size), axis=axis) for k, t in enumerate(taps))
    return a


class PixelImage(ImageParam):
    """One free number per pixel and colour; the image is ``to_rgb(values)``.

    Starts as mid grey with faint noise (sd 0.01, as in lucent's ``pixel_image``).
    """

    def __init__(self, shape: Sequence[int], decorrelate: bool = True, sd: float = 0.01,
                 rng: Optional[np.random.Generator] = None, device: str = "cpu") -> None:
        rng = rng or np.random.default_rng(0)
        values = (rng.standard_normal(tuple(shape)) * sd).astype(np.float32)
        self.values = Tensor(backend.to_device(values, device), requires_grad=True)
        self.params = [self.values]
        self.decorrelate = decorrelate

    def image(self) -> Tensor:
        return to_rgb(self.values, self.decorrelate)

    def blur(self, sigma: float) -> None:
        self.values.data = gaussian_blur_array(self.values.data, sigma).astype(np.float32)


class FourierImage(ImageParam):
    """The image is a sum of sinusoids whose free coefficients are scaled by 1/frequency.

    With coefficients a + ib at frequency (ky, kx), the (unconstrained) image is

        x[y, x] = sum_{ky, kx} s(ky, kx) Re((a + ib) e^{2 pi i (ky y / H + kx x / W)}) / (2 sqrt(H W))

    over ky = 0..H-1 and kx = 0..W/2 (``F.fourier_synthesis``; the other half of the spectrum of a
    real image mirrors this one). s = 1 / max(|f|, 1/max(H, W)) with |f| in cycles per pixel:
    natural images have amplitude falling like 1/f, so with this scaling a step of the same size moves
    every frequency by the same *relative* amount, and the optimiser stops favouring high frequencies.
    The division by 2 sqrt(HW) matches Lucid's ``irfft(..., normalized=True) / 4``, which counts each
    pair of mirrored frequencies twice.
    """

    def __init__(self, shape: Sequence[int], decorrelate: bool = True, sd: float = 0.01,
                 decay_power: float = 1.0, rng: Optional[np.random.Generator] = None, device: str = "cpu") -> None:
        rng = rng or np.random.default_rng(0)
        n, c, h, w = self.shape = tuple(shape)
        fy, fx = np.fft.fftfreq(h)[:, None], np.fft.rfftfreq(w)[None, :]
        self.freq = np.sqrt(fy * fy + fx * fx)  # (H, W//2+1), cycles per pixel
        scale = 1.0 / np.maximum(self.freq, 1.0 / max(h, w)) ** decay_power / (2 * math.sqrt(h * w))
        self.scale = Tensor(backend.to_device(scale.astype(np.float32), device))
        self.decorrelate = decorrelate
        init = (rng.standard_normal((2, n, c) + self.freq.shape) * sd).astype(np.float32)
        self.real = Tensor(backend.to_device(init[0], device), requires_grad=True)
        self.imag = Tensor(backend.to_device(init[1], device), requires_grad=True)
        self.params = [self.real, self.imag]

    def spatial(self) -> Tensor:
        """The unconstrained image (N, 3, H, W), before colour mixing and the sigmoid."""
        return F.fourier_synthesis(self.real * self.scale, self.imag * self.scale, self.shape[3])

    def image(self) -> Tensor:
        return to_rgb(self.spatial(), self.decorrelate)

    def blur(self, sigma: float) -> None:
        """Blurring multiplies the spectrum by the Gaussian's transform, exp(-2 pi^2 sigma^2 f^2)."""
        xp = backend.get_array_module(self.real.data)
        gain = xp.asarray(np.exp(-2 * np.pi ** 2 * sigma ** 2 * self.freq ** 2).astype(np.float32))
        self.real.data = self.real.data * gain
        self.imag.data = self.imag.data * gain


def make_param(settings: VisSettings, rng: np.random.Generator, device: str = "cpu") -> ImageParam:
    shape = (settings.batch, 3, settings.size, settings.size)
    if settings.param == "fft":
        return FourierImage(shape, settings.decorrelate, decay_power=settings.decay_power, rng=rng, device=device)
    if settings.param == "pixel":
        return PixelImage(shape, settings.decorrelate, rng=rng, device=device)
    raise ValueError(f"param must be 'fft' or 'pixel', got {settings.param!r}")


def centred_affine(angle: float = 0.0, scale: float = 1.0, in_size: Tuple[int, int] = (1, 1),
                   out_size: Optional[Tuple[int, int]] = None,
                   shift: Tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """The (2, 3) matrix for ``affine_sample`` that rotates by ``angle`` degrees (counter-clockwise
    on screen) and magnifies by ``scale`` about the image centre, then moves the content by
    ``shift = (down, right)`` pixels.

    An output offset d from the centre reads the input at R(-angle) d / scale from the centre: the
    inverse of the motion we want to see. Rows grow downwards, so on screen (x = col, y = -row).
    """
    oh, ow = out_size if out_size is not None else in_size
    centre_in = ((in_size[0] - 1) / 2 - shift[0], (in_size[1] - 1) / 2 - shift[1])
    centre_out = ((oh - 1) / 2, (ow - 1) / 2)
    cos, sin = math.cos(math.radians(angle)) / scale, math.sin(math.radians(angle)) / scale
    linear = np.array([[cos, sin], [-sin, cos]])  # (row, col) offsets out -> in
    offset = np.array(centre_in) - linear @ np.array(centre_out)
    return np.concatenate([linear, offset[:, None]], axis=1)  # (2, 3)


# ---- transforms: random, differentiable, applied to the image before every step ---------------------------
Transform = Callable[[Tensor], Tensor]


def pad(width: int, value: float = 0.5) -> Transform:
    """Surround the image by ``width`` pixels of grey, so its border is not special to the network."""
    return lambda x: F.pad(x, ((0, 0), (0, 0), (width, width), (width, width)), value=value)


def jitter(d: int, rng: np.random.Generator) -> Transform:
    """Crop ``d`` pixels off at a random offset: the picture moves by up to d - 1 pixels each step."""

    def apply(x: Tensor) -> Tensor:
        dy, dx = (int(v) for v in rng.integers(0, d, size=2))
        h, w = x.shape[2] - d, x.shape[3] - d
        return x[:, :, dy:dy + h, dx:dx + w]

    return apply


def random_scale(scales: Sequence[float], rng: np.random.Generator) -> Transform:
    """Resize by a factor drawn from ``scales`` (bilinear)."""

    def apply(x: Tensor) -> Tensor:
        s = float(rng.choice(scales))
        return resize_bilinear(x, (max(1, round(x.shape[2] * s)), max(1, round(x.shape[3] * s))))

    return apply


def random_rotate(degrees: Sequence[float], rng: np.random.Generator) -> Transform:
    """Rotate about the centre by an angle drawn from ``degrees`` (bilinear, edges repeated)."""

    def apply(x: Tensor) -> Tensor:
        angle = float(rng.choice(degrees))
        return affine_sample(x, centred_affine(angle, in_size=x.shape[2:]), padding="border")

    return apply


def standard_transforms(rng: np.random.Generator) -> List[Transform]:
    """lucent's ``standard_transforms``: pad 12, jitter 8, scale 0.9..1.1, rotate -10..10 degrees
    (0 more often), jitter 4. A 128 px image reaches the network at about 140 px."""
    return [
        pad(12),
        jitter(8, rng),
        random_scale([1 + (i - 5) / 50 for i in range(11)], rng),
        random_rotate(list(range(-10, 11)) + 5 * [0], rng),
        jitter(4, rng),
    ]


def random_crop(low: float, high: float, size: int, rng: np.random.Generator) -> Transform:
    """A square crop of ``low``..``high`` of the side at a random place, resized to ``size`` x ``size``
    (bilinear), left-right flipped half the time. Each image of a batch gets its own crop."""

    def one(x: Tensor) -> Tensor:
        H, W = x.shape[2:]
        side = max(1, round(min(H, W) * float(rng.uniform(low, high))))
        top, left = (int(rng.integers(0, n - side + 1)) for n in (H, W))
        crop = resize_bilinear(x[:, :, top:top + side, left:left + side], (size, size))
        return crop[:, :, :, ::-1] if rng.random() < 0.5 else crop

    return lambda x: F.concatenate([one(x[i:i + 1]) for i in range(x.shape[0])], axis=0)


def views(count: int, transforms: Sequence[Transform]) -> Transform:
    """``count`` independently transformed copies of the batch, stacked: (N, ...) -> (count * N, ...).
    The transforms must give every copy the same size (``random_crop`` does)."""

    def apply(x: Tensor) -> Tensor:
        copies = []
        for _ in range(count):
            y = x
            for transform in transforms:
                y = transform(y)
            copies.append(y)
        return copies[0] if count == 1 else F.concatenate(copies, axis=0)

    return apply


def for_first(steps: int, transforms: Sequence[Transform]) -> List[Transform]:
    """The transforms as one, applied for the first ``steps`` calls (one call per Adam step), then
    skipped: the image passes through unchanged."""
    calls = [0]

    def apply(x: Tensor) -> Tensor:
        calls[0] += 1
        if calls[0] <= steps:
            for transform in transforms:
                x = transform(x)
        return x

    return [apply]


def blur_every(every: int, sigma: float) -> Callback:
    """A render callback: blur the parametrisation every ``every`` steps (not after the last)."""

    def callback(info: StepInfo) -> None:
        if info.step % every == 0 and info.step < info.steps:
            info.param.blur(sigma)

    return callback


# ---- the whole job ----------------------------------------------------------------------------------------
@dataclass
class VisResult:
    images: np.ndarray  # uint8 (N, H, W, 3)
    status: str  # "done", "interrupted", or which objective term became non-finite
    history: List[Dict[str, float]] = field(default_factory=list)  # per step: loss and every term
    seconds: float = 0.0


def visualize(model, objective: Objective, settings: VisSettings = VisSettings(),
              callbacks: Sequence[Callback] = ()) -> VisResult:
    """Render images that maximise ``objective`` for a VGG ``model``.

    Example: ``visualize(vgg, channel("conv4_1", 42)).images[0]`` is a uint8 128 x 128 picture.
    """
    if (settings.size < 16 or settings.steps < 1 or settings.batch < 1 or settings.blur_every < 0
            or settings.plain_steps < 0 or settings.views < 1 or (settings.views > 1 and settings.crops is None)):
        raise ValueError(f"need size >= 16, steps >= 1, batch >= 1, blur_every >= 0 and plain_steps >= 0; got "
                         f"size {settings.size}, steps {settings.steps}, batch {settings.batch}, "
                         f"blur_every {settings.blur_every}, plain_steps {settings.plain_steps}; views > 1 needs crops")
    rng = np.random.default_rng(settings.seed)
    param = make_param(settings, rng, model.device)
    if settings.l2_weight:
        objective = objective - settings.l2_weight * l2()
    if settings.tv_weight:
        objective = objective - settings.tv_weight * tv()
    every = [blur_every(settings.blur_every, settings.blur_sigma)] if settings.blur_every else []
    if settings.crops is not None:
        steps = [random_crop(*settings.crops, settings.size, rng)]
    else:
        steps = standard_transforms(rng)
    transforms = for_first(settings.steps - settings.plain_steps, [views(settings.views, steps)])
    start = time.perf_counter()
    result = render(param, network_features(model), objective,
                    RenderSettings(steps=settings.steps, optimizer="adam", lr=settings.lr, maximize=True),
                    transforms=transforms if settings.transforms else (),
                    callbacks=list(callbacks) + every)
    return VisResult(to_uint8_batch(result.image), result.status, result.history, time.perf_counter() - start)


def visualize_channels(model, layer: str, channels: Sequence[int], settings: VisSettings = VisSettings(),
                       callbacks: Sequence[Callback] = ()) -> VisResult:
    """One image per channel, rendered together as a batch (image i maximises channels[i], before
    the ReLU: see ``pre_relu``)."""
    check_unit({name: model.channels(name) for name in model.layer_names}, layer, channels)
    objective = sum(channel(pre_relu(layer), c, batch=i) for i, c in enumerate(channels))
    return visualize(model, objective, replace(settings, batch=len(channels)), callbacks)


# ---- measuring pictures -----------------------------------------------------------------------------------
def to_uint8_batch(images: np.ndarray) -> np.ndarray:
    """(N, 3, H, W) floats in [0, 1] -> uint8 (N, H, W, 3)."""
    return (np.clip(images.transpose(0, 2, 3, 1), 0, 1) * 255).round().astype(np.uint8)


def mean_channel_activation(model, images: np.ndarray, layer: str, n: int) -> np.ndarray:
    """Mean activation of channel ``n`` of ``layer`` for each uint8 (N, H, W, 3) image (no transforms)."""
    x = Tensor(backend.to_device(images.transpose(0, 3, 1, 2).astype(np.float32) / 255.0, model.device))
    with no_grad():
        acts = network_features(model)(x, [layer])[layer]
    return acts.numpy()[:, n].mean(axis=(1, 2))


def high_frequency_share(image: np.ndarray, cutoff: float = 0.25) -> float:
    """Share of an image's spectral energy at spatial frequencies above ``cutoff`` cycles per pixel.

    The default, 0.25, is half the Nyquist frequency (0.5 cycles per pixel). The image (H, W, 3) or
    (H, W) is made zero-mean per channel first, so the constant (DC) term does not dilute the share.
    """
    x = np.asarray(image, dtype=np.float64)
    x = x[..., None] if x.ndim == 2 else x
    x = x - x.mean(axis=(0, 1))
    power = (np.abs(np.fft.fft2(x, axes=(0, 1))) ** 2).sum(axis=2)  # (H, W)
    fy, fx = np.fft.fftfreq(x.shape[0])[:, None], np.fft.fftfreq(x.shape[1])[None, :]
    high = np.sqrt(fy * fy + fx * fx) > cutoff
    total = power.sum()
    return float(power[high].sum() / total) if total > 0 else 0.0
