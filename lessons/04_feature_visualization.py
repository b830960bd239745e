# %% [markdown]
# # Lesson 4 — Feature visualisation: what a convolution sees
#
# A unit of a trained network computes a number from an image. Which image makes that number as large
# as possible? Start from grey, and climb the gradient of the unit's activation with respect to the
# *pixels* (Erhan et al. 2009; Olah, Mordvintsev & Schubert, "Feature Visualization", Distill 2017).
# The network's weights stay fixed; only the picture changes. The loop is the one style transfer used
# (`tinygrad_cv/vision/render.py`), with another objective.
#
# 1. what the first layer's filters look like, and what the layers compute on a photo;
# 2. why naive pixel optimisation paints high-frequency noise, and how random transforms, a
#    Fourier parametrisation with 1/f scaling and an occasional blur fix it (side by side, with numbers);
# 3. the story across depth: edges -> textures -> patterns -> parts, conv1_2 to conv5_3;
# 4. what a channel likes and what it dislikes (positive and negative pictures), and one neuron.
#
# The library code is `tinygrad_cv/vision/optvis.py` (objectives, parametrisations, transforms),
# `tinygrad_cv/functional/resample.py` (the differentiable rotate/scale) and `tinygrad_cv/vision/sheets.py`.
#
# Run: `python lessons/04_feature_visualization.py` (about 5 minutes on a 2-core CPU). Pictures go to
# `lessons_out/04_feature_visualization/`. `TINYGRAD_CV_LESSON_FULL=1` renders 128 px, 256 steps
# (about 3 times longer, sharper pictures).

# %%
import os
import time
from dataclasses import replace

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from _common import output_dir, save_figure

from models.vgg import load_vgg
from tinygrad_cv import no_grad
from tinygrad_cv.vision import optvis
from tinygrad_cv.vision.image import save_image
from tinygrad_cv.vision.optvis import (VisSettings, channel, high_frequency_share, mean_channel_activation, neuron,
                                       pre_relu)
from tinygrad_cv.vision.samples import sample_photo
from tinygrad_cv.vision.sheets import (feature_map_grid, filter_grid, image_grid, layer_progression_sheet,
                                       positive_negative_sheet, upscale)
from tinygrad_cv.vision.style import fit_longest_side, to_tensor

OUT = output_dir("04_feature_visualization")
FULL = os.environ.get("TINYGRAD_CV_LESSON_FULL") == "1"
SIZE, STEPS = (128, 256) if FULL else (96, 128)  # small and short keeps the lesson to minutes
vgg = load_vgg("vgg16")
photo = fit_longest_side(sample_photo("china.jpg"), 192)
t0 = time.perf_counter()


def save(name, picture):
    save_image(OUT / name, picture)
    print(f"saved {OUT / name}")


# %% [markdown]
# ## 1. What the first layer sees, and what the layers compute
# conv1_1 has 64 filters of 3x3x3 numbers: small enough to look at directly. Each is drawn with
# grey = 0; a green-magenta split is a filter that fires on a green-magenta edge. The Caffe weights
# expect BGR input, so the colour channels are flipped back to RGB for display.
#
# Deeper filters have hundreds of input channels and cannot be drawn this way. What we *can* draw is
# their output on a photo: the feature maps. conv1 maps look like edge-filtered photos; by conv4 they
# are coarse blobs that light up on particular things (roof edges, the sky, the trees).

# %%
save("conv1_1_filters.png", filter_grid(vgg.conv1_1.weight.numpy(), vgg.convention.channel_order))
layers = ["conv1_1", "conv2_2", "conv3_3", "conv4_3"]
with no_grad():
    maps = vgg(vgg.normalize(to_tensor(photo)), layers=layers)
fig, axes = plt.subplots(1, 5, figsize=(20, 3.6))
axes[0].imshow(photo); axes[0].set_title("photo")
for ax, layer in zip(axes[1:], layers):
    ax.imshow(feature_map_grid(maps[layer].numpy()[0], count=9, columns=3, labels=False))
    ax.set_title(f"{layer}: first 9 of {maps[layer].shape[1]} maps ({maps[layer].shape[3]}x{maps[layer].shape[2]})")
for ax in axes:
    ax.axis("off")
save_figure(fig, OUT, "feature_maps.png")

# %% [markdown]
# ## 2. Naive pixel ascent paints noise; transforms, a Fourier basis and a blur fix it
# Maximise the mean activation of conv4_1, channel 42, four ways (the first three with lucent's
# Adam learning rate, 0.05):
# - **naive**: one free value per pixel and colour, no transforms. The activation climbs fast, but
#   the picture is a high-frequency pattern: the gradient of a deep unit with respect to the pixels is
#   dominated by high frequencies (strided pooling aliases them), and nothing stops the optimiser from
#   following it.
# - **+ transforms**: every step sees the picture padded, jittered, scaled and rotated a little at
#   random. A pattern must now work from many nearby viewpoints, which pixel-exact noise cannot do.
# - **Fourier + decorrelated colour + transforms** (lucent's recipe): the optimiser changes the
#   spectrum, scaled by 1/frequency, so every frequency is as easy to change as in a natural photo;
#   colours are optimised along the main axes of ImageNet's colour distribution. The shapes become
#   larger and smoother, but with VGG16 a fine dotted lattice is left on top of them.
# - **+ a blur every 4 steps** (the default): a Gaussian of half a pixel, applied to the spectrum
#   every fourth step, removes the lattice. The blur also undoes part of each step, so the default
#   takes larger steps (Adam's lr 0.2 instead of 0.05) and puts more of them into large shapes
#   (1/f^1.5 instead of 1/f); see `VisSettings` for the measurements behind these numbers. Its last
#   32 steps also skip the transforms: the picture will be shown as it is, so the end of the run
#   tunes it for that view (about 20% more activation on conv3_1 channels; the blur keeps running).
#
# The share of spectral energy above half the Nyquist frequency measures the noise (photos: a few %).
# Compare the numbers printed below: transforms lower it; the Fourier basis on its own does not
# always (its gain is in the large shapes, the left of the power plot); the blur does.
#
# One detail: we maximise the channel *before* its ReLU (``pre_relu("conv4_1")``). From a grey start
# many deep channels are zero everywhere after the ReLU, and a zero has no gradient to climb: about
# one conv5 channel in five could never be drawn. The activation we report is the usual one, after
# the ReLU.

# %%
unit = ("conv4_1", 42)
target = channel(pre_relu(unit[0]), unit[1])
base = VisSettings(size=SIZE, steps=STEPS)
lucent = replace(base, lr=0.05, decay_power=1.0, blur_every=0, plain_steps=0)
variants = {
    "naive pixels": replace(lucent, param="pixel", decorrelate=False, transforms=False),
    "pixels + transforms": replace(lucent, param="pixel", decorrelate=False),
    "Fourier + colour + transforms": lucent,
    "+ blur every 4 steps (default)": base,  # and 32 plain steps at the end
}
pictures, captions = {}, []
for name, settings in variants.items():
    result = optvis.visualize(vgg, target, settings)
    picture = result.images[0]
    pictures[name] = picture
    activation = mean_channel_activation(vgg, result.images, *unit)[0]
    share = high_frequency_share(picture)
    captions.append(f"{name}: act {activation:.0f}, HF {share:.0%}")
    print(f"{name:32s} activation {activation:8.1f}   energy above half Nyquist {share:.1%}   ({result.seconds:.0f} s)")
print(f"{'photo (china.jpg)':32s} activation {mean_channel_activation(vgg, photo[None], *unit)[0]:8.1f}"
      f"   energy above half Nyquist {high_frequency_share(photo):.1%}")

fig, axes = plt.subplots(1, 5, figsize=(20, 4.4))
for ax, (name, picture), caption in zip(axes, pictures.items(), captions):
    ax.imshow(picture); ax.set_title(caption.replace(": ", "\n"), fontsize=9); ax.axis("off")
for name, picture in list(pictures.items()) + [("photo", photo)]:
    grey = picture.mean(axis=2) - picture.mean()
    power = np.abs(np.fft.fftshift(np.fft.fft2(grey))) ** 2
    fy, fx = np.meshgrid(np.fft.fftshift(np.fft.fftfreq(grey.shape[0])), np.fft.fftshift(np.fft.fftfreq(grey.shape[1])),
                         indexing="ij")
    radius = np.sqrt(fy ** 2 + fx ** 2)
    bins = np.linspace(0, 0.5, 20)
    which = np.digitize(radius, bins)
    profile = [power[which == i].mean() for i in range(1, len(bins))]
    axes[4].semilogy(bins[1:], np.array(profile) / sum(profile), label=name)
axes[4].axvline(0.25, color="grey", linestyle=":"); axes[4].set_xlabel("cycles per pixel (dotted: half Nyquist)")
axes[4].set_title("radially averaged power (normalised)", fontsize=9); axes[4].legend(fontsize=7)
save_figure(fig, OUT, "naive_vs_transforms_vs_fourier.png")

# %% [markdown]
# ### Why decorrelate colours?
# Neighbouring pixels of photos are correlated in space (hence the 1/f spectrum) and their R, G and B
# values are correlated too: mostly they vary together (brightness). `COLOR_MATRIX` is the square root
# of ImageNet's colour covariance as published with Lucid; its first column is "brightness". The
# covariance of the bundled photo's pixels has the same shape: large and nearly equal entries.

# %%
pixels = photo.reshape(-1, 3) / 255.0
print("covariance of china.jpg's RGB values (scaled to max 1):\n", np.round(np.cov(pixels.T) / np.cov(pixels.T).max(), 2))
m = optvis.COLOR_MATRIX @ optvis.COLOR_MATRIX.T
print("COLOR_MATRIX @ COLOR_MATRIX.T (scaled to max 1):\n", np.round(m / m.max(), 2))

# %% [markdown]
# ## 3. From edges to objects, layer by layer
# Three channels (four with TINYGRAD_CV_LESSON_FULL=1) of five layers, chosen at random (seed 0),
# each rendered with the default recipe.
# Early layers want oriented edges and colour contrasts; conv3 wants textures; conv4 repeated
# patterns (meshes, scales, eyes); conv5 larger parts. The receptive field grows from 5 px (conv1_2)
# to 196 px (conv5_3), so deep units see only part of their preferred object at this size.

# %%
rng = np.random.default_rng(0)
units = [(layer, sorted(int(c) for c in rng.choice(vgg.channels(layer), 4 if FULL else 3, replace=False)))
         for layer in ("conv1_2", "conv2_2", "conv3_3", "conv4_3", "conv5_3")]
sheet = layer_progression_sheet(vgg, units, base)
save("layers_conv1_2_to_conv5_3.png", sheet)

# %% [markdown]
# ## 4. What a channel likes, and what it dislikes
# Maximising ``-channel`` gives the picture that *suppresses* the channel most: its negative.
# Positive and negative pictures are often opposites (a pattern and its complementary colours).
# Then one neuron: the channel's activation at the centre position only. Only the neuron's
# receptive field matters, so the pattern appears once, in the middle, rather than everywhere.

# %%
save("positive_negative_conv3_3.png", positive_negative_sheet(vgg, "conv3_3", [20, 92, 161], base))
one = optvis.visualize(vgg, neuron(pre_relu(unit[0]), unit[1]), base).images[0]
everywhere = pictures["+ blur every 4 steps (default)"]
save("channel_vs_neuron.png", image_grid([upscale(everywhere, 2), upscale(one, 2)],
                                         labels=["conv4_1:42, whole channel", "conv4_1:42, centre neuron"]))
print(f"lesson ran in {time.perf_counter() - t0:.0f} s")
