"""`tinygrad-cv visualize --layer conv4_1 --channel 42 -o OUT.png`: the picture a VGG unit likes best.

``--grid N`` renders N channels (starting at ``--channel``) as one labelled sheet; ``--neuron``
maximises the centre position only; ``--negative`` shows what the channel dislikes most.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

DEFAULT_OUTPUT = "visualization.png"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from tinygrad_cv.vision.optvis import VisSettings

    d = VisSettings()
    p = subparsers.add_parser("visualize", help="feature visualisation: what a VGG channel responds to",
                              description="Optimise an image so that one channel (or neuron) of a VGG layer "
                                          "fires as strongly as possible (Olah et al. 2017, 'Feature Visualization').")
    p.add_argument("--layer", default="conv4_1", help="layer name, e.g. conv1_2 ... conv5_3 (default conv4_1)")
    p.add_argument("--channel", type=int, default=0, help="channel index (with --grid: the first one)")
    p.add_argument("--grid", type=int, default=0, metavar="N", help="render N channels from --channel on as one sheet")
    p.add_argument("--neuron", action="store_true", help="maximise the centre position only")
    p.add_argument("--negative", action="store_true", help="minimise instead: what the channel dislikes")
    p.add_argument("--param", choices=["fft", "pixel"], default=d.param, help=f"image parametrisation (default {d.param})")
    p.add_argument("--no-transforms", action="store_true", help="no random pad/jitter/scale/rotate")
    p.add_argument("--no-decorrelate", action="store_true", help="optimise RGB directly")
    p.add_argument("--steps", type=int, default=d.steps, help=f"Adam steps (default {d.steps})")
    p.add_argument("--size", type=int, default=d.size, help=f"image side in pixels (default {d.size})")
    p.add_argument("--lr", type=float, default=d.lr, help=f"Adam learning rate (default {d.lr})")
    p.add_argument("--tv-weight", type=float, default=d.tv_weight, help="total-variation penalty")
    p.add_argument("--l2-weight", type=float, default=d.l2_weight, help="penalty on distance from grey")
    p.add_argument("--blur-every", type=int, default=d.blur_every, metavar="K", help="blur every K steps (0: never)")
    p.add_argument("--model", choices=["vgg16", "vgg19"], default="vgg16")
    p.add_argument("--weights", default="imagenet", help="imagenet (default), random, or a checkpoint path")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("-o", "--output", default=DEFAULT_OUTPUT, help=f"output image (default {DEFAULT_OUTPUT})")
    p.set_defaults(run=run)


def check_args(args: argparse.Namespace) -> list:
    """Validate everything that needs no weights; return the channels to render."""
    from models.vgg import layer_plan
    from tinygrad_cv.vision.optvis import check_unit

    if Path(args.output).suffix.lower() not in IMAGE_SUFFIXES:
        raise ValueError(f"{args.output}: the output needs an image extension such as .png")
    if args.size < 16 or args.steps < 1 or args.grid < 0:
        raise ValueError(f"--size must be >= 16, --steps >= 1 and --grid >= 0 (got {args.size}, {args.steps}, {args.grid})")
    channels = list(range(args.channel, args.channel + max(args.grid, 1)))
    check_unit(dict(layer_plan(args.model)), args.layer, channels)
    return channels


def build_objective(args: argparse.Namespace, channels: list):
    from tinygrad_cv.vision import optvis

    unit = optvis.neuron if args.neuron else optvis.channel
    objective = sum(unit(optvis.pre_relu(args.layer), c, batch=i) for i, c in enumerate(channels))
    return -objective if args.negative else objective


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from models.vgg import load_vgg
    from tinygrad_cv.vision.image import save_image
    from tinygrad_cv.vision.optvis import VisSettings, visualize
    from tinygrad_cv.vision.sheets import image_grid

    channels = check_args(args)
    settings = VisSettings(size=args.size, steps=args.steps, lr=args.lr, param=args.param,
                           decorrelate=not args.no_decorrelate, transforms=not args.no_transforms,
                           batch=len(channels), l2_weight=args.l2_weight, tv_weight=args.tv_weight,
                           blur_every=args.blur_every, seed=args.seed)
    model = load_vgg(args.model, weights=args.weights)
    if args.device == "cuda":
        model.to("cuda")
    what = f"{args.layer} channel{'s' if len(channels) > 1 else ''} {channels[0]}"
    what += f"..{channels[-1]}" if len(channels) > 1 else ""
    bar = tqdm(total=settings.steps, desc=what, unit="step", dynamic_ncols=True)

    def progress(info) -> None:
        bar.update(1)
        bar.set_postfix(objective=f"{info.loss:.4g}", refresh=False)

    start = time.perf_counter()
    result = visualize(model, build_objective(args, channels), settings, callbacks=[progress])
    bar.close()
    if len(channels) == 1:
        picture = result.images[0]
    else:
        picture = image_grid(list(result.images), labels=[f"{args.layer}:{c}" for c in channels])
    save_image(args.output, picture)
    print(f"wrote {args.output} ({picture.shape[1]}x{picture.shape[0]}) after {len(result.history)} steps "
          f"in {time.perf_counter() - start:.1f} s")
    if result.history:
        print(f"objective {result.history[0]['loss']:.4g} -> {result.history[-1]['loss']:.4g}")
    if result.status != "done":
        print(f"stopped: {result.status}; the image above is the last good one")
        return 130 if result.status == "interrupted" else 1
    return 0
