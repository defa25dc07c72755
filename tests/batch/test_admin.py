"""Batch schedules in the admin: every delete (one, or "delete selected") goes through the
schedule service, so the schedule's beat task goes with it, and the audit trail stays."""

import pytest
from auditlog.models import LogEntry
from django.test import Client
from django_celery_beat.models import PeriodicTask

from batch import schedules
from batch.models import BatchSchedule
from registry.models import ModelVersion

pytestmark = pytest.mark.django_db


def _schedule(churn: ModelVersion, name: str) -> BatchSchedule:
    return schedules.batch_schedule_save(
        schedule=BatchSchedule(
            name=name, model=churn.model, folder="batch-inputs/", crontab="0 2 * * *"
        )
    )


def _trail(schedule_id: int) -> list[int]:
    """The actions (create, update, delete) the audit trail holds for a schedule, in order."""
    entries = LogEntry.objects.filter(
        content_type__app_label="batch",
        content_type__model="batchschedule",
        object_id=schedule_id,
    )
    return list(entries.order_by("timestamp", "pk").values_list("action", flat=True))


def test_deleting_a_schedule_in_the_admin_deletes_its_beat_task(
    admin_client: Client, churn: ModelVersion
) -> None:
    # Given a schedule with its periodic task
    schedule = _schedule(churn, "nightly")
    task_id = schedule.periodic_task_id

    # When it is deleted on its admin delete page
    response = admin_client.post(
        f"/admin/batch/batchschedule/{schedule.pk}/delete/", {"post": "yes"}
    )

    # Then the schedule and its beat task are gone, and its audit trail records the delete
    assert response.status_code == 302
    assert not BatchSchedule.objects.filter(pk=schedule.pk).exists()
    assert not PeriodicTask.objects.filter(pk=task_id).exists()
    assert _trail(schedule.pk)[-1] == LogEntry.Action.DELETE
    assert _trail(schedule.pk)[0] == LogEntry.Action.CREATE


def test_delete_selected_deletes_every_schedules_beat_task(
    admin_client: Client, churn: ModelVersion
) -> None:
    # Given two schedules, each with its periodic task, and a third that stays
    doomed = [_schedule(churn, "nightly"), _schedule(churn, "weekly")]
    kept = _schedule(churn, "monthly")
    tasks = [schedule.periodic_task_id for schedule in doomed]

    # When the two are deleted with the "delete selected" action (after its confirmation page)
    response = admin_client.post(
        "/admin/batch/batchschedule/",
        {
            "action": "delete_selected",
            "_selected_action": [str(schedule.pk) for schedule in doomed],
            "post": "yes",
        },
    )

    # Then they and their beat tasks are gone, each delete is in the audit trail, and the third
    # schedule keeps its task
    assert response.status_code == 302
    assert not BatchSchedule.objects.filter(pk__in=[s.pk for s in doomed]).exists()
    assert not PeriodicTask.objects.filter(pk__in=tasks).exists()
    assert all(_trail(schedule.pk)[-1] == LogEntry.Action.DELETE for schedule in doomed)
    assert PeriodicTask.objects.filter(pk=kept.periodic_task_id).exists()


def test_a_schedule_whose_beat_task_is_already_gone_still_deletes(churn: ModelVersion) -> None:
    # Given a schedule whose beat task was already removed by hand
    schedule = _schedule(churn, "nightly")
    PeriodicTask.objects.filter(pk=schedule.periodic_task_id).delete()
    schedule.refresh_from_db()

    # When it is deleted through the service
    schedules.batch_schedule_delete(schedule=schedule)

    # Then it is gone too
    assert not BatchSchedule.objects.filter(pk=schedule.pk).exists()
