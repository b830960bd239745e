"""`tinygrad-cv visualize --layer conv4_1 --channel 42 -o OUT.png`: the picture a unit likes best.

VGG16 (the default) or EfficientNet-Lite0 (``--model efficientnet-lite0``), whose classifier adds the
units of the lecture's last slides: ``--class K`` (the class's probability), a dense unit of the 1280
pooled features (``--layer pooled --channel N``), a whole hidden layer (``--whole-layer``) and channels
of any block. ``--grid N`` renders N channels (starting at ``--channel``) as one labelled sheet;
``--neuron`` maximises the centre position only; ``--negative`` shows what the unit dislikes most.
Settings not given come from the model's defaults (optvis.VisSettings, EFFICIENTNET_SETTINGS,
CLASS_SETTINGS).
"""
from __future__ import annotations

import argparse
import time
from dataclasses import replace

from tinygrad_cv.commands.arguments import finite_float
from tinygrad_cv.commands.vgg_args import add_vgg_arguments, check_output, load_model

DEFAULT_OUTPUT = "visualization.png"
EFFICIENTNET = "efficientnet-lite0"
DEFAULT_LAYER = {"vgg16": "conv4_1", "vgg19": "conv4_1", EFFICIENTNET: "block12"}
# option -> VisSettings field; left at None on the command line, they take the model's default
TUNED = {"size": "size", "steps": "steps", "lr": "lr", "decay_power": "decay_power",
         "blur_every": "blur_every", "plain_steps": "plain_steps"}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from tinygrad_cv.vision.optvis import VisSettings

    d = VisSettings()
    p = subparsers.add_parser("visualize", help="feature visualisation: what a channel or a class responds to",
                              description="Optimise an image so that one channel (or neuron, or class) of a network "
                                          "fires as strongly as possible (Olah et al. 2017, 'Feature Visualization'). "
                                          "A VGG convolution's channel is maximised before its ReLU.")
    p.add_argument("--layer", default=None, help="layer name: conv1_2 ... conv5_3 for VGG (default conv4_1); stem, "
                                                 "block0 ... block15, head, pooled for EfficientNet (default block12)")
    p.add_argument("--channel", type=int, default=0, help="channel index (with --grid: the first one)")
    p.add_argument("--class", dest="class_index", type=int, default=None, metavar="K",
                   help=f"maximise the probability of ImageNet class K (0..999; needs --model {EFFICIENTNET})")
    p.add_argument("--whole-layer", action="store_true", help="maximise the whole layer (mean square: Deep Dream)")
    p.add_argument("--grid", type=int, default=0, metavar="N", help="render N channels from --channel on as one sheet")
    p.add_argument("--neuron", action="store_true", help="maximise the centre position only")
    p.add_argument("--negative", action="store_true", help="minimise instead: what the channel dislikes")
    p.add_argument("--param", choices=["fft", "pixel"], default=d.param, help=f"image parametrisation (default {d.param})")
    p.add_argument("--no-transforms", action="store_true", help="no random pad/jitter/scale/rotate or crops")
    p.add_argument("--no-decorrelate", action="store_true", help="optimise RGB directly")
    p.add_argument("--plain-steps", type=int, default=None, metavar="K",
                   help=f"the last K steps skip the transforms (VGG default {d.plain_steps}; lucent: 0)")
    p.add_argument("--decay-power", type=finite_float, default=None, metavar="P",
                   help=f"fft: scale the spectrum by 1/f^P (VGG default {d.decay_power}; lucent: 1)")
    p.add_argument("--steps", type=int, default=None, help=f"Adam steps (VGG default {d.steps})")
    p.add_argument("--size", type=int, default=None, help=f"image side in pixels (VGG default {d.size}, EfficientNet 224)")
    p.add_argument("--lr", type=finite_float, default=None, help=f"Adam learning rate (VGG default {d.lr})")
    p.add_argument("--tv-weight", type=finite_float, default=d.tv_weight, help="total-variation penalty")
    p.add_argument("--l2-weight", type=finite_float, default=d.l2_weight, help="penalty on distance from grey")
    p.add_argument("--blur-every", type=int, default=None, metavar="K", help=f"blur every K steps (VGG default {d.blur_every}; 0: never)")
    add_vgg_arguments(p, DEFAULT_OUTPUT, seed=d.seed, models=("vgg16", "vgg19", EFFICIENTNET))
    p.set_defaults(run=run)


def layer_table(model_name: str) -> dict:
    """Layer name -> channels, for checking the arguments before any weights are loaded."""
    if model_name == EFFICIENTNET:
        from models.efficientnet import layer_plan

        return {name: c for name, c in layer_plan() if name != "logits"}
    from models.vgg import layer_plan

    return dict(layer_plan(model_name))


def check_args(args: argparse.Namespace) -> list:
    """Validate everything that needs no weights; return the channels to render."""
    from tinygrad_cv.vision.optvis import check_unit

    check_output(args.output)
    for option in TUNED:
        value = getattr(args, option)
        if value is not None and value < {"size": 16, "steps": 1}.get(option, 0):
            raise ValueError(f"--size must be >= 16, --steps >= 1, --lr, --decay-power, --blur-every >= 0 and "
                             f"--plain-steps >= 0 (got --{option.replace('_', '-')} {value})")
    if args.grid < 0:
        raise ValueError(f"--grid must be >= 0, got {args.grid}")
    if args.class_index is not None:
        if args.model != EFFICIENTNET:
            raise ValueError(f"--class needs a classifier: use --model {EFFICIENTNET}")
        if not 0 <= args.class_index < 1000:
            raise ValueError(f"class {args.class_index} is out of range: ImageNet classes are 0..999")
        return [args.class_index]
    args.layer = args.layer or DEFAULT_LAYER[args.model]
    channels = list(range(args.channel, args.channel + max(args.grid, 1)))
    check_unit(layer_table(args.model), args.layer, [] if args.whole_layer else channels)
    return channels


def build_objective(args: argparse.Namespace, channels: list):
    from tinygrad_cv.vision import optvis

    if args.class_index is not None:
        objective = optvis.class_log_prob(args.class_index)
    elif args.whole_layer:
        objective = optvis.layer_energy(args.layer)
    else:
        unit = optvis.neuron if args.neuron else optvis.channel
        objective = sum(unit(optvis.pre_relu(args.layer), c, batch=i) for i, c in enumerate(channels))
    return -objective if args.negative else objective


def settings_for(args: argparse.Namespace, channels: list):
    """The model's (and unit's) default settings, with what the command line gave on top."""
    from tinygrad_cv.vision.optvis import CLASS_SETTINGS, EFFICIENTNET_SETTINGS, VisSettings

    if args.class_index is not None:
        base = CLASS_SETTINGS
    else:
        base = EFFICIENTNET_SETTINGS if args.model == EFFICIENTNET else VisSettings()
    given = {field: getattr(args, option) for option, field in TUNED.items() if getattr(args, option) is not None}
    batch = 1 if args.class_index is not None or args.whole_layer else len(channels)
    return replace(base, param=args.param, decorrelate=not args.no_decorrelate, transforms=not args.no_transforms,
                   batch=batch, l2_weight=args.l2_weight, tv_weight=args.tv_weight, seed=args.seed, **given)


def describe(args: argparse.Namespace, channels: list, model) -> str:
    if args.class_index is not None:
        return f"class {args.class_index} ({model.classes[args.class_index]})"
    if args.whole_layer:
        return f"{args.layer} (whole layer)"
    what = f"{args.layer} channel{'s' if len(channels) > 1 else ''} {channels[0]}"
    return what + (f"..{channels[-1]}" if len(channels) > 1 else "")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from tinygrad_cv.vision.image import save_image
    from tinygrad_cv.vision.optvis import visualize
    from tinygrad_cv.vision.sheets import image_grid

    channels = check_args(args)
    settings = settings_for(args, channels)
    model = load_model(args)
    bar = tqdm(total=settings.steps, desc=describe(args, channels, model), unit="step", dynamic_ncols=True)

    def progress(info) -> None:
        bar.update(1)
        bar.set_postfix(objective=f"{info.loss:.4g}", refresh=False)

    start = time.perf_counter()
    result = visualize(model, build_objective(args, channels), settings, callbacks=[progress])
    bar.close()
    if settings.batch == 1:
        picture = result.images[0]
    else:
        picture = image_grid(list(result.images), labels=[f"{args.layer}:{c}" for c in channels])
    save_image(args.output, picture)
    print(f"wrote {args.output} ({picture.shape[1]}x{picture.shape[0]}) after {len(result.history)} steps "
          f"in {time.perf_counter() - start:.1f} s")
    if result.history:
        print(f"objective {result.history[0]['loss']:.4g} -> {result.history[-1]['loss']:.4g}")
    if args.class_index is not None and result.status == "done":
        top = model.predict(picture, top=1)[0]
        print(f"the picture is classified as {top[1]} ({top[0]}) with probability {top[2]:.3f}")
    if result.status != "done":
        print(f"stopped: {result.status}; the image above is the last good one")
        return 130 if result.status == "interrupted" else 1
    return 0
