# %% [markdown]
# # Lesson 7 — A linear autoencoder learns exactly the PCA subspace
#
# Take away every nonlinearity: the encoder is one matrix W_e (k x d), the decoder one matrix
# W_d (d x k), and the reconstruction of a centred data point x is W_d W_e x. Minimising the mean
# squared error over W_e and W_d is a non-convex problem, yet Baldi & Hornik (1989) showed that it
# has no bad local minima and that at the optimum the column space of W_d is the span of the top-k
# principal directions: the autoencoder *is* PCA, up to a change of basis inside that subspace.
#
# We check that with the tools from `tinygrad_cv/pca.py`:
# - **principal angles** between the decoder's column space and the top-k PCA subspace (all zero
#   when the subspaces are the same);
# - the **reconstruction error against k**, next to PCA's;
# - **recovering the principal directions** from the learned weights by an SVD.
#
# No biases: we centre the data first, which is exactly the PCA problem (with biases on raw data
# the optimum is the same subspace; the biases learn to handle the mean).
#
# The data: 10,000 of MNIST's 28x28 training digits (784 numbers each; the test set is held out), or
# with `--dataset digits` the 1,797 8x8 digits that scikit-learn ships (64 numbers, seconds-fast).
#
# Run: `python lessons/07_linear_autoencoder_is_pca.py [--dataset digits]` (MNIST: about two minutes
# on 2 cores; digits: about ten seconds); figures go to `lessons_out/07_linear_autoencoder_is_pca/`.

# %%
import numpy as np
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from _common import dataset_choice, output_dir, save_figure

import tinygrad_cv.functional as F
from models.autoencoder import LinearAutoencoder
from tinygrad_cv import Tensor, optim
from tinygrad_cv.data import image_grid, load_split
from tinygrad_cv.pca import directions_from_decoder, fit_pca, pca_mse_curve, principal_angles

OUT = output_dir("07_linear_autoencoder_is_pca")
DATASET = dataset_choice()
train, held = load_split(DATASET)
if DATASET == "mnist":
    train = train.subset(np.arange(10000))  # full-batch steps below: 10,000 digits keep them quick
SIDE = train.image_shape[-1]
x = train.images.reshape(len(train), -1).astype(np.float64)  # (n, d): (1438, 64) or (10000, 784)
D = x.shape[1]
print(f"{DATASET}: {len(train)} training digits of {D} pixels")
mean = x.mean(axis=0)
xc = (x - mean).astype(np.float32)  # centred: now the model needs no biases

# %% [markdown]
# ## 1. Train a linear autoencoder with k = 8
# Full-batch Adam (all training digits every step; the problem is small), learning rate 0.02 decayed
# to 0 along a cosine over 1,500 steps so the last steps settle instead of jittering. Every 25 steps we measure the
# principal angles between span(W_d) and the PCA subspace.

# %%
def train_linear(k, steps=500, lr=0.02, seed=0, log_every=0):
    """A bias-free linear AE on the centred digits. Returns the model and [(step, loss, angles)]."""
    model = LinearAutoencoder((D,), code=k, bias=False, rng=np.random.default_rng(seed))
    opt = optim.Adam(model.parameters(), lr=lr)
    batch = Tensor(xc)
    reference = fit_pca(x, k).components.T  # (D, k)
    log = []
    for step in range(steps):
        opt.lr = lr * 0.5 * (1 + np.cos(np.pi * step / steps))
        opt.zero_grad()
        loss = F.mse_loss(model(batch), batch)
        loss.backward()
        opt.step()
        if log_every and (step % log_every == 0 or step == steps - 1):
            angles = principal_angles(model.decoder_weight.astype(np.float64), reference)
            log.append((step, loss.item(), np.degrees(angles)))
    return model, log


k = 8
model, log = train_linear(k, steps=1500, log_every=25)
pca = fit_pca(x, k)
steps = [s for s, _, _ in log]
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
axes[0].plot(steps, [loss for _, loss, _ in log], label="linear autoencoder")
axes[0].axhline(pca.mse(x), color="gray", linestyle="--", label="PCA (the optimum)")
axes[0].set(xlabel="step", ylabel="training MSE per pixel", yscale="log", title="Loss")
axes[0].legend()
angle_table = np.array([a for _, _, a in log])  # (logged steps, k), ascending angles
for i in range(k):
    axes[1].plot(steps, angle_table[:, i], color=plt.cm.viridis(i / (k - 1)))
axes[1].set(xlabel="step", ylabel="degrees", yscale="log", title=f"The {k} principal angles to the PCA subspace")
save_figure(fig, OUT, "training.png")
final_angles = angle_table[-1]
print(f"after {steps[-1] + 1} steps: MSE {log[-1][1]:.6f} vs PCA {pca.mse(x):.6f}; "
      f"largest principal angle {final_angles.max():.1e} degrees")

# %% [markdown]
# The loss reaches PCA's within a few hundred steps. The angles take longer, and the last one
# longest: it belongs to the 8th principal direction, whose variance is barely larger than the
# 9th's (look at the spectrum below). Turning the subspace from one towards the other changes the
# loss by almost nothing, so the gradient that does it is tiny. A clear eigengap makes the angles
# converge as fast as the loss: that is why the property test in `tests/test_pca.py` draws data
# with a gap.

# %%
spectrum = fit_pca(x, 20).explained_variance
print("variances of the first 12 principal directions:", np.round(spectrum[:12], 4))
print(f"gap between the 8th and 9th: ratio {spectrum[7] / spectrum[8]:.2f}; between 2nd and 3rd: "
      f"{spectrum[1] / spectrum[2]:.2f}")

# %% [markdown]
# ## 2. Reconstruction error against k, on held-out digits
# The same training for k = 1 ... 16, next to PCA's held-out error. The autoencoder was never told
# about eigenvectors; it lands on PCA's curve.

# %%
ks = [1, 2, 3, 4, 6, 8, 12, 16]
held_c = held.images.reshape(len(held), -1) - mean
ae_errors = []
for kk in ks:
    m, _ = train_linear(kk)
    recon = m(Tensor(held_c.astype(np.float32))).numpy()
    ae_errors.append(float(((recon - held_c) ** 2).mean()))
pca_errors = pca_mse_curve(x, held.images.reshape(len(held), -1), ks)
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(ks, pca_errors, "s-", label="PCA", markersize=8, color="lightgray")
ax.plot(ks, ae_errors, "o--", label="linear autoencoder", markersize=4)
ax.set(xlabel="k", ylabel="held-out MSE per pixel", yscale="log", title="Linear autoencoder vs PCA")
ax.legend()
save_figure(fig, OUT, "error_vs_k.png")
for kk, a, p in zip(ks, ae_errors, pca_errors):
    print(f"k={kk:>2}: linear AE {a:.5f}   PCA {p:.5f}   ({100 * (a / p - 1):+.2f}%)")

# %% [markdown]
# ## 3. Recovering the principal directions from the weights
# The decoder's columns span the right subspace but are not the principal directions: any
# invertible k x k matrix A gives W_d A and A^-1 W_e with the same reconstruction. Two SVDs undo
# the mix (`directions_from_decoder`): an SVD of W_d gives an orthonormal basis Q of its column
# space, and an SVD of the data in that basis, X_c Q = U S R^T, diagonalises the covariance
# inside the subspace. The columns of Q R are the principal directions, S^2/n their variances.

# %%
directions, variances = directions_from_decoder(model.decoder_weight.astype(np.float64), x)
alignment = np.abs(np.sum(directions * pca.components, axis=1))  # |cos| between matching directions
print("variances recovered:", np.round(variances, 4))
print("variances by PCA:   ", np.round(pca.explained_variance, 4))
print("|cos| between recovered and PCA directions:", np.round(alignment, 6))
signs = np.sign(np.sum(directions * pca.components, axis=1))[:, None]  # PCA fixes no sign either
pictures = [("decoder columns (a mix)", model.decoder_weight.T), ("recovered directions", directions * signs),
            ("PCA directions", pca.components)]
fig, axes = plt.subplots(3, 1, figsize=(8, 3.6))
for ax, (title, vectors) in zip(axes, pictures):
    scaled = vectors / np.abs(vectors).max(axis=1, keepdims=True)  # each in [-1, 1]
    ax.imshow(image_grid(scaled.reshape(-1, SIDE, SIDE), ncols=k, pad_value=0), cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_title(title, fontsize=9, loc="left")
    ax.axis("off")
save_figure(fig, OUT, "directions.png")

# %% [markdown]
# The |cos| values above say how well each direction matches after 1,500 steps; the ones with a
# small gap to their neighbour come last (on the 8x8 digits all eight match to four digits; stop at
# a few hundred steps and the 8th is visibly off). What to remember: a linear autoencoder trained by gradient
# descent finds the same best k-dimensional subspace as an SVD, so a *nonlinear* autoencoder that
# beats PCA (lesson 6) does so because of its nonlinearities, not because of its training.
