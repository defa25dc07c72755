"""Reads for monitoring: what the API, the pages and the Prometheus collector show — the latest
windows of each version and role, window history, alert rules, alerts and feature-group
freshness."""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Max, Q, QuerySet
from django.utils import timezone

from features.models import FeatureGroup
from monitoring.freshness import GroupFreshness, groups_freshness
from monitoring.models import Alert, AlertRule, MonitoringWindow
from registry.models import ModelVersion, RegisteredModel

GRANULARITIES = (MonitoringWindow.Granularity.HOUR, MonitoringWindow.Granularity.DAY)


@dataclass
class VersionWindows:
    """The newest hour and day windows of one version in one role, and its alerts."""

    version: ModelVersion
    role: str
    hour: MonitoringWindow | None = None
    day: MonitoringWindow | None = None
    alerts: list[Alert] = field(default_factory=list)


def windows_latest(*, model: RegisteredModel) -> list[VersionWindows]:
    """Per version and role with any window: its newest hour and day window, newest version
    first (primary before canary before shadow), with the version's open and recent alerts."""
    entries: dict[tuple[int, str], VersionWindows] = {}
    for granularity in GRANULARITIES:
        newest = (
            MonitoringWindow.objects.filter(model=model, granularity=granularity)
            .values("version_id", "role")
            .annotate(latest=Max("start"))
            .order_by()
        )
        wanted = Q(pk__in=[])
        for item in newest:
            wanted |= Q(version_id=item["version_id"], role=item["role"], start=item["latest"])
        for window in MonitoringWindow.objects.filter(
            wanted, model=model, granularity=granularity
        ).select_related("version__model"):
            key = (window.version_id, window.role)
            entry = entries.setdefault(
                key, VersionWindows(version=window.version, role=window.role)
            )
            setattr(entry, granularity, window)
    by_version: dict[int, list[Alert]] = {}
    for alert in alerts_recent(model=model):
        if alert.version_id is not None:
            by_version.setdefault(alert.version_id, []).append(alert)
    role_order = {"primary": 0, "canary": 1, "shadow": 2}
    result = sorted(
        entries.values(), key=lambda e: (-e.version.version, role_order.get(e.role, 3), e.role)
    )
    for entry in result:
        entry.alerts = by_version.get(entry.version.pk, [])
    return result


def windows_history(
    *,
    model: RegisteredModel,
    granularity: str = MonitoringWindow.Granularity.HOUR,
    version: ModelVersion | None = None,
    role: str | None = None,
    since: datetime | None = None,
    limit: int = 500,
) -> list[MonitoringWindow]:
    """The model's windows of one granularity, oldest first (the newest `limit` of them), for
    heatmaps and charts over time."""
    windows = MonitoringWindow.objects.filter(model=model, granularity=granularity)
    if version is not None:
        windows = windows.filter(version=version)
    if role is not None:
        windows = windows.filter(role=role)
    if since is not None:
        windows = windows.filter(start__gte=since)
    newest = list(windows.select_related("version").order_by("-start", "version__version")[:limit])
    return newest[::-1]


def window_get(*, model: RegisteredModel, window_id: int) -> MonitoringWindow | None:
    return MonitoringWindow.objects.filter(model=model, pk=window_id).first()


def rules_of(*, model: RegisteredModel) -> QuerySet[AlertRule]:
    return AlertRule.objects.filter(model=model).order_by("metric", "column", "id")


def group_rules_of(*, group: FeatureGroup) -> QuerySet[AlertRule]:
    return AlertRule.objects.filter(feature_group=group).order_by("metric", "id")


def alerts_recent(*, model: RegisteredModel, days: float = 7.0, limit: int = 200) -> list[Alert]:
    """The model's firing alerts, and those resolved within `days`, newest first."""
    since = timezone.now() - timedelta(days=days)
    return list(
        Alert.objects.filter(rule__model=model)
        .filter(Q(state=Alert.State.FIRING) | Q(resolved_at__gte=since))
        .select_related("rule", "version")
        .order_by("-started_at", "-id")[:limit]
    )


def alerts_of_group(*, group: FeatureGroup, days: float = 7.0, limit: int = 50) -> list[Alert]:
    since = timezone.now() - timedelta(days=days)
    return list(
        Alert.objects.filter(rule__feature_group=group)
        .filter(Q(state=Alert.State.FIRING) | Q(resolved_at__gte=since))
        .select_related("rule")
        .order_by("-started_at", "-id")[:limit]
    )


def alerts_firing(*, model: RegisteredModel) -> list[Alert]:
    return list(
        Alert.objects.filter(rule__model=model, state=Alert.State.FIRING)
        .select_related("rule", "version")
        .order_by("-started_at", "-id")
    )


def firing_counts(*, models: Iterable[RegisteredModel]) -> dict[int, int]:
    """Firing alerts per model id (badges on lists of models); models without any are absent."""
    ids = [m.pk for m in models]
    rows = (
        Alert.objects.filter(rule__model_id__in=ids, state=Alert.State.FIRING)
        .values("rule__model_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    return {row["rule__model_id"]: row["n"] for row in rows}


def group_firing_counts(*, groups: Iterable[FeatureGroup] | None = None) -> dict[int, int]:
    """Firing alerts (stale) per feature group id; all groups when `groups` is None."""
    alerts = Alert.objects.filter(rule__feature_group__isnull=False, state=Alert.State.FIRING)
    if groups is not None:
        alerts = alerts.filter(rule__feature_group_id__in=[g.pk for g in groups])
    rows = alerts.values("rule__feature_group_id").annotate(n=Count("id")).order_by()
    return {row["rule__feature_group_id"]: row["n"] for row in rows}


def feature_groups() -> QuerySet[FeatureGroup]:
    return FeatureGroup.objects.order_by("name")


def groups_of_model(*, model: RegisteredModel) -> list[FeatureGroup]:
    """The feature groups the model's versions read through their feature services."""
    return list(
        FeatureGroup.objects.filter(
            features__services__model_versions__model=model,
        )
        .distinct()
        .order_by("name")
    )


__all__ = ["GroupFreshness", "groups_freshness"]  # the catalog's freshness, read from here too


def monitored_versions(*, model: RegisteredModel) -> QuerySet[ModelVersion]:
    return ModelVersion.objects.filter(model=model, monitoring_windows__isnull=False).distinct()


def window_data(window: MonitoringWindow | None) -> dict[str, Any] | None:
    """A window as the API answers it."""
    if window is None:
        return None
    return {
        "id": window.pk,
        "granularity": window.granularity,
        "start": window.start,
        "end": window.end,
        "requests": window.requests,
        "rows": window.rows,
        "columns": window.columns,
        "outputs": window.outputs,
        "rejections": window.rejections,
        "skew": window.skew,
        "accuracy": window.accuracy,
        "computed_at": window.computed_at,
    }
