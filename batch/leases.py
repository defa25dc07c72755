"""Leases on chunks: a worker claims a chunk for a time, renews it between blocks, and gives it
back after a transient error. A lease that expires (the worker died) lets another worker take the
chunk over (`batch.watch` finds those)."""

from contextlib import suppress
from datetime import timedelta

from django.db import InterfaceError, OperationalError
from django.db.models import F, Q
from django.utils import timezone

from batch.models import BatchChunk
from jobs.models import Job

# Retried with backoff by the chunk task; anything else fails the job with its message.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    OperationalError,
    InterfaceError,
    ConnectionError,
    TimeoutError,
)


class LeaseLost(Exception):
    """Another worker took this chunk over (our lease expired); its result will count."""


def claim(chunk_id: int, *, worker: str) -> BatchChunk | None:
    """Take a pending chunk, or a running one whose lease expired; None if someone else has it."""
    chunk = BatchChunk.objects.select_related("batch").filter(pk=chunk_id).first()
    if chunk is None:
        return None  # its job was deleted
    batch = chunk.batch
    now = timezone.now()
    claimable = Q(status=BatchChunk.Status.PENDING) | Q(
        status=BatchChunk.Status.RUNNING, lease_expires_at__lt=now
    )
    claimed = (
        BatchChunk.objects.filter(claimable, pk=chunk_id, attempts__lt=batch.max_attempts)
        .filter(batch__job__status=Job.Status.RUNNING)
        .update(
            status=BatchChunk.Status.RUNNING,
            attempts=F("attempts") + 1,
            claimed_by=worker[:200],
            claimed_at=now,
            lease_expires_at=now + timedelta(seconds=batch.lease_seconds),
        )
    )
    if not claimed:
        return None
    chunk.refresh_from_db()
    return chunk


def renew(chunk: BatchChunk) -> None:
    """Extend our lease between blocks; stop if the job ended or another worker took over."""
    renewed = BatchChunk.objects.filter(
        pk=chunk.pk,
        status=BatchChunk.Status.RUNNING,
        attempts=chunk.attempts,
        claimed_by=chunk.claimed_by,
        batch__job__status=Job.Status.RUNNING,
    ).update(lease_expires_at=timezone.now() + timedelta(seconds=chunk.batch.lease_seconds))
    if not renewed:
        raise LeaseLost(f"chunk {chunk.index} of job {chunk.batch_id}")


def release(chunk: BatchChunk) -> None:
    """Give a chunk back after a transient error; that attempt does not count."""
    with suppress(*TRANSIENT_ERRORS):
        BatchChunk.objects.filter(
            pk=chunk.pk, status=BatchChunk.Status.RUNNING, attempts=chunk.attempts
        ).update(
            status=BatchChunk.Status.PENDING,
            attempts=max(0, chunk.attempts - 1),
            lease_expires_at=None,
            enqueued_at=timezone.now(),
        )
