"""Registry pages: the model list and a model's detail (versions, metrics, signature, aliases)."""

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from mlplatform.errors import ApplicationError, NotFoundError
from registry import selectors
from registry.models import ModelVersion


@login_required
def model_list(request: HttpRequest) -> HttpResponse:
    q = request.GET.get("q", "").strip()
    tag = request.GET.get("tag", "").strip()
    error = ""
    try:
        models = list(selectors.model_list(q=q, tag=tag).prefetch_related("versions"))
    except ApplicationError as exc:
        models, error = [], exc.message
    rows = []
    for model in models:
        versions = sorted(model.versions.all(), key=lambda v: v.version, reverse=True)
        rows.append(
            {
                "model": model,
                "latest": versions[0] if versions else None,
                "count": len(versions),
                "aliases": sorted(
                    ((a.alias, a.version.version) for a in model.aliases.all()),
                ),
            }
        )
    return render(
        request, "registry/model_list.html", {"rows": rows, "q": q, "tag": tag, "error": error}
    )


def _metric_table(versions: list[ModelVersion]) -> dict[str, Any]:
    names = sorted({key for v in versions for key in (v.metrics or {})})
    return {
        "names": names,
        "rows": [
            {"version": v, "values": [(v.metrics or {}).get(name) for name in names]}
            for v in versions
        ],
    }


@login_required
def model_detail(request: HttpRequest, name: str) -> HttpResponse:
    try:
        model = selectors.model_get(name=name)
    except NotFoundError as exc:
        raise Http404(exc.message) from exc
    versions = list(selectors.version_list(model=model))
    shown = next((v for v in versions if v.status == ModelVersion.Status.READY), None)
    aliases = list(selectors.alias_list(model=model))
    alias_of = {a.alias: a.version.version for a in aliases}
    if "production" in alias_of:
        shown = next((v for v in versions if v.version == alias_of["production"]), shown)
    context = {
        "model": model,
        "versions": versions,
        "aliases": aliases,
        "history": list(selectors.alias_history(model=model)),
        "metrics": _metric_table(versions),
        "shown": shown,
    }
    return render(request, "registry/model_detail.html", context)


@login_required
def version_row(request: HttpRequest, name: str, version: int) -> HttpResponse:
    """One row of the versions table; htmx polls it while the version is pending."""
    try:
        model = selectors.model_get(name=name)
        found = selectors.version_get(model=model, version=version)
    except NotFoundError as exc:
        raise Http404(exc.message) from exc
    return render(request, "registry/_version_row.html", {"model": model, "v": found})
