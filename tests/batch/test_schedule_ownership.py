"""A batch schedule belongs to a team, and so do the jobs it starts."""

from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from batch import schedules
from batch.models import BatchSchedule
from jobs.models import Job
from tests.batch.conftest import make_frame

pytestmark = pytest.mark.django_db


def test_a_schedules_runs_belong_to_its_team(churn: Any) -> None:
    red = Group.objects.create(name="red")
    schedule = schedules.batch_schedule_save(
        schedule=BatchSchedule(
            name="nightly", model=churn.model, folder="batch-inputs/red", owner=red
        )
    )
    default_storage.save("batch-inputs/red/a.csv", ContentFile(make_frame(3).to_csv(index=False)))

    job = schedules.batch_schedule_run(schedule_id=schedule.pk)

    assert job is not None
    assert Job.objects.get(pk=job.pk).owner == red


@pytest.mark.parametrize(
    "folder",
    [
        "batch-inputs/blue",  # another team's area
        "batch-inputs",  # the area itself belongs to no team
        "jobs/inputs",  # other teams' uploads
        "artifacts/1",
        "batch-inputs/red/../blue",
        "/etc",
        "batch-inputs/red/..\\..\\jobs",
    ],
)
def test_a_schedule_reads_only_its_team_s_inputs_area(churn: Any, folder: str) -> None:
    red = Group.objects.create(name="red")
    with pytest.raises(ValidationError) as refused:
        schedules.batch_schedule_save(
            schedule=BatchSchedule(name="peek", model=churn.model, folder=folder, owner=red)
        )
    assert "batch-inputs/red/" in str(refused.value)
    assert not BatchSchedule.objects.exists()


def test_a_schedule_moved_outside_its_area_behind_the_service_s_back_reads_nothing(
    churn: Any,
) -> None:
    red = Group.objects.create(name="red")
    schedule = schedules.batch_schedule_save(
        schedule=BatchSchedule(
            name="nightly", model=churn.model, folder="batch-inputs/red", owner=red
        )
    )
    default_storage.save("jobs/inputs/theirs.csv", ContentFile(make_frame(3).to_csv(index=False)))
    BatchSchedule.objects.filter(pk=schedule.pk).update(folder="jobs/inputs")

    assert schedules.batch_schedule_run(schedule_id=schedule.pk) is None
    assert not Job.objects.exists()


def test_the_admin_form_names_the_area_of_the_team(admin_client: Any, churn: Any) -> None:
    response = admin_client.post(
        "/admin/batch/batchschedule/add/",
        {
            "name": "peek",
            "model": churn.model.pk,
            "alias": "production",
            "folder": "jobs/inputs",
            "outputs": '["predict"]',
            "id_columns": "[]",
            "output_format": "csv",
            "crontab": "0 2 * * *",
            "enabled": "on",
        },
    )

    assert response.status_code == 200  # the form again, with the error
    assert "batch-inputs/" in response.content.decode()
    assert not BatchSchedule.objects.exists()
