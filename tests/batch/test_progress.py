"""A batch job's progress moves block by block inside each chunk, and stays exact when a chunk is
run again after an attempt that had already counted some of its rows."""

from datetime import timedelta

import pytest
from django.utils import timezone

from batch import chunks, leases, plan
from batch.models import BatchChunk
from jobs import services as job_services
from jobs.models import Job
from tests.batch.conftest import make_frame
from tests.batch.helpers import submit

pytestmark = pytest.mark.django_db


@pytest.fixture
def planned(api_client, churn, write_input, settings):
    """A running job of 300 rows in 3 chunks of 100, read 25 rows a block."""
    settings.MLPLATFORM_BATCH_CHUNK_ROWS = 100
    settings.MLPLATFORM_BATCH_BLOCK_ROWS = 25
    job_id = submit(
        api_client, write_input(make_frame(300)), model="churn", id_columns="customer_id,branch"
    ).json()["id"]
    plan.batch_job_plan(job_id=job_id)
    return job_id


def test_a_chunk_advances_the_job_once_per_block(planned, monkeypatch):
    # given a running job, and the job's progress calls recorded
    advanced: list[int] = []
    real = job_services.job_advance

    def record(*, job_id: int, done: int) -> None:
        advanced.append(done)
        real(job_id=job_id, done=done)

    monkeypatch.setattr(chunks.job_services, "job_advance", record)
    chunk = BatchChunk.objects.get(batch_id=planned, index=0)

    # when its first chunk runs
    chunks.batch_chunk_run(chunk_id=chunk.pk, worker="w1")

    # then the job moved by each block of 25 rows, and the chunk counts all of its rows
    assert advanced == [25, 25, 25, 25]
    assert Job.objects.get(pk=planned).progress_done == 100
    assert BatchChunk.objects.get(pk=chunk.pk).rows_done == 100


def test_a_chunk_run_again_never_counts_its_rows_twice(planned):
    # given chunk 0's first attempt counted 50 rows, then lost its worker (its lease expired)
    chunk = leases.claim(BatchChunk.objects.get(batch_id=planned, index=0).pk, worker="w1")
    assert chunk is not None
    chunks._chunk_progress(chunk=chunk, rows_read=50)
    assert Job.objects.get(pk=planned).progress_done == 50
    BatchChunk.objects.filter(pk=chunk.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )

    # when another worker runs it again, and then the other chunks run
    for index in (0, 1, 2):
        pk = BatchChunk.objects.get(batch_id=planned, index=index).pk
        chunks.batch_chunk_run(chunk_id=pk, worker="w2")

    # then the job counted each row once: the sum over its chunks, the file's row count
    job = Job.objects.get(pk=planned)
    assert job.progress_done == 300
    assert (
        sum(BatchChunk.objects.filter(batch_id=planned).values_list("rows_done", flat=True)) == 300
    )


def test_a_late_report_from_a_replaced_attempt_counts_nothing(planned):
    # given chunk 0 taken over by a second attempt after the first had counted 50 rows
    pk = BatchChunk.objects.get(batch_id=planned, index=0).pk
    first = leases.claim(pk, worker="w1")
    assert first is not None
    chunks._chunk_progress(chunk=first, rows_read=50)
    BatchChunk.objects.filter(pk=pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    second = leases.claim(pk, worker="w2")
    assert second is not None

    # when the first attempt still reports its blocks, and the second reports fewer rows so far
    chunks._chunk_progress(chunk=first, rows_read=75)
    chunks._chunk_progress(chunk=second, rows_read=25)

    # then nothing more is counted until the second attempt passes 50 rows
    assert Job.objects.get(pk=planned).progress_done == 50
    chunks._chunk_progress(chunk=second, rows_read=75)
    assert Job.objects.get(pk=planned).progress_done == 75


@pytest.mark.parametrize(
    ("chunk_rows", "blocks"),
    [(100_000, 10_000), (1_000_000, 50_000), (5_000, 2_000), (40, 40)],
)
def test_block_size_gives_progress_steps_within_the_configured_bounds(chunk_rows, blocks, settings):
    settings.MLPLATFORM_BATCH_BLOCK_ROWS = 50_000
    assert chunks.block_rows_for(chunk_rows) == blocks
