"""`tinygrad-cv fast-style`: outputs, blends, the sheet, style files, bad input; the new-style trainer."""
from __future__ import annotations

import numpy as np
import pytest

from models.stylenet import load_stylenet
from tinygrad_cv.cli import main
from tinygrad_cv.vision import fast_style
from tinygrad_cv.vision.fast_style_train import TrainSettings, checkpoint_path, train_style
from tinygrad_cv.vision.image import load_image, save_image


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    path = tmp_path_factory.mktemp("photos") / "photo.png"
    rng = np.random.default_rng(0)
    save_image(path, (rng.random((20, 28, 3)) * 255).astype(np.uint8))
    return path


@pytest.fixture(scope="module")
def random_net():
    return load_stylenet("random", seed=2)


def run(*args):
    return main(["fast-style", "--weights", "random", *map(str, args)])


def test_style_mix_and_size(photo, tmp_path):
    assert run(photo, "-o", tmp_path / "a.png", "--style", 3, "--size", 0) == 0
    assert load_image(tmp_path / "a.png").shape == (20, 28, 3)
    assert run(photo, "-o", tmp_path / "b.png", "--mix", "3:0.5,19:0.5", "--size", 40) == 0
    assert load_image(tmp_path / "b.png").shape == (29, 40, 3)


def test_sheet_has_every_style(photo, tmp_path):
    assert run("--sheet", photo, "-o", tmp_path / "sheet.png", "--size", 16) == 0
    assert load_image(tmp_path / "sheet.png").shape[1] > 7 * 16


@pytest.mark.parametrize("args, message", [
    (["--style", "26"], "out of range"), (["--mix", "3:-0.5"], "non-negative"), (["--mix", "3:nan"], "finite"),
    (["--mix", "3:1,40:1"], "out of range"), (["--mix", "3"], "STYLE:WEIGHT"), (["--mix", "3:0"], "all weights are 0"),
])
def test_bad_styles_are_one_line_and_write_nothing(photo, tmp_path, capsys, args, message):
    assert run(photo, "-o", tmp_path / "out.png", *args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "out.png").exists()


def test_not_an_image_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.jpg"
    bad.write_text("not an image")
    assert run(bad, "-o", tmp_path / "out.png") == 2
    assert "not an image" in capsys.readouterr().err and not (tmp_path / "out.png").exists()


def test_mix_parsing_uses_weights_as_given():
    w = fast_style.parse_mix("3:0.5, 19:2", 26)
    assert w[3] == 0.5 and w[19] == 2 and w.sum() == 2.5


def test_style_file_round_trip_and_blend(random_net, photo, tmp_path):
    gammas, betas = fast_style.style_parameters(random_net, random_net.one_hot(5))
    path = tmp_path / "five.npz"
    fast_style.save_style_file(path, gammas, betas, {"painting": "none"})
    assert run(photo, "-o", tmp_path / "new.png", "--style-file", path, "--size", 0, "--weights", "random") == 0
    assert run(photo, "-o", tmp_path / "five.png", "--style", 5, "--size", 0) == 0
    # random weights are seeded (seed 0 in the CLI), so style 26 = the saved copy of style 5 there
    assert run(photo, "-o", tmp_path / "mix.png", "--style-file", path, "--mix", "26:0.5,5:0.5", "--size", 0) == 0


def test_corrupt_or_mismatched_style_files_are_clear_errors(random_net, tmp_path):
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ValueError, match="not a readable style file"):
        fast_style.load_style_file(broken, random_net)
    gammas, betas = fast_style.style_parameters(random_net, random_net.one_hot(0))
    gammas["res.0.0"] = gammas["res.0.0"][:5]
    other = tmp_path / "other.npz"
    fast_style.save_style_file(other, gammas, betas, {})
    with pytest.raises(ValueError, match="does not fit this network"):
        fast_style.load_style_file(other, random_net)


@pytest.fixture(scope="module")
def tiny_vgg():
    from models.vgg import load_vgg

    return load_vgg("vgg16", weights="random")


def test_trainer_lowers_its_loss_on_a_fixed_batch(random_net, tiny_vgg, tmp_path, monkeypatch):
    from tinygrad_cv.vision import fast_style_train

    fixed = np.random.default_rng(4).random((1, 3, 32, 32)).astype(np.float32)
    monkeypatch.setattr(fast_style_train, "random_batch", lambda *args: fixed)
    painting = (np.random.default_rng(3).random((40, 40, 3)) * 255).astype(np.uint8)
    settings = TrainSettings(steps=2, crop=32, batch=1, lr=0.01, style_size=32, seed=1)
    result = train_style(random_net, tiny_vgg, painting, tmp_path / "s.npz", settings, progress=False)
    losses = [h["style"] * settings.style_weight + h["content"] for h in result.history]
    assert len(losses) == 2 and losses[1] < losses[0]


def test_trainer_resumes_exactly(random_net, tiny_vgg, tmp_path):
    painting = (np.random.default_rng(3).random((40, 40, 3)) * 255).astype(np.uint8)
    settings = TrainSettings(steps=4, crop=32, batch=1, lr=0.05, style_size=32, checkpoint_every=2, seed=1)
    full = train_style(random_net, tiny_vgg, painting, tmp_path / "full.npz", settings, progress=False)
    # two steps, stop, resume for the other two: the same losses and the same style file
    half = TrainSettings(**{**settings.__dict__, "steps": 2})
    train_style(random_net, tiny_vgg, painting, tmp_path / "part.npz", half, progress=False)
    resumed = train_style(random_net, tiny_vgg, painting, tmp_path / "part.npz", settings, resume=True, progress=False)
    assert resumed.history == full.history
    a, _, _ = fast_style.load_style_file(tmp_path / "full.npz", random_net)
    b, _, _ = fast_style.load_style_file(tmp_path / "part.npz", random_net)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert checkpoint_path(tmp_path / "part.npz").is_file()


def test_resume_with_other_settings_is_a_clear_error(random_net, tiny_vgg, tmp_path):
    painting = np.zeros((32, 32, 3), np.uint8) + 100
    settings = TrainSettings(steps=1, crop=32, batch=1, style_size=32, checkpoint_every=1)
    train_style(random_net, tiny_vgg, painting, tmp_path / "s.npz", settings, progress=False)
    with pytest.raises(ValueError, match="other settings"):
        train_style(random_net, tiny_vgg, painting, tmp_path / "s.npz",
                    TrainSettings(**{**settings.__dict__, "lr": 0.5, "steps": 2}), resume=True, progress=False)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        train_style(random_net, tiny_vgg, painting, tmp_path / "none.npz", settings, resume=True, progress=False)


def test_ctrl_c_saves_the_style_and_the_checkpoint(random_net, tiny_vgg, tmp_path):
    def interrupt(step, values):
        raise KeyboardInterrupt

    painting = np.zeros((32, 32, 3), np.uint8) + 100
    settings = TrainSettings(steps=5, crop=32, batch=1, style_size=32, checkpoint_every=5)
    result = train_style(random_net, tiny_vgg, painting, tmp_path / "s.npz", settings, callbacks=[interrupt],
                         progress=False)
    assert result.interrupted and result.step == 1
    assert (tmp_path / "s.npz").is_file() and checkpoint_path(tmp_path / "s.npz").is_file()
