"""`tinygrad-cv explain IMAGE --method gradcam [--class K] -o overlay.png [--map map.npy]`: which pixels
made EfficientNet-Lite0 say class K.

Methods (tinygrad_cv/vision/attribution.py): gradient, smoothgrad, integrated-gradients, gradcam. The
map is computed for the network's input, the picture's short side resized to 256 and its centre
cropped to 224 x 224; ``--map`` saves it raw (224 x 224 float32 .npy), the overlay shows it over that
crop with a colour bar. The default class is the network's top one.
"""
from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

from tinygrad_cv.commands.arguments import finite_float
from tinygrad_cv.commands.vgg_args import check_output

MODELS = ("efficientnet-lite0",)
DEFAULT_OUTPUT = "overlay.png"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from tinygrad_cv.vision.attribution import METHODS, STEP_RULES, AttributionSettings

    d = AttributionSettings()
    p = subparsers.add_parser("explain", help="attribution map: which pixels made the network say class K",
                              description="An attribution map of a picture for one ImageNet class (EfficientNet-Lite0): "
                                          "gradient, SmoothGrad, integrated gradients or Grad-CAM, drawn over the "
                                          "centre-cropped picture.")
    p.add_argument("image", metavar="IMAGE", help="the picture: PNG, JPEG, ...")
    p.add_argument("--method", default="gradcam", help=f"{', '.join(METHODS)} (default gradcam)")
    p.add_argument("--class", dest="target", type=int, default=None, metavar="K",
                   help="ImageNet class index 0-999 (default: the network's top class)")
    p.add_argument("-o", "--output", default=DEFAULT_OUTPUT, help=f"overlay picture (default {DEFAULT_OUTPUT})")
    p.add_argument("--map", dest="map_path", default=None, metavar="MAP.npy", help="also save the raw 224x224 map")
    p.add_argument("--model", default=MODELS[0], help=f"{', '.join(MODELS)} (default {MODELS[0]})")
    p.add_argument("--layer", default=d.layer, help=f"Grad-CAM layer (default {d.layer}: 1280 channels after ReLU6)")
    p.add_argument("--samples", type=int, default=d.samples, help=f"SmoothGrad noisy copies (default {d.samples})")
    p.add_argument("--noise", type=finite_float, default=d.noise, help=f"SmoothGrad noise, share of the value range (default {d.noise})")
    p.add_argument("--steps", type=int, default=d.steps, help=f"integrated gradients: gradient evaluations (default {d.steps})")
    p.add_argument("--step-rule", default=d.step_rule, help=f"integrated gradients: {' or '.join(STEP_RULES)} (default {d.step_rule})")
    p.add_argument("--weights", default="imagenet", help="imagenet (default), random, or a weights file")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="cuda needs CuPy (the gpu extra)")
    p.set_defaults(run=run)


def spatial_layers() -> list:
    """EfficientNet-Lite0's layers with a spatial activation (Grad-CAM's choices), without building it."""
    from models.efficientnet import STAGES

    return ["stem"] + [f"block{i}" for i in range(sum(stage[0] for stage in STAGES))] + ["head"]


def settings_from(args: argparse.Namespace):
    """Check every argument before any work (no weights needed) and return AttributionSettings."""
    from models.efficientnet import NUM_CLASSES
    from tinygrad_cv.vision.attribution import METHODS, STEP_RULES, AttributionSettings

    if args.method not in METHODS:
        raise ValueError(f"unknown method {args.method!r}: choose from {', '.join(METHODS)}")
    if args.model not in MODELS:
        raise ValueError(f"unknown model {args.model!r}: choose from {', '.join(MODELS)}")
    if args.layer not in spatial_layers():
        raise ValueError(f"unknown Grad-CAM layer {args.layer!r}: choose from {', '.join(spatial_layers())}")
    if args.step_rule not in STEP_RULES:
        raise ValueError(f"unknown step rule {args.step_rule!r}: choose from {', '.join(STEP_RULES)}")
    if args.target is not None and not 0 <= args.target < NUM_CLASSES:
        raise ValueError(f"class {args.target} is out of range: choose 0 to {NUM_CLASSES - 1}")
    if args.samples < 1 or args.steps < 2 or args.noise < 0:
        raise ValueError(f"need --samples >= 1, --steps >= 2 and --noise >= 0 "
                         f"(got {args.samples}, {args.steps}, {args.noise})")
    check_output(args.output)
    if args.map_path is not None and Path(args.map_path).suffix.lower() != ".npy":
        raise ValueError(f"{args.map_path}: the map is saved as NumPy, give it the extension .npy")
    return AttributionSettings(samples=args.samples, noise=args.noise, steps=args.steps,
                               step_rule=args.step_rule, layer=args.layer)


def run(args: argparse.Namespace) -> int:
    import numpy as np
    from tqdm import tqdm

    from models.efficientnet import load_efficientnet
    from tinygrad_cv.io.cache import atomic_write
    from tinygrad_cv.vision import attribution as A
    from tinygrad_cv.vision.attribution_plots import overlay_figure, save_figure
    from tinygrad_cv.vision.image import load_image

    start = time.perf_counter()
    settings = settings_from(args)
    photo = load_image(args.image)
    model = load_efficientnet(weights=args.weights)
    if args.device == "cuda":
        model.to("cuda")
    crop = model.deprocess(model.preprocess(photo))  # uint8 (224, 224, 3): what the network sees
    picture = crop.transpose(2, 0, 1).astype(np.float32) / 255.0  # (3, 224, 224) in [0, 1]
    target = A.top_class(model, picture) if args.target is None else args.target
    total = A.gradient_evaluations(args.method, settings)
    bar = tqdm(total=total, unit="image", dynamic_ncols=True, disable=total < 8, desc=args.method)
    result = A.attribute(model, picture, args.method, target, settings, progress=bar.update)
    bar.close()
    probability = float(A.class_probabilities(model, picture[None], target)[0])
    name = model.classes[target]
    print(f"class {target} ({name}): probability {probability:.4f}, logit {result.logit:.3f}")
    if result.completeness_error is not None:
        print(f"completeness: sum of attributions {result.attributions.sum(dtype=np.float64):.4f}, "
              f"f(x) - f(black) = {result.logit - result.baseline_logit:.4f}, "
              f"error {100 * result.completeness_error:.2f}% ({settings.steps} steps, {settings.step_rule} rule)")
    title = f"{args.method} for class {target} ({name}), p = {probability:.3f}"
    save_figure(overlay_figure(crop, result.map, title, signed=args.method == "integrated-gradients"), args.output)
    if args.map_path is not None:
        buffer = io.BytesIO()
        np.save(buffer, result.map.astype(np.float32))
        with atomic_write(args.map_path) as f:
            f.write(buffer.getvalue())
    saved = args.output + ("" if args.map_path is None else f" and {args.map_path}")
    print(f"wrote {saved} in {time.perf_counter() - start:.1f} s")
    return 0
