"""Feature visualisation: objectives against NumPy formulas, parametrisations, transforms, a short run."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

import tinygrad_cv as tg
import tinygrad_cv.functional as F
from models.vgg import VGG, layer_plan, load_vgg, random_weights
from tinygrad_cv import Tensor, no_grad
from tinygrad_cv.io.weights import Weights
from tinygrad_cv.vision import optvis
from tinygrad_cv.vision.optvis import (COLOR_MATRIX, LOGITS, FourierImage, PixelImage, VisSettings, channel,
                                       check_unit, class_logit, diversity, gaussian_blur_array,
                                       high_frequency_share, l2, layer_energy, mean_channel_activation,
                                       network_features, neuron, pre_relu, tv, visualize, visualize_channels)

RNG = np.random.default_rng(0)
FEATS = {"a": RNG.random((3, 4, 5, 6)), "b": RNG.random((3, 2, 3, 3))}
IMAGE = RNG.random((3, 3, 8, 8))


@pytest.fixture(scope="module")
def vgg():
    return load_vgg("vgg16", weights="random")


def value(objective, feats=FEATS, image=IMAGE) -> float:
    total, _ = objective({k: Tensor(v) for k, v in feats.items()}, Tensor(image))
    return total.item()


# ---- objectives against NumPy ---------------------------------------------------------------------------
def test_channel_and_neuron():
    a = FEATS["a"]
    assert value(channel("a", 2)) == pytest.approx(a[:, 2].mean())
    assert value(channel("a", 2, batch=1)) == pytest.approx(a[1, 2].mean())
    assert value(neuron("a", 3)) == pytest.approx(a[:, 3, 2, 3].mean())  # centre of 5 x 6 is (2, 3)
    assert value(neuron("a", 3, batch=2)) == pytest.approx(a[2, 3, 2, 3])


def test_layer_energy_l2_tv():
    assert value(layer_energy("b")) == pytest.approx((FEATS["b"] ** 2).mean())
    assert value(l2()) == pytest.approx(((IMAGE - 0.5) ** 2).mean())
    dy, dx = np.diff(IMAGE, axis=2), np.diff(IMAGE, axis=3)
    assert value(tv()) == pytest.approx((dy ** 2).mean() + (dx ** 2).mean())


def diversity_reference(f: np.ndarray) -> float:
    n, c, h, w = f.shape
    flat = f.reshape(n, c, h * w)
    grams = (flat @ flat.transpose(0, 2, 1) / (h * w)).reshape(n, -1)
    unit = grams / np.linalg.norm(grams, axis=1, keepdims=True)
    return -sum(unit[i] @ unit[j] for i in range(n) for j in range(n) if i != j) / n


def test_diversity_value_and_gradient():
    assert value(diversity("a")) == pytest.approx(diversity_reference(FEATS["a"]))
    fn = lambda f: diversity("a")({"a": f}, None)[0]  # noqa: E731
    assert tg.gradcheck(fn, [RNG.random((3, 2, 2, 2))])


def test_combinations_and_negation():
    a, b = FEATS["a"], FEATS["b"]
    combined = channel("a", 0) - 2.0 * channel("b", 1) + 0.5 * layer_energy("b")
    assert value(combined) == pytest.approx(a[:, 0].mean() - 2 * b[:, 1].mean() + 0.5 * (b ** 2).mean())
    assert value(-channel("a", 1)) == pytest.approx(-a[:, 1].mean())
    assert combined.layers == ["a", "b"]


def test_bad_channel_names_the_range():
    with pytest.raises(ValueError, match=r"channel 4 is out of range for a, which has 4 channels \(0..3\)"):
        value(channel("a", 4))
    plan = dict(layer_plan("vgg16"))
    with pytest.raises(ValueError, match="valid layers are conv1_1, conv1_2, pool1"):
        check_unit(plan, "conv6_1")
    with pytest.raises(ValueError, match="choose 0..255"):
        check_unit(plan, "conv3_1", [3, 256])
    check_unit(plan, "conv3_1", [0, 255])


def test_class_logit_with_a_small_classifier():
    arrays = dict(random_weights("vgg16").arrays)
    rng = np.random.default_rng(1)
    arrays.update({"fc6.weight": rng.standard_normal((8, 512 * 7 * 7)).astype(np.float32) * 0.01,
                   "fc6.bias": np.zeros(8, np.float32),
                   "fc7.weight": rng.standard_normal((8, 8)).astype(np.float32), "fc7.bias": np.zeros(8, np.float32),
                   "fc8.weight": rng.standard_normal((5, 8)).astype(np.float32), "fc8.bias": np.arange(5, dtype=np.float32)})
    base = random_weights("vgg16")
    model = VGG("vgg16", Weights(arrays, base.convention, "vgg", "test"), "max")
    x = Tensor(rng.random((2, 3, 32, 32)).astype(np.float32))
    with no_grad():
        feats = network_features(model)(x, [LOGITS, "conv1_1"])
        logits = model.classify(model.normalize(x)).numpy()
    assert value(class_logit(3), {k: v.numpy() for k, v in feats.items()}) == pytest.approx(logits[:, 3].mean(), rel=1e-5)
    with pytest.raises(ValueError, match="5 classes"):
        value(class_logit(7), {LOGITS: logits})


def test_class_logit_needs_a_classifier(vgg):
    with pytest.raises(ValueError, match="no classifier"):
        visualize(vgg, class_logit(1), VisSettings(size=16, steps=1))


# ---- parametrisations -------------------------------------------------------------------------------------
def synthesis_reference(a: np.ndarray, b: np.ndarray, width: int) -> np.ndarray:
    """x[y, x] = sum over ky, kx of a cos(theta) - b sin(theta), one pixel at a time."""
    h, k = a.shape[-2:]
    out = np.zeros(a.shape[:-2] + (h, width))
    for y in range(h):
        for x in range(width):
            for ky in range(h):
                for kx in range(k):
                    theta = 2 * np.pi * (ky * y / h + kx * x / width)
                    out[..., y, x] += a[..., ky, kx] * np.cos(theta) - b[..., ky, kx] * np.sin(theta)
    return out


@pytest.mark.parametrize("height, width", [(4, 6), (5, 7), (3, 1)])
def test_fourier_synthesis_against_sums_of_sinusoids(xp, height, width):
    rng = np.random.default_rng(13)
    a, b = rng.standard_normal((2, 2, height, width // 2 + 1))
    out = F.fourier_synthesis(Tensor(xp.asarray(a)), Tensor(xp.asarray(b)), width).numpy()
    np.testing.assert_allclose(out, synthesis_reference(a, b, width), atol=1e-10)
    assert tg.gradcheck(lambda p, q: F.fourier_synthesis(p, q, width), [a, b])


def test_fourier_synthesis_checks_shapes():
    with pytest.raises(ValueError, match=r"width//2 \+ 1 = 4"):
        F.fourier_synthesis(np.zeros((3, 3)), np.zeros((3, 3)), 6)


def test_fourier_image_scales_by_one_over_frequency():
    param = FourierImage((2, 3, 6, 8), decorrelate=False, sd=1.0, rng=np.random.default_rng(2))
    a, b = param.real.numpy() * param.scale.numpy(), param.imag.numpy() * param.scale.numpy()
    np.testing.assert_allclose(param.spatial().numpy(), synthesis_reference(a, b, 8), rtol=1e-4, atol=1e-5)
    s = param.scale.numpy()  # (H, K)
    assert s[0, 1] / s[0, 2] == pytest.approx(2.0)  # 1/f: twice the frequency, half the scale
    assert s[0, 0] == pytest.approx(s[0, 1])  # DC is clamped to the lowest frequency, 1/max(H, W) = 1/8


def test_fourier_blur_removes_high_frequencies():
    param = FourierImage((1, 3, 32, 32), decorrelate=False, sd=1.0, rng=np.random.default_rng(3))
    before = high_frequency_share(param.spatial().numpy()[0].transpose(1, 2, 0))
    param.blur(1.0)
    after = high_frequency_share(param.spatial().numpy()[0].transpose(1, 2, 0))
    assert after < 0.1 * before


def test_pixel_blur_matches_scipy():
    a = np.random.default_rng(4).standard_normal((1, 2, 9, 11))
    expected = ndimage.gaussian_filter(a, sigma=(0, 0, 1.0, 1.0), mode="mirror", truncate=3.0)
    np.testing.assert_allclose(gaussian_blur_array(a, 1.0), expected, atol=1e-12)


def test_decorrelated_colours_then_sigmoid():
    param = PixelImage((1, 3, 4, 5), decorrelate=True, sd=1.0, rng=np.random.default_rng(5))
    t = param.values.numpy()
    expected = 1 / (1 + np.exp(-np.einsum("ij,njhw->nihw", COLOR_MATRIX, t)))
    np.testing.assert_allclose(param.image().numpy(), expected, rtol=1e-5)
    assert np.linalg.norm(COLOR_MATRIX, axis=0).max() == pytest.approx(1.0)


# ---- transforms -------------------------------------------------------------------------------------------
def test_transform_shapes():
    rng = np.random.default_rng(6)
    x = Tensor(np.random.default_rng(7).random((2, 3, 20, 20)))
    assert optvis.pad(3)(x).shape == (2, 3, 26, 26)
    assert optvis.pad(3)(x).numpy()[0, 0, 0, 0] == 0.5
    assert optvis.jitter(4, rng)(x).shape == (2, 3, 16, 16)
    assert optvis.random_scale([1.5], rng)(x).shape == (2, 3, 30, 30)
    np.testing.assert_allclose(optvis.random_rotate([0], rng)(x).numpy(), x.numpy(), atol=1e-12)
    out = x
    for transform in optvis.standard_transforms(rng):
        out = transform(out)
    assert 20 + 24 - 12 - 4 <= out.shape[2] <= round((20 + 24 - 8) * 1.1) - 4


def test_standard_transforms_are_differentiable():
    def fn(x):
        for transform in optvis.standard_transforms(np.random.default_rng(8)):  # the same draw every call
            x = transform(x)
        return x

    assert tg.check_vjp(fn, [np.random.default_rng(9).random((1, 3, 12, 12))])


# ---- whole runs -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("param", ["fft", "pixel"])
def test_short_run_raises_the_objective(vgg, param):
    settings = VisSettings(size=32, steps=20, param=param, lr=0.1)
    result = visualize(vgg, channel("conv2_1", 3), settings)
    assert result.status == "done" and result.images.shape == (1, 32, 32, 3) and result.images.dtype == np.uint8
    grey = np.full((1, 32, 32, 3), 128, np.uint8)
    start = mean_channel_activation(vgg, grey, "conv2_1", 3)[0]
    end = mean_channel_activation(vgg, result.images, "conv2_1", 3)[0]
    assert end > 3 * start > 0, (start, end)
    assert result.history[-1]["loss"] > result.history[0]["loss"]


@pytest.mark.parametrize("bad", [dict(size=8), dict(steps=0), dict(batch=0), dict(blur_every=-1),
                                 dict(plain_steps=-1)])
def test_bad_settings_are_refused(vgg, bad):
    with pytest.raises(ValueError, match="need size >= 16, steps >= 1, batch >= 1, blur_every >= 0 and plain_steps >= 0"):
        visualize(vgg, channel("conv1_1", 0), VisSettings(**bad))


def test_channel_batch_and_regularisers(vgg):
    settings = VisSettings(size=24, steps=3, batch=1, tv_weight=1.0, l2_weight=1.0, blur_every=1, transforms=False)
    result = visualize_channels(vgg, "conv1_2", [1, 5], settings)
    assert result.images.shape == (2, 24, 24, 3)
    assert {"conv1_2:pre:1", "conv1_2:pre:5", "tv", "l2"} <= set(result.history[0])
    with pytest.raises(ValueError, match="choose 0..63"):
        visualize_channels(vgg, "conv1_2", [64], settings)


def test_pre_relu_features(vgg):
    x = Tensor(np.random.default_rng(12).random((2, 3, 20, 20)).astype(np.float32))
    with no_grad():
        found = network_features(vgg)(x, [pre_relu("conv1_1"), pre_relu("conv2_1"), "conv2_1", pre_relu("pool1")])
    assert pre_relu("pool1") == "pool1" and pre_relu("conv2_1") == "conv2_1:pre"
    for name in ("conv1_1", "conv2_1"):
        pre = found[name + ":pre"].numpy()
        assert pre.min() < 0  # before the ReLU, negative values are kept
        post = found[name].numpy() if name in found else vgg(vgg.normalize(x), [name])[name].numpy()
        np.testing.assert_allclose(np.maximum(pre, 0), post, rtol=1e-5, atol=1e-4)
    with pytest.raises(ValueError, match="only convolutions have a pre-ReLU output"):
        network_features(vgg)(x, ["pool2:pre"])


def test_mean_channel_activation_matches_the_network(vgg):
    images = np.random.default_rng(10).integers(0, 256, (2, 20, 20, 3), dtype=np.uint8)
    x = Tensor(images.transpose(0, 3, 1, 2).astype(np.float32) / 255)
    with no_grad():
        acts = vgg(vgg.normalize(x), ["conv1_2"])["conv1_2"].numpy()
    np.testing.assert_allclose(mean_channel_activation(vgg, images, "conv1_2", 7), acts[:, 7].mean(axis=(1, 2)), rtol=1e-5)


def test_high_frequency_share():
    noise = np.random.default_rng(11).standard_normal((128, 128))
    assert high_frequency_share(noise) == pytest.approx(1 - np.pi * 0.25 ** 2, abs=0.02)  # area beyond radius 1/4
    y, x = np.mgrid[0:64, 0:64]
    assert high_frequency_share(np.sin(2 * np.pi * x / 16) + np.cos(2 * np.pi * y / 32)) < 1e-6
    assert high_frequency_share(np.cos(np.pi * x)) == pytest.approx(1.0)  # Nyquist


def test_transforms_stop_for_the_plain_steps():
    seen = []
    [schedule] = optvis.for_first(2, [lambda x: seen.append(x.shape) or x[:, :, 1:, 1:]])
    x = Tensor(np.zeros((1, 3, 8, 8), np.float32))
    shapes = [schedule(x).shape for _ in range(4)]
    assert shapes == [(1, 3, 7, 7)] * 2 + [(1, 3, 8, 8)] * 2 and len(seen) == 2
