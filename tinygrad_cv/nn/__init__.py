"""Layers and networks: Module, Parameter, Linear, Sequential, activations, convolutions, batch norm, init."""
from tinygrad_cv.nn import init
from tinygrad_cv.nn.conv import AvgPool2d, Conv2d, ConvTranspose2d, MaxPool2d, Upsample, UpsampleConv2d
from tinygrad_cv.nn.layers import Flatten, Linear, ReLU, Sequential, Sigmoid, Tanh, Unflatten
from tinygrad_cv.nn.module import Module, Parameter
from tinygrad_cv.nn.norm import BatchNorm2d, ReLU6

__all__ = ["Module", "Parameter", "Linear", "Sequential", "ReLU", "Sigmoid", "Tanh", "Flatten", "Unflatten", "init",
           "Conv2d", "ConvTranspose2d", "MaxPool2d", "AvgPool2d", "Upsample", "UpsampleConv2d", "BatchNorm2d", "ReLU6"]
