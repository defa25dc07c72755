"""The batch scoring form: `/jobs/new` (in the `jobs` URL namespace, see mlplatform/urls.py) and
the column check it runs as a file is chosen."""

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from batch import inputs, selectors, submit
from batch.forms import BatchJobForm
from mlplatform.errors import ApplicationError
from registry.models import ModelAlias, ModelVersion


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
    info = inputs.input_inspect(stream=upload, filename=upload.name or "")
    check = inputs.columns_check(
        version=version,
        columns=info.columns,
        id_columns=inputs.names_parse(data["id_columns"]),
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
            job = submit.batch_job_submit(
                version=version,
                stream=upload,
                filename=upload.name or "",
                outputs=inputs.outputs_parse(data["outputs"]),
                id_columns=inputs.names_parse(data["id_columns"]),
                output_format=inputs.format_parse(data["format"]),
                submitted_by=request.user,
                as_of=data["as_of"],
            )
        except ApplicationError as exc:
            field = exc.extra.get("field") if exc.extra else None
            form.add_error(field if field in form.fields else None, exc.message)
        else:
            # Tagged with the job, so its page's progress polling can keep the banner current.
            messages.success(request, f"Job {job.pk} queued.", extra_tags=f"job-{job.pk}")
            return redirect(job.get_absolute_url())
    return render(request, "batch/new.html", {"form": form, "models": _versions_table()})


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
    return render(request, "batch/_check.html", context)
