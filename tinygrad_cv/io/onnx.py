"""Read the weight tensors (initializers) of an ONNX file with a small hand-written protobuf reader.

An ``.onnx`` file is one protobuf message, ``ModelProto``. Protobuf's wire format is simple: a
message is a flat list of fields, each introduced by a *tag* varint ``(field_number << 3) |
wire_type``. The wire type says how to find the end of the value:

    0  varint            an integer in 7-bit groups, lowest group first, high bit = "more follows"
    1  64-bit            8 bytes, little endian
    2  length-delimited  a varint length, then that many bytes (strings, bytes, sub-messages,
                         packed repeated numbers)
    5  32-bit            4 bytes, little endian

So a reader that knows a handful of field numbers can walk a message and skip everything else.
We need only this path through the ONNX schema (onnx/onnx.proto):

    ModelProto.graph (7)  ->  GraphProto.initializer (5, repeated)  ->  TensorProto:
        dims (1, repeated int64)   data_type (2)   float_data (4, packed float)
        name (8, string)           raw_data (9, bytes, little endian)

No ``onnx`` or ``onnxruntime`` package is needed, and nothing in the file is ever executed.
"""
from __future__ import annotations

from dataclasses import dataclass, field as dataclass_field
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, Union

import numpy as np

# TensorProto.DataType values (onnx.proto) that hold plain numbers, and their NumPy dtypes.
ONNX_DTYPES: Dict[int, np.dtype] = {
    1: np.dtype("<f4"),  # FLOAT
    2: np.dtype("u1"),  # UINT8
    3: np.dtype("i1"),  # INT8
    4: np.dtype("<u2"),  # UINT16
    5: np.dtype("<i2"),  # INT16
    6: np.dtype("<i4"),  # INT32
    7: np.dtype("<i8"),  # INT64
    9: np.dtype("bool"),  # BOOL
    10: np.dtype("<f2"),  # FLOAT16
    11: np.dtype("<f8"),  # DOUBLE
    12: np.dtype("<u4"),  # UINT32
    13: np.dtype("<u8"),  # UINT64
}

MODEL_GRAPH = 7  # ModelProto.graph
GRAPH_NODE, GRAPH_INITIALIZER = 1, 5  # GraphProto.node, GraphProto.initializer
NODE_INPUT, NODE_OUTPUT, NODE_NAME, NODE_OP_TYPE, NODE_ATTRIBUTE = 1, 2, 3, 4, 5  # NodeProto
ATTR_NAME, ATTR_F, ATTR_I, ATTR_S, ATTR_T, ATTR_FLOATS, ATTR_INTS = 1, 2, 3, 4, 5, 7, 8  # AttributeProto
TENSOR_DIMS, TENSOR_DATA_TYPE, TENSOR_FLOAT_DATA = 1, 2, 4
TENSOR_NAME, TENSOR_RAW_DATA, TENSOR_DATA_LOCATION = 8, 9, 14

Buffer = Union[bytes, memoryview]
FieldValue = Union[int, memoryview]


def read_varint(buf: Buffer, pos: int) -> Tuple[int, int]:
    """Decode one varint starting at ``pos``; return (value, position after it)."""
    value, shift = 0, 0
    while True:
        if pos >= len(buf):
            raise ValueError(f"truncated protobuf: varint runs past the end ({len(buf)} bytes)")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError(f"malformed protobuf: varint longer than 10 bytes at byte {pos}")


def iter_fields(buf: Buffer) -> Iterator[Tuple[int, int, FieldValue]]:
    """Yield (field_number, wire_type, value) for every field of one message.

    ``value`` is an int for varints and a memoryview (no copy) for the other wire types.
    """
    view = memoryview(buf)
    pos, end = 0, len(view)
    while pos < end:
        tag, pos = read_varint(view, pos)
        field, wire_type = tag >> 3, tag & 7
        if wire_type == 0:
            value, pos = read_varint(view, pos)
            yield field, wire_type, value
            continue
        if wire_type == 1:
            size = 8
        elif wire_type == 5:
            size = 4
        elif wire_type == 2:
            size, pos = read_varint(view, pos)
        else:  # 3 and 4 are the long-deprecated "groups", which ONNX never uses
            raise ValueError(f"unsupported protobuf wire type {wire_type} (field {field}, byte {pos})")
        if pos + size > end:
            raise ValueError(f"truncated protobuf: field {field} needs {size} bytes at byte {pos}, "
                             f"message has {end}")
        yield field, wire_type, view[pos:pos + size]
        pos += size


def _packed_varints(value: FieldValue) -> list:
    """A repeated integer field: one varint (unpacked) or a packed run of them."""
    if isinstance(value, int):
        return [value]
    numbers, pos = [], 0
    while pos < len(value):
        number, pos = read_varint(value, pos)
        numbers.append(number)
    return numbers


def parse_tensor(buf: Buffer) -> Tuple[str, np.ndarray]:
    """Decode one TensorProto into (name, array). The array owns its memory (a copy)."""
    name, dims, data_type = "", [], 0
    raw: Optional[memoryview] = None
    floats: list = []
    for field, wire_type, value in iter_fields(buf):
        if field == TENSOR_NAME:
            name = bytes(value).decode("utf-8")
        elif field == TENSOR_DIMS:
            dims.extend(_packed_varints(value))
        elif field == TENSOR_DATA_TYPE:
            data_type = value
        elif field == TENSOR_RAW_DATA:
            raw = value
        elif field == TENSOR_FLOAT_DATA:
            floats.append(np.frombuffer(value, dtype="<f4"))  # packed floats (fixed32 when unpacked)
        elif field == TENSOR_DATA_LOCATION and value == 1:
            raise ValueError(f"tensor {name or '?'} stores its data in an external file, "
                             "which this reader does not follow")
    if data_type not in ONNX_DTYPES:
        raise ValueError(f"tensor {name!r}: unsupported ONNX data_type {data_type}")
    dtype = ONNX_DTYPES[data_type]
    shape = tuple(dims)
    if raw is not None:
        flat = np.frombuffer(raw, dtype=dtype)
    elif data_type == 1:
        flat = np.concatenate(floats) if floats else np.zeros(0, np.float32)
    else:
        raise ValueError(f"tensor {name!r}: data_type {data_type} without raw_data is not supported")
    expected = int(np.prod(shape, dtype=np.int64))
    if flat.size != expected:
        raise ValueError(f"tensor {name!r}: dims {shape} need {expected} values, found {flat.size}")
    array = flat.reshape(shape).astype(dtype.newbyteorder("="), copy=True)
    return name, array


def read_onnx_initializers(
    source: Union[str, bytes], keep: Optional[Callable[[str], bool]] = None
) -> Dict[str, np.ndarray]:
    """Return the initializers (stored weights) of an ONNX model, by name.

    Args:
        source: path to an ``.onnx`` file, or its bytes.
        keep: optional filter on initializer names; tensors it rejects are never decoded.

    Returns:
        dict name -> NumPy array with the shape (``dims``) and dtype stored in the file.
    """
    graph = _graph(source)
    tensors: Dict[str, np.ndarray] = {}
    for field, wire_type, value in iter_fields(graph):
        if field != GRAPH_INITIALIZER or wire_type != 2:
            continue
        if keep is not None and not keep(_tensor_name(value)):
            continue
        name, array = parse_tensor(value)
        tensors[name] = array
    return tensors


@dataclass(frozen=True)
class OnnxNode:
    """One operation of the graph: its type, the names of the values it reads and writes, and its
    numeric, string and tensor attributes (graph-valued attributes are not decoded)."""

    op_type: str
    inputs: Tuple[str, ...]
    outputs: Tuple[str, ...]
    name: str = ""
    attributes: Dict[str, Any] = dataclass_field(default_factory=dict)


def read_onnx_nodes(source: Union[str, bytes]) -> List[OnnxNode]:
    """Return the graph's nodes in file order (ONNX stores them topologically sorted), so the
    architecture of a model can be read without running it."""
    nodes = []
    for number, wire_type, value in iter_fields(_graph(source)):
        if number == GRAPH_NODE and wire_type == 2:
            nodes.append(_parse_node(value))
    return nodes


def _parse_node(buf: Buffer) -> OnnxNode:
    inputs, outputs, name, op_type, attributes = [], [], "", "", {}
    for number, _, value in iter_fields(buf):
        if number == NODE_INPUT:
            inputs.append(bytes(value).decode("utf-8"))
        elif number == NODE_OUTPUT:
            outputs.append(bytes(value).decode("utf-8"))
        elif number == NODE_NAME:
            name = bytes(value).decode("utf-8")
        elif number == NODE_OP_TYPE:
            op_type = bytes(value).decode("utf-8")
        elif number == NODE_ATTRIBUTE:
            key, attribute = _parse_attribute(value)
            attributes[key] = attribute
    return OnnxNode(op_type, tuple(inputs), tuple(outputs), name, attributes)


def _parse_attribute(buf: Buffer) -> Tuple[str, Any]:
    """(name, value) of an AttributeProto: a float, int, string, array, or a list of floats or ints."""
    name, value, ints, floats = "", None, [], []
    for number, wire_type, raw in iter_fields(buf):
        if number == ATTR_NAME:
            name = bytes(raw).decode("utf-8")
        elif number == ATTR_F:
            value = float(np.frombuffer(raw, dtype="<f4")[0])
        elif number == ATTR_I:
            value = raw - (1 << 64) if raw >= 1 << 63 else raw  # int64 as two's complement
        elif number == ATTR_S:
            value = bytes(raw).decode("utf-8", errors="replace")
        elif number == ATTR_T:
            value = parse_tensor(raw)[1]  # e.g. the value of a Constant node
        elif number == ATTR_INTS:
            ints.extend(v - (1 << 64) if v >= 1 << 63 else v for v in _packed_varints(raw))
        elif number == ATTR_FLOATS:
            floats.extend(np.frombuffer(raw, dtype="<f4").tolist())
    if value is None and (ints or floats):
        value = ints or floats
    return name, value


def _graph(source: Union[str, bytes]) -> memoryview:
    data = source if isinstance(source, (bytes, bytearray)) else _read_file(source)
    graph = None
    for number, wire_type, value in iter_fields(data):
        if number == MODEL_GRAPH and wire_type == 2:
            graph = value
    if graph is None:
        raise ValueError("not an ONNX model: no ModelProto.graph field found")
    return graph


def _tensor_name(buf: Buffer) -> str:
    """The name of a TensorProto, read without decoding its data."""
    for field, _, value in iter_fields(buf):
        if field == TENSOR_NAME:
            return bytes(value).decode("utf-8")
    return ""


def _read_file(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()
