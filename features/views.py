"""Catalog pages: search, group and feature pages, and the training-set form."""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from features import offline, online, selectors, services, training_sets
from features.forms import TrainingSetForm
from features.models import FeatureService
from features.svg import histogram_svg
from mlplatform.errors import ApplicationError, NotFoundError
from tenancy.services import PermissionDeniedError, read_check


@login_required
def catalog(request: HttpRequest) -> HttpResponse:
    params = {
        key: request.GET.get(key, "").strip() for key in ("q", "entity", "task", "tag", "owner")
    }
    features = selectors.feature_search(**{k: v or None for k, v in params.items()})
    return render(
        request,
        "features/catalog.html",
        {
            "features": features[:500],
            "params": params,
            "choices": selectors.filter_choices(),
            "services": FeatureService.objects.all(),
        },
    )


@login_required
def group_detail(request: HttpRequest, name: str) -> HttpResponse:
    try:
        group = selectors.group_get(name=name)
    except NotFoundError as exc:
        raise Http404(exc.message) from exc
    summary = offline.group_summary(group=group)
    newest = summary.get("newest_available")
    return render(
        request,
        "features/group_detail.html",
        {
            "group": group,
            "features": group.features.all(),
            "summary": summary,
            "availability": availability_describe(group.availability or {}),
            "pending": bool(newest and newest > timezone.now()),
            "jobs": selectors.group_jobs(group=group),
            "partitions": group.partitions.order_by("-id")[:20],
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
    try:
        feature = selectors.feature_get(group=group, name=name)
    except NotFoundError as exc:
        raise Http404(exc.message) from exc
    services_using = feature.services.all()
    versions = [
        version
        for service in services_using
        for version in service.model_versions.select_related("model")
    ]
    stats = feature.statistics or {}
    return render(
        request,
        "features/feature_detail.html",
        {
            "feature": feature,
            "group": feature.group,
            "stats": stats,
            "histogram": histogram_svg(stats.get("histogram")),
            "summary": offline.group_summary(group=feature.group),
            "services": services_using,
            "versions": versions,
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
