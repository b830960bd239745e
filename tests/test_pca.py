"""PCA by hand, principal angles, and the property that a linear autoencoder learns the PCA subspace."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_cv.functional as F
from models.autoencoder import LinearAutoencoder
from tinygrad_cv import Tensor, optim, pca


def data_with_spectrum(n: int, variances: np.ndarray, seed: int) -> tuple:
    """n points whose sample covariance is exactly Q diag(variances) Q^T for a random rotation Q.

    Centred Gaussian noise is whitened exactly (its left singular vectors times sqrt(n)), so the
    eigengap asked for holds in the sample, not only in expectation. Needs n > len(variances).
    """
    rng = np.random.default_rng(seed)
    d = len(variances)
    z = rng.standard_normal((n, d))
    z -= z.mean(axis=0)
    u, _, _ = np.linalg.svd(z, full_matrices=False)  # (n, d), orthonormal, centred columns
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return (u * np.sqrt(n * np.asarray(variances))) @ q.T, q


# ---- PCA ------------------------------------------------------------------------------------------------


def test_pca_matches_the_eigendecomposition_of_the_covariance():
    x = np.random.default_rng(0).standard_normal((50, 6)) @ np.diag([5, 4, 3, 2, 1, 0.5]) + 3.0
    fit = pca.fit_pca(x, 3)
    cov = np.cov(x, rowvar=False, bias=True)
    eigenvalues, eigenvectors = np.linalg.eigh(cov)
    np.testing.assert_allclose(fit.explained_variance, eigenvalues[::-1][:3], rtol=1e-10)
    for component, vector in zip(fit.components, eigenvectors[:, ::-1].T):
        assert abs(abs(component @ vector) - 1) < 1e-10  # the same direction up to its sign
    np.testing.assert_allclose(fit.mean, x.mean(axis=0))
    assert fit.total_variance == pytest.approx(np.trace(cov))


def test_pca_error_is_the_discarded_variance_and_zero_with_all_components():
    x, _ = data_with_spectrum(40, np.array([3.0, 2.0, 1.0, 0.5]), seed=1)
    assert pca.fit_pca(x, 2).mse(x) == pytest.approx((1.0 + 0.5) / 4, rel=1e-10)  # per value: / d
    assert pca.fit_pca(x, 4).mse(x) < 1e-25
    curve = pca.pca_mse_curve(x[:30], x[30:], [1, 2, 3])
    np.testing.assert_allclose(curve, [pca.pca_mse(x[:30], x[30:], k) for k in (1, 2, 3)], rtol=1e-12)


def test_pca_flattens_images_and_checks_k():
    images = np.random.default_rng(2).random((20, 1, 3, 3))
    assert pca.fit_pca(images, 4).components.shape == (4, 9)
    with pytest.raises(ValueError, match=r"k must be in \[1, min\(n, d\)\] = \[1, 9\].*\(20, 9\), got 10"):
        pca.fit_pca(images, 10)


# ---- principal angles ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("p,q", [(1, 1), (2, 3), (3, 2), (4, 4)])
def test_principal_angles_match_scipy(p, q):
    rng = np.random.default_rng(p * 10 + q)
    a, b = rng.standard_normal((7, p)), rng.standard_normal((7, q))
    ours, theirs = np.sort(pca.principal_angles(a, b)), np.sort(scipy.linalg.subspace_angles(a, b))
    # Subspaces of dimension p and q in R^7 share at least p + q - 7 directions: those angles are exactly 0.
    # SciPy reports them through an arccos near 1, so as large as sqrt(eps) ~ 1.5e-8; compare the rest.
    shared = max(0, p + q - 7)
    np.testing.assert_array_less(ours[:shared], 1e-12)
    np.testing.assert_allclose(ours[shared:], theirs[shared:], atol=1e-12)


@pytest.mark.parametrize("angle", [1e-9, 1e-4, 0.3, np.pi / 2])
def test_principal_angles_are_accurate_small_and_large(angle):
    # span(e1, e3) against span(cos t e1 + sin t e2, 2 e3): the angles are exactly t and 0.
    a = np.array([[1.0, 0], [0, 0], [0, 1], [0, 0]])
    b = np.array([[np.cos(angle), 0], [np.sin(angle), 0], [0, 2.0], [0, 0]])
    np.testing.assert_allclose(pca.principal_angles(a, b), [0.0, angle], rtol=1e-6, atol=1e-15)
    assert pca.largest_principal_angle_degrees(a, b) == pytest.approx(np.degrees(angle), rel=1e-6)


def test_principal_angles_check_shapes():
    with pytest.raises(ValueError, match=r"\(5, 2\) and \(4, 2\)"):
        pca.principal_angles(np.ones((5, 2)), np.ones((4, 2)))
    with pytest.raises(ValueError, match="is zero"):
        pca.principal_angles(np.zeros((5, 2)), np.ones((5, 1)))


def test_directions_recovered_from_any_basis_of_the_subspace():
    variances = np.array([4.0, 2.0, 1.0, 0.1, 0.05])
    x, q = data_with_spectrum(60, variances, seed=3)
    mixing = np.random.default_rng(4).standard_normal((3, 3))  # what a linear AE may learn: any basis
    directions, found = pca.directions_from_decoder(q[:, :3] @ mixing, x)
    np.testing.assert_allclose(found, variances[:3], rtol=1e-10)
    np.testing.assert_allclose(np.abs(np.sum(directions * q[:, :3].T, axis=1)), 1.0, rtol=1e-10)
    with pytest.raises(ValueError, match=r"decoder weight \(4, 3\).*\(60, 5\)"):
        pca.directions_from_decoder(np.ones((4, 3)), x)


# ---- the property: a linear autoencoder finds the PCA subspace -------------------------------------------------

# Full-batch Adam, lr 0.1 decayed to 0 on a cosine over 600 steps. Why these: the loss is a
# quartic in the weights with a saddle at 0; the slowest part of the fit is the encoder becoming
# the decoder's pseudo-inverse along the small-variance directions, whose gradients scale with the
# tail variances. With tail/top variance ratios >= 1/40 (the strategy below), 600 steps left a
# relative excess MSE below 4e-4 and angles below 0.05 degrees in 1,000 random trials and in 300
# trials at the hardest edge (top variances all 2, the others all 0.05); with 60 steps this test
# fails. The cosine decay removes Adam's final jitter. Each example takes under 0.1 s.
STEPS, LR = 600, 0.1


def train_linear_autoencoder(x: np.ndarray, k: int, seed: int) -> LinearAutoencoder:
    model = LinearAutoencoder((x.shape[1],), k, bias=False, rng=np.random.default_rng(seed))
    opt = optim.Adam(model.parameters(), lr=LR)
    batch = Tensor(x.astype(np.float32))
    for step in range(STEPS):
        opt.lr = LR * 0.5 * (1 + np.cos(np.pi * step / STEPS))
        opt.zero_grad()
        F.mse_loss(model(batch), batch).backward()
        opt.step()
    return model


@st.composite
def spectra(draw):
    """(n, top-k variances in [1, 2], the d-k others in [0.05, 0.25], k): a clear eigengap (>= 4x)."""
    k = draw(st.integers(1, 4))
    d = draw(st.integers(k + 1, 12))
    n = draw(st.integers(d + 2, 300))
    top = draw(st.lists(st.floats(1.0, 2.0), min_size=k, max_size=k))
    tail = draw(st.lists(st.floats(0.05, 0.25), min_size=d - k, max_size=d - k))
    return n, np.array(sorted(top, reverse=True) + sorted(tail, reverse=True)), k


@settings(max_examples=15, deadline=None, derandomize=True)
@given(spectra(), st.integers(0, 2**16))
def test_linear_autoencoder_learns_the_pca_subspace(spectrum, seed):
    n, variances, k = spectrum
    x, _ = data_with_spectrum(n, variances, seed)
    model = train_linear_autoencoder(x, k, seed)
    reference = pca.fit_pca(x, k)
    angle = pca.largest_principal_angle_degrees(model.decoder_weight.astype(np.float64), reference.components.T)
    ae_mse = float(((model(Tensor(x.astype(np.float32))).numpy() - x) ** 2).mean())
    assert angle < 3.0, f"largest principal angle {angle:.3f} degrees (n={n}, d={len(variances)}, k={k})"
    assert abs(ae_mse - reference.mse(x)) <= 0.01 * reference.mse(x), f"AE MSE {ae_mse:.6g} vs PCA {reference.mse(x):.6g}"
