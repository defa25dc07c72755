"""Writes for jobs: every background operation reports its lifecycle and progress here."""

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, cast

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from jobs import signals
from jobs.models import Job
from mlplatform.errors import ApplicationError, ConflictError

logger = logging.getLogger(__name__)


class JobStopped(Exception):
    """The job was cancelled (or failed elsewhere) while its work ran: the work commits nothing."""


def job_create(
    *,
    kind: str,
    description: str = "",
    submitted_by: Any = None,
    total: int | None = None,
    unit: str = "rows",
    params: dict[str, Any] | None = None,
    owner: Any = None,
) -> Job:
    """Record a queued job, owned by `owner` (a team) or else by the submitter's first team."""
    user = submitted_by if getattr(submitted_by, "is_authenticated", False) else None
    if owner is None and user is not None:
        owner = user.groups.order_by("name").first()
    return Job.objects.create(
        kind=kind,
        description=description[:300],
        submitted_by=user,
        owner=owner,
        progress_total=total,
        progress_unit=unit,
        params=params or {},
    )


def job_start(*, job_id: int, total: int | None = None) -> bool:
    """Mark a queued job running; returns False if it was already finished (e.g. cancelled)."""
    updates: dict[str, Any] = {"status": Job.Status.RUNNING, "started_at": timezone.now()}
    if total is not None:
        updates["progress_total"] = total
    started = Job.objects.filter(pk=job_id, status=Job.Status.QUEUED).update(**updates)
    if started:
        return True
    return Job.objects.filter(pk=job_id, status=Job.Status.RUNNING).exists()


def job_set_total(*, job_id: int, total: int) -> None:
    Job.objects.filter(pk=job_id).update(progress_total=total, updated_at=timezone.now())


def job_advance(*, job_id: int, done: int) -> None:
    """Add `done` units to the job's progress (atomic, safe from many workers)."""
    Job.objects.filter(pk=job_id).update(
        progress_done=F("progress_done") + done, updated_at=timezone.now()
    )


def job_set_progress(*, job_id: int, done: int, total: int | None = None) -> None:
    updates: dict[str, Any] = {"progress_done": done, "updated_at": timezone.now()}
    if total is not None:
        updates["progress_total"] = total
    Job.objects.filter(pk=job_id).update(**updates)


def job_succeed(*, job_id: int, result: dict[str, Any] | None = None) -> None:
    """Mark a running job succeeded (a cancelled job stays cancelled)."""
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job_id)
        if job.is_finished:
            return
        job.status = Job.Status.SUCCEEDED
        job.finished_at = timezone.now()
        if job.progress_total is not None:
            job.progress_done = job.progress_total
        if result:
            job.result = {**job.result, **result}
        job.save(update_fields=["status", "finished_at", "progress_done", "result", "updated_at"])


def job_lock_running(*, job_id: int) -> Job:
    """Lock a running job's row for the caller's transaction, so a cancel waits for it.

    Raises:
        JobStopped: the job is no longer running (cancelled, failed, or gone).
    """
    job = Job.objects.select_for_update().filter(pk=job_id).first()
    if job is None or job.status != Job.Status.RUNNING:
        raise JobStopped(f"Job {job_id} is no longer running.")
    return job


def job_fail(*, job_id: int, error: str) -> None:
    """Mark a job failed with a message a person can act on; its partial files are removed."""
    failed = (
        Job.objects.filter(pk=job_id)
        .exclude(status__in=Job.FINISHED)
        .update(
            status=Job.Status.FAILED,
            error=error[:10_000],
            finished_at=timezone.now(),
            updated_at=timezone.now(),
        )
    )
    if failed:
        transaction.on_commit(lambda: job_files_remove(job_id=job_id))


@contextmanager
def job_running(*, job_id: int, total: int | None = None) -> Iterator[Job | None]:
    """Run a block as the job's work: start the job, yield it, and record how the work ended.

    Yields None (and the block should do nothing) when the job is no longer queued or running,
    e.g. it was cancelled before its turn. Inside the block:

    - `JobStopped` (the job was cancelled while the work ran) ends the block quietly: the work
      committed nothing, and the job already says cancelled;
    - an `ApplicationError` fails the job with its message (a person's mistake, not a bug);
    - any other exception fails the job with its type and message, and is raised again for the
      worker's log.

    The block marks the job succeeded itself (`job_succeed`, with its result), usually in the
    transaction that commits the work, so a job never says succeeded for work that was rolled back.
    """
    if not job_start(job_id=job_id, total=total):
        yield None
        return
    try:
        yield Job.objects.get(pk=job_id)
    except JobStopped:
        pass  # cancelled while it ran: it committed nothing, and says so already
    except ApplicationError as exc:
        job_fail(job_id=job_id, error=exc.message)
    except Exception as exc:
        # Not a user error: recorded for the person watching the job, then raised for the logs.
        job_fail(job_id=job_id, error=f"{type(exc).__name__}: {exc}")
        raise


def job_cancel(*, job: Job) -> Job:
    """Cancel a queued or running job. Raises ConflictError if it already finished."""
    with transaction.atomic():
        updated = (
            Job.objects.filter(pk=job.pk)
            .exclude(status__in=Job.FINISHED)
            .update(
                status=Job.Status.CANCELLED, finished_at=timezone.now(), updated_at=timezone.now()
            )
        )
        job.refresh_from_db()
        if not updated:
            raise ConflictError(f"Job {job.pk} already {job.status}; it cannot be cancelled.")
        # The kind's own state (e.g. batch scoring's queued chunks) is stopped by its app.
        signals.job_cancelled.send(sender=Job, job=job)
    job_id = job.pk
    transaction.on_commit(lambda: job_files_remove(job_id=job_id))
    return job


def job_files_remove(*, job_id: int) -> int:
    """Delete what a failed or cancelled job left in storage: what its kind's work left (through
    `signals.job_leftovers_remove`, e.g. batch chunk parts and a staged input) and a partial
    output. Idempotent; returns how many files were deleted.

    Work that finishes after this stores nothing that counts (it sees the job is over and deletes
    its own files), and the periodic expiry task calls this again for stragglers.
    """
    job = Job.objects.filter(pk=job_id).first()
    if job is None or job.status not in (Job.Status.FAILED, Job.Status.CANCELLED):
        return 0
    deleted = sum(
        cast(int, count or 0) for _, count in signals.job_leftovers_remove.send(sender=Job, job=job)
    )
    if job.output:
        deleted += files_delete([job.output.name])
        Job.objects.filter(pk=job_id).update(output="", output_content_type="")
    return deleted


def job_outputs_expire(*, now: Any = None) -> int:
    """Delete the outputs of jobs finished more than MLPLATFORM_JOB_OUTPUT_RETENTION_DAYS ago
    and mark them expired (their download answers 410); also removes what failed or cancelled
    jobs left behind. Returns how many jobs' outputs expired."""
    now = now or timezone.now()
    ended = Job.objects.filter(status__in=[Job.Status.FAILED, Job.Status.CANCELLED])
    leftovers = set(ended.exclude(output="").values_list("pk", flat=True))
    for _, job_ids in signals.job_leftovers_find.send(sender=Job):
        leftovers.update(cast(Iterable[int], job_ids or ()))
    for job_id in sorted(leftovers):
        job_files_remove(job_id=job_id)
    days = float(settings.MLPLATFORM_JOB_OUTPUT_RETENTION_DAYS)
    if days <= 0:
        return 0
    expired = 0
    cutoff = now - timedelta(days=days)
    for job in Job.objects.filter(
        status=Job.Status.SUCCEEDED, finished_at__lt=cutoff, output_expired_at__isnull=True
    ).exclude(output=""):
        files_delete([job.output.name])
        expired += Job.objects.filter(pk=job.pk, output_expired_at__isnull=True).update(
            output="", output_expired_at=now, updated_at=now
        )
    return expired


def files_delete(names: list[str]) -> int:
    """Delete stored files, logging (not raising) the ones storage refuses; returns the count."""
    deleted = 0
    for name in names:
        try:
            default_storage.delete(name)
            deleted += 1
        except OSError:
            logger.warning("could not delete %s", name, exc_info=True)
    return deleted
