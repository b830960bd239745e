# %% [markdown]
# # Lesson 5 — Deep Dream
#
# Lesson 4 started from grey and asked a unit what it wants to see. Deep Dream (Mordvintsev, Olah &
# Tyka, "Inceptionism", 2015) starts from a photo and asks a whole layer to see *more* of what it
# already sees: gradient ascent on the pixels for the mean square of the layer's activations. Whatever
# the layer half-recognises (an eye in a texture, a dog's snout in a cloud) gets amplified, step by
# step, until the photo is covered in it.
#
# Four tricks from the original notebook make it work, and each cell below shows one:
# 1. **octaves**: dream on a small copy first, so that the patterns can be large;
# 2. **detail re-injection**: carry only the *changes* up to the next size, and take the detail
#    from the photo itself at each size;
# 3. **gradient normalisation**: step by ``step_size * g / mean|g|``, whatever the layer's scale;
# 4. **random roll and tiles**: shift the image randomly before every step, so tile seams (needed to
#    bound memory on large photos) never stay in one place.
#
# Library code: `tinygrad_cv/vision/dream.py`. Run: `python lessons/05_deep_dream.py` (1 to 2 minutes on
# a 2-core CPU). Pictures go to `lessons_out/05_deep_dream/`.

# %%
import time
from dataclasses import replace

import matplotlib
import numpy as np

from _common import output_dir

from models.vgg import load_vgg
from tinygrad_cv.vision.dream import DreamSettings, dream, dream_objective, tiled_gradient
from tinygrad_cv.vision.image import resize, save_image
from tinygrad_cv.vision.optvis import network_features
from tinygrad_cv.vision.samples import sample_photo
from tinygrad_cv.vision.sheets import image_grid, labelled_rows
from tinygrad_cv.vision.style import fit_longest_side, to_tensor, to_uint8

OUT = output_dir("05_deep_dream")
plt_colormap = matplotlib.colormaps["magma"]
vgg = load_vgg("vgg16")
photo = fit_longest_side(sample_photo("china.jpg"), 256)  # 171 x 256
t0 = time.perf_counter()


def save(name, picture):
    save_image(OUT / name, picture)
    print(f"saved {OUT / name}")


# %% [markdown]
# ## 1. Octaves: one scale against four
# Both runs take 40 gradient steps on conv4_2. At one scale, the layer's patterns can only be as
# large as its receptive field at full resolution: a fine, even texture laid over the photo. With
# four octaves (sizes 1 : 1.4 : 2 : 2.7), the patterns made at the smallest size are enlarged by
# the later octaves and become large, structured shapes.

# %%
default = DreamSettings(layer="conv4_2")
one_scale = dream(vgg, photo, replace(default, octaves=1, steps=40))
octaves_strip = []


def keep_octave_ends(info):
    if info.step == info.steps:
        octaves_strip.append(resize(to_uint8(info.image), photo.shape[:2]))


four = dream(vgg, photo, default, callbacks=[keep_octave_ends])
print(f"one scale: {one_scale.seconds:.0f} s; four octaves {four.sizes}: {four.seconds:.0f} s")
save("one_scale_vs_octaves.png", image_grid([photo, one_scale.image, four.image], columns=3,
                                            labels=["photo", "1 octave x 40 steps", "4 octaves x 10 steps"]))

# %% [markdown]
# ## 2. Octave by octave, and detail re-injection
# Each picture is the end of one octave, enlarged to the final size for display. The first is
# blurry because it was dreamt at 93 x 62 pixels. Going up an octave, the *difference* between the
# dream and the downscaled photo is enlarged and added to the photo at the new size: so the dream's
# large shapes survive, and the photo's fine detail (lost when it was shrunk) comes back sharp.

# %%
save("octave_by_octave.png", image_grid(octaves_strip, columns=len(octaves_strip),
                                        labels=[f"after octave {k + 1} ({w}x{h})" for k, (h, w) in enumerate(four.sizes)]))

# %% [markdown]
# ## 3. Which layer dreams what
# Low layers amplify strokes and small textures, middle layers patterns and eyes, deep layers
# (conv5) larger, object-like parts. The last picture amplifies a single channel of conv4_2 instead
# of the whole layer: one motif everywhere.

# %%
dreams = {layer: dream(vgg, photo, replace(default, layer=layer)).image for layer in ("conv3_3", "conv5_2")}
dreams["conv4_2"] = four.image
single = dream(vgg, photo, replace(default, layer="conv4_2", channel=42)).image
save("layers.png", labelled_rows([("layer", [dreams["conv3_3"], dreams["conv4_2"], dreams["conv5_2"], single])],
                                 labels=[["conv3_3", "conv4_2", "conv5_2", "conv4_2 channel 42"]]))

# %% [markdown]
# ## 4. Tiles, and why the roll
# For a large photo the gradient is computed tile by tile, each tile through the network on its own,
# so memory stays bounded. A pixel's gradient is then wrong wherever its receptive field crosses a
# tile border (the network sees zero padding there instead of the neighbouring tile). How far that
# reaches is the receptive field: 14 px for conv2_2, 76 px for conv4_2. The maps below show the
# difference between the tiled (96 px tiles) and the whole-image gradient: thin lines on the seams for
# conv2_2, wide bands for conv4_2 that cover more than half of the picture. Hence 512 px tiles by default,
# and the random roll, which moves the seams at every step so that no place gets the same error twice:
# the dream made with 96 px tiles and the roll still looks like the one made in one piece.

# %%
x = to_tensor(photo).data
features = network_features(vgg)
maps, shares = [], []
for layer in ("conv2_2", "conv4_2"):
    objective = dream_objective(replace(default, layer=layer))
    whole, _ = tiled_gradient(features, objective, x, tile=512)
    tiled, _ = tiled_gradient(features, objective, x, tile=96)
    difference = np.abs(tiled - whole)[0].sum(axis=0) / np.abs(whole)[0].sum(axis=0).mean()  # (H, W)
    maps.append((plt_colormap(np.clip(difference, 0, 1))[..., :3] * 255).astype(np.uint8))  # RGBA -> RGB
    shares.append(float((difference > 0.1).mean()))
    print(f"{layer}: {shares[-1]:.0%} of the pixels have a gradient error above 10% of the mean gradient")
tiles_and_roll = dream(vgg, photo, replace(default, tile_size=96)).image
save("tiles_and_roll.png", image_grid(maps + [four.image, tiles_and_roll],
                                      labels=["conv2_2: |tiled - whole|", "conv4_2: |tiled - whole|",
                                              "conv4_2 dream, one piece", "96 px tiles + roll"]))
print(f"lesson ran in {time.perf_counter() - t0:.0f} s")
