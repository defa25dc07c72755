"""HTML pages for every job: list, detail with live progress, launch a batch scoring job."""

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseGone
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from jobs import batch, selectors, services
from jobs.forms import BatchJobForm, JobFilterForm
from jobs.models import Job
from mlplatform.errors import ApplicationError
from registry.models import ModelAlias, ModelVersion
from tenancy.services import PermissionDeniedError, write_check


def _job_or_404(request: HttpRequest, pk: int) -> Job:
    try:
        return selectors.job_get(job_id=pk, user=request.user)
    except ApplicationError as exc:
        raise Http404(exc.message) from exc


def _progress_context(job: Job) -> dict[str, Any]:
    context: dict[str, Any] = {"job": job}
    if job.kind == Job.Kind.BATCH_SCORING:
        context["chunks"] = selectors.batch_chunk_counts(job=job)
    return context


@login_required
def job_list(request: HttpRequest) -> HttpResponse:
    form = JobFilterForm(request.GET or None)
    kind = status = None
    if form.is_valid():
        kind = form.cleaned_data["kind"] or None
        status = form.cleaned_data["status"] or None
    page = Paginator(selectors.job_list(user=request.user, kind=kind, status=status), 25).get_page(
        request.GET.get("page")
    )
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "jobs/list.html",
        {
            "form": form,
            "page": page,
            "query": query.urlencode(),
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


def _versions_table() -> list[dict[str, Any]]:
    rows = []
    for model in selectors.batch_models():
        ready = ModelVersion.objects.filter(model=model, status=ModelVersion.Status.READY)
        aliases = ModelAlias.objects.filter(model=model).select_related("version")
        rows.append(
            {
                "name": model.name,
                "versions": list(ready.order_by("-version").values_list("version", flat=True)),
                "aliases": [f"{a.alias} → v{a.version.version}" for a in aliases],
            }
        )
    return rows


def _pinned(data: dict[str, Any]) -> Any:
    """The version the form's model, version and alias fields name (raises ApplicationError)."""
    return selectors.batch_version_pin(
        model_name=data["model"], version=data.get("version"), alias=data.get("alias") or None
    )


def _checked(form: BatchJobForm) -> tuple[Any, Any]:
    """Pin the version and read the upload's columns; returns (version, check) or raises."""
    data = form.cleaned_data
    version = _pinned(data)
    upload = data["input"]
    info = batch.input_inspect(stream=upload, filename=upload.name or "")
    check = batch.columns_check(
        version=version,
        columns=info.columns,
        id_columns=batch.names_parse(data["id_columns"]),
        as_of=data["as_of"],
    )
    return version, check


@login_required
def job_new(request: HttpRequest) -> HttpResponse:
    form = BatchJobForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            version = _pinned(data)
            upload = data["input"]
            job = batch.batch_job_submit(
                version=version,
                stream=upload,
                filename=upload.name or "",
                outputs=batch.outputs_parse(data["outputs"]),
                id_columns=batch.names_parse(data["id_columns"]),
                output_format=batch.format_parse(data["format"]),
                submitted_by=request.user,
                as_of=data["as_of"],
            )
        except ApplicationError as exc:
            field = exc.extra.get("field") if exc.extra else None
            form.add_error(field if field in form.fields else None, exc.message)
        else:
            messages.success(request, f"Job {job.pk} queued.")
            return redirect(job.get_absolute_url())
    return render(request, "jobs/new.html", {"form": form, "models": _versions_table()})


@login_required
@require_POST
def job_new_check(request: HttpRequest) -> HttpResponse:
    """htmx: the chosen file's columns against the chosen version's signature, before submit."""
    form = BatchJobForm(request.POST, request.FILES)
    context: dict[str, Any] = {}
    if not form.is_valid():
        context["problem"] = "Pick a model and a file to check its columns."
    else:
        try:
            context["version"], context["check"] = _checked(form)
        except ApplicationError as exc:
            context["problem"] = exc.message
    return render(request, "jobs/_check.html", context)
