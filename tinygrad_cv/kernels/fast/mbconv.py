"""An inverted-residual (MBConv) block of EfficientNet for inference, on arrays, with nothing in between.

The block is expand (1x1 convolution, ReLU6), depthwise (KxK, stride 1 or 2, ReLU6), project (1x1
convolution) and the residual sum, with batch norm folded into each convolution (weight, bias).
Run op by op, the depthwise layer copies its input into a zero-padded buffer, each ReLU6 and the
residual sum allocate a new activation, and each op pays for its graph bookkeeping: time beyond
the kernels' own (PERFORMANCE.md). When no gradient is wanted, this module does the block as five
steps on arrays:

1. expand: one matrix product over all pixels (channels-last rows, as pointwise.py);
2. its bias and ReLU6, written straight into the inside of the depthwise layer's zero-padded
   channels-last buffer (so the padding, even TensorFlow's asymmetric SAME padding, costs no pass);
3. the depthwise convolution of that buffer (depthwise.py's einsums, with no padding left to do);
4. its ReLU6, in place;
5. project: one matrix product, then its bias and the block's input added in place.

Everything runs on the calling thread except the matrix products, which BLAS spreads over the cores:
bands of rows on both cores (parallel.py) were slower, since a helper thread can take longer to wake
than these layers take (PERFORMANCE.md).
"""
from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np

from tinygrad_cv.kernels.fast import depthwise
from tinygrad_cv.kernels.fast.channels_last import zero_bordered

Conv = Tuple[np.ndarray, np.ndarray]  # (weight, bias) of a convolution with batch norm folded in


def supports(*arrays: Any) -> bool:
    """float32 NumPy arrays, the only kind this path computes with."""
    return all(isinstance(a, np.ndarray) and a.dtype == np.float32 for a in arrays)


def block_forward(x: np.ndarray, expand: Optional[Conv], dw: Conv, project: Conv, stride: int,
                  pads: Tuple[Tuple[int, int], Tuple[int, int]], residual: bool) -> np.ndarray:
    """The block's output for x (N, Cin, H, W).

    expand: (w (Ce, Cin, 1, 1), b (Ce,)) or None (then Ce = Cin); dw: (w (Ce, 1, K, K), b);
    project: (w (Co, Ce, 1, 1), b); pads: ((top, bottom), (left, right)) of the depthwise layer;
    residual: add x to the output (stride 1, Co = Cin). Returns (N, Co, OH, OW), an NCHW view of a
    channels-last array (the convention of kernels/fast).
    """
    N, Cin, H, W = x.shape
    Ce = dw[0].shape[0]
    (top, _), (left, _) = pads
    rows = x.transpose(0, 2, 3, 1).reshape(N * H * W, Cin)  # one row per pixel (a view if channels-last)
    buf = zero_bordered((N, H, W, Ce), pads, np.float32)
    inside = buf[:, top:top + H, left:left + W]
    if expand is None:
        inside[...] = rows.reshape(N, H, W, Cin)
    else:
        np.add((rows @ expand[0].reshape(Ce, Cin).T).reshape(N, H, W, Ce), expand[1], out=inside)
        np.clip(inside, 0.0, 6.0, out=inside)
    h = depthwise.depthwise_forward(buf.transpose(0, 3, 1, 2), dw[0], dw[1], stride, 0)  # (N, Ce, OH, OW)
    OH, OW = h.shape[2:]
    h = h.transpose(0, 2, 3, 1).reshape(N * OH * OW, Ce)  # the channels-last array itself
    np.clip(h, 0.0, 6.0, out=h)
    y = h @ project[0].reshape(-1, Ce).T
    y += project[1]
    if residual:
        y += rows
    return y.reshape(N, OH, OW, -1).transpose(0, 3, 1, 2)
