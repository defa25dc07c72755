"""Reads for jobs."""

from typing import Any

from django.db.models import Count, QuerySet

from jobs.models import BatchChunk, Job
from mlplatform.api import ApplicationError, NotFoundError
from registry.models import ModelAlias, ModelVersion, RegisteredModel


def job_list(*, kind: str | None = None, status: str | None = None) -> QuerySet[Job]:
    jobs = Job.objects.select_related("submitted_by")
    if kind:
        jobs = jobs.filter(kind=kind)
    if status:
        jobs = jobs.filter(status=status)
    return jobs


def job_get(*, job_id: int) -> Job:
    try:
        return Job.objects.get(pk=job_id)
    except Job.DoesNotExist as exc:
        raise NotFoundError(f"No job with id {job_id}.") from exc


def batch_version_pin(
    *, model_name: str, version: int | str | None = None, alias: str | None = None
) -> ModelVersion:
    """The ready version a batch job will score with: a version number, an alias, or else alias
    `production`, else the highest ready version.

    Raises:
        NotFoundError: no such model, version or alias, or no ready version.
        ApplicationError: both a version and an alias, or a version that is not ready.
    """
    model = RegisteredModel.objects.filter(name=model_name).first()
    if model is None:
        raise NotFoundError(f"No model named {model_name!r}.", extra={"field": "model"})
    if version not in (None, "") and alias:
        raise ApplicationError(
            "Give either a version or an alias, not both.", extra={"field": "version"}
        )
    versions = ModelVersion.objects.select_related("model").filter(model=model)
    if version not in (None, ""):
        try:
            number = int(version)  # type: ignore[arg-type]
        except (TypeError, ValueError) as exc:
            raise ApplicationError(
                f"version: {version!r} is not a version number.", extra={"field": "version"}
            ) from exc
        found = versions.filter(version=number).first()
        if found is None:
            raise NotFoundError(
                f"{model_name} has no version {number}.", extra={"field": "version"}
            )
    elif alias:
        pointer = ModelAlias.objects.select_related("version").filter(model=model, alias=alias)
        first = pointer.first()
        if first is None:
            raise NotFoundError(f"{model_name} has no alias {alias!r}.", extra={"field": "alias"})
        found = versions.get(pk=first.version_id)
    else:
        production = ModelAlias.objects.filter(model=model, alias="production").first()
        found = (
            versions.get(pk=production.version_id)
            if production
            else versions.filter(status=ModelVersion.Status.READY).order_by("-version").first()
        )
        if found is None:
            raise NotFoundError(f"{model_name} has no ready version.", extra={"field": "model"})
    if found.status != ModelVersion.Status.READY:
        raise ApplicationError(
            f"{model_name} version {found.version} is {found.status}, not ready.",
            extra={"field": "version"},
        )
    return found


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
