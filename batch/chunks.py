"""Running one chunk: claim it with a lease, read only its rows in blocks, validate each block
with serving's decoder, predict, write the chunk's output part, and mark it done in the same
transaction as the job's progress. Progress also moves block by block (`_chunk_progress`): each
chunk records the rows it has counted, so the job's count stays the exact sum on re-runs. A
chunk that is already done, or a job that is no longer running, makes it return at once."""

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import suppress
from typing import IO, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from batch import inputs, leases, storage, tasks, watch
from batch.models import BatchChunk, BatchJob, FileFormat
from jobs import services as job_services
from jobs.models import Job
from mlplatform.errors import ApplicationError
from mlplatform.tasks import enqueue_after_commit
from serving import cache
from serving.codecs.columns import frame_to_matrix
from serving.engines import EngineUnavailable
from serving.services import estimator_outputs


def chunk_enqueue(chunk_id: int) -> None:
    """Send a chunk's task after the commit, with the chunk time limit (a stuck chunk is killed
    and its lease expires, so another worker runs it again)."""
    limit = int(settings.MLPLATFORM_BATCH_CHUNK_TIME_LIMIT)
    enqueue_after_commit(
        tasks.batch_chunk_run, chunk_id, time_limit=limit, soft_time_limit=max(1, limit - 30)
    )


def batch_chunk_run(*, chunk_id: int, worker: str = "") -> None:
    """Score one chunk (idempotent: a done chunk, or a job no longer running, returns at once).

    Raises:
        the transient errors the task retries (database or storage blips), after releasing the
        chunk so the retry can claim it again.
    """
    chunk = leases.claim(chunk_id, worker=worker)
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
        classes = list(batch.version.signature.classes or ())
        row = chunk.row_start
        rows_read = 0
        numeric = [
            column.name
            for column in batch.version.signature.inputs
            if column.dtype in ("float64", "int64")
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
            leases.renew(chunk)
            if rows_read < chunk.row_count:
                _chunk_progress(chunk=chunk, rows_read=rows_read)
        if rows_read != chunk.row_count:
            raise ApplicationError(
                f"Chunk {chunk.index} expected {chunk.row_count} rows from row {chunk.row_start} "
                f"but read {rows_read}: the input changed or is malformed."
            )
        writer.close()
        _chunk_commit(chunk=chunk, batch=batch, local_path=writer.path)
    except leases.LeaseLost:
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
        chunk_fail(chunk=chunk, error=_row_message(exc))
    except leases.TRANSIENT_ERRORS:
        writer.discard()
        leases.release(chunk)
        raise
    except Exception as exc:
        # A bug or a time limit: the job fails with what happened; the error still propagates.
        writer.discard()
        chunk_fail(chunk=chunk, error=f"Chunk {chunk.index} failed: {type(exc).__name__}: {exc}")
        raise


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


# A chunk is read in at least this many blocks (unless blocks would get smaller than
# MIN_BLOCK_ROWS), so the job's progress moves while its chunks run.
PROGRESS_STEPS = 10
MIN_BLOCK_ROWS = 2_000


def block_rows_for(chunk_rows: int) -> int:
    """Rows per block for a chunk of `chunk_rows`: the configured block size, smaller when the
    chunk would otherwise report progress fewer than PROGRESS_STEPS times."""
    stepped = max(MIN_BLOCK_ROWS, -(-chunk_rows // PROGRESS_STEPS))
    return max(1, min(int(settings.MLPLATFORM_BATCH_BLOCK_ROWS), stepped, chunk_rows))


def _chunk_progress(*, chunk: BatchChunk, rows_read: int) -> None:
    """Count the rows this attempt has scored so far in the job's progress, in one transaction
    with the chunk's own count: only rows past what the chunk already reported are added, so an
    attempt re-running a chunk never counts its rows twice."""
    with transaction.atomic():
        locked = (
            BatchChunk.objects.select_for_update()
            .filter(pk=chunk.pk, status=BatchChunk.Status.RUNNING, attempts=chunk.attempts)
            .only("rows_done")
            .first()
        )
        if locked is None or rows_read <= locked.rows_done:
            return
        BatchChunk.objects.filter(pk=chunk.pk).update(rows_done=rows_read)
        job_services.job_advance(job_id=chunk.batch_id, done=rows_read - locked.rows_done)


def _blocks(batch: BatchJob, chunk: BatchChunk) -> Iterator[pd.DataFrame]:
    wanted = list(dict.fromkeys([*batch.id_columns, *batch.version.signature.column_names]))
    block_rows = block_rows_for(chunk.row_count)
    name = inputs.input_name(batch)
    if batch.input_format == FileFormat.PARQUET:
        with storage.stored(name) as source:
            yield from inputs.parquet_blocks(
                source,
                columns=wanted,
                start=chunk.row_start,
                count=chunk.row_count,
                block_rows=block_rows,
            )
        return
    with default_storage.open(name, "rb") as stream:
        try:
            yield from inputs.csv_blocks(
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
    stored = storage.store(local_path, name)
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
        counted = locked.rows_done  # what earlier blocks (of any attempt) reported
        locked.status = BatchChunk.Status.DONE
        locked.output_part = stored
        locked.finished_at = timezone.now()
        locked.lease_expires_at = None
        locked.rows_done = locked.row_count
        locked.save(
            update_fields=["status", "output_part", "finished_at", "lease_expires_at", "rows_done"]
        )
        job_services.job_advance(job_id=batch.pk, done=locked.row_count - counted)
        remaining = BatchChunk.objects.filter(batch=locked_batch).exclude(
            status=BatchChunk.Status.DONE
        )
        if not remaining.exists():
            enqueue_after_commit(tasks.batch_job_assemble, batch.pk)
        elif watch.watch_stale(locked_batch):
            watch.batch_watch_start(job_id=batch.pk)


def chunk_fail(*, chunk: BatchChunk, error: str) -> None:
    with transaction.atomic():
        BatchChunk.objects.filter(pk=chunk.pk).update(
            status=BatchChunk.Status.FAILED, error=error[:10_000], finished_at=timezone.now()
        )
        job_services.job_fail(job_id=chunk.batch_id, error=error)
        BatchChunk.objects.filter(batch_id=chunk.batch_id, status=BatchChunk.Status.PENDING).update(
            status=BatchChunk.Status.CANCELLED
        )
