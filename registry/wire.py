"""The frame both ends of a model-runner socket speak (`registry.runner`, `serving.runners`).

    prefix   16 bytes  struct "<4sIQ": b"MLR1", header length H, body length B
    header   H bytes   a UTF-8 JSON object, padded with spaces to a multiple of 8 bytes
    body     B bytes   the buffers the header describes, in order, each padded with zero bytes
                       to a multiple of 8 (so every numeric buffer is 8-byte aligned)

A buffer is raw little-endian numbers of one of `WIRE_DTYPES`, or a UTF-8 JSON list marked with
the dtype "json". Nothing is ever pickled. The messages themselves are described in
`registry.runner`. This module imports neither Django nor anything that deserialises.
"""

import json
import struct
from collections.abc import Sequence
from typing import Any

import numpy as np

MAGIC = b"MLR1"
PREFIX = struct.Struct("<4sIQ")
ALIGN = 8
WIRE_DTYPES: dict[str, np.dtype[Any]] = {
    "float64": np.dtype("<f8"),
    "float32": np.dtype("<f4"),
    "int64": np.dtype("<i8"),
    "int32": np.dtype("<i4"),
    "bool": np.dtype("|b1"),
}
OUTPUTS = ("predict", "predict_proba")


def padding(size: int) -> int:
    return -size % ALIGN


def frame(header: dict[str, Any], buffers: Sequence[Any] = ()) -> bytes:
    """One message: prefix, padded JSON header, padded buffers (bytes or contiguous arrays)."""
    head = json.dumps(header, separators=(",", ":"), default=str).encode()
    head += b" " * padding(len(head))
    parts: list[Any] = [b"", head]
    total = 0
    for buffer in buffers:
        size = memoryview(buffer).nbytes
        parts.append(buffer)
        if padding(size):
            parts.append(bytes(padding(size)))
        total += size + padding(size)
    parts[0] = PREFIX.pack(MAGIC, len(head), total)
    return b"".join(parts)
