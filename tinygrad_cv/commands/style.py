"""`tinygrad-cv style CONTENT STYLE [STYLE ...] -o OUT.png`: paint a photo in the style of paintings.

With no paths it runs the built-in example: scikit-learn's china.jpg painted in the generated
"swirls" style, so it works offline on any machine. ``--photo`` moves the look of one photo onto
another and keeps the result a photo (Luan et al. 2017's matting-Laplacian term); ``--smooth`` runs
the closed-form smoothing of Li et al. 2018 on any result; masks give the style loss per region.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import List

import numpy as np

from tinygrad_cv.commands.arguments import finite_float

DEFAULT_OUTPUT = "stylized.png"
LARGE = 1024  # above this many pixels on the longest side, warn about time and memory on a CPU


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from tinygrad_cv.vision.style import StyleSettings, photo_settings

    d, ph = StyleSettings(), photo_settings()
    p = subparsers.add_parser("style", help="neural style transfer (Gatys et al. 2015; --photo: Luan et al. 2017)",
                              description="Paint CONTENT in the style of one or more STYLE images. "
                                          "With no paths: the built-in example (china.jpg in the 'swirls' style). "
                                          "With --photo: move the look of one photo onto another, keeping a photo.")
    p.add_argument("images", nargs="*", metavar="IMAGE", help="CONTENT STYLE [STYLE ...]")
    p.add_argument("-o", "--output", default=DEFAULT_OUTPUT, help=f"output image (default {DEFAULT_OUTPUT})")
    p.add_argument("--size", type=int, default=d.size, help=f"longest side of the output in pixels (default {d.size})")
    p.add_argument("--iters", type=int, help=f"iterations at the final scale (default {d.iters}; --photo {ph.iters})")
    p.add_argument("--content-weight", type=finite_float, help=f"default {d.content_weight}; --photo {ph.content_weight}")
    p.add_argument("--style-weight", type=finite_float, help=f"default {d.style_weight}; --photo {ph.style_weight}")
    p.add_argument("--tv-weight", type=finite_float, help=f"default {d.tv_weight}; --photo {ph.tv_weight}")
    p.add_argument("--photo", action="store_true",
                   help="photorealistic transfer: the content's matting Laplacian keeps the result a photo")
    p.add_argument("--photo-weight", type=finite_float,
                   help=f"weight of the matting-Laplacian term (default {d.photo_weight}; --photo {ph.photo_weight:g})")
    p.add_argument("--style-target", type=finite_float,
                   help=f"if the style loss has not fallen to this fraction of the content's after half the iterations, "
                        f"the style weight is multiplied by {ph.style_boost:g}, and again after three quarters "
                        f"(default {d.style_target:g}: off; --photo {ph.style_target:g})")
    p.add_argument("--smooth", action=argparse.BooleanOptionalAction, default=None,
                   help=f"closed-form smoothing of the result (Li et al. 2018; default {'on' if d.smooth else 'off'}, "
                        f"--photo {'on' if ph.smooth else 'off'})")
    p.add_argument("--content-mask", metavar="IMAGE", help="colour-coded regions of CONTENT (needs --style-mask)")
    p.add_argument("--style-mask", metavar="IMAGE", help="the same colours on STYLE: the style loss is taken per region")
    p.add_argument("--init", help=f"content, noise, or the path of an image to start from (default {d.init})")
    p.add_argument("--optimizer", choices=["lbfgs", "adam"], default=d.optimizer)
    p.add_argument("--lr", type=finite_float, default=d.lr, help="Adam's learning rate on [0, 1] pixels")
    p.add_argument("--style-blend", type=finite_float, nargs="+", metavar="W", help="one weight per style image")
    p.add_argument("--style-scale", type=finite_float, default=d.style_scale, help="style image size relative to --size")
    p.add_argument("--original-colors", action="store_true", help="keep the content's colours")
    p.add_argument("--pooling", choices=["max", "avg"], help=f"default {d.pooling}; --photo {ph.pooling}")
    p.add_argument("--scales", type=int, nargs="+", metavar="PX", help="coarse-to-fine sizes, e.g. 128 256")
    p.add_argument("--model", choices=["vgg16", "vgg19"], default=d.model)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--save-every", type=int, default=0, metavar="N", help="write a snapshot every N iterations")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.set_defaults(run=run)


def _load_inputs(args: argparse.Namespace) -> tuple:
    from tinygrad_cv.vision.image import load_image
    from tinygrad_cv.vision.samples import sample_photo, swirl_painting

    if not args.images:
        print("no images given: painting scikit-learn's china.jpg in the generated 'swirls' style")
        return sample_photo("china.jpg"), [swirl_painting()]
    if len(args.images) < 2:
        raise ValueError("give a CONTENT image and at least one STYLE image (or no paths for the built-in example)")
    images = [load_image(path) for path in args.images]
    for path, image in zip(args.images, images):
        h, w = image.shape[:2]
        if max(h, w) > args.size:
            print(f"{path}: {w}x{h}, resized to {args.size} px on the longest side")
    return images[0], images[1:]


RECIPE_OPTIONS = ("iters", "content_weight", "style_weight", "tv_weight", "photo_weight", "smooth", "init", "pooling",
                  "style_target")


def _settings(args: argparse.Namespace):
    """StyleSettings from the arguments: options left out take the defaults of plain or --photo style."""
    from dataclasses import replace

    from tinygrad_cv.vision.style import StyleSettings, photo_settings

    base = photo_settings() if args.photo else StyleSettings()
    given = {name: getattr(args, name) for name in RECIPE_OPTIONS if getattr(args, name) is not None}
    settings = replace(base, **given)
    if args.size < 16 or settings.iters < 1:
        raise ValueError(f"--size must be >= 16 and --iters >= 1 (got {args.size}, {settings.iters})")
    if min(settings.content_weight, settings.style_weight, settings.tv_weight, settings.photo_weight) < 0:
        raise ValueError("the loss weights (--content-weight, --style-weight, --tv-weight, --photo-weight) must be >= 0")
    if (args.content_mask is None) != (args.style_mask is None):
        raise ValueError("masks come in pairs: give both --content-mask and --style-mask")
    init = settings.init if settings.init in ("content", "noise") else "image"
    return replace(
        settings, size=args.size, init=init, optimizer=args.optimizer, lr=args.lr,
        style_blend=tuple(args.style_blend) if args.style_blend else None, style_scale=args.style_scale,
        original_colors=args.original_colors, scales=tuple(args.scales or ()), seed=args.seed, model=args.model,
    )


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from models.vgg import load_vgg
    from tinygrad_cv.vision.image import load_image, save_image
    from tinygrad_cv.vision.style import stylize, to_uint8

    settings = _settings(args)
    output = Path(args.output)
    if output.suffix.lower() not in (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"):
        raise ValueError(f"{output}: the output needs an image extension such as .png")
    content, styles = _load_inputs(args)
    init_image = load_image(args.init) if settings.init == "image" else None
    content_mask = load_image(args.content_mask) if args.content_mask else None
    style_mask = load_image(args.style_mask) if args.style_mask else None
    if content_mask is not None:
        from tinygrad_cv.vision.style import regions_of

        regions_of(content_mask, style_mask, len(styles))  # unmatched colours fail here, before any work
    if max(settings.scales or (settings.size,)) > LARGE and args.device == "cpu":
        print(f"warning: {settings.size} px on a CPU takes long and needs several GB; try --size 512 first")
    model = load_vgg(settings.model, pooling=settings.pooling)
    if args.device == "cuda":
        model.to("cuda")

    bars: List[tqdm] = []

    def progress(scale: int, n_scales: int, info) -> None:
        if len(bars) <= scale:
            if bars:
                bars[-1].close()
            bars.append(tqdm(total=info.steps, desc=f"scale {scale + 1}/{n_scales}", unit="it", dynamic_ncols=True))
        bars[-1].update(1)
        bars[-1].set_postfix({k: f"{v:.4g}" for k, v in info.parts.items()}, refresh=False)
        if args.save_every and info.step % args.save_every == 0:
            snapshot = output.with_name(f"{output.stem}.scale{scale + 1}.step{info.step:04d}{output.suffix}")
            save_image(snapshot, to_uint8(info.param.image().numpy()))

    start = time.perf_counter()
    result = stylize(model, content, styles, settings, init_image=init_image, callbacks=[progress],
                     content_mask=content_mask, style_mask=style_mask)
    for bar in bars:
        bar.close()
    save_image(output, result.image)
    seconds = time.perf_counter() - start
    steps = len(result.history)
    print(f"wrote {output} ({result.image.shape[1]}x{result.image.shape[0]}) after {steps} iterations in {seconds:.1f} s")
    if result.history:
        first, last = result.initial, result.history[-1]
        print("losses start -> end: " + ", ".join(f"{k} {first[k]:.4g} -> {last[k]:.4g}" for k in last if k != "loss"))
        if result.style_weight != settings.style_weight:
            print(f"the style loss was above {settings.style_target:g} of its start at a check, so the style weight was "
                  f"raised from {settings.style_weight:g} to {result.style_weight:g} (the terms above are weighted)")
        _report(model, result.image, content, styles, settings, content_mask, style_mask)
    if result.status == "interrupted":
        print("interrupted: the image above is the last completed iteration", file=sys.stderr)
        return 130
    if result.status != "done":
        print(f"stopped: {result.status}; the image above is the last good one", file=sys.stderr)
        return 1
    return 0


def _report(model, image: np.ndarray, content: np.ndarray, styles: List[np.ndarray], settings, content_mask, style_mask) -> None:
    """The photorealism figure beside the style loss, both for the written image and for the content."""
    from tinygrad_cv.vision.image import resize
    from tinygrad_cv.vision.style import measure

    after = measure(model, image, content, styles, settings, content_mask, style_mask)
    before = measure(model, resize(content, image.shape[:2]), content, styles, settings, content_mask, style_mask)
    print(f"style loss (unweighted) {before['style']:.4g} for the content -> {after['style']:.4g} "
          f"({1 - after['style'] / before['style']:.0%} lower); relative matting energy {after['energy']:.4g} "
          "(0: a locally affine recolouring of the content)")
