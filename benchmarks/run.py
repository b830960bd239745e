"""The performance table: tinygrad_cv next to PyTorch CPU on the work this course does.

Run (NumPy's BLAS at full speed: the two variables are unset for this command only):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/run.py

Cases (the median of --repeats timed runs each; ours and PyTorch take turns, see ``median_times``):
  a. VGG16 up to conv5_1, forward + backward to the input, 1x3xSxS, S = 256 and 512.
  b. One style-transfer evaluation as L-BFGS calls it: VGG16 features of the image (conv1_1 ...
     conv5_1 and conv4_2), content + style (Gram) + total-variation loss, gradient to the pixels.
     china.jpg resized to 256 and 512 px on its longest side, the generated 'swirls' style.
  c. One training step (forward, backward, Adam) of the conv autoencoder, batch 128, 1x28x28.
  d. The same for the dense autoencoder (784-128-8-128-784).
  f. EfficientNet-Lite0 at 224 px: the forward pass (no graph), and forward + backward to the input
     (random weights; PyTorch's twin in benchmarks/bench_efficientnet.py).
  e. (--lbfgs-iters N) A whole style transfer as `tinygrad-cv style` runs it: N L-BFGS iterations at
     256 px with the ImageNet VGG16 weights (random ones if they cannot be loaded), ours through
     tinygrad_cv.vision.style.stylize, PyTorch's loss through the same SciPy L-BFGS-B with the same
     settings; seconds per iteration, one run each.
  g. (--fast-style) The 26-style feed-forward network's forward pass at the --sizes, against
     onnxruntime on the same ONNX file (run by --ort-python, an interpreter that has it), and the
     time of `tinygrad-cv style` at its defaults; see benchmarks/bench_fast_style.py.
Both frameworks compute the same function from the same weights (seeded random VGG16 weights:
speed does not depend on the values) and the table shows how far their results differ. GFLOP/s
counts the multiply-adds of convolutions, matrix products and Gram matrices (x2) as the direct
method does them; the ceiling is a large float32 matrix product through NumPy, which a direct
convolution cannot beat (Winograd, doing fewer multiplications, can).
The column "reference path" times ours again with every op on its reference path
(``tinygrad_cv.fast_paths(False)``: im2col convolutions, plain pooling and Gram matrices), with its
ratio to PyTorch; --no-reference skips it.
Peak RSS for (b) at 512 px is measured in a fresh subprocess per framework (``--rss-child``), so
neither masks the other. PyTorch is optional: without it only our column is filled.

On a machine with an NVIDIA GPU, ``--device cuda`` runs ours on CuPy and PyTorch on CUDA (both in
full float32: PyTorch's TF32 shortcut for convolutions is turned off), synchronises the GPU before
each clock reading, takes a CuPy float32 matrix product as the ceiling, and reports peak GPU memory
(CuPy's pool against torch.cuda.max_memory_allocated) in place of the resident set.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout, uninstalled
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_efficientnet

torch = TF = None  # PyTorch, a reference only (tinygrad_cv never imports it): see import_torch
DEVICE = "cpu"  # --device: "cuda" puts both frameworks on the GPU


def import_torch() -> None:
    """Import PyTorch if it is installed. Not at the top of the file, so that the subprocess that
    measures our peak memory does not carry PyTorch's libraries in its resident set."""
    global torch, TF
    try:
        import torch
        import torch.nn.functional as TF
    except ImportError:
        torch = TF = None

VGG_CONVS_TO_CONV5_1 = 10
STYLE_LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
CONTENT_LAYER = "conv4_2"
Case = Tuple[Callable[[], Any], Optional[Callable[[], Any]], float]  # ours, torch, FLOPs


# ---- timing -----------------------------------------------------------------------------------------
PAUSE_S = 0.3  # between turns: long enough for the other framework's idle threads to stop spinning
WARM_UP_S = 0.15  # after the pause, untimed calls for at least this long: the timed call runs at loop speed


def median_times(fns: List[Optional[Callable[[], Any]]], repeats: int) -> List[Optional[float]]:
    """Median wall time of each fn over ``repeats`` rounds after a warm-up round. In each round the
    functions take turns, so that other load on the machine slows both sides alike; a turn is a pause
    of PAUSE_S, untimed calls for WARM_UP_S (one at least), then the timed call, so that every timed
    call runs as in a loop of its own framework.

    Without the pause the comparison is unfair: after a matrix product, OpenBLAS's worker threads
    keep spinning for about 0.1 s before they sleep, and took a core from PyTorch's next call
    (EfficientNet-Lite0's forward pass: PyTorch 75 ms alternated call by call with ours, 25 ms after a
    pause; benchmarks/bench_efficientnet.py). After the pause, a short step needs several calls to
    reach loop speed on our side: our thread pool's threads sleep between jobs and wake slowly for
    a while, and (c) runs a dozen short jobs on them. With 1, 2 and 3 untimed calls before the timed
    one, (c) measured 1.01, 0.98 and 0.87 against PyTorch (1.00, 1.03, 0.85 in a second run), while
    back to back, as training runs, our step takes 23-27 ms and PyTorch's 29-31 ms (PERFORMANCE.md).
    The slower (a), (b) and (f) reach it within their first call."""
    live = [f for f in fns if f is not None]
    times: Dict[int, List[float]] = {id(f): [] for f in live}
    for round_ in range(repeats + 1):
        for f in live:
            time.sleep(PAUSE_S)
            warm_until = time.perf_counter() + WARM_UP_S
            f()
            while time.perf_counter() < warm_until:
                f()
            synchronize()
            start = time.perf_counter()
            f()
            synchronize()
            if round_:
                times[id(f)].append(time.perf_counter() - start)
    return [statistics.median(times[id(f)]) if f is not None else None for f in fns]


def synchronize() -> None:
    """Wait for the GPU to finish the work queued so far (a kernel launch returns at once)."""
    if DEVICE == "cuda":
        from tinygrad_cv import backend

        backend.cupy_module().cuda.Device().synchronize()
        if torch is not None:
            torch.cuda.synchronize()


def on_device(a: np.ndarray) -> Any:
    """A NumPy array as an array of our framework on DEVICE."""
    from tinygrad_cv import backend

    return backend.to_device(a, DEVICE)


def torch_device(t: "torch.Tensor") -> "torch.Tensor":
    return t.to("cuda" if DEVICE == "cuda" else "cpu")


def gemm_ceiling(n: int = 2048, repeats: int = 5) -> float:
    """GFLOP/s of an n x n x n float32 matrix product through NumPy, or CuPy on the GPU (best of
    ``repeats``)."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((n, n), dtype=np.float32), rng.standard_normal((n, n), dtype=np.float32)
    a, b = on_device(a), on_device(b)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    synchronize()
    return time.perf_counter() - start


def blas_threads() -> int:
    try:
        from threadpoolctl import threadpool_info

        counts = [i["num_threads"] for i in threadpool_info() if i.get("user_api") == "blas"]
        if counts:
            return int(counts[0])
    except ImportError:
        pass
    return int(os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1)


# ---- VGG16, shared by (a) and (b) ---------------------------------------------------------------------
def vgg_flops(height: int, width: int, deepest: str = "conv5_1") -> float:
    """2 x multiply-adds of VGG16's convolutions up to ``deepest``, forward only, batch 1."""
    from models.vgg import layer_plan

    flops, c_in, h, w = 0.0, 3, height, width
    for name, c_out in layer_plan("vgg16"):
        if name.startswith("pool"):
            h, w = h // 2, w // 2
        else:
            flops += 2.0 * c_in * c_out * 9 * h * w
            c_in = c_out
        if name == deepest:
            return flops
    return flops


def torch_vgg(model) -> Callable:
    """PyTorch's version of our VGG's feature function, with the same (frozen) weights."""
    convs = {name: (torch_device(torch.from_numpy(getattr(model, name).weight.numpy().copy())),
                    torch_device(torch.from_numpy(getattr(model, name).bias.numpy().copy())))
             for name in model.layer_names if name.startswith("conv")}

    def features(x: "torch.Tensor", layers: List[str]) -> Dict[str, "torch.Tensor"]:
        deepest = max(model.layer_names.index(n) for n in layers)
        out = {}
        for name in model.layer_names[:deepest + 1]:
            x = TF.max_pool2d(x, 2) if name.startswith("pool") else TF.relu(TF.conv2d(x, *convs[name], padding=1))
            if name in layers:
                out[name] = x
        return out

    return features


def case_vgg(model, side: int) -> Tuple[Case, str]:
    """(a) VGG16 to conv5_1, forward + backward to the input."""
    from tinygrad_cv import Tensor

    x0 = np.random.default_rng(0).random((1, 3, side, side), dtype=np.float32)
    x0_ours = on_device(x0)

    def ours():
        x = Tensor(x0_ours, requires_grad=True)
        model(x, layers=["conv5_1"])["conv5_1"].sum().backward()
        return x.grad

    theirs = None
    check = ""
    if torch is not None:
        features = torch_vgg(model)

        x0_theirs = torch_device(torch.from_numpy(x0))

        def theirs():
            x = x0_theirs.clone().requires_grad_()
            features(x, ["conv5_1"])["conv5_1"].sum().backward()
            return x.grad

        check = f"grad rel. diff {relative_difference(ours(), theirs()):.0e}"
    return (ours, theirs, 2 * vgg_flops(side, side)), check


# ---- (b) one style-transfer evaluation --------------------------------------------------------------------
def style_images(side: int) -> Tuple[np.ndarray, np.ndarray]:
    from tinygrad_cv.vision.samples import sample_photo, swirl_painting
    from tinygrad_cv.vision.style import fit_longest_side

    return fit_longest_side(sample_photo("china.jpg"), side), fit_longest_side(swirl_painting(), side)


def style_flops(height: int, width: int) -> float:
    """VGG forward + backward to the input, plus Gram matrices forward and backward."""
    flops, h, w = 2 * vgg_flops(height, width), height, width
    for block, channels in enumerate((64, 128, 256, 512, 512)):
        flops += 3 * 2.0 * channels * channels * h * w  # G = F F^T, then dF = (dG + dG^T) F
        h, w = h // 2, w // 2
    return flops


def ours_style_eval(model, side: int) -> Callable[[], np.ndarray]:
    """The function L-BFGS calls in tinygrad_cv.vision.style.stylize: loss and gradient of the pixels."""
    from tinygrad_cv import Tensor, no_grad
    from tinygrad_cv.vision.style import StyleSettings, content_loss, style_loss, style_targets, to_tensor, tv_loss

    settings = StyleSettings(size=side)
    content, style = style_images(side)
    with no_grad():
        x = to_tensor(content, model.device)
        target = model(model.normalize(x), layers=[CONTENT_LAYER])[CONTENT_LAYER]
    objective = (settings.content_weight * content_loss(CONTENT_LAYER, target)
                 + settings.style_weight * style_loss(settings.style_layers,
                                                      style_targets(model, [style], settings, side),
                                                      settings.style_layer_weights)
                 + settings.tv_weight * tv_loss())
    pixels = Tensor(to_tensor(content, model.device).data, requires_grad=True)

    def evaluate() -> np.ndarray:
        pixels.grad = None
        total, _ = objective(model(model.normalize(pixels), objective.layers), pixels)
        total.backward()
        return pixels.grad

    return evaluate


def torch_style_eval(model, side: int) -> Callable[[], np.ndarray]:
    """The same loss in plain PyTorch (the usual way to write Gatys et al. in it)."""
    from tinygrad_cv.vision.style import StyleSettings

    settings = StyleSettings(size=side)
    features = torch_vgg(model)
    c = model.convention
    scale = torch_device(torch.tensor(np.asarray(c.max_value) / np.asarray(c.std), dtype=torch.float32).reshape(1, 3, 1, 1))
    shift = torch_device(torch.tensor(np.asarray(c.mean) / np.asarray(c.std), dtype=torch.float32).reshape(1, 3, 1, 1))
    bgr = c.channel_order == "BGR"

    def normalize(x):
        return (x.flip(1) if bgr else x) * scale - shift

    def gram(f):
        n, ch, h, w = f.shape
        flat = f.reshape(n, ch, h * w)
        return flat @ flat.transpose(1, 2) / (h * w)

    def image(array):
        return torch_device(torch.from_numpy(array.transpose(2, 0, 1)[None].astype(np.float32) / 255.0))

    content, style = style_images(side)
    with torch.no_grad():
        target = features(normalize(image(content)), [CONTENT_LAYER])[CONTENT_LAYER]
        style_feats = features(normalize(image(style)), list(STYLE_LAYERS))
        grams = [gram(style_feats[name]) for name in STYLE_LAYERS]
    scales = [float((t.double() ** 2).sum()) + 1e-12 for t in [target] + grams]
    layers = list(STYLE_LAYERS) + [CONTENT_LAYER]
    pixels = image(content).requires_grad_()
    w_style = settings.style_weight / len(STYLE_LAYERS)

    def evaluate() -> np.ndarray:
        pixels.grad = None
        feats = features(normalize(pixels), layers)
        loss = settings.content_weight * ((feats[CONTENT_LAYER] - target) ** 2).sum() / scales[0]
        for name, g, s in zip(STYLE_LAYERS, grams, scales[1:]):
            loss = loss + w_style * ((gram(feats[name]) - g) ** 2).sum() / s
        dy = pixels[:, :, 1:, :] - pixels[:, :, :-1, :]
        dx = pixels[:, :, :, 1:] - pixels[:, :, :, :-1]
        loss = loss + settings.tv_weight * ((dy * dy).mean() + (dx * dx).mean())
        loss.backward()
        evaluate.loss = loss.detach()
        return pixels.grad

    evaluate.pixels = pixels
    return evaluate


def case_style(model, side: int) -> Tuple[Case, str]:
    ours = ours_style_eval(model, side)
    theirs = torch_style_eval(model, side) if torch is not None else None
    check = f"grad rel. diff {relative_difference(ours(), theirs()):.0e}" if theirs else ""
    h, w = style_images(side)[0].shape[:2]
    return (ours, theirs, style_flops(h, w)), check


def case_lbfgs(model, side: int, iters: int) -> str:
    """(e) N L-BFGS iterations of style transfer, each framework once: a table row."""
    from scipy.optimize import Bounds, minimize

    from tinygrad_cv.vision.samples import sample_photo
    from tinygrad_cv.vision.style import StyleSettings, stylize

    content, style = style_images(side)
    start = time.perf_counter()
    result = stylize(model, sample_photo("china.jpg"), [style], StyleSettings(size=side, iters=iters))
    ours, ours_iters = time.perf_counter() - start, len(result.history)
    row = f"| (e) style transfer, {iters} L-BFGS iterations, {content.shape[1]}x{content.shape[0]} | {ours:.1f} s"
    if torch is None:
        return row + f" ({ours / ours_iters:.3f} s/it) | - | - |"
    evaluate = torch_style_eval(model, side)
    pixels = evaluate.pixels
    x0 = pixels.detach().double().cpu().numpy().ravel()

    def fun(flat: np.ndarray):
        with torch.no_grad():
            pixels.copy_(torch.from_numpy(flat.reshape(pixels.shape)).float())
        grad = evaluate()
        return float(evaluate.loss), host(grad).ravel()

    count = {"iters": 0}
    start = time.perf_counter()
    minimize(fun, x0, jac=True, method="L-BFGS-B", bounds=Bounds(np.zeros(x0.size), np.ones(x0.size)),
             callback=lambda *_: count.__setitem__("iters", count["iters"] + 1),
             options={"maxiter": iters, "maxfun": iters * 5 // 4 + 5, "maxcor": 10, "ftol": 0.0, "gtol": 0.0})
    theirs = time.perf_counter() - start
    return (row + f" ({ours / ours_iters:.3f} s/it) | {theirs:.1f} s ({theirs / max(count['iters'], 1):.3f} s/it) | "
            f"**{(ours / ours_iters) / (theirs / max(count['iters'], 1)):.2f}** | {ours_iters} and {count['iters']} iterations |")


def peak_rss_mib(framework: str, side: int) -> Optional[float]:
    """Peak resident memory (MiB) of a fresh process that sets up (b) and runs three evaluations."""
    if framework == "torch" and torch is None:
        return None
    cmd = [sys.executable, __file__, "--rss-child", framework, "--rss-side", str(side)]
    result = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])["peak_rss_mib"]


def rss_child(framework: str, side: int) -> None:
    from models.vgg import load_vgg

    model = load_vgg("vgg16", weights="random", seed=0)
    evaluate = ours_style_eval(model, side) if framework == "ours" else torch_style_eval(model, side)
    for _ in range(3):
        evaluate()
    print(json.dumps({"peak_rss_mib": peak_rss_of_this_process() / 2**20}))


def peak_rss_of_this_process() -> float:
    """Bytes: VmHWM from /proc (Linux), else getrusage. Linux's ru_maxrss is no good here: it
    carries over the parent's resident size from fork through exec, so every child would report at
    least the size of the benchmark process that started it."""
    try:
        with open("/proc/self/status") as f:
            return next(float(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def peak_gpu_memory_mib(model, side: int) -> Tuple[float, Optional[float]]:
    """Memory each framework's allocator holds on the GPU after setting up (b) and running three
    evaluations, in MiB: CuPy's memory pool (it keeps freed blocks for reuse, so what it holds is its
    peak) and torch.cuda.max_memory_reserved. The VGG weights (59 MB) count on both sides."""
    from tinygrad_cv import backend

    pool = backend.cupy_module().get_default_memory_pool()
    pool.free_all_blocks()
    evaluate = ours_style_eval(model, side)
    for _ in range(3):
        evaluate()
    synchronize()
    ours = pool.total_bytes() / 2**20
    if torch is None:
        return ours, None
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    evaluate = torch_style_eval(model, side)
    for _ in range(3):
        evaluate()
    synchronize()
    return ours, torch.cuda.max_memory_reserved() / 2**20


# ---- (c), (d) autoencoder training steps --------------------------------------------------------------------
def case_autoencoder(kind: str, batch: int = 128) -> Tuple[Case, str]:
    from models.autoencoder import build_autoencoder, train_step
    from tinygrad_cv import optim

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_autoencoder import torch_copy

    rng = np.random.default_rng(0)
    model = strided_conv_autoencoder(rng) if kind == "conv" else build_autoencoder(kind, (1, 28, 28), rng=rng)
    x = rng.random((batch, 1, 28, 28), dtype=np.float32)
    flops = 3 * autoencoder_flops(model, batch)  # forward, and backward to inputs and to weights
    reference = torch_device(torch_copy(model)) if torch is not None else None  # copied while on the CPU
    model.to(DEVICE)
    x_ours = on_device(x)
    opt = optim.Adam(model.parameters(), lr=1e-3)

    def ours():
        return train_step(model, opt, x_ours)

    theirs = None
    if reference is not None:
        topt = torch.optim.Adam(reference.parameters(), lr=1e-3)
        xt = torch_device(torch.from_numpy(x))

        def theirs():
            topt.zero_grad()
            loss = TF.mse_loss(reference(xt), xt)
            loss.backward()
            topt.step()
            return float(loss.detach())

    check = f"loss diff {abs(ours() - theirs()) / abs(theirs()):.0e}" if theirs else ""
    return (ours, theirs, flops), check


def strided_conv_autoencoder(rng: np.random.Generator):
    """Case (c): 1x28x28 -> two stride-2 3x3 convs (16, 32 channels) -> two (nearest upsample x2 + 3x3
    conv) -> sigmoid, ReLU between; the small conv net of the autoencoder chapter, trained with MSE.
    Each upsample + conv pair is one ``UpsampleConv2d`` layer (PyTorch's twin: nn.Upsample, nn.Conv2d)."""
    from models.autoencoder import Autoencoder
    from tinygrad_cv import nn
    from tinygrad_cv.nn.conv import Conv2d, UpsampleConv2d

    model = Autoencoder()
    model.encoder = nn.Sequential(Conv2d(1, 16, 3, stride=2, padding=1, rng=rng), nn.ReLU(),
                                  Conv2d(16, 32, 3, stride=2, padding=1, rng=rng), nn.ReLU())
    model.decoder = nn.Sequential(UpsampleConv2d(32, 16, 3, rng=rng), nn.ReLU(),
                                  UpsampleConv2d(16, 1, 3, rng=rng), nn.Sigmoid())
    return model


def autoencoder_flops(model, batch: int) -> float:
    """2 x multiply-adds of the Linear and Conv2d layers for one forward pass of ``batch`` images."""
    from tinygrad_cv import Tensor, nn, no_grad
    from tinygrad_cv.nn.conv import Conv2d

    flops, h = 0.0, Tensor(np.zeros((1, 1, 28, 28), np.float32))
    with no_grad():
        for layer in list(model.encoder.layers) + list(model.decoder.layers):
            out = layer(h)
            if isinstance(layer, nn.Linear):
                flops += 2.0 * layer.weight.size
            elif isinstance(layer, Conv2d):
                flops += 2.0 * layer.weight.size * out.shape[2] * out.shape[3]
            h = out
    return flops * batch


# ---- the report ---------------------------------------------------------------------------------------------
def host(a: Any) -> np.ndarray:
    """Any framework's array (NumPy, CuPy, PyTorch on either device) as a float64 NumPy array."""
    from tinygrad_cv import backend

    if torch is not None and isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    return np.asarray(backend.to_device(a, "cpu"), np.float64)


def relative_difference(ours: Any, theirs: Any) -> float:
    """||ours - theirs|| / ||theirs|| (Euclidean norms over all elements)."""
    ours, theirs = host(ours), host(theirs)
    return float(np.linalg.norm(ours - theirs) / max(np.linalg.norm(theirs), 1e-30))


def on_reference_path(fn: Callable[[], Any]) -> Callable[[], Any]:
    """fn with every op on its reference path (tinygrad_cv.fast_paths(False))."""
    import tinygrad_cv as tg

    def reference() -> Any:
        with tg.fast_paths(False):
            return fn()

    return reference


def table_row(name: str, case: Case, check: str, repeats: int, ceiling: float, reference: bool = True) -> str:
    ours_fn, torch_fn, flops = case
    ref_fn = on_reference_path(ours_fn) if reference and DEVICE == "cpu" else None
    ours, theirs, ref = median_times([ours_fn, torch_fn, ref_fn], repeats)
    ratio = f"{ours / theirs:.2f}" if theirs else "-"
    t_s = f"{theirs:.3f}" if theirs else "-"
    t_gf = f"{flops / theirs / 1e9:.0f}" if theirs else "-"
    r_s = f"{ref:.3f} ({ref / theirs:.2f})" if ref and theirs else (f"{ref:.3f}" if ref else "-")
    return (f"| {name} | {ours:.3f} | {t_s} | **{ratio}** | {r_s} | {flops / ours / 1e9:.0f} | {t_gf} | "
            f"{ceiling:.0f} | {check} |")


def our_cpu_result(case_fn: Callable, side: int) -> Any:
    """Our own result for a case computed on the CPU, to compare the GPU's with."""
    global DEVICE
    from models.vgg import load_vgg

    device, DEVICE = DEVICE, "cpu"
    try:
        (ours, _, _), _ = case_fn(load_vgg("vgg16", weights="random", seed=0), side)
        return ours()
    finally:
        DEVICE = device


def machine_line() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = ", load average %.2f %.2f %.2f" % os.getloadavg() if hasattr(os, "getloadavg") else ""
    return f"{cpu}, {os.cpu_count()} CPUs{load}"


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512], help="image sides for (a) and (b)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per case (median shown)")
    parser.add_argument("--only", nargs="+", choices=list("abcdf"), default=list("abcdf"), help="cases to run")
    parser.add_argument("--no-rss", action="store_true", help="skip the peak-memory measurement")
    parser.add_argument("--no-reference", action="store_true",
                        help="skip the column timing ours with the fast paths off (tinygrad_cv.fast_paths(False))")
    parser.add_argument("--lbfgs-iters", type=int, default=0, metavar="N",
                        help="(e): time N L-BFGS iterations of style transfer at 256 px on both sides (0: skip)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="cuda: ours on CuPy against PyTorch on CUDA, on the same GPU")
    parser.add_argument("--fast-style", action="store_true",
                        help="(g): the 26-style network's forward pass at --sizes, against onnxruntime when "
                             "--ort-python names an interpreter that has it, and `tinygrad-cv style` at its defaults")
    parser.add_argument("--ort-python", default=None, help="(g): a Python with onnxruntime (never imported here)")
    parser.add_argument("--rss-child", choices=("ours", "torch"), help=argparse.SUPPRESS)
    parser.add_argument("--rss-side", type=int, default=512, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rss_child:
        if args.rss_child == "torch":
            import_torch()
        rss_child(args.rss_child, args.rss_side)
        return 0
    import_torch()

    from models.vgg import load_vgg
    from tinygrad_cv import backend

    global DEVICE, torch
    DEVICE = args.device
    if DEVICE == "cuda":
        if not backend.gpu_available():
            parser.error(f"--device cuda: {backend.gpu_status()}")
        if torch is not None and not torch.cuda.is_available():
            print("note: this PyTorch has no CUDA: only our column is filled")
            torch = None
        if torch is not None:
            torch.backends.cudnn.allow_tf32 = False  # full float32, as ours
            torch.backends.cuda.matmul.allow_tf32 = False

    threads = blas_threads()
    if torch is not None:
        torch.set_num_threads(threads)
    slow = [v for v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if v in os.environ]
    print(f"{datetime.date.today()}  {machine_line()}")
    if DEVICE == "cuda":
        print(f"GPU: {backend.gpu_status()}" + (f"; PyTorch {torch.__version__}" if torch is not None else ""))
    print(f"Python {platform.python_version()}, NumPy {np.__version__}, {threads} BLAS threads; PyTorch "
          + (f"{torch.__version__} ({torch.get_num_threads()} threads)" if torch else "not installed"))
    if slow:
        print(f"note: {', '.join(slow)} set: NumPy's BLAS runs below full speed (see the docstring)")
    ceiling = gemm_ceiling(4096 if DEVICE == "cuda" else 2048)
    print(f"float32 GEMM ceiling ({'4096^3 through CuPy' if DEVICE == 'cuda' else '2048^3 through NumPy'}): "
          f"{ceiling:.0f} GFLOP/s\n")
    print("| case | ours s | PyTorch s | ratio | reference path s (ratio) | ours GFLOP/s | PyTorch GFLOP/s "
          "| GEMM ceiling | same result? |")
    print("|---|---|---|---|---|---|---|---|---|")
    model = load_vgg("vgg16", weights="random", seed=0).to(DEVICE)
    def gpu_vs_cpu(case: Case, check: str, case_fn: Callable, side: int) -> str:
        if DEVICE != "cuda":
            return check
        return f"{check}; ours, GPU vs CPU {relative_difference(case[0](), our_cpu_result(case_fn, side)):.0e}"

    for side in args.sizes if "a" in args.only else []:
        case, check = case_vgg(model, side)
        check = gpu_vs_cpu(case, check, case_vgg, side)
        print(table_row(f"(a) VGG16 to conv5_1, fwd + bwd, {side}x{side}", case, check, args.repeats, ceiling,
                        not args.no_reference), flush=True)
    for side in args.sizes if "b" in args.only else []:
        case, check = case_style(model, side)
        check = gpu_vs_cpu(case, check, case_style, side)
        h, w = style_images(side)[0].shape[:2]
        print(table_row(f"(b) style-transfer evaluation, {w}x{h}", case, check, args.repeats, ceiling,
                        not args.no_reference), flush=True)
    for kind, label in (("conv", "c"), ("dense", "d")):
        if label in args.only:
            case, check = case_autoencoder(kind)
            name = f"({label}) {'strided conv' if kind == 'conv' else kind} autoencoder train step, batch 128, 28x28"
            print(table_row(name, case, check, max(args.repeats, 20), ceiling, not args.no_reference), flush=True)
    if "f" in args.only and DEVICE == "cpu":
        from bench_efficientnet import cases as efficientnet_cases

        for name, (ours_fn, torch_fn, flops, check) in efficientnet_cases(torch, TF).items():
            print(table_row(name, (ours_fn, torch_fn, flops), check, max(args.repeats, 10), ceiling,
                            not args.no_reference), flush=True)
    if args.lbfgs_iters:
        try:
            imagenet = load_vgg("vgg16").to(DEVICE)
        except Exception as exc:  # offline with an empty cache: the same network with random weights
            print(f"note: (e) uses random weights: {exc}")
            imagenet = model
        print("\n| case | ours | PyTorch | ratio per iteration | |\n|---|---|---|---|---|")
        print(case_lbfgs(imagenet, 256, args.lbfgs_iters), flush=True)
    if "b" in args.only and not args.no_rss and DEVICE == "cuda":
        side = max(args.sizes)
        ours, theirs = peak_gpu_memory_mib(model, side)
        ratio = f", ratio {ours / theirs:.2f}" if theirs else ""
        print(f"\nGPU memory held after (b) at {side} px: ours {ours:.0f} MiB (CuPy pool), PyTorch "
              + (f"{theirs:.0f} MiB (max reserved)" if theirs else "-") + ratio)
    elif "b" in args.only and not args.no_rss:
        side = max(args.sizes)
        ours, theirs = peak_rss_mib("ours", side), peak_rss_mib("torch", side)
        ratio = f", ratio {ours / theirs:.2f}" if theirs else ""
        print(f"\nPeak RSS of a process running (b) at {side} px: ours {ours:.0f} MiB, PyTorch "
              + (f"{theirs:.0f} MiB" if theirs else "-") + ratio)
    if args.fast_style:  # (g), benchmarks/bench_fast_style.py
        from bench_fast_style import fast_style_rows  # benchmarks/ is on sys.path when run as a script

        print("\n" + "\n".join(fast_style_rows(args.sizes, args.repeats, args.ort_python, True, threads)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
