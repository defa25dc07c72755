"""Reads for jobs."""

from django.db.models import QuerySet

from jobs.models import Job
from mlplatform.api import NotFoundError


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
