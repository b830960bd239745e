"""Attribution maps and their sanity checks (tinygrad_cv/vision/attribution.py), on small networks
whose right answers are known, and the `explain` command's handling of bad input."""
from __future__ import annotations

import numpy as np
import pytest

from tinygrad_cv import functional as F
from tinygrad_cv import nn
from tinygrad_cv.tensor import Tensor
from tinygrad_cv.vision import attribution as A


class SmallNet(nn.Module):
    """conv 3x3 (3 -> 6) + ReLU ('features', optionally gated by a mask), mean over positions
    ('pooled'), linear 6 -> 3 ('logits'). Input = 2 * picture - 1."""

    layer_names = ["features", "pooled", "logits"]

    def __init__(self, seed: int = 0, mask: np.ndarray = None) -> None:
        rng = np.random.default_rng(seed)
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.fc = nn.Linear(6, 3)
        self.conv.weight.data = rng.normal(0, 0.5, self.conv.weight.shape).astype(np.float32)
        self.conv.bias.data = rng.normal(0, 0.1, self.conv.bias.shape).astype(np.float32)
        self.fc.weight.data = rng.normal(0, 1.0, self.fc.weight.shape).astype(np.float32)
        self.mask = None if mask is None else Tensor(mask.astype(np.float32))
        for p in self.parameters():
            p.requires_grad = False

    def normalize(self, x: Tensor) -> Tensor:
        return x * 2.0 - 1.0

    def forward(self, x: Tensor, layers=None):
        features = F.relu(self.conv(x))
        if self.mask is not None:
            features = features * self.mask  # the network sees only where the mask is 1
        if layers is not None:
            return {"features": features}
        return self.forward_from("features", features)

    def forward_from(self, layer: str, x: Tensor) -> Tensor:
        assert layer == "features"
        return self.fc(x.mean(axis=(2, 3)))


def picture(seed: int = 1, size: int = 16) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 1, (3, size, size)).astype(np.float32)


def test_maps_have_the_picture_shape_and_the_gradient_is_the_max_over_channels():
    net, x = SmallNet(), picture()
    grads, logits = A.logit_gradients(net, x[None], 2)
    assert grads.shape == (1, 3, 16, 16) and logits.shape == (1,)
    result = A.gradient(net, x, 2)
    assert result.map.shape == (16, 16) and result.map.dtype == np.float32
    np.testing.assert_array_equal(result.map, np.abs(grads[0]).max(axis=0))
    for method in A.METHODS:
        assert A.attribute(net, x, method, 1, A.AttributionSettings(samples=3, steps=8, layer="features")).map.shape == (16, 16)


def test_gradient_matches_central_differences():
    net, x = SmallNet(), picture().astype(np.float64)
    grads, _ = A.logit_gradients(net, x[None], 0)
    eps, (c, i, j) = 1e-2, (1, 5, 7)
    plus, minus = x.copy(), x.copy()
    plus[c, i, j] += eps
    minus[c, i, j] -= eps
    numeric = (A.class_logits(net, plus[None])[0, 0] - A.class_logits(net, minus[None])[0, 0]) / (2 * eps)
    assert grads[0, c, i, j] == pytest.approx(numeric, rel=1e-2, abs=1e-4)


def test_smoothgrad_with_zero_noise_is_the_gradient_map():
    net, x = SmallNet(), picture()
    smooth = A.smoothgrad(net, x, 1, A.AttributionSettings(samples=5, noise=0.0))
    np.testing.assert_allclose(smooth.map, A.gradient(net, x, 1).map, rtol=1e-6, atol=1e-9)


def test_smoothgrad_noise_changes_the_map_and_is_seeded():
    net, x = SmallNet(), picture()
    s = A.AttributionSettings(samples=4, noise=0.15, seed=3)
    first, second = A.smoothgrad(net, x, 1, s), A.smoothgrad(net, x, 1, s)
    np.testing.assert_array_equal(first.map, second.map)
    assert not np.allclose(first.map, A.gradient(net, x, 1).map)


@pytest.mark.parametrize("rule", A.STEP_RULES)
def test_integrated_gradients_completeness_below_one_percent_at_64_steps(rule):
    net, x = SmallNet(seed=4), picture(seed=5)
    result = A.integrated_gradients(net, x, 0, A.AttributionSettings(steps=64, step_rule=rule))
    assert len(result.alphas) == 64 and result.alphas[0] == 0.0 and result.alphas[-1] == 1.0
    assert np.all(np.diff(result.alphas) > 0)
    change = result.logit - result.baseline_logit
    assert abs(change) > 0.1  # a real change to attribute
    assert result.completeness_error < 0.01
    assert result.attributions.shape == (3, 16, 16)
    np.testing.assert_allclose(result.map, result.attributions.sum(axis=0), rtol=1e-5, atol=1e-7)


def test_adaptive_steps_beat_uniform_steps_on_a_kink():
    """A ReLU that switches on late in the path: few uniform steps miss where it happens."""
    net, x = SmallNet(seed=4), picture(seed=5)
    s = dict(steps=9)
    uniform = A.integrated_gradients(net, x, 0, A.AttributionSettings(step_rule="uniform", **s))
    adaptive = A.integrated_gradients(net, x, 0, A.AttributionSettings(step_rule="adaptive", batch=1, **s))
    assert adaptive.completeness_error <= uniform.completeness_error


def test_gradcam_lights_the_only_quadrant_the_class_depends_on():
    mask = np.zeros((16, 16))
    mask[:8, :8] = 1.0  # the network looks only at the top-left quadrant
    net, x = SmallNet(seed=2, mask=mask), picture(seed=6)
    target = A.top_class(net, x)
    cam = A.gradcam(net, x, target, layer="features").map
    assert cam.shape == (16, 16) and cam.min() >= 0 and cam.max() > 0
    inside = cam[:8, :8].sum() / cam.sum()
    assert inside > 0.9, inside
    grad = A.gradient(net, x, target).map  # the gradient also stays in it (plus the conv's 1-pixel reach)
    assert grad[:9, :9].sum() / grad.sum() > 0.999


def test_gradcam_weights_are_the_spatial_mean_of_the_gradient():
    net, x = SmallNet(seed=3), picture(seed=2)
    result = A.gradcam(net, x, 1, layer="features")
    np.testing.assert_allclose(result.extra["weights"], net.fc.weight.numpy()[1] / 256.0, rtol=1e-5)


def test_class_out_of_range_is_a_clear_error():
    with pytest.raises(ValueError, match="out of range"):
        A.gradient(SmallNet(), picture(), 3)
    with pytest.raises(ValueError, match="choose from"):
        A.attribute(SmallNet(), picture(), "occlusion", 0)


def test_spearman_of_maps():
    a = np.arange(16.0).reshape(4, 4)
    assert A.spearman(a, a) == pytest.approx(1.0)
    assert A.spearman(a, -a) == pytest.approx(-1.0)
    assert A.spearman(a, np.zeros_like(a)) == 0.0


def test_deletion_curve_ends_and_random_reference():
    net, x = SmallNet(seed=1), picture(seed=3)
    target = A.top_class(net, x)
    saliency = A.gradient(net, x, target).map
    fractions = np.linspace(0, 1, 5)
    curve = A.deletion_curve(net, x, saliency, target, fractions)
    random_curve = A.deletion_curve(net, x, None, target, fractions, seed=1)
    assert curve.shape == (5,)
    assert curve[0] == pytest.approx(A.class_probabilities(net, x[None], target)[0], rel=1e-6)
    grey = np.full_like(x, 0.5)[None]
    assert curve[-1] == pytest.approx(A.class_probabilities(net, grey, target)[0], rel=1e-6)
    assert random_curve[-1] == pytest.approx(curve[-1], rel=1e-6)
    assert A.area_under(np.ones(5), fractions) == pytest.approx(1.0)


# ---- on EfficientNet-Lite0 with random weights (no download) --------------------------------------------
@pytest.fixture(scope="module")
def lite0():
    from models.efficientnet import load_efficientnet

    return load_efficientnet(weights="random")


def test_forward_from_continues_the_forward_pass(lite0):
    x = Tensor(np.random.default_rng(0).normal(0, 1, (1, 3, 64, 64)).astype(np.float32))
    acts = lite0(x, layers=["block12", "head", "logits"])
    for layer in ("block12", "head"):
        np.testing.assert_allclose(lite0.forward_from(layer, acts[layer]).numpy(), acts["logits"].numpy(),
                                   rtol=1e-4, atol=1e-4)


def test_gradcam_on_the_head_has_1280_weights_and_the_picture_shape(lite0):
    x = picture(seed=0, size=64)
    result = A.gradcam(lite0, x, 7)
    assert result.map.shape == (64, 64) and result.extra["weights"].shape == (1280,)
    assert result.extra["cam"].shape == (2, 2)


def test_randomization_is_cascading_each_step_changes_exactly_the_named_layer(lite0):
    order = A.randomization_order(lite0)
    assert order[:3] == ["logits", "head", "block15"] and order[-1] == "stem" and len(order) == 19
    trained = lite0.state_dict()
    previous = dict(trained)
    randomized = set()
    for layer, network in A.cascading_randomization(lite0, seed=1):
        now = network.state_dict()
        changed = {name for name in now if not np.array_equal(now[name], previous[name])}
        assert changed == set(A.layer_parameters(lite0, layer)), layer
        randomized |= changed
        kept = {name for name in now if np.array_equal(now[name], trained[name])}
        assert kept == set(now) - randomized  # cascading: what was randomised stays randomised
        previous = now
    assert randomized == set(trained)  # the last step is the fully randomised network
    for name, value in lite0.state_dict().items():  # the trained network itself is untouched
        np.testing.assert_array_equal(value, trained[name])


def test_layer_parameters_names(lite0):
    assert A.layer_parameters(lite0, "logits") == ["classifier.weight", "classifier.bias"]
    assert all(name.startswith("blocks.3.") for name in A.layer_parameters(lite0, "block3"))
    assert not any(name.startswith("blocks.13.") for name in A.layer_parameters(lite0, "block1"))
    with pytest.raises(ValueError, match="choose from"):
        A.layer_parameters(lite0, "conv5_3")


# ---- the command ----------------------------------------------------------------------------------------
@pytest.fixture()
def photo_file(tmp_path):
    from tinygrad_cv.vision.image import save_image

    path = tmp_path / "photo.png"
    save_image(path, (np.random.default_rng(0).uniform(0, 255, (240, 300, 3))).astype(np.uint8))
    return path


def run_cli(argv):
    from tinygrad_cv.cli import main

    return main(argv)


def test_explain_writes_the_overlay_and_the_raw_map(photo_file, tmp_path, capsys):
    out, raw = tmp_path / "overlay.png", tmp_path / "map.npy"
    code = run_cli(["explain", str(photo_file), "--method", "gradcam", "--weights", "random",
                    "-o", str(out), "--map", str(raw)])
    assert code == 0
    assert out.is_file() and np.load(raw).shape == (224, 224)
    assert "class" in capsys.readouterr().out


@pytest.mark.parametrize("extra, message", [
    (["--method", "occlusion"], "choose from gradient, smoothgrad, integrated-gradients, gradcam"),
    (["--layer", "conv5_3"], "choose from stem, block0"),
    (["--class", "1000"], "out of range"),
    (["--class", "-1"], "out of range"),
    (["--step-rule", "simpson"], "choose from adaptive, uniform"),
    (["--model", "resnet50"], "choose from efficientnet-lite0"),
])
def test_explain_bad_arguments_one_line_no_output(photo_file, tmp_path, capsys, extra, message):
    out = tmp_path / "overlay.png"
    code = run_cli(["explain", str(photo_file), "--weights", "random", "-o", str(out)] + extra)
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert not out.exists()


def test_explain_a_non_image_is_one_line(tmp_path, capsys):
    bad, out = tmp_path / "notes.jpg", tmp_path / "overlay.png"
    bad.write_text("not a picture")
    code = run_cli(["explain", str(bad), "--weights", "random", "-o", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "not an image" in err and len(err.splitlines()) == 1
    assert not out.exists()
    code = run_cli(["explain", str(tmp_path / "missing.jpg"), "--weights", "random", "-o", str(out)])
    assert code == 2 and "no such image file" in capsys.readouterr().err
