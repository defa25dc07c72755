"""`jobs.services.job_running`: the one way work runs as a job (start; succeed, fail or stop)."""

import pytest

from jobs import services
from jobs.models import Job
from mlplatform.errors import ApplicationError

pytestmark = pytest.mark.django_db


def _queued() -> Job:
    return services.job_create(kind=Job.Kind.INGESTION, description="work")


def test_the_block_runs_with_the_started_job_and_its_success_is_recorded() -> None:
    job = _queued()

    with services.job_running(job_id=job.pk, total=5) as running:
        assert running is not None
        assert running.status == Job.Status.RUNNING
        services.job_succeed(job_id=job.pk, result={"rows": 5})

    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED
    assert job.progress_total == 5
    assert job.result == {"rows": 5}


def test_a_cancelled_job_yields_none() -> None:
    job = _queued()
    services.job_cancel(job=job)

    with services.job_running(job_id=job.pk) as running:
        assert running is None

    job.refresh_from_db()
    assert job.status == Job.Status.CANCELLED


def test_an_application_error_fails_the_job_with_its_message() -> None:
    job = _queued()

    with services.job_running(job_id=job.pk):
        raise ApplicationError("The source has no rows.")

    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert job.error == "The source has no rows."


def test_a_bug_fails_the_job_and_is_raised_for_the_log() -> None:
    job = _queued()

    with pytest.raises(KeyError), services.job_running(job_id=job.pk):
        raise KeyError("group_id")

    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert job.error == "KeyError: 'group_id'"


def test_work_stopped_by_a_cancel_ends_quietly() -> None:
    job = _queued()

    with services.job_running(job_id=job.pk):
        services.job_cancel(job=Job.objects.get(pk=job.pk))
        raise services.JobStopped("cancelled meanwhile")

    job.refresh_from_db()
    assert job.status == Job.Status.CANCELLED
