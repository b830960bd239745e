"""How well a style taught with `tinygrad-cv fast-style --train-style` matches its painting.

    python benchmarks/eval_new_style.py PAINTING STYLE.npz

On 10 held-out views (crops of china.jpg, flower.jpg and grace_hopper.jpg, never trained on;
``held_out_views``), the relative style loss (relative Gram error at relu1_2 ... relu4_3, as in
training) of the network's pictures with the new style, against the starting point of training (the
mean of the 26 styles' parameters). The issue's bar: the ratio is at most 0.5.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout, uninstalled


def main(painting_path: str, style_path: str) -> int:
    from models.stylenet import load_stylenet
    from models.vgg import load_vgg
    from tinygrad_cv.vision.fast_style import load_style_file
    from tinygrad_cv.vision.fast_style_train import (TrainSettings, held_out_views, relative_style_loss,
                                                     start_parameters, style_targets)
    from tinygrad_cv.vision.image import load_image

    net, vgg = load_stylenet(), load_vgg("vgg16")
    gammas, betas, meta = load_style_file(style_path, net)
    new = net.add_styles(gammas, betas)
    start = net.add_styles(*start_parameters(net))
    size = meta.get("settings", {}).get("style_size", TrainSettings().style_size)
    targets = style_targets(vgg, load_image(painting_path), size)
    views = held_out_views()
    trained, initial = (relative_style_loss(net, net.one_hot(i), vgg, targets, views) for i in (new, start))
    print(f"{style_path} ({meta.get('steps')} steps): relative style loss on {len(views)} held-out views "
          f"{trained:.3f}, at the start (mean of the 26 styles) {initial:.3f}: ratio {trained / initial:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
