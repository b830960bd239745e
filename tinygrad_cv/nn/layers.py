"""Basic layers: Linear, Sequential, activations, Flatten."""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from tinygrad_cv import functional as F
from tinygrad_cv.nn import init
from tinygrad_cv.nn.module import Module, Parameter
from tinygrad_cv.tensor import Tensor


class Linear(Module):
    """y = x W^T + b, as PyTorch: weight shape (out_features, in_features).

    Initialised like PyTorch's default (Kaiming-uniform with gain 1/sqrt(3), i.e. U(+-1/sqrt(fan_in))),
    reproducible through ``rng`` or nn.init.manual_seed.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, rng: Optional[np.random.Generator] = None) -> None:
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(init.kaiming_uniform((out_features, in_features), gain=1 / np.sqrt(3), rng=rng))
        self.bias = Parameter(init.uniform_bias(in_features, out_features, rng=rng)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] != self.in_features:
            raise ValueError(f"Linear({self.in_features}, {self.out_features}): input shape {x.shape} has last axis {x.shape[-1]}")
        y = F.matmul(x, F.transpose(self.weight, (1, 0)))
        return y + self.bias if self.bias is not None else y

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, bias={self.bias is not None}"


class Sequential(Module):
    """Apply layers in order; index it like a list."""

    def __init__(self, *layers: Module) -> None:
        self.layers = list(layers)

    def forward(self, x: Any) -> Any:
        for layer in self.layers:
            x = layer(x)
        return x

    def __getitem__(self, i: int) -> Module:
        return self.layers[i]

    def __len__(self) -> int:
        return len(self.layers)

    def children(self):  # type: ignore[override]
        # Children named "0", "1", ... so parameters are "0.weight", "1.bias", as in PyTorch.
        for i, layer in enumerate(self.layers):
            yield str(i), layer


class ReLU(Module):
    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x)


class Sigmoid(Module):
    def forward(self, x: Tensor) -> Tensor:
        return F.sigmoid(x)


class Tanh(Module):
    def forward(self, x: Tensor) -> Tensor:
        return F.tanh(x)


class Flatten(Module):
    """(N, ...) -> (N, prod(...)): keep the batch axis, flatten the rest."""

    def forward(self, x: Tensor) -> Tensor:
        return F.reshape(x, (x.shape[0], -1))


class Unflatten(Module):
    """(N, prod(shape)) -> (N, *shape): the inverse of Flatten."""

    def __init__(self, shape: tuple) -> None:
        self.shape = tuple(shape)

    def forward(self, x: Tensor) -> Tensor:
        return F.reshape(x, (x.shape[0],) + self.shape)
