"""Winograd's minimal filtering F(m x m, 3x3): the 3x3 convolution with 2.25x (m = 2) or 4x (m = 4)
fewer multiplications.

Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks" (CVPR 2016), section 4. In 1-D,
m outputs of a 3-tap filter g over m + 2 inputs d take m + 2 multiplications instead of 3m:

    y = A^T [(G g) * (B^T d)]        * is elementwise

For m = 2 (F(2, 3)):

    B^T = [[1, 0, -1, 0],      G = [[1,    0,   0],      A^T = [[1, 1,  1,  0],
           [0, 1,  1, 0],           [1/2, 1/2, 1/2],            [0, 1, -1, -1]]
           [0, -1, 1, 0],           [1/2, -1/2, 1/2],
           [0, 1,  0, -1]]          [0,    0,   1]]

The rows of G and the columns of A^T hold the powers of the points where the algorithm evaluates
polynomials (0, 1, -1 and infinity for m = 2); B^T is the inverse of those points' Vandermonde
matrix, transposed. Each point's row of B^T and G and column of A^T may carry scales whose product
is one (chosen here so that B^T holds small integers, exact in float32). m = 4 needs two more
points: ``F4x4`` below takes 1/2 and -2, which gave half the rounding error of Lavin & Gray's 2 and
-2 on a VGG-sized layer (4e-6 against 7e-6; Barabasz et al., "Error analysis and improving the
accuracy of Winograd convolution for deep neural networks", 2020, study such choices).

Nested in 2-D, an m x m tile of outputs comes from an a x a tile of inputs (a = m + 2; tiles overlap
by two pixels):

    Y = A^T [U * V] A,   U = G g G^T (a x a, the filter),   V = B^T d B (a x a, the input tile)

a^2 multiplications instead of 9 m^2: 16 instead of 36 for m = 2, 36 instead of 144 for m = 4. With C
input and O output channels the elementwise product is summed over C, so each of the a^2 positions k
of the tile is one matrix product over all tiles:

    M[k] (tiles, O) = V[k] (tiles, C) @ U[k] (C, O)      a^2 GEMMs with a^2 / (9 m^2) of the direct flops

Both transforms are small matrix products too: with the tiles' pixels gathered from the padded
channels-last buffer of conv3x3.py into (a^2, tiles * C), vec(V) = (B^T kron B^T) vec(d) is one
(a^2, a^2) @ (a^2, tiles * C) product, and vec(Y) = (A^T kron A^T) vec(M) one (m^2, a^2) @ (a^2,
tiles * O). They cost passes over memory (V is (a/m)^2 times the input: 4x for m = 2, 2.25x for
m = 4), so everything is done one band of tile rows at a time, small enough to stay in the CPU's
caches (``BAND_BYTES``), each band on a core of its own. Bigger tiles need fewer multiplications and
less memory per output, but with few tiles (a small image) the products get too thin, and the
answers are less exact: the largest error relative to the largest output is about 5e-7 for m = 2 on
a VGG-sized layer, 4e-6 for m = 4, and 4e-7 for the direct sums (tests/test_fast_conv.py).
``tiling_for`` chooses; with few channels the products are too thin to pay for the transforms at
all, and conv3x3.py's row products are used.

Backward: dL/dx is the convolution of dL/dy with the flipped kernel, channels swapped: the same
function with the transformed filters of that kernel (``conv3x3.gradient_kernel``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from tinygrad_cv.kernels.fast.channels_last import zero_border
from tinygrad_cv.kernels.fast.parallel import parallel_map, split, split_evenly
from tinygrad_cv.kernels.fast.scratch import work_buffer


@dataclass(frozen=True)
class Tiling:
    """F(m x m, 3x3): output tiles of m x m from input tiles of a x a, a = m + 2."""
    m: int
    B_T: np.ndarray  # (a, a)
    G: np.ndarray  # (a, 3)
    A_T: np.ndarray  # (m, a)

    @property
    def a(self) -> int:
        return self.m + 2

    @property
    def kron_B(self) -> np.ndarray:  # (a^2, a^2): vec(B^T d B) = (B^T kron B^T) vec(d), row-major vec
        return np.kron(self.B_T, self.B_T)

    @property
    def kron_G(self) -> np.ndarray:  # (a^2, 9): vec(G g G^T) = (G kron G) vec(g)
        return np.kron(self.G, self.G)

    @property
    def kron_A(self) -> np.ndarray:  # (m^2, a^2): vec(A^T M A) = (A^T kron A^T) vec(M)
        return np.kron(self.A_T, self.A_T)


F2x2 = Tiling(2, B_T=np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=float),
              G=np.array([[1, 0, 0], [1 / 2, 1 / 2, 1 / 2], [1 / 2, -1 / 2, 1 / 2], [0, 0, 1]]),
              A_T=np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=float))
F4x4 = Tiling(4, B_T=np.array([[2, -3, -4, 3, 2, 0], [0, -2, 1, 5, 2, 0], [0, -2, 5, -1, -2, 0],
                               [0, 2, 1, -2, -1, 0], [0, 1, -2, -1, 2, 0], [0, 2, -3, -4, 3, 2]], dtype=float),
              G=np.array([[1 / 2, 0, 0], [1 / 6, 1 / 6, 1 / 6], [1 / 6, -1 / 6, 1 / 6],
                          [16 / 15, 8 / 15, 4 / 15], [1 / 30, -1 / 15, 2 / 15], [0, 0, 1 / 2]]),
              A_T=np.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 1 / 2, -2, 0], [0, 1, 1, 1 / 4, 4, 0],
                            [0, 1, -1, 1 / 8, -8, 1]]))
TILINGS = {t.a ** 2: t for t in (F2x2, F4x4)}  # by the number of tile positions of the transformed filters

MIN_CHANNELS = 32  # Winograd from this many input and output channels on (PERFORMANCE.md)
MIN_CHANNELS_FORWARD = 128  # but the forward pass only from this many (accuracy: PERFORMANCE.md)
MIN_TILES_4X4 = 32  # F(4x4, 3x3) from this many 4x4 tiles in the batch on, else F(2x2, 3x3)
BAND_BYTES = 2 * 2**20  # transformed input V of one band of tile rows (PERFORMANCE.md)


def tiling_for(N: int, C: int, O: int, H: int, W: int, forward: bool = True) -> Optional[Tiling]:
    """The Winograd tiling that computes this convolution (C -> O channels) fastest, or None where
    conv3x3.py's row products do: the transforms cost O(pixels * channels), the products save
    O(pixels * C * O). A network's forward pass keeps the direct sums below 128 channels: there
    its first layers' outputs decide ReLUs and max-pools, where Winograd's larger rounding errors
    flip near ties and change the gradient by far more than their size (``forward=False``: the
    gradient with respect to the input, which decides nothing)."""
    if min(C, O) < (MIN_CHANNELS_FORWARD if forward else MIN_CHANNELS):
        return None
    return F4x4 if N * -(-H // 4) * -(-W // 4) >= MIN_TILES_4X4 else F2x2


def filter_transform(w: Any, tiling: Tiling) -> Any:
    """(O, C, 3, 3) weights -> (a^2, C, O): vec(U) = (G kron G) vec(g) for all filters at once (each
    3x3 filter a column of the product's right factor), in blocks of input channels on every core."""
    O, C = w.shape[:2]
    U = np.empty((tiling.a ** 2, C, O), dtype=w.dtype)
    kron = tiling.kron_G.astype(w.dtype)

    def input_channels(r: range) -> None:
        filters = w[:, r.start:r.stop].transpose(2, 3, 1, 0).reshape(9, -1)  # vec(g) of each (c, o) pair
        U[:, r.start:r.stop] = (kron @ filters).reshape(-1, len(r), O)

    parallel_map(input_channels, split(0, C, max(1, 2**18 // O)))
    return U


def winograd_conv3x3_padded(xpad: Any, tile_mats: Any, bias: Optional[Any] = None, relu: bool = False) -> Any:
    """The same convolution as ``conv3x3.conv3x3_padded``, by Winograd F(m x m, 3x3).

    Args:
        xpad: (N, H+2, W+2, C) zero-bordered input.
        tile_mats: (a^2, C, out channels): ``filter_transform`` of the weights, or of their
            ``conv3x3.gradient_kernel`` (for the gradient with respect to the input, which maps O channels
            back to C). Their number of tile positions a^2 says which tiling.
        bias: (out channels,) or None; relu: apply max(., 0).
    Returns:
        (N, H+2, W+2, out channels) with a zero border.
    """
    tiling = TILINGS[tile_mats.shape[0]]
    N, Hp, Wp, C = xpad.shape
    H, W, m, a = Hp - 2, Wp - 2, tiling.m, tiling.a
    out_channels = tile_mats.shape[2]
    th, tw = -(-H // m), -(-W // m)  # tiles down and across; the last ones may be partly outside
    ypad = np.empty((N, Hp, Wp, out_channels), dtype=xpad.dtype)
    kron_B, kron_A = tiling.kron_B.astype(xpad.dtype), tiling.kron_A.astype(xpad.dtype)

    def band(tile_rows: range) -> None:  # gather, transform, a^2 products, transform back: one band of tiles
        t0, t1 = tile_rows.start, tile_rows.stop
        tiles = N * (t1 - t0) * tw
        d = work_buffer("winograd.d", (a, a, N, t1 - t0, tw, C), xpad.dtype)
        gather_tiles(xpad[:, m * t0:m * t1 + 2], d)
        V = work_buffer("winograd.V", (a * a, tiles, C), xpad.dtype)
        np.matmul(kron_B, d.reshape(a * a, -1), out=V.reshape(a * a, -1))  # B^T d B
        M = work_buffer("winograd.M", (a * a, tiles, out_channels), xpad.dtype)
        np.matmul(V, tile_mats, out=M)  # a^2 products (tiles, C) @ (C, O)
        if bias is not None:
            M[a + 1] += bias  # A^T E A is all ones for the tile position (1, 1): adds b to all m^2 outputs
        Y = work_buffer("winograd.Y", (m, m, N, t1 - t0, tw, out_channels), xpad.dtype)
        np.matmul(kron_A, M.reshape(a * a, -1), out=Y.reshape(m * m, -1))  # A^T M A
        write_tiles(Y, ypad[:, 1 + m * t0:1 + min(m * t1, H), 1:W + 1], relu)

    # Every band's products read all of U: a band's V is BAND_BYTES, or an eighth of U if that is more.
    band_bytes = max(BAND_BYTES, tile_mats.nbytes // 8)
    tiles_per_band = max(1, band_bytes // (a * a * N * tw * max(C, out_channels) * xpad.itemsize))
    parallel_map(band, split_evenly(0, th, tiles_per_band))  # the same share on every core
    return zero_border(ypad)


def gather_tiles(rows: Any, d: Any) -> None:
    """Copy the a x a input tiles of a band of padded rows (N, R, W+2, C) into d (a, a, N, tiles_down,
    tiles_across, C): pixel (i, j) of tile (t, u) is pixel (m*t + i, m*u + j) of the band, or zero
    past the band's last row or column (the last tiles of an image that m does not divide: only
    output pixels that are then dropped depend on those pixels)."""
    a, _, N, td, tw, C = d.shape
    m = a - 2
    inside_down, inside_across = min(td, (rows.shape[1] - 2) // m), min(tw, (rows.shape[2] - 2) // m)
    np.copyto(d[:, :, :, :inside_down, :inside_across], tile_pixels(rows, m, a, inside_down, inside_across))
    if inside_down < td:  # the last row of tiles
        past_the_edge(rows[:, m * inside_down:], d[:, :, :, inside_down:])
    if inside_across < tw and inside_down:  # the last column of tiles, above it
        past_the_edge(rows[:, :m * inside_down + 2, m * inside_across:], d[:, :, :, :inside_down, inside_across:])


def past_the_edge(rows: Any, d: Any) -> None:
    """``gather_tiles`` for tiles that reach past the rows: from a zero-padded copy of the few rows or
    columns they read."""
    a, _, N, td, tw, C = d.shape
    m = a - 2
    padded = np.zeros((N, m * td + 2, m * tw + 2, C), dtype=rows.dtype)
    h, w = min(rows.shape[1], padded.shape[1]), min(rows.shape[2], padded.shape[2])
    padded[:, :h, :w] = rows[:, :h, :w]
    np.copyto(d, tile_pixels(padded, m, a, td, tw))


def tile_pixels(rows: Any, m: int, a: int, tiles_down: int, tiles_across: int) -> Any:
    """The first a x a input tiles of padded rows (N, R, W+2, C), as a strided view (a, a, N,
    tiles_down, tiles_across, C): pixel (i, j) of tile (t, u) is pixel (m*t + i, m*u + j) of the rows.
    Tiles overlap, so no copy is made here."""
    N, C = rows.shape[0], rows.shape[3]
    n, r, c, ch = rows.strides
    shape = (a, a, N, tiles_down, tiles_across, C)
    return np.lib.stride_tricks.as_strided(rows, shape, (r, c, n, m * r, m * c, ch), writeable=False)


def write_tiles(Y: Any, out: Any, relu: bool) -> None:
    """Write output tiles Y (m, m, N, tiles_down, tiles_across, O) into out (N, rows, W, O): pixel (i, j)
    of tile (t, u) goes to (m*t + i, m*u + j). The tiles that fit whole are one strided copy; with a
    height or width that m does not divide, the last tiles' pixels that fall inside come after."""
    m, _, N, td, tw, O = Y.shape
    rows, W = out.shape[1], out.shape[2]
    n, r, c, ch = out.strides
    whole_down, whole_across = rows // m, W // m
    whole = np.lib.stride_tricks.as_strided(out, (m, m, N, whole_down, whole_across, O), (r, c, n, m * r, m * c, ch))
    pieces = [(whole, Y[:, :, :, :whole_down, :whole_across])]
    for i in range(m):
        for j in range(m):
            part = out[:, i::m, j::m]  # (N, <= td, <= tw, O): pixel (i, j) of every tile that has it
            if whole_down < part.shape[1]:
                pieces.append((part[:, whole_down:], Y[i, j, :, whole_down:part.shape[1], :part.shape[2]]))
            if whole_across < part.shape[2]:
                pieces.append((part[:, :whole_down, whole_across:], Y[i, j, :, :whole_down, whole_across:part.shape[2]]))
    for target, y in pieces:
        if relu:
            np.maximum(y, 0, out=target)
        else:
            target[...] = y
