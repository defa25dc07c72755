"""Celery entry points for jobs: each takes ids and calls one service in jobs.batch.

Chunk and plan tasks are idempotent, so they are acknowledged late: a message whose worker died
may be delivered again and does no harm. Only named transient errors are retried, with backoff.
"""

from typing import Any

from celery import Task, shared_task
from celery.signals import worker_ready

from jobs import batch
from jobs import services as job_services

RETRY = {
    "autoretry_for": batch.TRANSIENT_ERRORS,
    "retry_backoff": 2,
    "retry_backoff_max": 60,
    "retry_jitter": True,
    "max_retries": 5,
}


@shared_task(name="jobs.batch_job_plan", acks_late=True, **RETRY)
def batch_job_plan(job_id: int) -> None:
    batch.batch_job_plan(job_id=job_id)


@shared_task(bind=True, name="jobs.batch_chunk_run", acks_late=True, **RETRY)
def batch_chunk_run(self: Task, chunk_id: int) -> None:
    batch.batch_chunk_run(chunk_id=chunk_id, worker=self.request.hostname or "")


@shared_task(name="jobs.batch_job_assemble", acks_late=True, **RETRY)
def batch_job_assemble(job_id: int) -> None:
    batch.batch_job_assemble(job_id=job_id)


@shared_task(name="jobs.batch_watch_tick", acks_late=True, **RETRY)
def batch_watch_tick(job_id: int, token: str) -> None:
    batch.batch_watch_tick(job_id=job_id, token=token)


@shared_task(name="jobs.batch_sweep", acks_late=True, **RETRY)
def batch_sweep() -> int:
    """The periodic sweeper (django-celery-beat, every minute; see the jobs migrations)."""
    return batch.batch_sweep_all()


@shared_task(name="jobs.job_outputs_expire", acks_late=True, **RETRY)
def job_outputs_expire() -> int:
    """Hourly (django-celery-beat; see the jobs migrations): retention, and leftover parts."""
    return job_services.job_outputs_expire()


@shared_task(name="jobs.batch_recover", acks_late=True, **RETRY)
def batch_recover() -> None:
    batch.batch_recover()


@shared_task(name="jobs.batch_schedule_run", acks_late=True, **RETRY)
def batch_schedule_run(schedule_id: int) -> int | None:
    """Run by django-celery-beat for a BatchSchedule; returns the job id, if one was queued."""
    from jobs import schedules

    job = schedules.batch_schedule_run(schedule_id=schedule_id)
    return job.pk if job else None


@worker_ready.connect
def _recover_on_start(sender: Any = None, **kwargs: Any) -> None:
    # The messages a killed worker held are gone on the filesystem broker (and come back only
    # after the visibility timeout on Redis): a worker that starts gives running jobs a watcher.
    batch_recover.delay()
