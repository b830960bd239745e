"""2-D convolution on raw arrays: the forward pass and its three gradients, one matrix product each.

Conventions are PyTorch's: input x (N, C, H, W), weight w (O, C, KH, KW), cross-correlation

    y[n, o, i, j] = b[o] + sum_{c, kh, kw} w[o, c, kh, kw] * xpad[n, c, i*SH + kh*DH, j*SW + kw*DW]

Write X = im2col(x), the (C*KH*KW, N*OH*OW) matrix of windows, W = w.reshape(O, C*KH*KW) and
G = dL/dy laid out as (O, N*OH*OW). Then the whole layer is three matrix products:

    forward      Y  = W @ X             (O, N*OH*OW)
    grad weight  dW = G @ X^T           (O, C*KH*KW)   [computed as (X @ G^T)^T]
    grad input   dx = col2im(W^T @ G)   (N, C, H, W)   [the adjoint of im2col, see im2col.py]

Choices made for speed on a CPU, each kept readable:
- One GEMM over the whole batch (the batch is folded into the columns), so BLAS sees large matrices.
- float32 stays float32: no dtype is forced anywhere, so float64 (gradient checks) stays float64 too.
- The forward pass does not keep X. For a 64-channel 512x512 layer X is 600 MB; keeping it for
  every layer of VGG would need gigabytes. ``conv2d_grad_weight`` recomputes it from x (one copy,
  cheap next to the GEMM), and is not called at all when the weight needs no gradient (style
  transfer and feature visualisation only differentiate with respect to the image).
- grad input: col2im rather than a flipped convolution (lesson 02 shows both): col2im works for
  every stride, and its buffer has C*KH*KW rows where the flipped convolution's has O*KH*KW.
"""
from __future__ import annotations

from typing import Any, Sequence, Tuple

from tinygrad_cv import backend
from tinygrad_cv.kernels.geometry import IntOrPair, Window, pair
from tinygrad_cv.kernels.im2col import col2im, im2col


def check_conv2d_arrays(x: Any, w: Any, b: Any = None, op: str = "conv2d", groups: int = 1) -> None:
    """ValueError naming the shapes unless x is (N, C, H, W), w is (O, C/groups, KH, KW), b is (O,)."""
    if x.ndim != 4:
        raise ValueError(f"{op}: input must be 4-D (N, C, H, W), got shape {tuple(x.shape)}")
    if w.ndim != 4:
        raise ValueError(f"{op}: weight must be 4-D (O, C, KH, KW), got shape {tuple(w.shape)}")
    if groups < 1 or x.shape[1] != w.shape[1] * groups or w.shape[0] % groups:
        raise ValueError(f"{op}: input has {x.shape[1]} channels (shape {tuple(x.shape)}) but with groups={groups} "
                         f"the weight expects {w.shape[1] * groups} (weight shape {tuple(w.shape)}, O divisible by groups)")
    if b is not None and tuple(b.shape) != (w.shape[0],):
        raise ValueError(f"{op}: bias must have shape {(w.shape[0],)} for weight shape "
                         f"{tuple(w.shape)}, got {tuple(b.shape)}")


def _grad_as_matrix(grad: Any) -> Any:
    """dL/dy from (N, O, OH, OW) to (O, N*OH*OW), the layout of the GEMMs (a free view when N = 1)."""
    N, O = grad.shape[:2]
    return grad.transpose(1, 0, 2, 3).reshape(O, -1)  # (O, N*OH*OW)


def conv2d_forward(x: Any, w: Any, b: Any = None, stride: IntOrPair = 1, padding: IntOrPair = 0,
                   dilation: IntOrPair = 1, groups: int = 1) -> Any:
    """Cross-correlation of x with the O filters in w, plus the bias: im2col, then one GEMM per group
    (filters of group g see only input channels g*C/G .. (g+1)*C/G - 1; groups = C is depthwise).

    Shape: x (N, C, H, W), w (O, C/G, KH, KW), b (O,) or None -> (N, O, OH, OW) with
    OH = (H + 2*ph - DH*(KH-1) - 1) // SH + 1 (and likewise OW).
    """
    check_conv2d_arrays(x, w, b, groups=groups)
    xp = backend.get_array_module(x)
    N = x.shape[0]
    O, Cg, KH, KW = w.shape
    win = Window.of((KH, KW), stride, padding, dilation)
    OH, OW = win.output_size(x.shape, "conv2d")
    cols = im2col(x, win.kernel, win.stride, win.padding, win.dilation)  # (C*KH*KW, N*OH*OW)
    y = w.reshape(groups, O // groups, Cg * KH * KW) @ cols.reshape(groups, Cg * KH * KW, -1)  # (G, O/G, N*OH*OW)
    y = y.reshape(O, N * OH * OW)
    if b is not None:
        y += b.reshape(O, 1)
    y = y.reshape(O, N, OH, OW)
    return xp.ascontiguousarray(y.transpose(1, 0, 2, 3))  # (N, O, OH, OW); no copy when N = 1


def conv2d_grad_bias(grad: Any) -> Any:
    """dL/db: the bias is added at every pixel of every image, so sum over N, OH, OW. Shape (O,)."""
    return grad.sum(axis=(0, 2, 3))


def conv2d_grad_weight(grad: Any, x: Any, w_shape: Sequence[int], stride: IntOrPair = 1,
                       padding: IntOrPair = 0, dilation: IntOrPair = 1, groups: int = 1) -> Any:
    """dL/dw = G @ X^T, reshaped to (O, C, KH, KW). X is recomputed from x (see the module notes).

    Computed as (X @ G^T)^T, the same numbers: BLAS runs this orientation of the long, thin product
    (inner dimension N*OH*OW) faster.
    """
    O, Cg, KH, KW = w_shape
    cols = im2col(x, (KH, KW), stride, padding, dilation).reshape(groups, Cg * KH * KW, -1)  # (G, C/G*KH*KW, N*OH*OW)
    dw_t = cols @ _grad_as_matrix(grad).reshape(groups, O // groups, -1).transpose(0, 2, 1)  # (G, C/G*KH*KW, O/G)
    return dw_t.transpose(0, 2, 1).reshape(O, Cg, KH, KW)


def conv2d_grad_input(grad: Any, w: Any, x_shape: Sequence[int], stride: IntOrPair = 1,
                      padding: IntOrPair = 0, dilation: IntOrPair = 1, groups: int = 1) -> Any:
    """dL/dx = col2im(W^T @ G), the transposed convolution of grad with w. Shape ``x_shape``."""
    O, Cg, KH, KW = w.shape
    win = Window.of((KH, KW), stride, padding, dilation)
    expected = (x_shape[0], O) + win.output_size(x_shape, "conv2d_grad_input")
    if tuple(grad.shape) != expected:
        raise ValueError(f"conv2d_grad_input: grad has shape {tuple(grad.shape)}, but an input of shape "
                         f"{tuple(x_shape)} and weight {tuple(w.shape)} give output {expected}")
    w_t = w.reshape(groups, O // groups, Cg * KH * KW).transpose(0, 2, 1)  # (G, C/G*KH*KW, O/G)
    dcols = w_t @ _grad_as_matrix(grad).reshape(groups, O // groups, -1)  # (G, C/G*KH*KW, N*OH*OW)
    return col2im(dcols.reshape(groups * Cg * KH * KW, -1), x_shape, (KH, KW), stride, padding, dilation)


def conv_transpose2d_output_shape(x_shape: Sequence[int], w_shape: Sequence[int], stride: IntOrPair = 1,
                                  padding: IntOrPair = 0, output_padding: IntOrPair = 0,
                                  dilation: IntOrPair = 1) -> Tuple[int, int, int, int]:
    """(N, C_out, H_out, W_out) with H_out = (H-1)*SH - 2*ph + DH*(KH-1) + output_padding + 1."""
    C_in, C_out, KH, KW = w_shape
    win = Window.of((KH, KW), stride, padding, dilation)
    extra = pair(output_padding, "output_padding")
    if any(e < 0 or e >= s for e, s in zip(extra, win.stride)):
        raise ValueError(f"conv_transpose2d: output_padding {extra} must be >= 0 and smaller than the "
                         f"stride {win.stride} (it picks one of the input sizes that give the same output)")
    size = tuple((n - 1) * s - 2 * p + d * (k - 1) + e + 1 for n, s, p, d, k, e in zip(
        x_shape[2:], win.stride, win.padding, win.dilation, win.kernel, extra))
    if min(size) < 1:
        raise ValueError(f"conv_transpose2d: input shape {tuple(x_shape)} with weight {tuple(w_shape)}, "
                         f"{win} gives an empty output {size}")
    return (x_shape[0], C_out) + size  # type: ignore[return-value]


def conv_transpose2d_forward(x: Any, w: Any, b: Any = None, stride: IntOrPair = 1, padding: IntOrPair = 0,
                             output_padding: IntOrPair = 0, dilation: IntOrPair = 1) -> Any:
    """The transposed convolution: the gradient of conv2d with respect to its input, used forward.

    w has PyTorch's shape (C_in, C_out, KH, KW). Read as a conv2d weight it maps C_out channels to
    C_in; conv_transpose2d applies the adjoint of that convolution, which maps x (N, C_in, H, W) up
    to (N, C_out, H_out, W_out). Each input pixel "stamps" a weighted copy of the kernel on the output.
    """
    if x.ndim != 4 or w.ndim != 4 or x.shape[1] != w.shape[0]:
        raise ValueError(f"conv_transpose2d: need input (N, C_in, H, W) and weight (C_in, C_out, KH, KW), "
                         f"got input {tuple(x.shape)} and weight {tuple(w.shape)}")
    if b is not None and tuple(b.shape) != (w.shape[1],):
        raise ValueError(f"conv_transpose2d: bias must have shape {(w.shape[1],)} for weight shape "
                         f"{tuple(w.shape)}, got {tuple(b.shape)}")
    out_shape = conv_transpose2d_output_shape(x.shape, w.shape, stride, padding, output_padding, dilation)
    y = conv2d_grad_input(x, w, out_shape, stride, padding, dilation)
    if b is not None:
        y = y + b.reshape(1, -1, 1, 1)
    return y
