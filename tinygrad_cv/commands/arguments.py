"""Argument checks every command shares: numbers that must be finite, and errors on one line.

``finite_float`` is the ``type=`` of every float option: ``float("nan")`` and ``float("inf")`` parse,
so without it ``--style-weight nan`` would load a network, start, and stop at the first step.
``OneLineParser`` prints a bad argument as one line naming the option, instead of the full usage.
"""
from __future__ import annotations

import argparse
import math
import sys
from typing import NoReturn


def finite_float(text: str) -> float:
    """argparse type: a float that is neither NaN nor infinite."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid float value: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line: ``prog: error: message (see prog --help)``."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)
