"""The feed-forward style network's inference pass, fused (fast path; models/stylenet.py chooses it).

Every activation lives in the next layer's reflection-padded channels-last buffer, and the
normalisation, ReLU, residual sum and upsampling are written into it in one pass
(``kernels/fast/style_layers.py``). The layer-by-layer reference is ``StyleNet.forward``.
"""
from __future__ import annotations

from typing import Any, List, Tuple

import numpy as np

from tinygrad_cv.kernels.fast import style_layers
from tinygrad_cv.nn.norm import EPS

Workspace = style_layers.Workspace  # the buffers a network keeps between pictures of one size

__all__ = ["Workspace", "forward_fused"]


def forward_fused(layers: List[Tuple[str, Any]], image: np.ndarray, blend: np.ndarray, workspace: style_layers.Workspace,
                  multiple: int) -> np.ndarray:
    """The network's output for ``image`` (N, 3, H, W) float32 with style blend(s) ``blend`` (N or 1,
    styles). ``layers`` are the network's (name, layer) pairs in order; each layer has ``w``,
    ``stride``, ``upsample`` and ``norm.gamma/beta``. H and W are padded up to ``multiple`` by
    reflection, as the reference pads them, and cropped back at the end."""
    N, _, H, W = image.shape
    H4, W4 = H + (-H % multiple), W + (-W % multiple)
    p = layers[0][1].w.shape[2] // 2
    workspace.start(image.shape)
    empty = workspace.empty  # buffers kept for the next picture of this size
    buf = style_layers.padded_buffer(N, H4, W4, 3, p, empty=empty)
    inner = style_layers.interior(buf, p)
    inner[:, :H, :W] = image.transpose(0, 2, 3, 1)
    if H4 > H:  # up to the multiple, as reflection_pad2d(image, (0, ph, 0, pw)) in the reference
        inner[:, H:] = inner[:, H - 2:2 * H - 2 - H4:-1]
    if W4 > W:
        inner[:, :, W:] = inner[:, :, W - 2:2 * W - 2 - W4:-1]
    style_layers.reflect_borders(buf, p)
    for (name, layer), (_, following) in zip(layers, layers[1:] + [(None, None)]):
        last = following is None  # the output layer: a new array, not the workspace's
        y, mean, var = style_layers.conv_bands(buf, layer.w.data, layer.stride, np.empty if last else empty)
        gamma, beta = blend @ layer.norm.gamma.data, blend @ layer.norm.beta.data  # (N or 1, C)
        if last:  # the sigmoid, in place
            style_layers.normalise_into(y, mean, var, gamma, beta, EPS, y, act="sigmoid")
            return y.transpose(0, 3, 1, 2)[:, :, :H, :W]
        if name.startswith("res.") and name.endswith(".0"):
            block_input = buf  # kept for the block's sum; the block's inner layer gets a new buffer
        closes_block = name.startswith("res.") and name.endswith(".1")  # adds the block's input
        residual = style_layers.interior(block_input, 1) if closes_block else None
        q, up = following.w.shape[2] // 2, 2 if following.upsample else 1
        buf = style_layers.padded_buffer(N, y.shape[1] * up, y.shape[2] * up, y.shape[3], q, empty=empty)
        style_layers.normalise_into(y, mean, var, gamma, beta, EPS, style_layers.interior(buf, q),
                                    act="relu" if residual is None else "none", residual=residual, upsample=up)
        style_layers.reflect_borders(buf, q)
    raise AssertionError("the last layer returns")
