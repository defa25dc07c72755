"""Planning a batch scoring job: split the input into chunks, record them, send one task each.

CSV inputs are split by one quote-aware scan for row boundaries (each chunk records its first
row's byte offset); Parquet inputs by the footer's row counts. An as-of job first stages its
input (`batch.as_of`).
"""

import pyarrow as pa
import pyarrow.parquet as pq
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from batch import as_of, chunks, inputs, storage, watch
from batch.models import BatchChunk, BatchJob, FileFormat
from jobs import services as job_services
from mlplatform import csvfiles
from mlplatform.errors import ApplicationError


def batch_job_plan(*, job_id: int) -> None:
    """Split the input into chunks, record them and enqueue one task each (idempotent)."""
    batch = BatchJob.objects.select_related("job").filter(pk=job_id).first()
    if batch is None:
        return  # deleted before it was planned
    job = batch.job
    if job.is_finished:
        return
    if batch.chunks_total is not None:
        watch.batch_watch_start(job_id=job_id)  # planned already: a redelivered plan only watches
        return
    chunk_rows = batch.chunk_rows
    if batch.as_of and not batch.staged_input:
        try:
            as_of.as_of_stage(batch)
        except ApplicationError as exc:
            job_services.job_fail(job_id=job_id, error=exc.message)
            return
    try:
        if batch.input_format == FileFormat.PARQUET:
            with storage.stored(inputs.input_name(batch)) as source:
                total = pq.ParquetFile(source).metadata.num_rows
            ranges: list[tuple[int, int | None]] = [
                (start, None) for start in range(0, total, chunk_rows)
            ]
        else:
            with default_storage.open(inputs.input_name(batch), "rb") as stream:
                # A short row would be scored with nulls, a long one from its first fields.
                csvfiles.records_check(stream, expected=len(batch.columns))
                stream.seek(0)
                offsets, total = inputs.csv_offsets(stream, chunk_rows=chunk_rows)
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
            chunks.chunk_enqueue(chunk_id)
        watch.batch_watch_start(job_id=job_id)
