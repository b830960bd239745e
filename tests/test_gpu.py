"""The whole jobs on the GPU give what they give on the CPU: style-transfer loss and gradient, a
short stylisation, feature visualisation, Deep Dream, an autoencoder step, and convolution and
pooling with strides, padding and dilation through autograd. The kernel tests compare single
kernels (tests/test_kernels.py, the ``xp`` fixture); these compare the paths the jobs take, where a
tensor left on the wrong device or a CPU-only shortcut would show. They skip without a GPU."""
from __future__ import annotations

import numpy as np
import pytest

import tinygrad_cv.functional as F
from conftest import GPU_OK, GPU_REASON
from models.autoencoder import build_autoencoder, train_step
from models.vgg import load_vgg
from tinygrad_cv import Tensor, backend, no_grad, optim
from tinygrad_cv.vision.dream import DreamSettings, dream
from tinygrad_cv.vision.optvis import VisSettings, channel, visualize
from tinygrad_cv.vision.samples import sample_photo, swirl_painting
from tinygrad_cv.vision.style import (StyleSettings, content_loss, fit_longest_side, style_loss, style_targets,
                                      stylize, to_tensor, tv_loss)

pytestmark = pytest.mark.skipif(not GPU_OK, reason=GPU_REASON)


def relative_error(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


@pytest.fixture(scope="module")
def vgg_pair():
    """The same seeded random VGG16, once on each device."""
    return load_vgg("vgg16", weights="random", seed=0), load_vgg("vgg16", weights="random", seed=0).to("cuda")


def style_value_and_gradient(model, content, style):
    settings = StyleSettings(size=max(content.shape[:2]))
    with no_grad():
        target = model(model.normalize(to_tensor(content, model.device)), layers=["conv4_2"])["conv4_2"]
    objective = (content_loss("conv4_2", target)
                 + 10 * style_loss(settings.style_layers, style_targets(model, [style], settings, 48),
                                   settings.style_layer_weights)
                 + 1e-3 * tv_loss())
    noise = np.random.default_rng(0).random((1, 3) + content.shape[:2], dtype=np.float32)
    pixels = Tensor(to_tensor(content, "cpu").data * 0.5 + noise * 0.5).to(model.device)
    pixels.requires_grad = True
    total, _ = objective(model(model.normalize(pixels), objective.layers), pixels)
    total.backward()
    assert backend.device_of(pixels.grad) == model.device
    return total.item(), backend.to_device(pixels.grad, "cpu")


def test_style_loss_and_gradient_equal_the_cpu_ones(vgg_pair):
    content, style = fit_longest_side(sample_photo("china.jpg"), 48), fit_longest_side(swirl_painting(), 48)
    (cpu_value, cpu_grad), (gpu_value, gpu_grad) = [style_value_and_gradient(m, content, style) for m in vgg_pair]
    assert gpu_value == pytest.approx(cpu_value, rel=1e-4)
    assert relative_error(gpu_grad, cpu_grad) < 1e-4


def test_stylize_on_the_gpu_lowers_the_style_loss(vgg_pair):
    content, style = sample_photo("china.jpg"), swirl_painting()
    result = stylize(vgg_pair[1], content, [style], StyleSettings(size=40, iters=10))
    assert result.status == "done" and result.image.dtype == np.uint8 and max(result.image.shape[:2]) == 40
    assert result.history[-1]["style"] < result.initial["style"] / 2


def test_visualize_on_the_gpu_raises_its_objective(vgg_pair):
    result = visualize(vgg_pair[1], channel("conv2_1", 3), VisSettings(size=32, steps=12, seed=1))
    assert result.status == "done" and result.images.shape == (1, 32, 32, 3)
    assert result.history[-1]["loss"] > result.history[0]["loss"]


def test_dream_on_the_gpu_matches_the_cpu(vgg_pair):
    photo = fit_longest_side(sample_photo("flower.jpg"), 48)
    settings = DreamSettings(layer="conv3_1", octaves=2, steps=3)
    cpu, gpu = [dream(m, photo, settings) for m in vgg_pair]
    assert gpu.image.shape == photo.shape
    assert np.abs(gpu.image.astype(int) - cpu.image.astype(int)).mean() < 0.5  # uint8 levels
    np.testing.assert_allclose(gpu.history, cpu.history, rtol=1e-3)


def test_conv_autoencoder_step_matches_the_cpu():
    x = np.random.default_rng(0).random((16, 1, 28, 28), dtype=np.float32)
    losses, params = [], []
    for device in ("cpu", "cuda"):
        model = build_autoencoder("conv", (1, 28, 28), rng=np.random.default_rng(3)).to(device)
        opt = optim.Adam(model.parameters(), lr=1e-3)
        losses.append([train_step(model, opt, x) for _ in range(3)])
        params.append([p.numpy() for p in model.parameters()])
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-4)
    for gpu, cpu in zip(params[1], params[0]):
        assert relative_error(gpu, cpu) < 1e-4


@pytest.mark.parametrize("stride, padding, dilation", [(2, 1, 1), (1, 2, 2), ((2, 1), (0, 1), 1)])
def test_conv_and_pool_gradients_equal_the_cpu_ones(stride, padding, dilation):
    rng = np.random.default_rng(5)
    x0, w0, b0 = rng.standard_normal((2, 3, 11, 9)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    grads, outs = [], []
    for device in ("cpu", "cuda"):
        x, w, b = [Tensor(a.astype(np.float32), requires_grad=True).to(device) for a in (x0, w0, b0)]
        y = F.relu(F.conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation))
        z = F.max_pool2d(y, 3, stride=2, padding=1) * 2 + F.avg_pool2d(y, 2).sum()
        z.sum().backward()
        outs.append(z.numpy())
        grads.append([backend.to_device(t.grad, "cpu") for t in (x, w, b)])
    assert relative_error(outs[1], outs[0]) < 1e-5
    for gpu, cpu in zip(grads[1], grads[0]):
        assert relative_error(gpu, cpu) < 1e-5
