"""Reads for serving: which version answers a request, cached per process for a short TTL."""

import math
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import QuerySet, Sum
from django.utils import timezone

from features.models import Feature, FeatureGroup
from mlplatform.errors import ApplicationError
from registry import selectors as registry_selectors
from registry.models import ModelAlias, ModelVersion, RegisteredModel
from serving import enrichment, trafficstats
from serving.models import PredictionLog, RejectionMinute, Role, TrafficMinute
from tenancy.services import readable_filter

_resolved: dict[tuple[str, int | None, str | None], tuple[float, ModelVersion]] = {}
_lock = threading.Lock()


def version_resolve(
    *, model_name: str, version: int | None = None, alias: str | None = None
) -> ModelVersion:
    """`registry.selectors.version_resolve`, cached per process for
    MLPLATFORM_ALIAS_TTL_SECONDS, so an alias move is seen by every process within that bound
    without any cross-process signal.

    Raises:
        NotFoundError: unknown model, version or alias, or no ready version.
        ConflictError: the named version (or the alias's version) is not ready.
    """
    key = (model_name, version, alias)
    now = time.monotonic()
    with _lock:
        cached = _resolved.get(key)
    if cached is not None and cached[0] > now:
        return cached[1]
    found = registry_selectors.version_resolve(model_name=model_name, version=version, alias=alias)
    ttl = float(settings.MLPLATFORM_ALIAS_TTL_SECONDS)
    if ttl > 0:
        with _lock:
            if len(_resolved) > 10_000:  # unbounded names must not grow memory forever
                _resolved.clear()
            _resolved[key] = (now + ttl, found)
    return found


def models_serving(*, user: Any) -> list[tuple[str, int | None]]:
    """The models `user` may read, by name, each with the version that answers it by default
    (None when no version is ready)."""
    names = (
        RegisteredModel.objects.filter(readable_filter(user=user, model=RegisteredModel))
        .order_by("name")
        .values_list("name", flat=True)
    )
    found: list[tuple[str, int | None]] = []
    for name in names:
        try:
            found.append((name, version_resolve(model_name=name).version))
        except ApplicationError:
            found.append((name, None))
    return found


def model_exists(*, name: str) -> bool:
    return RegisteredModel.objects.filter(name=name).exists()


def model_id(*, name: str) -> int | None:
    """The id of the model named `name`, or None."""
    return RegisteredModel.objects.filter(name=name).values_list("pk", flat=True).first()


def resolution_cache_clear() -> None:
    with _lock:
        _resolved.clear()


def prediction_log_list(*, model: RegisteredModel) -> QuerySet[PredictionLog]:
    return (
        PredictionLog.objects.filter(model=model)
        .select_related("version")
        .order_by("-created_at", "-id")
    )


# --- per-model charts drawn from the prediction log ----------------------------------------------

USAGE_WINDOW = timedelta(hours=24)
USAGE_MAX_ENTRIES = 50_000
_INTERVALS = (60, 300, 900, 3600)  # seconds per point: the smallest giving at most 48 points


@dataclass(frozen=True)
class Usage:
    """A model's logged requests bucketed over time: per bucket start, the requests and rows,
    mean and 95th percentile latency, and the outputs (per class, or the mean prediction)."""

    interval_seconds: int
    requests: list[tuple[datetime, int]]
    rows: list[tuple[datetime, int]]
    latency_mean: list[tuple[datetime, float]]
    latency_p95: list[tuple[datetime, float]]
    outputs: dict[str, list[tuple[datetime, float]]]
    outputs_are_classes: bool
    truncated: bool


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)]


def model_usage(*, model: RegisteredModel, now: datetime | None = None) -> Usage:
    """The last 24 hours of `model`'s prediction log, bucketed (at most USAGE_MAX_ENTRIES
    entries, the newest)."""
    now = now or timezone.now()
    entries = list(
        PredictionLog.objects.filter(model=model, created_at__gte=now - USAGE_WINDOW)
        .order_by("-created_at")
        .values_list("created_at", "latency_ms", "n_rows", "outputs")[:USAGE_MAX_ENTRIES]
    )
    first = min((e[0] for e in entries), default=now)
    span = (now - first).total_seconds()
    interval = next((i for i in _INTERVALS if span / i <= 48), _INTERVALS[-1])
    buckets: dict[datetime, list[tuple[float, int, list[Any]]]] = defaultdict(list)
    for created, latency, n_rows, outputs in entries:
        start = datetime.fromtimestamp(
            created.timestamp() // interval * interval, tz=created.tzinfo
        )
        predictions = (outputs or {}).get("predictions") or []
        buckets[start].append((latency, n_rows, predictions))
    all_predictions = [p for b in buckets.values() for _, _, ps in b for p in ps]
    classes = {str(p) for p in all_predictions if not isinstance(p, list)}
    are_classes = bool(all_predictions) and (
        all(isinstance(p, str | bool) for p in all_predictions)
        or (len(classes) <= 10 and all(isinstance(p, int) for p in all_predictions))
    )
    usage = Usage(
        interval, [], [], [], [], defaultdict(list), are_classes, len(entries) == USAGE_MAX_ENTRIES
    )
    top = [c for c, _ in Counter(str(p) for p in all_predictions).most_common(6)]
    for start in sorted(buckets):
        rows = buckets[start]
        latencies = [latency for latency, _, _ in rows]
        usage.requests.append((start, len(rows)))
        usage.rows.append((start, sum(n for _, n, _ in rows)))
        usage.latency_mean.append((start, sum(latencies) / len(latencies)))
        usage.latency_p95.append((start, _percentile(latencies, 0.95)))
        predictions = [p for _, _, ps in rows for p in ps]
        if are_classes:
            counts = Counter(str(p) for p in predictions)
            for name in top:
                usage.outputs[name].append((start, counts.get(name, 0)))
        else:
            numbers = [float(p) for p in predictions if isinstance(p, int | float)]
            if numbers:
                usage.outputs["mean prediction"].append((start, sum(numbers) / len(numbers)))
    return usage


def try_targets(*, model: RegisteredModel) -> tuple[list[int], list[tuple[str, int]]]:
    """What a Try-it page may target: the model's ready version numbers (newest first) and its
    aliases with the version each points at."""
    numbers = list(
        registry_selectors.version_list(model=model)
        .filter(status=ModelVersion.Status.READY)
        .values_list("version", flat=True)
    )
    aliases = [(a.alias, a.version.version) for a in registry_selectors.alias_list(model=model)]
    return numbers, aliases


def try_inputs(*, version: ModelVersion) -> tuple[list[tuple[str, str]], bool]:
    """The Try-it form's columns and their dtypes: a version linked to a feature service takes
    its entities' join keys (the service's features are read from the online store, as the API
    does) and the inputs the service does not serve (request-time columns); any other version
    takes its signature's inputs. The flag says which."""
    inputs = [(c.name, c.dtype) for c in version.signature.inputs]
    if not version.feature_service_id:
        return inputs, False
    served = set(
        Feature.objects.filter(services__id=version.feature_service_id).values_list(
            "name", flat=True
        )
    )
    keys = enrichment.entity_keys(feature_service_id=version.feature_service_id)
    dtypes: dict[str, str] = {}
    groups = FeatureGroup.objects.filter(
        features__services__id=version.feature_service_id
    ).distinct()
    for group in groups:
        for key, dtype in (group.key_dtypes or {}).items():
            dtypes.setdefault(key, str(dtype))
    fields = [(key, dtypes.get(key, "string")) for key in keys]
    return fields + [(n, d) for n, d in inputs if n not in served and n not in keys], True


# --- an alias's traffic: what answered and what shadowed, per minute ----------------------------

TRAFFIC_WINDOW = timedelta(hours=1)


@dataclass
class VersionTraffic:
    """One version's figures for an alias over TRAFFIC_WINDOW, and its per-minute series."""

    version: int
    role: str
    requests: int = 0
    rows: int = 0
    errors: int = 0
    drops: int = 0
    latency_mean_ms: float | None = None
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    compared_rows: int = 0
    agreement: float | None = None  # share of rows whose label agrees (classifiers)
    mean_abs_difference: float | None = None  # (regressors)
    # Per minute: (its start, mean latency in ms, agreement or mean absolute difference).
    by_minute: list[tuple[datetime, float | None, float | None]] = field(default_factory=list)

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None


@dataclass
class AliasTraffic:
    link: ModelAlias
    answering: list[VersionTraffic]  # primary and canary
    shadows: list[VersionTraffic]


def alias_traffic(*, model: RegisteredModel, now: datetime | None = None) -> list[AliasTraffic]:
    """Per alias of `model`: its figures over the last TRAFFIC_WINDOW from every process, per
    version that answered (primary, canary) and per shadow; each with, per minute, the mean
    latency and (shadows) the agreement or mean absolute difference."""
    now = now or timezone.now()
    links = list(registry_selectors.alias_list(model=model))
    minutes = (
        TrafficMinute.objects.filter(alias__in=links, minute__gte=now - TRAFFIC_WINDOW)
        .select_related("version")
        .order_by("minute")
    )
    grouped: dict[tuple[int, int, str], list[TrafficMinute]] = defaultdict(list)
    for row in minutes:
        grouped[(row.alias_id, row.version.version, row.role)].append(row)
    classifiers = {
        v.version: v.signature.task == "classification"
        for v in ModelVersion.objects.filter(model=model, status=ModelVersion.Status.READY)
    }
    found = []
    for link in links:
        answering: list[VersionTraffic] = []
        shadows: list[VersionTraffic] = []
        for (alias_id, number, role), rows in sorted(grouped.items()):
            if alias_id != link.pk:
                continue
            figures = _version_traffic(number, role, rows, classifier=classifiers.get(number))
            (shadows if role == Role.SHADOW else answering).append(figures)
        found.append(AliasTraffic(link=link, answering=answering, shadows=shadows))
    return found


def _version_traffic(
    number: int, role: str, rows: list[TrafficMinute], *, classifier: bool | None
) -> VersionTraffic:
    figures = VersionTraffic(version=number, role=role)
    buckets = [0] * (len(trafficstats.LATENCY_BOUNDS_MS) + 1)
    latency_sum = latency_max = 0.0
    abs_diff = 0.0
    agreed = 0
    for row in rows:
        figures.requests += row.requests
        figures.rows += row.rows
        figures.errors += row.errors
        figures.drops += row.drops
        figures.compared_rows += row.compared_rows
        agreed += row.agreed_rows
        abs_diff += row.abs_diff_sum
        latency_sum += row.latency_sum_ms
        latency_max = max(latency_max, row.latency_max_ms)
        for index, count in enumerate(row.latency_buckets or []):
            if index < len(buckets):
                buckets[index] += count
        timed_here = sum(row.latency_buckets or [])
        mean = row.latency_sum_ms / timed_here if timed_here else None
        if not row.compared_rows:
            quality = None
        elif classifier:
            quality = row.agreed_rows / row.compared_rows
        else:
            quality = row.abs_diff_sum / row.compared_rows
        figures.by_minute.append((row.minute, mean, quality))
    timed = sum(buckets)
    if timed:
        figures.latency_mean_ms = latency_sum / timed
        figures.latency_p50_ms = trafficstats.percentile_ms(buckets, 0.5, maximum=latency_max)
        figures.latency_p99_ms = trafficstats.percentile_ms(buckets, 0.99, maximum=latency_max)
    if figures.compared_rows:
        if classifier:
            figures.agreement = agreed / figures.compared_rows
        else:
            figures.mean_abs_difference = abs_diff / figures.compared_rows
    return figures


# --- 4xx rejections per field, for monitoring ----------------------------------------------------


def rejections(model_id: int, start: datetime, end: datetime) -> dict[int | None, dict[str, int]]:
    """{version number, or None when the request resolved none: {field: 4xx answers naming it}}
    of the model's prediction routes in [start, end) (whole minutes, as they are counted)."""
    found: dict[int | None, dict[str, int]] = defaultdict(dict)
    counted = (
        RejectionMinute.objects.filter(model_id=model_id, minute__gte=start, minute__lt=end)
        .values_list("version__version", "field")
        .annotate(total=Sum("count"))
        .order_by()
    )
    for number, name, total in counted:
        found[number][name] = found[number].get(name, 0) + int(total)
    return dict(found)
