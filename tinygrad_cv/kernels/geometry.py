"""How a window slides over an image: kernel, stride, padding, dilation, and the output size.

Convolution and pooling share this geometry. Per axis, a window of ``kernel`` taps spaced
``dilation`` apart spans ``dilation * (kernel - 1) + 1`` pixels of the zero-padded image, and stops
every ``stride`` pixels, so the output has ``(size + 2 * padding - span) // stride + 1`` positions.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Sequence, Tuple, Union

import numpy as np

IntOrPair = Union[int, Sequence[int]]


def pair(value: IntOrPair, name: str) -> Tuple[int, int]:
    """3 -> (3, 3); (3, 5) -> (3, 5). Raises ValueError for anything else."""
    if isinstance(value, (int, np.integer)):
        return int(value), int(value)
    values = tuple(value)
    if len(values) != 2 or not all(isinstance(v, (int, np.integer)) for v in values):
        raise ValueError(f"{name} must be an int or a pair of ints (height, width), got {value!r}")
    return int(values[0]), int(values[1])


@dataclass(frozen=True)
class Window:
    """A sliding window, per axis (height, width). Build one with ``Window.of`` from ints or pairs."""

    kernel: Tuple[int, int]
    stride: Tuple[int, int] = (1, 1)
    padding: Tuple[int, int] = (0, 0)
    dilation: Tuple[int, int] = (1, 1)

    @staticmethod
    def of(kernel_size: IntOrPair, stride: IntOrPair = 1, padding: IntOrPair = 0,
           dilation: IntOrPair = 1) -> "Window":
        """Normalise ints to pairs and check the values (ValueError naming the bad one)."""
        win = _window(pair(kernel_size, "kernel_size"), pair(stride, "stride"), pair(padding, "padding"),
                      pair(dilation, "dilation"))
        for name in ("kernel", "stride", "dilation"):
            if min(getattr(win, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(win, name)}")
        if min(win.padding) < 0:
            raise ValueError(f"padding must be >= 0, got {win.padding}")
        return win

    @property
    def span(self) -> Tuple[int, int]:
        """Extent of one window on the padded image: dilation * (kernel - 1) + 1 per axis."""
        return tuple(d * (k - 1) + 1 for k, d in zip(self.kernel, self.dilation))  # type: ignore

    def output_size(self, x_shape: Sequence[int], op: str = "im2col") -> Tuple[int, int]:
        """(OH, OW) for an (N, C, H, W) input; ValueError if the window does not fit."""
        Hp, Wp = x_shape[-2] + 2 * self.padding[0], x_shape[-1] + 2 * self.padding[1]
        if self.span[0] > Hp or self.span[1] > Wp:
            raise ValueError(
                f"{op}: kernel {self.kernel} with dilation {self.dilation} spans {self.span}, larger "
                f"than the padded input {(Hp, Wp)} (input shape {tuple(x_shape)}, padding {self.padding})")
        return (Hp - self.span[0]) // self.stride[0] + 1, (Wp - self.span[1]) // self.stride[1] + 1


# A network asks for the same few windows at every step: build each one once.
_window = functools.lru_cache(maxsize=256)(Window)


def window_views(xpad: Any, win: Window, out_hw: Tuple[int, int]) -> list:
    """The KH*KW strided views ``xpad[:, :, tap rows, tap cols]``, one per kernel tap (kh, kw).

    View (kh, kw) has shape (N, C, OH, OW) and holds, for every output pixel, the input value under
    tap (kh, kw) of its window. Pooling and col2im loop over these KH*KW views (never over pixels).
    """
    (KH, KW), (SH, SW), (DH, DW) = win.kernel, win.stride, win.dilation
    OH, OW = out_hw
    return [xpad[:, :, kh * DH:kh * DH + SH * (OH - 1) + 1:SH, kw * DW:kw * DW + SW * (OW - 1) + 1:SW]
            for kh in range(KH) for kw in range(KW)]


def index_dtype(win: Window) -> Any:
    """Smallest integer type that holds a tap index kh*KW + kw (max pooling's argmax)."""
    return np.uint8 if win.kernel[0] * win.kernel[1] <= 256 else np.int32
