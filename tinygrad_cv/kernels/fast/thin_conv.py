"""The input gradient of a 3x3 convolution with few output channels, as one matrix product.

conv3x3.py computes dL/dx as nine shifted products ``dY[q - s_t] @ T_t`` of shape (rows, O) @ (O, C).
When O is small (a decoder's last layer maps 16 channels to 1 grey image) each of them is an outer
product with an inner dimension of 1 to 4: BLAS runs such products far below its speed, and adding
the nine (rows, C) results into the output costs nine passes over it.

Here the nine shifted gradient rows are first gathered side by side, ``D[q] = [dY[q - s_0], ...,
dY[q - s_8]]`` of shape (rows, 9*O) (cheap: it is 9*O values wide), and dL/dx is one product
``D @ M`` with M the nine (O, C) tap matrices stacked, (9*O, C). Same numbers, one pass over dL/dx.
"""
from __future__ import annotations

from typing import Any, List

import numpy as np

from tinygrad_cv.kernels.fast.channels_last import zero_border
from tinygrad_cv.kernels.fast.parallel import parallel_map, split, workers
from tinygrad_cv.kernels.fast.scratch import work_buffer

MAX_CHANNELS = 4  # output channels up to which gathering the gradient beats nine products
BLOCK_ROWS = 8192  # rows of dL/dx computed together (their gathered gradient stays in cache)


def grad_input_few_outputs(gpad: Any, tap_mats: Any, offsets: List[int]) -> Any:
    """dL/dx for y = conv3x3_padded(x, tap_mats), like ``conv3x3_padded_grad_input``.

    Args:
        gpad: dL/dy as a zero-bordered (N, H+2, W+2, O) buffer. tap_mats: (9, O, C) forward taps.
        offsets: the row offset of each tap on the padded grid (``conv3x3.tap_offsets(W)``).
    Returns:
        (N, H+2, W+2, C) with a zero border.
    """
    N, Hp, Wp, O = gpad.shape
    C = tap_mats.shape[2]
    G = gpad.reshape(-1, O)  # (N*(H+2)*(W+2), O)
    stacked = np.ascontiguousarray(tap_mats).reshape(9 * O, C)  # rows t*O .. t*O+O-1: tap t, (O, C)
    dxpad = np.empty((N, Hp, Wp, C), dtype=gpad.dtype)
    dX = dxpad.reshape(-1, C)

    def rows_block(rows: range) -> None:  # dX[q] = sum_t dY[q - s_t] @ T_t, for q in rows
        q0, q1 = rows.start, rows.stop
        gathered = work_buffer("thin_conv.gathered", (q1 - q0, 9, O), gpad.dtype)  # this thread's, reused
        for t, s in enumerate(offsets):
            gathered[:, t] = G[q0 - s:q1 - s]
        np.matmul(gathered.reshape(q1 - q0, 9 * O), stacked, out=dX[q0:q1])

    first, last = Wp + 1, G.shape[0] - Wp - 1  # rows whose nine taps stay inside G
    parallel_map(rows_block, split(first, last, BLOCK_ROWS, at_least=2 * workers()))
    return zero_border(dxpad)
