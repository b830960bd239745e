"""Resampling: read an image at arbitrary (fractional) positions, with bilinear interpolation.

One op does all the geometry that feature visualisation and Deep Dream need, the way
``torch.nn.functional.grid_sample`` does: given, for every output pixel, the position (row, col) in
the input to read from, take the four input pixels around it and mix them by distance:

    out = (1-fr)(1-fc) x[r0, c0] + (1-fr) fc x[r0, c0+1] + fr (1-fc) x[r0+1, c0] + fr fc x[r0+1, c0+1]

with r0 = floor(row), fr = row - r0 (and likewise for columns). Scaling, rotating and shifting an
image are then only a matter of *which* positions to read (``affine_sample``, ``resize_bilinear``).

The output is linear in the image, so the gradient is the transpose of that mixing: every output
pixel's gradient is sent back to its four input pixels with the same four weights (a scatter-add).
The positions themselves are fixed settings, not inputs: random transforms do not learn them.

Positions are in input *pixel units*: row 0 is the centre of the first row of pixels, row H-1 the
centre of the last (PyTorch's grid_sample instead takes positions scaled to [-1, 1]).
Outside the image, ``padding`` decides what is read: "zeros", "border" (the nearest edge pixel) or
"reflect" (mirrored about the edge pixels: ... c b | a b c d | c b ...).
"""
from __future__ import annotations

from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

from tinygrad_cv import backend
from tinygrad_cv.tensor import Function, Tensor, TensorLike

PADDINGS = ("zeros", "border", "reflect")


# ---- array code: where to read, and with which weights ----------------------------------------------
def fold_positions(pos: Any, size: int, padding: str) -> Any:
    """Bring positions outside [0, size-1] back inside for "border" and "reflect"; "zeros" keeps them."""
    xp = backend.get_array_module(pos)
    if padding == "border":
        return xp.clip(pos, 0, size - 1)
    if padding == "reflect":
        if size == 1:
            return xp.zeros_like(pos)
        period = 2 * (size - 1)  # a b c d c b | a b c d c b | ...
        m = xp.mod(pos, period)  # in [0, period)
        return xp.where(m > size - 1, period - m, m)
    return pos


def bilinear_corners(rows: Any, cols: Any, height: int, width: int, padding: str) -> List[Tuple[Any, Any]]:
    """The four (flat index, weight) pairs of bilinear interpolation at every sample position.

    Args:
        rows, cols: positions of shape (B, P), B = 1 (shared by the batch) or N.
    Returns:
        Four pairs (index into the flattened H*W image, weight), each of shape (B, P). A corner that
        falls outside the image (only possible with zeros padding, or with zero weight at the last
        row/column) gets weight 0 and a clipped, valid index.
    """
    xp = backend.get_array_module(rows)
    rows = fold_positions(rows, height, padding)
    cols = fold_positions(cols, width, padding)
    r0, c0 = xp.floor(rows), xp.floor(cols)
    fr, fc = rows - r0, cols - c0
    corners = []
    for dr, weight_r in ((0, 1 - fr), (1, fr)):
        for dc, weight_c in ((0, 1 - fc), (1, fc)):
            r, c = r0 + dr, c0 + dc
            inside = (r >= 0) & (r <= height - 1) & (c >= 0) & (c <= width - 1)
            weight = xp.where(inside, weight_r * weight_c, 0)
            r = xp.clip(r, 0, height - 1).astype(np.int64)
            c = xp.clip(c, 0, width - 1).astype(np.int64)
            corners.append((r * width + c, weight))
    return corners


def _check_positions(x: Any, rows: Any, cols: Any, padding: str) -> None:
    if x.ndim != 4:
        raise ValueError(f"bilinear_sample: input must be (N, C, H, W), got shape {tuple(x.shape)}")
    if padding not in PADDINGS:
        raise ValueError(f"bilinear_sample: padding must be one of {PADDINGS}, got {padding!r}")
    if rows.shape != cols.shape or rows.ndim not in (2, 3) or (rows.ndim == 3 and rows.shape[0] not in (1, x.shape[0])):
        raise ValueError(f"bilinear_sample: rows and cols must both have shape (OH, OW), (1, OH, OW) or "
                         f"(N={x.shape[0]}, OH, OW); got {tuple(rows.shape)} and {tuple(cols.shape)}")


# ---- the op -------------------------------------------------------------------------------------------
class BilinearSample(Function):
    def forward(self, x: Any, rows: Any, cols: Any, padding: str) -> Any:
        xp = backend.get_array_module(x)
        rows, cols = xp.asarray(rows, dtype=x.dtype), xp.asarray(cols, dtype=x.dtype)
        _check_positions(x, rows, cols, padding)
        rows, cols = (rows[None], cols[None]) if rows.ndim == 2 else (rows, cols)  # (B, OH, OW)
        N, C, H, W = x.shape
        B, OH, OW = rows.shape
        self.x_shape = x.shape
        self.corners = bilinear_corners(rows.reshape(B, OH * OW), cols.reshape(B, OH * OW), H, W, padding)
        flat = x.reshape(N, C, H * W)
        out = xp.zeros((N, C, OH * OW), dtype=x.dtype)
        for index, weight in self.corners:
            # index (B, 1, P) broadcasts over the batch (B = 1) and the channels
            out += weight[:, None, :].astype(x.dtype) * xp.take_along_axis(flat, index[:, None, :], axis=2)
        return out.reshape(N, C, OH, OW)

    def backward(self, grad: Any) -> Any:
        xp = backend.get_array_module(grad)
        N, C, H, W = self.x_shape
        grad = grad.reshape(N, C, -1)  # (N, C, P)
        # One flat position per (image, channel, pixel) in the (N*C*H*W) input, so one bincount
        # adds every contribution, repeated indices included (a plain `+=` would drop repeats).
        start = (xp.arange(N * C) * (H * W)).reshape(N, C, 1)
        total = xp.zeros(N * C * H * W, dtype=np.float64)
        for index, weight in self.corners:
            where = (start + index[:, None, :]).reshape(-1)  # (N*C*P,)
            contribution = (grad * weight[:, None, :]).reshape(-1)
            total += xp.bincount(where, weights=contribution, minlength=N * C * H * W)
        return total.astype(grad.dtype).reshape(N, C, H, W)


def bilinear_sample(x: TensorLike, rows: Any, cols: Any, padding: str = "border") -> Tensor:
    """Read ``x`` at fractional pixel positions with bilinear interpolation (like grid_sample).

    Args:
        x: (N, C, H, W) images.
        rows, cols: arrays of shape (OH, OW) (the same positions for every image) or (N, OH, OW):
            output pixel (i, j) of image n reads x[n, :, rows[n, i, j], cols[n, i, j]]. Pixel units:
            0 is the centre of the first pixel, H-1 of the last.
        padding: what lies outside the image: "zeros", "border" or "reflect".
    Returns:
        (N, C, OH, OW). Gradient (for x only): each output gradient goes back to its four input
        pixels with the interpolation weights, summed where positions share a pixel.
    """
    return BilinearSample.apply(x, rows=rows, cols=cols, padding=padding)


# ---- geometry on top of the op ------------------------------------------------------------------------
def affine_sample(x: TensorLike, matrix: Any, size: Optional[Tuple[int, int]] = None,
                  padding: str = "border") -> Tensor:
    """Apply an affine map: output pixel (r, c) reads input position ``matrix @ (r, c, 1)``.

    Args:
        x: (N, C, H, W). matrix: (2, 3) for every image, or (N, 2, 3) one per image, mapping
            output (row, col, 1) to input (row, col). size: output (OH, OW), default (H, W).
    Returns:
        (N, C, OH, OW), differentiable with respect to x.
    """
    x = x if isinstance(x, Tensor) else Tensor(x)
    xp = backend.get_array_module(x.data)
    oh, ow = size if size is not None else x.shape[2:]
    m = xp.asarray(matrix, dtype=np.float64)
    if m.shape[-2:] != (2, 3) or m.ndim not in (2, 3):
        raise ValueError(f"affine_sample: matrix must have shape (2, 3) or (N, 2, 3), got {tuple(m.shape)}")
    m = m[None] if m.ndim == 2 else m  # (B, 2, 3)
    r, c = xp.meshgrid(xp.arange(oh, dtype=np.float64), xp.arange(ow, dtype=np.float64), indexing="ij")
    rows = m[:, 0, 0, None, None] * r + m[:, 0, 1, None, None] * c + m[:, 0, 2, None, None]  # (B, OH, OW)
    cols = m[:, 1, 0, None, None] * r + m[:, 1, 1, None, None] * c + m[:, 1, 2, None, None]
    return bilinear_sample(x, rows, cols, padding)


def resize_bilinear(x: TensorLike, size: Sequence[int], padding: str = "border") -> Tensor:
    """Resize (N, C, H, W) to (N, C, OH, OW) with bilinear interpolation, pixel centres aligned
    (PyTorch's ``interpolate(mode="bilinear", align_corners=False)`` without antialiasing).

    Output pixel i reads input position (i + 0.5) * H / OH - 0.5. Differentiable with respect to x.
    """
    x = x if isinstance(x, Tensor) else Tensor(x)
    (h, w), (oh, ow) = x.shape[2:], (int(size[0]), int(size[1]))
    if oh < 1 or ow < 1:
        raise ValueError(f"resize_bilinear: size must be positive, got {tuple(size)} for input {x.shape}")
    matrix = np.array([[h / oh, 0.0, 0.5 * h / oh - 0.5], [0.0, w / ow, 0.5 * w / ow - 0.5]])
    return affine_sample(x, matrix, (oh, ow), padding)
