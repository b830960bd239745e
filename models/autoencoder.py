"""Autoencoders: dense, convolutional, denoising, sparse, and a linear one that equals PCA.

An autoencoder is an encoder that squeezes an image into a short code and a decoder that rebuilds
the image from the code, trained to make the reconstruction match the input. The code is too short
to copy the input, so the network has to find what the images have in common. Every model here is
an ``Autoencoder``: two ``nn.Sequential`` halves, ``encode``, ``decode``, and a ``loss`` that says
what is being minimised:

    dense      Flatten -> [Linear, ReLU]* -> Linear(code)  |  [Linear, ReLU]* -> Linear -> Sigmoid
    conv       [Conv3x3, ReLU, MaxPool2]* -> Linear(code)  |  Linear -> [Upsample2, Conv3x3, ReLU]* -> Conv3x3 -> Sigmoid
    denoising  any of the above, trained to rebuild the clean image from a corrupted one
               (Vincent et al. 2008): Gaussian noise, or masking noise that blanks pixels or patches
    sparse     dense with a ReLU code and an L1 penalty on it (Ng 2011, "Sparse autoencoder" notes
               use a KL penalty; L1 is the simpler cousin with the same effect: most units stay at 0)
    linear     one Linear down, one Linear up, no activation: learns the PCA subspace (Baldi &
               Hornik 1989); see lessons/07 and tinygrad_cv/pca.py
    vae        the variational autoencoder (Kingma & Welling 2014), built on Autoencoder: models/vae.py

Images are (N, C, H, W) in [0, 1], so the image decoders end with a sigmoid. The conv decoder
upsamples with nearest neighbours and then convolves instead of using a transposed convolution:
a stride-2 transposed convolution paints overlapping kernels unevenly and leaves checkerboard
artefacts (Odena, Dumoulin & Olah 2016, "Deconvolution and Checkerboard Artifacts"). Each upsample +
conv pair is one ``nn.UpsampleConv2d`` layer, the same numbers as the two layers in a row.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, Optional, Sequence

import numpy as np

from tinygrad_cv import backend
from tinygrad_cv import functional as F
from tinygrad_cv import nn
from tinygrad_cv.tensor import Tensor, no_grad

MODELS = ("dense", "conv", "denoising", "sparse", "linear")
NOISE_KINDS = ("gaussian", "mask", "patch")


# ---- corruption for denoising -------------------------------------------------------------------------


@dataclass(frozen=True)
class Noise:
    """How a denoising autoencoder corrupts its inputs.

    gaussian: x + factor * N(0, 1), clipped to [0, 1]. factor 0.5 is the setting of the Keras
        denoising example on MNIST; 0.3 keeps 8x8 digits readable to a person.
    mask: each pixel set to 0 with probability ``fraction`` ("masking noise", Vincent et al. 2008
        use 10-50%).
    patch: ``patches`` squares of side ``patch_size`` set to 0 at random places (occlusion).
    """

    kind: str = "gaussian"
    factor: float = 0.3
    fraction: float = 0.3
    patch_size: int = 3
    patches: int = 1

    def __post_init__(self) -> None:
        if self.kind not in NOISE_KINDS:
            raise ValueError(f"unknown noise {self.kind!r}: expected one of {NOISE_KINDS}")
        if self.factor < 0 or not 0 <= self.fraction <= 1 or self.patch_size < 1 or self.patches < 0:
            raise ValueError(f"bad noise settings {self}: need factor >= 0, 0 <= fraction <= 1, patch_size >= 1")


def corrupt(x: Any, noise: Noise, rng: np.random.Generator) -> Any:
    """A corrupted copy of images x (N, C, H, W) in [0, 1]; x itself is left alone.

    The random numbers come from ``rng`` on the CPU (so a seed gives the same noise on any device)
    and are moved to x's device.
    """
    xp = backend.get_array_module(x)
    device = backend.device_of(x)
    if noise.kind == "gaussian":
        eps = rng.standard_normal(x.shape).astype(x.dtype)
        return xp.clip(x + noise.factor * backend.to_device(eps, device), 0.0, 1.0)
    if noise.kind == "mask":
        keep = (rng.random(x.shape) >= noise.fraction).astype(x.dtype)
        return x * backend.to_device(keep, device)
    return x * backend.to_device(_patch_keep_mask(x.shape, noise, rng).astype(x.dtype), device)


def _patch_keep_mask(shape: tuple, noise: Noise, rng: np.random.Generator) -> np.ndarray:
    """1 everywhere except ``noise.patches`` random squares per image (0 there, all channels)."""
    N, _, H, W = shape
    size = min(noise.patch_size, H, W)
    keep = np.ones((N, 1, H, W))
    for n in range(N):
        for _ in range(noise.patches):
            top, left = rng.integers(0, H - size + 1), rng.integers(0, W - size + 1)
            keep[n, :, top:top + size, left:left + size] = 0.0
    return keep


# ---- the models -------------------------------------------------------------------------------------------


class Autoencoder(nn.Module):
    """encoder: images -> codes (N, code); decoder: codes -> images. Subclasses build the two halves."""

    encoder: nn.Sequential
    decoder: nn.Sequential
    code_size: int

    def encode(self, x: Tensor) -> Tensor:
        return self.encoder(x)

    def decode(self, z: Tensor) -> Tensor:
        return self.decoder(z)

    def forward(self, x: Tensor) -> Tensor:
        return self.decode(self.encode(x))

    def loss(self, x: Tensor, rng: Optional[np.random.Generator] = None) -> Tensor:
        """The training objective on a batch: mean squared reconstruction error per value."""
        return F.mse_loss(self(x), x)


class DenseAutoencoder(Autoencoder):
    """Fully connected: image_shape -> hidden... -> code -> ...hidden -> image_shape.

    The code layer has no activation (any real value), the hidden layers ReLU, the output a sigmoid
    (pixels in [0, 1]). With image_shape (1, 8, 8), hidden (128,) and code 8 this is the 64-128-8
    network of the lesson.
    """

    def __init__(self, image_shape: Sequence[int] = (1, 8, 8), hidden: Sequence[int] = (128,), code: int = 8,
                 rng: Optional[np.random.Generator] = None) -> None:
        self.image_shape, self.hidden, self.code_size = tuple(image_shape), tuple(hidden), code
        d = math.prod(self.image_shape)
        down_sizes = [d, *self.hidden]  # e.g. [64, 128]
        up_sizes = [code, *reversed(self.hidden)]  # e.g. [8, 128]
        down = [nn.Flatten()]
        for a, b in zip(down_sizes, down_sizes[1:]):
            down += [nn.Linear(a, b, rng=rng), nn.ReLU()]
        down.append(nn.Linear(down_sizes[-1], code, rng=rng))
        up = []
        for a, b in zip(up_sizes, up_sizes[1:]):
            up += [nn.Linear(a, b, rng=rng), nn.ReLU()]
        up += [nn.Linear(up_sizes[-1], d, rng=rng), nn.Sigmoid(), nn.Unflatten(self.image_shape)]
        self.encoder, self.decoder = nn.Sequential(*down), nn.Sequential(*up)


class SparseAutoencoder(DenseAutoencoder):
    """A dense autoencoder with a ReLU code and an L1 penalty that pushes most code values to 0.

    loss = MSE(x_hat, x) + sparsity * mean |z|. With a ReLU code, |z| = z and a unit is "active" on
    an image when its value is above 0; ``code_statistics`` reports how many are.
    """

    def __init__(self, image_shape: Sequence[int] = (1, 8, 8), hidden: Sequence[int] = (128,), code: int = 8,
                 sparsity: float = 1e-3, rng: Optional[np.random.Generator] = None) -> None:
        super().__init__(image_shape, hidden, code, rng=rng)
        if sparsity < 0:
            raise ValueError(f"sparsity weight must be >= 0, got {sparsity}")
        self.sparsity = sparsity
        # Start every code unit switched on (bias 0.5): a ReLU unit that is negative on every image
        # gets no gradient and never recovers, and with the default init a few start that way.
        self.encoder[-1].bias.data[...] = 0.5
        self.encoder.layers.append(nn.ReLU())  # a code of non-negative values; most should be 0

    def loss(self, x: Tensor, rng: Optional[np.random.Generator] = None) -> Tensor:
        z = self.encode(x)
        return F.mse_loss(self.decode(z), x) + self.sparsity * F.mean(F.abs(z))


class ConvAutoencoder(Autoencoder):
    """Convolutional: [Conv3x3 + ReLU + MaxPool2] per channel count, then a Linear to the code;
    the decoder mirrors it with nearest-neighbour upsampling followed by 3x3 convolutions.

    Shape: (N, C, H, W) -> (N, code) -> (N, C, H, W); H and W must be divisible by 2^len(channels).
    With (1, 8, 8) and channels (16, 32): 8x8 -> 4x4 -> 2x2, so 32*2*2 = 128 values go to the code.

    ``output_mean``: the mean pixel value of the training images. The last convolution's bias then
    starts at its logit, so the untrained decoder draws a flat image of the average brightness. Pass
    it for data that is mostly black, such as MNIST (mean 0.13): started from PyTorch's default
    initialisation (a grey of 0.5 everywhere), the first Adam steps move every decoder weight towards
    a darker output at once, the logits reach -300 within some 20 steps, the sigmoid saturates, its
    gradient vanishes, and the model stays at the error of a black image (0.11) whatever the digit.
    PyTorch, with the same weights and batches, does exactly the same (see ``start_at_mean``).
    """

    def __init__(self, image_shape: Sequence[int] = (1, 8, 8), channels: Sequence[int] = (16, 32), code: int = 8,
                 rng: Optional[np.random.Generator] = None, output_mean: Optional[float] = None) -> None:
        from tinygrad_cv.nn.conv import Conv2d, MaxPool2d, UpsampleConv2d

        C, H, W = self.image_shape = tuple(image_shape)
        self.channels, self.code_size = tuple(channels), code
        scale = 2 ** len(self.channels)
        if H % scale or W % scale:
            raise ValueError(f"ConvAutoencoder: image shape {self.image_shape} must have H and W divisible by "
                             f"{scale} (one 2x2 pooling per entry of channels={self.channels})")
        inner = (self.channels[-1], H // scale, W // scale)  # the feature map at the bottom, e.g. (32, 2, 2)
        down = []
        for c_in, c_out in zip((C, *self.channels), self.channels):
            down += [Conv2d(c_in, c_out, 3, padding=1, rng=rng), nn.ReLU(), MaxPool2d(2)]
        down += [nn.Flatten(), nn.Linear(math.prod(inner), code, rng=rng)]
        up = [nn.Linear(code, math.prod(inner), rng=rng), nn.ReLU(), nn.Unflatten(inner)]
        widths = list(reversed(self.channels))  # e.g. [32, 16]
        for c_in, c_out in zip(widths, widths[1:] + widths[-1:]):
            up += [UpsampleConv2d(c_in, c_out, 3, scale_factor=2, rng=rng), nn.ReLU()]  # upsample x2, 3x3 conv
        up += [Conv2d(widths[-1], C, 3, padding=1, rng=rng), nn.Sigmoid()]
        self.encoder, self.decoder = nn.Sequential(*down), nn.Sequential(*up)
        if output_mean is not None:
            start_at_mean(self.decoder[-2], output_mean)


def start_at_mean(layer: nn.Module, mean: float) -> None:
    """Set the bias of ``layer``, the layer before an output sigmoid, to logit(mean), so that the
    untrained model outputs about ``mean`` everywhere (its weights add only a little around it).

    This is the usual advice to "initialise the last layer's bias to the data's prior": the first
    gradient steps then go to the shapes of the images rather than to their overall brightness.
    ``mean`` is clipped to [0.01, 0.99] (an all-black or all-white data set would give an infinite logit).
    """
    if not math.isfinite(mean):
        raise ValueError(f"start_at_mean: the mean pixel value must be a finite number, got {mean}")
    p = min(max(float(mean), 0.01), 0.99)
    layer.bias.data[...] = math.log(p / (1.0 - p))


class DenoisingAutoencoder(Autoencoder):
    """Any autoencoder trained to rebuild the clean image from a corrupted copy (Vincent et al. 2008).

    It holds the very same encoder and decoder as the model it wraps (so the checkpoint names are
    the same); only the loss differs: MSE(model(corrupt(x)), x).
    """

    def __init__(self, model: Autoencoder, noise: Noise = Noise()) -> None:
        self.encoder, self.decoder = model.encoder, model.decoder
        self.code_size, self.noise = model.code_size, noise
        self.image_shape = getattr(model, "image_shape", None)

    def loss(self, x: Tensor, rng: Optional[np.random.Generator] = None) -> Tensor:
        if rng is None:
            raise ValueError("DenoisingAutoencoder.loss needs an rng (np.random.Generator) for the noise")
        noisy = Tensor(corrupt(x.data, self.noise, rng))
        return F.mse_loss(self(noisy), x)


class LinearAutoencoder(Autoencoder):
    """z = W_e x (+ b_e), x_hat = W_d z (+ b_d): one linear map down to k values, one back up.

    Its best reconstruction is the projection onto the top-k principal subspace (Baldi & Hornik 1989):
    the decoder's columns span that subspace (but need not be the principal directions themselves).

    bias=False for data that is already centred: then the model is exactly the PCA problem, with
    fewer parameters and a faster, cleaner fit (the lab and the property test use this). bias=True
    for raw data such as [0, 1] pixels: the biases learn to handle the mean (at the optimum
    W_d b_e + b_d equals the data mean off the subspace), so nobody has to centre the images.
    """

    def __init__(self, image_shape: Sequence[int] = (1, 8, 8), code: int = 8, bias: bool = True,
                 rng: Optional[np.random.Generator] = None) -> None:
        self.image_shape, self.code_size, self.bias = tuple(image_shape), code, bias
        d = math.prod(self.image_shape)
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(d, code, bias=bias, rng=rng))
        self.decoder = nn.Sequential(nn.Linear(code, d, bias=bias, rng=rng), nn.Unflatten(self.image_shape))

    @property
    def decoder_weight(self) -> Any:
        """W_d, (d, k): its column space is what the model has learnt."""
        return self.decoder[0].weight.data


# ---- building by name ---------------------------------------------------------------------------------------


def build_autoencoder(kind: str, image_shape: Sequence[int], code: int = 8, hidden: Sequence[int] = (128,),
                      channels: Sequence[int] = (16, 32), noise: Noise = Noise(), sparsity: float = 1e-3,
                      linear_bias: bool = True, rng: Optional[np.random.Generator] = None,
                      output_mean: Optional[float] = None) -> Autoencoder:
    """One of MODELS by name. ``denoising`` wraps a dense autoencoder with the same hidden sizes.
    ``output_mean`` (the training images' mean pixel) starts the conv decoder at that brightness
    (``ConvAutoencoder``); the other models ignore it."""
    if code < 1:
        raise ValueError(f"code size must be at least 1, got {code}")
    if kind == "dense":
        return DenseAutoencoder(image_shape, hidden, code, rng=rng)
    if kind == "conv":
        return ConvAutoencoder(image_shape, channels, code, rng=rng, output_mean=output_mean)
    if kind == "denoising":
        return DenoisingAutoencoder(DenseAutoencoder(image_shape, hidden, code, rng=rng), noise)
    if kind == "sparse":
        return SparseAutoencoder(image_shape, hidden, code, sparsity, rng=rng)
    if kind == "linear":
        return LinearAutoencoder(image_shape, code, bias=linear_bias, rng=rng)
    raise ValueError(f"unknown autoencoder {kind!r}: expected one of {MODELS}")


# ---- training and measuring -------------------------------------------------------------------------------


def model_device(model: nn.Module) -> str:
    return model.parameters()[0].device


def train_step(model: Autoencoder, optimizer: Any, x: Any, rng: Optional[np.random.Generator] = None) -> float:
    """One optimiser step on a batch x (array, moved to the model's device). Returns the batch loss."""
    optimizer.zero_grad()
    loss = model.loss(Tensor(backend.to_device(x, model_device(model))), rng)
    loss.backward()
    optimizer.step()
    return loss.item()


def map_batches(model: nn.Module, fn: Any, x: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """fn (a method of model) over images x in batches on the model's device, without a graph;
    the results concatenated as one NumPy array."""
    device = model_device(model)
    outs = []
    with no_grad():
        for i in range(0, len(x), batch_size):
            outs.append(fn(Tensor(backend.to_device(x[i:i + batch_size], device))).numpy())
    return np.concatenate(outs)


def reconstruct(model: Autoencoder, x: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """The model's reconstructions of images x, as a NumPy array of x's shape."""
    return map_batches(model, model, x, batch_size)


def encode(model: Autoencoder, x: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """The codes of images x, (N, code)."""
    return map_batches(model, model.encode, x, batch_size)


def reconstruction_mse(model: Autoencoder, x: np.ndarray, target: Optional[np.ndarray] = None) -> float:
    """Mean squared error per value between model(x) and target (x itself by default)."""
    target = x if target is None else target
    return float(((reconstruct(model, x) - target) ** 2).mean())


def code_statistics(model: Autoencoder, x: np.ndarray) -> Dict[str, float]:
    """mean_activation: mean code value; active_fraction: share of code values above 0;
    dead_units: units that are 0 on every image (a ReLU code can switch a unit off for good)."""
    z = encode(model, x)
    active = z > 0
    return {"mean_activation": float(z.mean()), "active_fraction": float(active.mean()),
            "dead_units": int((~active.any(axis=0)).sum())}
