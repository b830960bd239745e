"""Style transfer: losses against NumPy formulas, gradients, an end-to-end run, the CLI's errors."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import tinygrad_cv as tg
import tinygrad_cv.functional as F
from tinygrad_cv import Tensor
from tinygrad_cv.cli import main
from tinygrad_cv.vision.render import Objective, PixelParam, RenderSettings, render
from tinygrad_cv.vision.samples import sample_photo, swirl_painting
from tinygrad_cv.vision.style import (StyleSettings, content_loss, original_colors, style_loss, stylize, tv_loss)

rng = np.random.default_rng(0)


def test_gram_matrix_matches_numpy():
    f = rng.standard_normal((2, 4, 3, 5))
    expected = np.einsum("nchw,ndhw->ncd", f, f) / 15
    np.testing.assert_allclose(F.gram_matrix(Tensor(f)).numpy(), expected, rtol=1e-12)


def test_losses_match_numpy_formulas():
    a, b = rng.standard_normal((1, 3, 4, 4)), rng.standard_normal((1, 3, 4, 4))
    feats = {"x": Tensor(a)}
    np.testing.assert_allclose(content_loss("x", Tensor(b))(feats, None)[0].item(), ((a - b) ** 2).sum() / (b**2).sum())
    ga, gb = [np.einsum("nchw,ndhw->ncd", v, v) / 16 for v in (a, b)]
    value = style_loss(["x"], [Tensor(gb)], [1.0])(feats, None)[0].item()
    np.testing.assert_allclose(value, ((ga - gb) ** 2).sum() / (gb**2).sum())
    img = rng.random((1, 3, 5, 6))
    tv = (np.diff(img, axis=2) ** 2).mean() + (np.diff(img, axis=3) ** 2).mean()
    np.testing.assert_allclose(tv_loss()({}, Tensor(img))[0].item(), tv)


def test_objectives_compose_and_report_each_term():
    feats = {"x": Tensor(np.ones((1, 2, 2, 2)))}
    c = content_loss("x", Tensor(np.zeros((1, 2, 2, 2)) + 2))
    objective = 2 * c + c * 0.5 - tv_loss() / 4
    assert objective.layers == ["x"]
    total, parts = objective(feats, Tensor(np.zeros((1, 3, 2, 2))))
    np.testing.assert_allclose(total.item(), 2.5 * 0.25)
    assert set(parts) == {"content", "tv"}
    louder = objective.reweighted("content", 3.0)  # only the content terms change
    assert [w for w, _ in louder.terms] == [6.0, 1.5, -0.25] and [w for w, _ in objective.terms] == [2.0, 0.5, -0.25]


class TinyNet:
    """Two float64 conv layers standing in for VGG, small enough for a full gradient check."""

    def __init__(self):
        r = np.random.default_rng(1)
        self.w1, self.w2 = r.standard_normal((4, 3, 3, 3)) * 0.3, r.standard_normal((5, 4, 3, 3)) * 0.3

    def normalize(self, x):
        return x * 2 - 1

    def __call__(self, x, layers):
        a = F.relu(F.conv2d(x, self.w1, padding=1))
        b = F.relu(F.conv2d(F.avg_pool2d(a, 2), self.w2, padding=1))
        return {name: v for name, v in (("a", a), ("b", b)) if name in layers}


def test_style_loss_gradient_through_a_small_network():
    net = TinyNet()
    style_img = Tensor(rng.random((1, 3, 6, 6)))
    targets = [F.gram_matrix(v) for v in net(net.normalize(style_img), ["a", "b"]).values()]
    objective = style_loss(["a", "b"], targets, [1.0, 2.0]) + content_loss("b", Tensor(rng.random((1, 5, 3, 3)))) + tv_loss()

    def loss(image):
        return objective(net(net.normalize(image), objective.layers), image)[0]

    assert tg.gradcheck(loss, [rng.random((1, 3, 6, 6))], atol=1e-6, rtol=1e-4)


def test_64px_run_lowers_style_loss_5x_in_20_iterations(imagenet_vgg16):
    vgg, _ = imagenet_vgg16
    result = stylize(vgg, sample_photo("china.jpg"), [swirl_painting()], StyleSettings(size=64, iters=20))
    assert result.status == "done" and result.image.shape == (43, 64, 3) and result.image.dtype == np.uint8
    assert len(result.history) == 20
    first, last = result.initial["style"], result.history[-1]["style"]
    assert last * 5 <= first, (first, last)


def test_a_nan_stops_the_run_naming_the_term_and_keeps_the_last_good_image():
    calls = {"n": 0}

    def flaky(feats, image):
        calls["n"] += 1
        value = (image * image).mean()
        return value * float("nan") if calls["n"] > 3 else value

    start = np.full((1, 3, 4, 4), 0.5, dtype=np.float32)
    objective = Objective.term("flaky", flaky) + tv_loss()
    result = render(PixelParam(start), lambda x, layers: {}, objective, RenderSettings(steps=10, optimizer="adam", lr=0.01))
    assert "'flaky'" in result.status and result.steps == 3
    assert np.all(np.isfinite(result.image)) and not np.array_equal(result.image, start)


def test_ctrl_c_returns_the_current_image():
    def interrupt(info):
        if info.step == 2:
            raise KeyboardInterrupt

    objective = Objective.term("l2", lambda feats, image: (image * image).mean())
    result = render(PixelParam(np.full((1, 3, 4, 4), 0.5, dtype=np.float32)), lambda x, layers: {}, objective,
                    RenderSettings(steps=50), callbacks=[interrupt])
    assert result.status == "interrupted" and result.steps == 2 and result.image.max() < 0.5


def test_original_colors_keeps_the_content_chroma():
    content = np.zeros((4, 4, 3), dtype=np.uint8) + np.array([200, 40, 40], dtype=np.uint8)
    grey = np.full((4, 4, 3), 90, dtype=np.uint8)
    out = original_colors(grey, content)
    assert out[0, 0, 0] > out[0, 0, 1] + 50  # red again
    luma = out.astype(float) @ [0.299, 0.587, 0.114]
    np.testing.assert_allclose(luma, 90, atol=2)  # with the grey image's brightness


@pytest.mark.parametrize("args,message", [
    (["style", "missing.png", "also_missing.png"], "no such image file"),
    (["style", "only_content.png"], "at least one STYLE"),
    (["style", "NOTIMAGE", "NOTIMAGE"], "not an image"),
    (["style", "RGB", "RGB", "-o", "out.txt"], "image extension"),
    (["style", "RGB", "RGB", "--style-blend", "1", "2"], "2 weights for 1 style"),
])
def test_cli_errors_on_bad_input(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "NOTIMAGE").write_text("hello")
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(tmp_path / "RGB", format="PNG")  # no suffix
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(tmp_path / "only_content.png")
    assert main(args + ["--size", "16", "--iters", "1"]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out.txt").exists()


def test_cli_writes_the_image_with_grayscale_and_rgba_inputs(tmp_path, imagenet_vgg16, capsys):
    gray = tmp_path / "gray.png"
    rgba = tmp_path / "rgba.png"
    Image.fromarray(rng.integers(0, 255, (40, 30), dtype=np.uint8), "L").save(gray)
    Image.fromarray(rng.integers(0, 255, (20, 20, 4), dtype=np.uint8), "RGBA").save(rgba)
    out = tmp_path / "out.png"
    assert main(["style", str(gray), str(rgba), "-o", str(out), "--size", "32", "--iters", "2", "--save-every", "1"]) == 0
    assert Image.open(out).size == (24, 32)
    assert (tmp_path / "out.scale1.step0001.png").exists()
    assert "wrote" in capsys.readouterr().out
