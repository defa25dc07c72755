"""Catalog pages: the catalog list, pages for entities, sources, groups, features and services
(each with its lineage drawn), and the training-set form."""

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from features import lineage, offline, online, selectors, services, training_sets
from features.forms import TrainingSetForm
from features.lineage import graph_svg
from features.models import FeatureService
from mlplatform import charts
from mlplatform.errors import ApplicationError, NotFoundError
from tenancy.services import PermissionDeniedError, read_check

CATALOG_FILTERS = ("q", "entity", "task", "tag", "owner")


def _query_without(request: HttpRequest, *keys: str) -> str:
    query = request.GET.copy()
    for key in keys:
        query.pop(key, None)
    return query.urlencode()


@login_required
def catalog(request: HttpRequest) -> HttpResponse:
    params = {key: request.GET.get(key, "").strip() for key in CATALOG_FILTERS}
    sort = request.GET.get("sort", "group")
    page = selectors.catalog_page(
        filters={k: v or None for k, v in params.items()}, sort=sort, page=request.GET.get("page")
    )
    return render(
        request,
        "features/catalog.html",
        {
            "page": page,
            "params": params,
            "sort": sort,
            # links that change the order keep the filters; page links keep the order too
            "sort_query": _query_without(request, "page", "sort"),
            "page_query": _query_without(request, "page"),
            "choices": selectors.filter_choices(),
            "services": FeatureService.objects.all(),
        },
    )


def _or_404(get: Any, **kwargs: Any) -> Any:
    try:
        return get(**kwargs)
    except NotFoundError as exc:
        raise Http404(exc.message) from exc


@login_required
def group_detail(request: HttpRequest, name: str) -> HttpResponse:
    group = _or_404(selectors.group_get, name=name)
    summary = offline.group_summary(group=group)
    newest = summary.get("newest_available")
    services_using = selectors.services_of(features=group.features.all())
    return render(
        request,
        "features/group_detail.html",
        {
            "group": group,
            "features": group.features.all(),
            "summary": summary,
            "availability": availability_describe(group.availability or {}),
            "freshness": selectors.group_freshness(group=group, newest_available=newest),
            "pending": bool(newest and newest > timezone.now()),
            "jobs": selectors.group_jobs(group=group, user=request.user),
            "partitions": group.partitions.order_by("-id")[:20],
            "sources": selectors.group_sources(group=group),
            "services": services_using,
            "versions": selectors.versions_of(services=services_using),
            "lineage": graph_svg(lineage.group_lineage(group=group, user=request.user)),
        },
    )


@login_required
def entity_detail(request: HttpRequest, name: str) -> HttpResponse:
    entity = _or_404(selectors.entity_get, name=name)
    return render(
        request,
        "features/entity_detail.html",
        {
            "entity": entity,
            "groups": selectors.entity_groups(entity=entity),
            "lineage": graph_svg(lineage.entity_lineage(entity=entity, user=request.user)),
        },
    )


@login_required
def source_detail(request: HttpRequest, name: str) -> HttpResponse:
    source = _or_404(selectors.source_get, name=name)
    return render(
        request,
        "features/source_detail.html",
        {
            "source": source,
            "groups": selectors.source_groups(source=source),
            "lineage": graph_svg(lineage.source_lineage(source=source, user=request.user)),
        },
    )


@login_required
def service_detail(request: HttpRequest, name: str) -> HttpResponse:
    service = _or_404(selectors.service_get, name=name)
    return render(
        request,
        "features/service_detail.html",
        {
            "service": service,
            "features": selectors.service_features(service=service),
            "versions": selectors.versions_of(services=[service]),
            "lineage": graph_svg(lineage.service_lineage(service=service, user=request.user)),
        },
    )


def availability_describe(rule: dict) -> str:
    if "daily_at" in rule:
        return f"loaded nightly at {rule['daily_at']} UTC"
    if "lag_seconds" in rule:
        return f"available {rule['lag_seconds']} s after the event"
    if "column" in rule:
        return f"explicit column {rule['column']}"
    return "ingestion time"


@login_required
def feature_detail(request: HttpRequest, group: str, name: str) -> HttpResponse:
    feature = _or_404(selectors.feature_get, group=group, name=name)
    services_using = selectors.services_of(features=[feature])
    stats = feature.statistics or {}
    return render(
        request,
        "features/feature_detail.html",
        {
            "feature": feature,
            "group": feature.group,
            "stats": stats,
            "histogram": charts.histogram(
                stats["histogram"], title=f"Distribution of {feature.name}", x_label=feature.name
            )
            if stats.get("histogram")
            else "",
            "summary": offline.group_summary(group=feature.group),
            "services": services_using,
            "versions": selectors.versions_of(services=services_using),
            "lineage": graph_svg(lineage.feature_lineage(feature=feature, user=request.user)),
        },
    )


@login_required
def training_set(request: HttpRequest) -> HttpResponse:
    form = TrainingSetForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            features = online.features_resolve(
                refs=[r.strip() for r in data["features"].split(",") if r.strip()]
                if data["features"]
                else None,
                feature_service=data["feature_service"],
            )
            # A training set holds feature values: each group's team, or a grant from it.
            for group in {feature.group for feature in features}:
                read_check(user=request.user, obj=group)
            content, job = services.training_set_request(
                features=features,
                fmt=data["format"],
                full_names=data["full_names"],
                entity_file=data["entity_file"],
                user=request.user,
            )
        except PermissionDeniedError as exc:
            raise PermissionDenied(exc.message) from exc
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            if job is not None:
                return render(request, "features/training_set.html", {"form": form, "job": job})
            response = HttpResponse(
                content, content_type=training_sets.CONTENT_TYPES[data["format"]]
            )
            response["Content-Disposition"] = (
                f'attachment; filename="training-set.{data["format"]}"'
            )
            return response
    return render(request, "features/training_set.html", {"form": form})
