"""The GPU versions of the kernels, as CUDA C++ source compiled by CuPy at first use.

This module is imported only when a kernel receives a CuPy array (see dispatch.py), so a machine
without CuPy never reads it. Each kernel has the same contract as its NumPy twin; only the way of
computing differs: one GPU thread per output element, with a grid-stride loop so that any size works
with a fixed number of blocks. The matrix products of the convolution need no code here: the generic
kernels in conv.py use ``@``, which is ``cupy.matmul`` (cuBLAS) on CuPy arrays.

Backward kernels *gather* rather than scatter: the thread of an input pixel loops over the windows
that contain it and adds up their contributions. That needs no atomic additions, so results are
deterministic and summed in the same tap order as the NumPy code.
"""
from __future__ import annotations

from typing import Any, Sequence, Tuple

import numpy as np

from tinygrad_cv import backend
from tinygrad_cv.kernels.geometry import Window, index_dtype

cp = backend.cupy_module()

_SOURCE = r"""
template <typename T> __device__ T negative_infinity();
template <> __device__ float negative_infinity<float>() { return __int_as_float(0xff800000); }
template <> __device__ double negative_infinity<double>() {
    return __longlong_as_double(0xfff0000000000000ULL);
}

// Grid-stride loop over `total` elements: thread i handles elements i, i + stride, ...
#define FOR_EACH(i, total) \
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < (total); \
         i += (long long)blockDim.x * gridDim.x)

// cols (C*KH*KW, N*OH*OW): row (c, kh, kw), column (n, oh, ow); zero where the tap is in padding.
template <typename T>
__global__ void im2col(const T* x, T* cols, long long total, int N, int C, int H, int W, int OH, int OW,
                       int KH, int KW, int SH, int SW, int PH, int PW, int DH, int DW) {
    FOR_EACH(i, total) {
        long long t = i;
        int ow = t % OW; t /= OW;
        int oh = t % OH; t /= OH;
        int n = t % N;   t /= N;
        int kw = t % KW; t /= KW;
        int kh = t % KH; t /= KH;
        int c = (int)t;
        int h = oh * SH - PH + kh * DH;
        int w = ow * SW - PW + kw * DW;
        bool inside = h >= 0 && h < H && w >= 0 && w < W;
        cols[i] = inside ? x[(((long long)n * C + c) * H + h) * W + w] : (T)0;
    }
}

// The adjoint of im2col: input pixel (n, c, h, w) sums the column entries that were copied from it.
// Tap (kh, kw) of output (oh, ow) reads h = oh*SH - PH + kh*DH, so oh = (h + PH - kh*DH) / SH when
// that divides exactly and lands inside the output.
template <typename T>
__global__ void col2im(const T* cols, T* x, long long total, int N, int C, int H, int W, int OH, int OW,
                       int KH, int KW, int SH, int SW, int PH, int PW, int DH, int DW) {
    long long M = (long long)N * OH * OW;
    FOR_EACH(i, total) {
        long long t = i;
        int w = t % W; t /= W;
        int h = t % H; t /= H;
        int c = t % C;
        int n = (int)(t / C);
        T sum = 0;
        for (int kh = 0; kh < KH; ++kh) {
            int hs = h + PH - kh * DH;
            if (hs < 0 || hs % SH != 0 || hs / SH >= OH) continue;
            for (int kw = 0; kw < KW; ++kw) {
                int ws = w + PW - kw * DW;
                if (ws < 0 || ws % SW != 0 || ws / SW >= OW) continue;
                long long row = ((long long)c * KH + kh) * KW + kw;
                sum += cols[row * M + ((long long)n * OH + hs / SH) * OW + ws / SW];
            }
        }
        x[i] = sum;
    }
}

// Max over each window, padding as -inf; argmax = first tap (row-major) holding the max (strict >).
// A NaN anywhere in the window makes the output NaN, as numpy.maximum does on the CPU.
template <typename T, typename I>
__global__ void max_pool2d_forward(const T* x, T* y, I* argmax, long long total, int C, int H, int W,
                                   int OH, int OW, int KH, int KW, int SH, int SW, int PH, int PW) {
    FOR_EACH(i, total) {
        long long t = i;
        int ow = t % OW; t /= OW;
        int oh = t % OH; t /= OH;
        const T* plane = x + t * H * W;  // t = n*C + c
        T best = negative_infinity<T>(), nan = 0;
        int best_tap = 0;
        bool has_nan = false;
        for (int kh = 0; kh < KH; ++kh) {
            for (int kw = 0; kw < KW; ++kw) {
                int h = oh * SH - PH + kh, w = ow * SW - PW + kw;
                T v = (h >= 0 && h < H && w >= 0 && w < W) ? plane[h * W + w] : negative_infinity<T>();
                int tap = kh * KW + kw;
                if (tap == 0 || v > best) { best = v; best_tap = tap; }
                if (v != v) { has_nan = true; nan = v; }
            }
        }
        y[i] = has_nan ? nan : best;
        argmax[i] = (I)best_tap;
    }
}

// Input pixel (n, c, h, w) sums the gradients of the windows whose winning tap is this pixel.
template <typename T, typename I>
__global__ void max_pool2d_backward(const T* grad, const I* argmax, T* dx, long long total, int C, int H,
                                    int W, int OH, int OW, int KH, int KW, int SH, int SW, int PH, int PW) {
    FOR_EACH(i, total) {
        long long t = i;
        int w = t % W; t /= W;
        int h = t % H; t /= H;
        long long plane = t * OH * OW;  // t = n*C + c
        T sum = 0;
        for (int kh = 0; kh < KH; ++kh) {
            int hs = h + PH - kh;
            if (hs < 0 || hs % SH != 0 || hs / SH >= OH) continue;
            for (int kw = 0; kw < KW; ++kw) {
                int ws = w + PW - kw;
                if (ws < 0 || ws % SW != 0 || ws / SW >= OW) continue;
                long long o = plane + (long long)(hs / SH) * OW + ws / SW;
                if ((int)argmax[o] == kh * KW + kw) sum += grad[o];
            }
        }
        dx[i] = sum;
    }
}
"""

_FLOAT_TYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}
_INDEX_TYPES = {np.dtype(np.uint8): "unsigned char", np.dtype(np.int32): "int"}
_NAMES = [f"{name}<{t}>" for t in _FLOAT_TYPES.values() for name in ("im2col", "col2im")] + [
    f"{name}<{t}, {i}>" for t in _FLOAT_TYPES.values() for i in _INDEX_TYPES.values()
    for name in ("max_pool2d_forward", "max_pool2d_backward")
]
_THREADS = 256
_module: Any = None  # the compiled RawModule, built on first use
_functions: dict = {}  # "name<types>" -> its kernel, looked up once


def _launch(name: str, types: Sequence[Any], total: int, arrays: Sequence[Any], ints: Sequence[int]) -> None:
    """Run kernel ``name<types>`` over ``total`` elements: arrays first, then total, then int settings."""
    global _module
    if _module is None:
        _module = cp.RawModule(code=_SOURCE, name_expressions=_NAMES)
    dtype = np.dtype(types[0])
    if dtype not in _FLOAT_TYPES:
        raise ValueError(f"{name}: CUDA kernels support float32 and float64, got {dtype}")
    names = [_FLOAT_TYPES[dtype]] + [_INDEX_TYPES[np.dtype(t)] for t in types[1:]]
    expression = f"{name}<{', '.join(names)}>"
    kernel = _functions.get(expression)
    if kernel is None:
        kernel = _functions[expression] = _module.get_function(expression)
    blocks = max(1, min((total + _THREADS - 1) // _THREADS, 65536))
    kernel((blocks,), (_THREADS,), (*arrays, np.int64(total), *[np.int32(v) for v in ints]))


def im2col(x: Any, win: Window, out_hw: Tuple[int, int]) -> Any:
    """(N, C, H, W) -> (C*KH*KW, N*OH*OW), as kernels.im2col."""
    x = cp.ascontiguousarray(x)
    N, C, H, W = x.shape
    (KH, KW), (OH, OW) = win.kernel, out_hw
    cols = cp.empty((C * KH * KW, N * OH * OW), dtype=x.dtype)
    _launch("im2col", [x.dtype], cols.size, [x, cols],
            [N, C, H, W, OH, OW, KH, KW, *win.stride, *win.padding, *win.dilation])
    return cols


def col2im(cols: Any, x_shape: Tuple[int, int, int, int], win: Window, out_hw: Tuple[int, int]) -> Any:
    """(C*KH*KW, N*OH*OW) -> (N, C, H, W), as kernels.col2im."""
    cols = cp.ascontiguousarray(cols)
    x = cp.empty(x_shape, dtype=cols.dtype)
    _launch("col2im", [cols.dtype], x.size, [cols, x], [*x_shape, *out_hw, *win.kernel, *win.stride,
                                                        *win.padding, *win.dilation])
    return x


def max_pool2d_forward(x: Any, win: Window, out_hw: Tuple[int, int]) -> Tuple[Any, Any]:
    """(N, C, H, W) -> maxima and argmax taps, both (N, C, OH, OW), as kernels.max_pool2d_forward."""
    x = cp.ascontiguousarray(x)
    N, C, H, W = x.shape
    y = cp.empty((N, C) + tuple(out_hw), dtype=x.dtype)
    argmax = cp.empty(y.shape, dtype=index_dtype(win))
    _launch("max_pool2d_forward", [x.dtype, argmax.dtype], y.size, [x, y, argmax],
            [C, H, W, *out_hw, *win.kernel, *win.stride, *win.padding])
    return y, argmax


def max_pool2d_backward(grad: Any, argmax: Any, x_shape: Tuple[int, int, int, int], win: Window,
                        out_hw: Tuple[int, int]) -> Any:
    """Route each output gradient to its window's winning input, as kernels.max_pool2d_backward."""
    grad, argmax = cp.ascontiguousarray(grad), cp.ascontiguousarray(argmax)
    N, C, H, W = x_shape
    dx = cp.empty(x_shape, dtype=grad.dtype)
    _launch("max_pool2d_backward", [grad.dtype, argmax.dtype], dx.size, [grad, argmax, dx],
            [C, H, W, *out_hw, *win.kernel, *win.stride, *win.padding])
    return dx


_relu_forward = cp.ElementwiseKernel(
    "T x", "T y", "y = (x > (T)0 || x != x) ? x : (T)0", "tinygrad_cv_relu_forward")
_relu_backward = cp.ElementwiseKernel(
    "T grad, T y", "T dx", "dx = grad * (y > (T)0 ? (T)1 : (T)0)", "tinygrad_cv_relu_backward")


def relu_forward(x: Any) -> Any:
    """max(x, 0) in one fused kernel (NaN stays NaN, like numpy.maximum)."""
    return _relu_forward(x)


def relu_backward(grad: Any, y: Any) -> Any:
    """grad * (y > 0) in one fused kernel."""
    return _relu_backward(grad, y)
