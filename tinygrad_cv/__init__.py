"""tinygrad_cv: a from-scratch autograd on NumPy/CuPy for computer-vision deep learning.

Reading order: backend.py -> tensor.py -> functional/ -> kernels/ -> nn/ -> optim.py, then
models/ and vision/. See README.md.
"""
from tinygrad_cv.anomaly import AnomalyError, detect_anomaly
from tinygrad_cv.tensor import Function, Tensor, is_grad_enabled, no_grad
from tinygrad_cv import functional  # noqa: E402 - after tensor, which it builds on
from tinygrad_cv.functional.fast_paths import fast_paths
from tinygrad_cv.gradcheck import check_vjp, gradcheck
from tinygrad_cv import nn, optim  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "Tensor", "Function", "no_grad", "is_grad_enabled", "detect_anomaly", "AnomalyError",
    "gradcheck", "check_vjp", "fast_paths", "functional", "nn", "optim", "__version__",
]
