# %% [markdown]
# # Lesson 1 — Reverse-mode automatic differentiation
#
# A neural network is a function built from small pieces: add, multiply, matmul, tanh...
# Reverse-mode autodiff ("backpropagation") gets the gradient of a scalar loss with respect to
# *every* input in one backward sweep that costs about as much as the forward pass.
#
# In tinygrad_cv each piece is a `Function` with a `forward` and, right below it, a `backward`
# (open `tinygrad_cv/functional/arith.py`). Running ops records a graph; `loss.backward()` visits it
# in reverse topological order (`tinygrad_cv/tensor.py`).
#
# Run: `python lessons/01_autograd.py` (a few seconds); figures go to `lessons_out/01_autograd/`.

# %%
import numpy as np
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from _common import output_dir, save_figure

import tinygrad_cv as tg
import tinygrad_cv.functional as F
from tinygrad_cv import Tensor, nn, optim
from tinygrad_cv.tensor import topological_order

OUT = output_dir("01_autograd")

# %% [markdown]
# ## 1. A tiny expression, by hand and by the engine
# f(x, y) = (x * y + x) * tanh(y). By the product and chain rules:
# df/dx = (y + 1) tanh(y), df/dy = x tanh(y) + (x y + x)(1 - tanh(y)^2).

# %%
x = Tensor(np.array(1.5), requires_grad=True)
y = Tensor(np.array(-0.5), requires_grad=True)
f = (x * y + x) * F.tanh(y)
f.backward()
t = np.tanh(-0.5)
print("engine  df/dx, df/dy:", x.grad, y.grad)
print("by hand df/dx, df/dy:", (-0.5 + 1) * t, 1.5 * t + (1.5 * -0.5 + 1.5) * (1 - t**2))

# %% [markdown]
# ## 2. The order of the backward pass
# The engine sorts the graph so that every node is visited after all the nodes that consume it.
# `x` is used twice (in `x*y` and in `+ x`): its gradient is the sum over both paths.

# %%
x = Tensor(np.array(1.5), requires_grad=True)
y = Tensor(np.array(-0.5), requires_grad=True)
xy = x * y
s = xy + x
th = F.tanh(y)
f = s * th
names = {id(x): "x", id(y): "y", id(xy): "x*y", id(s): "x*y + x", id(th): "tanh(y)", id(f): "f"}
order = list(reversed(topological_order(f)))
print("backward visits:", " -> ".join(names[id(n)] for n in order))

fig, ax = plt.subplots(figsize=(7, 3))
pos = {"x": (0, 1), "y": (0, 0), "x*y": (1, 1.55), "tanh(y)": (1, -0.2), "x*y + x": (2, 1), "f": (3, 0.5)}
edges = [("x", "x*y"), ("y", "x*y"), ("x*y", "x*y + x"), ("x", "x*y + x"), ("y", "tanh(y)"), ("x*y + x", "f"), ("tanh(y)", "f")]
for a, b in edges:
    ax.annotate("", xy=pos[b], xytext=pos[a], arrowprops=dict(arrowstyle="-|>", color="grey", shrinkA=22, shrinkB=22))
for step, node in enumerate(order):
    name = names[id(node)]
    ax.text(*pos[name], f"{name}\nbackward #{step + 1}", ha="center", va="center",
            bbox=dict(boxstyle="round", fc="lightyellow" if node.requires_grad else "white"))
ax.set_xlim(-0.5, 3.5); ax.set_ylim(-0.7, 1.9); ax.axis("off")
ax.set_title("Forward edges; numbers give the order of the backward pass")
save_figure(fig, OUT, "graph_order.png")

# %% [markdown]
# ## 3. Checking gradients numerically
# A central difference (f(x+h) - f(x-h)) / 2h approximates each partial derivative with error O(h^2).
# `tg.gradcheck` compares it with the engine's answer for every input element, in float64.

# %%
rng = np.random.default_rng(0)
a = rng.standard_normal((3, 4))
b = rng.standard_normal((4, 2))
print("gradcheck softmax(a @ b):", tg.gradcheck(lambda a, b: F.softmax(a @ b, axis=1), [a, b]))

# %% [markdown]
# ## 4. A tiny MLP learns a toy problem
# Two interleaved half-moons are not linearly separable; a 2-16-16-1 MLP with tanh separates them.

# %%
n = 200
angle = rng.uniform(0, np.pi, n)
upper = np.stack([np.cos(angle), np.sin(angle)], 1)
lower = np.stack([1 - np.cos(angle), 0.5 - np.sin(angle)], 1)
X = np.concatenate([upper, lower]).astype(np.float32) + rng.normal(0, 0.1, (2 * n, 2)).astype(np.float32)
Y = np.concatenate([np.zeros(n), np.ones(n)]).astype(np.float32)[:, None]

model = nn.Sequential(nn.Linear(2, 16, rng=rng), nn.Tanh(), nn.Linear(16, 16, rng=rng), nn.Tanh(), nn.Linear(16, 1, rng=rng))
opt = optim.Adam(model.parameters(), lr=0.02)
losses = []
for step in range(300):
    opt.zero_grad()
    loss = F.binary_cross_entropy_with_logits(model(Tensor(X)), Y)
    loss.backward()
    opt.step()
    losses.append(loss.item())
with tg.no_grad():
    accuracy = ((model(Tensor(X)).numpy() > 0) == (Y > 0.5)).mean()
print(f"final loss {losses[-1]:.4f}, training accuracy {accuracy:.1%}")

# %%
gx, gy = np.meshgrid(np.linspace(-1.5, 2.5, 150), np.linspace(-1, 1.5, 120))
with tg.no_grad():
    logits = model(Tensor(np.stack([gx.ravel(), gy.ravel()], 1).astype(np.float32))).numpy()
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
ax1.plot(losses)
ax1.set_xlabel("step"); ax1.set_ylabel("binary cross-entropy"); ax1.set_yscale("log"); ax1.set_title("training loss")
ax2.contourf(gx, gy, logits.reshape(gx.shape) > 0, alpha=0.3, cmap="coolwarm")
ax2.scatter(X[:, 0], X[:, 1], c=Y[:, 0], s=8, cmap="coolwarm")
ax2.set_title(f"decision boundary (accuracy {accuracy:.0%})")
save_figure(fig, OUT, "mlp_moons.png")
