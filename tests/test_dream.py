"""Deep Dream (octaves, tiles, the normalised step) and the `visualize` / `dream` command lines."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from models.vgg import load_vgg
from tinygrad_cv import cli
from tinygrad_cv.vision.dream import (DreamSettings, dream, dream_objective, dream_step, octave_sizes,
                                      tile_slices, tiled_gradient)
from tinygrad_cv.vision.optvis import layer_energy, network_features


@pytest.fixture(scope="module")
def vgg():
    return load_vgg("vgg16", weights="random")


def photo(h: int = 64, w: int = 64, seed: int = 0) -> np.ndarray:
    """A smooth random picture (noise blurred by upscaling), uint8 (h, w, 3)."""
    small = np.random.default_rng(seed).integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((w, h), Image.Resampling.BILINEAR))


def test_dream_keeps_the_input_size(vgg):
    settings = DreamSettings(layer="conv2_2", octaves=2, steps=2, roll=4, tile_size=40)
    result = dream(vgg, photo(64, 56), settings)
    assert result.image.shape == (64, 56, 3) and result.image.dtype == np.uint8
    assert result.sizes == [(46, 40), (64, 56)] and len(result.history) == 4
    assert not np.array_equal(result.image, photo(64, 56))


def test_octave_sizes():
    assert octave_sizes(100, 200, 3, 2.0) == [(25, 50), (50, 100), (100, 200)]
    assert octave_sizes(64, 64, 5, 1.4)[0] == (17, 17)  # 64 / 1.4^4
    with pytest.raises(ValueError, match="fewer octaves"):
        octave_sizes(64, 64, 6, 1.4)  # 64 / 1.4^5 = 12 px
    with pytest.raises(ValueError, match="fewer octaves"):
        octave_sizes(40, 64, 4, 1.4)


def test_tile_slices_cover_the_range():
    pieces = tile_slices(10, 4)
    assert [(s.start, s.stop) for s in pieces] == [(0, 3), (3, 7), (7, 10)]
    assert tile_slices(5, 8) == [slice(0, 5)]
    aligned = tile_slices(171, 96, align=32)  # the seam at 85.5 moves to the pooling grid
    assert [(s.start, s.stop) for s in aligned] == [(0, 96), (96, 171)]
    assert [(s.start, s.stop) for s in tile_slices(256, 96, align=32)] == [(0, 96), (96, 160), (160, 256)]


def test_tiles_add_up_to_the_whole_image():
    """For features that see single pixels, tiling changes nothing, value or gradient."""
    image = np.random.default_rng(0).random((1, 3, 12, 14))
    pixels = lambda x, layers: {"pixels": x}  # noqa: E731
    objective = layer_energy("pixels")
    whole, whole_value = tiled_gradient(pixels, objective, image, tile=64, align=1)
    tiled, tiled_value = tiled_gradient(pixels, objective, image, tile=5, align=1)
    assert tiled_value == pytest.approx(whole_value, rel=1e-12) == pytest.approx((image ** 2).mean())
    np.testing.assert_allclose(tiled, whole, rtol=1e-12)
    np.testing.assert_allclose(whole, 2 * image / image.size, rtol=1e-12)


def test_tiles_change_the_gradient_only_near_seams(vgg):
    """conv1_1 sees 3x3 neighbourhoods: a pixel's gradient changes only within 2 px of a seam."""
    image = np.random.default_rng(1).random((1, 3, 12, 14)).astype(np.float32)
    features, objective = network_features(vgg), dream_objective(DreamSettings(layer="conv1_1"))
    whole, _ = tiled_gradient(features, objective, image, tile=64, align=1)
    tiled, _ = tiled_gradient(features, objective, image, tile=7, align=1)  # rows 0:6, 6:12; cols 0:7, 7:14
    away = np.ones((12, 14), bool)
    away[4:8, :] = False
    away[:, 5:9] = False
    np.testing.assert_allclose(tiled[..., away], whole[..., away], rtol=1e-4, atol=1e-6)
    assert not np.allclose(tiled, whole)


def test_step_moves_pixels_by_step_size_on_average(vgg):
    image = 0.4 + 0.2 * np.random.default_rng(2).random((1, 3, 16, 16)).astype(np.float32)
    settings = DreamSettings(layer="conv1_2", step_size=1e-3, roll=3)
    features, objective = network_features(vgg), dream_objective(settings)
    new, _ = dream_step(features, objective, image, settings, np.random.default_rng(3))
    assert np.abs(new - image).mean() == pytest.approx(1e-3, rel=1e-3)


# ---- command lines --------------------------------------------------------------------------------------
def run_cli(capsys, *argv) -> tuple:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.mark.parametrize("argv, message", [
    (["visualize", "--layer", "conv6_1"], "valid layers are conv1_1, conv1_2, pool1, conv2_1"),
    (["visualize", "--layer", "conv4_1", "--channel", "512"], "512 channels: choose 0..511"),
    (["visualize", "--layer", "conv1_1", "--channel", "60", "--grid", "8"], "channel 64 is out of range"),
    (["visualize", "-o", "out.txt"], "image extension"),
    (["visualize", "--size", "8"], "--size must be >= 16"),
    (["visualize", "--steps", "0"], "--steps >= 1"),
    (["visualize", "--blur-every", "-1"], "--blur-every >= 0"),
    (["visualize", "--plain-steps", "-1"], "--plain-steps >= 0"),
    (["visualize", "--layer", "conv2_1", "--channel", "-1"], "choose 0..127"),
    (["dream", "--layer", "fc7"], "valid layers are conv1_1, conv1_2, pool1, conv2_1"),
    (["dream", "--layer", "conv2_1", "--channel", "128"], "128 channels: choose 0..127"),
    (["dream", "--steps", "0"], "need --steps >= 1"),
    (["dream", "--size", "-5"], "--size >= 0"),
    (["dream", "-o", "dream"], "image extension"),
    (["dream", "--octaves", "0"], "need octaves >= 1"),
])
def test_cli_errors(capsys, argv, message):
    """Every one of these fails before any weights are loaded or any picture is made."""
    code, output = run_cli(capsys, *argv)
    assert code == 2 and message in output and "Traceback" not in output


@pytest.mark.parametrize("argv", [["visualize", "--size", "big"], ["dream", "--steps", "1.5"]])
def test_cli_rejects_non_numbers(capsys, argv):
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == 2 and "invalid int value" in capsys.readouterr().err


def test_cli_dream_needs_a_readable_image(capsys, tmp_path):
    code, output = run_cli(capsys, "dream", str(tmp_path / "missing.jpg"), "-o", str(tmp_path / "d.png"))
    assert code == 2 and "no such image file" in output and "missing.jpg" in output
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    code, output = run_cli(capsys, "dream", str(text), "-o", str(tmp_path / "d.png"))
    assert code == 2 and "is not an image that can be read" in output
    assert not (tmp_path / "d.png").exists()


def test_cli_dream_too_many_octaves(capsys, tmp_path):
    path = tmp_path / "small.png"
    Image.fromarray(photo(32, 32)).save(path)
    code, output = run_cli(capsys, "dream", str(path), "--size", "0", "--octaves", "4", "-o", str(tmp_path / "d.png"))
    assert code == 2 and "use fewer octaves" in output


def test_cli_runs_with_random_weights(capsys, tmp_path):
    out = tmp_path / "grid.png"
    code, output = run_cli(capsys, "visualize", "--layer", "conv1_2", "--channel", "3", "--grid", "2", "--size", "16",
                           "--steps", "2", "--weights", "random", "--negative", "--neuron", "--decay-power", "1",
                           "-o", str(out))
    assert code == 0 and out.is_file() and "after 2 steps" in output
    source, dreamed = tmp_path / "in.png", tmp_path / "dream.png"
    Image.fromarray(photo(48, 40)).save(source)
    code, output = run_cli(capsys, "dream", str(source), "--size", "0", "--layer", "conv1_2", "--octaves", "2",
                           "--steps", "1", "--weights", "random", "-o", str(dreamed))
    assert code == 0 and np.asarray(Image.open(dreamed)).shape == (48, 40, 3)


def test_tiles_on_the_pooling_grid_keep_interior_gradients(vgg):
    """conv2_2 comes after a 2x2 pooling and sees 14 px: with tiles aligned to the pooling grid, pixels
    16 px or more from every seam get exactly the whole image's gradient."""
    image = np.random.default_rng(4).random((1, 3, 64, 64)).astype(np.float32)
    features, objective = network_features(vgg), dream_objective(DreamSettings(layer="conv2_2"))
    whole, _ = tiled_gradient(features, objective, image, tile=128)
    tiled, _ = tiled_gradient(features, objective, image, tile=32)  # seams at 32, on the pooling grid
    far = np.r_[0:16, 48:64]
    np.testing.assert_allclose(tiled[..., far[:, None], far], whole[..., far[:, None], far], rtol=1e-4, atol=1e-7)
