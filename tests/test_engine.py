"""The engine: topological order, accumulation, deep graphs, no_grad, memory, errors, anomaly mode."""
from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

import tinygrad_cv as tg
import tinygrad_cv.functional as F
from tinygrad_cv import Tensor


def test_chain_of_10000_ops_has_no_recursion_limit():
    x = Tensor(np.array(1.0), requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.backward()
    np.testing.assert_allclose(x.grad, 1.0001**10_000, rtol=1e-3)


def test_reused_node_accumulates_every_path(xp):
    x = Tensor(xp.asarray([2.0, 3.0]), requires_grad=True)
    y = x * x  # used three times below
    z = (y + y * x + F.exp(y) * 0 + y).sum()
    z.backward()
    expected = 2 * 2 * x.data + 3 * x.data**2  # d/dx (2x^2 + x^3)
    np.testing.assert_allclose(tg.backend.to_device(x.grad, "cpu"), tg.backend.to_device(expected, "cpu"))


def test_gradients_accumulate_across_backward_calls_until_zeroed():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    (x * 3).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_array_equal(x.grad, [6.0, 6.0])


def test_broadcast_gradient_is_summed_back_once():
    b = Tensor(np.zeros((1, 3)), requires_grad=True)
    x = Tensor(np.ones((4, 3)))
    (x + b).sum().backward()
    np.testing.assert_array_equal(b.grad, [[4.0, 4.0, 4.0]])


def test_leaf_grad_has_shape_dtype_and_is_writable(xp):
    w = Tensor(xp.ones((2, 3), dtype=xp.float32), requires_grad=True)
    w.sum().backward()  # the gradient of sum is a broadcast (read-only) view inside the engine
    assert w.grad.shape == (2, 3) and w.grad.dtype == np.float32
    w.grad += 1  # optimisers may update in place


def test_no_grad_builds_no_graph():
    x = Tensor(np.ones(3), requires_grad=True)
    with tg.no_grad():
        y = (x * 2).sum()
    assert not y.requires_grad and y._ctx is None


def test_no_grad_as_decorator():
    @tg.no_grad()
    def f(t):
        return t * 2

    assert f(Tensor(np.ones(2), requires_grad=True))._ctx is None


def test_graph_is_freed_after_backward():
    x = Tensor(np.ones(1000), requires_grad=True)
    y = F.exp(x)
    ref = weakref.ref(y._ctx)
    y.sum().backward()
    gc.collect()
    assert ref() is None and y._ctx is None


def test_retain_graph_allows_a_second_backward():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_array_equal(x.grad, [4.0, 8.0])


def test_intermediate_tensors_keep_no_grad():
    x = Tensor(np.ones(2), requires_grad=True)
    y = x * 2
    y.sum().backward()
    assert y.grad is None and x.grad is not None


def test_backward_on_non_scalar_says_what_to_pass():
    x = Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(ValueError, match=r"shape \(3,\).*\.sum\(\) or \.mean\(\)"):
        (x * 2).backward()
    (x * 2).backward(np.ones(3))
    np.testing.assert_array_equal(x.grad, [2.0, 2.0, 2.0])


def test_backward_without_requires_grad_is_explained():
    with pytest.raises(ValueError, match="requires_grad"):
        Tensor(np.ones(1)).sum().backward()


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4, 5\)"):
        F.matmul(Tensor(np.ones((2, 3))), Tensor(np.ones((4, 5))))
    with pytest.raises(ValueError, match=r"\(2,\).*\(3,\)"):
        F.mse_loss(Tensor(np.ones(2)), Tensor(np.ones(3)))
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(7,\)"):
        Tensor(np.ones((2, 3))).reshape(7)


def test_anomaly_mode_names_the_op_that_made_the_first_nan():
    x = Tensor(np.array([-1.0, 4.0]), requires_grad=True)
    with tg.detect_anomaly():
        with pytest.raises(tg.AnomalyError, match=r"Sqrt\.forward produced NaN.*\(2,\)"):
            F.sqrt(x) * 2
    y = F.sqrt(x)  # outside anomaly mode NaN passes silently, as in NumPy
    assert np.isnan(y.numpy()[0])


def test_anomaly_mode_checks_backward_too():
    x = Tensor(np.array([0.0, 1.0]), requires_grad=True)
    with tg.detect_anomaly():
        y = F.sqrt(x).sum()  # forward is finite; d sqrt/dx at 0 is inf
        with pytest.raises(tg.AnomalyError, match=r"Sqrt\.backward produced inf"):
            y.backward()


def test_dtypes_float32_default_float64_kept():
    assert Tensor([1, 2, 3]).dtype == np.float32
    assert Tensor(np.arange(3)).dtype == np.float32
    assert Tensor(np.ones(2)).dtype == np.float64
    assert (Tensor(np.ones(2, dtype=np.float32)) * 2.5).dtype == np.float32


def test_numpy_detach_to_cpu():
    x = Tensor(np.ones(2), requires_grad=True)
    assert not x.detach().requires_grad and x.detach()._ctx is None
    assert x.to("cpu").device == "cpu" and isinstance(x.numpy(), np.ndarray)
    with pytest.raises(ValueError, match="unknown device"):
        x.to("tpu")


def test_array_on_the_left_of_an_operator_gives_a_tensor():
    x = Tensor(np.ones(2, dtype=np.float32), requires_grad=True)
    y = np.array([1.0, 2.0], dtype=np.float32) * x
    assert isinstance(y, Tensor) and y.requires_grad


def test_grad_of_a_0d_tensor_is_0d():
    x = Tensor(np.array(1.5), requires_grad=True)
    (x * x).backward()
    assert x.grad.shape == () and x.grad == 3.0
