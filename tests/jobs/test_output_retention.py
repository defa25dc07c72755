"""Outputs of finished jobs are kept for MLPLATFORM_JOB_OUTPUT_RETENTION_DAYS, by an hourly task.

Their expiry, and the removal of what failed batch jobs left, run on batch jobs:
tests/batch/test_cancel_and_cleanup.py.
"""

from datetime import timedelta
from importlib import import_module

import pytest
from django.apps import apps
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from jobs import services
from jobs.models import Job

pytestmark = pytest.mark.django_db(transaction=True)


def test_outputs_inside_the_retention_period_are_kept(settings):
    settings.MLPLATFORM_JOB_OUTPUT_RETENTION_DAYS = 7
    job = services.job_create(kind=Job.Kind.TRAINING_SET)
    job.output.save("kept.parquet", ContentFile(b"PAR1"), save=False)
    Job.objects.filter(pk=job.pk).update(
        output=job.output.name,
        status=Job.Status.SUCCEEDED,
        finished_at=timezone.now() - timedelta(days=6),
    )

    assert services.job_outputs_expire() == 0

    assert default_storage.exists(job.output.name)
    assert Job.objects.get(pk=job.pk).output_expired_at is None


def test_the_expiry_task_runs_hourly_on_beat():
    # (Rows written by migrations are flushed by earlier transactional tests: run its step.)
    migration = import_module("jobs.migrations.0007_job_output_retention")
    migration.create_expiry(apps, None)

    task = PeriodicTask.objects.get(task="jobs.job_outputs_expire")
    assert task.enabled
    assert task.interval.every == 3600
