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

    M[k] (tiles, O) = V[k] (tiles, C) @ U[k]^T (C, O)      16 GEMMs with 16/36 of the direct flops

The transforms B^T d B and A^T M A are only additions and subtractions, done here with NumPy on
strided views of the padded channels-last buffer of conv3x3.py. They cost passes over memory
(V is 4x the input, M 4x the output), so they are done one band of tile rows at a time, small enough
to stay in the CPU's caches (``BAND_BYTES``), each band on a core of its own. With few channels the
products are too thin to pay for the transforms (``winograd_is_faster``). The answers differ from
the direct method by float32 rounding only (about 5e-7 relative on VGG-sized layers).

Backward: dL/dx is the convolution of dL/dy with the flipped kernel, channels swapped. Flipping g
(reversing rows and columns) permutes the rows of G (G J = P G with P swapping rows 0 and 3), so the
flipped filter's transform is U with tile positions 0 and 3 swapped in both directions:
``U_flipped[k] = U[FLIP[k]]``, transposed (O <-> C). No second weight transform is needed.
In the code, U for all (output, input) channel pairs is ``filter_tiles``, shape (16, O, C); the
products read it as ``tile_matrices``: one contiguous (channels in, channels out) matrix per
position, for the forward pass and for the flipped one.
"""
from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np

from tinygrad_cv.kernels.fast.channels_last import zero_border
from tinygrad_cv.kernels.fast.parallel import parallel_map, split, split_evenly, workers
from tinygrad_cv.kernels.fast.scratch import work_buffer

G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])
A_T = np.array([[1.0, 1.0, 1.0, 0.0], [0.0, 1.0, -1.0, -1.0]])
KRON_G = np.kron(G, G)  # (16, 9): vec(G g G^T) = (G kron G) vec(g), both row-major
KRON_A = np.kron(A_T, A_T)  # (4, 16): vec(A^T M A) = (A^T kron A^T) vec(M)
FLIP = [4 * (3 - i if i in (0, 3) else i) + (3 - j if j in (0, 3) else j) for i in range(4) for j in range(4)]
MIN_CHANNELS = 128  # Winograd from this many input and output channels on (PERFORMANCE.md)
BAND_BYTES = 4 * 2**20  # transformed input V of one band of tile rows (PERFORMANCE.md)


def winograd_is_faster(C: int, O: int) -> bool:
    """Whether Winograd beats the nine GEMMs of conv3x3.py: the transforms cost O(pixels * channels),
    the products save O(pixels * C * O), so it wins from some channel count on."""
    return min(C, O) >= MIN_CHANNELS


def filter_transform(w: Any) -> Any:
    """U = G g G^T for every (output, input) channel pair: (O, C, 3, 3) weights -> (16, O, C).

    One small product, vec(U) = (G kron G) vec(g), for all filters at once (each 3x3 filter a column
    of the product's right factor, read from w in place), in blocks of output channels on every core.
    """
    O, C = w.shape[:2]
    filter_tiles = np.empty((16, O, C), dtype=w.dtype)
    kron = KRON_G.astype(w.dtype)

    def output_channels(r: range) -> None:
        filters = w[r.start:r.stop].reshape(-1, 9).T  # (9, filters): vec(g) of each (o, c) pair
        np.matmul(kron, filters, out=filter_tiles[:, r.start:r.stop].reshape(16, -1))

    parallel_map(output_channels, split(0, O, max(1, 2**18 // max(1, C)), at_least=2 * workers()))
    return filter_tiles


def tile_matrices(filter_tiles: Any) -> Tuple[Any, Any]:
    """The matrices the 16 products multiply by, each contiguous (BLAS runs a product with a
    transposed right factor up to 1.4x slower on the thin ones, PERFORMANCE.md).

    Returns (forward, flipped): forward[k] = U[k]^T, (16, C, O), for the convolution;
    flipped[k] = U[FLIP[k]], (16, O, C), for its gradient with respect to the input.
    """
    return np.ascontiguousarray(filter_tiles.transpose(0, 2, 1)), filter_tiles[FLIP]


def winograd_conv3x3_padded(xpad: Any, tile_mats: Any, bias: Optional[Any] = None, relu: bool = False) -> Any:
    """The same convolution as ``conv3x3.conv3x3_padded``, by Winograd F(2x2, 3x3).

    Args:
        xpad: (N, H+2, W+2, C) zero-bordered input.
        tile_mats: (16, C, out channels), one of ``tile_matrices``: the forward matrices, or the
            flipped ones (the gradient with respect to the input, which maps O channels back to C).
        bias: (out channels,) or None; relu: apply max(., 0).
    Returns:
        (N, H+2, W+2, out channels) with a zero border.
    """
    N, Hp, Wp, C = xpad.shape
    H, W = Hp - 2, Wp - 2
    out_channels = tile_mats.shape[2]
    th, tw = (H + 1) // 2, (W + 1) // 2  # tiles down and across; odd sizes get one half-used tile
    ypad = np.empty((N, Hp, Wp, out_channels), dtype=xpad.dtype)

    def band(tile_rows: range) -> None:  # transform, 16 products, transform back: one band of tiles
        t0, t1 = tile_rows.start, tile_rows.stop
        rows = whole_tiles(xpad[:, 2 * t0:2 * t1 + 2], 2 * (t1 - t0) + 2, 2 * tw + 2)
        V = input_transform(rows, tw, work_buffer("winograd.V", (16, N, t1 - t0, tw, C), xpad.dtype))
        M = work_buffer("winograd.M", (16, N, t1 - t0, tw, out_channels), xpad.dtype)
        for k in range(16):
            np.matmul(V[k].reshape(-1, C), tile_mats[k], out=M[k].reshape(-1, out_channels))  # (tiles, C) @ (C, O)
        if bias is not None:
            M[5] += bias  # A^T E A is all ones for the tile position (1, 1): adds b to all 4 outputs
        output_transform(M, ypad[:, 1 + 2 * t0:1 + min(2 * t1, H)], W, relu)

    tiles_per_band = max(1, BAND_BYTES // (16 * N * tw * max(C, out_channels) * xpad.itemsize))
    parallel_map(band, split_evenly(0, th, tiles_per_band))  # big bands (big products), the same on every core
    return zero_border(ypad)


def whole_tiles(rows: Any, height: int, width: int) -> Any:
    """A band of input rows itself when its tiles fit exactly, else a copy with zero rows/columns
    added at the bottom/right (an odd height or width: the last tile reaches one pixel past the
    padded image; only the output pixels it makes that are dropped depend on that pixel)."""
    N, R, Wp, C = rows.shape
    if (R, Wp) == (height, width):
        return rows
    out = np.zeros((N, height, width, C), dtype=rows.dtype)
    out[:, :R, :Wp] = rows
    return out


def input_transform(rows: Any, tw: int, out: Optional[Any] = None) -> Any:
    """V = B^T d B for every 4x4 tile in a band of padded input rows (N, 2*tiles_down + 2, 2*tw + 2, C).

    Returns V, (16, N, tiles_down, tw, C), position k = 4*i + j of the transformed tile first (``out``
    if given). B^T is applied to rows of tiles (stride-2 views of the image rows), then to columns
    the same way.
    """
    N, R, Wp, C = rows.shape
    td = (R - 2) // 2
    d = [rows[:, r:r + 2 * td - 1:2] for r in range(4)]  # row r of every tile: (N, td, 2*tw+2, C)
    t = work_buffer("winograd.BtD", (4, N, td, Wp, C), rows.dtype)  # B^T d, one row of the result each
    np.subtract(d[0], d[2], out=t[0])
    np.add(d[1], d[2], out=t[1])
    np.subtract(d[2], d[1], out=t[2])
    np.subtract(d[1], d[3], out=t[3])
    V = np.empty((16, N, td, tw, C), dtype=rows.dtype) if out is None else out
    for i in range(4):
        c = [t[i][:, :, j:j + 2 * tw - 1:2] for j in range(4)]  # column j of every tile
        np.subtract(c[0], c[2], out=V[4 * i + 0])  # (B^T d) B, one column at a time
        np.add(c[1], c[2], out=V[4 * i + 1])
        np.subtract(c[2], c[1], out=V[4 * i + 2])
        np.subtract(c[1], c[3], out=V[4 * i + 3])
    return V


def output_transform(M: Any, out_rows: Any, W: int, relu: bool = False) -> None:
    """Y = A^T M A for every tile, written into out_rows (N, rows, W+2, O) of the padded output.

    M: (16, N, tiles_down, tw, O). The four outputs of a tile are fixed sums of its 16 products:
    Y[2r + c] = sum_k KRON_A[2r + c, k] M[k], one small matrix product for the whole band. Output
    pixel (2a + r, 2b + c) of tile (a, b) goes to row 2a + r of out_rows and column 1 + 2b + c; with
    an odd height or width, the last tile's second row or column falls outside the image and is
    dropped. ReLU, if asked, is applied on the way.
    """
    _, N, td, tw, O = M.shape
    Y = work_buffer("winograd.Y", (4, N * td * tw * O), M.dtype)
    np.matmul(KRON_A.astype(M.dtype), M.reshape(16, -1), out=Y)  # A^T M A
    Y = Y.reshape(2, 2, N, td, tw, O)
    for r in range(2):
        for c in range(2):
            out = out_rows[:, r::2, 1 + c:W + 1:2]  # (N, <= td, <= tw, O)
            y = Y[r, c][:, :out.shape[1], :out.shape[2]]
            if relu:
                np.maximum(y, 0, out=out)
            else:
                out[...] = y
