"""Image loading and saving: every kind of file becomes uint8 (H, W, 3) RGB."""
from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from tinygrad_cv.vision import image as im

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, size=(6, 9, 3), dtype=np.uint8)


def check_rgb(array: np.ndarray, shape: tuple) -> None:
    assert array.dtype == np.uint8 and array.shape == shape + (3,)


def test_save_then_load_png_is_exact(tmp_path):
    path = im.save_image(tmp_path / "out.png", RGB)
    np.testing.assert_array_equal(im.load_image(path), RGB)
    assert os.listdir(tmp_path) == ["out.png"]  # no temporary file left behind


def test_grayscale_palette_and_16bit_files(tmp_path):
    gray = RGB[:, :, 0]
    Image.fromarray(gray, "L").save(tmp_path / "gray.png")
    np.testing.assert_array_equal(im.load_image(tmp_path / "gray.png"), np.stack([gray] * 3, axis=2))

    Image.fromarray(RGB).quantize(colors=16).save(tmp_path / "palette.png")
    with Image.open(tmp_path / "palette.png") as palette:
        assert palette.mode == "P"
        expected = np.asarray(palette.convert("RGB"))
    np.testing.assert_array_equal(im.load_image(tmp_path / "palette.png"), expected)

    deep = (RNG.integers(0, 65536, size=(5, 7))).astype(np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    with Image.open(tmp_path / "deep.png") as deep_file:
        assert deep_file.mode.startswith("I")  # 16-bit grayscale
    loaded = im.load_image(tmp_path / "deep.png")
    check_rgb(loaded, (5, 7))
    np.testing.assert_array_equal(loaded[:, :, 1], np.round(deep / 257.0).astype(np.uint8))


def test_transparency_is_shown_over_white(tmp_path):
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = (10, 20, 30, 255)  # opaque
    rgba[0, 1] = (10, 20, 30, 0)  # fully transparent
    rgba[1, 0] = (0, 0, 0, 128)  # half-transparent black
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    out = im.load_image(tmp_path / "rgba.png")
    assert tuple(out[0, 0]) == (10, 20, 30) and tuple(out[0, 1]) == (255, 255, 255)
    assert abs(int(out[1, 0, 0]) - 127) <= 1
    np.testing.assert_array_equal(im.to_rgb_uint8(rgba), out)

    palette = Image.fromarray(np.array([[0, 1]], np.uint8), "P")
    palette.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    palette.info["transparency"] = 1
    palette.save(tmp_path / "ptrans.png")
    out = im.load_image(tmp_path / "ptrans.png")
    assert tuple(out[0, 0]) == (255, 0, 0) and tuple(out[0, 1]) == (255, 255, 255)


def test_exif_rotation_is_applied(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: the camera was turned; show rotated 90 degrees clockwise
    Image.fromarray(RGB).save(tmp_path / "rotated.png", exif=exif)
    np.testing.assert_array_equal(im.load_image(tmp_path / "rotated.png"), np.rot90(RGB, k=-1))


def test_missing_file_and_non_image_give_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such image file"):
        im.load_image(tmp_path / "nope.jpg")
    (tmp_path / "notes.jpg").write_text("this is text, not a JPEG")
    with pytest.raises(ValueError, match="notes.jpg is not an image"):
        im.load_image(tmp_path / "notes.jpg")


def test_max_side_shrinks_but_never_enlarges(tmp_path):
    big = RNG.integers(0, 256, size=(40, 100, 3), dtype=np.uint8)
    im.save_image(tmp_path / "big.png", big)
    check_rgb(im.load_image(tmp_path / "big.png", max_side=50), (20, 50))
    check_rgb(im.load_image(tmp_path / "big.png", max_side=500), (40, 100))
    check_rgb(im.resize(big, (7, 13)), (7, 13))
    flat = np.full((8, 8, 3), 77, np.uint8)
    np.testing.assert_array_equal(im.resize(flat, (3, 5)), np.full((3, 5, 3), 77, np.uint8))
    with pytest.raises(ValueError, match="positive"):
        im.resize(big, (0, 4))


def test_to_rgb_uint8_arrays():
    gray = RGB[:, :, 0]
    np.testing.assert_array_equal(im.to_rgb_uint8(gray), np.stack([gray] * 3, axis=2))
    np.testing.assert_array_equal(im.to_rgb_uint8(Image.fromarray(RGB)), RGB)
    with pytest.raises(ValueError, match="dtype float64"):
        im.to_rgb_uint8(RGB / 255.0)
    with pytest.raises(ValueError, match=r"\(6, 9, 2\)"):
        im.to_rgb_uint8(RGB[:, :, :2])


def test_save_image_refuses_bad_input_and_is_atomic(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="uint8"):
        im.save_image(tmp_path / "f.png", RGB.astype(np.float32))
    with pytest.raises(ValueError, match="extension"):
        im.save_image(tmp_path / "f.xyz", RGB)
    im.save_image(tmp_path / "keep.png", RGB)
    before = (tmp_path / "keep.png").read_bytes()

    def failing_save(self, fp, *args, **kwargs):
        fp.write(b"\x89PNG half a file")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        im.save_image(tmp_path / "keep.png", RGB[::-1])
    assert (tmp_path / "keep.png").read_bytes() == before
    assert os.listdir(tmp_path) == ["keep.png"]


def test_jpeg_round_trip_is_close(tmp_path):
    smooth = np.broadcast_to(np.linspace(0, 255, 32).astype(np.uint8)[None, :, None], (16, 32, 3))
    im.save_image(tmp_path / "s.jpg", np.ascontiguousarray(smooth))
    back = im.load_image(tmp_path / "s.jpg")
    assert np.abs(back.astype(int) - smooth).max() <= 8
