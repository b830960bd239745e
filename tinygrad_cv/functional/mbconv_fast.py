"""EfficientNet's inverted-residual block for inference, fused (fast path; models/efficientnet.py
chooses it when no gradient is wanted).

The expand convolution's ReLU6 is written straight into the depthwise layer's padded buffer, the
depthwise ReLU6 and the residual sum are done in place, and no graph is built
(``kernels/fast/mbconv.py``). The op-by-op reference is ``MBConv.forward``'s other branch.
"""
from __future__ import annotations

from typing import Iterable, Optional, Tuple

from tinygrad_cv.kernels.fast import mbconv
from tinygrad_cv.tensor import Tensor

ConvTensors = Tuple[Tensor, Tensor]  # (weight, bias) of a convolution with batch norm folded in

__all__ = ["block_forward", "supports"]


def supports(x: Tensor, params: Iterable[Tensor]) -> bool:
    """Whether the fused block can run: float32 NumPy input and parameters."""
    return mbconv.supports(x.data, *(p.data for p in params))


def block_forward(x: Tensor, expand: Optional[ConvTensors], depthwise: ConvTensors, project: ConvTensors,
                  stride: int, pads: Tuple[Tuple[int, int], Tuple[int, int]], residual: bool) -> Tensor:
    """The block's output (no graph: nothing flows back through it). Arguments as
    ``kernels.fast.mbconv.block_forward``, with Tensors."""
    def arrays(conv: Optional[ConvTensors]):
        return None if conv is None else (conv[0].data, conv[1].data)

    return Tensor(mbconv.block_forward(x.data, arrays(expand), arrays(depthwise), arrays(project), stride,
                                       pads, residual))
