"""Batch jobs that refuse ragged rows, leave nothing behind when they fail or are cancelled, and
whose outputs expire."""

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

from batch.models import BatchChunk, BatchJob
from jobs import services
from jobs.models import Job
from jobs.tasks import job_outputs_expire
from tests.batch.conftest import make_frame
from tests.batch.helpers import read_output, submit, wait_finished
from tests.workers import wait_idle

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def worker(celery_worker: Any) -> Iterator[Any]:
    """The session's worker, idle again before the test's database is flushed under it."""
    yield celery_worker
    wait_idle()


def _parts(job_id: int) -> list[Path]:
    root = Path(settings.MEDIA_ROOT) / "jobs" / "parts" / str(job_id)
    return sorted(p for p in root.rglob("*") if p.is_file())


def _ragged_csv(tmp_path: Path, *, bad_line: int, row: str) -> Path:
    """300 rows of the churn model's input with `row` written on line `bad_line`."""
    lines = make_frame(300, seed=21).to_csv(index=False).splitlines()
    lines[bad_line - 1] = row
    path = tmp_path / "ragged.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    ("row", "fields"),
    [
        ("c000150,003,0.1,0.2,0.3,0.4,0.5", 7),  # one field too many: it was scored from the rest
        ("c000150,003,0.1,0.2,0.3", 5),  # one too few: it was scored with a null
    ],
    ids=["long", "short"],
)
def test_a_ragged_row_fails_the_job_naming_its_line_with_no_output(
    worker, api_client, churn, tmp_path, settings, row, fields
):
    # Given a 300-row input in 3 chunks with a ragged row on line 152 (data row 150)
    settings.MLPLATFORM_BATCH_CHUNK_ROWS = 100
    path = _ragged_csv(tmp_path, bad_line=152, row=row)

    # When it is scored
    response = submit(api_client, path, model="churn", id_columns="customer_id,branch")
    assert response.status_code == 201, response.content
    job = wait_finished(response.json()["id"])

    # Then the job failed naming the line, nothing was scored and nothing is stored
    assert job.status == Job.Status.FAILED
    assert f"line 152 has {fields} fields" in job.error
    assert "header's 6 fields" in job.error
    assert job.progress_done == 0
    assert not job.output
    assert api_client.get(f"/api/v1/jobs/{job.pk}/output").status_code == 404
    assert not BatchChunk.objects.filter(batch_id=job.pk).exists()
    assert not _parts(job.pk)


def test_a_job_that_fails_midway_leaves_no_parts(worker, api_client, churn, tmp_path, settings):
    # Given 20 chunks whose last one holds a value that is not a number
    settings.MLPLATFORM_BATCH_CHUNK_ROWS = 20
    frame = make_frame(400, seed=22)
    frame["income"] = frame["income"].astype(object)
    frame.loc[395, "income"] = "lots"
    path = tmp_path / "input.csv"
    frame.to_csv(path, index=False)
    job_id = submit(api_client, path, model="churn", id_columns="customer_id,branch").json()["id"]

    # When it runs: the early chunks store their parts, the last one fails the job
    job = wait_finished(job_id)
    wait_idle()

    # Then the job failed naming the row, and every stored part was removed
    assert job.status == Job.Status.FAILED
    assert "income" in job.error
    assert BatchChunk.objects.filter(batch_id=job_id, status="done").exists()
    assert not _parts(job_id)
    assert not BatchChunk.objects.filter(batch_id=job_id).exclude(output_part="").exists()


def test_a_cancelled_job_leaves_no_parts(worker, api_client, churn, write_input, settings):
    # Given a job of many small, slow chunks, some of them done
    settings.MLPLATFORM_BATCH_CHUNK_ROWS = 40
    settings.MLPLATFORM_BATCH_BLOCK_ROWS = 2
    settings.MLPLATFORM_BATCH_LEASE_SECONDS = 3
    job_id = submit(
        api_client,
        write_input(make_frame(2000, seed=23)),
        model="churn",
        id_columns="customer_id,branch",
    ).json()["id"]
    deadline = timezone.now() + timedelta(seconds=60)
    while not BatchChunk.objects.filter(batch_id=job_id, status="done").exists():
        assert timezone.now() < deadline, "no chunk finished in time"

    # When it is cancelled
    assert api_client.post(f"/api/v1/jobs/{job_id}/cancel").json()["status"] == "cancelled"
    wait_idle()

    # Then no part of it is left in storage, not even of chunks that were running
    assert not _parts(job_id)
    assert not Job.objects.get(pk=job_id).output


def test_expired_outputs_are_deleted_and_their_download_is_410(
    worker, api_client, churn, write_input
):
    # Given a finished job with an output
    job = wait_finished(
        submit(
            api_client,
            write_input(make_frame(50, seed=24)),
            model="churn",
            id_columns="customer_id,branch",
        ).json()["id"]
    )
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert len(read_output(api_client, job.pk)) == 50
    output = Path(job.output.path)

    # When the retention period (the worker's: the default) has passed and the periodic task
    # runs on the worker
    days = settings.MLPLATFORM_JOB_OUTPUT_RETENTION_DAYS
    Job.objects.filter(pk=job.pk).update(finished_at=timezone.now() - timedelta(days=days + 1))
    job_outputs_expire.apply_async().get(timeout=30)

    # Then the file is gone and the download says it expired
    assert not output.exists()
    response = api_client.get(f"/api/v1/jobs/{job.pk}/output")
    assert response.status_code == 410
    assert "expired" in response.json()["detail"]
    assert api_client.get(f"/api/v1/jobs/{job.pk}/").json()["status"] == "succeeded"


def test_the_expiry_task_removes_what_failed_jobs_left(api_client, churn, write_input):
    # Given a failed job whose part and staged input were stored after it failed (a straggler)
    job = services.job_create(kind=Job.Kind.BATCH_SCORING)
    BatchJob.objects.create(
        job=job,
        version=churn,
        input_format="csv",
        output_format="csv",
        chunk_rows=10,
        lease_seconds=10,
        max_attempts=1,
        staged_input=default_storage.save("jobs/inputs/staged.parquet", ContentFile(b"x")),
    )
    part = default_storage.save(f"jobs/parts/{job.pk}/000000.csv", ContentFile(b"1\n"))
    BatchChunk.objects.create(
        batch_id=job.pk, index=0, row_start=0, row_count=1, status="done", output_part=part
    )
    Job.objects.filter(pk=job.pk).update(status=Job.Status.FAILED, error="boom")

    # When the periodic task runs
    job_outputs_expire()

    # Then both files are gone
    assert not default_storage.exists(part)
    assert not default_storage.exists("jobs/inputs/staged.parquet")
    assert BatchJob.objects.get(pk=job.pk).staged_input == ""
