"""Reads for jobs."""

from typing import Any

from django.db.models import DurationField, ExpressionWrapper, F, Q, QuerySet

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


JOB_SORTS = {
    "created": ("created_at", "id"),
    "kind": ("kind", "-created_at", "-id"),
    "status": ("status", "-created_at", "-id"),
    "duration": ("duration", "-created_at", "-id"),
}


def job_list(
    *,
    user: Any,
    kind: str | None = None,
    status: str | None = None,
    q: str | None = None,
    sort: str | None = None,
) -> QuerySet[Job]:
    """The jobs `user` may see, filtered by kind, status and text in the description (or the
    id), in `sort` order: a key of JOB_SORTS, `-` before it reverses; newest first by default.
    """
    jobs = jobs_visible(user=user).select_related("submitted_by", "owner")
    if kind:
        jobs = jobs.filter(kind=kind)
    if status:
        jobs = jobs.filter(status=status)
    if q:
        match = Q(description__icontains=q)
        if q.lstrip("#").isdigit():
            match |= Q(pk=int(q.lstrip("#")))
        jobs = jobs.filter(match)
    key = (sort or "-created").lstrip("-")
    if key not in JOB_SORTS:
        return jobs
    order = JOB_SORTS[key]
    if (sort or "-created").startswith("-"):
        order = tuple(o[1:] if o.startswith("-") else f"-{o}" for o in order)
    if key == "duration":
        jobs = jobs.annotate(
            duration=ExpressionWrapper(
                F("finished_at") - F("started_at"), output_field=DurationField()
            )
        )
        first, *rest = order
        field = first.lstrip("-")
        ordered = (
            F(field).desc(nulls_last=True)
            if first.startswith("-")
            else F(field).asc(nulls_last=True)
        )
        return jobs.order_by(ordered, *rest)
    return jobs.order_by(*order)


def job_get(*, job_id: int, user: Any) -> Job:
    """A job `user` may see; another team's job is as missing as one that never existed.

    Raises:
        NotFoundError: no such job visible to `user`.
    """
    try:
        return jobs_visible(user=user).get(pk=job_id)
    except Job.DoesNotExist as exc:
        raise NotFoundError(f"No job with id {job_id}.") from exc
