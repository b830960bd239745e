"""Gram matrices G = F F^T / (H W) of NumPy features, blocked over the cores, without copying F.

The features F of one image are read as X = F^T, one row per pixel (``pixel_rows``). For the
output of a fast convolution, which is the interior of a zero-bordered channels-last buffer
(channels_last.py), X is the whole buffer as it lies in memory: its zero border rows add nothing
to X^T X, so neither direction copies the features.

    forward   G  = X^T X / P     the long pixel axis cut into one slab per core, partials added
    backward  dX = X (dG + dG^T) / P    the pixel rows cut into one block per core
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

from tinygrad_cv.kernels.fast.channels_last import interior, padded_buffer_of
from tinygrad_cv.kernels.fast.parallel import parallel_map, split, workers


def pixel_rows(x: np.ndarray) -> np.ndarray:
    """(N, C, H, W) -> (N, P, C), a view with one row per pixel.

    P = (H+2)*(W+2), zero border rows included, when x is the interior of a padded buffer;
    otherwise P = H*W (a transposed view of x's memory; BLAS reads it as it is if x is contiguous).
    """
    buffer = padded_buffer_of(x)
    if buffer is not None:
        return buffer.reshape(buffer.shape[0], -1, buffer.shape[3])  # (N, (H+2)*(W+2), C)
    N, C, H, W = x.shape
    return x.reshape(N, C, H * W).transpose(0, 2, 1)  # (N, H*W, C)


def from_pixel_rows(rows: np.ndarray, shape: Tuple[int, int, int, int]) -> np.ndarray:
    """The inverse of ``pixel_rows`` for a new array of rows (N, P, C): an (N, C, H, W) view."""
    N, C, H, W = shape
    if rows.shape[1] == (H + 2) * (W + 2):
        return interior(rows.reshape(N, H + 2, W + 2, C))
    return rows.transpose(0, 2, 1).reshape(N, C, H, W)


def gram(rows: np.ndarray, scale: float) -> np.ndarray:
    """(N, P, C) pixel rows -> (N, C, C) matrices scale * X^T X, one slab of pixels per core."""
    N, P, C = rows.shape
    G = np.empty((N, C, C), dtype=rows.dtype)
    for n, X in enumerate(rows):
        slabs = split(0, P, -(-P // workers())) or [range(0, 0)]
        partials = parallel_map(lambda r: X[r.start:r.stop].T @ X[r.start:r.stop], slabs)  # (C, C) each
        G[n] = sum(partials[1:], partials[0])
    G *= G.dtype.type(scale)
    return G


def gram_grad_rows(rows: np.ndarray, grad: np.ndarray, scale: float) -> np.ndarray:
    """dL/dX for G = scale * X^T X: X (dG + dG^T) * scale, shape (N, P, C), one block of rows per core.

    One big product per core: cache-sized blocks made BLAS pack the (C, C) factor again for every
    block, 1.1-2x slower on VGG's layers (PERFORMANCE.md).
    """
    symmetric = (grad + grad.transpose(0, 2, 1)) * grad.dtype.type(scale)  # (N, C, C)
    d_rows = np.empty(rows.shape, dtype=rows.dtype)
    for n, X in enumerate(rows):
        def row_block(r: range, X=X, n=n) -> None:
            np.matmul(X[r.start:r.stop], symmetric[n], out=d_rows[n, r.start:r.stop])  # (rows, C) @ (C, C)

        parallel_map(row_block, split(0, len(X), -(-len(X) // workers())))
    return d_rows
