"""Assembling a batch job: concatenate the done chunks' parts, in input order, into the job's
one output file, and mark the job succeeded (idempotent; one assembler at a time)."""

import csv
import io
import os
import tempfile
from contextlib import suppress
from datetime import timedelta
from typing import Any

import pyarrow.parquet as pq
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from batch import inputs, storage
from batch.models import BatchChunk, BatchJob, FileFormat
from jobs import services as job_services
from jobs.models import Job

CONTENT_TYPES = {FileFormat.CSV: "text/csv", FileFormat.PARQUET: "application/vnd.apache.parquet"}


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
    classes = list(batch.version.signature.classes or ())
    handle, local_path = tempfile.mkstemp(suffix=f".{batch.output_format}", prefix="mlp-out-")
    os.close(handle)
    try:
        if batch.output_format == FileFormat.PARQUET:
            writer: pq.ParquetWriter | None = None
            for chunk in chunks:
                with storage.stored(chunk.output_part) as source:
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
                        while block := part.read(inputs.SCAN_BLOCK):
                            output.write(block)
        name = (
            f"jobs/outputs/job-{job_id}-{batch.version.model.name}-v{batch.version.version}"
            f".{batch.output_format}"
        )
        stored = storage.store(local_path, name)
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
    transaction.on_commit(lambda: storage.delete_quietly(parts))
