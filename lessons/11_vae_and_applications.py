# %% [markdown]
# # Lesson 11 — The variational autoencoder, and what autoencoders are for
#
# Lesson 6 trained autoencoders to reconstruct. This one does three things with them on MNIST, the
# 70,000 28x28 handwritten digits (fetched once, offline afterwards: `tinygrad-cv data fetch mnist`):
#
# 1. **Generate** similar images: the variational autoencoder (Kingma & Welling 2014) turns the code
#    into a distribution, so that decoding random codes gives new digits.
# 2. **Compress**: an autoencoder as an image codec, bits per pixel against PSNR, next to PCA with the
#    same pipeline and to JPEG.
# 3. **Features for other models**: a classifier trained on codes of 1, 10 or 100 labelled digits per
#    class, against one trained on raw pixels.
#
# The models are in `models/vae.py`, `models/codec.py` and `models/few_labels.py`; the full-length
# versions are `tinygrad-cv ae train --model vae --dataset mnist`, `benchmarks/codec_rd.py` and
# `benchmarks/bench_vae.py`. Run: `python lessons/11_vae_and_applications.py` (about five minutes on
# 2 cores); figures go to `lessons_out/11_vae_and_applications/`.

# %%
import time

import numpy as np
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from _common import output_dir, save_figure

from models import codec
from models import vae as V
from models.autoencoder import DenseAutoencoder, encode, map_batches, train_step
from models.few_labels import FewLabelSettings, few_label_accuracy, table
from tinygrad_cv import optim
from tinygrad_cv.data import DataLoader, image_grid, load_split
from tinygrad_cv.pca import fit_pca

OUT = output_dir("11_vae_and_applications")
train, test = load_split("mnist")
print(f"MNIST: {len(train)} training and {len(test)} test digits of {train.image_shape}")


def fit(model, epochs, lr=1e-3, batch_size=128, seed=0):
    """Adam over the training digits; the rng feeds the VAE's binarisation and noise."""
    opt = optim.Adam(model.parameters(), lr=lr)
    loader = DataLoader(train.images, batch_size=batch_size, seed=seed)
    rng = np.random.default_rng(seed + 1)
    start = time.perf_counter()
    for epoch in range(epochs):
        for (x,) in loader.batches(epoch):
            train_step(model, opt, x, rng)
    return time.perf_counter() - start


def show(grid, title, name, width=6):
    fig, ax = plt.subplots(figsize=(width, width * grid.shape[0] / grid.shape[1] + 0.3))
    ax.imshow(grid, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.axis("off")
    save_figure(fig, OUT, name)


# %% [markdown]
# ## 1. The variational autoencoder
# The encoder no longer outputs a code but a Gaussian over codes, q(z|x) = N(mu(x), sigma(x)^2);
# the decoder outputs one Bernoulli probability per pixel, p(x|z) (the pixels are binarised: a fresh
# random 0/1 image per grey image and batch). Training maximises the **ELBO**
#
#     log p(x) >= E_q[log p(x|z)] - KL(q(z|x) || N(0, I))
#
# The first term asks for good reconstructions from a *random* code near mu; the second keeps every
# q close to the prior N(0, I), so that the codes fill the space without holes and a random code from
# the prior decodes to something digit-like. Two tricks make it trainable: the sample is written
# z = mu + sigma * eps with eps ~ N(0, I) (the **reparameterisation**: the randomness moves into an
# input, the gradient flows through mu and sigma) and the KL of two Gaussians has a closed form.
#
# The standard setting: 784-400-20, Adam 1e-3, batch 128. Ten epochs take about half a minute.

# %%
vae = V.VAE((1, 28, 28), hidden=400, latent=20, rng=np.random.default_rng(0))
seconds = fit(vae, epochs=10)
test_bits = V.binarised_test_set(test.images)
print(f"VAE 784-400-20, 10 epochs in {seconds:.0f} s: test ELBO {V.elbo(vae, test_bits):.2f} nats")

# %% [markdown]
# The ELBO is a lower bound on log p(x). The **importance-weighted bound** (Burda et al. 2016)
# averages k samples inside the log, log (1/k) sum_i p(x, z_i)/q(z_i|x): it is tighter as k grows and
# is how the log-likelihood of a VAE is reported (k = 1000 or 5000; here k = 100 on 1,000 digits to
# stay quick). `tinygrad-cv ae train --model vae --iwae 1000` does the full one.

# %%
for k in (1, 10, 100):
    print(f"IWAE bound, k={k:>3}: {V.iwae_bound(vae, test_bits[:1000], k):.2f} nats (first 1,000 test digits)")

# %% [markdown]
# Decoding codes drawn from the prior gives new digits (the pictures are the pixel probabilities),
# and walking in a straight line between the codes of two test digits morphs one into the other.

# %%
rng = np.random.default_rng(0)
show(image_grid(V.sample(vae, 64, rng), ncols=8), "decoded z ~ N(0, I)", "vae_samples.png")
pairs = rng.choice(len(test), size=(5, 2), replace=False)
line = np.concatenate([V.interpolate(vae, test.images[a], test.images[b]) for a, b in pairs])
show(image_grid(line, ncols=10), "straight lines between the codes of two test digits", "vae_interpolation.png")

# %% [markdown]
# With a 2-D latent space we can look at the whole of it: decode a grid of codes through the prior's
# quantiles (Kingma & Welling's Fig. 4), and place every test digit at its mu.

# %%
vae2 = V.VAE((1, 28, 28), hidden=400, latent=2, rng=np.random.default_rng(0))
fit(vae2, epochs=10)
print(f"VAE 784-400-2: test ELBO {V.elbo(vae2, test_bits):.2f} nats")
mu = encode(vae2, test.images)
fig, axes = plt.subplots(1, 2, figsize=(12, 5.5))
axes[0].imshow(image_grid(V.manifold(vae2, 15), ncols=15, pad=0), cmap="gray")
axes[0].set_title("decoded grid of the 2-D latent space")
axes[0].axis("off")
points = axes[1].scatter(mu[:, 0], mu[:, 1], c=test.labels, cmap="tab10", s=2)
axes[1].set(title="test digits at their mu", xlabel="z1", ylabel="z2")
fig.colorbar(points, ax=axes[1], label="digit")
save_figure(fig, OUT, "vae_manifold.png")

# %% [markdown]
# ## 2. The autoencoder as a codec
# A codec must produce bits. The pipeline (`models/codec.py`), the same for PCA and the autoencoder:
# the code's dimensions are standardised, rounded to multiples of a step (the **quantiser**: the
# only lossy stage besides the transform), and the integers are compressed with LZMA (a real
# entropy coder; the bits counted are the bytes it writes). A coarser step means fewer bits and
# more error. JPEG gets the 10,000 test digits tiled into one image, so that its headers are paid once.
#
# Here one dense autoencoder with a 32-number code trained for 5 epochs; `benchmarks/codec_rd.py`
# trains codes of 16, 32 and 64 for longer.

# %%
ae32 = DenseAutoencoder((1, 28, 28), (512,), code=32, rng=np.random.default_rng(0))
seconds = fit(ae32, epochs=5)
print(f"dense autoencoder 784-512-32: 5 epochs in {seconds:.0f} s")
steps = (0.02, 0.03, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0)
train_codes = encode(ae32, train.images)
points = [codec.transform_codec_point("autoencoder", lambda x: encode(ae32, x),
                                      lambda z: map_batches(ae32, ae32.decode, z), train_codes, test.images, s)
          for s in steps]
pca32 = fit_pca(train.images.astype(np.float64), 32)
pca_enc = lambda x: pca32.encode(x.reshape(len(x), -1))  # noqa: E731
pca_dec = lambda z: pca32.decode(z).reshape(-1, 1, 28, 28)  # noqa: E731
points += [codec.transform_codec_point("PCA", pca_enc, pca_dec, pca_enc(train.images), test.images, s) for s in steps]
points += [codec.jpeg_point(test.images, q) for q in (1, 3, 5, 8, 10, 15, 20, 30, 50, 75)]
fig, ax = plt.subplots(figsize=(7, 4.5))
for method in ("autoencoder", "PCA", "JPEG"):
    curve = sorted((p for p in points if p.method == method), key=lambda p: p.bpp)
    ax.plot([p.bpp for p in curve], [p.psnr for p in curve], "o-", markersize=3, label=method)
ax.axvspan(0.1, 0.5, color="grey", alpha=0.1)
ax.set(xscale="log", xlabel="bits per pixel", ylabel="PSNR (dB)", title="MNIST test digits")
ax.legend()
ax.grid(alpha=0.3, which="both")
save_figure(fig, OUT, "rate_distortion.png")
gain = codec.best_gain([p for p in points if p.method == "autoencoder"], [p for p in points if p.method == "JPEG"])
if np.isfinite(gain["bpp"]):
    print(f"largest autoencoder gain over JPEG at equal rate in 0.1-0.5 bpp: {gain['gain_db']:+.1f} dB at {gain['bpp']:.2f} bpp")
else:
    print("the two curves share no rate in 0.1-0.5 bpp")

# %% [markdown]
# JPEG cannot go below about 0.3 bpp on these digits (its 8x8 blocks and tables cost bits even where
# the image is black), and it spends its bits on block edges. The autoencoder knows what digits look
# like: its code needs a few bits per number, a few hundred bits per digit in all. The price: it
# only works on images like the ones it was trained on, and the decoder (a few MB of weights) must
# be on both sides.
#
# ## 3. Codes as features, with few labels
# Fit the representation on all 60,000 training digits *without* labels, then train a logistic
# regression on 1, 10 or 100 labelled digits per class and score it on the 10,000 test digits;
# 20 random draws of the labelled digits give a mean and a spread.

# %%
features = {
    "raw pixels (784)": (train.images.reshape(len(train), -1), test.images.reshape(len(test), -1)),
    "PCA (32)": (pca_enc(train.images), pca_enc(test.images)),
    "dense autoencoder (32)": (train_codes, encode(ae32, test.images)),
    "VAE mu (20)": (encode(vae, train.images), encode(vae, test.images)),
}
start = time.perf_counter()
rows = {name: few_label_accuracy(tr, train.labels, te, test.labels, FewLabelSettings())
        for name, (tr, te) in features.items()}
print(table(rows))
print(f"({time.perf_counter() - start:.0f} s for {4 * 3 * 20} classifiers)")

# %% [markdown]
# Read the table as it comes out rather than as one expects it to. One run on 2 cores gave (test
# accuracy, mean +- std over 20 draws; 1 / 10 / 100 labels per class):
#
#     raw pixels (784)        39.0 +- 4.2   73.3 +- 1.8   87.1 +- 0.4
#     PCA (32)                34.7 +- 2.9   69.3 +- 1.9   86.4 +- 0.4
#     dense autoencoder (32)  43.7 +- 4.3   74.3 +- 1.8   86.6 +- 0.3
#     VAE mu (20)             41.0 +- 4.6   72.5 +- 2.0   86.5 +- 0.4
#
# With one label per class the draw dominates (the spread is 3-5 points), and the autoencoder's codes
# are ahead of raw pixels by about the size of that spread; PCA's codes are behind. With ten labels
# the differences are within one spread, and with a hundred raw pixels are as good as any code: a
# linear classifier with enough examples finds in the pixels what the codes kept. The codes were
# learnt for reconstruction, not for telling digits apart; a few labels cannot fix that.
