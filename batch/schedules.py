"""Scheduled batch scoring: a BatchSchedule owns one django-celery-beat PeriodicTask that scores
the newest CSV/Parquet file of a storage folder (e.g. nightly), with the model's alias as it is
at that moment."""

import json
import logging
import posixpath

from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from batch import inputs, selectors, submit
from batch.models import BatchSchedule
from jobs import services as job_services
from jobs.models import Job
from mlplatform.areas import area_path
from mlplatform.errors import ApplicationError
from mlplatform.schedules import crontab_from_expression

INPUT_SUFFIXES = (".csv", ".parquet", ".pq")
logger = logging.getLogger(__name__)


def batch_schedule_save(*, schedule: BatchSchedule) -> BatchSchedule:
    """Validate and save a schedule, and create or update its periodic task to match.

    Raises:
        ValidationError: a bad crontab, output or format.
    """
    schedule.outputs = inputs.outputs_parse(schedule.outputs)
    schedule.id_columns = inputs.names_parse(schedule.id_columns)
    schedule.full_clean(exclude=["periodic_task"])
    with transaction.atomic():
        crontab = crontab_from_expression(schedule.crontab)
        schedule.save()
        task = schedule.periodic_task or PeriodicTask(name=f"batch scoring: {schedule.name}")
        task.task = "jobs.batch_schedule_run"  # batch.tasks.batch_schedule_run (its old name)
        task.crontab = crontab
        task.interval = None
        task.kwargs = json.dumps({"schedule_id": schedule.pk})
        task.enabled = schedule.enabled
        task.save()
        if schedule.periodic_task_id != task.pk:
            schedule.periodic_task = task
            schedule.save(update_fields=["periodic_task"])
    return schedule


def batch_schedule_delete(*, schedule: BatchSchedule) -> None:
    with transaction.atomic():
        if schedule.periodic_task:
            schedule.periodic_task.delete()
        schedule.delete()


def newest_input(*, folder: str) -> str | None:
    """The most recently modified CSV/Parquet file directly in a storage folder."""
    folder = folder.strip("/")
    try:
        _, files = default_storage.listdir(folder)
    except FileNotFoundError:
        return None
    candidates = [
        posixpath.join(folder, name) for name in files if name.lower().endswith(INPUT_SUFFIXES)
    ]
    if not candidates:
        return None
    return max(candidates, key=lambda name: (default_storage.get_modified_time(name), name))


def batch_schedule_run(*, schedule_id: int) -> Job | None:
    """Queue a job for the newest file of the schedule's folder; None when there is no new file
    (the same file is never scored twice by one schedule)."""
    schedule = BatchSchedule.objects.select_related("model", "created_by").get(pk=schedule_id)
    if not schedule.enabled:
        return None
    folder = area_path(schedule.folder, schedule.inputs_area())
    if folder is None:
        # Saved before the areas existed, or changed behind the service's back: never read.
        logger.warning(
            "batch schedule %s: folder %r is outside %r; not run",
            schedule.name,
            schedule.folder,
            schedule.inputs_area(),
        )
        return None
    name = newest_input(folder=folder)
    if name is None or name == schedule.last_input:
        return None
    version = selectors.batch_version_pin(
        model_name=schedule.model.name, alias=schedule.alias or None
    )
    BatchSchedule.objects.filter(pk=schedule.pk).update(last_input=name, last_run_at=timezone.now())
    try:
        with default_storage.open(name, "rb") as stream:
            return submit.batch_job_submit(
                version=version,
                stream=stream,
                filename=name,
                outputs=schedule.outputs or ["predict"],
                id_columns=schedule.id_columns,
                output_format=schedule.output_format,
                submitted_by=schedule.created_by,
                stored_name=name,
                schedule=schedule,
            )
    except ApplicationError as exc:
        # Nobody is there to read a 400: the refusal becomes a failed job on the jobs page.
        job = job_services.job_create(
            kind=Job.Kind.BATCH_SCORING,
            description=f"Scheduled scoring of {name} ({schedule.name})"[:300],
            submitted_by=schedule.created_by,
            owner=schedule.owner,
            params={"schedule": schedule.name, "input_name": name},
        )
        job_services.job_fail(job_id=job.pk, error=exc.message)
        job.refresh_from_db()
        return job
