"""The Monitoring tab of a model (drift heatmap, reference against live histograms, the
prediction distribution over time, quality counters, skew, live accuracy, alerts and a button
to run the monitoring job now), and the alert badges the model page and the feature catalog
load as htmx fragments (the registry and the feature store know nothing of monitoring)."""

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.views.decorators.http import require_GET, require_POST

from features.models import FeatureGroup
from jobs.models import Job
from mlplatform import charts
from mlplatform.errors import ApplicationError, PermissionDeniedError
from monitoring import profiles, run, selectors
from monitoring.models import Alert, AlertRule, MonitoringWindow, ReferenceProfile
from registry import selectors as registry_selectors
from registry.models import ModelVersion, RegisteredModel
from registry.views import model_for_reader
from tenancy.services import write_check

ALIAS = "production"
# What a line chart draws: {series name: [(window start, value), ...]}.
Series = dict[str, Sequence[tuple[Any, Any]]]
# How many windows the charts span: two days of hours, a month of days.
WINDOW_LIMIT: dict[str, int] = {
    MonitoringWindow.Granularity.HOUR: 48,
    MonitoringWindow.Granularity.DAY: 30,
}
ROLES = ("primary", "canary", "shadow")
# Categories drawn per column: the most frequent ones, in the reference or live.
TOP_CATEGORIES = 12
ALERT_LIMIT = 50
OTHER_LABEL = "(other)"
JOB_LIMIT = 3


@dataclass
class Figure:
    id: str
    svg: SafeString
    caption: str = ""


@dataclass
class ColumnView:
    name: str
    kind: str
    chart: SafeString
    live: dict[str, Any]


@dataclass
class QualityRow:
    name: str
    figures: dict[str, Any]
    flagged: set[str]


@dataclass
class Page:
    model: RegisteredModel
    versions: list[ModelVersion]
    version: ModelVersion | None
    granularity: str
    role: str
    roles: list[str]
    production: ModelVersion | None
    reference: ReferenceProfile | None = None
    windows: list[MonitoringWindow] = field(default_factory=list)
    heatmap: SafeString | None = None
    columns: list[ColumnView] = field(default_factory=list)
    predictions: list[Figure] = field(default_factory=list)
    quality: list[QualityRow] = field(default_factory=list)
    quality_charts: list[Figure] = field(default_factory=list)
    rejections: list[tuple[str, int]] = field(default_factory=list)
    skew: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    skew_chart: SafeString | None = None
    accuracy: list[Figure] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    jobs: list[Job] = field(default_factory=list)

    @property
    def latest(self) -> MonitoringWindow | None:
        return self.windows[-1] if self.windows else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _shares(values: Sequence[Any]) -> list[float]:
    numbers = [_number(v) or 0.0 for v in values]
    total = sum(numbers)
    return [n / total if total else 0.0 for n in numbers]


def _limits(model: RegisteredModel) -> dict[str, float]:
    """The threshold per metric from the model's enabled rules on any column, else defaults."""
    limits = {
        "psi": settings.MLPLATFORM_ALERT_PSI,
        "null_rate": settings.MLPLATFORM_ALERT_NULL_RATE,
    }
    for rule in AlertRule.objects.filter(model=model, enabled=True, column=""):
        limits[rule.metric] = rule.threshold
    return limits


def _versions(model: RegisteredModel) -> list[ModelVersion]:
    """Versions worth choosing: ready ones and any with monitoring windows, newest first."""
    with_windows = MonitoringWindow.objects.filter(model=model).values("version_id")
    return list(
        ModelVersion.objects.filter(model=model)
        .filter(Q(status=ModelVersion.Status.READY) | Q(pk__in=with_windows))
        .order_by("-version")
    )


def _heatmap(page: Page) -> SafeString | None:
    names: set[str] = set()
    for window in page.windows:
        names.update(window.columns)
    if page.reference is not None:
        names.update((page.reference.profile or {}).get("columns") or {})
    if not page.windows or not names:
        return None
    starts = [w.start for w in page.windows]
    values = {
        (name, window.start): figures.get("psi")
        for window in page.windows
        for name, figures in window.columns.items()
        if isinstance(figures, dict)
    }
    return charts.heatmap(
        sorted(names),
        starts,
        values,
        title=f"Drift of each input column of v{page.version.version if page.version else ''}"
        f" per {page.granularity} (PSI against the reference)",
        x_label=f"window start ({page.granularity}, UTC)",
        y_label="input column",
        value_label="PSI",
    )


def _numeric_chart(name: str, reference: dict[str, Any], live: dict[str, Any]) -> SafeString:
    edges = reference.get("edges") or []
    series: dict[str, Sequence[float]] = {"reference": _shares(reference.get("counts") or [])}
    if live.get("counts"):
        series["live (latest window)"] = _shares(live["counts"])
    return charts.overlaid_histogram(
        edges, series, title=f"{name}: reference and live", x_label=name, y_label="share of rows"
    )


def _readable(shares: dict[str, Any]) -> dict[str, Any]:
    return {OTHER_LABEL if key == profiles.OTHER else key: value for key, value in shares.items()}


def _categorical_chart(name: str, reference: dict[str, Any], live: dict[str, Any]) -> SafeString:
    # Values outside the reference's categories (unseen live, or beyond its most frequent) are
    # counted together under one key: name it for people.
    ref_shares = _readable(reference.get("categories") or {})
    live_shares = _readable(live.get("categories") or {})
    values = sorted(
        set(ref_shares) | set(live_shares),
        key=lambda v: (-max(_number(ref_shares.get(v)) or 0, _number(live_shares.get(v)) or 0), v),
    )[:TOP_CATEGORIES]
    series: dict[str, Sequence[Any]] = {}
    if ref_shares:
        series["reference"] = [ref_shares.get(v, 0.0) for v in values]
    if live_shares:
        series["live (latest window)"] = [live_shares.get(v, 0.0) for v in values]
    return charts.grouped_bars(
        values, series, title=f"{name}: reference and live", x_label=name, y_label="share of rows"
    )


def _columns(page: Page) -> list[ColumnView]:
    reference = (page.reference.profile or {}).get("columns") or {} if page.reference else {}
    latest = page.latest.columns if page.latest else {}
    views = []
    for name in sorted(set(reference) | set(latest)):
        ref, live = reference.get(name) or {}, latest.get(name) or {}
        kind = ref.get("kind") or ("categorical" if live.get("categories") else "numeric")
        if kind == "categorical":
            chart = _categorical_chart(name, ref, live)
        else:
            chart = _numeric_chart(name, ref, live)
        views.append(ColumnView(name, kind, chart, live))
    return views


def _quantile(edges: Sequence[float], counts: Sequence[float], share: float) -> float | None:
    """The value below which `share` of the rows fall, interpolated inside the bins."""
    total = sum(counts)
    if not total or len(edges) != len(counts) + 1:
        return None
    target, seen = share * total, 0.0
    for i, count in enumerate(counts):
        if count and seen + count >= target:
            return edges[i] + (edges[i + 1] - edges[i]) * (target - seen) / count
        seen += count
    return edges[-1]


def _predictions(page: Page) -> list[Figure]:
    """The prediction's distribution per window (class shares, or estimated percentiles of a
    value), and the prediction drift of every output."""
    if not page.windows:
        return []
    found = []
    outputs = [w.outputs.get("prediction") or {} for w in page.windows]
    if any(o.get("categories") for o in outputs):
        classes = sorted({c for o in outputs for c in o.get("categories") or {}}, key=str)
        lines: Series = {
            str(c): [
                (w.start, (o.get("categories") or {}).get(c, 0.0))
                for w, o in zip(page.windows, outputs, strict=True)
                if o.get("categories")
            ]
            for c in classes
        }
        found.append(
            Figure(
                "prediction-chart",
                charts.line_chart(
                    lines,
                    title="Predicted classes per window",
                    x_label="window start (UTC)",
                    y_label="share of predictions",
                    x_time=True,
                    y_from_zero=True,
                ),
                caption="Predicted classes per window",
            )
        )
    else:
        reference = (
            ((page.reference.profile or {}).get("outputs") or {}).get("prediction") or {}
            if page.reference
            else {}
        )
        edges = [_number(e) for e in reference.get("edges") or []]
        if edges and all(e is not None for e in edges):
            bins = [e for e in edges if e is not None]
            percentiles: Series = {}
            for label, share in (
                ("90th percentile", 0.9),
                ("median", 0.5),
                ("10th percentile", 0.1),
            ):
                percentiles[label] = [
                    (w.start, _quantile(bins, [_number(c) or 0.0 for c in o["counts"]], share))
                    for w, o in zip(page.windows, outputs, strict=True)
                    if o.get("counts")
                ]
            found.append(
                Figure(
                    "prediction-chart",
                    charts.line_chart(
                        percentiles,
                        title="Predicted value per window (estimated from the reference bins)",
                        x_label="window start (UTC)",
                        y_label="prediction",
                        x_time=True,
                    ),
                    caption="Predicted value per window (estimated from the reference bins)",
                )
            )
    names = sorted({name for w in page.windows for name in w.outputs})
    drift: Series = {
        name: [(w.start, (w.outputs.get(name) or {}).get("psi")) for w in page.windows]
        for name in names
    }
    if any(v is not None for points in drift.values() for _, v in points):
        found.append(
            Figure(
                "prediction-drift-chart",
                charts.line_chart(
                    drift,
                    title="Prediction drift per window (PSI against the reference)",
                    x_label="window start (UTC)",
                    y_label="PSI",
                    x_time=True,
                    y_from_zero=True,
                ),
                caption="Prediction drift per window (PSI against the reference)",
            )
        )
    return found


PERCENTILES = (("90th percentile", 0.9), ("median", 0.5), ("10th percentile", 0.1))
QUALITY_FIGURES = ("rows", "null_rate", "out_of_range", "unknown_categories", "psi", "ks", "js")


def _quality(page: Page, limits: dict[str, float]) -> list[QualityRow]:
    if page.latest is None:
        return []
    rows = []
    for name, figures in sorted(page.latest.columns.items()):
        if not isinstance(figures, dict):
            continue
        shown = {key: figures.get(key) for key in QUALITY_FIGURES}
        flagged = {
            key
            for key, limit in limits.items()
            if key in shown and (_number(shown[key]) or 0.0) > limit
        }
        rows.append(QualityRow(name, shown, flagged))
    return rows


def _quality_charts(page: Page) -> list[Figure]:
    found = []
    nulls: Series = {
        name: [(w.start, (w.columns.get(name) or {}).get("null_rate")) for w in page.windows]
        for name in sorted({n for w in page.windows for n in w.columns})
    }
    nulls = {n: p for n, p in nulls.items() if any(_number(v) for _, v in p)}
    if nulls:
        found.append(
            Figure(
                "null-rate-chart",
                charts.line_chart(
                    nulls,
                    title="Null rate per window (columns with nulls)",
                    x_label="window start (UTC)",
                    y_label="share of rows",
                    x_time=True,
                    y_from_zero=True,
                ),
                caption="Null rate per window (columns with nulls)",
            )
        )
    return found


def _rejections(page: Page) -> list[tuple[str, int]]:
    """4xx answers per field named, over the windows shown."""
    totals: dict[str, int] = {}
    for window in page.windows:
        for name, count in (window.rejections or {}).items():
            totals[name] = totals.get(name, 0) + int(_number(count) or 0)
    return sorted(totals.items(), key=lambda item: (-item[1], item[0]))


def _skew(page: Page) -> list[tuple[str, dict[str, Any]]]:
    latest = next((w for w in reversed(page.windows) if w.skew), None)
    if latest is None:
        return []
    return sorted((n, f) for n, f in latest.skew.items() if isinstance(f, dict))


ACCURACY_METRICS = ("accuracy", "roc_auc", "mae", "rmse")


def _accuracy(page: Page) -> list[Figure]:
    labelled = [w for w in page.windows if w.accuracy and w.accuracy.get("labelled")]
    if not labelled:
        return []
    found = []
    for metric in ACCURACY_METRICS:
        points = [(w.start, w.accuracy.get(metric)) for w in labelled]
        if any(_number(v) is not None for _, v in points):
            found.append(
                Figure(
                    f"accuracy-{metric}-chart",
                    charts.line_chart(
                        {metric: points},
                        title=f"Live {metric} per window (from feedback)",
                        x_label="window start (UTC)",
                        y_label=metric,
                        x_time=True,
                    ),
                    caption=f"Live {metric} per window (from feedback)",
                )
            )
    found.append(
        Figure(
            "labelled-chart",
            charts.bar_chart(
                [(w.start.strftime("%m-%d %H:%M"), w.accuracy.get("labelled")) for w in labelled],
                title="Predictions with feedback per window",
                x_label="window start (UTC)",
                y_label="labelled rows",
            ),
            caption="Predictions with feedback per window",
        )
    )
    return found


def _alerts(model: RegisteredModel) -> list[Alert]:
    """The model's firing alerts first, then those resolved lately, newest first."""
    recent = selectors.alerts_recent(model=model, limit=ALERT_LIMIT)
    return sorted(recent, key=lambda alert: alert.state != Alert.State.FIRING)


def _jobs(model: RegisteredModel) -> list[Job]:
    """The model's latest monitoring runs (the run's job records the model's id)."""
    return list(
        Job.objects.filter(kind=Job.Kind.MONITORING, params__model_id=model.pk).order_by(
            "-created_at", "-id"
        )[:JOB_LIMIT]
    )


def page_build(
    model: RegisteredModel, *, number: str | None, granularity: str | None, role: str | None
) -> Page:
    """Everything the tab draws for one version (default: production's), granularity and role."""
    versions = _versions(model)
    production = registry_selectors.alias_list(model=model).filter(alias=ALIAS).first()
    production_version = production.version if production else None
    chosen = None
    if number and number.isdigit():
        chosen = next((v for v in versions if v.version == int(number)), None)
    if chosen is None and production_version is not None:
        chosen = next((v for v in versions if v.pk == production_version.pk), None)
    chosen = chosen or next(iter(versions), None)
    granularity = (
        granularity
        if granularity in MonitoringWindow.Granularity.values
        else MonitoringWindow.Granularity.HOUR
    )
    roles: list[str] = []
    if chosen is not None:
        present = set(
            MonitoringWindow.objects.filter(version=chosen, granularity=granularity)
            .values_list("role", flat=True)
            .distinct()
        )
        roles = [r for r in ROLES if r in present] + sorted(present - set(ROLES))
    role = role if role in roles else (roles[0] if roles else "primary")
    page = Page(
        model=model,
        versions=versions,
        version=chosen,
        granularity=granularity,
        role=role,
        roles=roles,
        production=production_version,
    )
    page.alerts = _alerts(model)
    page.jobs = _jobs(model)
    if chosen is None:
        return page
    page.reference = ReferenceProfile.objects.filter(version=chosen).first()
    page.windows = selectors.windows_history(
        model=model,
        granularity=granularity,
        version=chosen,
        role=role,
        limit=WINDOW_LIMIT.get(granularity, 48),
    )
    page.heatmap = _heatmap(page)
    page.columns = _columns(page)
    page.predictions = _predictions(page)
    page.quality = _quality(page, _limits(model))
    page.quality_charts = _quality_charts(page)
    page.rejections = _rejections(page)
    page.skew = _skew(page)
    if page.skew:
        page.skew_chart = charts.bar_chart(
            [(name, figures.get("rate")) for name, figures in page.skew],
            title="Training/serving skew: share of rows whose online value differs from offline",
            x_label="feature",
            y_label="mismatch rate",
        )
    page.accuracy = _accuracy(page)
    return page


@login_required
@require_GET
def model_monitoring(request: HttpRequest, name: str) -> HttpResponse:
    """`?version=n&granularity=hour|day&role=primary|canary|shadow`."""
    model = model_for_reader(request, name)
    page = page_build(
        model,
        number=request.GET.get("version"),
        granularity=request.GET.get("granularity"),
        role=request.GET.get("role"),
    )
    return render(
        request,
        "monitoring/model.html",
        {
            "model": model,
            "page": page,
            "may_run": request.user.has_perm("registry.change_registeredmodel", model),
        },
    )


@login_required
@require_GET
def model_badge(request: HttpRequest, name: str) -> HttpResponse:
    """The model page's badge: how many of its alerts are firing (nothing when none)."""
    model = model_for_reader(request, name)
    firing = selectors.alerts_firing(model=model)
    return render(request, "monitoring/_model_badge.html", {"model": model, "firing": firing})


@login_required
@require_GET
def group_badges(request: HttpRequest) -> HttpResponse:
    """The catalog's badges, one htmx response for the groups of a page (`?group=a&group=b`):
    an out-of-band swap into every cell of a group with a firing alert. Freshness is catalog
    metadata, shown to anyone signed in, and so are these."""
    names = request.GET.getlist("group")[:200]
    groups = list(FeatureGroup.objects.filter(name__in=names).order_by("name"))
    counts = selectors.group_firing_counts(groups=groups)
    firing = [(group, counts[group.pk]) for group in groups if counts.get(group.pk)]
    return render(request, "monitoring/_group_badges.html", {"firing": firing})


@login_required
@require_POST
def run_now(request: HttpRequest, name: str) -> HttpResponse:
    """Queue the model's monitoring job now (team write rights); back to the tab with the job's
    link, or the reason it was not queued (a run already queued or running)."""
    model = model_for_reader(request, name)
    try:
        write_check(user=request.user, perm="registry.change_registeredmodel", obj=model)
    except PermissionDeniedError as exc:
        raise PermissionDenied(exc.message) from exc
    try:
        job = run.monitoring_request(model=model, user=request.user)
        messages.success(
            request,
            format_html(
                'Monitoring {} now: <a href="{}" id="run-job">job #{}</a>.',
                model.name,
                job.get_absolute_url(),
                job.pk,
            ),
        )
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return HttpResponseRedirect(reverse("monitoring:model", args=[model.name]))
