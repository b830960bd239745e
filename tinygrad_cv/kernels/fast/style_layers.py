"""The 26-style network's layers for inference, channels-last from the first layer to the last.

A layer of the network is reflection padding, a convolution, conditional instance normalisation and a
ReLU (or the residual sum, or the final sigmoid), and two of them start with a 2x nearest upsampling.
Run as separate ops, each of those passes over the whole activation and allocates a new one. When no
gradient is wanted, this module does a layer in two parallel passes over cache-sized bands of rows:

1. the convolution (``conv_bands``): im2col of a band of rows from the padded channels-last input,
   one matrix product, and the band's per-channel count, mean and sum of squared deviations, taken
   while the band is still in cache (Chan et al.'s pairwise combination gives the layer's mean and
   variance, in float64, from the bands' statistics);
2. the epilogue (``normalise_into``): y * a + b, with a = gamma / sqrt(var + eps) and
   b = beta - mean * a per channel, then the ReLU, the residual sum or the sigmoid, written straight
   into the interior of the *next* layer's padded buffer, twice in each direction where that layer
   upsamples; ``reflect_borders`` then mirrors the border in place.

So the padding, normalisation, ReLU and upsampling cost no extra pass of their own and nothing is
transposed between layers. Thin layers (few output channels) make thin matrix products, which BLAS
runs far below its speed; there each row of the product computes ``block`` horizontally adjacent
output pixels at once (the im2col row is the union of their windows, the weight matrix holds the
kernel once per pixel, shifted, with zeros elsewhere): a few wasted multiplications buy a product
wide enough to run fast.
"""
from __future__ import annotations

import threading
from typing import Any, Callable, Optional

import numpy as np
from numpy.lib.stride_tricks import as_strided

from tinygrad_cv.kernels.fast.parallel import parallel_map, split, workers

BAND_BYTES = 1 << 21  # about 2 MiB of im2col rows per band: stays in a core's cache
SERIAL_BYTES = 1 << 20  # an epilogue over less than this runs on the calling thread
WIDE, WIDE_LARGE = 16, 128  # block output pixels until a product row has this many columns


class Workspace:
    """The buffers of one forward pass, kept for the next pass on an input of the same shape.

    A fresh array of tens of MB costs the kernel a page fault and the zeroing of every 4 KiB page on
    first touch, about a sixth of a 512 px pass here; buffers kept from the previous pass are already
    mapped. ``start(key)`` begins a pass (a new key drops the old buffers), then the pass's n-th
    ``empty`` returns the n-th buffer. At most ``limit`` bytes are kept, and each thread has its own
    buffers, so two threads can run the same network at once. Never hand a buffer out of the pass.
    """

    def __init__(self, limit: int = 256 << 20) -> None:
        self.limit, self._local = limit, threading.local()

    def __reduce__(self) -> tuple:  # a copy of a network (deepcopy, pickle) starts with no buffers
        return Workspace, (self.limit,)

    def start(self, key: Any) -> None:
        state = self._local
        if getattr(state, "key", None) != key:
            state.key, state.arrays, state.bytes = key, [], 0
        state.next = 0

    def empty(self, shape: tuple, dtype: Any = np.float32) -> np.ndarray:
        state = self._local
        i, state.next = state.next, state.next + 1
        if i < len(state.arrays) and state.arrays[i].shape == tuple(shape) and state.arrays[i].dtype == dtype:
            return state.arrays[i]
        a = np.empty(shape, dtype=dtype)
        if i == len(state.arrays) and state.bytes + a.nbytes <= self.limit:
            state.arrays.append(a)
            state.bytes += a.nbytes
        return a


def padded_buffer(N: int, H: int, W: int, C: int, p: int, dtype: Any = np.float32,
                  empty: Callable[..., np.ndarray] = np.empty) -> np.ndarray:
    """An uninitialised (N, H+2p, W+2p, C) buffer; its interior is ``interior(buf, p)``."""
    return empty((N, H + 2 * p, W + 2 * p, C), dtype=dtype)


def interior(buf: np.ndarray, p: int) -> np.ndarray:
    return buf[:, p:buf.shape[1] - p, p:buf.shape[2] - p] if p else buf


def reflect_borders(buf: np.ndarray, p: int) -> np.ndarray:
    """Fill the p-wide border of a channels-last buffer with the mirror image of its interior (np.pad
    'reflect', the edge not repeated), in place; needs p < H and p < W of the interior."""
    if p:
        H, W = buf.shape[1] - 2 * p, buf.shape[2] - 2 * p
        buf[:, :p, p:p + W] = buf[:, 2 * p:p:-1, p:p + W]  # row p - i mirrors row p + i
        buf[:, p + H:, p:p + W] = buf[:, p + H - 2:H - 2 if H > 1 else None:-1, p:p + W]
        buf[:, :, :p] = buf[:, :, 2 * p:p:-1]
        buf[:, :, p + W:] = buf[:, :, p + W - 2:W - 2 if W > 1 else None:-1]
    return buf


def block_width(O: int, KW: int, OW: int) -> int:
    """How many horizontally adjacent output pixels one product row computes: the largest power of two
    with block * O <= WIDE (WIDE_LARGE for kernels of width >= 5, whose windows overlap most) and a
    window at most twice the kernel's width, that divides OW (measured on 2 cores, see PERFORMANCE.md)."""
    wide = WIDE_LARGE if KW >= 5 else WIDE
    block = 1
    while 2 * block * O <= wide and 2 * block - 1 <= KW:
        block *= 2
    while OW % block:
        block //= 2
    return block


def blocked_weights(w: np.ndarray, block: int, stride: int) -> np.ndarray:
    """(O, C, KH, KW) -> (KH * KWb * C, block * O), KWb = KW + (block - 1) * stride: column (j, o) holds
    the kernel of output o shifted to the window of the block's j-th pixel, zeros elsewhere."""
    O, C, KH, KW = w.shape
    KWb = KW + (block - 1) * stride
    wb = np.zeros((KH, KWb, C, block, O), dtype=w.dtype)
    for j in range(block):
        wb[:, j * stride:j * stride + KW, :, j, :] = w.transpose(2, 3, 1, 0)
    return wb.reshape(KH * KWb * C, block * O)


def conv_bands(xpad: np.ndarray, w: np.ndarray, stride: int, empty: Callable[..., np.ndarray] = np.empty,
               stats: bool = True) -> tuple:
    """The "valid" convolution of a padded channels-last buffer, and its per-channel statistics.

    Args: xpad (N, Hp, Wp, C), w (O, C, KH, KW) of xpad's dtype. Returns (y, mean, var): y (N, OH, OW, O)
    channels-last (a new array from ``empty``); mean and (biased) variance (N, O) in float64, over
    each sample's OH x OW positions (None and None when ``stats`` is False).
    """
    N, Hp, Wp, C = xpad.shape
    O, _, KH, KW = w.shape
    OH, OW = (Hp - KH) // stride + 1, (Wp - KW) // stride + 1
    block = block_width(O, KW, OW)
    KWb, OWb = KW + (block - 1) * stride, OW // block
    wmat = blocked_weights(w, block, stride)
    sN, sH, sW, sC = xpad.strides
    windows = as_strided(xpad, (N, OH, OWb, KH, KWb, C), (sN, sH * stride, sW * stride * block, sH, sW, sC))
    y = empty((N, OH, OW, O), dtype=xpad.dtype)
    rows = max(1, BAND_BYTES // (OWb * KH * KWb * C * xpad.itemsize))
    bands = [(n, r) for n in range(N) for r in split(0, OH, rows, at_least=workers())]

    def band(job: Any) -> tuple:
        n, r = job
        cols = windows[n, r.start:r.stop].reshape(-1, KH * KWb * C)  # the im2col copy
        out = y[n, r.start:r.stop].reshape(-1, block * O)
        np.matmul(cols, wmat, out=out)
        if not stats:
            return None
        out = out.reshape(-1, OW * O)  # rows of the band: long inner loops, not one per pixel
        count = out.shape[0] * OW
        mean = out.sum(axis=0).reshape(OW, O).sum(axis=0, dtype=np.float64) / count
        dev = out - np.tile(mean.astype(out.dtype), OW)
        dev *= dev
        return count, mean, dev.sum(axis=0).reshape(OW, O).sum(axis=0, dtype=np.float64)

    parts = parallel_map(band, bands)
    if not stats:
        return y, None, None
    mean, var = np.empty((N, O)), np.empty((N, O))
    for n in range(N):
        count, m, m2 = 0, np.zeros(O), np.zeros(O)
        for (bn, _), (k, mb, m2b) in zip(bands, parts):
            if bn == n:  # Chan, Golub & LeVeque: merge (count, mean, M2) of two parts
                delta, total = mb - m, count + k
                m = m + delta * (k / total)
                m2 = m2 + m2b + delta * delta * (count * k / total)
                count = total
        mean[n], var[n] = m, m2 / count
    return y, mean, var


def normalise_into(y: np.ndarray, mean: np.ndarray, var: np.ndarray, gamma: np.ndarray, beta: np.ndarray,
                   eps: float, dest: np.ndarray, act: str = "relu", residual: Optional[np.ndarray] = None,
                   upsample: int = 1) -> None:
    """dest = act(gamma * (y - mean) / sqrt(var + eps) + beta (+ residual)), band by band, in parallel.

    y (N, H, W, C) channels-last (overwritten); gamma, beta (N or 1, C); dest (N, H*u, W*u, C) (any
    strides, e.g. the interior of the next padded buffer), each value written into a u x u block when
    ``upsample`` is u; residual (N, H, W, C) or None; act 'relu', 'none' or 'sigmoid'.
    """
    N, H, W, C = y.shape
    gamma, beta = np.broadcast_to(gamma, (N, C)), np.broadcast_to(beta, (N, C))
    inv_std = 1.0 / np.sqrt(var + eps)
    a = (gamma * inv_std).astype(y.dtype)  # (N, C)
    b = (beta - mean * gamma * inv_std).astype(y.dtype)
    u = upsample
    if u > 1:
        s = dest.strides
        dest = as_strided(dest, (N, H, u, W, u, C), (s[0], s[1] * u, s[1], s[2] * u, s[2], s[3]))
    rows = max(1, BAND_BYTES // (W * C * y.itemsize))
    cores = workers() if y.nbytes >= SERIAL_BYTES else 1  # a small layer: one thread costs less than handing out work
    bands = [(n, r) for n in range(N) for r in split(0, H, rows, at_least=cores)]
    finish: Callable[[np.ndarray, np.ndarray], Any] = {
        "relu": lambda t, out: np.maximum(t, 0, out=out),
        "none": lambda t, out: np.copyto(out, t),
        "sigmoid": lambda t, out: _sigmoid(t, out),
    }[act]

    a, b = np.tile(a, W), np.tile(b, W)  # (N, W*C): one long inner loop per row, not one per pixel

    def band(job: Any) -> None:
        n, r = job
        t = y[n, r.start:r.stop].reshape(-1, W * C)
        t *= a[n]
        t += b[n]
        if residual is not None:
            t += residual[n, r.start:r.stop].reshape(-1, W * C)
        if u > 1:
            finish(t.reshape(-1, 1, W, 1, C), dest[n, r.start:r.stop])
        else:
            finish(t, dest[n, r.start:r.stop].reshape(-1, W * C))

    parallel_map(band, bands)


def _sigmoid(t: np.ndarray, out: np.ndarray) -> None:
    """0.5 * (1 + tanh(t / 2)): 1 / (1 + e^-t) without overflow (as ``functional.sigmoid``)."""
    t *= 0.5
    np.tanh(t, out=t)
    t += 1
    t *= 0.5
    np.copyto(out, t)
