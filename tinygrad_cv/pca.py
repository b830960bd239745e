"""Principal component analysis by hand, and the angles between subspaces.

PCA of data X (n samples, d features): centre it, X_c = X - mean, and take the thin SVD
X_c = U S V^T. The rows of V^T are the principal directions, ordered by the variance S^2 / n they
explain; the top-k rows span the k-dimensional subspace that reconstructs X with the least squared
error of all k-dimensional affine subspaces (Eckart & Young 1936). That subspace is what a linear
autoencoder learns (Baldi & Hornik 1989), which lessons/07 checks with ``principal_angles``.

Everything here takes and returns NumPy arrays (CuPy arrays work too: the array module is read
from the input). The SVD runs in the input's precision; pass float64 for lab-grade accuracy.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tinygrad_cv import backend


@dataclass(frozen=True)
class PCA:
    """A fitted PCA.

    Shape: mean (d,), components (k, d) with orthonormal rows, explained_variance (k,).
    """

    mean: Any
    components: Any
    explained_variance: Any  # variance of the data along each component (S^2 / n)
    total_variance: float  # sum of the variances of all d features

    @property
    def k(self) -> int:
        return int(self.components.shape[0])

    def encode(self, x: Any) -> Any:
        """Coordinates in the principal basis. Shape: (n, d) -> (n, k)."""
        return (x - self.mean) @ self.components.T

    def decode(self, z: Any) -> Any:
        """Back to data space. Shape: (n, k) -> (n, d)."""
        return z @ self.components + self.mean

    def reconstruct(self, x: Any) -> Any:
        """Project onto the principal affine subspace. Shape: (n, d) -> (n, d)."""
        return self.decode(self.encode(x))

    def mse(self, x: Any) -> float:
        """Mean squared reconstruction error per value (the autoencoders' loss), on any data."""
        return float(((self.reconstruct(x) - x) ** 2).mean())


def _as_matrix(x: Any) -> Any:
    """(n, ...) -> (n, d): images are flattened to vectors."""
    x = backend.get_array_module(x).asarray(x)
    if x.ndim < 2:
        raise ValueError(f"PCA needs data of shape (n, d) (or (n, ...) to flatten), got {x.shape}")
    return x.reshape(x.shape[0], -1)


def fit_pca(x: Any, k: int) -> PCA:
    """PCA with k components from the SVD of the centred data.

    Args:
        x: data, (n, d) or (n, C, H, W) (flattened).
        k: number of components, 1 <= k <= min(n, d).
    """
    x = _as_matrix(x)
    n, d = x.shape
    if not 1 <= k <= min(n, d):
        raise ValueError(f"PCA: k must be in [1, min(n, d)] = [1, {min(n, d)}] for data of shape {x.shape}, got {k}")
    xp = backend.get_array_module(x)
    mean = x.mean(axis=0)
    _, s, vt = xp.linalg.svd(x - mean, full_matrices=False)  # x - mean = U diag(s) V^T
    variance = s**2 / n
    return PCA(mean=mean, components=vt[:k], explained_variance=variance[:k], total_variance=float(variance.sum()))


def pca_mse(train: Any, test: Any, k: int) -> float:
    """Held-out MSE per value of PCA with k components fitted on ``train`` (images are flattened)."""
    return fit_pca(train, k).mse(_as_matrix(test))


def pca_mse_curve(train: Any, test: Any, ks: Any) -> np.ndarray:
    """pca_mse for each k in ``ks`` from one SVD (the top-k of a bigger PCA is the smaller PCA)."""
    ks = [int(k) for k in ks]
    full = fit_pca(train, max(ks))
    test = _as_matrix(test)
    errors = []
    for k in ks:
        part = PCA(full.mean, full.components[:k], full.explained_variance[:k], full.total_variance)
        errors.append(part.mse(test))
    return np.array(errors)


def orthonormal_basis(a: Any, rtol: float = 1e-10) -> Any:
    """Orthonormal columns spanning the column space of ``a`` (left singular vectors above rtol * s_max).

    Shape: (d, k) -> (d, r), r = numerical rank of a.
    """
    xp = backend.get_array_module(a)
    u, s, _ = xp.linalg.svd(a, full_matrices=False)
    rank = int((s > rtol * s[0]).sum()) if s.size and s[0] > 0 else 0
    if rank == 0:
        raise ValueError(f"orthonormal_basis: the matrix of shape {a.shape} is zero, it spans no subspace")
    return u[:, :rank]


def principal_angles(a: Any, b: Any) -> Any:
    """Principal angles (radians, ascending) between the column spaces of a (d, p) and b (d, q).

    With orthonormal bases Qa, Qb, the cosines of the angles are the singular values of Qa^T Qb
    (Bjorck & Golub 1973). arccos loses accuracy for small angles (cos is flat near 0), so, as in
    Knyazev & Argentati (2002), small angles come from the sines instead: the singular values of
    Qb - Qa (Qa^T Qb), the part of b's basis outside a's subspace.

    Returns min(p, q) angles; the largest says how far apart the subspaces are.
    """
    if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[0]:
        raise ValueError(f"principal_angles: need (d, p) and (d, q) matrices, got shapes {a.shape} and {b.shape}")
    qa, qb = orthonormal_basis(a), orthonormal_basis(b)
    if qa.shape[1] < qb.shape[1]:
        qa, qb = qb, qa  # keep qa the larger: then qb's residual has exactly the q sines we need
    xp = backend.get_array_module(qa)
    overlap = qa.T @ qb
    cosines = xp.clip(xp.linalg.svd(overlap, compute_uv=False), 0.0, 1.0)  # descending: angles ascending
    sines = xp.clip(xp.linalg.svd(qb - qa @ overlap, compute_uv=False)[::-1], 0.0, 1.0)  # ascending
    return xp.where(cosines**2 < 0.5, xp.arccos(cosines), xp.arcsin(sines))


def largest_principal_angle_degrees(a: Any, b: Any) -> float:
    """The largest principal angle between two column spaces, in degrees (0 = same subspace)."""
    return float(np.degrees(principal_angles(a, b).max()))


def directions_from_decoder(decoder: Any, x: Any) -> tuple:
    """Recover the principal directions from a linear autoencoder's decoder weights.

    A linear AE finds the principal subspace but not the directions inside it: any invertible mix
    of them reconstructs as well. Two SVDs undo the mix. The first gives an orthonormal basis Q of
    the decoder's column space; the second, of the centred data in that basis (X_c Q = U S R^T),
    diagonalises the data's covariance within the subspace, so the columns of Q R are the principal
    directions and S^2 / n their variances (compare Plaut 2018, "From principal subspaces to
    principal components with linear autoencoders").

    Args:
        decoder: the decoder's weight, (d, k) (nn.Linear(k, d).weight).
        x: the data, (n, d), centred here.

    Returns:
        (directions (k, d) with orthonormal rows, variances (k,)), ordered by variance; each row is
        determined up to its sign, as for PCA itself.
    """
    x = _as_matrix(x)
    if decoder.ndim != 2 or decoder.shape[0] != x.shape[1]:
        raise ValueError(f"directions_from_decoder: decoder weight {decoder.shape} does not map to data of shape {x.shape}")
    xp = backend.get_array_module(x)
    q = orthonormal_basis(decoder)  # (d, k)
    _, s, rt = xp.linalg.svd((x - x.mean(axis=0)) @ q, full_matrices=False)
    return (q @ rt.T).T, s**2 / x.shape[0]
