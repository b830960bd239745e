# %% [markdown]
# # Lesson 9 — Inside an ImageNet classifier: EfficientNet-Lite0
#
# Lessons 4 and 5 looked inside VGG16's convolutions. VGG16's offline weights have no classifier, so
# the last units of the lecture's list — a dense neuron, a hidden layer, the neuron of a class
# probability — need another network. EfficientNet-Lite0 (Tan & Le 2019, the mobile "Lite" variant) is
# a real ImageNet classifier of 4.7M parameters (VGG16: 138M) that arrives offline: its weights come
# from the package index on first use (`models/efficientnet.py`, `tinygrad_cv/io/efficientnet_weights.py`).
#
# 1. classify the bundled photos;
# 2. what batch normalisation does, in training and at inference, and why it folds into the convolution;
# 3. what a depthwise convolution is and what it saves;
# 4. the picture of a class: with random crops a picture a person recognises, without them adversarial
#    noise that only works pixel for pixel;
# 5. a dense unit (one of the 1280 pooled features) and a whole hidden layer.
#
# Run: `python lessons/09_inside_a_classifier.py` (about 2 minutes on 2 cores). Pictures go to
# `lessons_out/09_inside_a_classifier/`.

# %%
import time
from dataclasses import replace

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from PIL import Image

from _common import output_dir, save_figure

import tinygrad_cv as tg
import tinygrad_cv.functional as F
from models.efficientnet import load_efficientnet
from tinygrad_cv import Tensor, nn, no_grad
from tinygrad_cv.vision import optvis
from tinygrad_cv.vision.image import save_image
from tinygrad_cv.vision.samples import sample_photo
from tinygrad_cv.vision.sheets import image_grid

OUT = output_dir("09_inside_a_classifier")
t0 = time.perf_counter()
net = load_efficientnet()  # first run: fetched from the package index and cached (17 MB)
print(net.source)


def save(name, picture):
    save_image(OUT / name, picture)
    print(f"saved {OUT / name}")


def probability(picture, k):
    """p(class k) for a 224 px picture, as it is (no resize, no crop)."""
    with no_grad():
        return float(F.softmax(net(net.preprocess(picture, crop=False)), axis=1).data[0, k])


def crop_robustness(picture, k, crops=12, seed=0):
    """Mean p(class k) over random square crops of 60-90% of the side, every other one flipped."""
    rng = np.random.default_rng(seed)
    side, ps = picture.shape[0], []
    for i in range(crops):
        s = int(side * rng.uniform(0.6, 0.9))
        top, left = rng.integers(0, side - s + 1, size=2)
        crop = np.asarray(Image.fromarray(picture[top:top + s, left:left + s]).resize((224, 224), Image.BICUBIC))
        ps.append(probability(crop[:, ::-1] if i % 2 else crop, k))
    return float(np.mean(ps))


# %% [markdown]
# ## 1. Classify the bundled photos
# `net.preprocess` resizes the short side to 256 (bicubic), crops the central 224 x 224 and maps pixels
# by (x - 127) / 128, the convention the weights were trained with. `net(x)` returns the 1000 logits;
# softmax turns them into probabilities.

# %%
from matplotlib import cbook

photos = {"china.jpg": sample_photo("china.jpg"), "flower.jpg": sample_photo("flower.jpg")}
with cbook.get_sample_data("grace_hopper.jpg") as f:
    photos["grace_hopper.jpg"] = np.asarray(Image.open(f).convert("RGB"))
fig, axes = plt.subplots(1, len(photos), figsize=(4 * len(photos), 4.4))
for ax, (name, picture) in zip(axes, photos.items()):
    top = net.predict(picture, top=3)
    print(name, "  ".join(f"{cls} ({k}) {p:.2f}" for k, cls, p in top))
    ax.imshow(picture)
    ax.set_title("\n".join(f"{cls} {p:.2f}" for _, cls, p in top), fontsize=9)
    ax.axis("off")
save_figure(fig, OUT, "1_classified_photos.png")

# %% [markdown]
# ## 2. Batch normalisation
# After every convolution of this network sits a BatchNorm layer (Ioffe & Szegedy 2015). In training
# it normalises each channel by the mean and variance *of the current batch*, then scales and shifts
# it by learned numbers; it also keeps running averages of those statistics. At inference (eval mode)
# it uses the running averages, so it is a fixed per-channel map y = x * scale + shift — which can be
# folded into the convolution before it (`ConvBN.folded` in models/efficientnet.py does exactly that).
#
# Below: the stem convolution's 32 channels on china.jpg, before and after its BatchNorm. Before,
# every channel has its own mean and spread; after (eval mode), they are comparable.

# %%
x = net.preprocess(photos["china.jpg"])
stem = net.stem
with no_grad():
    raw = F.conv2d(F.pad(x, ((0, 0), (0, 0), (0, 1), (0, 1))), stem.conv.weight, None, 2).data  # SAME, stride 2
    normalised = stem.bn(Tensor(raw)).data
    folded_w, folded_b = stem.folded()
    folded = F.conv2d(F.pad(x, ((0, 0), (0, 0), (0, 1), (0, 1))), folded_w, folded_b, 2).data
print(f"folded conv = conv + BatchNorm: max difference {np.abs(folded - normalised).max():.2e}")
fig, axes = plt.subplots(1, 2, figsize=(11, 3.2), sharey=False)
for ax, values, title in ((axes[0], raw, "stem conv output"), (axes[1], normalised, "after BatchNorm (eval)")):
    ax.errorbar(np.arange(32), values[0].mean(axis=(1, 2)), yerr=values[0].std(axis=(1, 2)), fmt="o", ms=3)
    ax.set_title(title + ": mean +- std per channel")
    ax.set_xlabel("channel")
save_figure(fig, OUT, "2_batchnorm.png")

# Training mode: the batch's own statistics. On a batch of 4 crops each channel comes out with mean 0 and
# variance 1 (before the learned scale and shift), and the running averages move towards the batch's.
bn = nn.BatchNorm2d(32, eps=1e-3)
crops = Tensor(np.concatenate([raw[:, :, i * 20:i * 20 + 48, i * 20:i * 20 + 48] for i in range(4)]))
y = bn(crops).data
print(f"training mode: channel means within {np.abs(y.mean(axis=(0, 2, 3))).max():.1e} of 0, variances "
      f"{y.var(axis=(0, 2, 3)).min():.3f}..{y.var(axis=(0, 2, 3)).max():.3f}; running_mean[:3] now "
      f"{np.round(bn.running_mean.data[:3], 3)}")

# %% [markdown]
# ## 3. Depthwise convolution
# A dense 3x3 convolution from C to C channels has 9 C^2 weights: every output channel looks at every
# input channel. A *depthwise* convolution (`groups = C`) filters each channel on its own: 9 C weights.
# MobileNet and EfficientNet mix channels separately with 1x1 convolutions (C^2 weights), so the pair
# "depthwise + pointwise" costs 9 C + C^2 instead of 9 C^2 — about 8x fewer for C = 144.
#
# `F.conv2d(x, w, groups=G)` computes any grouping; groups = C is the depthwise case. Below: the grouped
# convolution against C separate one-channel convolutions, and the reference path (im2col per group)
# against the fast path (one multiply-add per kernel tap, kernels/fast/depthwise.py).

# %%
rng = np.random.default_rng(0)
C = 144
xs = rng.standard_normal((1, C, 56, 56)).astype(np.float32)
w = rng.standard_normal((C, 1, 3, 3)).astype(np.float32)
grouped = F.conv2d(Tensor(xs), Tensor(w), padding=1, groups=C).data
one_by_one = np.concatenate([F.conv2d(Tensor(xs[:, c:c + 1]), Tensor(w[c:c + 1]), padding=1).data for c in range(C)], axis=1)
print(f"groups=C equals {C} separate convolutions: max difference {np.abs(grouped - one_by_one).max():.1e}")
print(f"weights for C = {C}: dense 3x3 {9 * C * C:,}; depthwise 3x3 + 1x1 {9 * C + C * C:,}")
for fast in (False, True):
    with tg.fast_paths(fast):
        start = time.perf_counter()
        for _ in range(5):
            F.conv2d(Tensor(xs), Tensor(w), padding=1, groups=C)
        print(f"{'fast' if fast else 'reference'} path: {(time.perf_counter() - start) / 5 * 1e3:.1f} ms per call")

# %% [markdown]
# ## 4. The picture of a class
# Start from noise and climb the gradient of the class's log-probability with respect to the pixels
# (Simonyan et al. 2014). Without any precaution the optimiser finds *adversarial* noise: a pattern of
# tiny pixel changes the network reads as the class, which means nothing to us and stops working as
# soon as the picture is cropped or flipped. With a Fourier parametrisation and, at every step, two
# random crops of 50-100% of the side (flipped half the time) scored together (optvis.CLASS_SETTINGS),
# the picture has to show the class at any position and scale — and then it looks like it.
#
# Each picture below is judged on the saved pixels and on random crops of 60-90% with flips.

# %%
classes = [130, 323]  # flamingo, monarch butterfly
noise = replace(optvis.CLASS_SETTINGS, param="pixel", transforms=False, decorrelate=False, blur_every=0, views=1,
                crops=None, steps=60, lr=0.02)
runs = [(classes[0], "no transforms", noise), (classes[0], "default", optvis.CLASS_SETTINGS),
        (classes[1], "default", optvis.CLASS_SETTINGS)]  # one noise picture is enough to make the point
pictures, labels = [], []
for k, name, settings in runs:
    start = time.perf_counter()
    picture = optvis.visualize(net, optvis.class_log_prob(k), settings).images[0]
    p, robust = probability(picture, k), crop_robustness(picture, k)
    print(f"{net.classes[k]}, {name}: p = {p:.3f} as saved, {robust:.3f} on crops and flips "
          f"({time.perf_counter() - start:.0f} s)")
    pictures.append(picture)
    labels.append(f"{net.classes[k][:14]} {name}: {p:.2f} / {robust:.2f}")
save("4_classes.png", image_grid(pictures, columns=3, labels=labels))

# %% [markdown]
# ## 5. A dense unit and a hidden layer
# The 1280 pooled features are the network's last hidden layer: the classifier is a weighted sum of
# them. One of them is a "dense neuron"; below, the picture that drives feature 407 up (its channel
# mean in the head, averaged over positions). Then a whole hidden layer: maximising the mean square of
# block 8's output amplifies whatever that layer responds to at all — Deep Dream's objective (lesson 5)
# from noise.

# %%
unit_settings = replace(optvis.EFFICIENTNET_SETTINGS, steps=96)
dense = optvis.visualize(net, optvis.channel("pooled", 407), unit_settings).images[0]
layer = optvis.visualize(net, optvis.layer_energy("block8"), unit_settings).images[0]
save("5_dense_unit_and_layer.png", image_grid([dense, layer], labels=["pooled feature 407", "block8 (whole layer)"]))
top = net.predict(dense, top=3)
print("the dense unit's picture is classified as", ", ".join(f"{c} {p:.2f}" for _, c, p in top))
print(f"lesson 9 done in {time.perf_counter() - t0:.0f} s")
