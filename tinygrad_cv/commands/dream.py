"""`tinygrad-cv dream IMAGE --layer conv4_2 --octaves 4 -o OUT.png`: Deep Dream a photo.

With no IMAGE it dreams on scikit-learn's china.jpg, so it works offline on any machine.
"""
from __future__ import annotations

import argparse
import time

from tinygrad_cv.commands.arguments import finite_float
from tinygrad_cv.commands.vgg_args import add_vgg_arguments, check_output, load_model

DEFAULT_OUTPUT = "dream.png"
DEFAULT_SIZE = 384  # longest side: about a minute and a half per default run on a 2-core CPU


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from tinygrad_cv.vision.dream import DreamSettings

    d = DreamSettings()
    p = subparsers.add_parser("dream", help="Deep Dream: amplify what a VGG layer sees in a photo",
                              description="Gradient ascent on a photo for the activations of one layer, over "
                                          "several octaves (Mordvintsev et al. 2015). With no IMAGE: china.jpg.")
    p.add_argument("image", nargs="?", metavar="IMAGE", help="the photo to dream on (default: china.jpg)")
    p.add_argument("--layer", default=d.layer, help=f"layer to amplify (default {d.layer})")
    p.add_argument("--channel", type=int, default=None, help="amplify only this channel of the layer")
    p.add_argument("--octaves", type=int, default=d.octaves, help=f"number of scales (default {d.octaves})")
    p.add_argument("--octave-scale", type=finite_float, default=d.octave_scale, help=f"size ratio between octaves (default {d.octave_scale})")
    p.add_argument("--steps", type=int, default=d.steps, help=f"steps per octave (default {d.steps})")
    p.add_argument("--step-size", type=finite_float, default=round(d.step_size * 255, 3),
                   help=f"step in 0..255 pixel units after gradient normalisation (default {d.step_size * 255:.3g})")
    p.add_argument("--roll", type=int, default=d.roll, help=f"largest random shift in pixels (default {d.roll})")
    p.add_argument("--tile", type=int, default=d.tile_size, help=f"tile side for the gradient (default {d.tile_size})")
    p.add_argument("--size", type=int, default=DEFAULT_SIZE, help=f"longest side of the output (default {DEFAULT_SIZE}; 0 keeps the photo's size)")
    add_vgg_arguments(p, DEFAULT_OUTPUT, seed=d.seed)
    p.set_defaults(run=run)


def settings_from(args: argparse.Namespace):
    """Validate the arguments (no weights needed) and turn them into DreamSettings."""
    from models.vgg import layer_plan
    from tinygrad_cv.vision.dream import DreamSettings
    from tinygrad_cv.vision.optvis import check_unit

    check_output(args.output)
    if args.steps < 1 or args.tile < 16 or args.size < 0 or args.roll < 0 or args.step_size <= 0:
        raise ValueError(f"need --steps >= 1, --tile >= 16, --size >= 0, --roll >= 0 and --step-size > 0 "
                         f"(got {args.steps}, {args.tile}, {args.size}, {args.roll}, {args.step_size})")
    check_unit(dict(layer_plan(args.model)), args.layer, [] if args.channel is None else [args.channel])
    return DreamSettings(layer=args.layer, channel=args.channel, octaves=args.octaves,
                         octave_scale=args.octave_scale, steps=args.steps, step_size=args.step_size / 255,
                         roll=args.roll, tile_size=args.tile, seed=args.seed)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from tinygrad_cv.vision.dream import dream, octave_sizes
    from tinygrad_cv.vision.image import load_image, save_image
    from tinygrad_cv.vision.samples import sample_photo
    from tinygrad_cv.vision.style import fit_longest_side

    settings = settings_from(args)
    if args.image is None:
        print("no image given: dreaming on scikit-learn's china.jpg")
    photo = sample_photo("china.jpg") if args.image is None else load_image(args.image)
    if args.size and max(photo.shape[:2]) != args.size:
        photo = fit_longest_side(photo, args.size)
    octave_sizes(*photo.shape[:2], settings.octaves, settings.octave_scale)  # fail early on tiny images
    model = load_model(args)
    bar = tqdm(total=settings.octaves * settings.steps, unit="step", dynamic_ncols=True)

    def progress(info) -> None:
        bar.set_description(f"octave {info.octave + 1}/{info.octaves} ({info.size[1]}x{info.size[0]})")
        bar.update(1)
        bar.set_postfix(objective=f"{info.value:.4g}", refresh=False)

    start = time.perf_counter()
    result = dream(model, photo, settings, callbacks=[progress])
    bar.close()
    save_image(args.output, result.image)
    print(f"wrote {args.output} ({result.image.shape[1]}x{result.image.shape[0]}) in {time.perf_counter() - start:.1f} s")
    if result.status != "done":
        print("interrupted: the image above is the last completed step, resized to the photo's size")
        return 130
    return 0
