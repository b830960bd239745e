"""An autoencoder as an image codec, next to PCA and JPEG: bits per pixel against PSNR.

The pipeline is the same for the autoencoder and for PCA (only the transform differs):

1. transform: code = encode(image), a few real numbers per image;
2. quantise: each code dimension is standardised with the mean and standard deviation of the training
   codes (a fixed part of the codec, like the decoder's weights) and rounded to a multiple of ``step``:
   symbol = round((code - mean) / std / step), an integer;
3. entropy-code: the symbols of all images, dimension by dimension (so that values with the same
   statistics sit together), as little-endian int16, compressed by LZMA (the xz algorithm, raw
   stream, no container header). The bit count is the length of that compressed byte string times 8:
   exactly what would be written to disk, divided by the number of pixels;
4. decode: decompress, dequantise (symbol * step * std + mean), decode, clip to [0, 1].

JPEG (Pillow's libjpeg, baseline, optimised Huffman tables, greyscale) gets the same test digits
tiled into one big image, so that its headers and tables (a few hundred bytes) are paid once rather
than once per 28x28 digit; its bits are the JPEG file's length times 8, over the same pixels.
PSNR = 10 log10(1 / MSE) over all test pixels in [0, 1].

The rate the codec can reach is bounded below by the code's size and above by nothing but the step:
a coarser step costs fewer bits and more distortion. One curve per code size; their upper envelope is
the codec's operational rate-distortion curve.
"""
from __future__ import annotations

import io
import lzma
from dataclasses import dataclass
from typing import Callable, Dict, List, Sequence

import numpy as np

# A raw LZMA2 stream: no .xz container, no checksums; both sides know the settings.
LZMA_FILTERS = [{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME}]


@dataclass(frozen=True)
class Quantiser:
    """Per-dimension standardisation (from training codes) and a uniform step in standard units."""

    mean: np.ndarray  # (k,)
    std: np.ndarray  # (k,)
    step: float

    @classmethod
    def fit(cls, train_codes: np.ndarray, step: float) -> "Quantiser":
        if step <= 0:
            raise ValueError(f"the quantisation step must be > 0, got {step}")
        return cls(train_codes.mean(axis=0), train_codes.std(axis=0) + 1e-8, float(step))

    def quantise(self, codes: np.ndarray) -> np.ndarray:
        """Integer symbols (N, k), int16 (raises if a symbol does not fit)."""
        symbols = np.rint((codes - self.mean) / self.std / self.step)
        if np.abs(symbols).max(initial=0) > np.iinfo(np.int16).max:
            raise ValueError(f"step {self.step} is too fine: symbols exceed int16")
        return symbols.astype(np.int16)

    def dequantise(self, symbols: np.ndarray) -> np.ndarray:
        return (symbols.astype(np.float32) * self.step * self.std + self.mean).astype(np.float32)


def entropy_encode(symbols: np.ndarray) -> bytes:
    """Symbols (N, k) int16 -> compressed bytes (dimension-major order, raw LZMA2)."""
    column_major = np.ascontiguousarray(symbols.T).astype("<i2")  # (k, N): one dimension after another
    return lzma.compress(column_major.tobytes(), format=lzma.FORMAT_RAW, filters=LZMA_FILTERS)


def entropy_decode(data: bytes, shape: Sequence[int]) -> np.ndarray:
    """The inverse of entropy_encode: bytes -> symbols of ``shape`` (N, k)."""
    n, k = shape
    raw = lzma.decompress(data, format=lzma.FORMAT_RAW, filters=LZMA_FILTERS)
    return np.frombuffer(raw, dtype="<i2").reshape(k, n).T.astype(np.int16)


def psnr(reconstruction: np.ndarray, original: np.ndarray) -> float:
    """10 log10(1 / MSE) for images in [0, 1], over all pixels."""
    mse = float(np.mean((np.asarray(reconstruction, np.float64) - original) ** 2))
    return 10 * np.log10(1.0 / max(mse, 1e-12))


@dataclass(frozen=True)
class RatePoint:
    """One point of a rate-distortion curve."""

    method: str
    setting: str
    n_bytes: int  # the compressed size of all the test images
    bpp: float  # 8 * n_bytes / number of pixels
    psnr: float


def transform_codec_point(method: str, encode: Callable, decode: Callable, train_codes: np.ndarray,
                          images: np.ndarray, step: float) -> RatePoint:
    """Encode, quantise, entropy-code, and back: the rate (bits per pixel) and PSNR on ``images``.

    encode: images (N, 1, H, W) -> codes (N, k); decode: codes -> images.
    """
    quantiser = Quantiser.fit(train_codes, step)
    symbols = quantiser.quantise(encode(images))
    data = entropy_encode(symbols)
    decoded = np.clip(decode(quantiser.dequantise(entropy_decode(data, symbols.shape))), 0, 1)
    bpp = 8 * len(data) / images[:, 0].size
    return RatePoint(method, f"k={symbols.shape[1]}, step={step:g}", len(data), bpp, psnr(decoded, images))


def tile(images: np.ndarray) -> np.ndarray:
    """N square-count greyscale images (N, 1, H, W) as one (rows*H, cols*W) array, no gaps."""
    n, _, h, w = images.shape
    cols = int(np.ceil(np.sqrt(n)))
    rows = -(-n // cols)
    padded = np.zeros((rows * cols, h, w), images.dtype)
    padded[:n] = images[:, 0]
    return padded.reshape(rows, cols, h, w).transpose(0, 2, 1, 3).reshape(rows * h, cols * w)


def jpeg_point(images: np.ndarray, quality: int) -> RatePoint:
    """JPEG at ``quality`` on the tiled images: bits per (real) pixel and PSNR over the real pixels."""
    from PIL import Image

    mosaic = tile(images)
    buffer = io.BytesIO()
    Image.fromarray(np.rint(mosaic * 255).astype(np.uint8)).save(buffer, "JPEG", quality=quality, optimize=True)
    decoded = np.asarray(Image.open(io.BytesIO(buffer.getvalue())), dtype=np.float64) / 255.0
    n, _, h, w = images.shape
    cols = mosaic.shape[1] // w
    pieces = decoded.reshape(-1, h, cols, w).transpose(0, 2, 1, 3).reshape(-1, 1, h, w)[:n]
    n_bytes = len(buffer.getvalue())
    return RatePoint("JPEG", f"quality={quality}", n_bytes, 8 * n_bytes / images[:, 0].size, psnr(pieces, images))


def upper_envelope(points: List[RatePoint]) -> List[RatePoint]:
    """The points no other point beats (fewer or equal bits and higher or equal PSNR), by rate."""
    ordered = sorted(points, key=lambda p: (p.bpp, -p.psnr))
    envelope: List[RatePoint] = []
    for p in ordered:
        if not envelope or p.psnr > envelope[-1].psnr:
            envelope.append(p)
    return envelope


def psnr_at(points: List[RatePoint], bpp: float) -> float:
    """PSNR of a curve at ``bpp``, by linear interpolation on its envelope (NaN outside its range)."""
    env = upper_envelope(points)
    rates, values = [p.bpp for p in env], [p.psnr for p in env]
    if not rates or bpp < rates[0] - 1e-9 or bpp > rates[-1] + 1e-9:
        return float("nan")
    return float(np.interp(bpp, rates, values))


def best_gain(codec: List[RatePoint], reference: List[RatePoint], low: float = 0.1, high: float = 0.5,
              samples: int = 81) -> Dict[str, float]:
    """The largest PSNR(codec) - PSNR(reference) at equal rate over [low, high] bpp where both exist."""
    best = {"bpp": float("nan"), "gain_db": float("-inf")}
    for bpp in np.linspace(low, high, samples):
        gain = psnr_at(codec, bpp) - psnr_at(reference, bpp)
        if np.isfinite(gain) and gain > best["gain_db"]:
            best = {"bpp": float(bpp), "gain_db": float(gain)}
    return best
