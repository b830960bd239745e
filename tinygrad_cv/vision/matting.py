"""The matting Laplacian: a number for "is this still a photo of the same scene?", as a loss and as a filter.

Levin, Lischinski & Weiss 2008 ("A Closed-Form Solution to Natural Image Matting", eq. 12): in every
small window w_k (3x3 here) of a photo I, assume an output channel V is an affine function of I's
colours, V_i = a_k . I_i + b_k. The best a_k, b_k can be solved for in closed form and eliminated, and
what is left is a quadratic form

    J(V) = V^T M V,   M_ij = sum_{k: i, j in w_k} ( delta_ij - (1 + (I_i - mu_k)^T (Sigma_k + eps/|w| E)^-1 (I_j - mu_k)) / |w| )

with mu_k, Sigma_k the mean and covariance of I's colours in w_k and |w| = 9. J(V) = 0 exactly when V is,
window by window, an affine recolouring of I (up to the tiny regulariser eps). Luan et al. 2017 ("Deep
Photo Style Transfer") add lambda sum_c V_c^T M V_c to Gatys's loss so a stylised photo keeps the
content's edges; Li et al. 2018 ("A Closed-form Solution to Photorealistic Image Stylization",
FastPhotoStyle) solve a linear system with the same affinities to pull any stylised image back to one.

Write M = D - A: A_ij = sum_k (1 + ...) / |w| is the *affinity* of pixels i and j, and since each window's
affinities to i sum to 1, D = diag(number of windows holding i). Everything below is built from A.
Pixels are numbered row-major (i = y * W + x); colours are in [0, 1].
"""
from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse
import scipy.sparse.linalg
from numpy.lib.stride_tricks import sliding_window_view

from tinygrad_cv import backend
from tinygrad_cv.tensor import Function, Tensor

EPS = 1e-7  # Levin's and Luan's scripts (colours in [0, 1]); the TF port of Luan uses 1e-5
RADIUS = 1  # 3x3 windows, as in both papers
SMOOTH_BETA = 0.9999  # FastPhotoStyle's beta = 1 / (1 + 1e-4): how much the smoothing trusts the affinities


def _as_float_image(image: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) or floats in [0, 1] -> float64 (H, W, 3) in [0, 1]."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) image, got shape {image.shape}")
    return image.astype(np.float64) / 255.0 if image.dtype == np.uint8 else image.astype(np.float64)


def matting_affinity(image: np.ndarray, eps: float = EPS, radius: int = RADIUS) -> scipy.sparse.csr_matrix:
    """The affinity A of Levin's matting Laplacian M = D - A, as an (H W, H W) sparse matrix.

    Built for all windows at once: each window's |w| x |w| block of affinities is one batched matrix
    product, and the (pixel, pixel, value) triples of all blocks are summed into one sparse matrix.

    Args:
        image: uint8 (H, W, 3), or floats in [0, 1]; both sides at least 2 * radius + 1.
        eps: the regulariser added to each window's colour covariance (as eps / |w| times the identity).
    """
    image = _as_float_image(image)
    H, W, _ = image.shape
    k = 2 * radius + 1
    n = k * k  # |w|, pixels per window
    if H < k or W < k:
        raise ValueError(f"matting_affinity: the image ({H}x{W}) is smaller than one {k}x{k} window")
    index = np.arange(H * W, dtype=np.int32).reshape(H, W)
    windows = sliding_window_view(index, (k, k)).reshape(-1, n)  # (NW, n) pixel numbers of each window
    colours = image.reshape(H * W, 3)[windows]  # (NW, n, 3)
    centred = colours - colours.mean(axis=1, keepdims=True)  # (NW, n, 3): I_i - mu_k
    covariance = centred.transpose(0, 2, 1) @ centred / n  # (NW, 3, 3): Sigma_k
    inverse = np.linalg.inv(covariance + (eps / n) * np.eye(3))  # (NW, 3, 3)
    values = (1.0 + centred @ inverse @ centred.transpose(0, 2, 1)) / n  # (NW, n, n): block of A
    rows = np.repeat(windows, n, axis=1).ravel()  # i of entry (i, j): each window pixel n times
    cols = np.tile(windows, (1, n)).ravel()  # j of entry (i, j)
    affinity = scipy.sparse.coo_matrix((values.ravel(), (rows, cols)), shape=(H * W, H * W))
    return affinity.tocsr()  # duplicates (pixel pairs shared by windows) are summed here


def matting_laplacian(image: np.ndarray, eps: float = EPS, radius: int = RADIUS) -> scipy.sparse.csr_matrix:
    """Levin's matting Laplacian M = D - A of ``image``: symmetric, positive semi-definite, M 1 = 0."""
    affinity = matting_affinity(image, eps, radius)
    degree = np.asarray(affinity.sum(axis=1)).ravel()  # windows holding each pixel (9 inside, 4 in corners)
    return (scipy.sparse.diags(degree) - affinity).tocsr()


def matting_energy_array(image: np.ndarray, laplacian: scipy.sparse.spmatrix) -> float:
    """sum over colour channels of V_c^T M V_c, for an (H, W, 3) image (uint8 or [0, 1] floats)."""
    V = _as_float_image(image).reshape(-1, 3)  # (H W, 3): one column per channel
    return float((V * (laplacian @ V)).sum())


def relative_matting_energy(image: np.ndarray, laplacian: scipy.sparse.spmatrix) -> float:
    """sum_c V_c^T M V_c / sum_c |V_c - mean(V_c)|^2: 0 for any locally affine recolouring of the
    photo M was built from, scale-free (the same for V and 2 V), and higher the less it looks like one."""
    V = _as_float_image(image).reshape(-1, 3)
    spread = float(((V - V.mean(axis=0)) ** 2).sum())
    return matting_energy_array(image, laplacian) / max(spread, 1e-12)


# ---- the regulariser as a differentiable op ----------------------------------------------------------
class MattingEnergy(Function):
    """sum_c V_c^T M V_c for a (1, 3, H, W) image; the sparse products run on the CPU (SciPy)."""

    def forward(self, image: Any, laplacian: scipy.sparse.spmatrix) -> Any:
        N, C, H, W = image.shape
        if N != 1 or C != 3 or laplacian.shape != (H * W, H * W):
            raise ValueError(f"matting_energy: need a (1, 3, H, W) image matching the Laplacian's "
                             f"{laplacian.shape}, got {tuple(image.shape)}")
        self.device, self.dtype, self.shape = backend.device_of(image), image.dtype, image.shape
        V = backend.to_device(image, "cpu").reshape(C, H * W).T.astype(np.float64)  # (H W, 3)
        self.MV = laplacian @ V  # (H W, 3), kept for backward
        value = np.asarray((V * self.MV).sum(), dtype=self.dtype)
        return backend.to_device(value, self.device)

    def backward(self, grad: Any) -> Any:
        # d/dV (V^T M V) = (M + M^T) V = 2 M V, since M is symmetric
        g = float(backend.to_device(grad, "cpu")) * 2.0 * self.MV.T.reshape(self.shape)  # (1, 3, H, W)
        return backend.to_device(g.astype(self.dtype), self.device)


def matting_energy(image: Tensor, laplacian: scipy.sparse.spmatrix) -> Tensor:
    """Luan's photorealism regulariser sum_c V_c^T M V_c of a (1, 3, H, W) image Tensor.

    Gradient: 2 M V_c for each channel (M is symmetric).
    """
    return MattingEnergy.apply(image, laplacian=laplacian)


# ---- closed-form smoothing -------------------------------------------------------------------------
def smooth(stylized: np.ndarray, content: np.ndarray, beta: float = SMOOTH_BETA, eps: float = EPS) -> np.ndarray:
    """Pull ``stylized`` back to a locally affine recolouring of ``content`` (FastPhotoStyle's smoothing).

    Solves (I - beta S) R = (1 - beta) Y for every channel, with S = D^-1 A the content's affinities
    normalised per row. That is the minimiser of  beta R^T M R + (1 - beta) (R - Y)^T D (R - Y):
    stay close to Y while being locally affine in the content. Departure from Li et al. 2018, who use
    the symmetric S = D^-1/2 A D^-1/2: with D^-1 A every locally affine Y (M Y = 0) is left exactly as
    it is, where the symmetric form shifts the image border (D is smaller there).

    Args:
        stylized: uint8 (H, W, 3) (resized to the content's size if needed), or floats in [0, 1] of
            the content's size.
        content: uint8 (H, W, 3), the photo whose affinities are used.
    Returns:
        the smoothed image, uint8 for uint8 input, else float64 (not clipped).
    """
    from tinygrad_cv.vision.image import resize

    if not 0.0 < beta < 1.0:
        raise ValueError(f"smooth: beta must lie in (0, 1), got {beta}")
    H, W = content.shape[:2]
    if stylized.dtype != np.uint8:
        return _smooth_solve(_as_float_image(stylized), content, beta, eps)
    R = _smooth_solve(_as_float_image(resize(stylized, (H, W))), content, beta, eps)
    return (np.clip(R, 0.0, 1.0) * 255).round().astype(np.uint8)


def _smooth_solve(Y: np.ndarray, content: np.ndarray, beta: float, eps: float) -> np.ndarray:
    """R with (D - beta A) R = (1 - beta) D Y, channel by channel; Y and R float (H, W, 3)."""
    H, W = content.shape[:2]
    if Y.shape != (H, W, 3):
        raise ValueError(f"smooth: the image {Y.shape} and the content {content.shape} differ in size")
    affinity = matting_affinity(content, eps)
    degree = scipy.sparse.diags(np.asarray(affinity.sum(axis=1)).ravel())
    system = ((degree - beta * affinity) / (1.0 - beta)).tocsc()  # (I - beta S) times D, over (1 - beta)
    solve = scipy.sparse.linalg.factorized(system)  # one factorisation, three solves
    rhs = degree @ Y.reshape(-1, 3)  # (H W, 3)
    return np.stack([solve(rhs[:, c]) for c in range(3)], axis=1).reshape(H, W, 3)
