"""Registry pages: the model list, a model's detail (versions, metrics, signature, aliases and
their moves), a version's page, and versions compared."""

from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse

from mlplatform import charts
from mlplatform.errors import (
    ApplicationError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
)
from registry import selectors, services
from registry.models import ModelVersion, RegisteredModel
from tenancy.services import read_check, write_check

MODELS_PER_PAGE = 25


@login_required
def model_list(request: HttpRequest) -> HttpResponse:
    """Models, searchable by name, description and tag, sortable (`?sort=`), paginated
    (`?page=`); archived models only with `?archived=1`."""
    q = request.GET.get("q", "").strip()
    tag = request.GET.get("tag", "").strip()
    sort = request.GET.get("sort", "name")
    sort = sort if sort in selectors.MODEL_SORTS else "name"
    archived = request.GET.get("archived") == "1"
    error = ""
    try:
        models = selectors.model_page_list(q=q, tag=tag, archived=archived, sort=sort)
        page = Paginator(models, MODELS_PER_PAGE).get_page(request.GET.get("page"))
    except ApplicationError as exc:
        page, error = (
            Paginator(RegisteredModel.objects.none(), MODELS_PER_PAGE).get_page(1),
            (exc.message),
        )
    query = {"q": q, "tag": tag, "archived": "1" if archived else ""}
    return render(
        request,
        "registry/model_list.html",
        {
            "page": page,
            "q": q,
            "tag": tag,
            "sort": sort,
            "archived": archived,
            "error": error,
            # The links keep the search; sorting goes back to page 1.
            "query": urlencode({k: v for k, v in query.items() if v}),
            "sorts": _sort_links(sort),
        },
    )


def _sort_links(current: str) -> dict[str, dict[str, str]]:
    """Per sortable column: the ?sort= its header links to (the reverse when it is the current
    one) and the arrow to show."""
    links = {}
    for column in ("name", "updated", "versions"):
        ascending = current == column
        descending = current == f"-{column}"
        links[column] = {
            "sort": f"-{column}" if ascending else column,
            "arrow": "▲" if ascending else "▼" if descending else "",
        }
    return links


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
    aliases = list(selectors.alias_list(model=model))
    context = {
        "model": model,
        "versions": versions,
        "aliases": aliases,
        "history": list(selectors.alias_history(model=model)),
        "metrics": _metric_table(versions),
        "ready_numbers": [v.version for v in versions if v.status == ModelVersion.Status.READY],
        "rollbacks": selectors.alias_rollbacks(model=model),
        "alias_suggestions": sorted({"production", "staging"} | {a.alias for a in aliases}),
        "may_move_aliases": request.user.has_perm("registry.change_modelalias", model),
        "may_read_data": request.user.has_perm("registry.read_registeredmodel_data", model),
        "archived": selectors.model_is_archived(model),
        **_shown(versions, aliases),
    }
    return render(request, "registry/model_detail.html", context)


def _shown(versions: list[ModelVersion], aliases: list[Any]) -> dict[str, Any]:
    """The version whose signature the model page shows: production's, else the newest ready."""
    production = next((a.version.version for a in aliases if a.alias == "production"), None)
    ready = [v for v in versions if v.status == ModelVersion.Status.READY]
    shown = next((v for v in ready if v.version == production), None)
    pending = any(v.status == ModelVersion.Status.PENDING for v in versions)
    shown = shown or next(iter(ready), None)
    return {
        "shown": shown,
        "shown_is_production": shown is not None and shown.version == production,
        # Until a version is shown, or while one may still turn ready, the section refreshes.
        "signature_polls": shown is None or pending,
    }


@login_required
def version_row(request: HttpRequest, name: str, version: int) -> HttpResponse:
    """One row of the versions table; htmx polls it while the version is pending."""
    try:
        model = selectors.model_get(name=name)
        found = selectors.version_get(model=model, version=version)
    except NotFoundError as exc:
        raise Http404(exc.message) from exc
    return render(request, "registry/_version_row.html", {"model": model, "v": found})


def _model_or_404(name: str) -> RegisteredModel:
    try:
        return selectors.model_get(name=name)
    except NotFoundError as exc:
        raise Http404(exc.message) from exc


def model_for_reader(request: HttpRequest, name: str) -> RegisteredModel:
    """The model, for a page showing its data (evaluations, traffic, monitoring figures): 404
    when there is none, 403 when the user may not read its data (tenancy rules)."""
    model = _model_or_404(name)
    try:
        read_check(user=request.user, obj=model)
    except PermissionDeniedError as exc:
        raise PermissionDenied(exc.message) from exc
    return model


@login_required
def version_detail(request: HttpRequest, name: str, version: int) -> HttpResponse:
    """One version: signature, metrics reported and measured, libraries, input example, engine
    and sandbox facts, lineage, its prediction log (for those who may read it)."""
    model = _model_or_404(name)
    try:
        page = selectors.version_page(model=model, version=version, user=request.user)
    except NotFoundError as exc:
        raise Http404(exc.message) from exc
    return render(
        request,
        "registry/version_detail.html",
        {"model": model, "page": page, "v": page.version},
    )


@login_required
def versions_compare(request: HttpRequest, name: str) -> HttpResponse:
    """`?v=1&v=3`: versions side by side, the best value of each metric highlighted, a chart of
    one metric (`?metric=`) across them, and the signature differences."""
    model = _model_or_404(name)
    numbers = [int(n) for n in request.GET.getlist("v") if n.strip().isdigit()]
    comparison = selectors.versions_compare(model=model, numbers=numbers)
    metric = request.GET.get("metric", "")
    if metric not in comparison.metric_names:
        metric = comparison.metric_names[0] if comparison.metric_names else ""
    chart = None
    if metric:
        chart = charts.line_chart(
            {
                metric: [
                    (v.version, (v.metrics or {}).get(metric))
                    for v in sorted(comparison.versions, key=lambda v: v.version)
                ]
            },
            title=f"{metric} by version",
            x_label="version",
            y_label=metric,
            x_integer=True,
        )
    return render(
        request,
        "registry/compare.html",
        {
            "model": model,
            "cmp": comparison,
            "metric": metric,
            "chart": chart,
            "lower_is_better": selectors.metric_lower_is_better(metric),
            "numbers": [v.version for v in comparison.versions],
            "all_versions": list(selectors.version_list(model=model)),
        },
    )


class AliasForm(forms.Form):
    ACTIONS = (("set", "point the alias at a version"), ("delete", "delete the alias"))
    action = forms.ChoiceField(choices=ACTIONS, initial="set")
    alias = forms.SlugField(max_length=64)
    version = forms.IntegerField(min_value=1, required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("action") == "set" and data.get("version") is None:
            self.add_error("version", "Choose the version the alias should point at.")
        return data


ALIAS_PERMS = {"set": "registry.change_modelalias", "delete": "registry.delete_modelalias"}


@login_required
def alias_change(request: HttpRequest, name: str) -> HttpResponse:
    """Move, roll back or delete an alias in two steps: GET shows what will change and a
    confirmation form; POST with `confirm` does it through the registry's services (the same
    rules and checks as the API), then back to the model page. A move the promotion gate
    refuses shows the failed rules; a user allowed to override it may confirm again with a
    reason."""
    model = _model_or_404(name)
    form = AliasForm(request.POST if request.method == "POST" else request.GET)
    error = ""
    failed: list[str] = []
    gated = False
    current = None
    status = 200
    if form.is_valid():
        action, alias = form.cleaned_data["action"], form.cleaned_data["alias"]
        try:
            write_check(user=request.user, perm=ALIAS_PERMS[action], obj=model)
        except PermissionDeniedError as exc:
            raise PermissionDenied(exc.message) from exc
        current = next((a for a in selectors.alias_list(model=model) if a.alias == alias), None)
        try:
            if action == "set":
                services.alias_check(
                    model=model, alias=alias, version_number=form.cleaned_data["version"]
                )
            elif current is None:
                raise NotFoundError(f"{model.name} has no alias {alias!r}.")
            if request.method == "POST" and request.POST.get("confirm"):
                if action == "set":
                    services.alias_set(
                        model=model,
                        alias=alias,
                        version_number=form.cleaned_data["version"],
                        user=request.user,
                        reason=request.POST.get("override_reason", "")[:2000],
                    )
                else:
                    services.alias_delete(model=model, alias=alias, user=request.user)
                return HttpResponseRedirect(
                    reverse("registry:model-detail", args=[model.name]) + "#aliases"
                )
        except ConflictError as exc:
            # The promotion gate's refusals (409) carry the rules that failed (none while the
            # version waits for its evaluation); other conflicts are form errors (400).
            gated = "failed" in exc.extra
            error, status = exc.message, 409 if gated else 400
            failed = list(exc.extra.get("failed") or [])
        except ApplicationError as exc:
            error, status = exc.message, 400
    else:
        status = 400
    return render(
        request,
        "registry/alias_confirm.html",
        {
            "model": model,
            "form": form,
            "error": error,
            "failed": failed,
            # Refused by the promotion gate: who may override it confirms again with a reason.
            "may_override": gated and request.user.has_perm("rollout.override_gate"),
            "current": current,
            "history": list(selectors.alias_history(model=model, limit=10)),
        },
        status=status,
    )
