"""Celery entry points for batch scoring: each takes ids and calls one service.

The task names are the ones these tasks had when batch scoring lived in the jobs app
(`jobs.batch_*`), on purpose: django-celery-beat rows (the sweeper, every BatchSchedule's
periodic task) and messages already waiting in a broker queue at a deploy name tasks by these
strings, and a renamed task would leave them unconsumed ("unregistered task").

Chunk and plan tasks are idempotent, so they are acknowledged late: a message whose worker died
may be delivered again and does no harm. Only named transient errors are retried, with backoff.
"""

from typing import Any

from celery import Task, shared_task
from celery.signals import worker_ready

from batch import assembly, chunks, leases, plan, schedules, watch

RETRY = {
    "autoretry_for": leases.TRANSIENT_ERRORS,
    "retry_backoff": 2,
    "retry_backoff_max": 60,
    "retry_jitter": True,
    "max_retries": 5,
}


@shared_task(name="jobs.batch_job_plan", acks_late=True, **RETRY)
def batch_job_plan(job_id: int) -> None:
    plan.batch_job_plan(job_id=job_id)


@shared_task(bind=True, name="jobs.batch_chunk_run", acks_late=True, **RETRY)
def batch_chunk_run(self: Task, chunk_id: int) -> None:
    chunks.batch_chunk_run(chunk_id=chunk_id, worker=self.request.hostname or "")


@shared_task(name="jobs.batch_job_assemble", acks_late=True, **RETRY)
def batch_job_assemble(job_id: int) -> None:
    assembly.batch_job_assemble(job_id=job_id)


@shared_task(name="jobs.batch_watch_tick", acks_late=True, **RETRY)
def batch_watch_tick(job_id: int, token: str) -> None:
    watch.batch_watch_tick(job_id=job_id, token=token)


@shared_task(name="jobs.batch_sweep", acks_late=True, **RETRY)
def batch_sweep() -> int:
    """The periodic sweeper (django-celery-beat, every minute; see jobs/migrations/0003)."""
    return watch.batch_sweep_all()


@shared_task(name="jobs.batch_recover", acks_late=True, **RETRY)
def batch_recover() -> None:
    watch.batch_recover()


@shared_task(name="jobs.batch_schedule_run", acks_late=True, **RETRY)
def batch_schedule_run(schedule_id: int) -> int | None:
    """Run by django-celery-beat for a BatchSchedule; returns the job id, if one was queued."""
    job = schedules.batch_schedule_run(schedule_id=schedule_id)
    return job.pk if job else None


@worker_ready.connect
def _recover_on_start(sender: Any = None, **kwargs: Any) -> None:
    # The messages a killed worker held are gone on the filesystem broker (and come back only
    # after the visibility timeout on Redis): a worker that starts gives running jobs a watcher.
    batch_recover.delay()
