"""Module and Parameter: containers that find their own parameters.

A Module's parameters are found by walking its attributes in the order they were assigned (Python
dicts keep insertion order), descending into sub-Modules and lists/tuples of Modules. That makes
``named_parameters()`` deterministic without any registration step: the names are attribute paths
such as ``encoder.0.weight``.
"""
from __future__ import annotations

import os
from typing import Any, Dict, Iterator, List, Tuple

import numpy as np

from tinygrad_cv import backend
from tinygrad_cv.io.cache import atomic_write
from tinygrad_cv.tensor import Tensor


class Parameter(Tensor):
    """A Tensor that a Module owns and an optimiser updates (requires_grad=True)."""

    def __init__(self, data: Any, requires_grad: bool = True) -> None:
        super().__init__(data, requires_grad=requires_grad)


class Module:
    """Base class of layers and networks: subclass, assign Parameters/Modules, define forward."""

    training: bool = True

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    # ---- finding parameters -----------------------------------------------------------------
    def children(self) -> Iterator[Tuple[str, "Module"]]:
        """Direct sub-modules with their attribute names (list items are named by index)."""
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value
            elif isinstance(value, (list, tuple)):
                for i, item in enumerate(value):
                    if isinstance(item, Module):
                        yield f"{name}.{i}", item

    def named_parameters(self, prefix: str = "") -> Iterator[Tuple[str, Parameter]]:
        """(dotted name, Parameter) pairs in assignment order, sub-modules depth first."""
        for name, value in vars(self).items():
            if isinstance(value, Parameter):
                yield prefix + name, value
        for name, child in self.children():
            yield from child.named_parameters(prefix + name + ".")

    def parameters(self) -> List[Parameter]:
        return [p for _, p in self.named_parameters()]

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None

    # ---- modes and devices ------------------------------------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        self.training = mode
        for _, child in self.children():
            child.train(mode)
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def to(self, device: str) -> "Module":
        """Move every parameter to 'cpu' or 'cuda' in place (the Parameter objects stay the same)."""
        for p in self.parameters():
            p.data = backend.to_device(p.data, device)
            p.grad = None if p.grad is None else backend.to_device(p.grad, device)
        return self

    # ---- saving and loading -------------------------------------------------------------------------
    def state_dict(self) -> Dict[str, Any]:
        """name -> copy of the parameter's array (on its device)."""
        return {name: p.data.copy() for name, p in self.named_parameters()}

    def load_state_dict(self, state: Dict[str, Any], strict: bool = True) -> None:
        """Copy arrays into the parameters, keeping each parameter's dtype and device.

        Raises ValueError naming missing/unexpected keys (when strict) and any shape mismatch.
        """
        params = dict(self.named_parameters())
        missing = [k for k in params if k not in state]
        unexpected = [k for k in state if k not in params]
        if strict and (missing or unexpected):
            raise ValueError(f"load_state_dict: missing keys {missing}, unexpected keys {unexpected}")
        for name, value in state.items():
            if name not in params:
                continue
            p = params[name]
            if tuple(value.shape) != p.shape:
                raise ValueError(f"load_state_dict: {name} has shape {tuple(value.shape)} in the state, {p.shape} in the model")
            p.data = backend.to_device(value, p.device).astype(p.dtype, copy=True)

    def save(self, path: str) -> None:
        """Write the state dict to a .npz file atomically (temp file in the same folder, then rename)."""
        arrays = {name: backend.to_device(a, "cpu") for name, a in self.state_dict().items()}
        save_npz_atomic(path, arrays)

    def load(self, path: str) -> "Module":
        """Load parameters saved by save()."""
        if not os.path.exists(path):
            raise FileNotFoundError(f"no such checkpoint: {path}")
        with np.load(path) as data:
            self.load_state_dict({k: data[k] for k in data.files})
        return self

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}("]
        for name, child in self.children():
            lines.append("  " + f"({name}): {child!r}".replace("\n", "\n  "))
        return "\n".join(lines) + ")" if len(lines) > 1 else f"{type(self).__name__}({self.extra_repr()})"

    def extra_repr(self) -> str:
        return ""


def save_npz_atomic(path: str, arrays: Dict[str, np.ndarray]) -> None:
    """np.savez through a temporary file that is renamed when complete: never a half-written file."""
    with atomic_write(path) as f:
        np.savez(f, **arrays)
