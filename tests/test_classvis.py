"""Class and unit visualisation on EfficientNet-Lite0: the objectives, the crop transforms and the
`visualize --model efficientnet-lite0` command line (random weights: seconds, no download)."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

import tinygrad_cv.functional as F
from models.efficientnet import load_efficientnet
from tinygrad_cv import Tensor, cli
from tinygrad_cv.vision import optvis


@pytest.fixture(scope="module")
def lite0():
    return load_efficientnet(weights="random", seed=1)


def test_class_log_prob_is_log_softmax_of_the_logits(lite0):
    x = Tensor(np.random.default_rng(0).random((2, 3, 32, 32)).astype(np.float32))
    features = optvis.network_features(lite0)(x, ["logits"])
    total, _ = optvis.class_log_prob(7)(features, x)
    logits = features["logits"].data.astype(np.float64)
    expected = (logits[:, 7] - np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1)) - logits.max(1)).mean()
    assert float(total.data) == pytest.approx(expected, rel=1e-4)
    with pytest.raises(ValueError, match="0..999"):
        optvis.class_log_prob(1000)(features, x)


def test_random_crop_views_have_the_network_size_and_carry_gradients():
    rng = np.random.default_rng(0)
    x = Tensor(np.random.default_rng(1).random((1, 3, 40, 40)), requires_grad=True)
    out = optvis.views(3, [optvis.random_crop(0.5, 1.0, 24, rng)])(x)
    assert out.shape == (3, 3, 24, 24)
    F.sum(out).backward()
    assert x.grad is not None and x.grad.shape == (1, 3, 40, 40) and np.abs(x.grad).sum() > 0


def test_class_visualisation_raises_the_class_probability(lite0):
    settings = replace(optvis.CLASS_SETTINGS, size=32, steps=6, lr=0.1)
    result = optvis.visualize(lite0, optvis.class_log_prob(3), settings)
    first, last = result.history[0]["loss"], result.history[-1]["loss"]
    assert result.status == "done" and result.images.shape == (1, 32, 32, 3) and last > first


def test_dense_unit_and_whole_layer_objectives_run(lite0):
    settings = replace(optvis.EFFICIENTNET_SETTINGS, size=32, steps=2)
    for objective in (optvis.channel("pooled", 5), optvis.layer_energy("block3"), optvis.channel("block10", 2)):
        assert optvis.visualize(lite0, objective, settings).status == "done"


def run_cli(capsys, *argv) -> tuple:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.mark.parametrize("argv, message", [
    (["--class", "1000"], "class 1000 is out of range: ImageNet classes are 0..999"),
    (["--class", "-1"], "0..999"),
    (["--layer", "block16"], "unknown layer 'block16': valid layers are stem, block0, block1"),
    (["--layer", "pooled", "--channel", "1280"], "choose 0..1279"),
])
def test_cli_errors_before_any_work(capsys, tmp_path, argv, message):
    out = tmp_path / "v.png"
    code, output = run_cli(capsys, "visualize", "--model", "efficientnet-lite0", *argv, "-o", str(out))
    assert code == 2 and message in output and "Traceback" not in output and not out.exists()


def test_cli_class_needs_a_classifier(capsys):
    code, output = run_cli(capsys, "visualize", "--class", "3")
    assert code == 2 and "--model efficientnet-lite0" in output


def test_cli_class_and_dense_unit_with_random_weights(capsys, tmp_path):
    out = tmp_path / "class.png"
    code, output = run_cli(capsys, "visualize", "--model", "efficientnet-lite0", "--weights", "random", "--class", "130",
                           "--size", "32", "--steps", "2", "-o", str(out))
    assert code == 0 and out.is_file() and "class 130 (flamingo)" in output and "classified as" in output
    out = tmp_path / "unit.png"
    code, output = run_cli(capsys, "visualize", "--model", "efficientnet-lite0", "--weights", "random", "--layer",
                           "pooled", "--channel", "9", "--size", "32", "--steps", "2", "-o", str(out))
    assert code == 0 and out.is_file()
