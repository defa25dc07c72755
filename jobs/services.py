"""Writes for jobs: every background operation reports its lifecycle and progress here."""

from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from jobs.models import BatchChunk, Job
from mlplatform.api import ConflictError


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


def job_fail(*, job_id: int, error: str) -> None:
    """Mark a job failed with a message a person can act on."""
    Job.objects.filter(pk=job_id).exclude(status__in=Job.FINISHED).update(
        status=Job.Status.FAILED,
        error=error[:10_000],
        finished_at=timezone.now(),
        updated_at=timezone.now(),
    )


def job_cancel(*, job: Job) -> Job:
    """Cancel a queued or running job. Raises ConflictError if it already finished."""
    updated = (
        Job.objects.filter(pk=job.pk)
        .exclude(status__in=Job.FINISHED)
        .update(status=Job.Status.CANCELLED, finished_at=timezone.now(), updated_at=timezone.now())
    )
    job.refresh_from_db()
    if not updated:
        raise ConflictError(f"Job {job.pk} already {job.status}; it cannot be cancelled.")
    if job.kind == Job.Kind.BATCH_SCORING:
        # Queued chunks never start; running ones see the status at their next block.
        BatchChunk.objects.filter(batch_id=job.pk, status=BatchChunk.Status.PENDING).update(
            status=BatchChunk.Status.CANCELLED
        )
    return job
