"""The VAE on MNIST, trained the same way in tinygrad_cv and in PyTorch: test ELBO and seconds.

Run (NumPy's BLAS at full speed; the two variables are unset for the benchmark only):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /tmp/torchvenv/bin/python benchmarks/bench_vae.py --epochs 10

Both frameworks train the 784-400-20 VAE of models/vae.py (the defaults of `tinygrad-cv ae train
--model vae`) from the same initial weights (ours, copied into PyTorch), on the same batches (the
DataLoader's seeded order, batch 128), with the same binarisations and the same noise eps (drawn from
one NumPy generator in the same order as the command does), with Adam 1e-3. So the two runs differ
only by float32 rounding and by the arithmetic each framework does. Printed per framework: seconds
of training (the loop only: no evaluation, no checkpoints) and the test ELBO on the test set
binarised once with the fixed seed (one z per image, seeded), like the command's summary line.
PyTorch runs on --threads threads (default 2). torch is only a reference; tinygrad_cv never imports it.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Dict

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout, uninstalled

from models.autoencoder import train_step  # noqa: E402
from models.vae import VAE, binarise, binarised_test_set, elbo  # noqa: E402
from tinygrad_cv import optim  # noqa: E402
from tinygrad_cv.commands.ae import VAE_DEFAULTS  # noqa: E402
from tinygrad_cv.data import DataLoader, load_split  # noqa: E402

SEED = 0  # the command's default seed: weights first, then binarisations and noise from one generator


def train_ours(train_images: np.ndarray, epochs: int) -> tuple:
    rng = np.random.default_rng(SEED)
    model = VAE((1, 28, 28), hidden=VAE_DEFAULTS["hidden"][0], latent=VAE_DEFAULTS["code"], rng=rng)
    initial = {k: v.copy() for k, v in model.state_dict().items()}
    opt = optim.Adam(model.parameters(), lr=VAE_DEFAULTS["lr"])
    loader = DataLoader(train_images, batch_size=VAE_DEFAULTS["batch_size"], seed=SEED)
    started = time.perf_counter()
    for epoch in range(epochs):
        for (x,) in loader.batches(epoch):
            train_step(model, opt, x, rng)
    return model, initial, time.perf_counter() - started


def train_torch(train_images: np.ndarray, initial: Dict[str, np.ndarray], epochs: int, threads: int) -> tuple:
    import torch

    torch.set_num_threads(threads)
    latent, hidden = VAE_DEFAULTS["code"], VAE_DEFAULTS["hidden"][0]
    enc = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 2 * latent))
    dec = torch.nn.Sequential(torch.nn.Linear(latent, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 784))
    with torch.no_grad():
        for name, p in list(enc.named_parameters(prefix="encoder")) + list(dec.named_parameters(prefix="decoder")):
            p.copy_(torch.from_numpy(initial[name]))
    params = list(enc.parameters()) + list(dec.parameters())
    opt = torch.optim.Adam(params, lr=VAE_DEFAULTS["lr"])
    rng = np.random.default_rng(SEED)
    VAE((1, 28, 28), hidden=hidden, latent=latent, rng=rng)  # advance the generator past the weights, as ours did
    loader = DataLoader(train_images, batch_size=VAE_DEFAULTS["batch_size"], seed=SEED)

    def negative_elbo(x: "torch.Tensor", eps: "torch.Tensor") -> "torch.Tensor":
        h = enc(x)
        mu, logvar = h[:, :latent], h[:, latent:]
        z = mu + torch.exp(0.5 * logvar) * eps
        rec = torch.nn.functional.binary_cross_entropy_with_logits(dec(z), x.reshape(len(x), -1), reduction="sum")
        kl = 0.5 * (mu * mu + logvar.exp() - logvar - 1).sum()
        return (rec + kl) / len(x)

    started = time.perf_counter()
    for epoch in range(epochs):
        for (x,) in loader.batches(epoch):
            bits = torch.from_numpy(binarise(x, rng))
            eps = torch.from_numpy(rng.standard_normal((len(x), latent)).astype(np.float32))
            opt.zero_grad()
            negative_elbo(bits, eps).backward()
            opt.step()
    seconds = time.perf_counter() - started
    weights = {}
    for name, p in list(enc.named_parameters(prefix="encoder")) + list(dec.named_parameters(prefix="decoder")):
        weights[name] = p.detach().numpy().copy()
    return weights, seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2, help="PyTorch threads (default 2)")
    parser.add_argument("--skip-torch", action="store_true")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    train, test = load_split("mnist")
    bits = binarised_test_set(test.images)
    model, initial, ours_seconds = train_ours(train.images, args.epochs)
    results = {"epochs": args.epochs, "tinygrad_cv": {"seconds": ours_seconds, "test_elbo": elbo(model, bits)}}
    print(f"tinygrad_cv: {ours_seconds:.1f} s for {args.epochs} epochs, test ELBO {results['tinygrad_cv']['test_elbo']:.2f} nats")
    if not args.skip_torch:
        weights, torch_seconds = train_torch(train.images, initial, args.epochs, args.threads)
        twin = VAE((1, 28, 28), hidden=VAE_DEFAULTS["hidden"][0], latent=VAE_DEFAULTS["code"])
        twin.load_state_dict(weights)  # scored by the very same ELBO code
        results["torch"] = {"seconds": torch_seconds, "test_elbo": elbo(twin, bits), "threads": args.threads}
        print(f"PyTorch ({args.threads} threads): {torch_seconds:.1f} s, test ELBO {results['torch']['test_elbo']:.2f} nats")
        print(f"time ratio tinygrad_cv / PyTorch: {ours_seconds / torch_seconds:.2f}; "
              f"ELBO difference: {results['tinygrad_cv']['test_elbo'] - results['torch']['test_elbo']:+.2f} nats")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
