"""The autoencoder codec: the entropy coder restores exactly the quantised code, the bit count is
the number of bytes written, JPEG's tiling gives back every digit, and the envelope/gain helpers."""
from __future__ import annotations

import numpy as np
import pytest

from models import codec


def test_entropy_coding_round_trips_the_quantised_code_exactly():
    rng = np.random.default_rng(0)
    codes = rng.normal(size=(300, 7)).astype(np.float32) * np.arange(1, 8)
    quantiser = codec.Quantiser.fit(codes, step=0.25)
    symbols = quantiser.quantise(codes)
    assert symbols.dtype == np.int16 and symbols.shape == (300, 7)
    decoded = codec.entropy_decode(codec.entropy_encode(symbols), symbols.shape)
    np.testing.assert_array_equal(decoded, symbols)
    error = quantiser.dequantise(symbols) - codes  # at most half a step (in standard units) per value
    assert np.all(np.abs(error) <= 0.5 * 0.25 * quantiser.std + 1e-5)
    with pytest.raises(ValueError, match="step"):
        codec.Quantiser.fit(codes, step=0)


def test_the_bit_count_is_the_bytes_written(tmp_path):
    rng = np.random.default_rng(1)
    images = (rng.random((20, 1, 4, 4)) > 0.7).astype(np.float32)
    train_codes = rng.normal(size=(50, 3)).astype(np.float32)
    weights = rng.normal(size=(16, 3)).astype(np.float32)
    encode = lambda x: x.reshape(len(x), -1) @ weights  # noqa: E731 - a linear "encoder"
    decode = lambda z: (z @ np.linalg.pinv(weights)).reshape(-1, 1, 4, 4)  # noqa: E731
    point = codec.transform_codec_point("linear", encode, decode, train_codes, images, step=0.5)
    symbols = codec.Quantiser.fit(train_codes, 0.5).quantise(encode(images))
    (tmp_path / "codes.bin").write_bytes(codec.entropy_encode(symbols))
    assert point.n_bytes == (tmp_path / "codes.bin").stat().st_size
    assert point.bpp == pytest.approx(8 * point.n_bytes / images.size)


def test_jpeg_tiles_and_untiles_every_digit():
    rng = np.random.default_rng(2)
    images = rng.random((7, 1, 8, 8)).astype(np.float32)
    mosaic = codec.tile(images)
    assert mosaic.shape == (3 * 8, 3 * 8)
    np.testing.assert_array_equal(mosaic[8:16, 0:8], images[3, 0])
    near_lossless = codec.jpeg_point(images, quality=100)
    assert near_lossless.psnr > 35 and near_lossless.bpp == pytest.approx(8 * near_lossless.n_bytes / images.size)
    assert codec.jpeg_point(images, quality=5).bpp < near_lossless.bpp


def test_envelope_and_gain_at_equal_rate():
    P = codec.RatePoint
    a = [P("a", "", 0, 0.1, 20.0), P("a", "", 0, 0.3, 24.0), P("a", "", 0, 0.2, 19.0)]
    b = [P("b", "", 0, 0.2, 18.0), P("b", "", 0, 0.4, 21.0)]
    assert [p.bpp for p in codec.upper_envelope(a)] == [0.1, 0.3]
    assert codec.psnr_at(a, 0.2) == pytest.approx(22.0) and np.isnan(codec.psnr_at(a, 0.5))
    gain = codec.best_gain(a, b, 0.1, 0.5, samples=5)  # both exist on [0.2, 0.3]: 4 dB at 0.2, 4.5 at 0.3
    assert gain == {"bpp": pytest.approx(0.3), "gain_db": pytest.approx(24.0 - 19.5)}
