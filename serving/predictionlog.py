"""The prediction log: sampled predictions, written off the request path.

A request is sampled at its model's rate (`RegisteredModel.log_sample_rate`, else
MLPLATFORM_LOG_SAMPLE_RATE), read from the version the request resolved (cached per process with
its route), so the decision costs no query; a shadow's entries follow their caller's decision.

A sampled request is queued in memory, compactly (`Entry`), and a background thread per process
(woken per MLPLATFORM_LOG_BATCH_SIZE entries, else every MLPLATFORM_LOG_FLUSH_SECONDS) writes it:
- as `PredictionLog` rows for the pages (predictions, usage charts), at most
  MLPLATFORM_LOG_DB_ROWS_PER_SECOND a second per process (a cap: the pages need a sample, and
  the database rows, JSON of every input, must not set the cost of logging);
- into Parquet partitions a monitoring job reads with DuckDB, through Django's default storage:
  `prediction-log/model=<model id>/date=<YYYY-MM-DD>/hour=<HH>/<version>-<writer id>.parquet`
  (UTC; the writer id is the process id and a random suffix), one file per version and hour
  per write, written when MLPLATFORM_LOG_FILE_ROWS rows
  wait or the oldest has waited MLPLATFORM_LOG_FILE_SECONDS, and at process exit.

One Parquet row per predicted row: `request_id` (string), `ts` (timestamp[us, UTC]), `version`
(int32), `role` (primary | canary | shadow), `protocol`, `row` (int32, its index in the
request), `latency_ms` (float64, the request's); `in__<column>` per signature input (float64 for
numbers and booleans, string for text; null when missing) as the model received them — for a
version linked to a feature service that includes the feature values served, beside its entity
keys `key__<join key>` (string); `out__prediction` (string for class labels — the label of the
highest probability when only probabilities were asked —, float64 otherwise) and, when the
request returned probabilities, `out__proba__<class>` (float64).

With MLPLATFORM_LOG_BACKGROUND=False (tests, management commands) entries are written at once
by the caller instead, one Parquet file per request.
"""

import atexit
import contextlib
import io
import logging
import math
import os
import queue
import random
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, default_storage
from django.db import DatabaseError, close_old_connections, connection

from registry.models import ModelVersion
from serving import enrichment
from serving.codecs.columns import Matrix, PredictionResult, jsonable_column
from serving.models import PredictionLog

logger = logging.getLogger(__name__)

ROOT = "prediction-log"
QUEUE_MAX = 100_000

_queue: queue.Queue["Entry"] = queue.Queue(maxsize=QUEUE_MAX)
_thread: threading.Thread | None = None
_thread_lock = threading.Lock()


@dataclass(slots=True)
class Entry:
    """One sampled prediction, kept compact until the writer converts it: tuples and arrays,
    which the garbage collector stops scanning, rather than the request's lists and dicts
    (entries wait up to a second, and a growing heap of scanned objects makes every request
    pay for full collections)."""

    version: ModelVersion
    protocol: str
    role: str
    request_id: str
    n_rows: int
    latency_ms: float
    at: float  # epoch seconds
    matrix: Matrix | None  # what the model received (served features included), if known
    # The decoded request's columns: only for an entry with a database row, or without a matrix.
    columns: dict[str, Any] | None
    keys: tuple[tuple[str, tuple[Any, ...]], ...]  # entity keys and their values
    predictions: tuple[Any, ...] | None
    probabilities: tuple[tuple[Any, ...], ...] | None
    classes: tuple[Any, ...] | None
    database: bool  # also written as a PredictionLog row


def entry_make(
    *,
    version: ModelVersion,
    protocol: str,
    role: str,
    request_id: str,
    columns: dict[str, Any],
    n_rows: int,
    matrix: Matrix | None,
    result: PredictionResult,
    latency_ms: float,
) -> Entry:
    """An entry of a prediction, with what the writer needs and nothing more."""
    at = time.time()
    database = _database_due(at)
    keys: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    if version.feature_service_id:
        keys = tuple(
            (key, tuple(columns[key]))
            for key in enrichment.entity_keys(feature_service_id=version.feature_service_id)
            if key in columns
        )
    probabilities = result.probabilities
    return Entry(
        version=version,
        protocol=protocol,
        role=role,
        request_id=request_id,
        n_rows=n_rows,
        latency_ms=latency_ms,
        at=at,
        matrix=matrix,
        columns=columns if database or matrix is None else None,
        keys=keys,
        predictions=None if result.predictions is None else tuple(result.predictions),
        probabilities=None if probabilities is None else tuple(map(tuple, probabilities)),
        classes=None if result.classes is None else tuple(result.classes),
        database=database,
    )


_db_second = 0
_db_written = 0


def _database_due(at: float) -> bool:
    """Whether this entry gets a database row: at most MLPLATFORM_LOG_DB_ROWS_PER_SECOND a
    second in a serving process (approximately: counted without a lock); every one when
    entries are written at once (MLPLATFORM_LOG_BACKGROUND=False: tests, commands)."""
    global _db_second, _db_written
    if not settings.MLPLATFORM_LOG_BACKGROUND:
        return True
    second = int(at)
    if second != _db_second:
        _db_second, _db_written = second, 0
    if _db_written >= int(settings.MLPLATFORM_LOG_DB_ROWS_PER_SECOND):
        return False
    _db_written += 1
    return True


def sample_rate(version: ModelVersion) -> float:
    """The share of `version`'s model's requests logged: its own rate, else the default."""
    rate = version.model.log_sample_rate
    return float(settings.MLPLATFORM_LOG_SAMPLE_RATE if rate is None else rate)


def sampled(version: ModelVersion) -> bool:
    """Whether to log this request (drawn once per request; shadows follow the answer)."""
    rate = sample_rate(version)
    return rate > 0 and (rate >= 1 or random.random() < rate)  # noqa: S311 - sampling, not crypto


def enqueue(entry: Entry) -> None:
    """Queue one entry; dropped (and counted in the log) if the queue is full."""
    if not settings.MLPLATFORM_LOG_BACKGROUND:
        _write_rows([entry])
        _write_files({key: (v, [t]) for key, (v, t) in _tables([entry]).items()})
        return
    _ensure_thread()
    try:
        _queue.put_nowait(entry)
    except queue.Full:
        logger.warning("prediction log queue full; dropping an entry")
    if _queue.qsize() >= int(settings.MLPLATFORM_LOG_BATCH_SIZE):
        _wake.set()


# --- the writer --------------------------------------------------------------------------------

# Rows waiting for their Parquet file: per (version id, hour), the version and its tables.
_pending: dict[tuple[int, int], tuple[ModelVersion, list[pa.Table]]] = {}
_pending_rows = 0
_pending_since = 0.0
_pending_lock = threading.Lock()
_writing = threading.Lock()  # held while a batch is written: `flush` waits for it
_wake = threading.Event()


def flush() -> int:
    """Write everything queued and every Parquet row waiting, now, in the caller's thread
    (after the batch the writer thread may be writing). Returns the number of entries taken
    from the queue."""
    with _writing:
        entries = _drain()
        if entries:
            _write_rows(entries)
        _pend(entries, force=True)
    return len(entries)


def _drain() -> list[Entry]:
    entries = []
    while True:
        try:
            entries.append(_queue.get_nowait())
        except queue.Empty:
            return entries


def _pend(entries: list[Entry], *, force: bool = False) -> None:
    """Convert entries to Arrow at once (a buffer of Python objects would grow the garbage
    collector's work, and every request would pay for it) and buffer them per version and hour;
    write the buffer when it is full, old, or `force`."""
    global _pending, _pending_rows, _pending_since
    tables = _tables(entries)
    with _pending_lock:
        if tables and not _pending:
            _pending_since = time.monotonic()
        for key, (version, table) in tables.items():
            _pending.setdefault(key, (version, []))[1].append(table)
            _pending_rows += table.num_rows
        due = (
            force
            or _pending_rows >= int(settings.MLPLATFORM_LOG_FILE_ROWS)
            or time.monotonic() - _pending_since >= float(settings.MLPLATFORM_LOG_FILE_SECONDS)
        )
        if not due or not _pending:
            return
        taken, _pending, _pending_rows = _pending, {}, 0
    _write_files(taken)


def _tables(entries: list[Entry]) -> dict[tuple[int, int], tuple[ModelVersion, pa.Table]]:
    """Entries as Arrow tables, one per version and UTC hour (keyed by version id, hour)."""
    groups: dict[tuple[int, int], list[Entry]] = defaultdict(list)
    for entry in entries:
        groups[(entry.version.pk, int(entry.at // 3600))].append(entry)
    tables = {}
    for key, grouped in groups.items():
        try:
            tables[key] = (grouped[0].version, log_table(grouped))
        except Exception:  # best effort, as the database rows; logged in full
            logger.exception(
                "could not convert %d prediction log entries of %s",
                len(grouped),
                grouped[0].version,
            )
    return tables


def _write_rows(entries: list[Entry]) -> None:
    """The database rows of the pages (the entries drawn for one)."""
    rows = [_row(entry) for entry in entries if entry.database]
    if not rows:
        return
    try:
        PredictionLog.objects.bulk_create(rows, batch_size=int(settings.MLPLATFORM_LOG_BATCH_SIZE))
    except DatabaseError:
        # Logging is best effort: a failed write must not take the server down with it.
        logger.exception("could not write %d prediction log entries", len(rows))


def _row(entry: Entry) -> PredictionLog:
    predictions = None if entry.predictions is None else list(entry.predictions)
    outputs: dict[str, Any] = {"predictions": predictions}
    if entry.probabilities is not None:
        outputs["probabilities"] = [list(row) for row in entry.probabilities]
        outputs["classes"] = None if entry.classes is None else list(entry.classes)
    return PredictionLog(
        model_id=entry.version.model_id,
        version_id=entry.version.pk,
        protocol=entry.protocol,
        role=entry.role,
        request_id=entry.request_id,
        inputs={name: _jsonable(values) for name, values in (entry.columns or {}).items()},
        outputs=outputs,
        n_rows=entry.n_rows,
        latency_ms=entry.latency_ms,
        created_at=datetime.fromtimestamp(entry.at, tz=UTC),
    )


def _jsonable(values: Any) -> list[Any]:
    if isinstance(values, np.ndarray):
        return jsonable_column(values)
    return list(values)


def _run() -> None:
    while True:
        # Woken when a batch is waiting, else every MLPLATFORM_LOG_FLUSH_SECONDS: one wake-up
        # per batch, not per entry (each takes the interpreter lock from the request threads).
        _wake.wait(timeout=float(settings.MLPLATFORM_LOG_FLUSH_SECONDS))
        _wake.clear()
        close_old_connections()
        try:
            with _writing:
                entries = _drain()
                if entries:
                    _write_rows(entries)
                _pend(entries)
        except Exception:  # the writer must outlive any one batch; logged in full
            logger.exception("prediction log: could not write a batch")
        finally:
            # This thread's connection is not reused between batches; give it back.
            connection.close()


def _ensure_thread() -> None:
    global _thread
    if _thread is not None and _thread.is_alive():
        return
    with _thread_lock:
        if _thread is None or not _thread.is_alive():
            # Started lazily, so each gunicorn worker (forked after import) gets its own thread.
            _thread = threading.Thread(target=_run, name="prediction-log", daemon=True)
            _thread.start()


# --- Parquet partitions ------------------------------------------------------------------------


def folder(model_id: int, hour: datetime) -> str:
    """The storage folder of a model's log partition for the UTC hour holding `hour`."""
    hour = hour.astimezone(UTC)
    return f"{ROOT}/model={model_id}/date={hour:%Y-%m-%d}/hour={hour:%H}"


def _write_files(pending: dict[tuple[int, int], tuple[ModelVersion, list[pa.Table]]]) -> None:
    """One Parquet file per version and UTC hour."""
    for (_, hour), (version, tables) in pending.items():
        try:
            table = pa.concat_tables(tables, promote_options="default")
            buffer = io.BytesIO()
            pq.write_table(table, buffer, compression="zstd")
            name = (
                f"{folder(version.model_id, datetime.fromtimestamp(hour * 3600, tz=UTC))}/"
                f"{version.version}-{os.getpid()}-{uuid.uuid4().hex[:12]}.parquet"
            )
            default_storage.save(name, ContentFile(buffer.getvalue()))
        except Exception:  # best effort, as the database rows; logged in full
            logger.exception("could not write prediction log rows of %s", version)


def _numbers(values: Any, n_rows: int) -> np.ndarray:
    """A column's values as float64 (booleans as 0/1, missing as NaN)."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "fiub":
        return values.astype(np.float64, copy=False)
    converted = pd.to_numeric(pd.Series(list(values), dtype=object), errors="coerce")
    return converted.to_numpy(dtype=np.float64, na_value=np.nan)[:n_rows]


def _texts(values: Iterable[Any]) -> list[str | None]:
    return [
        None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v) for v in values
    ]


def _matrix_column(matrix: Matrix, name: str, position: int) -> Any:
    if isinstance(matrix, pd.DataFrame):
        return matrix[name].to_numpy() if name in matrix else None
    if matrix.ndim == 2 and position < matrix.shape[1]:
        return matrix[:, position]
    return None


class _Columns:
    """Columns built entry by entry: float64 chunks or text lists, a missing chunk as nulls."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.numbers: dict[str, list[np.ndarray]] = {}
        self.texts: dict[str, list[str | None]] = {}
        self.filled: dict[str, int] = {}
        self.offset = 0

    def _pad(self, name: str, numeric: bool) -> None:
        missing = self.offset - self.filled.get(name, 0)
        if missing > 0:
            if numeric:
                self.numbers.setdefault(name, []).append(np.full(missing, np.nan))
            else:
                self.texts.setdefault(name, []).extend([None] * missing)
        self.filled[name] = self.offset

    def number(self, name: str, values: np.ndarray) -> None:
        self._pad(name, True)
        self.numbers.setdefault(name, []).append(values)
        self.filled[name] += len(values)

    def text(self, name: str, values: list[str | None]) -> None:
        self._pad(name, False)
        self.texts.setdefault(name, []).extend(values)
        self.filled[name] += len(values)

    def arrays(self) -> dict[str, pa.Array]:
        self.offset = self.total
        found: dict[str, pa.Array] = {}
        for name in self.numbers:
            self._pad(name, True)
            found[name] = pa.array(
                np.concatenate(self.numbers[name]), pa.float64(), from_pandas=True
            )
        for name in self.texts:
            self._pad(name, False)
            found[name] = pa.array(self.texts[name], pa.string())
        return found


def _inputs(entries: list[Entry], dtypes: dict[str, str], total: int) -> dict[str, pa.Array]:
    """The `in__` columns of entries of one version. Column by column over the whole batch when
    every entry has a matrix of one kind (the usual case: a handful of array operations per
    column, whatever the batch's size), else entry by entry."""
    names = list(dtypes)
    arrays = [e.matrix for e in entries if isinstance(e.matrix, np.ndarray)]
    if len(arrays) == len(entries) and all(
        m.ndim == 2 and m.shape[1] == len(names) for m in arrays
    ):
        stacked = np.concatenate(arrays) if len(arrays) > 1 else arrays[0]
        return {
            f"in__{name}": pa.array(
                stacked[:, position].astype(np.float64, copy=False), pa.float64(), from_pandas=True
            )
            for position, name in enumerate(names)
        }
    frames = [e.matrix for e in entries if isinstance(e.matrix, pd.DataFrame)]
    if len(frames) == len(entries) and all(set(names) <= set(m.columns) for m in frames):
        frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        return {
            f"in__{name}": (
                pa.array(_texts(frame[name].to_numpy()), pa.string())
                if dtype == "string"
                else pa.array(
                    _numbers(frame[name].to_numpy(), total), pa.float64(), from_pandas=True
                )
            )
            for name, dtype in dtypes.items()
        }
    columns = _Columns(total)
    for entry in entries:
        for position, (name, dtype) in enumerate(dtypes.items()):
            values = None
            if entry.matrix is not None:
                values = _matrix_column(entry.matrix, name, position)
            if values is None and entry.columns is not None:
                values = entry.columns.get(name)
            if values is None:
                continue
            if dtype == "string":
                columns.text(f"in__{name}", _texts(values))
            else:
                columns.number(f"in__{name}", _numbers(values, entry.n_rows))
        columns.offset += entry.n_rows
    return columns.arrays()


def _outputs(entries: list[Entry], *, labels: bool, total: int) -> dict[str, pa.Array]:
    """`out__prediction` (the label of the highest probability when only probabilities were
    asked) and, when some entry has them, `out__proba__<class>` (null for the others)."""
    predictions: list[Any] = []
    classes: tuple[Any, ...] | None = None
    for entry in entries:
        if entry.predictions is not None:
            predictions += entry.predictions
        elif entry.probabilities is not None and entry.classes:
            labels_of = entry.classes
            predictions += [
                labels_of[int(np.argmax(row))] if None not in row else None
                for row in entry.probabilities
            ]
        else:
            predictions += [None] * entry.n_rows
        if entry.probabilities is not None and entry.classes:
            classes = entry.classes
    found: dict[str, pa.Array] = {}
    if any(p is not None for p in predictions):
        found["out__prediction"] = (
            pa.array(_texts(predictions), pa.string())
            if labels
            else pa.array(_numbers(predictions, total), pa.float64(), from_pandas=True)
        )
    if classes:
        blank = [None] * len(classes)
        rows: list[Any] = []
        for entry in entries:
            probabilities = entry.probabilities
            rows += probabilities if probabilities is not None else [blank] * entry.n_rows
        matrix = np.array(rows, dtype=np.float64).reshape(total, len(classes))
        for index, label in enumerate(classes):
            found[f"out__proba__{label}"] = pa.array(
                matrix[:, index], pa.float64(), from_pandas=True
            )
    return found


def log_table(entries: list[Entry]) -> pa.Table:
    """The Parquet rows of entries of ONE version (see the module's docstring)."""
    version = entries[0].version
    signature = version.signature
    keys = (
        enrichment.entity_keys(feature_service_id=version.feature_service_id)
        if version.feature_service_id
        else []
    )
    labels = signature.classes is not None or signature.predict_dtype == "string"
    counts = np.asarray([entry.n_rows for entry in entries])
    total = int(counts.sum())
    built = _inputs(entries, dict(signature.dtypes), total)
    for key in keys:
        values: list[Any] = []
        for entry in entries:
            values += dict(entry.keys).get(key, (None,) * entry.n_rows)
        built[f"key__{key}"] = pa.array(_texts(values), pa.string())
    built.update(_outputs(entries, labels=labels, total=total))
    table: dict[str, pa.Array] = {
        "request_id": pa.array(np.repeat([e.request_id for e in entries], counts), pa.string()),
        "ts": pa.array(
            np.repeat(np.array([round(e.at * 1e6) for e in entries], dtype=np.int64), counts),
            pa.timestamp("us", tz="UTC"),
        ),
        "version": pa.array(np.full(total, version.version, dtype=np.int32)),
        "role": pa.array(np.repeat([e.role for e in entries], counts), pa.string()),
        "protocol": pa.array(np.repeat([e.protocol for e in entries], counts), pa.string()),
        "row": pa.array(np.concatenate([np.arange(c, dtype=np.int32) for c in counts])),
        "latency_ms": pa.array(np.repeat([e.latency_ms for e in entries], counts), pa.float64()),
    }
    ordered = sorted(built, key=lambda c: (not c.startswith("in__"), not c.startswith("key__"), c))
    return pa.table({**table, **{name: built[name] for name in ordered}})


def partition_names(model_id: int, start: datetime, end: datetime) -> list[str]:
    """Storage names of the model's log partitions whose UTC hour overlaps [start, end)."""
    first = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    names: list[str] = []
    base = f"{ROOT}/model={model_id}"
    for date in _listed(base, dirs=True):
        day = _parsed(date, "date=", "%Y-%m-%d")
        if day is None or day + timedelta(days=1) <= first or day >= end:
            continue
        for hour_folder in _listed(f"{base}/{date}", dirs=True):
            hour = _hour(day, hour_folder)
            if hour is None or hour < first or hour >= end:
                continue
            path = f"{base}/{date}/{hour_folder}"
            names += [f"{path}/{n}" for n in _listed(path, dirs=False) if n.endswith(".parquet")]
    return names


def partitions_expire(*, before: datetime) -> int:
    """Delete every log partition file whose UTC hour ended by `before`. Returns how many."""
    deleted = 0
    for model_folder in _listed(ROOT, dirs=True):
        base = f"{ROOT}/{model_folder}"
        for date in _listed(base, dirs=True):
            day = _parsed(date, "date=", "%Y-%m-%d")
            if day is None or day >= before:
                continue
            for hour_folder in _listed(f"{base}/{date}", dirs=True):
                hour = _hour(day, hour_folder)
                if hour is None or hour + timedelta(hours=1) > before:
                    continue
                path = f"{base}/{date}/{hour_folder}"
                for name in _listed(path, dirs=False):
                    default_storage.delete(f"{path}/{name}")
                    deleted += 1
                _remove_empty(path)
            _remove_empty(f"{base}/{date}")
    return deleted


def _listed(path: str, *, dirs: bool) -> list[str]:
    try:
        folders, files = default_storage.listdir(path)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(folders if dirs else files)


def _parsed(name: str, prefix: str, pattern: str) -> datetime | None:
    if not name.startswith(prefix):
        return None
    try:
        return datetime.strptime(name[len(prefix) :], pattern).replace(tzinfo=UTC)
    except ValueError:
        return None


def _hour(day: datetime, name: str) -> datetime | None:
    if not name.startswith("hour=") or not name[5:].isdigit() or int(name[5:]) > 23:
        return None
    return day + timedelta(hours=int(name[5:]))


def _remove_empty(path: str) -> None:
    """Local storage keeps empty folders; remove them (object stores have none)."""
    if isinstance(default_storage, FileSystemStorage):
        with contextlib.suppress(OSError):
            os.rmdir(default_storage.path(path))


def _at_exit() -> None:
    try:
        flush()
    except Exception:  # at exit, nothing to hand the error to but the log
        logger.exception("prediction log: could not write the last entries")


atexit.register(_at_exit)
