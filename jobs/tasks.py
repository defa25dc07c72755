"""Celery entry points for the job tracker (batch scoring's tasks live in batch/tasks.py)."""

from celery import shared_task
from django.db import InterfaceError, OperationalError

from jobs import services as job_services


@shared_task(
    name="jobs.job_outputs_expire",
    acks_late=True,
    autoretry_for=(OperationalError, InterfaceError, ConnectionError, TimeoutError),
    retry_backoff=2,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=5,
)
def job_outputs_expire() -> int:
    """Hourly (django-celery-beat; see the jobs migrations): retention, and leftover files."""
    return job_services.job_outputs_expire()
