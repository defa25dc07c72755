"""Batch scoring's pages and entry points: the launch form and its column check, schedules (run,
admin), the score command."""

import os
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.core.management.base import CommandError
from django_celery_beat.models import PeriodicTask

from batch import schedules
from batch.models import BatchSchedule
from batch.tasks import batch_schedule_run
from jobs.models import Job
from tests.batch.conftest import make_frame

pytestmark = pytest.mark.django_db


@pytest.fixture
def logged_in(client, user):
    client.force_login(user)
    return client


def _form(handle: Any) -> dict[str, Any]:
    """The launch form for model churn with the given file, predictions only, CSV out."""
    return {
        "model": "churn",
        "input": handle,
        "outputs": ["predict"],
        "format": "csv",
        "id_columns": "customer_id,branch",
    }


def test_the_column_check_names_what_is_missing_before_submitting(logged_in, churn, write_input):
    path = write_input(make_frame(5).drop(columns=["score"]))
    with path.open("rb") as handle:
        response = logged_in.post(
            "/jobs/new/check",
            _form(handle),
            HTTP_HX_REQUEST="true",
        )
    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-ok="false"' in html
    assert "score" in html
    assert "missing" in html


def test_the_launch_form_queues_a_job_and_redirects_to_it(logged_in, churn, write_input):
    path = write_input(make_frame(5))
    with path.open("rb") as handle:
        response = logged_in.post(
            "/jobs/new",
            _form(handle),
        )
    job = Job.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/jobs/{job.pk}/"
    assert job.batch.version == churn
    # and the job's page links back to the version it scores with
    page = logged_in.get(response["Location"])
    assert f'href="{churn.get_absolute_url()}" id="job-subject"' in page.content.decode()


def test_the_launch_form_shows_a_refusal_as_a_form_error(logged_in, churn, write_input):
    path = write_input(make_frame(5).drop(columns=["age"]))
    with path.open("rb") as handle:
        response = logged_in.post(
            "/jobs/new",
            _form(handle),
        )
    assert response.status_code == 200
    assert "missing column(s) age" in response.content.decode()
    assert not Job.objects.exists()


def test_a_schedule_scores_the_newest_file_of_its_folder_once(churn, tmp_path, settings):

    schedule = schedules.batch_schedule_save(
        schedule=BatchSchedule(
            name="nightly-churn",
            model=churn.model,
            folder="batch-inputs/incoming/churn",
            id_columns="customer_id,branch",
            crontab="0 2 * * *",
        )
    )
    task = PeriodicTask.objects.get(pk=schedule.periodic_task_id)
    assert task.task == "jobs.batch_schedule_run"
    assert (task.crontab.minute, task.crontab.hour) == ("0", "2")
    assert batch_schedule_run(schedule.pk) is None  # nothing to score yet

    old = default_storage.save(
        "batch-inputs/incoming/churn/a.csv", ContentFile(make_frame(3).to_csv(index=False))
    )
    new = default_storage.save(
        "batch-inputs/incoming/churn/b.csv", ContentFile(make_frame(4).to_csv(index=False))
    )

    os.utime(default_storage.path(old), (1_000_000, 1_000_000))

    job_id = batch_schedule_run(schedule.pk)

    job = Job.objects.get(pk=job_id)
    assert job.input.name == new
    assert job.batch.version == churn
    assert job.batch.schedule == schedule
    assert batch_schedule_run(schedule.pk) is None  # the same file is not scored twice


def test_the_score_command_refuses_a_mismatching_file(churn, write_input):

    path = write_input(make_frame(5).drop(columns=["age"]))
    with pytest.raises(CommandError, match="age"):
        call_command("score", "churn", str(path))
    assert not Job.objects.exists()


def test_a_schedule_added_in_the_admin_gets_its_periodic_task(admin_client, churn):

    response = admin_client.post(
        "/admin/batch/batchschedule/add/",
        {
            "name": "weekly-churn",
            "model": churn.model.pk,
            "alias": "production",
            "folder": "batch-inputs/weekly",
            "outputs": '["predict"]',
            "id_columns": '["customer_id"]',
            "output_format": "parquet",
            "crontab": "30 3 * * 1",
            "enabled": "on",
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    task = PeriodicTask.objects.get(name="batch scoring: weekly-churn")
    assert task.enabled
    assert (task.crontab.minute, task.crontab.hour, task.crontab.day_of_week) == ("30", "3", "1")
