"""Watching running batch jobs, and recovering them.

While a job runs, its watcher ticks every few seconds (`batch_watch_tick`, one live token at a
time, so duplicated ticks die out), and the periodic sweeper (`batch_sweep_all`, every minute)
looks at every job. Both re-enqueue chunks whose lease expired or whose message was lost, fail
the job when a chunk keeps killing its worker, and assemble it when every chunk is done. A worker
that starts gives running jobs a watcher (`batch_recover`).
"""

import logging
import uuid
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from batch import chunks, tasks
from batch.models import BatchChunk, BatchJob
from jobs.models import Job
from mlplatform.tasks import enqueue_after_commit

logger = logging.getLogger(__name__)


def watch_interval(batch: BatchJob) -> float:
    return max(1.0, min(10.0, batch.lease_seconds / 3))


def watch_stale(batch: BatchJob) -> bool:
    if batch.watch_beat_at is None:
        return True
    return timezone.now() - batch.watch_beat_at > timedelta(seconds=3 * watch_interval(batch))


def batch_watch_start(*, job_id: int) -> None:
    """Start (or restart) a job's watcher; any older tick stops at its next turn."""
    token = uuid.uuid4().hex
    BatchJob.objects.filter(pk=job_id).update(watch_token=token, watch_beat_at=timezone.now())
    batch = BatchJob.objects.filter(pk=job_id).first()
    if batch is None:
        return
    enqueue_after_commit(tasks.batch_watch_tick, job_id, token, countdown=watch_interval(batch))


def batch_watch_tick(*, job_id: int, token: str) -> None:
    """One turn of a job's watcher: sweep, then schedule the next turn while the job runs."""
    batch = BatchJob.objects.select_related("job").filter(pk=job_id).first()
    if batch is None or batch.job.is_finished:
        return
    following = uuid.uuid4().hex
    with transaction.atomic():
        moved = BatchJob.objects.filter(pk=job_id, watch_token=token).update(
            watch_token=following, watch_beat_at=timezone.now()
        )
        if not moved:
            return  # superseded by a newer watcher, or a duplicate delivery of this tick
        batch_job_sweep(job_id=job_id)
        enqueue_after_commit(
            tasks.batch_watch_tick, job_id, following, countdown=watch_interval(batch)
        )


def batch_job_sweep(*, job_id: int) -> None:
    """Re-enqueue chunks whose worker died or whose message was lost; fail a job whose chunk
    keeps killing its worker; assemble when every chunk is done."""
    batch = BatchJob.objects.select_related("job").filter(pk=job_id).first()
    if batch is None or batch.job.status != Job.Status.RUNNING or batch.chunks_total is None:
        return
    now = timezone.now()
    batch_chunks = BatchChunk.objects.filter(batch=batch)
    expired = batch_chunks.filter(status=BatchChunk.Status.RUNNING, lease_expires_at__lt=now)
    doomed = expired.filter(attempts__gte=batch.max_attempts).first()
    if doomed is not None:
        chunks.chunk_fail(
            chunk=doomed,
            error=(
                f"Chunk {doomed.index} (rows {doomed.row_start} to {doomed.row_end - 1}) was "
                f"started {doomed.attempts} times and never finished: "
                "a chunk keeps killing its worker (out of memory or a time limit?). "
                "Try smaller chunks "
                "(MLPLATFORM_BATCH_CHUNK_ROWS) or more memory per worker."
            ),
        )
        return
    for chunk in expired:
        reset = batch_chunks.filter(
            pk=chunk.pk, status=BatchChunk.Status.RUNNING, attempts=chunk.attempts
        ).update(status=BatchChunk.Status.PENDING, lease_expires_at=None, enqueued_at=now)
        if reset:
            logger.warning("Re-enqueueing %s: its worker's lease expired.", chunk)
            chunks.chunk_enqueue(chunk.pk)
    lost_before = now - timedelta(seconds=batch.lease_seconds)
    for chunk_id in batch_chunks.filter(
        status=BatchChunk.Status.PENDING, enqueued_at__lt=lost_before
    ).values_list("pk", flat=True):
        if batch_chunks.filter(pk=chunk_id, status=BatchChunk.Status.PENDING).update(
            enqueued_at=now
        ):
            chunks.chunk_enqueue(chunk_id)
    if not batch_chunks.exclude(status=BatchChunk.Status.DONE).exists():
        enqueue_after_commit(tasks.batch_job_assemble, job_id)


def batch_sweep_all() -> int:
    """The periodic sweeper: every running batch job is swept and gets a live watcher; a job
    whose plan message was lost is planned again. Returns how many jobs it looked at."""
    seen = 0
    now = timezone.now()
    for batch in BatchJob.objects.select_related("job").filter(
        job__status__in=[Job.Status.QUEUED, Job.Status.RUNNING]
    ):
        seen += 1
        if batch.job.status == Job.Status.QUEUED:
            if now - batch.job.created_at > timedelta(seconds=batch.lease_seconds):
                enqueue_after_commit(tasks.batch_job_plan, batch.pk)
            continue
        batch_job_sweep(job_id=batch.pk)
        if watch_stale(batch):
            batch_watch_start(job_id=batch.pk)
    return seen


def batch_recover() -> None:
    """Run when a worker starts: a job whose watcher died with a worker gets a new one."""
    for job_id in BatchJob.objects.filter(job__status=Job.Status.RUNNING).values_list(
        "pk", flat=True
    ):
        batch_watch_start(job_id=job_id)
    batch_sweep_all()
