"""Batch answers the job tracker's signals: jobs knows nothing of chunks, parts or staged
inputs, yet cancelling a batch job stops its chunks and its leftovers are removed."""

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from batch.models import BatchChunk, BatchJob
from jobs import services
from jobs.models import Job
from registry.models import ModelVersion

pytestmark = pytest.mark.django_db


def _batch_job(version: ModelVersion, statuses: list[str]) -> Job:
    job = Job.objects.create(kind=Job.Kind.BATCH_SCORING, status=Job.Status.RUNNING)
    batch = BatchJob.objects.create(
        job=job,
        version=version,
        input_format="csv",
        output_format="csv",
        chunk_rows=10,
        lease_seconds=60,
        max_attempts=3,
        chunks_total=len(statuses),
    )
    for index, status in enumerate(statuses):
        BatchChunk.objects.create(
            batch=batch, index=index, row_start=10 * index, row_count=10, status=status
        )
    return job


def _statuses(job: Job) -> list[str]:
    return list(BatchChunk.objects.filter(batch_id=job.pk).values_list("status", flat=True))


def test_cancelling_a_batch_job_cancels_its_queued_chunks(churn: ModelVersion) -> None:
    # Given a running batch job with a done, a running and two queued chunks
    S = BatchChunk.Status
    job = _batch_job(churn, [S.DONE, S.RUNNING, S.PENDING, S.PENDING])

    # When the job tracker cancels it
    services.job_cancel(job=job)

    # Then the queued chunks never start; the running one stops at its next block (its lease
    # renewal sees the job's status), the done one stays done
    assert _statuses(job) == [S.DONE, S.RUNNING, S.CANCELLED, S.CANCELLED]


def test_cancelling_another_kind_of_job_touches_no_chunk(churn: ModelVersion) -> None:
    # Given a batch job and a job of another kind
    batch_job = _batch_job(churn, [BatchChunk.Status.PENDING])
    other = Job.objects.create(kind=Job.Kind.INGESTION, status=Job.Status.RUNNING)

    # When the other job is cancelled
    services.job_cancel(job=other)

    # Then the batch job's chunks are untouched
    assert _statuses(batch_job) == [BatchChunk.Status.PENDING]


def test_a_failed_batch_jobs_parts_and_staged_input_are_removed(churn: ModelVersion) -> None:
    # Given a failed batch job that left a chunk part and a staged input in storage
    job = _batch_job(churn, [BatchChunk.Status.DONE])
    part = default_storage.save(f"jobs/parts/{job.pk}/000000.csv", ContentFile(b"1\n"))
    staged = default_storage.save(f"jobs/inputs/job-{job.pk}-as-of.parquet", ContentFile(b"x"))
    BatchChunk.objects.filter(batch_id=job.pk).update(output_part=part)
    BatchJob.objects.filter(pk=job.pk).update(staged_input=staged)
    Job.objects.filter(pk=job.pk).update(status=Job.Status.FAILED)

    # When the job tracker removes what the job left
    deleted = services.job_files_remove(job_id=job.pk)

    # Then batch deleted both files and forgot them
    assert deleted == 2
    assert not default_storage.exists(part)
    assert not default_storage.exists(staged)
    assert BatchJob.objects.get(pk=job.pk).staged_input == ""
    assert _statuses(job) == [BatchChunk.Status.DONE]
    assert BatchChunk.objects.get(batch_id=job.pk).output_part == ""
