"""Layers and networks: Module, Parameter, Linear, Sequential, activations, convolutions, init."""
from tinygrad_cv.nn import init
from tinygrad_cv.nn.layers import Flatten, Linear, ReLU, Sequential, Sigmoid, Tanh, Unflatten
from tinygrad_cv.nn.module import Module, Parameter

__all__ = ["Module", "Parameter", "Linear", "Sequential", "ReLU", "Sigmoid", "Tanh", "Flatten", "Unflatten", "init"]
