"""Celery entry point for reference profiles built as monitoring jobs: takes an id and calls one
service (the monitoring run's own tasks live in monitoring/tasks.py)."""

from celery import shared_task

from monitoring import reference


@shared_task(acks_late=True)
def reference_build(job_id: int) -> None:
    # A finished job returns at once; a re-run of an interrupted one profiles again.
    reference.reference_job_run(job_id=job_id)
