"""Arguments that `visualize` and `dream` share: which VGG and weights, the seed, the device, the output.

Not a subcommand itself; ``cli.py`` lists only the modules that are.
"""
from __future__ import annotations

import argparse
from pathlib import Path

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def add_vgg_arguments(p: argparse.ArgumentParser, output: str, seed: int = 0,
                      models: tuple = ("vgg16", "vgg19")) -> None:
    """--model (one of ``models``, default vgg16), --weights, --seed, --device and -o/--output."""
    p.add_argument("--model", choices=list(models), default="vgg16")
    p.add_argument("--weights", default="imagenet", help="imagenet (default), random, or a checkpoint path")
    p.add_argument("--seed", type=int, default=seed, help=f"random seed (default {seed})")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="cuda needs CuPy (the gpu extra)")
    p.add_argument("-o", "--output", default=output, help=f"output image (default {output})")


def check_output(path: str) -> None:
    """ValueError unless ``path`` ends in an image extension (checked before any work is done)."""
    if Path(path).suffix.lower() not in IMAGE_SUFFIXES:
        raise ValueError(f"{path}: the output needs an image extension such as .png")


def load_model(args: argparse.Namespace):
    """The network that --model, --weights and --device ask for."""
    if args.model == "efficientnet-lite0":
        from models.efficientnet import load_efficientnet

        model = load_efficientnet(weights=args.weights, seed=args.seed)
    else:
        from models.vgg import load_vgg

        model = load_vgg(args.model, weights=args.weights)
    if args.device == "cuda":
        model.to("cuda")
    return model
