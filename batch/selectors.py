"""Reads for batch scoring: the version a job pins, the models it can use, its chunks' states."""

from typing import Any

from django.db.models import Count, QuerySet

from batch.models import BatchChunk
from jobs.models import Job
from mlplatform.errors import ApplicationError
from registry import selectors as registry_selectors
from registry.models import ModelVersion, RegisteredModel


def batch_version_pin(
    *, model_name: str, version: int | str | None = None, alias: str | None = None
) -> ModelVersion:
    """The ready version a batch job will score with (`registry.selectors.version_resolve`);
    `version` may come from a form as text.

    Raises:
        NotFoundError: no such model, version or alias, or no ready version.
        ApplicationError: not a version number, both a version and an alias, or a version that
            is not ready.
    """
    number = None
    if version not in (None, ""):
        try:
            number = int(version)  # type: ignore[arg-type]
        except (TypeError, ValueError) as exc:
            raise ApplicationError(
                f"version: {version!r} is not a version number.", extra={"field": "version"}
            ) from exc
    return registry_selectors.version_resolve(
        model_name=model_name, version=number, alias=alias or None, not_ready=ApplicationError
    )


def batch_models() -> QuerySet[RegisteredModel]:
    """Models a batch job can score with (at least one ready version)."""
    return (
        RegisteredModel.objects.filter(versions__status=ModelVersion.Status.READY)
        .distinct()
        .order_by("name")
    )


def batch_chunk_counts(*, job: Job) -> dict[str, Any]:
    """How many chunks of a batch job are in each state, and on how many workers."""
    chunks = BatchChunk.objects.filter(batch_id=job.pk)
    counts = {row["status"]: row["n"] for row in chunks.values("status").annotate(n=Count("id"))}
    workers = chunks.exclude(claimed_by="").values("claimed_by").distinct().count()
    return {
        "total": sum(counts.values()),
        **{status: counts.get(status, 0) for status in BatchChunk.Status.values},
        "workers": workers,
    }
