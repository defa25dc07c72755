"""Reads for jobs."""

from typing import Any

from django.db.models import Q, QuerySet

from jobs.models import Job
from mlplatform.errors import NotFoundError
from tenancy.services import readable_filter


def jobs_visible(*, user: Any) -> QuerySet[Job]:
    """The jobs `user` may see: their own, their teams', those granted to a team of theirs
    (tenancy.Grant), or all for a superuser."""
    jobs = Job.objects.all()
    if getattr(user, "is_superuser", False):
        return jobs
    if not getattr(user, "is_authenticated", False):
        return jobs.none()
    return jobs.filter(Q(submitted_by=user) | readable_filter(user=user, model=Job))


def job_list(*, user: Any, kind: str | None = None, status: str | None = None) -> QuerySet[Job]:
    jobs = jobs_visible(user=user).select_related("submitted_by", "owner")
    if kind:
        jobs = jobs.filter(kind=kind)
    if status:
        jobs = jobs.filter(status=status)
    return jobs


def job_get(*, job_id: int, user: Any) -> Job:
    """A job `user` may see; another team's job is as missing as one that never existed.

    Raises:
        NotFoundError: no such job visible to `user`.
    """
    try:
        return jobs_visible(user=user).get(pk=job_id)
    except Job.DoesNotExist as exc:
        raise NotFoundError(f"No job with id {job_id}.") from exc
