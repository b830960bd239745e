# %% [markdown]
# # Lesson 2 — Convolution: a loop, one matrix product, and its backward pass
#
# A convolutional layer slides small filters over an image and takes a dot product at every
# position. This lesson builds it three times: as the obvious loop, as **im2col + one matrix
# product** (how tinygrad_cv and most CPU frameworks compute it), and backwards, to see that the
# gradient of a convolution is again a convolution. Then we look at what filters *do*: hand-made
# ones (Sobel, blur, sharpen) on a photo, feature maps, and the filters VGG16 learned on ImageNet.
#
# Read along: `tinygrad_cv/kernels/geometry.py`, `tinygrad_cv/kernels/im2col.py`,
# `tinygrad_cv/kernels/conv.py`, `tinygrad_cv/functional/conv.py`; for section 7,
# `tinygrad_cv/functional/conv_fast.py` and `tinygrad_cv/kernels/fast/`.
#
# Run: `python lessons/02_convolution.py [--out FOLDER]` (seconds, plus a one-time fetch of the VGG16
# weights for section 6 if they are not cached yet). Figures go to `lessons_out/02_convolution/`
# (or `$TINYGRAD_CV_LESSON_OUT/02_convolution/`, or FOLDER).

# %%
import argparse
import time
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from sklearn.datasets import load_sample_image

from _common import output_dir, save_figure

import tinygrad_cv as tg
import tinygrad_cv.functional as F
from tinygrad_cv import Tensor, optim
from tinygrad_cv.kernels.conv import conv2d_forward, conv2d_grad_input
from tinygrad_cv.kernels.im2col import im2col
from tinygrad_cv.nn.conv import Conv2d

parser = argparse.ArgumentParser(description="Lesson 2: convolution")
parser.add_argument("--out", default=None, help="folder for the figures")
args, _ = parser.parse_known_args()  # tolerate a notebook kernel's own arguments
OUT = Path(args.out) if args.out else output_dir("02_convolution")
OUT.mkdir(parents=True, exist_ok=True)
print(f"figures go to {OUT}")

# The photo: a temple in China, bundled with scikit-learn (so it works offline). Grey, half size.
photo = load_sample_image("china.jpg")  # (427, 640, 3) uint8
grey = photo.astype(np.float32).mean(axis=2)[::2, ::2] / 255.0  # (214, 320) in [0, 1]

# %% [markdown]
# ## 1. Convolution as a loop
# For an input x of shape (N, C, H, W) and filters w of shape (O, C, KH, KW), each output pixel is
#
#     y[n, o, i, j] = sum over c, kh, kw of  w[o, c, kh, kw] * x[n, c, i + kh, j + kw]
#
# (deep learning's "convolution" is a cross-correlation: the filter is not flipped). Written out:


# %%
def conv2d_loop(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The definition, one output pixel at a time (stride 1, no padding)."""
    N, C, H, W = x.shape
    O, _, KH, KW = w.shape
    y = np.zeros((N, O, H - KH + 1, W - KW + 1), dtype=x.dtype)
    for n in range(N):
        for o in range(O):
            for i in range(H - KH + 1):
                for j in range(W - KW + 1):
                    y[n, o, i, j] = np.sum(w[o] * x[n, :, i:i + KH, j:j + KW])
    return y


rng = np.random.default_rng(0)
x_small = rng.standard_normal((1, 3, 48, 48)).astype(np.float32)
w_small = rng.standard_normal((8, 3, 3, 3)).astype(np.float32)
start = time.perf_counter()
y_loop = conv2d_loop(x_small, w_small)
t_loop = time.perf_counter() - start
start = time.perf_counter()
y_fast = F.conv2d(Tensor(x_small), Tensor(w_small)).numpy()
t_fast = time.perf_counter() - start
print(f"loop: {t_loop * 1e3:.1f} ms, im2col + GEMM: {t_fast * 1e3:.2f} ms, "
      f"max difference {np.abs(y_loop - y_fast).max():.1e}")

# %% [markdown]
# ## 2. im2col: every window becomes a column
# The loop does (H-KH+1)(W-KW+1) small dot products per filter. im2col copies each window into one
# column of a matrix, so that *all* dot products of *all* filters become one matrix product:
#
#     cols = im2col(x)                  # (C*KH*KW, N*OH*OW)
#     y    = w.reshape(O, -1) @ cols    # (O, N*OH*OW), then reshaped to (N, O, OH, OW)
#
# A matrix product is what BLAS libraries run near the machine's peak speed, which is why this is
# hundreds of times faster than the loop above. The price is memory: every pixel is copied KH*KW
# times (9x for a 3x3 kernel). Here is the matrix for a tiny 1-channel 5x5 image:

# %%
tiny = np.arange(25, dtype=np.float32).reshape(1, 1, 5, 5)
cols = im2col(tiny, 3)  # (9, 9): nine 3x3 windows
fig, axes = plt.subplots(1, 2, figsize=(9, 4))
axes[0].imshow(tiny[0, 0], cmap="viridis")
for (i, j), v in np.ndenumerate(tiny[0, 0]):
    axes[0].text(j, i, int(v), ha="center", va="center", color="w")
axes[0].set_title("image (5x5)")
axes[1].imshow(cols, cmap="viridis")
for (i, j), v in np.ndenumerate(cols):
    axes[1].text(j, i, int(v), ha="center", va="center", color="w", fontsize=8)
axes[1].set_title("im2col: column k = the window under output pixel k")
axes[1].set_xlabel("output pixel (i, j), row-major"); axes[1].set_ylabel("tap (kh, kw)")
save_figure(fig, OUT, "im2col.png")

w_one = rng.standard_normal((4, 1, 3, 3)).astype(np.float32)
by_hand = (w_one.reshape(4, 9) @ cols).reshape(1, 4, 3, 3)
print("w @ im2col(x) equals conv2d:", np.allclose(by_hand, F.conv2d(Tensor(tiny), Tensor(w_one)).numpy()))

# %% [markdown]
# ## 3. Hand-made filters on a photo
# Before networks learned their filters, people designed them. A Sobel filter responds to
# horizontal or vertical change in brightness (edges); a Gaussian averages (blurs); a Laplacian
# responds to change in every direction; "sharpen" adds the Laplacian's detail back to the image.

# %%
sobel_x = np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]], np.float32)
g1d = np.exp(-0.5 * (np.arange(-3, 4) / 1.5) ** 2)
filters = {
    "Sobel x (vertical edges)": sobel_x,
    "Sobel y (horizontal edges)": sobel_x.T.copy(),
    "Gaussian blur 7x7": (np.outer(g1d, g1d) / np.outer(g1d, g1d).sum()).astype(np.float32),
    "Laplacian": np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], np.float32),
    "sharpen": np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], np.float32),
}
image = Tensor(grey[None, None])  # (1, 1, H, W)
responses = {}
for name, k in filters.items():
    pad = k.shape[0] // 2  # keeps the size
    responses[name] = F.conv2d(image, Tensor(k[None, None]), padding=pad).numpy()[0, 0]
gx, gy = responses["Sobel x (vertical edges)"], responses["Sobel y (horizontal edges)"]
responses["edge strength sqrt(gx^2 + gy^2)"] = np.sqrt(gx**2 + gy**2)

fig, axes = plt.subplots(2, 4, figsize=(16, 6.5))
axes[0, 0].imshow(grey, cmap="gray", vmin=0, vmax=1); axes[0, 0].set_title("input (grey)")
for ax, (name, r) in zip(axes.flat[1:], responses.items()):
    if name.startswith(("Sobel", "Laplacian")):  # signed responses: red positive, blue negative
        top = np.percentile(np.abs(r), 99.5)  # the zero padding makes the border a strong "edge"
        ax.imshow(r, cmap="RdBu_r", vmin=-top, vmax=top)
    else:
        ax.imshow(r, cmap="gray", vmin=0, vmax=np.percentile(r, 99.5) if name.startswith("edge") else 1)
    ax.set_title(name)
for ax in axes.flat:
    ax.axis("off")
save_figure(fig, OUT, "hand_made_filters.png")

# %% [markdown]
# ## 4. The backward pass
# For a loss L(y), backpropagation needs two things from a convolution layer:
#
# - **dL/dw** (to train the filters): each weight met many input pixels, one per output pixel, so
#   its gradient is a sum over output pixels of dL/dy times the input under it. With X = im2col(x)
#   and G = dL/dy as an (O, N*OH*OW) matrix: dW = G @ X^T, again one matrix product.
# - **dL/dx** (to pass the gradient on): each input pixel fed every output whose window covered
#   it. dcols = W^T @ G gives the gradient of every window copy; **col2im**, the adjoint of im2col,
#   adds the copies back onto the pixel they came from.
#
# That second step is a *transposed convolution*; for stride 1 it equals an ordinary convolution of
# dL/dy with the filter rotated by 180 degrees, input and output channels swapped: x[i] fed
# y[i - kh] through w[kh], so dx[i] = sum over kh of dL/dy[i - kh] w[kh], a correlation of dL/dy
# (zero-padded by KH - 1) with w reversed. tinygrad_cv uses col2im, which works for every stride and
# whose buffer has C*KH*KW rows where the flipped convolution's has O*KH*KW. Check both claims:


# %%
def conv2d_grad_input_flipped(g: np.ndarray, w: np.ndarray) -> np.ndarray:
    """dL/dx of a stride-1, unpadded convolution, as a convolution of dL/dy with the flipped kernel."""
    KH, KW = w.shape[2:]
    w_flipped = np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))  # (C, O, KH, KW)
    return conv2d_forward(g, w_flipped, None, padding=(KH - 1, KW - 1))


x = rng.standard_normal((1, 2, 9, 8))
w = rng.standard_normal((3, 2, 3, 3))
g = rng.standard_normal((1, 3, 7, 6))  # dL/dy for the 7x6 output
dx_col2im = conv2d_grad_input(g, w, x.shape)
dx_flipped = conv2d_grad_input_flipped(g, w)
dx_transposed = F.conv_transpose2d(Tensor(g), Tensor(w)).numpy()
print("col2im == flipped-kernel conv == conv_transpose2d:",
      np.allclose(dx_col2im, dx_flipped), np.allclose(dx_col2im, dx_transposed))
print("float64 central differences agree with conv2d's backward:",
      tg.gradcheck(lambda x, w: F.conv2d(x, w, stride=2, padding=1), [x[:, :, :5, :5], w]))

# %% [markdown]
# dL/dw in action: a layer that starts random learns the Sobel filter from (image, edges) pairs.

# %%
patches = Tensor(np.stack([grey[r:r + 32, c:c + 32] for r, c in rng.integers(0, 180, (16, 2))])[:, None])
targets = F.conv2d(patches, Tensor(sobel_x[None, None]), padding=1)
layer = Conv2d(1, 1, 3, padding=1, rng=np.random.default_rng(1))
opt = optim.Adam(layer.parameters(), lr=0.05)
snapshots, losses = {}, []
for step in range(301):
    opt.zero_grad()
    loss = F.mse_loss(layer(patches), targets)
    loss.backward()
    opt.step()
    losses.append(loss.item())
    if step in (0, 30, 100, 300):
        snapshots[step] = layer.weight.numpy()[0, 0].copy()

fig, axes = plt.subplots(1, 6, figsize=(17, 3))
axes[0].semilogy(losses); axes[0].set_title("MSE to Sobel output"); axes[0].set_xlabel("step")
for ax, (step, k) in zip(axes[1:], snapshots.items()):
    ax.imshow(k, cmap="RdBu_r", vmin=-2, vmax=2); ax.set_title(f"weights, step {step}"); ax.axis("off")
axes[5].imshow(sobel_x, cmap="RdBu_r", vmin=-2, vmax=2); axes[5].set_title("Sobel x"); axes[5].axis("off")
save_figure(fig, OUT, "learning_sobel.png")

# %% [markdown]
# ## 5. Feature maps
# A layer with many filters produces one *feature map* per filter. Stacking conv, ReLU and max
# pooling shrinks the maps and widens what each pixel "sees". With random filters (below) the maps
# are random mixtures of edges and blobs; section 6 shows the same with trained ones.


# %%
def grid(maps: np.ndarray, columns: int = 8) -> np.ndarray:
    """(K, H, W) maps -> one image with the maps tiled, each scaled to [0, 1], 1-pixel gaps."""
    K, H, W = maps.shape
    rows = -(-K // columns)
    out = np.ones((rows * (H + 1) - 1, columns * (W + 1) - 1))
    for k, m in enumerate(maps):
        r, c = divmod(k, columns)
        span = m.max() - m.min()
        out[r * (H + 1):r * (H + 1) + H, c * (W + 1):c * (W + 1) + W] = (m - m.min()) / (span if span > 0 else 1)
    return out


rgb = Tensor((photo[::2, ::2].astype(np.float32) / 255.0).transpose(2, 0, 1)[None])  # (1, 3, 214, 320)
random_layer = Conv2d(3, 16, 3, padding=1, rng=np.random.default_rng(2))
maps = F.max_pool2d(F.relu(random_layer(rgb)), 2).numpy()[0]
fig, ax = plt.subplots(figsize=(14, 4))
ax.imshow(grid(maps), cmap="gray"); ax.axis("off")
ax.set_title("16 feature maps of a random 3x3 conv + ReLU + 2x2 max pool")
save_figure(fig, OUT, "feature_maps_random.png")

# %% [markdown]
# ## 6. What VGG16 learned
# VGG16's first layer has 64 filters of shape 3x3x3 (RGB). Shown as tiny colour images, many are
# edge and colour-contrast detectors, close cousins of the hand-made filters above. Their feature
# maps on the photo follow. (This needs the pretrained weights: see models/vgg.py and
# `tinygrad-cv weights`.)

# %%
try:
    from models.vgg import load_vgg

    vgg = load_vgg("vgg16")
except Exception as exc:  # not importable yet, or the weights are not available offline
    vgg = None
    print(f"note: skipping VGG16's filters ({type(exc).__name__}: {exc})")

if vgg is not None:
    w1 = vgg.conv1_1.weight.numpy()  # (64, 3, 3, 3)
    if vgg.convention.channel_order == "BGR":  # the original Caffe weights read BGR images
        w1 = w1[:, ::-1]
    filters_rgb = w1.transpose(0, 2, 3, 1)  # (64, KH, KW, RGB)
    filters_rgb = (filters_rgb - filters_rgb.min()) / (filters_rgb.max() - filters_rgb.min())
    fig, axes = plt.subplots(4, 16, figsize=(16, 4.4))
    for ax, f in zip(axes.flat, filters_rgb):
        ax.imshow(f, interpolation="nearest"); ax.axis("off")
    fig.suptitle("VGG16 conv1_1: 64 filters, 3x3 RGB (one colour scale for all)")
    save_figure(fig, OUT, "vgg16_conv1_1_filters.png")

    with tg.no_grad():
        feats = vgg(vgg.preprocess(photo[::2, ::2]), layers=["conv1_1", "conv2_1"])
    for name, columns in (("conv1_1", 16), ("conv2_1", 16)):
        fmaps = feats[name].numpy()[0, :32]
        fig, ax = plt.subplots(figsize=(16, 3.2 if name == "conv1_1" else 2))
        ax.imshow(grid(fmaps, columns), cmap="gray"); ax.axis("off")
        ax.set_title(f"VGG16 {name}: first 32 feature maps of the photo (after ReLU)")
        save_figure(fig, OUT, f"vgg16_{name}_maps.png")

# %% [markdown]
# ## 7. The same convolution, faster
# Everything above is the *reference path*: im2col copies every window (9x the input for a 3x3
# kernel), then one matrix product. tinygrad_cv also has a second chapter, the CPU *fast path*
# (`functional/conv_fast.py` over `kernels/fast/`), for the one geometry VGG uses everywhere: 3x3,
# stride 1, padding 1. It keeps activations zero-padded and channels-last, so the nine taps of the
# kernel become nine matrix products over shifted blocks of rows (no im2col copy at all), uses
# Winograd's F(4x4, 3x3) (4x fewer multiplications; F(2x2, 3x3), 2.25x fewer, on small images) from
# 128 channels on (from 32 for the gradient), and runs its blocks on every core. `tg.fast_paths(False)` switches every op back to the reference path.
#
# Same numbers? Same layer, both paths, forward and backward to the input, on a VGG16 layer
# (conv3_1's shape at 256 px: 128 -> 256 channels, 64x64 pixels; the real weights when they are here):

# %%
if vgg is not None:
    w_layer, b_layer = vgg.conv3_1.weight.data, vgg.conv3_1.bias.data
else:
    w_layer = rng.standard_normal((256, 128, 3, 3)).astype(np.float32) * 0.03
    b_layer = np.zeros(256, np.float32)
x_layer = np.maximum(rng.standard_normal((1, 128, 64, 64)), 0).astype(np.float32)


def layer_forward_backward() -> tuple:
    xt = Tensor(x_layer, requires_grad=True)
    y = F.conv2d_relu(xt, Tensor(w_layer), Tensor(b_layer), padding=1)
    y.sum().backward()
    return y.numpy(), xt.grad


def best_time(fn, repeats: int = 5) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


timings, results = {}, {}
for fast in (False, True):
    with tg.fast_paths(fast):
        results[fast] = layer_forward_backward()
        timings[fast] = best_time(layer_forward_backward)
y_error = np.abs(results[True][0] - results[False][0]).max() / np.abs(results[False][0]).max()
g_error = np.abs(results[True][1] - results[False][1]).max() / np.abs(results[False][1]).max()
print(f"relative difference, fast vs reference: output {y_error:.1e}, input gradient {g_error:.1e}")
print(f"forward + backward, best of 5: reference {timings[False] * 1e3:.0f} ms, fast {timings[True] * 1e3:.0f} ms "
      f"({timings[False] / timings[True]:.1f}x)")

fig, ax = plt.subplots(figsize=(6, 2.2))
ax.barh(["reference: im2col + GEMM", "fast: Winograd, channels-last, threads"],
        [timings[False] * 1e3, timings[True] * 1e3], color=["tab:gray", "tab:orange"])
ax.set_xlabel("ms, forward + backward to the input")
ax.set_title(f"one VGG16 layer (128->256, 64x64): same numbers to {max(y_error, g_error):.0e}")
save_figure(fig, OUT, "reference_vs_fast.png")
