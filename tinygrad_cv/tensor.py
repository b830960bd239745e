"""Tensor, Function and the reverse-mode engine: the whole of autograd in one file.

A ``Tensor`` wraps one array (NumPy or CuPy). Every differentiable operation is a ``Function``
subclass whose ``forward`` computes on raw arrays and whose ``backward`` maps the gradient of the
output to one gradient per input. When an op runs with gradients enabled, the output remembers the
Function instance that made it (``_ctx``) and the Function remembers its inputs (``parents``): that
chain of references *is* the graph.

``loss.backward()`` then walks the graph once in reverse topological order (computed without
recursion, so a chain of 10,000 ops is fine), adds up gradients in a dictionary keyed by node, sums
away broadcast axes ("the adjoint of broadcast is sum") in one place, and finally writes ``.grad`` on
the leaves that asked for it. Afterwards the graph references are dropped so memory is freed.
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator, Optional, Sequence, Union

import numpy as np

from tinygrad_cv import anomaly, backend

_grad_enabled = True  # switched off by no_grad()


@contextlib.contextmanager
def no_grad() -> Iterator[None]:
    """Run ops without recording a graph (inference, optimiser updates). Also usable as a decorator."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, False
    try:
        yield
    finally:
        _grad_enabled = previous


def is_grad_enabled() -> bool:
    return _grad_enabled


def _as_array(value: Any, dtype: Any) -> Any:
    """Turn a Python scalar, list or array into an array of the given float dtype."""
    if isinstance(value, Tensor):
        return value.data
    return backend.get_array_module(value).asarray(value, dtype=dtype)


def _default_dtype(array: Any) -> Any:
    """Floating arrays keep their precision; everything else becomes float32."""
    return array.dtype if array.dtype.kind == "f" else np.float32


class Tensor:
    """An n-dimensional array that can remember how it was computed.

    Args:
        data: a NumPy or CuPy array, a nested list or a scalar. Float arrays keep their dtype
            (float64 stays float64, which gradient checks rely on); anything else becomes float32.
        requires_grad: whether ``backward`` should fill ``.grad`` for this tensor.
        dtype: force a dtype.
    """

    __array_priority__ = 1000  # make `ndarray + Tensor` call Tensor.__radd__ instead of numpy's add

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None) -> None:
        if isinstance(data, Tensor):
            data = data.data
        data = backend.get_array_module(data).asarray(data)
        self.data = data.astype(dtype if dtype is not None else _default_dtype(data), copy=False)
        self.requires_grad = requires_grad
        self.grad: Any = None
        self._ctx: Optional[Function] = None  # the Function that produced this tensor, if recorded

    # ---- what it is ---------------------------------------------------------------------------
    @property
    def shape(self) -> tuple:
        return tuple(self.data.shape)

    @property
    def dtype(self) -> Any:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return int(self.data.size)

    @property
    def device(self) -> str:
        """'cpu' or 'cuda', read from the array type: the device belongs to the data."""
        return backend.device_of(self.data)

    @property
    def is_leaf(self) -> bool:
        return self._ctx is None

    def __repr__(self) -> str:
        extra = ", requires_grad=True" if self.requires_grad else ""
        return f"Tensor({self.numpy()!r}, device={self.device!r}{extra})"

    def __len__(self) -> int:
        return len(self.data)

    # ---- leaving the graph ----------------------------------------------------------------------
    def numpy(self) -> np.ndarray:
        """The values as a NumPy array (copied from the GPU if needed)."""
        return backend.to_device(self.data, "cpu")

    def item(self) -> float:
        return float(self.data.reshape(-1)[0]) if self.size == 1 else self._not_scalar("item()")

    def _not_scalar(self, what: str) -> Any:
        raise ValueError(f"{what} needs a tensor with one element, got shape {self.shape}")

    def detach(self) -> "Tensor":
        """The same data, cut from the graph (no gradient flows through it)."""
        return Tensor(self.data)

    def to(self, device: str) -> "Tensor":
        """A copy on 'cpu' or 'cuda' (a leaf; gradients do not flow across devices)."""
        return Tensor(backend.to_device(self.data, device), requires_grad=self.requires_grad)

    def astype(self, dtype: Any) -> "Tensor":
        return Tensor(self.data.astype(dtype), requires_grad=self.requires_grad)

    # ---- the engine -----------------------------------------------------------------------------
    def backward(self, grad: Any = None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into ``leaf.grad`` for every leaf with ``requires_grad``.

        Args:
            grad: gradient of some scalar with respect to this tensor; defaults to 1 for a
                one-element tensor, required otherwise.
            retain_graph: keep the graph so backward can run again through it.
        """
        grads = {id(self): self._seed_gradient(grad)}  # d(self)/d(node), by node, while running
        for node in reversed(topological_order(self)):  # every consumer before what it consumes
            g = grads.pop(id(node), None)
            if g is None:
                continue
            fn = node._ctx
            if fn is None:  # a leaf: its gradient is complete
                _accumulate_leaf(node, g)
                continue
            for parent, parent_grad in zip(fn.parents, _run_backward(fn, g)):
                if parent is None or parent_grad is None or not parent.requires_grad:
                    continue
                parent_grad = unbroadcast(parent_grad, parent.shape)  # the adjoint of broadcasting
                key = id(parent)
                grads[key] = grads[key] + parent_grad if key in grads else parent_grad
            if not retain_graph:
                node._ctx = None  # drop the Function, its saved arrays and its parents

    def _seed_gradient(self, grad: Any) -> Any:
        """The gradient backward() starts from, checked: 1 for a scalar, else the given array."""
        if not self.requires_grad:
            raise ValueError(
                "backward() on a tensor that does not require grad: no input of the computation "
                "had requires_grad=True (or it ran under no_grad())"
            )
        if grad is None:
            if self.size != 1:
                raise ValueError(
                    f"backward() on a tensor of shape {self.shape} needs a gradient of that shape: "
                    "call loss.backward() on a scalar (e.g. .sum() or .mean() first), or pass "
                    "backward(grad=array_of_ones_like_it)"
                )
            return backend.get_array_module(self.data).ones_like(self.data)
        grad = _as_array(grad, self.dtype)
        if grad.shape != self.data.shape:
            raise ValueError(f"backward(): grad has shape {grad.shape}, tensor has shape {self.shape}")
        return grad

    # ---- operators: thin calls into tinygrad_cv.functional ------------------------------------------
    def __add__(self, other: Any) -> "Tensor":
        return F.add(self, other)

    def __radd__(self, other: Any) -> "Tensor":
        return F.add(other, self)

    def __sub__(self, other: Any) -> "Tensor":
        return F.sub(self, other)

    def __rsub__(self, other: Any) -> "Tensor":
        return F.sub(other, self)

    def __mul__(self, other: Any) -> "Tensor":
        return F.mul(self, other)

    def __rmul__(self, other: Any) -> "Tensor":
        return F.mul(other, self)

    def __truediv__(self, other: Any) -> "Tensor":
        return F.div(self, other)

    def __rtruediv__(self, other: Any) -> "Tensor":
        return F.div(other, self)

    def __neg__(self) -> "Tensor":
        return F.neg(self)

    def __pow__(self, exponent: float) -> "Tensor":
        return F.pow(self, exponent)

    def __matmul__(self, other: Any) -> "Tensor":
        return F.matmul(self, other)

    def __rmatmul__(self, other: Any) -> "Tensor":
        return F.matmul(other, self)

    def __getitem__(self, index: Any) -> "Tensor":
        return F.getitem(self, index)

    # ---- methods, also thin calls -----------------------------------------------------------------
    def sum(self, axis: Any = None, keepdims: bool = False) -> "Tensor":
        return F.sum(self, axis, keepdims)

    def mean(self, axis: Any = None, keepdims: bool = False) -> "Tensor":
        return F.mean(self, axis, keepdims)

    def max(self, axis: Any = None, keepdims: bool = False) -> "Tensor":
        return F.max(self, axis, keepdims)

    def reshape(self, *shape: Any) -> "Tensor":
        return F.reshape(self, shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape)

    def transpose(self, *axes: Any) -> "Tensor":
        return F.transpose(self, axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else (axes or None))

    def permute(self, *axes: Any) -> "Tensor":
        return self.transpose(*axes)

    @property
    def T(self) -> "Tensor":
        return F.transpose(self, None)

    def exp(self) -> "Tensor":
        return F.exp(self)

    def log(self) -> "Tensor":
        return F.log(self)

    def sqrt(self) -> "Tensor":
        return F.sqrt(self)

    def abs(self) -> "Tensor":
        return F.abs(self)

    def relu(self) -> "Tensor":
        return F.relu(self)

    def sigmoid(self) -> "Tensor":
        return F.sigmoid(self)

    def tanh(self) -> "Tensor":
        return F.tanh(self)

    def clip(self, low: Optional[float], high: Optional[float]) -> "Tensor":
        return F.clip(self, low, high)


def _accumulate_leaf(leaf: Tensor, g: Any) -> None:
    """Write a finished gradient onto a leaf (adding to what earlier backward calls left there)."""
    xp = backend.get_array_module(g)
    g = xp.array(g, dtype=leaf.dtype, order="C")  # a copy: broadcast views are read-only, and a
    # gradient array may be shared with another node's; the leaf must own its own memory
    leaf.grad = g if leaf.grad is None else leaf.grad + g


def _run_backward(fn: "Function", grad: Any) -> tuple:
    """``fn.backward(grad)`` as a tuple of one gradient per parent (checked in anomaly mode)."""
    parent_grads = fn.backward(grad)
    parent_grads = parent_grads if isinstance(parent_grads, tuple) else (parent_grads,)
    if anomaly.enabled():
        anomaly.check_finite(parent_grads, type(fn).__name__, "backward", [p and p.data for p in fn.parents])
    return parent_grads


def topological_order(root: Tensor) -> list:
    """Nodes reachable from ``root`` through requires_grad edges, every input before its consumers.

    Iterative depth-first search: each node is pushed once to be expanded and once more (marked
    ``done``) to be emitted after all of its inputs, so no Python recursion limit applies.
    """
    order: list = []
    seen: set = set()
    stack: list = [(root, False)]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        if node._ctx is not None:
            for parent in node._ctx.parents:
                if parent is not None and parent.requires_grad and id(parent) not in seen:
                    stack.append((parent, False))
    return order


def unbroadcast(grad: Any, shape: tuple) -> Any:
    """Sum ``grad`` down to ``shape``: the adjoint of NumPy broadcasting.

    Broadcasting copies an input along new leading axes and along axes of size 1, so the gradient of
    the input is the sum of the output gradient over exactly those axes.
    """
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad


class Function:
    """One differentiable operation. Subclasses define ``forward`` and, right below it, ``backward``.

    ``forward(self, *arrays, **settings)`` receives raw arrays (one per Tensor input, None where an
    optional input is absent) and returns the output array; it may keep on ``self`` what backward
    needs. ``backward(self, grad)`` receives d(loss)/d(output) and returns d(loss)/d(input) for each
    input, in order (a tuple, or one array for one input; None where no gradient is defined). It
    may return gradients in the broadcast shape: the engine sums them back to each input's shape.
    ``self.needs_grad[i]`` says whether input i needs a gradient at all (return None if not).
    """

    parents: tuple
    needs_grad: tuple  # one bool per input: does the engine want its gradient?

    def forward(self, *arrays: Any, **settings: Any) -> Any:
        raise NotImplementedError

    def backward(self, grad: Any) -> Any:
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs: Any, **settings: Any) -> Tensor:
        """Run the op on Tensors (Python scalars and arrays are made constant Tensors) and record it."""
        tensors = _to_tensors(cls.__name__, inputs)
        fn = cls()
        # Which inputs want a gradient, so backward can skip work nobody needs (e.g. a conv's
        # weight gradient when the weights are frozen, as in style transfer). Like PyTorch's
        # ctx.needs_input_grad.
        fn.needs_grad = tuple(_grad_enabled and t is not None and t.requires_grad for t in tensors)
        arrays = [t.data if t is not None else None for t in tensors]
        out = fn.forward(*arrays, **settings)
        if anomaly.enabled():
            anomaly.check_finite([out], cls.__name__, "forward", arrays)
        needs_grad = _grad_enabled and any(t is not None and t.requires_grad for t in tensors)
        result = Tensor(out, requires_grad=needs_grad, dtype=out.dtype)
        if needs_grad:
            fn.parents = tuple(tensors)
            result._ctx = fn
        return result


def _to_tensors(op: str, inputs: Sequence[Any]) -> list:
    """Wrap constants as Tensors of the first Tensor input's dtype; refuse mixed devices."""
    first = next((x for x in inputs if isinstance(x, Tensor)), None)
    dtype = first.dtype if first is not None else np.float32
    device = first.device if first is not None else "cpu"
    tensors: list = []
    for x in inputs:
        if x is None:
            tensors.append(None)
            continue
        if not isinstance(x, Tensor):
            x = Tensor(backend.constant(x, dtype, device), dtype=dtype)
        if x.device != device:
            raise ValueError(f"{op}: inputs are on different devices ({device} and {x.device}); "
                             "move them with .to(device) first")
        tensors.append(x)
    return tensors


TensorLike = Union[Tensor, float, int, np.ndarray]

# Operators on Tensor call the functional ops, and the functional ops build on Tensor and Function.
# Importing functional here, after both classes exist, lets each side name the other without a
# second registration step: `functional` imports this module, which is already fully defined.
from tinygrad_cv import functional as F  # noqa: E402
