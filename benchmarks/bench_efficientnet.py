"""EfficientNet-Lite0 at 224 px: forward, and forward + backward to the input, ours next to PyTorch.

A case of benchmarks/run.py (``--only f``); also runs alone for a quick look (and a profile):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_efficientnet.py [--profile]

PyTorch computes the same network from the same weights: a small definition in its own layers below
(SAME padding by F.pad where it is asymmetric, BatchNorm in eval mode with eps 1e-3, ReLU6), under
``torch.no_grad()`` for the forward case, as a user of either framework would run inference.
Timing as run.py's (``median_times``): the two take turns, each timed call after a pause and
untimed calls of its own, with as many PyTorch threads as NumPy's BLAS has.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout, uninstalled


def lite0_flops(side: int = 224) -> float:
    """2 x multiply-adds of Lite0's convolutions and classifier for one side x side image (0.39 GFLOP at 224)."""
    from models.efficientnet import STAGES

    flops, size, channels = 0.0, math.ceil(side / 2), 32
    flops += 2 * 3 * 32 * 9 * size * size
    for repeats, kernel, stride, expand, out in STAGES:
        for r in range(repeats):
            hidden = channels * expand
            if expand != 1:
                flops += 2 * channels * hidden * size * size
            size = math.ceil(size / (stride if r == 0 else 1))
            flops += 2 * hidden * kernel * kernel * size * size + 2 * hidden * out * size * size
            channels = out
    return flops + 2 * channels * 1280 * size * size + 2 * 1280 * 1000


def torch_lite0(model, torch: Any, TF: Any) -> Callable:
    """PyTorch's Lite0 with our model's weights: x (N, 3, H, W) -> logits."""
    from models.efficientnet import same_padding

    def tensor(p):
        return torch.from_numpy(np.ascontiguousarray(p.numpy()))

    def conv_bn(x, layer, act=True):
        conv, bn = layer.conv, layer.bn
        k, s = conv.kernel_size[0], conv.stride
        (t, b), (l, r) = same_padding(x.shape[2], k, s), same_padding(x.shape[3], k, s)
        if (t, l) != (b, r):
            x, t, l = TF.pad(x, (l, r, t, b)), 0, 0
        x = TF.conv2d(x, weights[id(conv.weight)], None, s, (t, l), 1, conv.groups)
        x = TF.batch_norm(x, *(weights[id(getattr(bn, n))] for n in ("running_mean", "running_var", "weight", "bias")),
                          False, 0.0, bn.eps)
        return TF.relu6(x) if act else x

    weights = {id(p): tensor(p) for p in model.parameters()}

    def forward(x):
        x = conv_bn(x, model.stem)
        for block in model.blocks:
            h = conv_bn(x, block.expand) if block.expand is not None else x
            h = conv_bn(conv_bn(h, block.depthwise), block.project, act=False)
            x = h + x if block.residual else h
        x = conv_bn(x, model.head).mean(dim=(2, 3))
        return TF.linear(x, weights[id(model.classifier.weight)], weights[id(model.classifier.bias)])

    return forward


def cases(torch: Any = None, TF: Any = None, side: int = 224) -> Dict[str, Tuple[Callable, Optional[Callable], float, str]]:
    """name -> (ours, PyTorch's or None, FLOPs, check): the forward pass, and forward + backward to the input."""
    from models.efficientnet import load_efficientnet
    from tinygrad_cv import Tensor, no_grad

    model = load_efficientnet(weights="random", seed=0)
    x0 = np.random.default_rng(0).uniform(-1, 1, (1, 3, side, side)).astype(np.float32)

    def ours_forward():
        with no_grad():
            return model(Tensor(x0)).data

    def ours_backward():
        x = Tensor(x0, requires_grad=True)
        model(x).sum().backward()
        return x.grad

    theirs_forward = theirs_backward = None
    checks = ["", ""]
    if torch is not None:
        net = torch_lite0(model, torch, TF)
        xt = torch.from_numpy(x0)

        def theirs_forward():
            with torch.no_grad():
                return net(xt)

        def theirs_backward():
            x = xt.clone().requires_grad_()
            net(x).sum().backward()
            return x.grad

        for i, (a, b) in enumerate([(ours_forward, theirs_forward), (ours_backward, theirs_backward)]):
            ours, theirs = np.asarray(a(), np.float64), b().detach().numpy().astype(np.float64)
            checks[i] = f"rel. diff {np.linalg.norm(ours - theirs) / np.linalg.norm(theirs):.0e}"
    flops = lite0_flops(side)
    return {f"(f) EfficientNet-Lite0 forward, {side}x{side}": (ours_forward, theirs_forward, flops, checks[0]),
            f"(f) EfficientNet-Lite0 fwd + bwd to the input, {side}x{side}": (ours_backward, theirs_backward,
                                                                               2 * flops, checks[1])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--profile", action="store_true", help="cProfile our forward + backward instead")
    args = parser.parse_args()
    try:
        import torch
        import torch.nn.functional as TF
        from run import blas_threads
        torch.set_num_threads(blas_threads())  # as many threads as NumPy's BLAS
    except ImportError:
        torch = TF = None
    found = cases(torch, TF)
    if args.profile:
        import cProfile
        import pstats
        ours = list(found.values())[1][0]
        ours()
        cProfile.runctx("for _ in range(5): ours()", globals(), {"ours": ours}, "/tmp/lite0.prof")
        pstats.Stats("/tmp/lite0.prof").sort_stats("tottime").print_stats(15)
        return
    from run import median_times  # benchmarks/ is on sys.path when run as a script

    for name, (ours, theirs, flops, check) in found.items():
        t_ours, t_theirs = median_times([ours, theirs], args.repeats)
        ratio = f", ratio {t_ours / t_theirs:.2f}" if t_theirs else ""
        print(f"{name}: ours {t_ours * 1e3:.1f} ms, PyTorch {(t_theirs or float('nan')) * 1e3:.1f} ms"
              f"{ratio}; {check}")


if __name__ == "__main__":
    main()
