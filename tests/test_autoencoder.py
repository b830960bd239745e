"""Autoencoders: forward shapes, one step lowers the loss, corruption, and checkpoints that resume
exactly (after a whole epoch and in the middle of one), through the Run and through the CLI."""
from __future__ import annotations

import argparse
import re
import signal
import threading

import numpy as np
import pytest

from models import autoencoder as ae
from tinygrad_cv import Tensor, cli, optim
from tinygrad_cv.commands import ae as ae_command
from tinygrad_cv.data import load_digits
from tinygrad_cv.kernels.fast import scratch

DIGITS = load_digits()
BATCH = DIGITS.images[:16]


def build(kind: str, image_shape=(1, 8, 8), code: int = 3):
    return ae.build_autoencoder(kind, image_shape, code, hidden=(20,), channels=(4, 6), rng=np.random.default_rng(0))


# ---- shapes and one step -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ae.MODELS)
def test_forward_shapes(kind):
    model = build(kind)
    x = Tensor(BATCH)
    assert model.encode(x).shape == (16, 3)
    assert model(x).shape == (16, 1, 8, 8)
    assert model.decode(Tensor(np.zeros((5, 3), np.float32))).shape == (5, 1, 8, 8)


def test_conv_autoencoder_on_28x28_and_bad_sizes():
    model = ae.ConvAutoencoder((1, 28, 28), channels=(4, 8), code=5, rng=np.random.default_rng(0))
    x = Tensor(np.random.default_rng(1).random((2, 1, 28, 28), dtype=np.float32))
    assert model.encode(x).shape == (2, 5) and model(x).shape == (2, 1, 28, 28)
    assert model.encoder[3].weight.shape == (8, 4, 3, 3)  # the second conv, after ReLU and pool
    with pytest.raises(ValueError, match=r"\(1, 10, 10\).*divisible by 4"):
        ae.ConvAutoencoder((1, 10, 10), channels=(4, 8))


@pytest.mark.parametrize("kind", ae.MODELS)
def test_one_training_step_lowers_the_loss(kind):
    model = build(kind)
    opt = optim.Adam(model.parameters(), lr=1e-3)
    x = Tensor(BATCH)
    before = model.loss(x, np.random.default_rng(5)).item()  # the same noise before and after
    ae.train_step(model, opt, BATCH, np.random.default_rng(5))
    after = model.loss(x, np.random.default_rng(5)).item()
    assert after < before


@pytest.mark.skipif(not scratch.KEEPS_FREED_MEMORY, reason="glibc's mallopt is not available here")
def test_training_steps_reuse_freed_memory():
    """With glibc told to keep freed memory (kernels/fast/scratch.py), a step of the MNIST-sized conv
    autoencoder gets its arrays from memory the last step freed: without it, some 3,000 fresh pages."""
    resource = pytest.importorskip("resource")
    rng = np.random.default_rng(0)
    model = ae.build_autoencoder("conv", (1, 28, 28), rng=rng)
    opt, x = optim.Adam(model.parameters(), lr=1e-3), rng.random((64, 1, 28, 28), dtype=np.float32)
    for _ in range(3):
        ae.train_step(model, opt, x)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(3):
        ae.train_step(model, opt, x)
    assert (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 3 < 100


def test_sparse_loss_adds_the_l1_penalty_on_a_relu_code():
    model = ae.SparseAutoencoder((1, 8, 8), (20,), code=6, sparsity=0.5, rng=np.random.default_rng(0))
    x = Tensor(BATCH)
    z = model.encode(x).numpy()
    assert z.min() >= 0 and (z > 0).mean() > 0.5  # the 0.5 bias start keeps units switched on
    mse = float(((model(x).numpy() - BATCH) ** 2).mean())
    assert model.loss(x).item() == pytest.approx(mse + 0.5 * z.mean(), rel=1e-5)
    stats = ae.code_statistics(model, BATCH)
    assert stats["active_fraction"] == pytest.approx((z > 0).mean()) and stats["mean_activation"] == pytest.approx(z.mean())


def test_denoising_shares_the_wrapped_network_and_needs_an_rng():
    dense = ae.DenseAutoencoder((1, 8, 8), (20,), 3, rng=np.random.default_rng(0))
    model = ae.DenoisingAutoencoder(dense, ae.Noise("mask", fraction=0.5))
    assert [n for n, _ in model.named_parameters()] == [n for n, _ in dense.named_parameters()]
    with pytest.raises(ValueError, match="needs an rng"):
        model.loss(Tensor(BATCH))


def test_linear_autoencoder_without_bias_is_a_product_of_two_matrices():
    model = ae.LinearAutoencoder((5,), code=2, bias=False, rng=np.random.default_rng(0))
    assert [n for n, _ in model.named_parameters()] == ["encoder.1.weight", "decoder.0.weight"]
    x = np.random.default_rng(1).standard_normal((4, 5)).astype(np.float32)
    w_e, w_d = model.encoder[1].weight.data, model.decoder_weight
    np.testing.assert_allclose(model(Tensor(x)).numpy(), x @ w_e.T @ w_d.T, rtol=1e-5)


# ---- corruption ---------------------------------------------------------------------------------------------


def test_corruptions():
    x = np.full((50, 1, 8, 8), 0.5, np.float32)
    rng = np.random.default_rng(0)
    gauss = ae.corrupt(x, ae.Noise("gaussian", factor=0.3), rng)
    assert gauss.dtype == np.float32 and gauss.min() >= 0 and gauss.max() <= 1
    assert 0.25 < np.std(gauss - x) < 0.3  # std 0.3, a little less after clipping
    masked = ae.corrupt(x, ae.Noise("mask", fraction=0.25), rng)
    assert set(np.unique(masked)) == {0.0, 0.5} and abs((masked == 0).mean() - 0.25) < 0.03
    patched = ae.corrupt(x, ae.Noise("patch", patch_size=3, patches=1), rng)
    assert all((img == 0).sum() == 9 for img in patched)
    assert np.all(x == 0.5)  # the input is not modified
    with pytest.raises(ValueError, match="unknown noise 'salt'"):
        ae.Noise("salt")


# ---- checkpoints and resume --------------------------------------------------------------------------------------


class StopAfter(threading.Event):
    """An event that reads as set from the n-th check on: a Ctrl-C after n batches."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.checks_left = n

    def is_set(self) -> bool:
        self.checks_left -= 1
        return self.checks_left <= 0


def make_run(folder, kind: str, epochs: int) -> ae_command.Run:
    config = ae_command.TrainConfig(model=kind, code=3, hidden=(16,), channels=(4, 6), epochs=epochs, batch_size=32)
    return ae_command.Run(folder, config, (1, 8, 8))


def run_state(run: ae_command.Run) -> tuple:
    p = run.progress
    return (run.model.state_dict(), run.optimizer.state_dict(), run.rng.bit_generator.state,
            (p.epoch, p.batch, p.loss_sum, p.seen, p.train_loss, p.held_out_mse))


def assert_same_state(a: tuple, b: tuple) -> None:
    for key in a[0]:
        assert np.array_equal(a[0][key], b[0][key]), key
    for key in a[1]:
        assert np.array_equal(a[1][key], b[1][key]), key
    assert a[2] == b[2] and a[3] == b[3]


@pytest.mark.parametrize("kind", ["denoising", "conv"])
def test_resume_continues_exactly(tmp_path, kind):
    train, held_out = DIGITS.images[:100], DIGITS.images[100:140]
    straight = make_run(tmp_path / "straight", kind, epochs=2)
    assert ae_command.train(straight, train, held_out, quiet=True)

    first = make_run(tmp_path / "cut", kind, epochs=2)
    assert not ae_command.train(first, train, held_out, quiet=True, stop=StopAfter(5))  # in epoch 2 (4 batches an epoch)
    assert (first.progress.epoch, first.progress.batch) == (1, 1)
    resumed = make_run(tmp_path / "cut", kind, epochs=2)  # a fresh process would build it like this
    resumed.load()
    assert_same_state(run_state(resumed), run_state(first))
    assert ae_command.train(resumed, train, held_out, quiet=True)
    assert_same_state(run_state(resumed), run_state(straight))


def test_ctrl_c_sets_the_stop_event_and_a_second_one_interrupts():
    before = signal.getsignal(signal.SIGINT)
    with ae_command.stop_on_ctrl_c() as stop:
        assert not stop.is_set()
        signal.raise_signal(signal.SIGINT)
        assert stop.is_set()
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before


# ---- the command line ------------------------------------------------------------------------------------------------


def test_cli_trains_saves_figures_and_ends_with_the_summary(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["ae", "train", "--model", "denoising", "--code", "2", "--hidden", "16", "--epochs", "1", "-o", str(out), "--quiet"]
    assert cli.main(argv) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert re.fullmatch(r"held-out MSE: 0\.\d{4} \(PCA with 2 components: 0\.\d{4}\)", last), last
    for name in ("config.json", "checkpoint.npz", "metrics.json", "reconstructions.png", "loss_curves.png",
                 "denoising.png", "codes.png"):
        assert (out / name).is_file(), name

    assert cli.main(argv) == 2  # the folder holds a run: refuse to overwrite it
    assert "pass --resume" in capsys.readouterr().err
    assert cli.main(["ae", "train", "-o", str(out), "--resume", "--code", "4"]) == 2
    assert "--code 4 differs from the run's saved setting 2" in capsys.readouterr().err


def test_config_from_args_keeps_saved_settings_on_resume():
    saved = ae_command.TrainConfig(model="sparse", code=4, epochs=3)
    args = argparse.Namespace(epochs=5, model="sparse", code=None)
    config = ae_command.config_from_args(args, saved=saved)
    assert (config.model, config.code, config.epochs) == ("sparse", 4, 5)
    with pytest.raises(ValueError, match="code size|need code"):
        ae_command.config_from_args(argparse.Namespace(code=0))


def test_dense_autoencoder_beats_pca_by_30_percent_on_held_out_digits():
    """The lesson's headline: 64-128-8 after 30 epochs (about a second) against PCA with 8 components."""
    from tinygrad_cv.data import DataLoader, load_split
    from tinygrad_cv.pca import pca_mse

    train, held = load_split("digits")
    model = ae.DenseAutoencoder((1, 8, 8), (128,), code=8, rng=np.random.default_rng(0))
    opt = optim.Adam(model.parameters(), lr=3e-3)
    loader = DataLoader(train.images, batch_size=32, seed=0)
    for epoch in range(30):
        for (x,) in loader.batches(epoch):
            ae.train_step(model, opt, x)
    error, baseline = ae.reconstruction_mse(model, held.images), pca_mse(train.images, held.images, 8)
    assert baseline == pytest.approx(0.0238, abs=5e-4)
    assert error <= 0.7 * baseline, f"dense AE {error:.4f} vs PCA {baseline:.4f}"


# ---- the conv autoencoder on mostly black images (MNIST-like) ------------------------------------------------


def strokes(n: int, side: int, rng: np.random.Generator) -> np.ndarray:
    """n images (n, 1, side, side) of two bright 2-pixel-wide line segments on black: like MNIST,
    mostly 0 (mean about 0.15), which is what made the conv autoencoder collapse."""
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32)
    images = np.zeros((n, 1, side, side), np.float32)
    for image in images:
        for _ in range(2):
            (y0, x0), (y1, x1) = rng.uniform(0.2 * side, 0.8 * side, (2, 2))
            dy, dx = y1 - y0, x1 - x0
            t = np.clip(((yy - y0) * dy + (xx - x0) * dx) / max(dy * dy + dx * dx, 1e-6), 0, 1)
            image[0] = np.maximum(image[0], np.clip(2.0 - np.hypot(yy - y0 - t * dy, xx - x0 - t * dx), 0, 1))
    return images


def test_start_at_mean_sets_the_output_to_the_mean_brightness():
    model = ae.ConvAutoencoder((1, 8, 8), code=4, rng=np.random.default_rng(0), output_mean=0.2)
    out = ae.reconstruct(model, DIGITS.images[:8])
    assert np.allclose(out, 0.2, atol=0.02)  # the random weights add only a little around the bias
    assert np.allclose(model.decoder[-2].bias.data, np.log(0.2 / 0.8))
    ae.start_at_mean(model.decoder[-2], 0.0)  # clipped: a finite logit
    assert np.allclose(model.decoder[-2].bias.data, np.log(0.01 / 0.99))
    with pytest.raises(ValueError, match="finite"):
        ae.start_at_mean(model.decoder[-2], float("nan"))


def test_conv_autoencoder_learns_mostly_black_images():
    """The default conv model (channels 16, 32, code 8, Adam 3e-3, batch 32), started at the data's
    mean brightness as `ae train` does, gets well below the error of the mean image within 150 steps,
    and its reconstructions differ per image. Started at PyTorch's default (grey 0.5) it collapsed to
    a black image for every input (error 0.14 here, above the mean image's 0.076; PyTorch the same)."""
    rng = np.random.default_rng(0)
    images = strokes(600, 16, rng)
    train, held = images[:512], images[512:]
    model = ae.build_autoencoder("conv", (1, 16, 16), rng=np.random.default_rng(0), output_mean=float(train.mean()))
    opt = optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(150):
        ae.train_step(model, opt, train[rng.integers(0, len(train), 32)])
    mean_image_error = float(((held - train.mean(axis=0)) ** 2).mean())
    error = ae.reconstruction_mse(model, held)
    assert error < 0.5 * mean_image_error, f"conv AE {error:.4f} vs mean image {mean_image_error:.4f}"
    assert ae.reconstruct(model, held).std(axis=0).mean() > 0.05  # not one image for all inputs


def test_ae_train_starts_the_conv_decoder_at_the_training_mean(tmp_path):
    config = ae_command.TrainConfig(model="conv", code=3, channels=(4, 6), epochs=1)
    run = ae_command.Run(tmp_path, config, (1, 8, 8), output_mean=0.3)
    assert np.allclose(run.model.decoder[-2].bias.data, np.log(0.3 / 0.7))
