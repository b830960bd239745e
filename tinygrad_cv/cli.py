"""The `tinygrad-cv` command: one entry point, one subcommand per job.

Each subcommand lives in tinygrad_cv/commands/<name>.py with two functions, ``add_parser(subparsers)``
and ``run(args) -> exit code``; this file only lists them. Heavy imports happen inside ``run``, so
``tinygrad-cv --help`` is instant.
"""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from tinygrad_cv import __version__
from tinygrad_cv.commands import ae, classify, data, doctor, dream, explain, fast_style, style, visualize, weights
from tinygrad_cv.commands.arguments import OneLineParser

COMMANDS = [style, fast_style, visualize, dream, classify, explain, ae, data, weights, doctor]


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="tinygrad-cv",
        description="Style transfer, feature visualisation and autoencoders on a from-scratch autograd.",
    )
    parser.add_argument("--version", action="version", version=f"tinygrad-cv {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(subparsers)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        # Bad input and missing files end with one clear line, not a traceback.
        print(f"tinygrad-cv {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
