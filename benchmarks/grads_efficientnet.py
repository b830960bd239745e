"""EfficientNet-Lite0: our activations and input gradients against a PyTorch twin, layer by layer.

Copies our model's weights into a PyTorch definition of the same network and compares, for every
named layer L (stem, block0 ... block15, head, pooled, logits):

- forward: the activation at L, both frameworks run from the same input;
- backward: d(sum of logits) / d(activation at L), both frameworks started from the *same* activation
  (ours), so that the column measures the backward passes alone, not differences carried over
  from the forward pass.

Run in float32 (what the model uses) and in float64 (both sides), to tell rounding from a bug:

    python benchmarks/grads_efficientnet.py [--weights random|imagenet] [--side 224]

Needs PyTorch (a reference only; the project never imports it).

What it shows (random weights, seed 0, 224 px): in float64 both frameworks agree at every layer, to
2e-14 forward and 3e-15 backward, on the fast and the reference path. In float32 the activations
agree to 1e-5, but the input gradients differ by about 1e-2: a handful of the 6.2 million ReLU6
gates (6 in this run) fall on different sides of 0 or 6 in the two frameworks, their pre-activations
being within float32 rounding of the boundary (|x| < 3e-5 or x = 6 +- 1e-5), and the gradient
through such a unit passes on one side and is cut on the other. PyTorch's own float32 gradient is as
far from its float64 one (7e-3) as ours is (7e-3 on the fast path, 2e-3 on the reference path).
Rounding at the activation's kink, not a bug.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout, uninstalled


def torch_layers(model, torch: Any, TF: Any, dtype: Any, relu6: str = "hardtanh",
                 record: Optional[List[np.ndarray]] = None) -> Dict[str, Callable]:
    """name -> PyTorch function from the previous named layer's activation to this one's. ``relu6``:
    'hardtanh' (TF.relu6: gradient strictly inside (0, 6)) or 'clamp' (x.clamp(0, 6): gradient on the
    closed range [0, 6], as ours). ``record``: a list that receives every pre-activation of a ReLU6."""
    from models.efficientnet import same_padding

    weights = {id(p): torch.from_numpy(np.ascontiguousarray(p.numpy())).to(dtype) for p in model.parameters()}

    def conv_bn(x, layer, act=True):
        conv, bn = layer.conv, layer.bn
        k, s = conv.kernel_size[0], conv.stride
        (t, b), (l, r) = same_padding(x.shape[2], k, s), same_padding(x.shape[3], k, s)
        if (t, l) != (b, r):
            x, t, l = TF.pad(x, (l, r, t, b)), 0, 0
        x = TF.conv2d(x, weights[id(conv.weight)], None, s, (t, l), 1, conv.groups)
        x = TF.batch_norm(x, *(weights[id(getattr(bn, n))] for n in ("running_mean", "running_var", "weight", "bias")),
                          False, 0.0, bn.eps)
        if not act:
            return x
        if record is not None:
            record.append(x.detach().numpy().copy())
        return TF.relu6(x) if relu6 == "hardtanh" else x.clamp(0.0, 6.0)

    def block(b):
        def run(x):
            h = conv_bn(x, b.expand) if b.expand is not None else x
            h = conv_bn(conv_bn(h, b.depthwise), b.project, act=False)
            return h + x if b.residual else h
        return run

    layers: Dict[str, Callable] = {"stem": lambda x: conv_bn(x, model.stem)}
    layers.update({f"block{i}": block(b) for i, b in enumerate(model.blocks)})
    layers["head"] = lambda x: conv_bn(x, model.head)
    layers["pooled"] = lambda x: x.mean(dim=(2, 3))
    layers["logits"] = lambda x: TF.linear(x, weights[id(model.classifier.weight)], weights[id(model.classifier.bias)])
    return layers


def rel(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


def compare(model, x0: np.ndarray, dtype: str, torch: Any, TF: Any, reference: bool, relu6: str) -> List[str]:
    import tinygrad_cv as tg
    from tinygrad_cv import Tensor, no_grad

    tdtype = torch.float64 if dtype == "float64" else torch.float32
    for p in model.parameters():
        p.data = p.data.astype(dtype)
    layers = torch_layers(model, torch, TF, tdtype, relu6)
    names = model.layer_names
    with tg.fast_paths(not reference):
        with no_grad():
            ours = {k: v.data for k, v in model(Tensor(x0.astype(dtype)), layers=names).items()}
        theirs, x = {}, torch.from_numpy(x0).to(tdtype)
        with torch.no_grad():
            for name in names:
                x = layers[name](x)
                theirs[name] = x.numpy()
        rows = []
        inputs = [("input", x0.astype(dtype))] + [(n, ours[n]) for n in names[:-1]]
        for (start, act), name in zip(inputs, names):
            leaf = Tensor(act, requires_grad=True)
            (model.forward_from(start, leaf) if start != "input" else model(leaf)).sum().backward()
            tleaf = torch.from_numpy(np.array(act)).requires_grad_()
            t = tleaf
            for n in names[names.index(name):]:
                t = layers[n](t)
            t.sum().backward()
            g_ours, g_theirs = np.asarray(leaf.grad), tleaf.grad.numpy()
            rows.append(f"{dtype} {'ref ' if reference else 'fast'} | {name:8s} | act {rel(ours[name], theirs[name]):.1e} "
                        f"| d sum(logits) / d {start:8s}: {rel(g_ours, g_theirs):.1e} "
                        f"(|g| {np.linalg.norm(g_theirs):.2e})")
    return rows


def input_gradients(model, x0: np.ndarray, torch: Any, TF: Any) -> List[str]:
    """d sum(logits) / d input of ours (float32, fast and reference paths) and PyTorch's (float32)
    against PyTorch's in float64: how far each float32 result is from the exact one."""
    import tinygrad_cv as tg
    from tinygrad_cv import Tensor

    def theirs(dtype):
        layers, x = torch_layers(model, torch, TF, dtype), torch.from_numpy(x0).to(dtype).requires_grad_()
        t = x
        for name in model.layer_names:
            t = layers[name](t)
        t.sum().backward()
        return x.grad.numpy()

    def ours(fast):
        with tg.fast_paths(fast):
            x = Tensor(x0, requires_grad=True)
            model(x).sum().backward()
        return np.asarray(x.grad)

    exact = theirs(torch.float64)
    found = {"PyTorch float32": theirs(torch.float32), "ours float32, fast paths": ours(True),
             "ours float32, reference path": ours(False)}
    return [f"input gradient, {k} vs PyTorch float64: rel. diff {rel(v, exact):.1e}" for k, v in found.items()]


def gate_flips(model, x0: np.ndarray, torch: Any, TF: Any) -> List[str]:
    """ReLU6 gates (inside (0, 6) or not) that differ between ours and PyTorch in one float32 forward
    pass from the same input, with the pre-activations on both sides: where float32 rounding puts a
    value on the other side of 0 or 6, the gradient through that unit is passed on one side and cut
    on the other."""
    from tinygrad_cv import Tensor, no_grad
    from tinygrad_cv import functional as F

    ours_pre: List[np.ndarray] = []
    theirs_pre: List[np.ndarray] = []

    def relu6_ours(layer, x):
        layer.act = False
        try:
            pre = layer(x)
        finally:
            layer.act = True
        ours_pre.append(np.array(pre.data))
        return F.clip(pre, 0.0, 6.0)

    layers = torch_layers(model, torch, TF, torch.float32, record=theirs_pre)
    with no_grad():
        x = relu6_ours(model.stem, Tensor(x0))
        for block in model.blocks:
            h = relu6_ours(block.expand, x) if block.expand is not None else x
            h = block.project(relu6_ours(block.depthwise, h))
            x = h + x if block.residual else h
        relu6_ours(model.head, x)
        t = torch.from_numpy(x0)
        for name in model.layer_names:
            t = layers[name](t)
    rows, total = [], 0
    for i, (a, b) in enumerate(zip(ours_pre, theirs_pre)):
        differ = ((a > 0) & (a < 6)) != ((b > 0) & (b < 6))
        total += a.size
        for o, p in zip(a[differ], b[differ]):
            rows.append(f"ReLU6 {i:2d} {str(a.shape):18s}: ours {o:+.7g}, PyTorch {p:+.7g}")
    return rows + [f"{len(rows)} of {total} ReLU6 gates differ"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", default="random", help="random (seed 0) or imagenet")
    parser.add_argument("--side", type=int, default=224)
    parser.add_argument("--relu6", choices=("hardtanh", "clamp"), default="hardtanh", help="the twin's ReLU6")
    parser.add_argument("--dtypes", nargs="*", default=["float32", "float64"], help="per-layer tables to print")
    args = parser.parse_args()
    import torch
    import torch.nn.functional as TF

    from models.efficientnet import load_efficientnet

    torch.set_num_threads(1)
    x0 = np.random.default_rng(0).uniform(-1, 1, (1, 3, args.side, args.side)).astype(np.float32)
    print("\n".join(gate_flips(load_efficientnet(weights=args.weights, seed=0), x0, torch, TF)), flush=True)
    print("\n".join(input_gradients(load_efficientnet(weights=args.weights, seed=0), x0, torch, TF)), flush=True)
    for dtype in args.dtypes:
        for reference in (False, True):
            model = load_efficientnet(weights=args.weights, seed=0)
            print("\n".join(compare(model, x0, dtype, torch, TF, reference, args.relu6)), flush=True)


if __name__ == "__main__":
    main()
