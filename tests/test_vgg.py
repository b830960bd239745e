"""VGG16/VGG19: layer names, truncation, preprocessing, weights, and a float64 NumPy reference."""
from __future__ import annotations


import numpy as np
import pytest
from PIL import Image

from models.vgg import (
    adaptive_avg_pool2d,
    deprocess_array,
    load_vgg,
    preprocess_array,
    random_weights,
)
from tinygrad_cv import Tensor, no_grad
from tinygrad_cv.io import weights as W

# First bias of each conv layer of the original VGG16 (ImageNet, Caffe release), as published.
PUBLISHED_FIRST_BIAS = {
    "conv1_1": 0.73429835, "conv1_2": -0.30912212, "conv2_1": -0.04577766, "conv2_2": -0.06418542,
    "conv3_1": -0.074358866, "conv3_2": 0.019675018, "conv3_3": 0.035415243,
    "conv4_1": 0.013485669, "conv4_2": 0.023680462, "conv4_3": 0.03757768,
    "conv5_1": 0.09722325, "conv5_2": 0.21327873, "conv5_3": 0.18837857,
}
# torchvision's vgg16.features: the Sequential indices of its 13 convolutions.
TORCHVISION_VGG16_CONV_INDICES = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
CONV_NAMES_16 = list(PUBLISHED_FIRST_BIAS)


# ---- the plain float64 reference network ------------------------------------------------------------
def ref_conv3x3_relu(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """3x3 cross-correlation, padding 1, plus bias, then ReLU; as nine shifted channel mixes."""
    N, C, H, Wd = x.shape
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    out = np.zeros((w.shape[0], N, H, Wd)) + b[:, None, None, None]  # (O, N, H, W)
    for kh in range(3):
        for kw in range(3):
            window = padded[:, :, kh:kh + H, kw:kw + Wd]  # (N, C, H, W)
            out += np.tensordot(w[:, :, kh, kw], window, axes=([1], [1]))  # sum over C
    return np.maximum(out, 0.0).transpose(1, 0, 2, 3)  # (N, O, H, W)


def ref_pool(x: np.ndarray, mode: str) -> np.ndarray:
    N, C, H, Wd = x.shape
    blocks = x[:, :, : H // 2 * 2, : Wd // 2 * 2].reshape(N, C, H // 2, 2, Wd // 2, 2)
    return blocks.max(axis=(3, 5)) if mode == "max" else blocks.mean(axis=(3, 5))


def ref_features(x: np.ndarray, model, pooling: str) -> dict:
    """Every layer of the model, recomputed in float64 from its parameters."""
    out, h = {}, x.astype(np.float64)
    for name in model.layer_names:
        if name.startswith("conv"):
            layer = getattr(model, name)
            h = ref_conv3x3_relu(h, layer.weight.numpy().astype(np.float64),
                                 layer.bias.numpy().astype(np.float64))
        else:
            h = ref_pool(h, pooling)
        out[name] = h
    return out


def ref_adaptive_avg_pool(x: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """PyTorch's AdaptiveAvgPool2d, one output cell at a time."""
    N, C, H, Wd = x.shape
    out = np.zeros((N, C, out_h, out_w))
    for i in range(out_h):
        for j in range(out_w):
            r0, r1 = (i * H) // out_h, -(-((i + 1) * H) // out_h)
            c0, c1 = (j * Wd) // out_w, -(-((j + 1) * Wd) // out_w)
            out[:, :, i, j] = x[:, :, r0:r1, c0:c1].mean(axis=(2, 3))
    return out


def relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    return float(np.abs(actual - expected).max() / max(np.abs(expected).max(), 1e-12))


def smooth_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A uint8 RGB test picture with structure at several scales (not just noise)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
    img = np.asarray(Image.fromarray(coarse).resize((width, height), Image.Resampling.BILINEAR))
    noise = rng.integers(-20, 21, size=img.shape)
    return np.clip(img.astype(int) + noise, 0, 255).astype(np.uint8)


# ---- fixtures ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def vgg19_random():
    return load_vgg("vgg19", weights="random", seed=0)


@pytest.fixture(scope="module")
def vgg16_random():
    return load_vgg("vgg16", weights="random", seed=1)


# ---- names, channels, truncation -----------------------------------------------------------------------
def test_layer_names_and_channels(vgg16_random, vgg19_random):
    assert vgg16_random.layer_names[:3] == ["conv1_1", "conv1_2", "pool1"]
    assert [n for n in vgg16_random.layer_names if n.startswith("conv")] == CONV_NAMES_16
    assert vgg16_random.layer_names[-1] == "pool5" and len(vgg16_random.layer_names) == 18
    assert len(vgg19_random.layer_names) == 21 and "conv5_4" in vgg19_random.layer_names
    assert "conv5_4" not in vgg16_random.layer_names
    widths = {"conv1_1": 64, "pool1": 64, "conv2_2": 128, "conv3_4": 256, "conv4_2": 512, "pool5": 512}
    assert {name: vgg19_random.channels(name) for name in widths} == widths
    names = [name for name, _ in vgg16_random.named_parameters()]
    assert names[:2] == ["conv1_1.weight", "conv1_1.bias"] and len(names) == 26


def test_unknown_layer_lists_the_valid_names(vgg16_random):
    x = Tensor(np.zeros((1, 3, 8, 8), np.float32))
    with pytest.raises(ValueError, match=r"unknown layer\(s\) \['conv5_4'\].*conv1_1, conv1_2, pool1"):
        vgg16_random(x, layers=["conv1_1", "conv5_4"])
    with pytest.raises(ValueError, match="conv6_1"):
        vgg16_random.channels("conv6_1")
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\), got \(1, 4, 8, 8\)"):
        vgg16_random(Tensor(np.zeros((1, 4, 8, 8), np.float32)), layers=["conv1_1"])


def test_nothing_is_computed_past_the_deepest_layer(vgg16_random, monkeypatch):
    def must_not_run(x):
        raise AssertionError("conv2_2 was computed")

    monkeypatch.setattr(vgg16_random.conv2_2, "forward", must_not_run)
    x = vgg16_random.preprocess(smooth_image(12, 10))
    with no_grad():
        out = vgg16_random(x, layers=["conv2_1", "conv1_1"])
    assert list(out) == ["conv2_1", "conv1_1"]
    assert out["conv1_1"].shape == (1, 64, 12, 10) and out["conv2_1"].shape == (1, 128, 6, 5)
    with pytest.raises(AssertionError, match="conv2_2 was computed"):
        vgg16_random(x, layers=["pool2"])


# ---- the whole stack against float64 NumPy --------------------------------------------------------------
@pytest.mark.parametrize("arch, pooling", [("vgg19", "max"), ("vgg16", "avg")])
def test_features_match_float64_reference(vgg19_random, arch, pooling, xp):
    weights = vgg19_random.state_dict() if arch == "vgg19" else random_weights(arch, seed=2).arrays
    model = load_vgg(arch, weights=W.Weights(weights, W.TORCHVISION, "vgg", "test"), pooling=pooling)
    device = "cpu" if xp is np else "cuda"
    model.to(device)
    try:
        x = model.preprocess(smooth_image(32, 32))
        assert x.device == device
        with no_grad():
            out = model(x)
    finally:
        model.to("cpu")
    expected = ref_features(x.numpy(), model, pooling)
    for name in model.layer_names:
        assert out[name].shape == expected[name].shape, name
        assert relative_error(out[name].numpy(), expected[name]) < 1e-4, name


def test_imagenet_vgg16_features_match_float64_reference(imagenet_vgg16):
    model, _ = imagenet_vgg16
    x = model.preprocess(smooth_image(32, 40, seed=3))
    with no_grad():
        out = model(x, layers=["conv1_1", "conv3_3", "pool5"])
    expected = ref_features(x.numpy(), model, "max")
    for name, value in out.items():
        assert relative_error(value.numpy(), expected[name]) < 1e-4, name
    assert out["conv1_1"].numpy().mean() > 0  # real features, not all zero after ReLU


# ---- the real weights ----------------------------------------------------------------------------------
def test_published_first_biases_through_the_real_fetch(imagenet_vgg16):
    model, npz_path = imagenet_vgg16
    for name, value in PUBLISHED_FIRST_BIAS.items():
        np.testing.assert_allclose(getattr(model, name).bias.numpy()[0], value, rtol=1e-6, err_msg=name)
    assert model.convention == W.CAFFE
    assert not model.has_classifier  # the MRI dense layers are never loaded
    assert all(name.startswith("conv") for name, _ in model.named_parameters())
    with np.load(npz_path) as data:
        assert sorted(data.files) == sorted([f"{n}.{p}" for n in CONV_NAMES_16 for p in ("weight", "bias")]
                                            + [W.META_KEY])
    with pytest.raises(ValueError, match="no classifier"):
        model.classify(model.preprocess(smooth_image(32, 32)))


# ---- preprocessing ------------------------------------------------------------------------------------
@pytest.mark.parametrize("convention", [W.CAFFE, W.TORCHVISION])
def test_preprocess_deprocess_round_trip(convention):
    img = np.random.default_rng(0).integers(0, 256, size=(17, 23, 3), dtype=np.uint8)
    x = preprocess_array(img, convention)
    assert x.shape == (1, 3, 17, 23) and x.dtype == np.float32
    back = deprocess_array(x, convention)
    assert back.dtype == np.uint8 and back.shape == img.shape
    assert np.abs(back.astype(int) - img).max() <= 1


def test_preprocess_follows_the_weights_convention(vgg16_random):
    pixel = np.array([[[255, 128, 0]]], np.uint8)  # R, G, B
    caffe = preprocess_array(pixel, W.CAFFE)[0, :, 0, 0]  # B, G, R minus the mean pixel
    np.testing.assert_allclose(caffe, [0 - 103.939, 128 - 116.779, 255 - 123.68], rtol=1e-6)
    torch_style = preprocess_array(pixel, W.TORCHVISION)[0, :, 0, 0]
    expected = (np.array([1.0, 128 / 255, 0.0]) - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
    np.testing.assert_allclose(torch_style, expected, rtol=1e-6)
    assert vgg16_random.convention == W.TORCHVISION  # random weights use torchvision's convention
    img = smooth_image(9, 11)
    x = vgg16_random.preprocess(Image.fromarray(img).convert("RGBA"))  # PIL, any mode
    assert isinstance(x, Tensor) and x.shape == (1, 3, 9, 11)
    np.testing.assert_array_equal(vgg16_random.deprocess(x), img)
    np.testing.assert_array_equal(vgg16_random.deprocess(x.numpy()[0]), img)
    with pytest.raises(ValueError, match=r"\(1, 3, H, W\)"):
        vgg16_random.deprocess(np.zeros((2, 3, 4, 4)))


@pytest.mark.parametrize("convention", [W.CAFFE, W.TORCHVISION])
def test_normalize_matches_preprocess_and_is_differentiable(vgg16_random, convention):
    model = load_vgg("vgg16", weights=W.Weights(vgg16_random.state_dict(), convention, "vgg", "t"))
    img = smooth_image(5, 7)
    x = Tensor(img.transpose(2, 0, 1)[None] / 255.0, requires_grad=True)  # float64 RGB in [0, 1]
    y = model.normalize(x)
    np.testing.assert_allclose(y.numpy(), model.preprocess(img).numpy(), rtol=1e-5, atol=1e-4)
    y.sum().backward()
    scale = np.array(convention.max_value) / np.array(convention.std)  # in channel_order
    expected = scale[::-1] if convention.channel_order == "BGR" else scale  # back in RGB order
    np.testing.assert_allclose(x.grad, np.broadcast_to(expected.reshape(1, 3, 1, 1), x.shape))
    with pytest.raises(ValueError, match=r"\(1, 4, 5, 7\)"):
        model.normalize(Tensor(np.zeros((1, 4, 5, 7))))


# ---- torchvision layout and the classifier --------------------------------------------------------------
def torchvision_state(conv_arrays: dict, hidden: int, classes: int, rng) -> dict:
    """A state dict with torchvision's key names (features.i / classifier.j) and a small head."""
    state = {}
    for index, name in zip(TORCHVISION_VGG16_CONV_INDICES, CONV_NAMES_16):
        state[f"features.{index}.weight"] = conv_arrays[f"{name}.weight"]
        state[f"features.{index}.bias"] = rng.standard_normal(conv_arrays[f"{name}.bias"].shape).astype(np.float32) * 0.1
    shapes = {0: (hidden, 512 * 7 * 7), 3: (hidden, hidden), 6: (classes, hidden)}
    for index, shape in shapes.items():
        state[f"classifier.{index}.weight"] = (rng.standard_normal(shape) / np.sqrt(shape[1])).astype(np.float32)
        state[f"classifier.{index}.bias"] = rng.standard_normal(shape[0]).astype(np.float32) * 0.1
    return state


def test_torchvision_checkpoint_layout_and_classifier(vgg16_random):
    rng = np.random.default_rng(5)
    state = torchvision_state(vgg16_random.state_dict(), hidden=6, classes=5, rng=rng)
    model = load_vgg("vgg16", weights=W.Weights(state, W.TORCHVISION, "torchvision", "test"))
    assert model.has_classifier and model.convention == W.TORCHVISION
    np.testing.assert_array_equal(model.conv2_1.bias.numpy(), state["features.5.bias"])
    np.testing.assert_array_equal(model.conv5_3.weight.numpy(), state["features.28.weight"])
    x = model.preprocess(smooth_image(32, 48))
    with no_grad():
        logits = model.classify(x).numpy()
    pool5 = ref_features(x.numpy(), model, "max")["pool5"]  # (1, 512, 1, 1)
    h = ref_adaptive_avg_pool(pool5, 7, 7).reshape(1, -1)
    for index, relu in ((0, True), (3, True), (6, False)):
        h = h @ state[f"classifier.{index}.weight"].T.astype(np.float64) + state[f"classifier.{index}.bias"]
        h = np.maximum(h, 0) if relu else h
    assert logits.shape == (1, 5)
    assert relative_error(logits, h) < 1e-4

    state["features.1.running_mean"] = np.zeros(64, np.float32)
    with pytest.raises(ValueError, match="features.1.running_mean"):
        load_vgg("vgg16", weights=W.Weights(state, W.TORCHVISION, "torchvision", "test"))


@pytest.mark.parametrize("size", [(10, 13), (7, 7), (14, 21), (3, 2)])
def test_adaptive_avg_pool_matches_pytorch_bins(size):
    x = np.random.default_rng(0).standard_normal((2, 3) + size)
    out = adaptive_avg_pool2d(Tensor(x), (7, 7)).numpy()
    np.testing.assert_allclose(out, ref_adaptive_avg_pool(x, 7, 7), rtol=1e-12, atol=1e-12)


# ---- weights handling -------------------------------------------------------------------------------------
def test_random_weights_are_seeded(vgg16_random):
    a = vgg16_random.conv3_1.weight.numpy()  # seed 1
    np.testing.assert_array_equal(a, random_weights("vgg16", seed=1).arrays["conv3_1.weight"])
    assert not np.array_equal(a, random_weights("vgg16", seed=2).arrays["conv3_1.weight"])
    std = a.std()
    assert abs(std - np.sqrt(2 / (128 * 9))) < 0.05 * std  # He initialisation


def test_bad_arguments_fail_before_any_download():
    with pytest.raises(ValueError, match="unknown VGG 'vgg11'"):
        load_vgg("vgg11")
    with pytest.raises(ValueError, match="pooling"):
        load_vgg("vgg16", pooling="min")
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_vgg("vgg16", weights="/nonexistent/weights.pth")
    with pytest.raises(ValueError, match="conv3_4.weight"):
        load_vgg("vgg19", weights=random_weights("vgg16"))
