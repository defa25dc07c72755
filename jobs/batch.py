"""Batch scoring: submit a file, split it into chunks, score each chunk on any worker, assemble.

The lifecycle of one job:

1. `batch_job_submit` (web request): pins the version, reads only the header of the upload,
   checks its columns against the signature and streams the file to storage. Nothing is
   created when a check fails.
2. `batch_job_plan` (coordinator task): splits the input into chunks of `chunk_rows` rows
   (for CSV by one quote-aware scan for row boundaries, recording each chunk's byte offset; for
   Parquet from the footer's row counts), records them, enqueues one task per chunk and starts
   the watcher.
3. `batch_chunk_run` (one task per chunk, any worker): claims the chunk with a lease, reads only
   its rows in blocks, validates each block with serving's decoder, predicts, writes its output
   part and marks the chunk done in the same transaction as the job's progress. A chunk that is
   already done, or a job that is no longer running, makes it return at once.
4. The watcher tick (`batch_watch_tick`, every few seconds while the job runs, plus the
   periodic `batch_sweep_all`) re-enqueues chunks whose lease expired or whose message was lost,
   and fails the job when a chunk keeps killing its worker.
5. `batch_job_assemble`: concatenates the done parts in input order into `Job.output`.
"""

import csv
import io
import logging
import os
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import F, Q
from django.utils import timezone

from jobs import services as job_services
from jobs.models import BatchChunk, BatchJob, FileFormat, Job
from mlplatform import csvfiles
from mlplatform.errors import ApplicationError
from registry.models import ModelVersion

logger = logging.getLogger(__name__)

OUTPUTS = ("predict", "predict_proba")
CONTENT_TYPES = {FileFormat.CSV: "text/csv", FileFormat.PARQUET: "application/vnd.apache.parquet"}
SCAN_BLOCK = 8 * 1024 * 1024
PARQUET_MAGIC = b"PAR1"
EVENT_TIMESTAMP = "event_timestamp"


# Retried with backoff by the chunk task; anything else fails the job with its message.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    OperationalError,
    InterfaceError,
    ConnectionError,
    TimeoutError,
)


class LeaseLost(Exception):
    """Another worker took this chunk over (our lease expired); its result will count."""


@dataclass
class InputInfo:
    format: str
    columns: list[str]


@dataclass
class ColumnCheck:
    """The input's columns against the signature: what a user sees before submitting."""

    expected: list[str]
    found: list[str]
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    unknown_ids: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.extra or self.unknown_ids)

    def message(self) -> str:
        problems = []
        if self.missing:
            problems.append(f"missing column(s) {', '.join(self.missing)}")
        if self.unknown_ids:
            problems.append(f"id column(s) not in the file: {', '.join(self.unknown_ids)}")
        if self.extra:
            problems.append(
                f"column(s) the model does not take: {', '.join(self.extra)} "
                "(name them in id_columns to carry them through)"
            )
        return "The input does not match the model's signature: " + "; ".join(problems) + "."


# --- reading inputs ---------------------------------------------------------------------------


def _csv_header(stream: IO[bytes]) -> list[str]:
    line = stream.readline(1024 * 1024)
    if not line:
        raise ApplicationError("The input file is empty.", extra={"field": "input"})
    try:
        text = line.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ApplicationError(
            "The input's header is not UTF-8 text: upload CSV or Parquet.", extra={"field": "input"}
        ) from exc
    names = next(csv.reader([text.rstrip("\r\n")]), [])
    names = [name.strip() for name in names]
    if not any(names):
        raise ApplicationError("The CSV file has no header row.", extra={"field": "input"})
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ApplicationError(
            f"The CSV header repeats column(s) {', '.join(duplicates)}.", extra={"field": "input"}
        )
    return names


def input_inspect(*, stream: IO[bytes], filename: str = "") -> InputInfo:
    """Detect CSV or Parquet and read the column names, reading only the header or footer.

    Raises:
        ApplicationError: empty, unreadable or neither CSV nor Parquet.
    """
    stream.seek(0)
    head = stream.read(4)
    stream.seek(0)
    try:
        if head == PARQUET_MAGIC:
            try:
                schema = pq.read_schema(stream)
            except (pa.ArrowException, OSError, ValueError) as exc:
                raise ApplicationError(
                    f"The Parquet file cannot be read: {exc}", extra={"field": "input"}
                ) from exc
            return InputInfo(format=FileFormat.PARQUET, columns=list(schema.names))
        if filename.lower().endswith((".parquet", ".pq")):
            raise ApplicationError(
                "The file is named .parquet but is not a Parquet file.", extra={"field": "input"}
            )
        return InputInfo(format=FileFormat.CSV, columns=_csv_header(stream))
    finally:
        stream.seek(0)


def _feature_names(version: ModelVersion) -> tuple[list[str], list[str]]:
    """The version's feature-service features (by name) and their entities' join keys."""
    from features.models import Feature

    if version.feature_service_id is None:
        return [], []
    features = Feature.objects.filter(services__id=version.feature_service_id).select_related(
        "group__entity"
    )
    names, keys = [], []
    for feature in features:
        names.append(feature.name)
        for key in feature.group.entity.join_keys or []:
            if key not in keys:
                keys.append(key)
    return names, keys


def columns_check(
    *,
    version: ModelVersion,
    columns: Sequence[str],
    id_columns: Sequence[str],
    as_of: bool = False,
) -> ColumnCheck:
    """Compare an input's columns with what the version takes (order does not matter).

    As of a time, the file carries the entity keys, `event_timestamp` and any model input that is
    not a feature of the version's feature service; the features are joined in later.
    """
    expected = [column["name"] for column in version.signature.get("inputs") or []]
    if as_of:
        features, keys = _feature_names(version)
        expected = [*keys, EVENT_TIMESTAMP, *[name for name in expected if name not in features]]
    found = list(columns)
    return ColumnCheck(
        expected=expected,
        found=found,
        missing=[name for name in expected if name not in found],
        extra=[name for name in found if name not in expected and name not in id_columns],
        unknown_ids=[name for name in id_columns if name not in found],
    )


def _csv_offsets(stream: IO[bytes], *, chunk_rows: int) -> tuple[list[int], int]:
    """One streaming pass over a CSV: byte offset of every chunk's first row, and the row count.

    A newline ends a row only outside quotes; in RFC 4180 CSV a doubled quote escapes one, so the
    parity of quotes seen so far says whether we are inside a quoted value. Blank lines are not
    rows (pandas skips them too). Memory: one block plus its newline positions.
    """
    starts: list[int] = []
    next_row = -1  # the number the next record gets: the header is row -1
    quotes_seen = 0
    position = 0  # file offset of the current block
    record_start = 0  # file offset where the current (unfinished) record begins
    last_byte = 0  # the byte before the current block
    while block := stream.read(SCAN_BLOCK):
        array = np.frombuffer(block, dtype=np.uint8)
        newlines = np.flatnonzero(array == 10)
        if quotes_seen % 2 or b'"' in block:
            quote_positions = np.flatnonzero(array == 34)
            before = np.searchsorted(quote_positions, newlines) + quotes_seen
            newlines = newlines[before % 2 == 0]
            quotes_seen += len(quote_positions)
        if len(newlines):
            ends = newlines + position
            begins = np.concatenate(([record_start], ends[:-1] + 1))
            lengths = ends - begins
            previous = np.where(newlines > 0, array[np.maximum(newlines - 1, 0)], last_byte)
            blank = (lengths == 0) | ((lengths == 1) & (previous == 13))
            real_begins = begins[~blank]
            numbers = next_row + np.arange(len(real_begins))
            boundary = (numbers >= 0) & (numbers % chunk_rows == 0)
            starts.extend(int(offset) for offset in real_begins[boundary])
            next_row += len(real_begins)
            record_start = int(ends[-1]) + 1
        position += len(block)
        last_byte = block[-1]
    tail = position - record_start
    if tail > 1 or (tail == 1 and last_byte != 13):
        # The last row has no trailing newline.
        if next_row >= 0 and next_row % chunk_rows == 0:
            starts.append(record_start)
        next_row += 1
    return starts, max(next_row, 0)


@contextmanager
def _stored(name: str) -> Iterator[Any]:
    """A stored file as a local path when storage has one (fast native reads), else a stream."""
    try:
        path = default_storage.path(name)
    except NotImplementedError:
        with default_storage.open(name, "rb") as stream:
            yield stream
        return
    yield path


def _parquet_blocks(
    source: Any, *, columns: list[str], start: int, count: int, block_rows: int
) -> Iterator[pd.DataFrame]:
    """Rows [start, start + count) of a Parquet file, reading only the row groups they span."""
    parquet = pq.ParquetFile(source, buffer_size=1024 * 1024, pre_buffer=False)
    metadata = parquet.metadata
    groups, first_row, offset = [], None, 0
    for index in range(metadata.num_row_groups):
        rows = metadata.row_group(index).num_rows
        if offset + rows > start and offset < start + count:
            groups.append(index)
            if first_row is None:
                first_row = offset
        offset += rows
    if not groups:
        return
    position = first_row or 0
    end = start + count
    for batch in parquet.iter_batches(batch_size=block_rows, row_groups=groups, columns=columns):
        batch_end = position + batch.num_rows
        if batch_end > start:
            lo = max(start - position, 0)
            hi = min(end - position, batch.num_rows)
            yield batch.slice(lo, hi - lo).to_pandas()
        position = batch_end
        if position >= end:
            break


def _csv_blocks(
    stream: IO[bytes],
    *,
    header: list[str],
    columns: list[str],
    id_columns: Sequence[str],
    byte_start: int,
    count: int,
    block_rows: int,
) -> Iterator[pd.DataFrame]:
    stream.seek(byte_start)
    reader = pd.read_csv(
        stream,
        header=None,
        names=header,
        usecols=columns,
        nrows=count,
        chunksize=block_rows,
        # Ids travel verbatim ("007" stays "007"); plain objects parse faster than `str`.
        dtype=dict.fromkeys(id_columns, object),
        keep_default_na=True,
        skip_blank_lines=True,
        engine="c",
    )
    with reader:
        yield from reader


# --- submit -----------------------------------------------------------------------------------


def outputs_parse(value: Any) -> list[str]:
    """`predict`, `predict_proba`, a comma-separated string or a list → the outputs asked for."""
    if value in (None, "", []):
        return ["predict"]
    items = value.split(",") if isinstance(value, str) else list(value)
    items = [str(item).strip() for item in items if str(item).strip()]
    unknown = [item for item in items if item not in OUTPUTS]
    if unknown or not items:
        raise ApplicationError(
            f"outputs: unknown output(s) {', '.join(unknown)}; choose from {', '.join(OUTPUTS)}.",
            extra={"field": "outputs"},
        )
    return list(dict.fromkeys(items))


def names_parse(value: Any) -> list[str]:
    if value in (None, "", []):
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    return list(dict.fromkeys(str(item).strip() for item in items if str(item).strip()))


def format_parse(value: Any) -> str:
    if value in (None, ""):
        return FileFormat.CSV
    if value not in FileFormat.values:
        raise ApplicationError(
            f"format: {value!r} is not one of {', '.join(FileFormat.values)}.",
            extra={"field": "format"},
        )
    return str(value)


def batch_job_submit(
    *,
    version: ModelVersion,
    stream: IO[bytes],
    filename: str,
    outputs: Sequence[str] = ("predict",),
    id_columns: Sequence[str] = (),
    output_format: str = FileFormat.CSV,
    submitted_by: Any = None,
    stored_name: str | None = None,
    schedule: Any = None,
    as_of: bool = False,
) -> Job:
    """Check an input against a version and queue a batch scoring job for it.

    The file is streamed to storage (or, with `stored_name`, scored where it already is).

    Raises:
        ApplicationError: unreadable input, columns that do not match the signature, an output
            the model cannot produce. Nothing is created then.
    """
    if as_of and not version.feature_service_id:
        raise ApplicationError(
            f"as_of: {version.model.name} version {version.version} is not linked to a feature "
            "service, so there are no features to look up as of a time.",
            extra={"field": "as_of"},
        )
    info = input_inspect(stream=stream, filename=filename)
    check = columns_check(version=version, columns=info.columns, id_columns=id_columns, as_of=as_of)
    if not check.ok:
        raise ApplicationError(
            check.message(),
            extra={"field": "input", "missing": check.missing, "extra": check.extra},
        )
    clashes = [name for name in id_columns if name == "prediction" or name.startswith("proba_")]
    if clashes:
        raise ApplicationError(
            f"id_columns: {', '.join(clashes)} would clash with the output's own columns.",
            extra={"field": "id_columns"},
        )
    if "predict_proba" in outputs and not version.signature.get("has_predict_proba"):
        raise ApplicationError(
            f"outputs: {version.model.name} version {version.version} has no predict_proba; "
            "ask for 'predict' only.",
            extra={"field": "outputs"},
        )
    description = (
        f"Score {os.path.basename(filename)[:150]} with {version.model.name} v{version.version}"
    )
    with transaction.atomic():
        job = job_services.job_create(
            kind=Job.Kind.BATCH_SCORING,
            description=description,
            submitted_by=submitted_by,
            owner=getattr(schedule, "owner", None),  # a schedule's runs are its team's
            params={
                "model": version.model.name,
                "version": version.version,
                "input_name": os.path.basename(filename),
                "outputs": list(outputs),
                "id_columns": list(id_columns),
                "format": output_format,
                "as_of": as_of,
            },
        )
        if stored_name:
            job.input.name = stored_name
        else:
            extension = "parquet" if info.format == FileFormat.PARQUET else "csv"
            # Server-chosen name; File() streams the (spooled) upload in chunks.
            job.input.save(f"job-{job.pk}.{extension}", File(stream), save=False)
        job.save(update_fields=["input", "updated_at"])
        BatchJob.objects.create(
            job=job,
            version=version,
            input_format=info.format,
            output_format=output_format,
            outputs=list(outputs),
            id_columns=list(id_columns),
            columns=info.columns,
            chunk_rows=max(1, int(settings.MLPLATFORM_BATCH_CHUNK_ROWS)),
            lease_seconds=max(1, int(settings.MLPLATFORM_BATCH_LEASE_SECONDS)),
            max_attempts=max(1, int(settings.MLPLATFORM_BATCH_MAX_ATTEMPTS)),
            schedule=schedule,
            as_of=as_of,
        )
        _enqueue("plan", job.pk)
    return job


# --- enqueueing -------------------------------------------------------------------------------


def _enqueue(what: str, *args: Any, countdown: float | None = None) -> None:
    """Send a task once the current transaction commits (a worker must see the rows)."""
    from jobs import tasks  # the tasks module imports this one

    task = {
        "plan": tasks.batch_job_plan,
        "chunk": tasks.batch_chunk_run,
        "assemble": tasks.batch_job_assemble,
        "watch": tasks.batch_watch_tick,
    }[what]
    options: dict[str, Any] = {}
    if countdown:
        options["countdown"] = countdown
    if what == "chunk":
        limit = int(settings.MLPLATFORM_BATCH_CHUNK_TIME_LIMIT)
        options.update(time_limit=limit, soft_time_limit=max(1, limit - 30))
    transaction.on_commit(lambda: task.apply_async(args=args, **options))


def _watch_interval(batch: BatchJob) -> float:
    return max(1.0, min(10.0, batch.lease_seconds / 3))


# --- plan ---------------------------------------------------------------------------------------


def batch_job_plan(*, job_id: int) -> None:
    """Split the input into chunks, record them and enqueue one task each (idempotent)."""
    batch = BatchJob.objects.select_related("job").filter(pk=job_id).first()
    if batch is None:
        return  # deleted before it was planned
    job = batch.job
    if job.is_finished:
        return
    if batch.chunks_total is not None:
        batch_watch_start(job_id=job_id)  # planned already: a redelivered plan only watches
        return
    chunk_rows = batch.chunk_rows
    if batch.as_of and not batch.staged_input:
        try:
            _stage_as_of(batch)
        except ApplicationError as exc:
            job_services.job_fail(job_id=job_id, error=exc.message)
            return
    try:
        if batch.input_format == FileFormat.PARQUET:
            with _stored(_input_name(batch)) as source:
                total = pq.ParquetFile(source).metadata.num_rows
            ranges: list[tuple[int, int | None]] = [
                (start, None) for start in range(0, total, chunk_rows)
            ]
        else:
            with default_storage.open(_input_name(batch), "rb") as stream:
                # A short row would be scored with nulls, a long one from its first fields.
                csvfiles.records_check(stream, expected=len(batch.columns))
                stream.seek(0)
                offsets, total = _csv_offsets(stream, chunk_rows=chunk_rows)
            ranges = [(i * chunk_rows, offset) for i, offset in enumerate(offsets)]
    except csvfiles.RaggedRowsError as exc:
        job_services.job_fail(job_id=job_id, error=f"The input is refused: {exc.message}")
        return
    except (pa.ArrowException, OSError) as exc:
        job_services.job_fail(job_id=job_id, error=f"The input cannot be read: {exc}")
        return
    if total == 0:
        job_services.job_fail(job_id=job_id, error="The input file has no data rows.")
        return
    with transaction.atomic():
        locked = BatchJob.objects.select_for_update().get(pk=job_id)
        if locked.chunks_total is not None:
            return
        now = timezone.now()
        BatchChunk.objects.bulk_create(
            [
                BatchChunk(
                    batch=locked,
                    index=index,
                    row_start=start,
                    row_count=min(chunk_rows, total - start),
                    byte_start=byte_start,
                    enqueued_at=now,
                )
                for index, (start, byte_start) in enumerate(ranges)
            ],
            batch_size=1000,
        )
        locked.rows_total = total
        locked.chunks_total = len(ranges)
        locked.save(update_fields=["rows_total", "chunks_total"])
        if not job_services.job_start(job_id=job_id, total=total):
            transaction.set_rollback(True)
            return
        for chunk_id in BatchChunk.objects.filter(batch=locked).values_list("pk", flat=True):
            _enqueue("chunk", chunk_id)
        batch_watch_start(job_id=job_id)


def _input_name(batch: BatchJob) -> str:
    return batch.staged_input or batch.job.input.name


def _stage_as_of(batch: BatchJob) -> None:
    """Join the version's features, point in time, onto the entity file (DuckDB, out of core)
    and make the result the Parquet file the chunks read."""
    from features import offline, training_sets
    from features.models import Feature

    service_id = batch.version.feature_service_id
    if service_id is None:
        raise ApplicationError(f"{batch.version} is no longer linked to a feature service.")
    features = list(Feature.objects.filter(services__id=service_id).select_related("group__entity"))
    handle, local_path = tempfile.mkstemp(suffix=".parquet", prefix="mlp-asof-")
    os.close(handle)
    try:
        with offline.local_paths([batch.job.input.name]) as paths:
            training_sets.build(
                features=features,
                output=Path(local_path),
                fmt="parquet",
                entity_file=Path(paths[0]),
            )
        columns = list(pq.read_schema(local_path).names)
        stored = _store(local_path, f"jobs/inputs/job-{batch.pk}-as-of.parquet")
    finally:
        with suppress(FileNotFoundError):
            os.remove(local_path)
    batch.staged_input = stored
    batch.input_format = FileFormat.PARQUET
    batch.columns = columns
    batch.save(update_fields=["staged_input", "input_format", "columns"])


# --- one chunk ----------------------------------------------------------------------------------


def _output_frame(
    frame: pd.DataFrame, results: dict[str, np.ndarray], *, batch: BatchJob, classes: list[Any]
) -> pd.DataFrame:
    data: dict[str, Any] = {name: frame[name].to_numpy() for name in batch.id_columns}
    if "predict" in results:
        data["prediction"] = results["predict"]
    if "predict_proba" in results:
        proba = results["predict_proba"]
        for position, label in enumerate(classes):
            data[f"proba_{label}"] = proba[:, position]
    return pd.DataFrame(data, index=None, copy=False)


class _PartWriter:
    """Writes a chunk's output, block by block, to a local temporary file."""

    def __init__(self, output_format: str) -> None:
        self.format = output_format
        handle, self.path = tempfile.mkstemp(suffix=f".{output_format}", prefix="mlp-part-")
        os.close(handle)
        self._parquet: pq.ParquetWriter | None = None
        self._csv: IO[bytes] | None = None

    def write(self, frame: pd.DataFrame) -> None:
        if self.format == FileFormat.PARQUET:
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self.path, table.schema)
            self._parquet.write_table(table.cast(self._parquet.schema))
        else:
            if self._csv is None:
                self._csv = open(self.path, "wb")  # noqa: SIM115 - closed in close()
            frame.to_csv(self._csv, header=False, index=False, lineterminator="\n")

    def close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
        if self._csv is not None:
            self._csv.close()

    def discard(self) -> None:
        self.close()
        with suppress(FileNotFoundError):
            os.remove(self.path)


class _MovableFile(File):
    """Lets FileSystemStorage move the temporary file into place instead of copying it."""

    def temporary_file_path(self) -> str:
        return str(self.name)


def _store(local_path: str, name: str) -> str:
    with open(local_path, "rb") as handle:
        stored = default_storage.save(name, _MovableFile(handle, name=local_path))
    with suppress(FileNotFoundError):
        os.remove(local_path)
    return stored


def _claim(chunk_id: int, *, worker: str) -> BatchChunk | None:
    """Take a pending chunk, or a running one whose lease expired; None if someone else has it."""
    chunk = BatchChunk.objects.select_related("batch").filter(pk=chunk_id).first()
    if chunk is None:
        return None  # its job was deleted
    batch = chunk.batch
    now = timezone.now()
    claimable = Q(status=BatchChunk.Status.PENDING) | Q(
        status=BatchChunk.Status.RUNNING, lease_expires_at__lt=now
    )
    claimed = (
        BatchChunk.objects.filter(claimable, pk=chunk_id, attempts__lt=batch.max_attempts)
        .filter(batch__job__status=Job.Status.RUNNING)
        .update(
            status=BatchChunk.Status.RUNNING,
            attempts=F("attempts") + 1,
            claimed_by=worker[:200],
            claimed_at=now,
            lease_expires_at=now + timedelta(seconds=batch.lease_seconds),
        )
    )
    if not claimed:
        return None
    chunk.refresh_from_db()
    return chunk


def _renew(chunk: BatchChunk) -> None:
    """Extend our lease between blocks; stop if the job ended or another worker took over."""
    renewed = BatchChunk.objects.filter(
        pk=chunk.pk,
        status=BatchChunk.Status.RUNNING,
        attempts=chunk.attempts,
        claimed_by=chunk.claimed_by,
        batch__job__status=Job.Status.RUNNING,
    ).update(lease_expires_at=timezone.now() + timedelta(seconds=chunk.batch.lease_seconds))
    if not renewed:
        raise LeaseLost(f"chunk {chunk.index} of job {chunk.batch_id}")


def _blocks(batch: BatchJob, chunk: BatchChunk) -> Iterator[pd.DataFrame]:
    signature_columns = [c["name"] for c in batch.version.signature.get("inputs") or []]
    wanted = list(dict.fromkeys([*batch.id_columns, *signature_columns]))
    block_rows = max(1, min(int(settings.MLPLATFORM_BATCH_BLOCK_ROWS), chunk.row_count))
    name = _input_name(batch)
    if batch.input_format == FileFormat.PARQUET:
        with _stored(name) as source:
            yield from _parquet_blocks(
                source,
                columns=wanted,
                start=chunk.row_start,
                count=chunk.row_count,
                block_rows=block_rows,
            )
        return
    with default_storage.open(name, "rb") as stream:
        try:
            yield from _csv_blocks(
                stream,
                header=batch.columns,
                columns=wanted,
                id_columns=batch.id_columns,
                byte_start=chunk.byte_start or 0,
                count=chunk.row_count,
                block_rows=block_rows,
            )
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise ApplicationError(
                f"Rows {chunk.row_start} to {chunk.row_end - 1} are not valid CSV: {exc}"
            ) from exc


def batch_chunk_run(*, chunk_id: int, worker: str = "") -> None:
    """Score one chunk (idempotent: a done chunk, or a job no longer running, returns at once).

    Raises:
        the transient errors the task retries (database or storage blips), after releasing the
        chunk so the retry can claim it again.
    """
    from serving import cache
    from serving.codecs import frame_to_matrix
    from serving.engines import EngineUnavailable
    from serving.services import estimator_outputs

    chunk = _claim(chunk_id, worker=worker)
    if chunk is None:
        return
    batch = BatchJob.objects.select_related("job", "version", "version__model").get(
        pk=chunk.batch_id
    )
    chunk.batch = batch
    writer = _PartWriter(batch.output_format)
    try:
        try:
            engine = cache.engine_for(batch.version)
        except EngineUnavailable as exc:
            raise ApplicationError(f"{batch.version} cannot be loaded: {exc}") from exc
        classes = list(batch.version.signature.get("classes") or [])
        row = chunk.row_start
        rows_read = 0
        numeric = [
            column["name"]
            for column in batch.version.signature.get("inputs") or []
            if column.get("dtype", "float64") in ("float64", "int64")
        ]
        for frame in _blocks(batch, chunk):
            frame = frame.reset_index(drop=True)
            if batch.input_format == FileFormat.CSV:
                _numbers_from_text(frame, numeric)
            matrix = frame_to_matrix(frame, batch.version.signature, row_offset=row)
            results = estimator_outputs(engine, matrix, batch.outputs, version=batch.version)
            writer.write(_output_frame(frame, results, batch=batch, classes=classes))
            row += len(frame)
            rows_read += len(frame)
            _renew(chunk)
        if rows_read != chunk.row_count:
            raise ApplicationError(
                f"Chunk {chunk.index} expected {chunk.row_count} rows from row {chunk.row_start} "
                f"but read {rows_read}: the input changed or is malformed."
            )
        writer.close()
        _chunk_commit(chunk=chunk, batch=batch, local_path=writer.path)
    except LeaseLost:
        writer.discard()
        # Stopped because the job was cancelled or failed elsewhere: say so on the chunk.
        BatchChunk.objects.filter(
            pk=chunk.pk,
            status=BatchChunk.Status.RUNNING,
            attempts=chunk.attempts,
            batch__job__status__in=[Job.Status.CANCELLED, Job.Status.FAILED],
        ).update(status=BatchChunk.Status.CANCELLED, lease_expires_at=None)
    except ApplicationError as exc:
        writer.discard()
        _chunk_fail(chunk=chunk, error=_row_message(exc))
    except TRANSIENT_ERRORS:
        writer.discard()
        _chunk_release(chunk)
        raise
    except Exception as exc:
        # A bug or a time limit: the job fails with what happened; the error still propagates.
        writer.discard()
        _chunk_fail(chunk=chunk, error=f"Chunk {chunk.index} failed: {type(exc).__name__}: {exc}")
        raise


def _numbers_from_text(frame: pd.DataFrame, columns: list[str]) -> None:
    """One bad cell makes pandas read a whole CSV column as text: turn the numbers back into
    numbers and leave only the bad cells as text, so validation names the right row."""
    for name in columns:
        if name in frame and not pd.api.types.is_numeric_dtype(frame[name].dtype):
            converted = pd.to_numeric(frame[name], errors="coerce")
            bad = converted.isna() & frame[name].notna()
            frame[name] = converted.astype(object).where(~bad, frame[name])


def _row_message(exc: ApplicationError) -> str:
    row = exc.extra.get("row") if exc.extra else None
    if row is None:
        return exc.message
    # Rows are counted from 0 below the header; a person opening the file counts lines.
    return f"{exc.message} (data row {row}, line {int(row) + 2} of a CSV file with a header)"


def _chunk_commit(*, chunk: BatchChunk, batch: BatchJob, local_path: str) -> None:
    """Store the part, then mark the chunk done and advance progress in one transaction."""
    name = (
        f"jobs/parts/{batch.pk}/{chunk.index:06d}-{chunk.attempts}-{uuid.uuid4().hex[:8]}"
        f".{batch.output_format}"
    )
    stored = _store(local_path, name)
    with transaction.atomic():
        locked_batch = BatchJob.objects.select_for_update().get(pk=batch.pk)
        locked = BatchChunk.objects.select_for_update().get(pk=chunk.pk)
        job_running = Job.objects.filter(pk=batch.pk, status=Job.Status.RUNNING).exists()
        if locked.status == BatchChunk.Status.DONE or not job_running:
            # Another worker finished it first, or the job ended: this part never counts.
            if locked.status == BatchChunk.Status.RUNNING:
                locked.status = BatchChunk.Status.CANCELLED
                locked.lease_expires_at = None
                locked.save(update_fields=["status", "lease_expires_at"])
            transaction.on_commit(lambda: default_storage.delete(stored))
            return
        locked.status = BatchChunk.Status.DONE
        locked.output_part = stored
        locked.finished_at = timezone.now()
        locked.lease_expires_at = None
        locked.save(update_fields=["status", "output_part", "finished_at", "lease_expires_at"])
        job_services.job_advance(job_id=batch.pk, done=locked.row_count)
        remaining = BatchChunk.objects.filter(batch=locked_batch).exclude(
            status=BatchChunk.Status.DONE
        )
        if not remaining.exists():
            _enqueue("assemble", batch.pk)
        elif _watch_stale(locked_batch):
            batch_watch_start(job_id=batch.pk)


def _chunk_fail(*, chunk: BatchChunk, error: str) -> None:
    with transaction.atomic():
        BatchChunk.objects.filter(pk=chunk.pk).update(
            status=BatchChunk.Status.FAILED, error=error[:10_000], finished_at=timezone.now()
        )
        job_services.job_fail(job_id=chunk.batch_id, error=error)
        BatchChunk.objects.filter(batch_id=chunk.batch_id, status=BatchChunk.Status.PENDING).update(
            status=BatchChunk.Status.CANCELLED
        )


def _chunk_release(chunk: BatchChunk) -> None:
    """Give a chunk back after a transient error; that attempt does not count."""
    with suppress(*TRANSIENT_ERRORS):
        BatchChunk.objects.filter(
            pk=chunk.pk, status=BatchChunk.Status.RUNNING, attempts=chunk.attempts
        ).update(
            status=BatchChunk.Status.PENDING,
            attempts=max(0, chunk.attempts - 1),
            lease_expires_at=None,
            enqueued_at=timezone.now(),
        )


# --- watching, sweeping, recovering ---------------------------------------------------------------


def _watch_stale(batch: BatchJob) -> bool:
    if batch.watch_beat_at is None:
        return True
    return timezone.now() - batch.watch_beat_at > timedelta(seconds=3 * _watch_interval(batch))


def batch_watch_start(*, job_id: int) -> None:
    """Start (or restart) a job's watcher; any older tick stops at its next turn."""
    token = uuid.uuid4().hex
    BatchJob.objects.filter(pk=job_id).update(watch_token=token, watch_beat_at=timezone.now())
    batch = BatchJob.objects.filter(pk=job_id).first()
    if batch is None:
        return
    _enqueue("watch", job_id, token, countdown=_watch_interval(batch))


def batch_watch_tick(*, job_id: int, token: str) -> None:
    """One turn of a job's watcher: sweep, then schedule the next turn while the job runs."""
    batch = BatchJob.objects.select_related("job").filter(pk=job_id).first()
    if batch is None or batch.job.is_finished:
        return
    following = uuid.uuid4().hex
    with transaction.atomic():
        moved = BatchJob.objects.filter(pk=job_id, watch_token=token).update(
            watch_token=following, watch_beat_at=timezone.now()
        )
        if not moved:
            return  # superseded by a newer watcher, or a duplicate delivery of this tick
        batch_job_sweep(job_id=job_id)
        _enqueue("watch", job_id, following, countdown=_watch_interval(batch))


def batch_job_sweep(*, job_id: int) -> None:
    """Re-enqueue chunks whose worker died or whose message was lost; fail a job whose chunk
    keeps killing its worker; assemble when every chunk is done."""
    batch = BatchJob.objects.select_related("job").filter(pk=job_id).first()
    if batch is None or batch.job.status != Job.Status.RUNNING or batch.chunks_total is None:
        return
    now = timezone.now()
    chunks = BatchChunk.objects.filter(batch=batch)
    expired = chunks.filter(status=BatchChunk.Status.RUNNING, lease_expires_at__lt=now)
    doomed = expired.filter(attempts__gte=batch.max_attempts).first()
    if doomed is not None:
        _chunk_fail(
            chunk=doomed,
            error=(
                f"Chunk {doomed.index} (rows {doomed.row_start} to {doomed.row_end - 1}) was "
                f"started {doomed.attempts} times and never finished: "
                "a chunk keeps killing its worker (out of memory or a time limit?). "
                "Try smaller chunks "
                "(MLPLATFORM_BATCH_CHUNK_ROWS) or more memory per worker."
            ),
        )
        return
    for chunk in expired:
        reset = chunks.filter(
            pk=chunk.pk, status=BatchChunk.Status.RUNNING, attempts=chunk.attempts
        ).update(status=BatchChunk.Status.PENDING, lease_expires_at=None, enqueued_at=now)
        if reset:
            logger.warning("Re-enqueueing %s: its worker's lease expired.", chunk)
            _enqueue("chunk", chunk.pk)
    lost_before = now - timedelta(seconds=batch.lease_seconds)
    for chunk_id in chunks.filter(
        status=BatchChunk.Status.PENDING, enqueued_at__lt=lost_before
    ).values_list("pk", flat=True):
        if chunks.filter(pk=chunk_id, status=BatchChunk.Status.PENDING).update(enqueued_at=now):
            _enqueue("chunk", chunk_id)
    if not chunks.exclude(status=BatchChunk.Status.DONE).exists():
        _enqueue("assemble", job_id)


def batch_sweep_all() -> int:
    """The periodic sweeper: every running batch job is swept and gets a live watcher; a job
    whose plan message was lost is planned again. Returns how many jobs it looked at."""
    seen = 0
    now = timezone.now()
    for batch in BatchJob.objects.select_related("job").filter(
        job__status__in=[Job.Status.QUEUED, Job.Status.RUNNING]
    ):
        seen += 1
        if batch.job.status == Job.Status.QUEUED:
            if now - batch.job.created_at > timedelta(seconds=batch.lease_seconds):
                _enqueue("plan", batch.pk)
            continue
        batch_job_sweep(job_id=batch.pk)
        if _watch_stale(batch):
            batch_watch_start(job_id=batch.pk)
    return seen


def batch_recover() -> None:
    """Run when a worker starts: a job whose watcher died with a worker gets a new one."""
    for job_id in BatchJob.objects.filter(job__status=Job.Status.RUNNING).values_list(
        "pk", flat=True
    ):
        batch_watch_start(job_id=job_id)
    batch_sweep_all()


# --- assemble ------------------------------------------------------------------------------------


def _csv_header_line(columns: list[str]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(columns)
    return buffer.getvalue().encode()


def _output_columns(batch: BatchJob, classes: list[Any]) -> list[str]:
    columns = list(batch.id_columns)
    if "predict" in batch.outputs:
        columns.append("prediction")
    if "predict_proba" in batch.outputs:
        columns.extend(f"proba_{label}" for label in classes)
    return columns


def batch_job_assemble(*, job_id: int) -> None:
    """Concatenate the done parts in input order into the job's one output file (idempotent)."""
    batch = (
        BatchJob.objects.select_related("job", "version", "version__model")
        .filter(pk=job_id)
        .first()
    )
    if batch is None or batch.job.status != Job.Status.RUNNING or batch.job.output:
        return
    now = timezone.now()
    claim = Q(assembly_claimed_at__isnull=True) | Q(
        assembly_claimed_at__lt=now - timedelta(seconds=batch.lease_seconds)
    )
    if not BatchJob.objects.filter(claim, pk=job_id).update(assembly_claimed_at=now):
        return
    chunks = list(BatchChunk.objects.filter(batch=batch).order_by("index"))
    if not chunks or any(chunk.status != BatchChunk.Status.DONE for chunk in chunks):
        BatchJob.objects.filter(pk=job_id).update(assembly_claimed_at=None)
        return
    classes = list(batch.version.signature.get("classes") or [])
    handle, local_path = tempfile.mkstemp(suffix=f".{batch.output_format}", prefix="mlp-out-")
    os.close(handle)
    try:
        if batch.output_format == FileFormat.PARQUET:
            writer: pq.ParquetWriter | None = None
            for chunk in chunks:
                with _stored(chunk.output_part) as source:
                    table = pq.read_table(source)
                if writer is None:
                    writer = pq.ParquetWriter(local_path, table.schema)
                writer.write_table(table.cast(writer.schema))
            if writer is not None:
                writer.close()
        else:
            with open(local_path, "wb") as output:
                output.write(_csv_header_line(_output_columns(batch, classes)))
                for chunk in chunks:
                    with default_storage.open(chunk.output_part, "rb") as part:
                        while block := part.read(SCAN_BLOCK):
                            output.write(block)
        name = (
            f"jobs/outputs/job-{job_id}-{batch.version.model.name}-v{batch.version.version}"
            f".{batch.output_format}"
        )
        stored = _store(local_path, name)
    finally:
        with suppress(FileNotFoundError):
            os.remove(local_path)
    with transaction.atomic():
        locked = Job.objects.select_for_update().get(pk=job_id)
        if locked.status != Job.Status.RUNNING or locked.output:
            transaction.on_commit(lambda: default_storage.delete(stored))
            return
        locked.output.name = stored
        locked.output_content_type = CONTENT_TYPES[FileFormat(batch.output_format)]
        locked.save(update_fields=["output", "output_content_type", "updated_at"])
        seconds = (timezone.now() - (locked.started_at or now)).total_seconds()
        job_services.job_succeed(
            job_id=job_id,
            result={
                "rows": batch.rows_total,
                "chunks": len(chunks),
                "seconds": round(seconds, 3),
                "output": os.path.basename(stored),
            },
        )
    parts = [chunk.output_part for chunk in chunks]
    transaction.on_commit(lambda: _delete_parts(parts))


def _delete_parts(names: list[str]) -> None:
    for name in names:
        with suppress(OSError):
            default_storage.delete(name)
