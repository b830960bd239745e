"""Small helpers the lessons share: where to save figures."""
from __future__ import annotations

import os
import sys
from pathlib import Path

# Lessons run as plain scripts from any folder; make the repository importable without installing.
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def output_dir(lesson: str) -> Path:
    """lessons_out/<lesson>/ (or $TINYGRAD_CV_LESSON_OUT/<lesson>/), created if needed."""
    base = Path(os.environ.get("TINYGRAD_CV_LESSON_OUT", ROOT / "lessons_out"))
    folder = base / lesson
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def save_figure(fig, folder: Path, name: str) -> Path:
    """Save a matplotlib figure as PNG, print where, and close it."""
    path = folder / name
    fig.savefig(path, dpi=110, bbox_inches="tight")
    print(f"saved {path}")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def dataset_choice(default: str = "mnist", choices: tuple = ("mnist", "digits")) -> str:
    """``--dataset NAME`` from the command line. Unknown arguments (a notebook kernel's) are ignored."""
    import argparse

    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--dataset", choices=choices, default=default)
    return parser.parse_known_args()[0].dataset
