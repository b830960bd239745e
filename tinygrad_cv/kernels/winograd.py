"""Winograd's minimal filtering F(2x2, 3x3): the 3x3 convolution with 2.25x fewer multiplications.

Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks" (CVPR 2016), section 4. In 1-D,
two outputs of a 3-tap filter g over four inputs d take 4 multiplications instead of 6:

    y = A^T [(G g) * (B^T d)]        * is elementwise

    B^T = [[1, 0, -1, 0],      G = [[1,    0,   0],      A^T = [[1, 1,  1,  0],
           [0, 1,  1, 0],           [1/2, 1/2, 1/2],            [0, 1, -1, -1]]
           [0, -1, 1, 0],           [1/2, -1/2, 1/2],
           [0, 1,  0, -1]]          [0,    0,   1]]

Nested in 2-D, a 2x2 tile of outputs comes from a 4x4 tile of inputs (tiles overlap by two pixels):

    Y = A^T [U * V] A,   U = G g G^T (4x4, the filter),   V = B^T d B (4x4, the input tile)

16 multiplications instead of 4 * 9 = 36. With C input and O output channels the elementwise product
is summed over C, so each of the 16 positions k of the 4x4 tile is one matrix product over all tiles:

    M[k] (tiles, O) = V[k] (tiles, C) @ U[k] (C, O)        16 GEMMs with 16/36 of the direct flops

The transforms B^T d B and A^T M A are only additions and subtractions, done here with NumPy on
strided views of the padded channels-last buffer of kernels/conv3x3.py. They cost passes over memory
(V is 4x the input, M 4x the output), so Winograd pays where the channels are many and the images
small, VGG's deeper layers: there it ran 1.7-2x faster than the shifted GEMMs on a 2-core AVX-512
machine, and slower on the 64-channel full-resolution layers (see ``worth_it``). The answers differ
from the direct method by float32 rounding only (about 5e-7 relative on VGG-sized layers).

Backward: dL/dx is the convolution of dL/dy with the flipped kernel, channels swapped. Flipping g
(reversing rows and columns) permutes the rows of G (G J = P G with P swapping rows 0 and 3), so the
flipped filter's transform is U with tile positions 0 and 3 swapped in both directions:
``U_flipped[k] = U[FLIP[k]]``, transposed (O <-> C). No second weight transform is needed.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from tinygrad_cv.kernels.conv3x3 import zero_border
from tinygrad_cv.kernels.parallel import parallel_map, split, workers

G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])
KRON_G = np.kron(G, G)  # (16, 9): vec(G g G^T) = (G kron G) vec(g), both row-major
FLIP = [4 * (3 - i if i in (0, 3) else i) + (3 - j if j in (0, 3) else j) for i in range(4) for j in range(4)]
MIN_CHANNELS = 128  # use Winograd when input and output channels are at least this many
BAND_BYTES = 2 * 2**20  # transformed input V of one band of tile rows: in cache, not all of memory


def worth_it(C: int, O: int) -> bool:
    """Whether Winograd beats the shifted GEMMs: the transforms cost O(pixels * channels), the
    products save O(pixels * C * O), so it wins from some channel count on (measured: 128)."""
    return min(C, O) >= MIN_CHANNELS


def filter_transform(tap_mats: Any) -> Any:
    """U = G g G^T for every (output, input) channel pair: (9, O, C) taps -> (16, O, C)."""
    nine, O, C = tap_mats.shape
    U = KRON_G.astype(tap_mats.dtype) @ tap_mats.reshape(9, O * C)  # (16, O*C), one small GEMM
    return U.reshape(16, O, C)


def winograd_conv3x3_padded(xpad: Any, U: Any, bias: Optional[Any] = None, relu: bool = False,
                            flipped: bool = False) -> Any:
    """The same convolution as ``conv3x3.conv3x3_padded``, by Winograd F(2x2, 3x3).

    Args:
        xpad: (N, H+2, W+2, C) zero-bordered input.
        U: (16, O, C) from ``filter_transform``.
        bias: (O,) or None; relu: apply max(., 0).
        flipped: convolve with the flipped, transposed filters (the gradient with respect to the
            input): U[FLIP[k]] used as (O, C) maps O channels back to C.
    Returns:
        (N, H+2, W+2, out channels) with a zero border.
    """
    N, Hp, Wp, C = xpad.shape
    H, W = Hp - 2, Wp - 2
    out_channels = U.shape[2] if flipped else U.shape[1]
    th, tw = (H + 1) // 2, (W + 1) // 2  # tiles down and across; odd sizes get one half-used tile
    xpad = _even(xpad, 2 * th + 2, 2 * tw + 2)
    ypad = np.empty((N, Hp, Wp, out_channels), dtype=xpad.dtype)

    def band(tile_rows: range) -> None:  # transform, 16 products, transform back: one band of tiles
        t0, t1 = tile_rows.start, tile_rows.stop
        V = input_transform(xpad[:, 2 * t0:2 * t1 + 2], tw)  # (16, N*tiles, C)
        M = np.empty((16, V.shape[1], out_channels), dtype=xpad.dtype)
        for k in range(16):
            np.matmul(V[k], U[FLIP[k]] if flipped else U[k].T, out=M[k])  # (tiles, C) @ (C, O)
        if bias is not None:
            M[5] += bias  # A^T E A is all ones for the tile position (1, 1): adds b to all 4 outputs
        rows = ypad[:, 1 + 2 * t0:1 + min(2 * t1, H)]
        output_transform(M.reshape(4, 4, N, t1 - t0, tw, out_channels), rows, W)
        if relu:
            inside = rows[:, :, 1:W + 1]
            np.maximum(inside, 0, out=inside)

    tiles_per_band = max(1, BAND_BYTES // (16 * N * tw * max(C, out_channels) * xpad.itemsize))
    parallel_map(band, split(0, th, tiles_per_band, at_least=2 * workers()))
    return zero_border(ypad)


def _even(xpad: Any, height: int, width: int) -> Any:
    """xpad itself when its tiles fit exactly, else a copy with zero rows/columns added at the end."""
    N, Hp, Wp, C = xpad.shape
    if (Hp, Wp) == (height, width):
        return xpad
    out = np.zeros((N, height, width, C), dtype=xpad.dtype)
    out[:, :Hp, :Wp] = xpad
    return out


def input_transform(rows: Any, tw: int) -> Any:
    """V = B^T d B for every 4x4 tile in a band of padded input rows (N, 2*tiles_down + 2, 2*tw + 2, C).

    Returns (16, N*tiles_down*tw, C), position k = 4*i + j of the transformed tile first. B^T is
    applied to rows of tiles (stride-2 views of the image rows), then to columns the same way.
    """
    N, R, _, C = rows.shape
    td = (R - 2) // 2
    d = [rows[:, r:r + 2 * td - 1:2] for r in range(4)]  # row r of every tile: (N, td, 2*tw+2, C)
    t = [d[0] - d[2], d[1] + d[2], d[2] - d[1], d[1] - d[3]]  # B^T d, one row of the result each
    V = np.empty((16, N, td, tw, C), dtype=rows.dtype)
    for i in range(4):
        c = [t[i][:, :, j:j + 2 * tw - 1:2] for j in range(4)]  # column j of every tile
        np.subtract(c[0], c[2], out=V[4 * i + 0])  # (B^T d) B, one column at a time
        np.add(c[1], c[2], out=V[4 * i + 1])
        np.subtract(c[2], c[1], out=V[4 * i + 2])
        np.subtract(c[1], c[3], out=V[4 * i + 3])
    return V.reshape(16, N * td * tw, C)


def output_transform(M: Any, out_rows: Any, W: int) -> None:
    """Y = A^T M A for every tile, written into out_rows (N, rows, W+2, O) of the padded output.

    M: (4, 4, N, tiles_down, tw, O). Output pixel (2a + r, 2b + s) of tile (a, b) goes to row 2a + r
    of out_rows and column 1 + 2b + s; with an odd height or width, the last tile's second row or
    column falls outside the image and is dropped.
    """
    s = [M[0] + M[1] + M[2], M[1] - M[2] - M[3]]  # A^T M: (4, N, td, tw, O) each
    for r in range(2):
        for c in range(2):
            out = out_rows[:, r::2, 1 + c:W + 1:2]  # (N, <= td, <= tw, O)
            n_rows, n_cols = out.shape[1], out.shape[2]
            a = s[r][:, :, :n_rows, :n_cols]
            if c == 0:  # (A^T M) A, column 0: m0 + m1 + m2
                np.add(a[0], a[1], out=out)
                out += a[2]
            else:  # column 1: m1 - m2 - m3
                np.subtract(a[1], a[2], out=out)
                out -= a[3]
