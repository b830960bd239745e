"""Reference kernels: pure functions on arrays (NumPy, or CuPy through ``xp``), no Tensor, no autograd.

Reading order: geometry.py (how a window slides) -> im2col.py (windows -> columns) -> conv.py (a
convolution as one matrix product, and its three gradients) -> pool.py -> upsample.py -> relu.py.
cuda.py holds CUDA versions of im2col, col2im, max pooling and ReLU, and dispatch.py is the one
place that picks NumPy or CUDA code from the array type. The differentiable ops in
tinygrad_cv/functional call these functions. The CPU fast paths, a second chapter, are in fast/.
"""
