"""The binary tensor data extension of the Open Inference Protocol (Triton's `binary_tensor_data`,
which tritonclient and the KServe SDK use by default), both ways.

A request with an `Inference-Header-Content-Length: n` header is n bytes of JSON (the usual infer
request) followed by the inputs' raw data, in input order: each input that has
`parameters.binary_data_size` takes that many bytes. Fixed-size types are little-endian values
(BOOL one byte each); BYTES elements are a 4-byte little-endian length followed by the bytes.
A response does the same for the outputs asked in binary.

Every number here comes from the client, so each is checked before it is used: the header length
against the body, each size against what is left and against the shape and datatype, the sizes
against the body's end, each BYTES length against the bytes left. Values are read with
`numpy.frombuffer` and exact counts, so nothing is read past the buffer, and nothing is
allocated beyond the body's size (itself capped). Every fault is an InputError (a 400).
"""

import math
import struct
from typing import Any

import numpy as np
from django.conf import settings

from serving.codecs.columns import InputError, json_encode

HEADER = "Inference-Header-Content-Length"

# Fixed-size datatypes → little-endian numpy dtypes.
FIXED: dict[str, np.dtype] = {
    "BOOL": np.dtype("u1"),  # read as bytes, then any non-zero byte is true
    "UINT8": np.dtype("u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}
_LENGTH = struct.Struct("<I")


def _size(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def split(body: bytes, header_length: str) -> tuple[bytes, memoryview]:
    """A binary request body → (its JSON header, the raw data after it)."""
    text = header_length.strip()
    if not text.isdigit() or len(text) > 20:
        raise InputError(f"{HEADER} must be a byte count, got {header_length[:40]!r}.")
    length = int(text)
    if length > len(body):
        raise InputError(
            f"{HEADER} is {length} but the body has only {len(body)} bytes.", field=HEADER
        )
    view = memoryview(body)
    return bytes(view[:length]), view[length:]


def inputs_attach(data: Any, raw: memoryview) -> None:
    """Replaces each binary input's `parameters.binary_data_size` by its values (a flat numpy
    array, which `open_inference.request` takes as the tensor's data). Shapes, names and
    datatypes are checked there; here, only what the bytes need."""
    if not isinstance(data, dict) or not isinstance(data.get("inputs"), list):
        return  # open_inference.request reports the shape of the body
    offset = 0
    for position, tensor in enumerate(data["inputs"]):
        params = tensor.get("parameters") if isinstance(tensor, dict) else None
        if not isinstance(params, dict) or "binary_data_size" not in params:
            continue
        name = tensor.get("name")
        field = name if isinstance(name, str) else f"inputs[{position}]"
        size = _size(params["binary_data_size"])
        if size is None:
            raise InputError(
                f"Tensor '{field}': binary_data_size must be a non-negative integer.", field=field
            )
        if "data" in tensor:
            raise InputError(
                f"Tensor '{field}' has both 'data' and binary_data_size: send one.", field=field
            )
        if size > len(raw) - offset:
            raise InputError(
                f"Tensor '{field}': binary_data_size {size} goes past the end of the body "
                f"({len(raw) - offset} bytes left).",
                field=field,
            )
        tensor["data"] = _values(tensor, field, raw[offset : offset + size])
        offset += size
    if offset != len(raw):
        raise InputError(
            f"The binary inputs' sizes add up to {offset} bytes but {len(raw)} bytes follow the "
            "JSON header: every input sent in binary needs its binary_data_size.",
            field="inputs",
        )


def _elements(tensor: dict[str, Any], field: str) -> int:
    shape = tensor.get("shape")
    if not isinstance(shape, list) or not shape or any(_size(s) is None for s in shape):
        raise InputError(f"Tensor '{field}': 'shape' must be an array of sizes.", field=field)
    limit = int(settings.MLPLATFORM_MAX_BATCH_ROWS)
    if shape[0] > limit:
        raise InputError(
            f"{shape[0]} rows exceed the limit of {limit} rows per request "
            "(MLPLATFORM_MAX_BATCH_ROWS); use a batch job for more.",
            field=field,
        )
    return math.prod(shape)


def _values(tensor: dict[str, Any], field: str, chunk: memoryview) -> np.ndarray:
    datatype = tensor.get("datatype")
    elements = _elements(tensor, field)
    if datatype == "BYTES":
        return _strings(chunk, elements, field)
    dtype = FIXED.get(datatype) if isinstance(datatype, str) else None
    if dtype is None:
        raise InputError(
            f"Tensor '{field}': datatype {datatype!r} is not one of BYTES, {', '.join(FIXED)}.",
            field=field,
        )
    if len(chunk) != elements * dtype.itemsize:
        raise InputError(
            f"Tensor '{field}': shape {tensor['shape']} of {datatype} needs "
            f"{elements * dtype.itemsize} bytes, binary_data_size is {len(chunk)}.",
            field=field,
        )
    values = np.frombuffer(chunk, dtype=dtype, count=elements)
    if datatype == "BOOL":
        return values != 0
    return values.astype(dtype.newbyteorder("="), copy=False)


def _strings(chunk: memoryview, elements: int, field: str) -> np.ndarray:
    if elements * _LENGTH.size > len(chunk):
        raise InputError(
            f"Tensor '{field}': {elements} BYTES elements need at least {elements * 4} bytes, "
            f"binary_data_size is {len(chunk)}.",
            field=field,
        )
    out = np.empty(elements, dtype=object)
    offset = 0
    end = len(chunk)
    for index in range(elements):
        if end - offset < _LENGTH.size:
            raise InputError(
                f"Tensor '{field}', element {index}: the data ends before its length.",
                field=field,
                row=index,
            )
        (length,) = _LENGTH.unpack_from(chunk, offset)
        offset += _LENGTH.size
        if length > end - offset:
            raise InputError(
                f"Tensor '{field}', element {index}: length {length} goes past the end of its "
                f"data ({end - offset} bytes left).",
                field=field,
                row=index,
            )
        try:
            out[index] = str(chunk[offset : offset + length], "utf-8")
        except UnicodeDecodeError:
            raise InputError(
                f"Tensor '{field}', element {index}: not UTF-8 text.", field=field, row=index
            ) from None
        offset += length
    if offset != end:
        raise InputError(
            f"Tensor '{field}': {end - offset} bytes are left after its {elements} BYTES "
            "elements (binary_data_size does not match).",
            field=field,
        )
    return out


# --- responses ------------------------------------------------------------------------------


def _raw(datatype: str, data: Any) -> bytes:
    if datatype == "BYTES":
        parts = []
        for value in data:
            encoded = (value if isinstance(value, str) else str(value)).encode("utf-8")
            parts.append(_LENGTH.pack(len(encoded)))
            parts.append(encoded)
        return b"".join(parts)
    if datatype == "BOOL":
        return np.asarray(data, dtype=bool).astype("u1").tobytes()
    if datatype.startswith("FP") and not isinstance(data, np.ndarray):
        # null (a NaN or an infinity the model returned) goes back as NaN
        data = [math.nan if value is None else value for value in data]
    return np.asarray(data, dtype=FIXED[datatype]).tobytes()


def outputs_encode(body: dict[str, Any], binary: frozenset[str]) -> tuple[bytes, int] | None:
    """The response with the outputs named in `binary` as raw data after the JSON header:
    (the whole body, the header's length), or None when no output is binary (plain JSON)."""
    chunks: list[bytes] = []
    for output in body["outputs"]:
        if output["name"] not in binary:
            continue
        try:
            raw = _raw(output["datatype"], output["data"])
        except (TypeError, ValueError, OverflowError):
            continue  # values its datatype cannot hold (a null among integers): left as JSON
        del output["data"]
        output["parameters"] = {**(output.get("parameters") or {}), "binary_data_size": len(raw)}
        chunks.append(raw)
    if not chunks:
        return None
    header = json_encode(body)
    return b"".join([header, *chunks]), len(header)
