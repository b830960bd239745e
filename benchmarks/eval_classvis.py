"""How well class visualisation works on EfficientNet-Lite0, at the defaults of
`tinygrad-cv visualize --model efficientnet-lite0 --class K` (optvis.CLASS_SETTINGS).

For each of --classes random ImageNet classes (seeded), render the picture, save it as PNG, read it
back, and measure what the network thinks of it:
- p(saved): the probability of class K on the saved 224 x 224 picture, as it is;
- p(crops): the mean probability of K over --crops random square crops of 60-90% of the side at random
  places, half of them flipped left-right, each resized to 224 px (Pillow, bicubic): a picture that
  only works pixel-for-pixel (adversarial noise) fails this;
- seconds to render it. Pass: p(saved) >= 0.9 and p(crops) >= 0.7 and at most 120 s.

Writes results.md (the table), class_<K>.png for each class, sheet.png (the first 8 classes,
labelled, as in README) and sheet_all.png (all of them) into --out. Run it alone on the machine (2 cores): about a minute per class.

    python benchmarks/eval_classvis.py --out benchmarks/classvis

On a shared machine, time each class alone (``--only I``: the I-th of the seeded classes; it writes
its picture and its row, class_<K>.md), then assemble the table and the sheet from the rows
(``--collect``, which renders nothing):

    for i in 0 1 ... 9; do quiet_run.sh python benchmarks/eval_classvis.py --only $i; done
    python benchmarks/eval_classvis.py --collect
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import List, Tuple

import numpy as np
from PIL import Image
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout, uninstalled


def crop_probabilities(model, picture: np.ndarray, index: int, crops: int, rng: np.random.Generator) -> np.ndarray:
    """p(class) on ``crops`` random 60-90% crops of the picture, half flipped, resized to 224."""
    from tinygrad_cv import Tensor, no_grad
    from tinygrad_cv import functional as F

    side = picture.shape[0]
    batch = []
    for i in range(crops):
        s = int(round(side * rng.uniform(0.6, 0.9)))
        top, left = (int(v) for v in rng.integers(0, side - s + 1, size=2))
        crop = Image.fromarray(picture[top:top + s, left:left + s]).resize((224, 224), Image.BICUBIC)
        crop = np.asarray(crop)
        batch.append(crop[:, ::-1] if i % 2 else crop)
    x = np.concatenate([model.preprocess(c, crop=False).data for c in batch])
    with no_grad():
        probs = F.softmax(model(Tensor(x)), axis=1).data
    return probs[:, index]


def main() -> int:
    from models.efficientnet import load_efficientnet
    from tinygrad_cv import no_grad
    from tinygrad_cv import functional as F
    from tinygrad_cv.vision import optvis
    from tinygrad_cv.vision.image import load_image, save_image

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0, help="which random classes")
    parser.add_argument("--crops", type=int, default=20, help="random crops per picture")
    parser.add_argument("--out", default="benchmarks/classvis")
    parser.add_argument("--only", type=int, default=None, metavar="I", help="render only the I-th class (0-based)")
    parser.add_argument("--collect", action="store_true", help="table and sheet from the rows of earlier --only runs")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    classes = [int(k) for k in np.random.default_rng(args.seed).choice(1000, args.classes, replace=False)]
    settings = optvis.CLASS_SETTINGS
    if args.collect:
        return collect(out, classes, args, settings)
    model = load_efficientnet()
    if args.only is not None:
        if not 0 <= args.only < len(classes):
            parser.error(f"--only must be in 0..{len(classes) - 1}")
        classes = [classes[args.only]]
    rows, pictures = [], []
    for k in tqdm(classes, desc="classes", unit="class"):
        start = time.perf_counter()
        result = optvis.visualize(model, optvis.class_log_prob(k), settings)
        seconds = time.perf_counter() - start
        path = save_image(out / f"class_{k}.png", result.images[0])
        picture = load_image(path)
        with no_grad():
            probs = F.softmax(model(model.preprocess(picture, crop=False)), axis=1).data[0]
        p_saved, top = float(probs[k]), model.classes[int(np.argmax(probs))]
        p_crops = crop_probabilities(model, picture, k, args.crops, np.random.default_rng(k))
        ok = p_saved >= 0.9 and p_crops.mean() >= 0.7 and seconds <= 120
        rows.append(f"| {k} | {model.classes[k]} | {p_saved:.3f} | {p_crops.mean():.3f} | {p_crops.min():.3f} | "
                    f"{top} | {seconds:.0f} | {'yes' if ok else 'no'} |")
        pictures.append((result.images[0], f"{k} {model.classes[k]}"))
        tqdm.write(rows[-1])
        (out / f"class_{k}.md").write_text(rows[-1] + "\n")
    if args.only is not None:
        return 0
    return write_results(out, rows, pictures, args, settings)


def collect(out: Path, classes: List[int], args: argparse.Namespace, settings) -> int:
    """results.md and sheet.png from the class_<K>.md rows and class_<K>.png pictures of --only runs."""
    from models.efficientnet import imagenet_classes
    from tinygrad_cv.vision.image import load_image

    names = imagenet_classes()
    missing = [k for k in classes if not (out / f"class_{k}.md").exists()]
    if missing:
        print(f"no row yet for classes {missing}: run --only for them first")
        return 1
    rows = [(out / f"class_{k}.md").read_text().strip() for k in classes]
    pictures = [(load_image(out / f"class_{k}.png"), f"{k} {names[k]}") for k in classes]
    return write_results(out, rows, pictures, args, settings)


def write_results(out: Path, rows: List[str], pictures: List[Tuple[np.ndarray, str]], args: argparse.Namespace,
                  settings) -> int:
    from tinygrad_cv.vision.image import save_image
    from tinygrad_cv.vision.sheets import image_grid

    passed = sum(row.endswith("yes |") for row in rows)
    table = ["| class | name | p(saved) | p(crops) mean | p(crops) min | top-1 on saved | seconds | pass |",
             "|---|---|---|---|---|---|---|---|"] + rows
    text = (f"# Class visualisation, EfficientNet-Lite0, {args.classes} random classes (seed {args.seed})\n\n"
            f"Settings: {settings}\n\n" + "\n".join(table) + f"\n\n{passed} of {len(rows)} pass "
            f"(p(saved) >= 0.9, mean p over {args.crops} crops of 60-90% with flips >= 0.7, <= 120 s).\n")
    (out / "results.md").write_text(text)
    for name, shown, columns in (("sheet.png", pictures[:8], 4), ("sheet_all.png", pictures, 5)):
        save_image(out / name, image_grid([p for p, _ in shown], columns=columns, labels=[label for _, label in shown]))
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
