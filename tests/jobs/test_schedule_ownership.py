"""A batch schedule belongs to a team, and so do the jobs it starts."""

from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from jobs import schedules
from jobs.models import BatchSchedule, Job
from tests.jobs.conftest import make_frame

pytestmark = pytest.mark.django_db


def test_a_schedules_runs_belong_to_its_team(churn: Any) -> None:
    red = Group.objects.create(name="red")
    schedule = schedules.batch_schedule_save(
        schedule=BatchSchedule(name="nightly", model=churn.model, folder="in/red", owner=red)
    )
    default_storage.save("in/red/a.csv", ContentFile(make_frame(3).to_csv(index=False)))

    job = schedules.batch_schedule_run(schedule_id=schedule.pk)

    assert job is not None
    assert Job.objects.get(pk=job.pk).owner == red
