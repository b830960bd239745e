"""The variational autoencoder: the closed-form KL against a Monte-Carlo estimate, gradients through
the reparameterisation, the ordering ELBO <= IWAE_10 <= IWAE_100 on a small trained model, and the
command line (its summary lines and its refusal of --iwae 0)."""
from __future__ import annotations

import math
import re

import numpy as np
import pytest

import tinygrad_cv as tg
from models import autoencoder as ae
from models import vae as V
from tinygrad_cv import Tensor, cli, optim
from tinygrad_cv.data import DataLoader, load_split


def test_analytic_kl_equals_a_monte_carlo_estimate():
    rng = np.random.default_rng(0)
    mu = rng.normal(0, 1, (3, 4))
    logvar = rng.normal(0, 0.7, (3, 4))
    analytic = V.gaussian_kl(Tensor(mu), Tensor(logvar)).numpy()
    # KL = E_q[log q(z) - log p(z)], z = mu + sigma eps; 400,000 samples per row.
    eps = rng.standard_normal((400_000, 3, 4))
    z = mu + np.exp(0.5 * logvar) * eps
    log_q = -0.5 * (eps**2 + logvar + math.log(2 * math.pi)).sum(axis=2)
    log_p = -0.5 * (z**2 + math.log(2 * math.pi)).sum(axis=2)
    monte_carlo = (log_q - log_p).mean(axis=0)
    np.testing.assert_allclose(analytic, monte_carlo, rtol=0.01)


def test_gradients_flow_through_the_reparameterisation():
    rng = np.random.default_rng(1)
    mu, logvar = rng.normal(size=(2, 3)), rng.normal(0, 0.5, size=(2, 3))
    eps = rng.standard_normal((2, 3))
    target = rng.normal(size=(2, 3))

    def objective(m: Tensor, lv: Tensor) -> Tensor:  # a loss of the sample plus the KL term
        z = V.reparameterise(m, lv, eps)
        return tg.functional.sum((z - target) ** 2) + tg.functional.sum(V.gaussian_kl(m, lv))

    assert tg.gradcheck(objective, [mu, logvar])


@pytest.fixture(scope="module")
def small_trained_vae():
    """A 64-32-4 VAE trained on the 8x8 digits for 20 epochs (about a second)."""
    train, held = load_split("digits")
    rng = np.random.default_rng(0)
    model = V.VAE((1, 8, 8), hidden=32, latent=4, rng=rng)
    opt = optim.Adam(model.parameters(), lr=3e-3)
    loader = DataLoader(train.images, batch_size=64, seed=0)
    for epoch in range(20):
        for (x,) in loader.batches(epoch):
            ae.train_step(model, opt, x, rng)
    return model, V.binarised_test_set(held.images)


def test_elbo_is_below_iwae_10_which_is_below_iwae_100(small_trained_vae):
    model, bits = small_trained_vae
    elbo = V.elbo(model, bits, seed=0)
    iwae10, iwae100 = V.iwae_bound(model, bits, 10, seed=0), V.iwae_bound(model, bits, 100, seed=0)
    assert elbo < iwae10 < iwae100 < 0, (elbo, iwae10, iwae100)
    assert V.iwae_bound(model, bits, 1, seed=3) == pytest.approx(V.elbo(model, bits, seed=3), abs=0.5)
    with pytest.raises(ValueError, match="k >= 1"):
        V.iwae_bound(model, bits, 0)


def test_training_lowers_the_negative_elbo_and_samples_have_the_image_shape(small_trained_vae):
    model, bits = small_trained_vae
    untrained = V.VAE((1, 8, 8), hidden=32, latent=4, rng=np.random.default_rng(0))
    assert V.elbo(model, bits) > V.elbo(untrained, bits) + 5
    samples = V.sample(model, 5, np.random.default_rng(0))
    assert samples.shape == (5, 1, 8, 8) and 0 <= samples.min() and samples.max() <= 1
    assert V.interpolate(model, bits[0], bits[1], steps=4).shape == (4, 1, 8, 8)
    with pytest.raises(ValueError, match="2-D latent"):
        V.manifold(model)


def test_binarisation_is_fresh_per_call_but_fixed_for_the_test_set():
    x = np.full((2, 1, 4, 4), 0.5, np.float32)
    rng = np.random.default_rng(0)
    a, b = V.binarise(x, rng), V.binarise(x, rng)
    assert set(np.unique(a)) <= {0.0, 1.0} and not np.array_equal(a, b)
    np.testing.assert_array_equal(V.binarised_test_set(x), V.binarised_test_set(x))


def test_cli_vae_ends_with_the_elbo_and_iwae_lines(tmp_path, capsys):
    out = tmp_path / "vae"
    argv = ["ae", "train", "--model", "vae", "--code", "2", "--hidden", "16", "--epochs", "1", "-o", str(out),
            "--quiet", "--iwae", "5"]
    assert cli.main(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert re.fullmatch(r"test ELBO: -\d+\.\d\d nats", lines[-2]), lines
    assert re.fullmatch(r"test NLL \(IWAE, k=5\): \d+\.\d\d nats", lines[-1]), lines
    for name in ("samples.png", "interpolation.png", "manifold.png", "codes.png", "loss_curves.png"):
        assert (out / name).is_file(), name
    assert cli.main(["ae", "train", "--model", "vae", "--iwae", "0", "-o", str(tmp_path / "x")]) == 2
    assert "--iwae needs K >= 1" in capsys.readouterr().err
    assert cli.main(["ae", "train", "--model", "dense", "--iwae", "5", "-o", str(tmp_path / "y")]) == 2
    assert "--model vae only" in capsys.readouterr().err


def test_vae_defaults_are_the_standard_setting():
    import argparse

    from tinygrad_cv.commands import ae as ae_command

    config = ae_command.config_from_args(argparse.Namespace(model="vae", dataset="mnist"))
    assert (config.code, config.hidden, config.batch_size, config.lr) == (20, (400,), 128, 1e-3)
    settings = V.VAESettings()
    assert (settings.latent, settings.hidden, settings.batch_size, settings.lr) == (20, 400, 128, 1e-3)
