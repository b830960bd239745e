"""EfficientNet-Lite0: SAME padding, the whole network against a plain float64 NumPy reference on random
weights, and the released weights through the real fetch path against a PyTorch twin's logits."""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest

from models.efficientnet import (
    STAGES,
    EfficientNet,
    load_efficientnet,
    random_state,
    same_padding,
)
from tinygrad_cv import Tensor, no_grad
from tinygrad_cv.vision.samples import sample_photo

FIXTURE = Path(__file__).parent / "fixtures" / "efficientnet_lite0_expected.npz"


@pytest.mark.parametrize("size, kernel, stride, expected", [
    (224, 3, 2, (0, 1)),   # 112 outputs need 225 rows: the extra one goes after
    (112, 3, 1, (1, 1)),
    (56, 5, 2, (1, 2)),
    (7, 5, 1, (2, 2)),
    (15, 3, 2, (1, 1)),    # odd size: ceil(15 / 2) = 8 outputs, total 2
    (4, 1, 1, (0, 0)),
])
def test_same_padding_splits_like_tensorflow(size, kernel, stride, expected):
    before, after = same_padding(size, kernel, stride)
    assert (before, after) == expected
    assert (size + before + after - kernel) // stride + 1 == math.ceil(size / stride)


# ---- a plain float64 reference of the whole network ----------------------------------------------------
def conv_bn_reference(x, state, conv, bn, stride=1, depthwise=False, act=True):
    """SAME-padded convolution as a sum over kernel taps, eval-mode batch norm, ReLU6."""
    w = state[f"{conv}.weight"].astype(np.float64)
    O, _, K, _ = w.shape
    (top, bottom), (left, right) = same_padding(x.shape[2], K, stride), same_padding(x.shape[3], K, stride)
    xpad = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    OH, OW = math.ceil(x.shape[2] / stride), math.ceil(x.shape[3] / stride)
    y = np.zeros((x.shape[0], O, OH, OW))
    for kh in range(K):
        for kw in range(K):
            window = xpad[:, :, kh:kh + stride * (OH - 1) + 1:stride, kw:kw + stride * (OW - 1) + 1:stride]
            if depthwise:
                y += window * w[None, :, 0, kh, kw, None, None]
            else:
                y += np.tensordot(window, w[:, :, kh, kw], axes=([1], [1])).transpose(0, 3, 1, 2)
    g, b, m, v = (state[f"{bn}.{p}"].astype(np.float64)[None, :, None, None]
                  for p in ("weight", "bias", "running_mean", "running_var"))
    y = (y - m) / np.sqrt(v + 1e-3) * g + b
    return np.clip(y, 0, 6) if act else y


def lite0_reference(x, state):
    x = conv_bn_reference(x, state, "_conv_stem", "_bn0", stride=2)
    i, channels = 0, 32
    for repeats, kernel, stride, expand, out in STAGES:
        for r in range(repeats):
            b, s = f"_blocks.{i}", stride if r == 0 else 1
            h = conv_bn_reference(x, state, f"{b}._expand_conv", f"{b}._bn0") if expand != 1 else x
            h = conv_bn_reference(h, state, f"{b}._depthwise_conv", f"{b}._bn1", s, depthwise=True)
            h = conv_bn_reference(h, state, f"{b}._project_conv", f"{b}._bn2", act=False)
            x = h + x if s == 1 and channels == out else h
            i, channels = i + 1, out
    x = conv_bn_reference(x, state, "_conv_head", "_bn1").mean(axis=(2, 3))
    return x @ state["_fc.weight"].T.astype(np.float64) + state["_fc.bias"]


def test_logits_match_a_plain_float64_reference_on_random_weights():
    state = random_state(EfficientNet(), seed=3)
    model = load_efficientnet(weights="random", seed=3)
    x = np.random.default_rng(0).uniform(-1, 1, (2, 3, 37, 30))  # odd sizes exercise SAME's split
    with no_grad():
        logits = model(Tensor(x.astype(np.float32))).data
    expected = lite0_reference(x, state)
    assert logits.shape == (2, 1000)
    np.testing.assert_allclose(logits, expected, rtol=1e-3, atol=1e-3 * np.abs(expected).max())


@pytest.mark.parametrize("block", [0, 1, 3, 4, 11, 15])  # no expand; stride 2 (3x3, 5x5); residual; last
def test_fused_block_equals_the_op_by_op_block(block):
    """With no gradient wanted, a block runs fused (functional/mbconv_fast.py): the same numbers as
    its ops on the reference path, on a batch of two with odd sizes (TensorFlow's asymmetric SAME)."""
    import tinygrad_cv as tg

    model = load_efficientnet(weights="random", seed=5)
    mb = model.blocks[block]
    channels = mb.depthwise.conv.weight.shape[0] // (6 if mb.expand is not None else 1)
    x = Tensor(np.random.default_rng(block).uniform(0, 2, (2, channels, 13, 10)).astype(np.float32))
    with no_grad():
        assert mb._fused_fits(x)
        with tg.fast_paths(True):  # (also when the suite runs with --reference)
            fused = mb(x).data
        with tg.fast_paths(False):
            reference = mb(x).data
    assert fused.shape == reference.shape
    np.testing.assert_allclose(fused, reference, rtol=1e-4, atol=1e-4 * np.abs(reference).max())


def test_fused_block_only_without_a_gradient_and_in_eval_mode():
    model = load_efficientnet(weights="random")
    mb = model.blocks[2]
    x = Tensor(np.zeros((1, 24, 8, 8), np.float32), requires_grad=True)
    assert not mb._fused_fits(x)  # a gradient is wanted: the ops build the graph
    y = mb(x)
    y.sum().backward()
    assert x.grad is not None and x.grad.shape == x.shape
    with no_grad():
        assert mb._fused_fits(x)
        mb.train()
        assert not mb._fused_fits(x)  # training-mode batch norm uses the batch's statistics
        mb.eval()
        assert not mb._fused_fits(Tensor(np.zeros((1, 24, 8, 8))))  # float64: the ops


def test_named_layers_and_bad_layer_lists_the_names():
    model = load_efficientnet(weights="random")
    with no_grad():
        found = model(Tensor(np.zeros((1, 3, 64, 64), np.float32)), layers=["stem", "block3", "head", "pooled"])
    assert [tuple(found[k].shape) for k in ("stem", "block3", "head", "pooled")] == \
        [(1, 32, 32, 32), (1, 40, 8, 8), (1, 1280, 2, 2), (1, 1280)]
    assert model.channels("block15") == 320 and model.channels("pooled") == 1280
    with pytest.raises(ValueError, match="block16.*valid names are stem, block0"):
        model(Tensor(np.zeros((1, 3, 64, 64), np.float32)), layers=["block16"])
    learned = [p.size for name, p in model.named_parameters() if "running" not in name]
    assert sum(learned) == 4652008  # 4.7M, as published


def test_class_names():
    model = load_efficientnet(weights="random")
    assert len(model.classes) == 1000
    assert (model.classes[0], model.classes[698], model.classes[985]) == ("tench", "palace", "daisy")


def test_preprocess_gives_the_224_centre_crop():
    model = load_efficientnet(weights="random")
    x = model.preprocess(sample_photo("china.jpg"))
    assert x.shape == (1, 3, 224, 224) and x.dtype == np.float32
    crop_sum = int(np.round(x.data * 128 + 127).astype(np.int64).sum())
    assert crop_sum == int(np.load(FIXTURE)["crop_sums"][0])


# ---- the released weights, through the real fetch path -----------------------------------------------------
@pytest.fixture(scope="session")
def imagenet_lite0(weights_home):
    start = time.perf_counter()
    model = load_efficientnet()
    print(f"\nload_efficientnet() into {weights_home}: {time.perf_counter() - start:.1f} s")
    return model


def test_released_weights_match_the_pytorch_twin_and_classify_the_photos(imagenet_lite0):
    model = imagenet_lite0
    expected = np.load(FIXTURE)["logits"]
    for i, (photo, label) in enumerate([("china.jpg", "palace"), ("flower.jpg", "daisy")]):
        with no_grad():
            logits = model(model.preprocess(sample_photo(photo))).data[0]
        np.testing.assert_allclose(logits, expected[i], atol=1e-4)
        assert model.classes[int(logits.argmax())] == label
    assert model.predict(sample_photo("flower.jpg"), top=1)[0][1] == "daisy"


# ---- the classify command ----------------------------------------------------------------------------
def test_classify_command_prints_ranked_classes(imagenet_lite0, tmp_path, capsys):
    from PIL import Image

    from tinygrad_cv.cli import main

    path = tmp_path / "flower.png"
    Image.fromarray(sample_photo("flower.jpg")).save(path)
    assert main(["classify", str(path), "--top", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3
    rank, name, index, probability = lines[0].split()
    assert (rank, name, index) == ("1", "daisy", "985") and 0 < float(probability) <= 1


@pytest.mark.parametrize("argv, message", [
    (["--top", "0"], "--top must be between 1 and 1000"),
    (["--weights", "random"], "is not an image"),
])
def test_classify_bad_input_is_one_line(tmp_path, capsys, argv, message):
    from tinygrad_cv.cli import main

    not_image = tmp_path / "notes.jpg"
    not_image.write_text("not a picture")
    assert main(["classify", str(not_image)] + argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
