"""Batch scoring's answers to the job tracker's signals (connected in `BatchConfig.ready()`)."""

from typing import Any

from django.db.models import Exists, OuterRef, Q
from django.dispatch import receiver

from batch import selectors
from batch.models import BatchChunk, BatchJob
from jobs import services as job_services
from jobs import signals
from jobs.models import Job


@receiver(signals.job_cancelled, dispatch_uid="batch.chunks_cancel")
def chunks_cancel(*, job: Job, **_: Any) -> None:
    """Queued chunks of a cancelled batch job never start; running ones see the job's status at
    their next block (`leases.renew`) and stop."""
    if job.kind != Job.Kind.BATCH_SCORING:
        return
    BatchChunk.objects.filter(batch_id=job.pk, status=BatchChunk.Status.PENDING).update(
        status=BatchChunk.Status.CANCELLED
    )


@receiver(signals.job_leftovers_remove, dispatch_uid="batch.leftovers_remove")
def leftovers_remove(*, job: Job, **_: Any) -> int:
    """Delete a failed or cancelled batch job's chunk output parts and staged input."""
    chunks = BatchChunk.objects.filter(batch_id=job.pk).exclude(output_part="")
    names = list(chunks.values_list("output_part", flat=True))
    staged = BatchJob.objects.filter(pk=job.pk).exclude(staged_input="")
    names.extend(staged.values_list("staged_input", flat=True))
    deleted = job_services.files_delete(names)
    chunks.update(output_part="")
    staged.update(staged_input="")
    return deleted


@receiver(signals.job_leftovers_find, dispatch_uid="batch.leftovers_find")
def leftovers_find(**_: Any) -> list[int]:
    """Failed or cancelled batch jobs that still hold chunk parts or a staged input."""
    parts = BatchChunk.objects.filter(batch_id=OuterRef("pk")).exclude(output_part="")
    ended = BatchJob.objects.filter(job__status__in=[Job.Status.FAILED, Job.Status.CANCELLED])
    return list(ended.filter(Q(Exists(parts)) | ~Q(staged_input="")).values_list("pk", flat=True))


@receiver(signals.job_page_context, dispatch_uid="batch.page_context")
def page_context(*, job: Job, **_: Any) -> dict[str, Any] | None:
    """A batch job's page shows how many chunks are in each state, and on how many workers."""
    if job.kind != Job.Kind.BATCH_SCORING:
        return None
    context: dict[str, Any] = {"chunks": selectors.batch_chunk_counts(job=job)}
    batch = BatchJob.objects.select_related("version__model").filter(job=job).first()
    if batch is not None:  # the page links back to what the job scored with
        version = batch.version
        context["subject"] = {
            "label": f"{version.model.name} version {version.version}",
            "url": version.get_absolute_url(),
        }
    return context
