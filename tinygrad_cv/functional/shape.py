"""Ops that move values around without changing them: reshape, transpose, indexing, pad, join."""
from __future__ import annotations

from typing import Any, Optional, Sequence

from tinygrad_cv import backend
from tinygrad_cv.tensor import Function, Tensor, TensorLike


class Reshape(Function):
    def forward(self, a: Any, shape: tuple) -> Any:
        self.shape = a.shape
        try:
            return a.reshape(shape)
        except ValueError:
            raise ValueError(f"reshape: cannot reshape shape {a.shape} ({a.size} values) into {shape}") from None

    def backward(self, grad: Any) -> Any:
        return grad.reshape(self.shape)


def reshape(a: TensorLike, shape: Sequence[int]) -> Tensor:
    """Same values, new shape (one axis may be -1). The gradient is reshaped back."""
    return Reshape.apply(a, shape=tuple(shape))


class Transpose(Function):
    def forward(self, a: Any, axes: Optional[tuple]) -> Any:
        self.axes = tuple(reversed(range(a.ndim))) if axes is None else tuple(ax % a.ndim for ax in axes)
        if sorted(self.axes) != list(range(a.ndim)):
            raise ValueError(f"transpose: axes {axes} are not a permutation for shape {a.shape}")
        return a.transpose(self.axes)

    def backward(self, grad: Any) -> Any:
        inverse = [0] * len(self.axes)
        for i, ax in enumerate(self.axes):
            inverse[ax] = i
        return grad.transpose(inverse)


def transpose(a: TensorLike, axes: Optional[Sequence[int]] = None) -> Tensor:
    """Permute axes (reverse them by default). The gradient is permuted back by the inverse."""
    return Transpose.apply(a, axes=None if axes is None else tuple(axes))


def permute(a: TensorLike, axes: Sequence[int]) -> Tensor:
    """Same as transpose with explicit axes, under PyTorch's name."""
    return transpose(a, axes)


def _plain_index(index: Any) -> Any:
    """Replace Tensors inside an index by their arrays (integer-array indexing)."""
    if isinstance(index, tuple):
        return tuple(_plain_index(i) for i in index)
    return index.data.astype("int64") if isinstance(index, Tensor) else index


def _is_basic(index: Any) -> bool:
    """True for NumPy "basic" indexing (ints, slices, None, Ellipsis): no integer or boolean arrays."""
    parts = index if isinstance(index, tuple) else (index,)
    return not any(isinstance(i, list) or hasattr(i, "shape") for i in parts)


class GetItem(Function):
    def forward(self, a: Any, index: Any) -> Any:
        self.shape, self.dtype, self.index = a.shape, a.dtype, index
        return a[index]

    def backward(self, grad: Any) -> Any:
        xp = backend.get_array_module(grad)
        out = xp.zeros(self.shape, dtype=self.dtype)
        if _is_basic(self.index):
            out[self.index] = grad  # slices pick each element at most once
        else:
            xp.add.at(out, self.index, grad)  # an index array may pick an element twice: add both
        return out


def getitem(a: TensorLike, index: Any) -> Tensor:
    """a[index] for slices, integers, None/Ellipsis and integer arrays.

    The gradient scatters back into a zero array of a's shape, adding where an element was taken twice.
    """
    return GetItem.apply(a, index=_plain_index(index))


class Pad(Function):
    def forward(self, a: Any, pad_width: tuple, value: float) -> Any:
        self.inner = tuple(slice(before, before + n) for (before, _), n in zip(pad_width, a.shape))
        return backend.get_array_module(a).pad(a, pad_width, constant_values=value)

    def backward(self, grad: Any) -> Any:
        return grad[self.inner]


def pad(a: TensorLike, pad_width: Sequence[Sequence[int]], value: float = 0.0) -> Tensor:
    """Constant padding, NumPy's convention: pad_width = ((before, after), ...) for every axis.

    The gradient is the slice of the output gradient that covers the original values.
    """
    a = a if isinstance(a, Tensor) else Tensor(a)
    widths = tuple((int(b), int(e)) for b, e in pad_width)
    if len(widths) != a.ndim or any(b < 0 or e < 0 for b, e in widths):
        raise ValueError(f"pad: need one non-negative (before, after) pair per axis of {a.shape}, got {widths}")
    return Pad.apply(a, pad_width=widths, value=value)


class Concatenate(Function):
    def forward(self, *arrays: Any, axis: int) -> Any:
        xp = backend.get_array_module(*arrays)
        self.axis = axis % arrays[0].ndim
        self.bounds = [0]
        for arr in arrays:
            self.bounds.append(self.bounds[-1] + arr.shape[self.axis])
        try:
            return xp.concatenate(arrays, axis=axis)
        except ValueError:
            raise ValueError(f"concatenate: shapes {[a.shape for a in arrays]} differ off axis {axis}") from None

    def backward(self, grad: Any) -> tuple:
        lead = (slice(None),) * self.axis
        return tuple(grad[lead + (slice(lo, hi),)] for lo, hi in zip(self.bounds, self.bounds[1:]))


def concatenate(tensors: Sequence[TensorLike], axis: int = 0) -> Tensor:
    """Join along an existing axis. Each input's gradient is its slice of the output gradient."""
    return Concatenate.apply(*tensors, axis=axis)


class Stack(Function):
    def forward(self, *arrays: Any, axis: int) -> Any:
        xp = backend.get_array_module(*arrays)
        if len({a.shape for a in arrays}) != 1:
            raise ValueError(f"stack: all shapes must be equal, got {[a.shape for a in arrays]}")
        self.axis = axis
        return xp.stack(arrays, axis=axis)

    def backward(self, grad: Any) -> tuple:
        xp = backend.get_array_module(grad)
        return tuple(xp.moveaxis(grad, self.axis, 0))


def stack(tensors: Sequence[TensorLike], axis: int = 0) -> Tensor:
    """Join along a new axis. Each input's gradient is its slice of the output gradient."""
    return Stack.apply(*tensors, axis=axis)
