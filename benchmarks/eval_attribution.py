"""Sanity checks of the four attribution maps over the bundled photos, on EfficientNet-Lite0.

For each photo (scikit-learn, scikit-image, matplotlib: tinygrad_cv.vision.samples.BUNDLED_PHOTOS) and its
top class:
- the Spearman rank correlation between the map of the trained network and of the fully randomised one
  (every layer re-drawn, Adebayo et al. 2018), per method: a map that depends on the weights scores low;
- integrated gradients' completeness error with the adaptive step rule (and, with --uniform, with
  equally spaced steps at the same number of gradient evaluations);
- with --deletion, the area under the deletion curve per method and for a random order (smaller is
  better: the map found the pixels the class needs).

    python benchmarks/eval_attribution.py                       # all 11 photos, default settings
    python benchmarks/eval_attribution.py --photos 3 --samples 8 --steps 16   # a quick look

Writes a JSON file (atomically) and prints a table; Ctrl-C stops after the current photo and keeps
what was measured.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from models.efficientnet import load_efficientnet  # noqa: E402
from tinygrad_cv.io.cache import atomic_write  # noqa: E402
from tinygrad_cv.vision import attribution as A  # noqa: E402
from tinygrad_cv.vision.samples import BUNDLED_PHOTOS, bundled_photo  # noqa: E402


def parse_args() -> argparse.Namespace:
    d = A.AttributionSettings()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--photos", type=int, default=len(BUNDLED_PHOTOS), help="how many of the bundled photos")
    p.add_argument("--methods", default=",".join(A.METHODS))
    p.add_argument("--samples", type=int, default=d.samples, help="SmoothGrad noisy copies")
    p.add_argument("--steps", type=int, default=d.steps, help="integrated gradients: gradient evaluations")
    p.add_argument("--uniform", action="store_true", help="also integrated gradients with uniform steps")
    p.add_argument("--deletion", action="store_true", help="also deletion curves (21 points per curve)")
    p.add_argument("--seed", type=int, default=0, help="seed of the randomised network")
    p.add_argument("--out", default="benchmarks/results/attribution.json")
    return p.parse_args()


def crop_of(model, photo: np.ndarray) -> np.ndarray:
    crop = model.deprocess(model.preprocess(photo))  # uint8 (224, 224, 3), what the network sees
    return crop.transpose(2, 0, 1).astype(np.float32) / 255.0


def evaluate_photo(model, randomized, name: str, methods, settings, args) -> dict:
    picture = crop_of(model, bundled_photo(name))
    target = A.top_class(model, picture)
    row = {"photo": name, "class": target, "class_name": model.classes[target],
           "probability": float(A.class_probabilities(model, picture[None], target)[0])}
    t0 = time.perf_counter()
    trained = {m: A.attribute(model, picture, m, target, settings) for m in methods}
    row["seconds_trained_maps"] = time.perf_counter() - t0
    row["spearman"] = A.randomization_test(model, randomized, picture, target, methods, settings, trained)
    if "integrated-gradients" in trained:
        row["completeness_adaptive"] = trained["integrated-gradients"].completeness_error
        if args.uniform:
            uniform = A.integrated_gradients(model, picture, target, A.AttributionSettings(steps=settings.steps,
                                                                                            step_rule="uniform"))
            row["completeness_uniform"] = uniform.completeness_error
    if args.deletion:
        curves = {m: A.deletion_curve(model, picture, trained[m].map, target) for m in methods}
        curves["random order"] = A.deletion_curve(model, picture, None, target, seed=args.seed)
        row["deletion_auc"] = {k: A.area_under(v) for k, v in curves.items()}
    row["seconds"] = time.perf_counter() - t0
    return row


def summary(rows: list, methods) -> str:
    lines = [f"{'photo':18s} {'class':24s} " + " ".join(f"{m[:12]:>12s}" for m in methods)]
    for r in rows:
        lines.append(f"{r['photo']:18s} {r['class_name'][:24]:24s} "
                     + " ".join(f"{r['spearman'][m]:12.3f}" for m in methods))
    means = {m: float(np.mean([r["spearman"][m] for r in rows])) for m in methods}
    lines.append(f"{'mean Spearman':43s} " + " ".join(f"{means[m]:12.3f}" for m in methods))
    for key in ("completeness_adaptive", "completeness_uniform"):
        values = [r[key] for r in rows if key in r]
        if values:
            lines.append(f"integrated gradients, {key.split('_')[1]} steps: completeness error mean "
                         f"{100 * np.mean(values):.2f}%, max {100 * np.max(values):.2f}% over {len(values)} photos")
    if rows and "deletion_auc" in rows[0]:
        keys = list(rows[0]["deletion_auc"])
        lines.append("deletion AUC (mean): " + ", ".join(
            f"{k} {np.mean([r['deletion_auc'][k] for r in rows]):.3f}" for k in keys))
    return "\n".join(lines)


def main() -> int:
    from tqdm import tqdm

    args = parse_args()
    methods = [m for m in args.methods.split(",") if m]
    for m in methods:
        if m not in A.METHODS:
            raise SystemExit(f"unknown method {m!r}: choose from {', '.join(A.METHODS)}")
    settings = A.AttributionSettings(samples=args.samples, steps=args.steps)
    model = load_efficientnet()
    randomized = A.fully_randomized(model, seed=args.seed)
    rows, start = [], time.perf_counter()
    try:
        for name in tqdm(BUNDLED_PHOTOS[:args.photos], unit="photo"):
            rows.append(evaluate_photo(model, randomized, name, methods, settings, args))
    except KeyboardInterrupt:
        print(f"\ninterrupted: keeping the {len(rows)} photos measured")
    table = summary(rows, methods)
    print(table)
    report = {"settings": vars(args), "seconds": time.perf_counter() - start, "rows": rows, "table": table}
    out = ROOT / args.out if not Path(args.out).is_absolute() else Path(args.out)
    with atomic_write(out) as f:
        f.write(json.dumps(report, indent=1).encode())
    print(f"wrote {out} ({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
