"""Read PyTorch checkpoints (``.pth``/``.pt`` state dicts) into NumPy arrays, without PyTorch.

``torch.save`` writes a Python *pickle* of the object (an OrderedDict of tensors, for a state dict)
in which every tensor is replaced by a call ``torch._utils._rebuild_tensor_v2(storage, offset, size,
stride, ...)`` and every storage (the flat buffer of numbers under a tensor) by a *persistent id*
``('storage', torch.FloatStorage, key, location, numel)``. The numbers themselves are stored outside
the pickle. Two layouts exist:

- **zip** (PyTorch >= 1.6, the default): a zip archive with ``<name>/data.pkl`` (the pickle) and one
  record ``<name>/data/<key>`` per storage holding its raw little-endian bytes.
- **legacy** (older files, including torchvision's original VGG weights): one file holding, in a row,
  the pickles of a magic number, a protocol version and a system-info dict, then the main pickle,
  then a pickle of the list of storage keys, then for each key an int64 element count followed by
  the raw bytes.

Unpickling runs code named by the file: a pickle may ask for *any* importable global (``os.system``
included) and call it. So this reader uses a restricted unpickler that hands out only the handful of
globals a state dict needs (listed in ``ALLOWED_GLOBALS`` and ``STORAGE_DTYPES``) and refuses every
other global with an error naming it. PyTorch itself is never imported.
"""
from __future__ import annotations

import collections
import io
import pickle
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Callable, Dict, Optional, Tuple, Union

import numpy as np

LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C  # torch/serialization.py MAGIC_NUMBER
LEGACY_PROTOCOL_VERSION = 1001

# torch.<Name>Storage -> the NumPy dtype of its elements (always little endian on disk).
# bfloat16 has no NumPy dtype: it is read as uint16 bit patterns and widened to float32.
STORAGE_DTYPES: Dict[str, str] = {
    "FloatStorage": "<f4",
    "DoubleStorage": "<f8",
    "HalfStorage": "<f2",
    "BFloat16Storage": "<u2",
    "LongStorage": "<i8",
    "IntStorage": "<i4",
    "ShortStorage": "<i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
    "UntypedStorage": "u1",
}

PathLike = Union[str, Path]


@dataclass
class _Storage:
    """One flat buffer of the checkpoint; ``array`` is filled once its bytes have been read."""

    name: str  # e.g. 'FloatStorage'
    key: str
    numel: int
    array: Optional[np.ndarray] = None


@dataclass
class _TensorRef:
    """A tensor as the pickle describes it: a strided view into a storage (resolved later)."""

    storage: _Storage
    offset: int
    size: Tuple[int, ...]
    stride: Tuple[int, ...]


@dataclass(frozen=True)
class _StorageType:
    """What ``torch.FloatStorage`` etc. unpickle to: just the name, used to pick a dtype."""

    name: str


def _rebuild_tensor(storage: _Storage, offset: int, size: tuple, stride: tuple) -> _TensorRef:
    """Stand-in for torch._utils._rebuild_tensor (files from PyTorch < 0.4)."""
    if not isinstance(storage, _Storage):
        raise ValueError(f"a tensor must be rebuilt from a storage, got {type(storage).__name__}")
    return _TensorRef(storage, int(offset), tuple(size), tuple(stride))


def _rebuild_tensor_v2(storage: _Storage, offset: int, size: tuple, stride: tuple,
                       requires_grad: bool = False, backward_hooks: Any = None,
                       metadata: Any = None) -> _TensorRef:
    """Stand-in for torch._utils._rebuild_tensor_v2; gradient flags and hooks are dropped."""
    if metadata:  # conj / neg bits: only lazily-evaluated views carry them, never saved weights
        raise ValueError(f"tensor with metadata {metadata!r} is not supported")
    return _rebuild_tensor(storage, offset, size, stride)


def _rebuild_parameter(data: _TensorRef, requires_grad: bool = False,
                       backward_hooks: Any = None) -> _TensorRef:
    """Stand-in for torch._utils._rebuild_parameter: a Parameter is just its data here."""
    return data


ALLOWED_GLOBALS: Dict[Tuple[str, str], Callable] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}


class RestrictedUnpickler(pickle.Unpickler):
    """An Unpickler that resolves only the globals of a state dict and maps storages to _Storage."""

    def __init__(self, file: BinaryIO, storages: Dict[str, _Storage], source: str) -> None:
        super().__init__(file)
        self.storages = storages  # key -> _Storage, shared across the pickles of one file
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        if (module, name) in ALLOWED_GLOBALS:
            return ALLOWED_GLOBALS[(module, name)]
        allowed = sorted(f"{m}.{n}" for m, n in ALLOWED_GLOBALS) + ["torch.<Type>Storage"]
        raise ValueError(
            f"{self.source}: refusing to load the global {module}.{name}: a weights file needs only "
            f"{', '.join(allowed)}. Unpickling other globals can run arbitrary code; if you trust "
            "this file, load it with torch and save its state_dict() instead."
        )

    def persistent_load(self, pid: Any) -> _Storage:
        if not isinstance(pid, tuple) or not pid:
            raise ValueError(f"{self.source}: unexpected persistent id {pid!r}")
        kind = pid[0].decode("ascii") if isinstance(pid[0], bytes) else pid[0]
        if kind != "storage":
            raise ValueError(f"{self.source}: only tensor storages are supported, found a "
                             f"{kind!r} record (a whole pickled nn.Module?); save a state_dict()")
        storage_type, key, _location, numel = pid[1:5]
        if len(pid) > 5 and pid[5] is not None:
            raise ValueError(f"{self.source}: storage views (view metadata {pid[5]!r}) are not "
                             "supported")
        if not isinstance(storage_type, _StorageType):
            raise ValueError(f"{self.source}: storage type {storage_type!r} is not a torch storage")
        key = str(key)
        if key not in self.storages:
            self.storages[key] = _Storage(storage_type.name, key, int(numel))
        return self.storages[key]


def _unpickle(f: BinaryIO, storages: Dict[str, _Storage], source: str) -> Any:
    return RestrictedUnpickler(f, storages, source).load()


def _bytes_to_array(raw: bytes, storage: _Storage, source: str,
                    byteorder: str = "little") -> np.ndarray:
    """Interpret a storage's raw bytes with its dtype and check the element count."""
    dtype = np.dtype(STORAGE_DTYPES[storage.name])
    array = np.frombuffer(raw, dtype=dtype.newbyteorder(">" if byteorder == "big" else "<"))
    if array.size != storage.numel:
        raise ValueError(f"{source}: storage {storage.key} should hold {storage.numel} elements, "
                         f"the file has {array.size} (truncated file?)")
    return array


def _read_zip(path: PathLike) -> Any:
    """The zip layout: ``<name>/data.pkl`` plus one ``<name>/data/<key>`` record per storage."""
    source = str(path)
    with zipfile.ZipFile(path) as archive:
        pickles = [n for n in archive.namelist() if n.endswith("data.pkl")]
        if len(pickles) != 1:
            raise ValueError(f"{source}: expected one data.pkl in the zip archive, found {pickles}")
        prefix = pickles[0][: -len("data.pkl")]
        byteorder = "little"
        if prefix + "byteorder" in archive.namelist():
            byteorder = archive.read(prefix + "byteorder").decode("ascii").strip()
        storages: Dict[str, _Storage] = {}
        result = _unpickle(io.BytesIO(archive.read(pickles[0])), storages, source)
        for key, storage in storages.items():
            raw = archive.read(f"{prefix}data/{key}")
            storage.array = _bytes_to_array(raw, storage, source, byteorder)
    return result


def _read_legacy(f: BinaryIO, source: str) -> Any:
    """The legacy layout: magic, version, sys_info, main pickle, key list, then each storage."""
    storages: Dict[str, _Storage] = {}
    magic = _unpickle(f, storages, source)
    if magic != LEGACY_MAGIC_NUMBER:
        raise ValueError(f"{source}: not a PyTorch checkpoint (no zip header, no legacy magic "
                         "number)")
    version = _unpickle(f, storages, source)
    if version != LEGACY_PROTOCOL_VERSION:
        raise ValueError(f"{source}: unsupported legacy protocol version {version}")
    _unpickle(f, storages, source)  # sys_info: byte order and C type sizes, informational
    result = _unpickle(f, storages, source)
    keys = _unpickle(f, storages, source)
    for key in keys:
        storage = storages[str(key)]
        header = f.read(8)
        if len(header) != 8:
            raise ValueError(f"{source}: file ends before storage {key} (truncated download?)")
        (numel,) = struct.unpack("<q", header)  # element count written before each storage
        itemsize = np.dtype(STORAGE_DTYPES[storage.name]).itemsize
        storage.array = _bytes_to_array(f.read(numel * itemsize), storage, source)
    return result


def _materialize(obj: Any) -> Any:
    """Replace every _TensorRef in a (nested) container by a NumPy array that owns its data."""
    if isinstance(obj, _TensorRef):
        return _tensor_from_ref(obj)
    if isinstance(obj, dict):
        out = type(obj)((k, _materialize(v)) for k, v in obj.items())
        out.__dict__.update(getattr(obj, "__dict__", {}))  # e.g. state_dict._metadata
        return out
    if isinstance(obj, (list, tuple)):
        return type(obj)(_materialize(v) for v in obj)
    return obj


def _tensor_from_ref(ref: _TensorRef) -> np.ndarray:
    """Cut a tensor out of its storage with the saved offset, size and stride (in elements)."""
    flat = ref.storage.array
    if flat is None:
        raise ValueError(f"storage {ref.storage.key} was never written to the file")
    last = ref.offset + sum((n - 1) * s for n, s in zip(ref.size, ref.stride) if n > 0)
    if any(n == 0 for n in ref.size):
        last = ref.offset - 1  # an empty tensor reads nothing
    if ref.offset < 0 or last >= flat.size:
        raise ValueError(f"tensor of size {ref.size}, stride {ref.stride}, offset {ref.offset} "
                         f"reads past its storage of {flat.size} elements")
    strides = tuple(s * flat.itemsize for s in ref.stride)
    view = np.lib.stride_tricks.as_strided(flat[ref.offset:], shape=ref.size, strides=strides)
    array = np.array(view, dtype=flat.dtype.newbyteorder("="), order="C")  # a compact copy
    if ref.storage.name == "BFloat16Storage":  # bfloat16 = the top 16 bits of a float32
        array = (array.astype(np.uint32) << 16).view(np.float32)
    return array


def load_torch_file(path: PathLike) -> Any:
    """Unpickle a ``torch.save`` file safely, returning its object with tensors as NumPy arrays.

    Both the zip layout and the legacy layout are read. Only state-dict-like content is accepted:
    containers, numbers, strings and tensors. Anything else raises ValueError naming the global.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such checkpoint file: {path}")
    with open(path, "rb") as f:
        is_zip = f.read(4) == b"PK\x03\x04"
    if is_zip:
        return _materialize(_read_zip(path))
    with open(path, "rb") as f:
        try:
            result = _read_legacy(f, str(path))
        except (pickle.UnpicklingError, EOFError) as exc:
            raise ValueError(f"{path}: not a PyTorch checkpoint ({exc}); the very old tar-based "
                             "format of PyTorch < 0.1.10 is not supported either") from exc
    return _materialize(result)


def load_torch_state_dict(path: PathLike) -> Dict[str, np.ndarray]:
    """Load a checkpoint and return its flat ``name -> array`` state dict.

    Accepts a bare state dict or the common wrapper ``{"state_dict": {...}}`` / ``{"model": {...}}``.
    """
    obj = load_torch_file(path)
    if isinstance(obj, dict):
        for wrapper in ("state_dict", "model"):
            if isinstance(obj.get(wrapper), dict):
                obj = obj[wrapper]
                break
    if not isinstance(obj, dict) or not all(isinstance(v, np.ndarray) for v in obj.values()):
        raise ValueError(f"{path}: expected a state dict (name -> tensor), found {type(obj).__name__}")
    return dict(obj)
