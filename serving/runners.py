"""Model runners, parent side: a per-process pool of confined processes serving the versions that
do not compile to ONNX, so that web and worker processes never unpickle a model.

Each runner (`registry.runner`, which documents the wire protocol) holds one artifact, keyed by
its sha256. One runner per (process, artifact); a lock per runner serialises calls to it, so the
threads of a gthread worker queue on it. Every reply is treated as hostile: frame and header
sizes are capped, dtypes whitelisted, shapes checked against the row count, nothing unpickled;
a malformed reply is handled like a crash. A runner that crashes or passes the time limit is
killed and reaped, the request fails with `RunnerUnavailable(failure=True)` naming the version
(the caller counts failures and quarantines), and the next call starts a fresh runner.

This module imports `registry.confinement` for the child's environment and user, never
`registry.runner` or `registry.artifacts` (an import-linter contract keeps the unpickling modules
out of web and worker processes); both ends share the frame format of `registry.wire`.
"""

import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from math import prod
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
from django.conf import settings

from registry import confinement
from registry.sandbox import child_command
from registry.wire import ALIGN, MAGIC, OUTPUTS, PREFIX, WIRE_DTYPES, frame, padding

JSON_SCALARS = frozenset({str, int, float, bool, type(None)})

# Bounds on what a runner may send back: a small header, and a body no larger than a generous
# per-row allowance (predict_proba over 8,000 classes fits) — it never needs more.
MAX_REPLY_HEADER_BYTES = 64 * 1024
REPLY_BASE_BYTES = 1024 * 1024
REPLY_BYTES_PER_ROW = 64 * 1024
MAX_REPLY_BYTES = 512 * 1024 * 1024
MAX_MESSAGE_CHARS = 1000
RECEIVE_BUFFER_BYTES = 64 * 1024
ARTIFACT_NAME = "artifact"
COPY_CHUNK = 1024 * 1024
# A runner whose socket closed has exited or is about to; this long at most to collect its status.
REAP_SECONDS = 2.0


class RunnerUnavailable(Exception):
    """The version cannot answer now; the message names it. `failure` is True when its runner
    crashed, timed out, sent garbage or refused to start (it counts toward quarantine)."""

    def __init__(self, message: str, *, failure: bool) -> None:
        super().__init__(message)
        self.failure = failure


class RunnerInputError(ValueError):
    """The estimator refused the input (ValueError, TypeError or KeyError in the runner)."""


@dataclass(frozen=True)
class RunnerSpec:
    key: str  # the artifact's sha256
    label: str  # e.g. "churn v3", used in messages
    format: str  # skops | joblib | pickle
    trusted_types: tuple[str, ...]
    columns: tuple[str, ...]  # signature input names, in order
    named_columns: bool
    open_artifact: Callable[[], AbstractContextManager[IO[bytes]]]


class _Closed(Exception):
    """The runner closed its socket."""


class _Malformed(Exception):
    """The runner's reply broke the protocol."""


# --- requests -----------------------------------------------------------------------------------


def _column_wire(array: np.ndarray) -> str | None:
    kind, size = array.dtype.kind, array.dtype.itemsize
    if kind == "b":
        return "bool"
    if kind == "f":
        return "float32" if size == 4 else "float64"
    if kind == "i":
        return "int32" if size == 4 else "int64"
    if kind == "u":
        return "int64" if size < 8 else "float64"
    return None


def _frame_column(frame: pd.DataFrame, name: str) -> Any:
    """One column's values (an ndarray or a pandas extension array such as strings)."""
    try:
        position = frame.columns.get_loc(name)
    except KeyError:
        raise RunnerInputError(f"Missing column '{name}'.") from None
    # Selecting a column builds a Series, tens of microseconds each on pandas 3; the array it
    # would wrap is read straight from the frame when this pandas still offers that.
    direct = getattr(frame, "_get_column_array", None)
    if type(position) is int and callable(direct):
        return direct(position)
    return frame[name].to_numpy()


def _request(
    spec: RunnerSpec, matrix: np.ndarray | pd.DataFrame, outputs: Sequence[str]
) -> tuple[bytes, int]:
    """The predict frame and its row count: a float64 matrix as one buffer, a DataFrame as one
    buffer per signature column (numbers raw, strings as a JSON list)."""
    if isinstance(matrix, pd.DataFrame):
        rows = len(matrix)
        specs: list[dict[str, Any]] = []
        buffers: list[Any] = []
        for name in spec.columns:
            column = _frame_column(matrix, name)
            if not isinstance(column, np.ndarray) and column.dtype.kind not in "OSU":
                column = column.to_numpy()  # nullable numbers and other extension arrays
            wire = _column_wire(column) if isinstance(column, np.ndarray) else None
            if wire is None:
                values = column.tolist() if isinstance(column, np.ndarray) else list(column)
                try:
                    data = json.dumps(values).encode()
                except (TypeError, ValueError) as exc:
                    raise RunnerInputError(f"Column '{name}': {exc}") from exc
                specs.append({"dtype": "json", "nbytes": len(data)})
                buffers.append(data)
            else:
                column = np.ascontiguousarray(column, dtype=WIRE_DTYPES[wire])
                specs.append({"dtype": wire, "nbytes": column.nbytes})
                buffers.append(column.view(np.uint8))
        header = {"outputs": list(outputs), "rows": rows, "columns": specs}
        return frame(header, buffers), rows
    array: np.ndarray = np.asarray(matrix)
    if array.ndim != 2 or array.shape[1] != len(spec.columns):
        raise RunnerInputError(
            f"Expected rows of {len(spec.columns)} values, got an array of shape {array.shape}."
        )
    if array.dtype.kind not in "fiub":
        raise RunnerInputError(f"Expected numbers, got {array.dtype} values.")
    array = np.ascontiguousarray(array, dtype=WIRE_DTYPES["float64"])
    rows = array.shape[0]
    header = {"outputs": list(outputs), "rows": rows, "matrix": array.nbytes}
    return frame(header, [array.reshape(-1).view(np.uint8)]), rows


# --- replies ------------------------------------------------------------------------------------


def _shape(value: Any, rows: int) -> tuple[int, ...]:
    if (
        type(value) is not list
        or not 1 <= len(value) <= 3
        or any(type(d) is not int or not 0 <= d < 2**31 for d in value)
        or value[0] != rows
    ):
        raise _Malformed(f"an output of shape {str(value)[:100]} for {rows} rows")
    return tuple(value)


def _decode_outputs(
    header: dict[str, Any], body: memoryview, fresh: bool, rows: int, outputs: Sequence[str]
) -> dict[str, np.ndarray]:
    specs = header.get("outputs")
    if type(specs) is not dict or len(specs) != len(outputs) or set(specs) != set(outputs):
        raise _Malformed("not the outputs asked for")
    results: dict[str, np.ndarray] = {}
    offset = 0
    for name in outputs:  # buffers come in the order the outputs were asked for
        spec = specs[name]
        if type(spec) is not dict:
            raise _Malformed(f"{name} is not described")
        shape = _shape(spec.get("shape"), rows)
        size = spec.get("nbytes")
        if type(size) is not int or size < 0 or offset + size > len(body):
            raise _Malformed(f"{name} overruns the frame")
        chunk = body[offset : offset + size]
        offset += size + padding(size)
        dtype_name = spec.get("dtype")
        count = prod(shape)
        array: np.ndarray
        if dtype_name == "json":
            try:
                values = json.loads(bytes(chunk))
            except (ValueError, RecursionError) as exc:
                raise _Malformed(f"{name} is not JSON") from exc
            if type(values) is not list or len(values) != count:
                raise _Malformed(f"{name} does not hold {count} values")
            if not set(map(type, values)) <= JSON_SCALARS:
                raise _Malformed(f"{name} holds values that are not labels")
            array = np.empty(count, dtype=object)
            array[:] = values
            array = array.reshape(shape)
        elif type(dtype_name) is str and dtype_name in WIRE_DTYPES:
            dtype = WIRE_DTYPES[dtype_name]
            if size != count * dtype.itemsize:
                raise _Malformed(f"{name} has {size} bytes for shape {shape}")
            array = np.frombuffer(chunk, dtype=dtype).reshape(shape)
            if dtype_name == "bool":
                array = array.view(np.uint8) != 0  # only 0 and 1 are valid booleans
            elif not fresh:  # the receive buffer is reused by the next call
                array = array.copy()
        else:
            raise _Malformed(f"{name} has dtype {str(dtype_name)[:40]!r}")
        results[name] = array
    if offset != len(body):
        raise _Malformed("bytes after the last output")
    return results


# --- one runner ---------------------------------------------------------------------------------


def _text(value: Any) -> str:
    """A runner's message, bounded and printable: it ends up in responses and logs."""
    return "".join(c if c.isprintable() else "?" for c in str(value)[:MAX_MESSAGE_CHARS])


def _exit_words(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


class _Runner:
    """One child process and our end of its socket; used under its slot's lock."""

    def __init__(
        self, spec: RunnerSpec, process: subprocess.Popen[bytes], sock: socket.socket, scratch: Path
    ) -> None:
        self.spec = spec
        self.process = process
        self.sock = sock
        self.scratch = scratch
        self.owner = os.getpid()
        self.alive = True
        self.stopped = False  # by runners_stop(): a call it interrupts is not the model's fault
        self.protections: dict[str, Any] = {}
        self.buffer = bytearray(RECEIVE_BUFFER_BYTES)

    # -- receiving, with a deadline
    def _recv(self, view: memoryview, deadline: float) -> int:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        self.sock.settimeout(remaining)
        count = self.sock.recv_into(view)
        if not count:
            raise _Closed
        return count

    def _read(self, deadline: float, max_body: int) -> tuple[dict[str, Any], memoryview, bool]:
        """One reply: header, body, and whether the body has a buffer of its own."""
        buffer = self.buffer
        view = memoryview(buffer)
        got = 0
        while got < PREFIX.size:
            got += self._recv(view[got:], deadline)
        magic, header_size, body_size = PREFIX.unpack_from(buffer)
        if magic != MAGIC:
            raise _Malformed("bad frame prefix")
        if header_size > MAX_REPLY_HEADER_BYTES or body_size > max_body:
            raise _Malformed(f"a frame of {header_size} + {body_size} bytes")
        if header_size % ALIGN or body_size % ALIGN:
            raise _Malformed("an unpadded frame")
        total = PREFIX.size + header_size + body_size
        if got > total:
            raise _Malformed("bytes after the end of the frame")
        fresh = total > len(buffer)
        if fresh:
            bigger = bytearray(total)
            bigger[:got] = view[:got]
            buffer, view = bigger, memoryview(bigger)
        while got < total:
            got += self._recv(view[got:total], deadline)
        try:
            header = json.loads(bytes(view[PREFIX.size : PREFIX.size + header_size]))
        except (ValueError, RecursionError) as exc:
            raise _Malformed("the header is not JSON") from exc
        if type(header) is not dict:
            raise _Malformed("the header is not a JSON object")
        return header, view[PREFIX.size + header_size : total], fresh

    # -- one exchange
    def exchange(
        self, message: bytes, *, timeout: float, max_body: int, doing: str, too_slow: str
    ) -> tuple[dict[str, Any], memoryview, bool]:
        """Send a frame and read the reply; a dead, slow or garbling runner is put down and
        reported as RunnerUnavailable naming the version."""
        label = self.spec.label
        deadline = time.monotonic() + timeout
        try:
            self.sock.settimeout(timeout)
            self.sock.sendall(message)
            header, body, fresh = self._read(deadline, max_body)
        except TimeoutError:
            self.kill()
            if self.stopped:
                raise self._stopped() from None
            raise RunnerUnavailable(too_slow, failure=True) from None
        except (_Closed, OSError):  # EOF, or a reset/broken pipe from a runner that died
            how = self.reap()
            if self.stopped:
                raise self._stopped() from None
            raise RunnerUnavailable(
                f"{label}'s runner died {doing} ({how}); the next request starts a new one.",
                failure=True,
            ) from None
        except _Malformed as exc:
            self.kill()
            raise RunnerUnavailable(
                f"{label}'s runner sent a malformed reply {doing} ({exc}); it was replaced.",
                failure=True,
            ) from None
        return header, body, fresh

    def _stopped(self) -> RunnerUnavailable:
        return RunnerUnavailable(f"{self.spec.label}'s runner was stopped.", failure=False)

    def handshake(self, start: dict[str, Any], timeout: float) -> None:
        header, _, _ = self.exchange(
            frame({"start": start}),
            timeout=timeout,
            max_body=0,
            doing="while starting",
            too_slow=f"{self.spec.label}'s runner did not start within {timeout:g} s "
            "(MLPLATFORM_RUNNER_STARTUP_SECONDS); it was stopped.",
        )
        if "error" in header:
            message = _text(header["error"])
            self.reap()
            # Counted even when it blames confinement: the artifact's own code may have written
            # this reply while loading, and _start already checked that this machine confines.
            raise RunnerUnavailable(f"{self.spec.label} cannot be served: {message}", failure=True)
        protections = header.get("protections")
        if header.get("ready") is not True or type(protections) is not dict:
            self.kill()
            raise RunnerUnavailable(
                f"{self.spec.label}'s runner sent a malformed start-up reply; it was stopped.",
                failure=True,
            )
        self.protections = protections

    def call(
        self, message: bytes, rows: int, outputs: Sequence[str], timeout: float
    ) -> dict[str, np.ndarray]:
        max_body = min(MAX_REPLY_BYTES, REPLY_BASE_BYTES + rows * REPLY_BYTES_PER_ROW)
        header, body, fresh = self.exchange(
            message,
            timeout=timeout,
            max_body=max_body,
            doing="while predicting",
            too_slow=f"{self.spec.label} did not answer within {timeout:g} s; "
            "its runner was replaced.",
        )
        if "error" in header:
            text = _text(header["error"])
            if header.get("kind") == "input":
                raise RunnerInputError(text)
            raise RunnerUnavailable(f"{self.spec.label} failed to predict: {text}", failure=False)
        try:
            return _decode_outputs(header, body, fresh, rows, outputs)
        except _Malformed as exc:
            self.kill()
            raise RunnerUnavailable(
                f"{self.spec.label}'s runner sent a malformed reply ({exc}); it was replaced.",
                failure=True,
            ) from None

    # -- ending
    def reap(self) -> str:
        """Wait for a runner that is exiting (kill it if it lingers); say how it ended."""
        self.alive = False
        try:
            code = self.process.wait(timeout=REAP_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self._release()
        return _exit_words(code)

    def kill(self) -> None:
        self.alive = False
        self.process.kill()
        self.process.wait()
        self._release()

    def abandon(self) -> None:
        """In a forked child: let go of the parent's runner without touching it."""
        self.alive = False
        self.sock.close()

    def _release(self) -> None:
        self.sock.close()
        shutil.rmtree(self.scratch, ignore_errors=True)


def _spawn(spec: RunnerSpec, scratch: Path) -> tuple[subprocess.Popen[bytes], socket.socket]:
    """Copy the artifact into the scratch directory and start a runner on it; returns the
    process and our end of its socket."""
    artifact = scratch / ARTIFACT_NAME
    with spec.open_artifact() as source, artifact.open("wb") as target:
        shutil.copyfileobj(source, target, COPY_CHUNK)
    artifact.chmod(0o444)
    demotion = confinement.demotion()
    if "user" in demotion:
        # The demoted runner must enter its scratch directory; the artifact stays ours.
        shutil.chown(scratch, user=demotion["user"], group=demotion.get("group"))
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            child_command("registry.runner", str(theirs.fileno())),
            cwd=scratch,
            env=confinement.child_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            # Nobody reads a runner's stderr, and a model must not write into our logs.
            stderr=subprocess.DEVNULL,
            pass_fds=(theirs.fileno(),),
            # Its own session: a Ctrl-C meant for a development server does not reach it.
            start_new_session=True,
            **demotion,
        )
    except BaseException:
        ours.close()
        raise
    finally:
        theirs.close()
    return process, ours


def _start(spec: RunnerSpec) -> _Runner:
    """Copy the artifact into a fresh scratch directory, start a confined runner on it and wait
    for it to be ready.

    Raises:
        RunnerUnavailable: this machine cannot confine runners, the artifact cannot be read or
            the runner cannot be started (failure=False); or the runner refused the artifact,
            crashed or did not start in time (failure=True).
    """
    startup = float(settings.MLPLATFORM_RUNNER_STARTUP_SECONDS)
    allow_unsafe = bool(settings.MLPLATFORM_UNSAFE_SANDBOX)
    machine = confinement.available()
    if not machine["seccomp"] and not allow_unsafe:
        # Not the version's fault, so not a failure: no runner can start on this machine.
        raise RunnerUnavailable(
            f"{spec.label} cannot be served: model runners need seccomp, which this machine "
            f"does not give ({machine['reason']}); MLPLATFORM_UNSAFE_SANDBOX=1 overrides this.",
            failure=False,
        )
    scratch = Path(tempfile.mkdtemp(prefix="mlp-runner-"))
    try:
        process, ours = _spawn(spec, scratch)
    except BaseException as exc:
        shutil.rmtree(scratch, ignore_errors=True)
        if isinstance(exc, OSError):
            raise RunnerUnavailable(
                f"{spec.label} cannot be served: its runner could not be prepared ({exc}).",
                failure=False,
            ) from exc
        raise
    runner = _Runner(spec, process, ours, scratch)
    start = {
        "artifact": ARTIFACT_NAME,
        "sha256": spec.key,
        "format": spec.format,
        "trusted_types": list(spec.trusted_types),
        "columns": list(spec.columns),
        "named_columns": spec.named_columns,
        "memory_mb": int(settings.MLPLATFORM_RUNNER_MEMORY_MB),
        "allow_unsafe": allow_unsafe,
    }
    try:
        runner.handshake(start, startup)
    except BaseException:
        if runner.alive:
            runner.kill()
        raise
    return runner


# --- the per-process pool -----------------------------------------------------------------------


class _Slot:
    """The runner of one artifact in this process, and the lock its callers queue on."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.runner: _Runner | None = None


_pool_lock = threading.Lock()
_slots: OrderedDict[str, _Slot] = OrderedDict()


def _slot(key: str) -> _Slot:
    with _pool_lock:
        slot = _slots.get(key)
        if slot is None:
            slot = _slots[key] = _Slot()
        else:
            _slots.move_to_end(key)
        return slot


def _ready(slot: _Slot, spec: RunnerSpec) -> _Runner:
    """The slot's live runner, started if it has none (call with the slot's lock held)."""
    runner = slot.runner
    if runner is not None and runner.owner != os.getpid():
        runner.abandon()  # inherited across a fork that bypassed the fork hook
        runner = None
    if runner is None or not runner.alive:
        slot.runner = None
        runner = slot.runner = _start(spec)
        _evict(keep=spec.key)
    return runner


def _evict(*, keep: str) -> None:
    """Stop the least recently used idle runners past MLPLATFORM_MODEL_CACHE_SIZE: each one is a
    process holding a whole model. Slots stay (they are small): a caller may be queued on one."""
    size = max(1, int(settings.MLPLATFORM_MODEL_CACHE_SIZE))
    with _pool_lock:
        live = [(k, s) for k, s in _slots.items() if s.runner is not None and s.runner.alive]
    surplus = len(live) - size
    for key, slot in live:
        if surplus <= 0:
            return
        if key == keep or not slot.lock.acquire(blocking=False):
            continue  # the one just started, or busy: not idle
        try:
            runner, slot.runner = slot.runner, None
            if runner is not None:
                _end(runner)
                surplus -= 1
        finally:
            slot.lock.release()


def _end(runner: _Runner) -> None:
    if runner.owner != os.getpid():
        runner.abandon()
    elif runner.alive:
        runner.stopped = True
        runner.kill()


def _wait_seconds(limit: float) -> float:
    return limit + float(settings.MLPLATFORM_RUNNER_STARTUP_SECONDS)


def runner_outputs(
    spec: RunnerSpec,
    matrix: np.ndarray | pd.DataFrame,
    outputs: Sequence[str],
    *,
    timeout: float | None = None,
) -> dict[str, np.ndarray]:
    """`predict` and/or `predict_proba` of a validated matrix, computed by the version's runner.

    Raises:
        RunnerInputError: the estimator refused the input (a 400 for the client).
        RunnerUnavailable: the runner could not start, crashed, timed out or failed; the
            message names the version, `failure` says whether it counts toward quarantine.
    """
    outputs = list(dict.fromkeys(outputs))
    if not outputs or any(name not in OUTPUTS for name in outputs):
        raise ValueError(f"outputs must be among {OUTPUTS}, got {outputs}")
    limit = float(settings.MLPLATFORM_RUNNER_TIMEOUT_SECONDS if timeout is None else timeout)
    message, rows = _request(spec, matrix, outputs)
    slot = _slot(spec.key)
    if not slot.lock.acquire(timeout=_wait_seconds(limit)):
        raise RunnerUnavailable(
            f"{spec.label} is busy: its runner did not become free in time.", failure=False
        )
    try:
        return _ready(slot, spec).call(message, rows, outputs, limit)
    finally:
        slot.lock.release()


def runner_protections(spec: RunnerSpec) -> dict[str, Any]:
    """What confinement the version's runner reported at start (starting it if needed).

    Raises:
        RunnerUnavailable: the runner could not start.
    """
    slot = _slot(spec.key)
    limit = float(settings.MLPLATFORM_RUNNER_TIMEOUT_SECONDS)
    if not slot.lock.acquire(timeout=_wait_seconds(limit)):
        raise RunnerUnavailable(
            f"{spec.label} is busy: its runner did not become free in time.", failure=False
        )
    try:
        return dict(_ready(slot, spec).protections)
    finally:
        slot.lock.release()


def runners_stop() -> None:
    """Kill every runner this process started (tests, shutdown); a call in flight fails with
    RunnerUnavailable(failure=False)."""
    with _pool_lock:
        slots = list(_slots.values())
    for slot in slots:
        runner, slot.runner = slot.runner, None
        if runner is not None:
            _end(runner)


def runner_count() -> int:
    """How many live runners this process has."""
    pid = os.getpid()
    with _pool_lock:
        return sum(
            1
            for slot in _slots.values()
            if slot.runner is not None and slot.runner.alive and slot.runner.owner == pid
        )


def _forget_after_fork() -> None:
    """A forked child (gunicorn preload, Celery prefork) must not talk on its parent's sockets:
    close its copies, so a runner still sees end-of-file when its real owner goes, and start
    over with fresh locks (another thread may have held the old ones at the fork)."""
    global _pool_lock, _slots
    inherited = list(_slots.values())
    _pool_lock = threading.Lock()
    _slots = OrderedDict()
    for slot in inherited:
        if slot.runner is not None:
            slot.runner.abandon()


os.register_at_fork(after_in_child=_forget_after_fork)
atexit.register(runners_stop)
