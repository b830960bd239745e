"""The variational autoencoder (Kingma & Welling 2014, "Auto-Encoding Variational Bayes").

An autoencoder whose code is a distribution. The encoder maps an image x to the mean and log-variance
of a Gaussian q(z|x) = N(mu, diag(sigma^2)); the decoder maps a code z to the logits of one Bernoulli
per pixel, p(x|z). The prior is p(z) = N(0, I). Training maximises the evidence lower bound

    ELBO(x) = E_q[log p(x|z)] - KL(q(z|x) || p(z))  <=  log p(x)

with two tricks from the paper: the reparameterisation z = mu + sigma * eps, eps ~ N(0, I) (so the
sample is a differentiable function of mu and sigma, Sec. 2.4), and the KL term in closed form for
two Gaussians (Appendix B): KL = -1/2 sum_j (1 + log sigma_j^2 - mu_j^2 - sigma_j^2).

The ELBO is a bound, not the log-likelihood. The importance-weighted bound (Burda, Grosse &
Salakhutdinov 2016, "Importance Weighted Autoencoders", Eq. 8) with k samples z_i ~ q(z|x),

    L_k(x) = log (1/k) sum_i p(x, z_i) / q(z_i|x),

is tighter as k grows (L_1 = ELBO <= L_k <= L_{k+1} <= log p(x) in expectation); with k = 5000 or
1000 it is the usual estimate of the test negative log-likelihood, quoted in nats.

Images are binarised: the decoder models 0/1 pixels. Training draws a fresh binarisation of every
batch (each pixel 1 with probability equal to its grey value, "dynamic binarisation"); the test set
is binarised once with a fixed seed, so every run is scored on the same bits.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np

from models.autoencoder import Autoencoder, model_device
from tinygrad_cv import backend
from tinygrad_cv import functional as F
from tinygrad_cv import nn
from tinygrad_cv.tensor import Tensor, no_grad

LOG_2PI = math.log(2 * math.pi)
TEST_BINARISATION_SEED = 1234  # the one fixed draw of the binarised test set


@dataclass(frozen=True)
class VAESettings:
    """The standard MNIST setting of Kingma & Welling (Sec. 5: 400 hidden units, 20 latent
    dimensions; ReLU here instead of their tanh) and of most reimplementations (Adam 1e-3, batch 128)."""

    hidden: int = 400
    latent: int = 20
    lr: float = 1e-3
    batch_size: int = 128


class VAE(Autoencoder):
    """Gaussian encoder and Bernoulli decoder on logits; both MLPs with one ReLU hidden layer.

    Shape: images (N, C, H, W) in [0, 1] -> mu, logvar (N, latent) -> logits (N, C*H*W).
    ``encode`` returns mu (the code used as a feature or compressed); ``decode`` returns pixel
    probabilities sigmoid(logits) in the image shape, so the helpers of models.autoencoder apply.
    """

    def __init__(self, image_shape: Sequence[int] = (1, 28, 28), hidden: int = 400, latent: int = 20,
                 rng: Optional[np.random.Generator] = None) -> None:
        self.image_shape, self.hidden, self.code_size = tuple(image_shape), hidden, latent
        d = math.prod(self.image_shape)
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(d, hidden, rng=rng), nn.ReLU(),
                                     nn.Linear(hidden, 2 * latent, rng=rng))
        self.decoder = nn.Sequential(nn.Linear(latent, hidden, rng=rng), nn.ReLU(), nn.Linear(hidden, d, rng=rng))

    def posterior(self, x: Tensor) -> tuple:
        """(mu, logvar) of q(z|x), each (N, latent)."""
        h = self.encoder(x)
        return h[:, :self.code_size], h[:, self.code_size:]

    def encode(self, x: Tensor) -> Tensor:
        return self.posterior(x)[0]

    def logits(self, z: Tensor) -> Tensor:
        """The Bernoulli logits of p(x|z), (N, C*H*W)."""
        return self.decoder(z)

    def decode(self, z: Tensor) -> Tensor:
        return F.reshape(F.sigmoid(self.logits(z)), (z.shape[0], *self.image_shape))

    def negative_elbo(self, x: Tensor, eps: Any) -> Tensor:
        """-ELBO averaged over the batch, in nats per image, for binary images x and noise eps (N, latent).

        reconstruction: -log p(x|z) = sum over pixels of BCE(logits, x), z = mu + exp(logvar / 2) * eps;
        KL: the closed form of Kingma & Welling, Appendix B.
        """
        n = x.shape[0]
        mu, logvar = self.posterior(x)
        z = reparameterise(mu, logvar, eps)
        target = F.reshape(x, (n, -1))
        reconstruction = F.binary_cross_entropy_with_logits(self.logits(z), target, reduction="sum")
        return (reconstruction + F.sum(gaussian_kl(mu, logvar))) / n

    def loss(self, x: Tensor, rng: Optional[np.random.Generator] = None) -> Tensor:
        """The training objective: -ELBO on a fresh binarisation of the batch (needs ``rng``)."""
        if rng is None:
            raise ValueError("VAE.loss needs an rng (np.random.Generator) for the binarisation and the noise")
        binary = Tensor(binarise(x.data, rng))
        return self.negative_elbo(binary, self.noise(len(x.data), rng))

    def noise(self, n: int, rng: np.random.Generator) -> Any:
        """eps ~ N(0, I), (n, latent), drawn on the CPU (a seed gives the same numbers anywhere)."""
        eps = rng.standard_normal((n, self.code_size)).astype(np.float32)
        return backend.to_device(eps, model_device(self))


def reparameterise(mu: Tensor, logvar: Tensor, eps: Any) -> Tensor:
    """z = mu + sigma * eps with sigma = exp(logvar / 2): a sample of N(mu, sigma^2) that is
    differentiable in mu and logvar (Kingma & Welling 2014, Sec. 2.4)."""
    return mu + F.exp(logvar * 0.5) * eps


def gaussian_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per row, (N,): -1/2 sum (1 + logvar - mu^2 - exp(logvar))."""
    return F.sum(mu * mu + F.exp(logvar) - logvar - 1.0, axis=1) * 0.5


def binarise(x: Any, rng: np.random.Generator) -> Any:
    """Each pixel 1 with probability x (grey values in [0, 1]), else 0; x's dtype and device."""
    draw = rng.random(x.shape)
    return backend.to_device((draw < backend.to_device(x, "cpu")).astype(x.dtype), backend.device_of(x))


def binarised_test_set(images: np.ndarray, seed: int = TEST_BINARISATION_SEED) -> np.ndarray:
    """The test images binarised once with a fixed seed (the same bits on every run)."""
    return binarise(images, np.random.default_rng(seed))


# ---- measuring: the ELBO and the importance-weighted bound --------------------------------------------


def elbo(model: VAE, x: np.ndarray, seed: int = 0, batch_size: int = 1000) -> float:
    """The mean ELBO of binary images x (nats per image), one z sample per image, seeded."""
    rng = np.random.default_rng(seed)
    device, total = model_device(model), 0.0
    with no_grad():
        for i in range(0, len(x), batch_size):
            batch = Tensor(backend.to_device(x[i:i + batch_size], device))
            total += model.negative_elbo(batch, model.noise(len(batch.data), rng)).item() * len(batch.data)
    return -total / len(x)


def log_weights(model: VAE, x: Tensor, k: int, rng: np.random.Generator) -> Any:
    """log p(x, z_i) - log q(z_i|x) for k samples z_i ~ q(z|x) per image: an array (N, k).

    log q(z|x) = -1/2 sum (eps^2 + logvar + log 2 pi) since z - mu = sigma * eps;
    log p(z) = -1/2 sum (z^2 + log 2 pi); log p(x|z) = -sum BCE(logits, x).
    """
    n, latent = x.shape[0], model.code_size
    mu, logvar = model.posterior(x)
    eps = backend.to_device(rng.standard_normal((n, k, latent)).astype(np.float32), x.device)  # (N, k, L)
    z = F.reshape(mu, (n, 1, latent)) + F.exp(F.reshape(logvar, (n, 1, latent)) * 0.5) * eps  # (N, k, L)
    logits = model.logits(F.reshape(z, (n * k, latent))).data.reshape(n, k, -1)  # (N, k, D)
    target = x.data.reshape(n, 1, -1)  # (N, 1, D)
    xp = backend.get_array_module(logits)
    # log p(x|z) = sum x l - log(1 + e^l), written as in binary_cross_entropy_with_logits so e^ never overflows
    log_px_z = -(xp.maximum(logits, 0) - target * logits + xp.log1p(xp.exp(-abs(logits)))).sum(axis=2)
    log_pz = -0.5 * (z.data ** 2 + LOG_2PI).sum(axis=2)
    log_qz = -0.5 * (eps ** 2 + logvar.data[:, None, :] + LOG_2PI).sum(axis=2)
    return backend.to_device(log_px_z + log_pz - log_qz, "cpu")


def iwae_bound(model: VAE, x: np.ndarray, k: int, seed: int = 0, rows: int = 20000,
               progress: bool = False) -> float:
    """The mean importance-weighted bound L_k (Burda et al. 2016, Eq. 8) over binary images x, in nats.

    -iwae_bound is the usual estimate of the test negative log-likelihood. Images go through in
    chunks of about ``rows`` decoder rows (chunk * k), so memory stays bounded for k = 1000.
    """
    if k < 1:
        raise ValueError(f"the IWAE bound needs k >= 1 samples, got {k}")
    from tqdm import tqdm

    rng = np.random.default_rng(seed)
    device, chunk, total = model_device(model), max(1, rows // k), 0.0
    starts = range(0, len(x), chunk)
    with no_grad():
        for i in tqdm(starts, desc=f"IWAE k={k}", unit="chunk", disable=not progress, leave=False):
            batch = Tensor(backend.to_device(x[i:i + chunk], device))
            w = log_weights(model, batch, k, rng).astype(np.float64)  # (n, k)
            top = w.max(axis=1, keepdims=True)
            total += float((top[:, 0] + np.log(np.exp(w - top).mean(axis=1))).sum())
    return total / len(x)


def sample(model: VAE, n: int, rng: np.random.Generator) -> np.ndarray:
    """n images from the model: z ~ N(0, I), pixel probabilities (the mean of p(x|z)), (n, C, H, W)."""
    with no_grad():
        return model.decode(Tensor(model.noise(n, rng))).numpy()


def interpolate(model: VAE, a: np.ndarray, b: np.ndarray, steps: int = 10) -> np.ndarray:
    """Decoded points on the straight line between the codes (mu) of images a and b, (steps, C, H, W)."""
    device = model_device(model)
    with no_grad():
        mu = model.encode(Tensor(backend.to_device(np.stack([a, b]), device))).numpy()  # (2, L)
        t = np.linspace(0, 1, steps, dtype=np.float32)[:, None]
        codes = (1 - t) * mu[0] + t * mu[1]  # (steps, L)
        return model.decode(Tensor(backend.to_device(codes, device))).numpy()


def manifold(model: VAE, n: int = 15) -> np.ndarray:
    """For a 2-D latent: decoded images on an n x n grid through the prior's quantiles
    (Kingma & Welling, Fig. 4), (n*n, C, H, W), rows from top (high z2) to bottom."""
    from scipy.stats import norm

    if model.code_size != 2:
        raise ValueError(f"the manifold plot needs a 2-D latent space, this model has {model.code_size}")
    q = norm.ppf(np.linspace(0.05, 0.95, n)).astype(np.float32)
    z1, z2 = np.meshgrid(q, q[::-1])
    codes = np.stack([z1.ravel(), z2.ravel()], axis=1)  # (n*n, 2)
    with no_grad():
        return model.decode(Tensor(backend.to_device(codes, model_device(model)))).numpy()
