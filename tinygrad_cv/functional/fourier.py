"""Fourier synthesis: an image built from sinusoids, as a differentiable op (for feature visualisation).

Given complex coefficients a + ib for the frequencies ky = 0..H-1 (rows) and kx = 0..W/2 (columns),
the image is

    x[y, x] = Re sum_{ky, kx} (a + ib)[ky, kx] e^{2 pi i (ky y / H + kx x / W)}
            = sum_{ky, kx} a cos(theta) - b sin(theta),        theta = 2 pi (ky y / H + kx x / W).

That is the inverse DFT of a spectrum holding (a + ib) in its first W/2 + 1 columns and zeros
elsewhere, times H W (``numpy.fft.ifft2`` divides by H W): every real image can be written this way,
since the other half of a real image's spectrum mirrors this half.

The output is linear in a and b, and the derivative of x[y, x] is cos(theta) for a and -sin(theta)
for b. So the gradient is sum_{y, x} g[y, x] e^{-i theta}: the forward DFT of the output gradient,
exactly what ``numpy.fft.rfft2`` computes, real part for a and imaginary part for b. Both directions
are FFTs: O(HW log HW) instead of the O(HW (H + W)) of matrix products with cosine tables.
"""
from __future__ import annotations

from typing import Any

from tinygrad_cv import backend
from tinygrad_cv.tensor import Function, Tensor, TensorLike


class FourierSynthesis(Function):
    def forward(self, real: Any, imag: Any, width: int) -> Any:
        xp = backend.get_array_module(real, imag)
        if real.shape != imag.shape or real.ndim < 2 or real.shape[-1] != width // 2 + 1:
            raise ValueError(f"fourier_synthesis: real and imag must have the same shape (..., H, width//2 + 1 "
                             f"= {width // 2 + 1}); got {tuple(real.shape)} and {tuple(imag.shape)}")
        height, columns = real.shape[-2:]
        self.dtype = real.dtype
        spectrum = xp.zeros(real.shape[:-1] + (width,), dtype=xp.result_type(real.dtype, 1j))  # (..., H, W)
        spectrum[..., :columns] = real + 1j * imag
        return (xp.fft.ifft2(spectrum) * (height * width)).real.astype(real.dtype)  # (..., H, W)

    def backward(self, grad: Any) -> tuple:
        xp = backend.get_array_module(grad)
        spectrum = xp.fft.rfft2(grad)  # sum over y, x of g e^{-i theta}: (..., H, W//2 + 1)
        return spectrum.real.astype(self.dtype), spectrum.imag.astype(self.dtype)


def fourier_synthesis(real: TensorLike, imag: TensorLike, width: int) -> Tensor:
    """Build (..., H, width) images from Fourier coefficients a + ib of shape (..., H, width//2 + 1):
    x = Re sum (a + ib) e^{2 pi i (ky y / H + kx x / W)}, unnormalised.

    Gradient: the forward DFT of the output gradient (``rfft2``), real part to a, imaginary part to b.
    """
    return FourierSynthesis.apply(real, imag, width=int(width))
