"""The Gram matrix of feature maps: which channels fire together, wherever they fire (style transfer)."""
from __future__ import annotations

from tinygrad_cv.functional import fast_paths, gram_fast
from tinygrad_cv.tensor import Tensor


def gram_matrix(features: Tensor) -> Tensor:
    """Channel correlations averaged over positions: G = F F^T / (H W), with F the (C, H*W) matrix
    of one image's features. Shape: (N, C, H, W) -> (N, C, C).

    Gradient (matmul's rules): dL/dF = (dG + dG^T) F / (H W).
    """
    if features.ndim != 4:
        raise ValueError(f"gram_matrix expects (N, C, H, W) features, got shape {features.shape}")
    if fast_paths.enabled() and gram_fast.fits(features):
        return gram_fast.GramFast.apply(features)
    N, C, H, W = features.shape
    F = features.reshape(N, C, H * W)
    return (F @ F.transpose(0, 2, 1)) / (H * W)
