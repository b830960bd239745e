# %% [markdown]
# # Lesson 3 — Neural style transfer (Gatys, Ecker & Bethge 2015)
#
# A convolutional network trained on ImageNet (VGG16) describes an image at many levels: early layers
# respond to edges and colours, deep layers to parts and objects. Gatys et al. noticed two things:
# - the deep features *where they are* describe the **content** of an image (what is where);
# - the *correlations* between feature channels, averaged over all positions (the Gram matrix),
#   describe its **style** (which textures and colours go together), and forget where things are.
#
# So: start from some image and change its pixels until its deep features match a photo and its
# Gram matrices match a painting. This lesson builds that loss piece by piece and looks at what each
# piece keeps. The library code is `tinygrad_cv/vision/style.py` and `tinygrad_cv/vision/render.py`.
#
# Run: `python lessons/03_style_transfer.py` (about 3 minutes on a 2-core CPU).
# Figures go to `lessons_out/03_style_transfer/`.

# %%
import time

import numpy as np
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from _common import output_dir, save_figure

import tinygrad_cv.functional as F
from tinygrad_cv import no_grad
from models.vgg import load_vgg
from tinygrad_cv.vision.render import PixelParam, RenderSettings, render
from tinygrad_cv.vision.samples import sample_photo, swirl_painting
from tinygrad_cv.vision.style import (StyleSettings, content_loss, fit_longest_side, style_loss,
                                      style_targets, stylize, to_tensor, to_uint8, tv_loss)

OUT = output_dir("03_style_transfer")
SIDE = 128  # small images keep each experiment to seconds
vgg = load_vgg("vgg16")
content = fit_longest_side(sample_photo("china.jpg"), SIDE)
style = fit_longest_side(swirl_painting(), SIDE)
rng = np.random.default_rng(0)
noise = rng.integers(0, 256, size=content.shape, dtype=np.uint8)


def features(x, layers):
    """VGG activations of an RGB [0, 1] image tensor (normalize maps it to VGG's input convention)."""
    return vgg(vgg.normalize(x), layers=layers)


def reconstruct(objective, steps=60, start=noise):
    """Optimise pixels from `start` (noise by default) with L-BFGS; return uint8 image and loss history."""
    result = render(PixelParam(to_tensor(start)), features, objective, RenderSettings(steps=steps))
    return to_uint8(result.image), [h["loss"] for h in result.history]


t0 = time.perf_counter()

# %% [markdown]
# ## 1. Content: what each layer remembers
# Reconstruct the photo from white noise using only the content loss at one layer. Low layers keep
# almost every pixel; conv4_2 keeps the layout and the objects but lets colours and fine texture go.
# That freedom is what style transfer uses.

# %%
layers = ["conv1_2", "conv2_2", "conv3_2", "conv4_2"]
with no_grad():
    targets = features(to_tensor(content), layers)
recons = [reconstruct(content_loss(layer, targets[layer]), steps=60)[0] for layer in layers]
fig, axes = plt.subplots(1, 5, figsize=(15, 3.2))
for ax, img, title in zip(axes, [content] + recons, ["content photo"] + [f"from {l} alone" for l in layers]):
    ax.imshow(img); ax.set_title(title); ax.axis("off")
save_figure(fig, OUT, "content_reconstructions.png")

# %% [markdown]
# ## 2. The Gram matrix keeps *what* and throws away *where*
# G[i, j] = mean over positions of (channel i) x (channel j). Shuffle the image in 16x16 tiles: the
# objects are gone, but almost the same textures remain, so the Gram matrices hardly change while
# the features themselves change a lot.

# %%
def tile_shuffle(img, tile=16, seed=0):
    h, w = (img.shape[0] // tile) * tile, (img.shape[1] // tile) * tile
    tiles = img[:h, :w].reshape(h // tile, tile, w // tile, tile, 3).swapaxes(1, 2).reshape(-1, tile, tile, 3)
    tiles = tiles[np.random.default_rng(seed).permutation(len(tiles))]
    return tiles.reshape(h // tile, w // tile, tile, tile, 3).swapaxes(1, 2).reshape(h, w, 3)


h16, w16 = (content.shape[0] // 16) * 16, (content.shape[1] // 16) * 16
original, shuffled = content[:h16, :w16], tile_shuffle(content)
with no_grad():
    fa = features(to_tensor(original), ["conv3_1"])["conv3_1"]
    fb = features(to_tensor(shuffled), ["conv3_1"])["conv3_1"]
    ga, gb = F.gram_matrix(fa).numpy()[0], F.gram_matrix(fb).numpy()[0]
feat_change = np.linalg.norm(fa.numpy() - fb.numpy()) / np.linalg.norm(fa.numpy())
gram_change = np.linalg.norm(ga - gb) / np.linalg.norm(ga)
print(f"conv3_1 after tile shuffling: features change by {feat_change:.0%}, Gram matrix by {gram_change:.0%}")
fig, axes = plt.subplots(1, 4, figsize=(15, 3.5))
axes[0].imshow(original); axes[0].set_title("photo")
axes[1].imshow(shuffled); axes[1].set_title("shuffled in 16 px tiles")
axes[2].imshow(ga[:64, :64], cmap="magma"); axes[2].set_title("Gram conv3_1 (64 channels)")
axes[3].imshow(gb[:64, :64], cmap="magma"); axes[3].set_title(f"shuffled: {gram_change:.0%} different")
for ax in axes:
    ax.axis("off")
save_figure(fig, OUT, "gram_keeps_what_not_where.png")

# %% [markdown]
# ## 3. Style: textures from one layer, then from several
# Reconstruct the painting from noise with the Gram loss of conv1_1 only, then conv1_1+conv2_1, and so
# on (Gatys et al. figure 1). Low layers give colour and fine grain; adding deeper layers gives
# larger, more coherent strokes.

# %%
style_layers = ["conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"]
settings = StyleSettings(style_layers=tuple(style_layers))
grams = style_targets(vgg, [style], settings, SIDE)
style_recons, style_curves = [], []
for k in range(1, 6):
    img, curve = reconstruct(style_loss(style_layers[:k], grams[:k], [1.0] * k), steps=60)
    style_recons.append(img)
    style_curves.append(curve)
fig, axes = plt.subplots(1, 6, figsize=(18, 3.2))
axes[0].imshow(style); axes[0].set_title("style image")
for k, (ax, img) in enumerate(zip(axes[1:], style_recons), start=1):
    ax.imshow(img); ax.set_title("+".join(l[4:] for l in style_layers[:k]))
for ax in axes:
    ax.axis("off")
save_figure(fig, OUT, "style_reconstructions.png")

# %% [markdown]
# ## 4. Total variation
# Pixel-space optimisation leaves high-frequency speckle that the network barely sees. The TV term
# (mean squared difference between neighbours) smooths it. Compare the conv1_1..conv5_1 texture with
# and without it.

# %%
with_tv, _ = reconstruct(style_loss(style_layers, grams, [1.0] * 5) + 0.05 * tv_loss(), steps=60)
fig, axes = plt.subplots(1, 2, figsize=(7, 3.2))
axes[0].imshow(style_recons[-1]); axes[0].set_title("style loss only")
axes[1].imshow(with_tv); axes[1].set_title("style + 0.05 TV")
for ax in axes:
    ax.axis("off")
save_figure(fig, OUT, "total_variation.png")

# %% [markdown]
# ## 5. Everything together
# content (conv4_2) + 10 x style (five layers) + a little TV, starting from the photo, L-BFGS.
# Snapshots show the painting appear; the curves show each term.

# %%
snapshots = {}


def keep_snapshots(scale, n_scales, info):
    if info.step in (1, 5, 20, 60, 150):
        snapshots[info.step] = to_uint8(info.param.image().numpy())


result = stylize(vgg, sample_photo("china.jpg"), [swirl_painting()], StyleSettings(size=192, iters=150),
                 callbacks=[keep_snapshots])
fig, axes = plt.subplots(1, len(snapshots) + 1, figsize=(3.2 * (len(snapshots) + 1), 3))
for ax, (step, img) in zip(axes, sorted(snapshots.items())):
    ax.imshow(img); ax.set_title(f"iteration {step}"); ax.axis("off")
axes[-1].imshow(result.image); axes[-1].set_title("final"); axes[-1].axis("off")
save_figure(fig, OUT, "transfer_strip.png")

fig, ax = plt.subplots(figsize=(6, 4))
for name in ("content", "style", "tv"):
    ax.plot([h[name] for h in result.history], label=name)
ax.set_yscale("log"); ax.set_xlabel("L-BFGS iteration"); ax.set_ylabel("weighted loss"); ax.legend()
ax.set_title("style transfer losses")
save_figure(fig, OUT, "loss_curves.png")
first, last = result.history[0], result.history[-1]
print(f"style loss {first['style']:.3g} -> {last['style']:.3g}, content loss {first['content']:.3g} -> {last['content']:.3g}")
print(f"lesson ran in {time.perf_counter() - t0:.0f} s")
