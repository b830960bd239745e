# %% [markdown]
# # Lesson 6 — Autoencoders: compress, then reconstruct
#
# An autoencoder is two networks back to back: an **encoder** that squeezes an image into a short
# **code** and a **decoder** that rebuilds the image from the code. It is trained only to make its
# output match its input, yet because the code is short it must find what the images have in common.
#
# We work with MNIST's 28x28 handwritten digits (fetched once from the package index, then offline;
# a 15,000-digit share of the training set keeps the lesson within a few minutes, and the 10,000 test
# digits are held out), and always compare with **PCA**, the best *linear* compression with as many
# numbers. `--dataset digits` runs the same lesson in seconds on the 1,797 8x8 digits that
# scikit-learn ships (a fixed 20% held out).
# Then we go from a dense autoencoder to a convolutional one, train one to remove noise, and one
# whose codes are sparse. The models are in `models/autoencoder.py`; the training command with
# checkpoints and figures is `tinygrad-cv ae train` (try `tinygrad-cv ae train --help`).
#
# Run: `python lessons/06_autoencoders.py [--dataset digits]` (MNIST: a few minutes on 2 cores;
# digits: about a minute); figures go to `lessons_out/06_autoencoders/`.

# %%
import time

import numpy as np
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from _common import dataset_choice, output_dir, save_figure

from models import autoencoder as ae
from tinygrad_cv import optim
from tinygrad_cv.data import DataLoader, first_of_each_label, image_grid, load_split
from tinygrad_cv.pca import fit_pca, pca_mse_curve

OUT = output_dir("06_autoencoders")
DATASET = dataset_choice()
# Per dataset: training images used, epochs, Adam's rate, batch, hidden width, patch side, conv epochs.
SETTINGS = {"digits": dict(n_train=None, epochs=30, lr=3e-3, batch=32, hidden=128, patch=3, conv_epochs=30),
            "mnist": dict(n_train=15000, epochs=8, lr=1e-3, batch=64, hidden=256, patch=8, conv_epochs=2)}[DATASET]
train, held = load_split(DATASET)
if SETTINGS["n_train"]:
    train = train.subset(np.arange(SETTINGS["n_train"]))
SHAPE, HIDDEN = train.image_shape, SETTINGS["hidden"]
print(f"{DATASET}: {len(train)} training and {len(held)} held-out digits, each {SHAPE}, pixels in [0, 1]")
SHOW = first_of_each_label(held.labels, per_label=2)[:16]  # 16 held-out digits, two of each 0..7


def rows(title_images, name):
    """Save a figure with one row of the same 16 digits per (title, images) pair."""
    fig, axes = plt.subplots(len(title_images), 1, figsize=(9, 0.8 * len(title_images)))
    for ax, (title, images) in zip(np.atleast_1d(axes), title_images):
        ax.imshow(image_grid(images, ncols=16), cmap="gray", vmin=0, vmax=1)
        ax.set_title(title, fontsize=8, loc="left")
        ax.axis("off")
    save_figure(fig, OUT, name)


# %% [markdown]
# ## 1. The baseline: PCA with 8 components
# PCA keeps the 8 directions of pixel space along which the training digits vary most
# (`tinygrad_cv/pca.py`: an SVD of the centred data) and projects every image onto them.
# Its error on the held-out digits is the number to beat: mean squared error per pixel.

# %%
pca8 = fit_pca(train.images, 8)
flat = held.images.reshape(len(held), -1)
pca_recon = pca8.reconstruct(flat).reshape(held.images.shape)
print(f"PCA, 8 components: held-out MSE {pca8.mse(flat):.4f}, "
      f"{pca8.explained_variance.sum() / pca8.total_variance:.0%} of the variance kept")

# %% [markdown]
# ## 2. A dense autoencoder: pixels -> hidden -> 8 -> hidden -> pixels
# ReLU hidden layers, a linear code of 8 numbers, and a sigmoid at the end so pixels stay in [0, 1].
# One training step is `zero_grad`, the loss (mean squared error between `model(x)` and `x`),
# `backward`, and Adam's `step` (see `ae.train_step`). The `DataLoader` reshuffles every epoch
# from a seed, so every run of this lesson gives the same numbers.

# %%
def fit(model, epochs=SETTINGS["epochs"], seed=0):
    """Train with Adam; return the held-out MSE and the seconds it took."""
    opt = optim.Adam(model.parameters(), lr=SETTINGS["lr"])
    loader = DataLoader(train.images, batch_size=SETTINGS["batch"], seed=seed)
    rng = np.random.default_rng(seed)  # the noise of the denoising models
    start = time.perf_counter()
    for epoch in range(epochs):
        for (x,) in loader.batches(epoch):
            ae.train_step(model, opt, x, rng)
    return ae.reconstruction_mse(model, held.images), time.perf_counter() - start


results = {"PCA (8)": pca8.mse(flat)}
dense = ae.DenseAutoencoder(SHAPE, hidden=(HIDDEN,), code=8, rng=np.random.default_rng(0))
results["dense"], seconds = fit(dense)
print(f"dense autoencoder: held-out MSE {results['dense']:.4f} ({1 - results['dense'] / results['PCA (8)']:.0%} "
      f"below PCA) after {SETTINGS['epochs']} epochs in {seconds:.1f} s")
rows([("held-out input", held.images[SHOW]), ("PCA, 8 components", pca_recon[SHOW]),
      ("dense autoencoder, code 8", ae.reconstruct(dense, held.images[SHOW]))], "dense_vs_pca.png")

# %% [markdown]
# Why better than PCA with the same 8 numbers? PCA can only reconstruct along a flat 8-dimensional
# slice of pixel space; the decoder is a nonlinear function, so its 8-dimensional set of outputs
# can curve to follow the digits. How much that is worth depends on the code size:

# %%
codes = [2, 4, 8, 16]
ae_errors = []
for k in codes:
    model = ae.DenseAutoencoder(SHAPE, (HIDDEN,), code=k, rng=np.random.default_rng(0))
    ae_errors.append(fit(model)[0])
ks = np.arange(1, 33)
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(ks, pca_mse_curve(train.images, held.images, ks), label="PCA")
ax.plot(codes, ae_errors, "o-", label=f"dense autoencoder ({np.prod(SHAPE)}-{HIDDEN}-k)")
ax.set(xlabel="code size k", ylabel="held-out MSE per pixel", yscale="log", title="Error against code size")
ax.legend()
save_figure(fig, OUT, "error_vs_code_size.png")
print("dense AE error for codes", codes, np.round(ae_errors, 4))

# %% [markdown]
# With a 2-number code we can look at the code space itself: every held-out digit is a point.
# PCA's two coordinates next to the autoencoder's, coloured by the true label (which neither saw).

# %%
dense2 = ae.DenseAutoencoder(SHAPE, (HIDDEN,), code=2, rng=np.random.default_rng(0))
fit(dense2)
fig, axes = plt.subplots(1, 2, figsize=(10, 4))
for ax, z, title in [(axes[0], fit_pca(train.images, 2).encode(flat), "PCA, 2 components"),
                     (axes[1], ae.encode(dense2, held.images), "dense autoencoder, code 2")]:
    points = ax.scatter(z[:, 0], z[:, 1], c=held.labels, cmap="tab10", s=8)
    ax.set_title(title)
fig.colorbar(points, ax=axes, label="digit")
save_figure(fig, OUT, "codes_2d.png")

# %% [markdown]
# ## 3. A convolutional autoencoder
# Dense layers treat the pixels as an unordered list. Convolutions look at 3x3 neighbourhoods
# with the same filter everywhere, and max pooling halves the resolution twice (8x8 -> 4x4 -> 2x2,
# or 28x28 -> 14x14 -> 7x7) with 16 then 32 channels, and a Linear layer to the 8-number code. The decoder mirrors it, but it
# grows the image with **nearest-neighbour upsampling followed by a convolution** rather than a
# transposed convolution, which paints overlapping kernels unevenly and leaves checkerboard
# patterns (Odena, Dumoulin & Olah 2016). In the printout each such pair is one `UpsampleConv2d`
# layer: the same numbers, but the fast path computes the four pixels of every 2x2 block of the
# output as four convolutions of the small image, so the upsampled image is never made.
#
# One detail of its initialisation matters. `output_mean` sets the last convolution's bias to the
# logit of the training images' mean pixel, so the untrained model draws a flat image of the average
# brightness. Without it the untrained output is a grey of 0.5; on MNIST, where most pixels are 0,
# Adam's first steps then push every decoder weight towards "darker" at once, the sigmoid's input
# reaches -300 within some 20 steps, the sigmoid saturates, its gradient vanishes, and the model is
# stuck drawing a black image for every digit (error 0.11). PyTorch, given the same weights and
# batches, does exactly the same.

# %%
conv = ae.ConvAutoencoder(SHAPE, channels=(16, 32), code=8, rng=np.random.default_rng(0),
                          output_mean=float(train.images.mean()))
print(conv)
n_params = {name: sum(p.size for p in m.parameters()) for name, m in [("dense", dense), ("conv", conv)]}
results["conv"], seconds = fit(conv, epochs=SETTINGS["conv_epochs"])
print(f"conv autoencoder: held-out MSE {results['conv']:.4f} after {SETTINGS['conv_epochs']} epochs in {seconds:.1f} s; "
      f"parameters: dense {n_params['dense']:,}, conv {n_params['conv']:,}")
rows([("held-out input", held.images[SHOW]), ("dense, code 8", ae.reconstruct(dense, held.images[SHOW])),
      ("conv, code 8", ae.reconstruct(conv, held.images[SHOW]))], "conv_reconstructions.png")

# %% [markdown]
# On 8x8 digits the convolutional model is not much better than the dense one: there is little
# spatial structure to share at this size. On 28x28 MNIST it has far fewer weights than the dense
# model for the same code; compare the two errors printed above (it also had fewer epochs here,
# since each of its steps costs more).
#
# ## 4. A denoising autoencoder
# Train the same dense network to rebuild the *clean* digit from a *corrupted* one (Vincent et al.
# 2008). It cannot simply copy its input any more: it has to know what digits look like. Two
# corruptions: Gaussian noise (std 0.3, clipped to [0, 1]) and a blanked square patch (occlusion:
# 3x3 on the 8x8 digits, 8x8 on MNIST).

# %%
rng = np.random.default_rng(1)
denoise_rows = [("clean", held.images[SHOW])]
for noise in [ae.Noise("gaussian", factor=0.3), ae.Noise("patch", patch_size=SETTINGS["patch"])]:
    model = ae.DenoisingAutoencoder(ae.DenseAutoencoder(SHAPE, (HIDDEN,), 8, rng=np.random.default_rng(0)), noise)
    clean_error, _ = fit(model)
    noisy = ae.corrupt(held.images, noise, rng)
    print(f"{noise.kind:>8} noise: noisy input MSE {np.mean((noisy - held.images) ** 2):.4f}; "
          f"denoised {ae.reconstruction_mse(model, noisy, held.images):.4f}; "
          f"plain dense AE on the noisy input {ae.reconstruction_mse(dense, noisy, held.images):.4f}; "
          f"PCA projection of the noisy input {np.mean((pca8.reconstruct(noisy.reshape(len(held), -1)) - flat) ** 2):.4f}")
    results[f"denoising ({noise.kind}), clean input"] = clean_error
    denoise_rows += [(f"{noise.kind} noise", noisy[SHOW]), ("denoised", ae.reconstruct(model, noisy[SHOW]))]
rows(denoise_rows, "denoising.png")

# %% [markdown]
# ## 5. A sparse autoencoder
# Give the code more room, 32 units, but make it expensive to use them: the code goes through a
# ReLU (so a unit is either off, exactly 0, or on) and the loss adds an L1 penalty,
# `loss = MSE + sparsity * mean(code)`. The penalty trades reconstruction error for fewer active
# units per digit, and it also switches some units off for good ("dead" units): a ReLU unit that
# is negative on every image gets no gradient back. A sweep over the penalty's weight:

# %%
sweep = {}
for weight in [0.0, 0.01, 0.03, 0.1]:
    model = ae.SparseAutoencoder(SHAPE, (HIDDEN,), code=32, sparsity=weight, rng=np.random.default_rng(0))
    error, _ = fit(model)
    sweep[weight] = (model, error, ae.code_statistics(model, held.images))
    stats = sweep[weight][2]
    print(f"sparsity {weight:<4}: held-out MSE {error:.4f}, mean activation {stats['mean_activation']:.3f}, "
          f"{stats['active_fraction']:.0%} of code values active, {stats['dead_units']} of 32 units dead")
results["PCA (32)"] = fit_pca(train.images, 32).mse(flat)
results["sparse (code 32, sparsity 0.03)"] = sweep[0.03][1]

# %% [markdown]
# What does each unit draw? Decode a code with one live unit at its largest held-out value and all
# others at 0. Each one decodes to a rough digit-like template; a digit's code mixes a few of them
# (the decoder has a hidden ReLU layer, so the mix is not a plain sum of these pictures).

# %%
sparse = sweep[0.03][0]
z = ae.encode(sparse, held.images)
live = np.flatnonzero((z > 0).any(axis=0))
atoms = ae.map_batches(sparse, sparse.decode, np.diag(z.max(axis=0))[live].astype(np.float32))
fig, axes = plt.subplots(1, 2, figsize=(10, 3.2), gridspec_kw={"width_ratios": [1, 1.6]})
for weight in [0.0, 0.03, 0.1]:
    active = (ae.encode(sweep[weight][0], held.images) > 0).sum(axis=1)
    axes[0].hist(active, bins=np.arange(34) - 0.5, alpha=0.6, label=f"sparsity {weight}")
axes[0].set(xlabel="active units per digit (of 32)", ylabel="digits", title="How sparse the codes are")
axes[0].legend(fontsize=8)
axes[1].imshow(image_grid(atoms, ncols=10), cmap="gray")
axes[1].set_title(f"one unit on (the {len(live)} live units, sparsity 0.03)", fontsize=9)
axes[1].axis("off")
save_figure(fig, OUT, "sparse_codes.png")

# %% [markdown]
# ## Summary
# Held-out MSE per pixel on the held-out digits (lower is better).

# %%
for name, value in results.items():
    print(f"{name:>36}: {value:.4f}")
