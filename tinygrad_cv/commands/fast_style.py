"""`tinygrad-cv fast-style PHOTO -o OUT.png [--style N | --mix "3:0.5,19:0.5"]`: paint a photo in one
pass with the pretrained 26-style network (Dumoulin et al. 2017), blend styles, show them all, or
teach the network a new style.

    tinygrad-cv fast-style photo.jpg -o out.png --style 7
    tinygrad-cv fast-style photo.jpg -o out.png --mix "3:0.5,19:0.5"
    tinygrad-cv fast-style --sheet photo.jpg -o sheet.png          # all 26 styles, labelled
    tinygrad-cv fast-style --train-style painting.jpg -o mystyle.npz
    tinygrad-cv fast-style photo.jpg --style-file mystyle.npz -o out.png
    tinygrad-cv fast-style photo.jpg --style-file mystyle.npz --mix "26:0.5,3:0.5" -o out.png

A blend: each normalisation layer of the network scales and shifts its channels by a (gamma, beta)
pair per style; --mix uses the weighted sum of the listed styles' pairs (weights used as given,
finite and non-negative; weights summing to 1 interpolate between the styles, a larger sum
exaggerates). Styles loaded with --style-file get the indices 26, 27, ... With no PHOTO: china.jpg.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from tinygrad_cv.commands.arguments import finite_float

DEFAULT_OUTPUT = "fast_style.png"
DEFAULT_SIZE = 512


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from tinygrad_cv.vision.fast_style_train import TrainSettings

    t = TrainSettings()
    p = subparsers.add_parser("fast-style", help="feed-forward style transfer: 26 styles and their blends in one pass",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("photo", nargs="?", metavar="PHOTO", help="the photo to paint (default: china.jpg)")
    p.add_argument("-o", "--output", default=None,
                   help=f"output image, or the style file for --train-style (default {DEFAULT_OUTPUT} / mystyle.npz)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--style", type=int, default=None, metavar="N", help="one style, 0..25 (default 0)")
    which.add_argument("--mix", default=None, metavar="I:W,...", help='a blend, e.g. "3:0.5,19:0.5"')
    p.add_argument("--size", type=int, default=DEFAULT_SIZE,
                   help=f"longest side of the output (default {DEFAULT_SIZE}; 0 keeps the photo's size)")
    p.add_argument("--sheet", action="store_true", help="render every style of the network, labelled, on one sheet")
    p.add_argument("--style-file", action="append", default=[], metavar="NPZ",
                   help="add a style trained with --train-style (repeatable; indices 26, 27, ...)")
    p.add_argument("--weights", default="magenta26", help="magenta26 (default), random, or a .npz / wheel path")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="cuda needs CuPy (the gpu extra)")
    train = p.add_argument_group("teaching a new style (Dumoulin et al. 2017, section 4.2)")
    train.add_argument("--train-style", metavar="PAINTING", default=None,
                       help="learn a new (gamma, beta) per layer for PAINTING; writes the style file -o")
    train.add_argument("--steps", type=int, default=t.steps, help=f"training steps (default {t.steps})")
    train.add_argument("--crop", type=int, default=t.crop, help=f"training crop side in pixels (default {t.crop})")
    train.add_argument("--batch", type=int, default=t.batch, help=f"crops per step (default {t.batch})")
    train.add_argument("--lr", type=finite_float, default=t.lr, help=f"Adam's learning rate (default {t.lr})")
    train.add_argument("--style-size", type=int, default=t.style_size,
                       help=f"longest side of the painting when its Grams are taken (default {t.style_size})")
    train.add_argument("--style-weight", type=finite_float, default=t.style_weight, help=f"(default {t.style_weight})")
    train.add_argument("--content-weight", type=finite_float, default=t.content_weight, help=f"(default {t.content_weight})")
    train.add_argument("--checkpoint-every", type=int, default=t.checkpoint_every, metavar="N",
                       help=f"write the style file and a resumable checkpoint every N steps (default {t.checkpoint_every})")
    train.add_argument("--resume", action="store_true", help="continue from the checkpoint beside -o")
    train.add_argument("--seed", type=int, default=t.seed, help=f"crops and flips (default {t.seed})")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.train_style is not None:
        return _train(args)
    from tinygrad_cv.commands.vgg_args import check_output
    from tinygrad_cv.vision import fast_style
    from tinygrad_cv.vision.image import load_image, save_image
    from tinygrad_cv.vision.samples import sample_photo
    from tinygrad_cv.vision.style import fit_longest_side

    output = args.output or DEFAULT_OUTPUT
    check_output(output)
    if args.size < 0 or (args.size and args.size < 8):
        raise ValueError(f"--size must be 0 (keep the photo's size) or at least 8, got {args.size}")
    if args.sheet and (args.style is not None or args.mix is not None):
        raise ValueError("--sheet renders every style: leave out --style and --mix")
    if args.photo is None:
        print("no photo given: painting scikit-learn's china.jpg")
    photo = sample_photo("china.jpg") if args.photo is None else load_image(args.photo)
    if args.size and max(photo.shape[:2]) != args.size:
        photo = fit_longest_side(photo, args.size)
    net = _load_network(args)
    if args.sheet:
        start = time.perf_counter()
        save_image(output, fast_style.style_sheet(net, photo))
        print(f"wrote {output}: {net.styles} styles in {time.perf_counter() - start:.1f} s")
        return 0
    weights = _style_weights(args, net)
    start = time.perf_counter()
    result = fast_style.stylize(net, photo, weights)
    seconds = time.perf_counter() - start
    save_image(output, result)
    print(f"wrote {output} ({result.shape[1]}x{result.shape[0]}) in {seconds:.2f} s")
    return 0


def _load_network(args: argparse.Namespace):
    from models.stylenet import load_stylenet
    from tinygrad_cv.vision import fast_style

    net = load_stylenet(args.weights)
    for path in args.style_file:
        gammas, betas, _ = fast_style.load_style_file(path, net)
        print(f"{path}: style {net.add_styles(gammas, betas)}")
    if args.device == "cuda":
        net.to("cuda")
    return net


def _style_weights(args: argparse.Namespace, net):
    from tinygrad_cv.vision.fast_style import parse_mix

    if args.mix is not None:
        return parse_mix(args.mix, net.styles)
    if args.style is None and args.style_file:
        return net.one_hot(net.styles - 1)  # the style just loaded
    return net.one_hot(0 if args.style is None else args.style)


def _train(args: argparse.Namespace) -> int:
    from models.stylenet import load_stylenet
    from models.vgg import load_vgg
    from tinygrad_cv.vision.fast_style_train import TrainSettings, train_style
    from tinygrad_cv.vision.image import load_image

    output = Path(args.output or "mystyle.npz")
    if output.suffix != ".npz":
        raise ValueError(f"{output}: the style file of --train-style needs the .npz extension")
    if args.photo is not None or args.sheet or args.style is not None or args.mix is not None:
        raise ValueError("--train-style takes only the painting: leave out PHOTO, --sheet, --style and --mix")
    settings = TrainSettings(steps=args.steps, crop=args.crop, batch=args.batch, lr=args.lr,
                             style_size=args.style_size, style_weight=args.style_weight,
                             content_weight=args.content_weight, checkpoint_every=args.checkpoint_every,
                             seed=args.seed)
    painting = load_image(args.train_style)
    net, vgg = load_stylenet(args.weights), load_vgg("vgg16")
    if args.device == "cuda":
        net.to("cuda")
        vgg.to("cuda")
    start = time.perf_counter()
    result = train_style(net, vgg, painting, output, settings, resume=args.resume,
                         info={"painting": str(args.train_style)})
    minutes = (time.perf_counter() - start) / 60
    state = "stopped early (Ctrl-C); saved" if result.interrupted else "wrote"
    print(f"{state} {output} after {result.step} steps in {minutes:.1f} min; apply it with "
          f"`tinygrad-cv fast-style PHOTO --style-file {output}`", file=sys.stderr if result.interrupted else sys.stdout)
    return 130 if result.interrupted else 0
