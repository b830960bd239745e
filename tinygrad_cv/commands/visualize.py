"""`tinygrad-cv visualize --layer conv4_1 --channel 42 -o OUT.png`: the picture a VGG unit likes best.

``--grid N`` renders N channels (starting at ``--channel``) as one labelled sheet; ``--neuron``
maximises the centre position only; ``--negative`` shows what the channel dislikes most.
"""
from __future__ import annotations

import argparse
import time

from tinygrad_cv.commands.arguments import finite_float
from tinygrad_cv.commands.vgg_args import add_vgg_arguments, check_output, load_model

DEFAULT_OUTPUT = "visualization.png"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from tinygrad_cv.vision.optvis import VisSettings

    d = VisSettings()
    p = subparsers.add_parser("visualize", help="feature visualisation: what a VGG channel responds to",
                              description="Optimise an image so that one channel (or neuron) of a VGG layer "
                                          "fires as strongly as possible (Olah et al. 2017, 'Feature Visualization'). "
                                          "A convolution's channel is maximised before its ReLU.")
    p.add_argument("--layer", default="conv4_1", help="layer name, e.g. conv1_2 ... conv5_3 (default conv4_1)")
    p.add_argument("--channel", type=int, default=0, help="channel index (with --grid: the first one)")
    p.add_argument("--grid", type=int, default=0, metavar="N", help="render N channels from --channel on as one sheet")
    p.add_argument("--neuron", action="store_true", help="maximise the centre position only")
    p.add_argument("--negative", action="store_true", help="minimise instead: what the channel dislikes")
    p.add_argument("--param", choices=["fft", "pixel"], default=d.param, help=f"image parametrisation (default {d.param})")
    p.add_argument("--no-transforms", action="store_true", help="no random pad/jitter/scale/rotate")
    p.add_argument("--no-decorrelate", action="store_true", help="optimise RGB directly")
    p.add_argument("--plain-steps", type=int, default=d.plain_steps, metavar="K",
                   help=f"the last K steps skip the transforms (default {d.plain_steps}; lucent: 0)")
    p.add_argument("--decay-power", type=finite_float, default=d.decay_power, metavar="P",
                   help=f"fft: scale the spectrum by 1/f^P (default {d.decay_power}; lucent: 1)")
    p.add_argument("--steps", type=int, default=d.steps, help=f"Adam steps (default {d.steps})")
    p.add_argument("--size", type=int, default=d.size, help=f"image side in pixels (default {d.size})")
    p.add_argument("--lr", type=finite_float, default=d.lr, help=f"Adam learning rate (default {d.lr})")
    p.add_argument("--tv-weight", type=finite_float, default=d.tv_weight, help="total-variation penalty")
    p.add_argument("--l2-weight", type=finite_float, default=d.l2_weight, help="penalty on distance from grey")
    p.add_argument("--blur-every", type=int, default=d.blur_every, metavar="K", help=f"blur every K steps (default {d.blur_every}; 0: never)")
    add_vgg_arguments(p, DEFAULT_OUTPUT, seed=d.seed)
    p.set_defaults(run=run)


def check_args(args: argparse.Namespace) -> list:
    """Validate everything that needs no weights; return the channels to render."""
    from models.vgg import layer_plan
    from tinygrad_cv.vision.optvis import check_unit

    check_output(args.output)
    if args.size < 16 or args.steps < 1 or args.grid < 0 or args.blur_every < 0 or args.plain_steps < 0:
        raise ValueError(f"--size must be >= 16, --steps >= 1, --grid >= 0, --blur-every >= 0 and --plain-steps >= 0 "
                         f"(got {args.size}, {args.steps}, {args.grid}, {args.blur_every}, {args.plain_steps})")
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

    from tinygrad_cv.vision.image import save_image
    from tinygrad_cv.vision.optvis import VisSettings, visualize
    from tinygrad_cv.vision.sheets import image_grid

    channels = check_args(args)
    settings = VisSettings(size=args.size, steps=args.steps, lr=args.lr, param=args.param,
                           decay_power=args.decay_power, decorrelate=not args.no_decorrelate,
                           transforms=not args.no_transforms, plain_steps=args.plain_steps, batch=len(channels), l2_weight=args.l2_weight,
                           tv_weight=args.tv_weight, blur_every=args.blur_every, seed=args.seed)
    model = load_model(args)
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
