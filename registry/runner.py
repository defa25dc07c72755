"""Model runner: a long-lived confined process that loads one artifact and answers predictions.

Versions that do not compile to ONNX are still served without unpickling anything in the web or
worker processes (which hold the database credentials and the secret key): `serving.runners`
starts this module as a child, with a fresh scratch directory holding a copy of the artifact as
its working directory, the environment of `registry.confinement.child_env()`, the Popen keyword
arguments of `registry.confinement.demotion()` and one end of a UNIX socket pair inherited as the
descriptor named last on its command line. The child confines itself before it opens the
artifact, loads it (sha256 re-checked), checks its tree arrays, says it is ready and then answers
predict calls until the socket reaches end-of-file. It imports no Django.

Wire protocol
-------------
Both directions use the frame of `registry.wire` (a length prefix, a JSON header, raw numeric
buffers or JSON lists; never a pickle), each message sent with one write:

1. parent → runner, once: `{"start": {"artifact": file name in the scratch directory, "sha256",
   "format": skops|joblib|pickle, "trusted_types": [...], "columns": [signature names in order],
   "named_columns": bool, "memory_mb": int, "allow_unsafe": bool}}`, no body.
2. runner → parent: `{"ready": true, "protections": {what confine() reported}}`, or
   `{"error": message, "kind": "confinement" | "startup"}` after which the runner exits (the
   parent counts both as failures: code in the artifact could have written either).
3. parent → runner, per call: `{"outputs": ["predict", "predict_proba"], "rows": n}` plus either
   `"matrix": nbytes` (one float64 buffer of n rows by len(columns), row-major) or
   `"columns": [{"dtype": name, "nbytes": k}, ...]` (one buffer per signature column, in order).
   The runner builds a float64 matrix, or a pandas DataFrame with the signature's column names
   when `named_columns` is set or a column holds strings (exactly as `serving.codecs` does). A
   `matrix` goes to the estimator bare when it answered the probe rows of
   `takes_float_matrix` identically with and without the names.
4. runner → parent: `{"outputs": {name: {"dtype": name, "shape": [n, ...], "nbytes": k}}}` with
   one buffer per requested output, in the order requested; or `{"error": message, "kind":
   "input"}` when the estimator raised ValueError, TypeError or KeyError (or lacks
   predict_proba), `"kind": "internal"` for anything else. The runner keeps serving after both.

The parent treats every reply as hostile (size caps, dtype whitelist, shapes checked against the
row count); anything malformed is handled as a crash.
"""

import json
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from registry.wire import MAGIC, OUTPUTS, PREFIX, WIRE_DTYPES, frame, padding

# pandas and scikit-learn are imported only once this process is confined: importing them starts
# a thread (pyarrow's allocator), and confine() must run while the process has a single thread.

MAX_HEADER_BYTES = 64 * 1024
# The parent is trusted; this bound only turns a bug into an error instead of a huge allocation.
MAX_REQUEST_BYTES = 2 * 1024**3
RECEIVE_BUFFER_BYTES = 1024 * 1024
MAX_MESSAGE_CHARS = 2000


class ProtocolError(Exception):
    """A frame broke the wire protocol."""


class Refused(Exception):
    """The runner cannot serve this artifact; `kind` says whether confinement or the artifact
    is to blame."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


class Reader:
    """Reads whole frames into a preallocated buffer (one recv for a small message)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray(RECEIVE_BUFFER_BYTES)

    def read(self) -> tuple[dict[str, Any], memoryview] | None:
        """The next frame's header and body (valid until the next read), None at end-of-file."""
        buffer = self.buffer
        view = memoryview(buffer)
        got = 0
        while got < PREFIX.size:
            count = self.sock.recv_into(view[got:])
            if not count:
                if got:
                    raise ProtocolError("the socket closed inside a frame")
                return None
            got += count
        magic, header_size, body_size = PREFIX.unpack_from(buffer)
        total = PREFIX.size + header_size + body_size
        if magic != MAGIC or header_size > MAX_HEADER_BYTES or total > MAX_REQUEST_BYTES:
            raise ProtocolError("bad frame prefix")
        if total > len(buffer):
            bigger = bytearray(total)
            bigger[:got] = view[:got]
            buffer, view = bigger, memoryview(bigger)
        while got < total:
            count = self.sock.recv_into(view[got:total])
            if not count:
                raise ProtocolError("the socket closed inside a frame")
            got += count
        if got != total:
            raise ProtocolError("bytes after the end of a frame")
        header = json.loads(bytes(view[PREFIX.size : PREFIX.size + header_size]))
        if not isinstance(header, dict):
            raise ProtocolError("the header is not a JSON object")
        return header, view[PREFIX.size + header_size : total]


# --- requests → the estimator's input -----------------------------------------------------------


def request_matrix(
    header: dict[str, Any], body: memoryview, columns: Sequence[str], named: bool
) -> Any:
    """The estimator's input, built the way `serving.codecs.columns.columns_to_matrix` builds it."""
    rows = int(header["rows"])
    if "matrix" in header:
        count = rows * len(columns)
        matrix = np.frombuffer(body, dtype=WIRE_DTYPES["float64"], count=count)
        matrix = matrix.reshape(rows, len(columns))
        if named:
            import pandas as pd

            return pd.DataFrame(matrix, columns=list(columns), copy=False)
        return matrix
    specs = header["columns"]
    if len(specs) != len(columns):
        raise ProtocolError(f"{len(specs)} columns sent, the signature has {len(columns)}")
    arrays = []
    offset = 0
    for spec in specs:
        size = int(spec["nbytes"])
        chunk = body[offset : offset + size]
        offset += size + padding(size)
        if spec["dtype"] == "json":
            arrays.append(np.array(json.loads(bytes(chunk)), dtype=object))
        else:
            arrays.append(np.frombuffer(chunk, dtype=WIRE_DTYPES[spec["dtype"]]))
        if arrays[-1].shape != (rows,):
            raise ProtocolError(f"a column of shape {arrays[-1].shape} for {rows} rows")
    if named or any(array.dtype == object for array in arrays):
        import pandas as pd

        return pd.DataFrame(dict(zip(columns, arrays, strict=True)), copy=False)
    matrix = np.empty((rows, len(columns)), dtype=np.float64)
    for position, array in enumerate(arrays):
        matrix[:, position] = array
    return matrix


class Inputs(NamedTuple):
    """How requests become the estimator's input: the signature's columns, whether it was fitted
    on a DataFrame, and whether it takes the bare float64 matrix all the same."""

    columns: tuple[str, ...]
    named: bool
    bare_matrix: bool


# Probe rows for `takes_float_matrix`: zeros, then normal draws on several scales so that trees
# go both ways at most splits.
PROBE_SCALES = (0.1, 1.0, 10.0, 1000.0)
PROBE_ROWS_PER_SCALE = 4


def takes_float_matrix(estimator: Any, columns: Sequence[str]) -> bool:
    """Whether an estimator fitted on a DataFrame answers a float64 matrix in the signature's
    column order exactly as it answers the same values in a DataFrame with the column names.

    scikit-learn checks a DataFrame column by column before it copies it into the array its
    estimators compute on: for a one-row predict on 30 columns that is as long as the predict
    itself. A request that arrives as one float64 matrix is passed bare when the estimator
    learned exactly these names in this order (`feature_names_in_`) and every prediction method
    gives identical results on probe rows both ways. A step that picks columns by name refuses
    the bare matrix, and anything else that behaves differently answers the probe differently:
    such an estimator keeps getting its DataFrame.
    """
    import pandas as pd

    try:
        learned = [str(name) for name in estimator.feature_names_in_]
    except (AttributeError, TypeError):
        return False
    if learned != list(columns):
        return False
    width = len(columns)
    rng = np.random.default_rng(20261201)
    probe = np.vstack(
        [np.zeros((1, width))]
        + [rng.normal(size=(PROBE_ROWS_PER_SCALE, width)) * scale for scale in PROBE_SCALES]
    )
    try:
        for method in OUTPUTS:
            if not hasattr(estimator, method):
                continue
            # Wrapped as `request_matrix` wraps a request (no copy), so the estimator computes
            # on the same memory layout both ways and equal means bit for bit.
            frame = pd.DataFrame(probe.copy(), columns=list(columns), copy=False)
            expected = np.asarray(getattr(estimator, method)(frame))
            got = np.asarray(getattr(estimator, method)(probe.copy()))
            if expected.shape != got.shape or expected.dtype != got.dtype:
                return False
            if not np.array_equal(expected, got, equal_nan=expected.dtype.kind in "fc"):
                return False
    except Exception:  # any refusal of the bare matrix, whatever the model raises: keep names
        return False
    return True


# --- estimator results → a reply ----------------------------------------------------------------


def _wire_dtype(array: np.ndarray) -> str | None:
    """The whitelisted dtype a numeric result travels as, None for JSON."""
    kind, size = array.dtype.kind, array.dtype.itemsize
    if kind == "b":
        return "bool"
    if kind == "f":
        return "float32" if size <= 4 else "float64"
    if kind == "i":
        return "int32" if size <= 4 else "int64"
    if kind == "u":
        if size < 4:
            return "int32"
        if size == 4 or not array.size or int(array.max()) < 2**63:
            return "int64"
        return "float64"
    return None


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"a {type(value).__name__} in the result cannot be sent")


def reply_outputs(results: Sequence[tuple[str, Any]], rows: int) -> bytes:
    """Each result as dtype + shape + raw bytes, or as a JSON list for labels that are not
    numbers. Raises TypeError/ValueError for a result that cannot be sent."""
    specs: dict[str, Any] = {}
    buffers: list[Any] = []
    for name, result in results:
        array = np.asarray(result)
        if array.ndim == 0 or array.ndim > 3 or array.shape[0] != rows:
            raise ValueError(f"{name} returned shape {array.shape} for {rows} rows")
        wire = _wire_dtype(array)
        if wire is None:
            data = json.dumps(array.ravel().tolist(), default=_plain).encode()
            specs[name] = {"dtype": "json", "shape": list(array.shape), "nbytes": len(data)}
            buffers.append(data)
        else:
            array = np.ascontiguousarray(array, dtype=WIRE_DTYPES[wire])
            specs[name] = {"dtype": wire, "shape": list(array.shape), "nbytes": array.nbytes}
            buffers.append(array.reshape(-1).view(np.uint8))
    return frame({"outputs": specs}, buffers)


def error_frame(message: str, kind: str) -> bytes:
    return frame({"error": message[:MAX_MESSAGE_CHARS], "kind": kind})


def answer(estimator: Any, header: dict[str, Any], body: memoryview, inputs: Inputs) -> bytes:
    """The reply to one predict request."""
    try:
        rows = int(header["rows"])
        outputs = list(header["outputs"])
        named = inputs.named and not (inputs.bare_matrix and "matrix" in header)
        matrix = request_matrix(header, body, inputs.columns, named)
    except (KeyError, TypeError, ValueError, ProtocolError) as exc:
        return error_frame(f"bad request: {type(exc).__name__}: {exc}", "internal")
    if any(name not in OUTPUTS for name in outputs):
        return error_frame(f"unknown outputs {outputs}", "internal")
    if "predict_proba" in outputs and not hasattr(estimator, "predict_proba"):
        return error_frame(
            f"{type(estimator).__name__} has no predict_proba; ask for 'predict' only.", "input"
        )
    try:
        results = [(name, getattr(estimator, name)(matrix)) for name in outputs]
    except (ValueError, TypeError, KeyError) as exc:
        # The signature checks passed in the parent but the estimator refused the values (an
        # unseen category, for instance): still the client's input.
        return error_frame(str(exc) or type(exc).__name__, "input")
    except Exception as exc:  # reported to the parent, which answers 503; the runner lives on
        return error_frame(f"{type(exc).__name__}: {exc}", "internal")
    try:
        return reply_outputs(results, rows)
    except (TypeError, ValueError) as exc:
        return error_frame(f"the result cannot be sent: {exc}", "internal")


# --- start-up -----------------------------------------------------------------------------------


def load(start: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """Confine this process, then load and check the artifact; returns (estimator, protections).

    Raises:
        Refused: confinement failed, or the artifact cannot be served.
    """
    from registry.confinement import ConfinementError, Profile, confine

    name = str(start["artifact"])
    if Path(name).name != name or name in ("", ".", ".."):
        raise Refused(f"bad artifact name {name!r}", "startup")
    try:
        protections = confine(
            Profile(scratch=Path.cwd(), memory_mb=int(start["memory_mb"]), cpu_seconds=None),
            allow_unsafe=bool(start["allow_unsafe"]),
        )
    except ConfinementError as exc:
        raise Refused(str(exc), "confinement") from exc

    from registry import artifacts

    try:
        with open(name, "rb") as stream:
            estimator = artifacts.load_verified(
                stream=stream,
                expected_sha256=str(start["sha256"]),
                fmt=str(start["format"]),
                trusted_types=list(start["trusted_types"]),
            )
    except (artifacts.ArtifactIntegrityError, artifacts.ArtifactLoadError, OSError) as exc:
        raise Refused(str(exc), "startup") from exc
    _check_trees(estimator)
    if not hasattr(estimator, "predict"):
        raise Refused(f"{type(estimator).__name__} has no predict method.", "startup")
    # This process serves one estimator whose inputs the parent validated against the
    # signature: skip scikit-learn's finiteness and parameter re-checks on every call, as
    # `serving.services.validated_input` does in-process.
    import sklearn

    sklearn.set_config(assume_finite=True, skip_parameter_validation=True)
    return estimator, protections


def _check_trees(estimator: Any) -> None:
    """Tree arrays out of range would make the compiled predict read out of bounds."""
    from registry import trees

    try:
        trees.trees_check(estimator)
    except trees.TreeError as exc:
        raise Refused(f"Refused: {exc}", "startup") from exc


def serve(sock: socket.socket, reader: Reader, estimator: Any, inputs: Inputs) -> None:
    """Answer predict requests until the parent closes its end."""
    while True:
        message = reader.read()
        if message is None:
            return
        header, body = message
        sock.sendall(answer(estimator, header, body, inputs))


def _orphan_watch(period: float = 1.0) -> None:
    """Exit once the process that started us is gone. A runner stuck in a predict never reads
    its socket's end-of-file, so without this a killed web worker would leave it spinning."""
    import os
    import threading
    import time

    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(period)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, name="orphan-watch", daemon=True).start()


def main() -> None:
    import gc
    import warnings

    # Warnings would be written to a stderr nobody reads, at a cost on every call.
    warnings.simplefilter("ignore")
    sock = socket.socket(fileno=int(sys.argv[-1]))
    sock.setblocking(True)
    reader = Reader(sock)
    message = reader.read()
    if message is None:
        return
    start = message[0].get("start")
    if not isinstance(start, dict):
        raise ProtocolError("the first frame is not a start message")
    try:
        estimator, protections = load(start)
    except Refused as exc:
        sock.sendall(error_frame(str(exc), exc.kind))
        sys.exit(1)
    except Exception as exc:  # reported, then the runner exits: the parent counts it as a failure
        sock.sendall(error_frame(f"{type(exc).__name__}: {exc}", "startup"))
        sys.exit(1)
    columns = tuple(str(name) for name in start["columns"])
    named = bool(start["named_columns"])
    inputs = Inputs(columns, named, named and takes_float_matrix(estimator, columns))
    # The loaded model lives as long as the process: keep the collector from rescanning it.
    gc.collect()
    gc.freeze()
    _orphan_watch()
    sock.sendall(frame({"ready": True, "protections": protections}))
    serve(sock, reader, estimator, inputs)


if __name__ == "__main__":
    main()
