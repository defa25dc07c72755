"""HTML pages for every job: list, detail with live progress, cancel, download.

The batch scoring form (`/jobs/new`) is batch's (batch/views.py), in the same `jobs` URL
namespace (mlplatform/urls.py)."""

from typing import Any, cast

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseGone
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from jobs import selectors, services, signals
from jobs.forms import JobFilterForm
from jobs.models import Job
from mlplatform.errors import ApplicationError
from tenancy.services import PermissionDeniedError, write_check


def _job_or_404(request: HttpRequest, pk: int) -> Job:
    try:
        return selectors.job_get(job_id=pk, user=request.user)
    except ApplicationError as exc:
        raise Http404(exc.message) from exc


def _progress_context(job: Job) -> dict[str, Any]:
    # The banner the submit left ("Job 7 queued.") is shown as the job's current status.
    context: dict[str, Any] = {"job": job, "banner_tag": f"job-{job.pk}"}
    # The app whose kind this job is adds its details (e.g. batch scoring's chunk counts).
    for _, extra in signals.job_page_context.send(sender=Job, job=job):
        context.update(cast(dict[str, Any], extra or {}))
    return context


@login_required
def job_list(request: HttpRequest) -> HttpResponse:
    form = JobFilterForm(request.GET or None)
    kind = status = q = None
    if form.is_valid():
        kind = form.cleaned_data["kind"] or None
        status = form.cleaned_data["status"] or None
        q = form.cleaned_data["q"] or None
    sort = request.GET.get("sort", "-created")
    jobs = selectors.job_list(user=request.user, kind=kind, status=status, q=q, sort=sort)
    page = Paginator(jobs, 25).get_page(request.GET.get("page"))
    sort_query = request.GET.copy()
    sort_query.pop("page", None)
    sort_query.pop("sort", None)
    page_query = request.GET.copy()
    page_query.pop("page", None)
    return render(
        request,
        "jobs/list.html",
        {
            "form": form,
            "page": page,
            "sort": sort,
            # sort links keep the filters; page links keep the filters and the order
            "sort_query": sort_query.urlencode(),
            "query": page_query.urlencode(),
            # The table refreshes itself while a job on this page is still moving.
            "live": any(not job.is_finished for job in page),
        },
    )


@login_required
def job_detail(request: HttpRequest, pk: int) -> HttpResponse:
    job = _job_or_404(request, pk)
    return render(request, "jobs/detail.html", _progress_context(job))


@login_required
def job_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """The progress fragment the detail page polls (htmx) until the job finishes."""
    job = _job_or_404(request, pk)
    return render(request, "jobs/_progress.html", _progress_context(job))


@login_required
@require_POST
def job_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    job = _job_or_404(request, pk)
    try:
        write_check(user=request.user, perm="jobs.cancel_job", obj=job)  # a grant only reads
    except PermissionDeniedError as exc:
        raise PermissionDenied(exc.message) from exc
    try:
        services.job_cancel(job=job)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Job {job.pk} cancelled.")
    return redirect(job.get_absolute_url())


@login_required
def job_download(request: HttpRequest, pk: int) -> FileResponse | HttpResponseGone:
    job = _job_or_404(request, pk)
    if job.output_expired_at is not None:
        return HttpResponseGone(f"The output of job {pk} expired and was deleted.")
    if not job.output:
        raise Http404(f"Job {pk} has no output.")
    return FileResponse(
        job.output.open("rb"),
        as_attachment=True,
        filename=job.output.name.rsplit("/", 1)[-1],
        content_type=job.output_content_type or "application/octet-stream",
    )
