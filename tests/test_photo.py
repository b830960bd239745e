"""Photorealistic style transfer: the matting Laplacian, its loss and gradient, smoothing, masks, the CLI."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import tinygrad_cv as tg
from tinygrad_cv import Tensor
from tinygrad_cv.cli import main
from tinygrad_cv.vision import masks
from tinygrad_cv.vision.matting import (matting_energy, matting_laplacian, relative_matting_energy, smooth)
from tinygrad_cv.vision.render import RenderSettings, PixelParam, render
from tinygrad_cv.vision.samples import sample_photo
from tinygrad_cv.vision.style import StyleSettings, fit_longest_side, measure, photo_settings, stylize

rng = np.random.default_rng(0)


def loop_laplacian(image: np.ndarray, eps: float) -> np.ndarray:
    """Levin et al. 2008, eq. 12, one 3x3 window at a time into a dense matrix."""
    H, W, _ = image.shape
    M = np.zeros((H * W, H * W))
    for y in range(1, H - 1):
        for x in range(1, W - 1):
            idx = [(y + dy) * W + (x + dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
            I = image.reshape(-1, 3)[idx]  # (9, 3)
            mu = I.mean(axis=0)
            sigma = (I - mu).T @ (I - mu) / 9
            inv = np.linalg.inv(sigma + eps / 9 * np.eye(3))
            for a, i in enumerate(idx):
                for b, j in enumerate(idx):
                    M[i, j] += (i == j) - (1 + (I[a] - mu) @ inv @ (I[b] - mu)) / 9
    return M


def small_photo(side: int = 48) -> np.ndarray:
    return fit_longest_side(sample_photo("china.jpg"), side)


def test_laplacian_kills_constants_is_symmetric_and_psd():
    M = matting_laplacian(rng.random((6, 7, 3)))
    np.testing.assert_allclose(M @ np.ones(42), 0, atol=1e-10)
    np.testing.assert_allclose((M - M.T).toarray(), 0, atol=1e-12)
    assert np.linalg.eigvalsh(M.toarray()).min() >= -1e-8


def test_vectorised_build_equals_the_per_window_loop():
    image = rng.random((5, 6, 3))
    for eps in (1e-7, 1e-2):
        np.testing.assert_allclose(matting_laplacian(image, eps).toarray(), loop_laplacian(image, eps), atol=1e-9)


def test_an_affine_recolouring_of_the_content_has_no_energy():
    content = small_photo()
    M = matting_laplacian(content)
    recoloured = content / 255.0 @ np.array([[0.5, 0.2, 0.1], [0.1, 0.7, 0.0], [0.3, 0.1, 0.4]]) + 0.1
    assert relative_matting_energy(recoloured, M) < 1e-6
    noisy = np.clip(content / 255.0 + rng.normal(0, 0.05, content.shape), 0, 1)
    assert relative_matting_energy(noisy, M) > 1e-2


def test_the_regulariser_value_and_gradient():
    image = rng.random((4, 5, 3))
    M = matting_laplacian(image)
    x = rng.random((1, 3, 4, 5))
    V = x[0].reshape(3, -1)
    np.testing.assert_allclose(matting_energy(Tensor(x), M).item(), sum(v @ (M @ v) for v in V), rtol=1e-12)
    assert tg.gradcheck(lambda t: matting_energy(t, M), [x], atol=1e-6, rtol=1e-5)


def test_smoothing_keeps_a_locally_affine_image():
    """Exactly so as eps -> 0: eps penalises each window's slope a_k (energy ~ eps |a_k|^2), and the
    solve multiplies that by up to 1 / (1 - beta) = 1e4. Measured on this image: 4e-3 at the default
    eps = 1e-7, 1.7e-4 at 1e-10, 1.8e-6 at 1e-12. A constant image is kept at any eps."""
    content = small_photo(40)
    affine = content / 255.0 @ np.array([[0.6, 0.1, 0.0], [0.2, 0.5, 0.1], [0.0, 0.2, 0.7]]) + 0.05
    assert np.abs(smooth(affine, content, eps=1e-12) - affine).max() < 1e-4
    flat = np.full(content.shape, 0.3)
    assert np.abs(smooth(flat, content) - flat).max() < 1e-9


def test_smoothing_lowers_the_energy_of_a_gatys_output(imagenet_vgg16):
    vgg, _ = imagenet_vgg16
    content = small_photo(48)
    gatys = stylize(vgg, content, [sample_photo("flower.jpg")], StyleSettings(size=48, iters=10)).image
    M = matting_laplacian(content)
    before, after = relative_matting_energy(gatys, M), relative_matting_energy(smooth(gatys, content), M)
    assert after < before / 10, (before, after)


def test_photo_term_keeps_the_output_nearer_a_photo(imagenet_vgg16):
    vgg, _ = imagenet_vgg16
    content, style = small_photo(48), sample_photo("flower.jpg")
    plain = stylize(vgg, content, [style], StyleSettings(size=48, iters=10, tv_weight=0))
    photo = stylize(vgg, content, [style], StyleSettings(size=48, iters=10, tv_weight=0, photo_weight=1e3))
    assert "photo" in photo.history[-1] and "photo" not in plain.history[-1]
    e_plain = measure(vgg, plain.image, content, [style])["energy"]
    e_photo = measure(vgg, photo.image, content, [style])["energy"]
    assert e_photo < e_plain / 5, (e_plain, e_photo)


def test_the_style_weight_is_boosted_only_when_the_style_target_is_not_reached(imagenet_vgg16):
    vgg, _ = imagenet_vgg16
    content, style = small_photo(32), sample_photo("flower.jpg")
    # 8 steps: checks after steps 4 and 6 (TARGET_CHECKS); history holds the weighted style term
    easy = stylize(vgg, content, [style], photo_settings(size=32, iters=8, style_target=0.999, style_boost=100))
    assert len(easy.history) == 8 and easy.status == "done"  # reached after the first half: no boost
    assert all(easy.history[k]["style"] < 2 * easy.history[k - 1]["style"] for k in (4, 6))
    hard = stylize(vgg, content, [style], photo_settings(size=32, iters=8, style_target=1e-9, style_boost=100))
    assert len(hard.history) == 8 and hard.status == "done"
    assert hard.history[4]["style"] > 10 * hard.history[3]["style"]  # from step 5 style weighs 100 times
    assert hard.history[6]["style"] > 10 * hard.history[5]["style"]  # and from step 7, 10,000 times
    with pytest.raises(ValueError, match="style_target"):
        stylize(vgg, content, [style], photo_settings(size=32, iters=2, style_target=1.5))


# ---- masks ----------------------------------------------------------------------------------------------
RED, BLUE, GREEN = (255, 0, 0), (0, 0, 255), (0, 255, 0)


def halves(h: int, w: int, left, right) -> np.ndarray:
    mask = np.zeros((h, w, 3), np.uint8)
    mask[:, : w // 2], mask[:, w // 2:] = left, right
    return mask


def test_masks_match_colours_with_a_tolerance_and_resize():
    content_mask = halves(8, 8, RED, BLUE)
    style_mask = halves(40, 30, (250, 10, 5), (3, 0, 240))  # another size, colours a little off
    style_mask[0, 0] = (128, 128, 0)  # one stray pixel (under MIN_SHARE) joins its nearest region
    colours, content_maps, style_maps = masks.match_masks(content_mask, style_mask)
    assert colours.tolist() == [list(BLUE), list(RED)] or colours.tolist() == [list(RED), list(BLUE)]
    assert content_maps.shape == (2, 8, 8) and style_maps.shape == (2, 40, 30)
    assert style_maps.sum(axis=0).min() == 1  # every pixel in exactly one region
    np.testing.assert_allclose(masks.resize_maps(content_maps, (4, 4)).sum(axis=0), 1, atol=1e-6)


def test_an_unmatched_colour_is_an_error_naming_it():
    with pytest.raises(ValueError, match=r"#00ff00 \(RGB 0, 255, 0\) has no match"):
        masks.match_masks(halves(8, 8, RED, GREEN), halves(8, 8, RED, BLUE))


def test_each_region_takes_the_style_of_its_own_region():
    """Features = the pixels themselves: the masked Gram matrix of a flat region is its colour's outer
    product, so the left half must turn blue and the right half red, as the swapped masks say."""
    h, w = 8, 8
    style = halves(h, w, RED, BLUE).transpose(2, 0, 1)[None] / 255.0
    colours, content_maps, style_maps = masks.match_masks(halves(h, w, (9, 9, 9), (200, 200, 200)),
                                                          halves(h, w, (200, 200, 200), (9, 9, 9)))
    layers = ["pixels"]
    targets = masks.region_grams({"pixels": Tensor(style)}, style_maps, layers)
    objective = masks.masked_style_loss(layers, targets, [content_maps], [1.0], content_maps.mean(axis=(1, 2)))
    start = np.full((1, 3, h, w), 0.5)
    result = render(PixelParam(start), lambda x, names: {"pixels": x}, objective, RenderSettings(steps=50))
    left, right = result.image[0, :, :, : w // 2].mean(axis=(1, 2)), result.image[0, :, :, w // 2:].mean(axis=(1, 2))
    assert result.history[-1]["style"] < 1e-3
    assert left[2] > 0.9 and left[0] < 0.1 and right[0] > 0.9 and right[2] < 0.1, (left, right)


# ---- the command line -----------------------------------------------------------------------------------
def run_cli(capsys, *argv) -> tuple:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def photos(tmp_path):
    content, style = tmp_path / "photo.png", tmp_path / "look.jpg"
    Image.fromarray(small_photo(40)).save(content)
    Image.fromarray(fit_longest_side(sample_photo("flower.jpg"), 40)).save(style)
    return content, style


def test_cli_photo_writes_and_reports_the_matting_energy(photos, tmp_path, imagenet_vgg16, capsys):
    content, style = photos
    out = tmp_path / "out.png"
    code, printed, _ = run_cli(capsys, "style", str(content), str(style), "--photo", "--size", "32", "--iters", "3",
                               "--smooth", "-o", str(out))
    assert code == 0 and out.is_file()
    assert "photo " in printed and "relative matting energy" in printed


def test_cli_photo_says_when_the_style_target_raised_the_weight(photos, tmp_path, imagenet_vgg16, capsys):
    content, style = photos
    out = tmp_path / "out.png"
    code, printed, _ = run_cli(capsys, "style", str(content), str(style), "--photo", "--size", "32", "--iters", "4",
                               "--style-target", "1e-6", "-o", str(out))
    assert code == 0 and out.is_file()
    assert "style weight was raised from 10 to 90" in printed  # checks after steps 2 and 3 both missed it


def test_cli_masks_of_other_sizes_are_resized(photos, tmp_path, imagenet_vgg16, capsys):
    content, style = photos
    Image.fromarray(halves(20, 30, RED, BLUE)).save(tmp_path / "cm.png")
    Image.fromarray(halves(50, 10, BLUE, RED)).save(tmp_path / "sm.png")
    out = tmp_path / "out.png"
    code, _, err = run_cli(capsys, "style", str(content), str(style), "--size", "32", "--iters", "2",
                           "--content-mask", str(tmp_path / "cm.png"), "--style-mask", str(tmp_path / "sm.png"), "-o", str(out))
    assert code == 0 and out.is_file(), err


@pytest.mark.parametrize("case", ["unmatched", "not an image", "one mask"])
def test_cli_bad_masks_are_one_line_and_write_nothing(photos, tmp_path, capsys, case):
    content, style = photos
    Image.fromarray(halves(20, 30, RED, GREEN)).save(tmp_path / "cm.png")
    Image.fromarray(halves(20, 30, RED, BLUE)).save(tmp_path / "sm.png")
    (tmp_path / "text.png").write_text("not an image")
    masks_args = {"unmatched": ["--content-mask", str(tmp_path / "cm.png"), "--style-mask", str(tmp_path / "sm.png")],
                  "not an image": ["--content-mask", str(tmp_path / "text.png"), "--style-mask", str(tmp_path / "sm.png")],
                  "one mask": ["--content-mask", str(tmp_path / "cm.png")]}[case]
    out = tmp_path / "out.png"
    code, _, err = run_cli(capsys, "style", str(content), str(style), "--size", "32", "--iters", "2", *masks_args, "-o", str(out))
    message = {"unmatched": "has no match in the style mask", "not an image": "is not an image",
               "one mask": "masks come in pairs"}[case]
    assert code == 2 and not out.exists()
    assert len(err.strip().splitlines()) == 1 and message in err, err
