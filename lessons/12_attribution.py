# %% [markdown]
# # Lesson 12 — Attribution maps, and when to trust one
#
# "Which pixels made the network say *tabby cat*?" An attribution map gives every input pixel a score
# for one class K. Four common ones, all computed by the same backward pass through
# EfficientNet-Lite0 (library code: `tinygrad_cv/vision/attribution.py`):
#
# | method | paper | the map |
# | --- | --- | --- |
# | gradient | Simonyan et al. 2014 | max over colour channels of \|d logit_K / d pixel\| |
# | SmoothGrad | Smilkov et al. 2017 | the gradient map averaged over 25 noisy copies (noise 15% of the range) |
# | integrated gradients | Sundararajan et al. 2017 | (x - black) times the mean gradient on the straight path from black to x |
# | Grad-CAM | Selvaraju et al. 2017 | ReLU(sum_c w_c A_c) on the head's 1280 channels (7 x 7), w_c = mean gradient of channel c |
#
# Maps are easy to compute and easy to misread. Adebayo et al. ("Sanity Checks for Saliency Maps",
# NeurIPS 2018) showed that some popular maps hardly change when the network's weights are replaced by
# random numbers: they show the picture (its edges), not what the model learnt. So each map here gets
# two checks before we read it: the **randomisation test** and the **deletion curve**.
#
# Run: `python lessons/12_attribution.py` (100 s on a 2-core CPU with nothing else running; the first run fetches the
# EfficientNet-Lite0 weights, 17 MB, once). Pictures go to `lessons_out/12_attribution/`.

# %%
import time

import numpy as np

from _common import output_dir

from models.efficientnet import load_efficientnet
from tinygrad_cv.vision import attribution as A
from tinygrad_cv.vision.attribution_plots import (deletion_figure, maps_figure, randomization_figure,
                                                  save_figure)
from tinygrad_cv.vision.samples import BUNDLED_PHOTOS, bundled_photo

OUT = output_dir("12_attribution")
t0 = time.perf_counter()
net = load_efficientnet()
settings = A.AttributionSettings()  # SmoothGrad 25 x 15%, integrated gradients 64 steps, Grad-CAM on 'head'


def crop(name):
    """The 224 x 224 centre crop the network sees: uint8 (H, W, 3) and (3, H, W) in [0, 1]."""
    rgb = net.deprocess(net.preprocess(bundled_photo(name)))
    return rgb, rgb.transpose(2, 0, 1).astype(np.float32) / 255.0


def save(fig, name):
    save_figure(fig, OUT / name)
    print(f"saved {OUT / name}")


# %% [markdown]
# ## 1. Four maps of two photos
# The class is the network's top one. The gradient map is speckled: the gradient of a deep network
# jumps from pixel to pixel. SmoothGrad averages that speckle away. Integrated gradients is signed
# (red pushes the class up, blue down) and follows the photo's bright, high-contrast parts, because it
# multiplies by the pixel value (x - black). Grad-CAM is coarse: it is a 7 x 7 map, enlarged.

# %%
rows, maps_of = [], {}
for name in ("chelsea", "grace_hopper.jpg"):
    rgb, picture = crop(name)
    target = A.top_class(net, picture)
    maps_of[name] = {m: A.attribute(net, picture, m, target, settings) for m in A.METHODS}
    p = A.class_probabilities(net, picture[None], target)[0]
    print(f"{name}: class {target} ({net.classes[target]}), p = {p:.2f}")
    rows.append((f"{name}: {net.classes[target]}", rgb, {m: r.map for m, r in maps_of[name].items()}))
save(maps_figure(rows, A.METHODS), "maps.png")

# %% [markdown]
# ## 2. Integrated gradients: completeness
# Integrated gradients' attributions add up to f(x) - f(black) exactly (the *completeness* axiom) when
# the path integral is exact. With a finite number of steps it is a sum, and the gap tells how good
# the sum is. Along the path from black to the photo, EfficientNet's logit does not change smoothly:
# ReLU6 units and the whole head switch on over short stretches, so the slope f'(a) has sharp peaks.
# Equally spaced steps (the paper's rule) miss them. The **adaptive** rule used by default starts with
# 17 equally spaced points and then bisects, 8 at a time, the intervals where the trapezoid estimate
# of the change of f disagrees most with the change the forward passes measured: the same trapezoid
# rule, with short steps where the slope moves. Both use 64 gradient evaluations.

# %%
rgb, picture = crop("chelsea")
target = A.top_class(net, picture)
adaptive = maps_of["chelsea"]["integrated-gradients"]
uniform = A.integrated_gradients(net, picture, target, A.AttributionSettings(step_rule="uniform"))
for result in (uniform, adaptive):
    print(f"{result.extra['step_rule']:8s} steps: sum of attributions {result.attributions.sum():8.3f}, "
          f"f(x) - f(black) = {result.logit - result.baseline_logit:8.3f}, "
          f"completeness error {100 * result.completeness_error:6.2f}%")
from matplotlib.figure import Figure  # noqa: E402

fig = Figure(figsize=(7, 3.2))
ax = fig.add_subplot(1, 1, 1)
ax.plot(adaptive.alphas, adaptive.extra["path_slopes"], ".-", markersize=4, label="adaptive points")
ax.plot(uniform.alphas, uniform.extra["path_slopes"], "x", markersize=4, label="uniform points")
ax.set_xlabel("a (0 = black, 1 = the photo)")
ax.set_ylabel("slope d f / d a")
ax.legend(fontsize=8)
ax.set_title("the integrand of integrated gradients along the path (chelsea)", fontsize=9)
save(fig, "completeness_path.png")

# %% [markdown]
# ## 3. Randomisation test, cascading (Adebayo et al. 2018, Fig. 2)
# Replace the weights layer by layer, from the classifier down to the stem, and after each step compare
# the map of the damaged network with the trained one (Spearman rank correlation of the absolute maps).
# A map that explains the *model* must fall quickly. Here for the gradient and Grad-CAM (one backward
# pass each per step: 19 steps); section 4 has all four methods on the fully random network.

# %%
cascade_methods = ("gradient", "gradcam")
layers, curves = [], {m: [] for m in cascade_methods}
for layer, damaged in A.cascading_randomization(net, seed=0):
    layers.append(layer)
    for m in cascade_methods:
        curves[m].append(A.spearman(A.rank_map(maps_of["chelsea"][m]),
                                    A.rank_map(A.attribute(damaged, picture, m, target, settings))))
print("Spearman after the last step (fully random):", {m: round(v[-1], 3) for m, v in curves.items()})
save(randomization_figure(layers, curves, f"cascading randomisation, chelsea, class {net.classes[target]}"),
     "cascading_randomization.png")

# %% [markdown]
# ## 4. Full randomisation over all bundled photos
# The same test with every layer random, on all 11 bundled photos (scikit-learn, scikit-image,
# matplotlib). Gradient and Grad-CAM with their default settings; SmoothGrad (4 noisy copies instead of
# 25) and integrated gradients (6 uniform steps instead of 64 adaptive ones) in cheap versions, to keep
# the lesson within minutes: their figures are estimates of the default maps' (the map of a cheap
# version is noisier). benchmarks/eval_attribution.py runs any settings.

# %%
cheap = A.AttributionSettings(samples=4, steps=6, step_rule="uniform")
random_net = A.fully_randomized(net, seed=0)
table = {m: [] for m in A.METHODS}
for name in BUNDLED_PHOTOS:
    _, pic = crop(name)
    k = A.top_class(net, pic)
    for m in A.METHODS:
        s = settings if m in ("gradient", "gradcam") else cheap
        table[m].append(A.spearman(A.rank_map(A.attribute(net, pic, m, k, s)),
                                   A.rank_map(A.attribute(random_net, pic, m, k, s))))
print(f"{'photo':18s} " + " ".join(f"{m[:12]:>12s}" for m in A.METHODS))
for i, name in enumerate(BUNDLED_PHOTOS):
    print(f"{name:18s} " + " ".join(f"{table[m][i]:12.3f}" for m in A.METHODS))
print(f"{'mean':18s} " + " ".join(f"{np.mean(table[m]):12.3f}" for m in A.METHODS))

# %% [markdown]
# ## 5. Deletion curve (Petsiuk et al. 2018)
# Replace the most-attributed pixels by grey first and watch the class probability. A map that found
# the evidence makes it fall faster than a random order does. The area under the curve sums it up
# (smaller is better). A caveat this run shows: grey pixels scattered at random over the whole picture
# (the random order) destroy its texture everywhere, a state the network never saw in training, and
# on chelsea that drops the probability faster than any of the four maps does, Grad-CAM's compact
# region least of all. Pixel-wise deletion against a random order compares unlike things; read the
# curves' shapes, not only the areas.

# %%
fractions = np.linspace(0, 1, 21)
deletion = {m: A.deletion_curve(net, picture, maps_of["chelsea"][m].map, target, fractions) for m in A.METHODS}
deletion["random order"] = A.deletion_curve(net, picture, None, target, fractions, seed=0)
for label, curve in deletion.items():
    print(f"deletion AUC {label:22s} {A.area_under(curve, fractions):.3f}")
save(deletion_figure(fractions, deletion, f"deletion, chelsea, class {net.classes[target]}"), "deletion.png")

# %% [markdown]
# ## 6. What the checks say
# A map passes the randomisation test when it changes once the weights are random (mean Spearman
# below 0.3 here), and the deletion test when removing its pixels first hurts the class more than a
# random order does (smaller area). The verdicts below are computed, not written in advance; read them
# with the pictures. What to expect, and why:
# - **gradient**: depends on every weight, so it should change; but single pixels with large gradients
#   are rarely the evidence, so its deletion curve may be close to random.
# - **SmoothGrad**: averaging removes speckle, and what survives the noise is partly the picture's own
#   edges, which a random network's gradients also follow.
# - **integrated gradients**: multiplies by (x - black), so every map carries the photo's bright parts
#   whatever the weights: the test most likely to fail. Its completeness holds only when the path is
#   sampled where the logit changes (section 2).
# - **Grad-CAM**: coarse (7 x 7), built from the deepest layer, the first to be randomised.
# Trust a map only after it passes, and only for the network and the pictures it was checked on.

# %%
auc = {label: A.area_under(curve, fractions) for label, curve in deletion.items()}
for m in A.METHODS:
    r = float(np.mean(table[m]))
    print(f"{m:22s} randomisation: mean Spearman {r:.3f} ({'passes' if r < 0.3 else 'FAILS'}); "
          f"deletion AUC {auc[m]:.3f} vs random {auc['random order']:.3f} "
          f"({'better' if auc[m] < auc['random order'] else 'not better'} than random, chelsea)")
print(f"lesson ran in {time.perf_counter() - t0:.0f} s")
