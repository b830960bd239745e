"""What every command does with bad input before any work: NaN/inf numbers and decompression bombs end
with one line on stderr, exit code 2, and no output file."""
from __future__ import annotations

import argparse

import numpy as np
import pytest
from PIL import Image

from tinygrad_cv.cli import COMMANDS, build_parser, main
from tinygrad_cv.commands.arguments import finite_float
from tinygrad_cv.vision.image import load_image


def float_options(parser: argparse.ArgumentParser, prefix=()) -> list:
    """(subcommand path, option, type) for every option with a numeric float type, in every subparser."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += float_options(sub, prefix + (name,))
        elif action.type in (float, finite_float) and action.option_strings:
            found.append((prefix, action.option_strings[-1], action.type))
    return found


OPTIONS = float_options(build_parser())


def test_every_float_option_of_every_command_is_finite_float():
    assert {path[0] for path, _, _ in OPTIONS} >= {"style", "visualize", "dream", "ae"}
    plain = [(" ".join(path), option) for path, option, kind in OPTIONS if kind is float]
    assert not plain, f"use type=finite_float for {plain}"


@pytest.mark.parametrize("path, option", [(path, option) for path, option, _ in OPTIONS])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_numbers_stop_before_any_work(path, option, value, capsys, tmp_path):
    out = tmp_path / "out.png"
    with pytest.raises(SystemExit) as exit_:
        main([*path, f"{option}={value}", "-o" if path[0] != "ae" else "--out", str(out)])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and not out.exists()
    assert len(err.strip().splitlines()) == 1 and "is not a finite number" in err and option in err, err


def test_finite_float_parses_numbers():
    assert finite_float("1e-3") == 1e-3 and finite_float("-2") == -2.0
    with pytest.raises(argparse.ArgumentTypeError, match="invalid float value"):
        finite_float("ten")


@pytest.fixture
def bomb(tmp_path, monkeypatch):
    """A 64x64 PNG, and Pillow's limit lowered so that it counts as a decompression bomb."""
    path = tmp_path / "bomb.png"
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    return path


@pytest.mark.parametrize("pixels", [1000, 3000])  # above the limit (Pillow warns), above twice it (raises)
def test_load_image_refuses_a_decompression_bomb(bomb, monkeypatch, pixels):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", pixels)
    with pytest.raises(ValueError, match="safety limit"):
        load_image(bomb)


@pytest.mark.parametrize("argv", [
    ["style", "{bomb}", "{ok}"], ["style", "{ok}", "{bomb}"], ["style", "{ok}", "{ok}", "--init", "{bomb}"],
    ["style", "{ok}", "{ok}", "--content-mask", "{bomb}", "--style-mask", "{ok}"],
    ["style", "{ok}", "{ok}", "--photo", "--content-mask", "{ok}", "--style-mask", "{bomb}"],
    ["dream", "{bomb}"],
])
def test_commands_end_a_decompression_bomb_with_one_line(bomb, tmp_path, argv, capsys):
    ok = tmp_path / "ok.png"
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(ok)  # 600 pixels: under the lowered limit
    out = tmp_path / "out.png"
    code = main([a.format(bomb=bomb, ok=ok) for a in argv] + ["-o", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    assert len(err.strip().splitlines()) == 1 and "safety limit" in err, err


def test_commands_are_all_listed():
    """visualize reads no image file: its loader fix is the finite numbers above."""
    assert {c.__name__.rsplit(".", 1)[-1] for c in COMMANDS} >= {"style", "visualize", "dream"}
