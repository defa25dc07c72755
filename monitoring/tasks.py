"""Celery entry points for monitoring: each takes an id (or nothing) and calls one service."""

from celery import shared_task

from monitoring import run


@shared_task(acks_late=True)
def monitoring_run(job_id: int) -> None:
    # Idempotent: windows are upserted, alerts keyed by rule, version and column.
    run.monitoring_run_job(job_id=job_id)


@shared_task(acks_late=True)
def monitoring_run_all() -> None:
    """Hourly (beat): a monitoring job per model with traffic, and feature-group freshness."""
    run.monitoring_run_all()
