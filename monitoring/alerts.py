"""Alert rules and their evaluation.

A rule is broken when its figure is above its threshold. Model rules are read on each version's
newest day window (the role with the most rows): drift and quality per input column (`psi`,
`ks`, `js`, `null_rate`, `out_of_range`, `unknown_categories`), `prediction_psi` per output,
`skew` per feature, `accuracy_drop` on the newest day with enough labelled rows. A group's
`stale` rule compares its newest row's age with the interval its schedule or availability rule
expects (threshold: how many intervals; the catalog calls a group stale past 2).

Evaluation after each run: a broken rule opens an alert (one open alert per rule, version and
column) or refreshes the open one; a rule that holds again resolves it. A figure that is missing
(too few rows, a statistic that does not apply to the column) changes nothing. An alert that
fires again after it was resolved is a new row: the rows are the history of state changes.

Defaults: when a model gets its first reference profile, and has no rules yet, it gets
`psi > MLPLATFORM_ALERT_PSI` (any column), `null_rate > MLPLATFORM_ALERT_NULL_RATE` and
`accuracy_drop > MLPLATFORM_ALERT_ACCURACY_DROP`; every feature group with a schedule or an
availability rule gets a `stale` rule (MLPLATFORM_ALERT_STALE_FACTOR) when monitoring first
runs over it. Disabling a rule (rather than deleting it) keeps it from coming back.
"""

import math
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from features.models import FeatureGroup
from mlplatform.errors import ApplicationError
from monitoring import freshness, selectors
from monitoring.models import Alert, AlertRule, MonitoringWindow, ReferenceProfile
from registry.models import ModelVersion, RegisteredModel

Metric = AlertRule.Metric
COLUMN_METRICS: dict[str, str] = {
    Metric.PSI: "psi",
    Metric.KS: "ks",
    Metric.JS: "js",
    Metric.NULL_RATE: "null_rate",
    Metric.OUT_OF_RANGE: "out_of_range",
    Metric.UNKNOWN_CATEGORIES: "unknown_categories",
}
MODEL_METRICS = [m.value for m in Metric if m != Metric.STALE]


def model_defaults() -> list[tuple[str, float]]:
    return [
        (Metric.PSI, float(settings.MLPLATFORM_ALERT_PSI)),
        (Metric.NULL_RATE, float(settings.MLPLATFORM_ALERT_NULL_RATE)),
        (Metric.ACCURACY_DROP, float(settings.MLPLATFORM_ALERT_ACCURACY_DROP)),
    ]


def rules_defaults_create(*, model: RegisteredModel) -> list[AlertRule]:
    """The default rules, for a model that has none."""
    if AlertRule.objects.filter(model=model).exists():
        return []
    return AlertRule.objects.bulk_create(
        [
            AlertRule(model=model, metric=metric, threshold=value)
            for metric, value in model_defaults()
        ]
    )


def reference_saved(sender: Any, instance: ReferenceProfile, created: bool, **kwargs: Any) -> None:
    """A model's first reference profile brings its default rules (post_save receiver)."""
    if not created:
        return
    model_id = instance.version.model_id
    if ReferenceProfile.objects.filter(version__model_id=model_id).count() == 1:
        rules_defaults_create(model=instance.version.model)


def group_rules_ensure(*, groups: Iterable[FeatureGroup]) -> int:
    """A `stale` rule for each group with a schedule or availability rule that has none."""
    has_rule = set(
        AlertRule.objects.filter(metric=Metric.STALE, feature_group__in=list(groups)).values_list(
            "feature_group_id", flat=True
        )
    )
    created = [
        AlertRule(
            feature_group=group,
            metric=Metric.STALE,
            threshold=float(settings.MLPLATFORM_ALERT_STALE_FACTOR),
        )
        for group in groups
        if group.pk not in has_rule and (group.schedule or group.availability)
    ]
    AlertRule.objects.bulk_create(created)
    return len(created)


# --- rules as users send them -------------------------------------------------------------


def _columns_allowed(model: RegisteredModel, metric: str) -> set[str] | None:
    """The column names a model rule may name (None: any name is accepted)."""
    versions = list(ModelVersion.objects.filter(model=model, status=ModelVersion.Status.READY))
    if not versions:
        return None
    if metric in COLUMN_METRICS:
        return {column.name for v in versions for column in v.signature.inputs}
    if metric == Metric.PREDICTION_PSI:
        names = {"prediction"}
        for version in versions:
            names.update(f"proba__{c}" for c in version.signature.classes or ())
        return names
    if metric == Metric.SKEW:
        return {
            name
            for v in versions
            if v.feature_service_id is not None
            for name in v.feature_service.features.values_list("name", flat=True)  # type: ignore[union-attr]
        }
    return set()


def rule_check(*, model: RegisteredModel, rule: Any, where: str) -> dict[str, Any]:
    """One rule as sent (`metric`, optional `column`, `threshold`, optional `enabled`), checked.

    Raises:
        ApplicationError: naming the field and the rule's position `where`.
    """
    if not isinstance(rule, dict):
        raise ApplicationError(f"{where}: each rule must be an object.")
    unknown = sorted(set(rule) - {"metric", "column", "threshold", "enabled", "id"})
    if unknown:
        raise ApplicationError(f"{where}: unknown field(s) {unknown}.", extra={"field": unknown[0]})
    metric = rule.get("metric")
    if metric not in MODEL_METRICS:
        raise ApplicationError(
            f"{where}.metric: {metric!r:.80} is not one of {MODEL_METRICS}.",
            extra={"field": "metric"},
        )
    column = rule.get("column") or ""
    if not isinstance(column, str) or len(column) > 200:
        raise ApplicationError(
            f"{where}.column: a column name of at most 200 characters, or empty for any.",
            extra={"field": "column"},
        )
    column = column.strip()
    allowed = _columns_allowed(model, metric)
    if column and allowed is not None and column not in allowed:
        raise ApplicationError(
            f"{where}.column: {metric} has no column {column!r}"
            + (f"; the model's are {sorted(allowed)[:30]}." if allowed else "."),
            extra={"field": "column"},
        )
    threshold = rule.get("threshold")
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, int | float)
        or not math.isfinite(threshold)
        or threshold < 0
    ):
        raise ApplicationError(
            f"{where}.threshold: a finite number of 0 or more is required.",
            extra={"field": "threshold"},
        )
    enabled = rule.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ApplicationError(f"{where}.enabled: true or false.", extra={"field": "enabled"})
    return {"metric": metric, "column": column, "threshold": float(threshold), "enabled": enabled}


# --- evaluation ---------------------------------------------------------------------------


def _newest_day_windows(model: RegisteredModel) -> list[MonitoringWindow]:
    """Per version, its newest day window (the role with the most rows)."""
    chosen: dict[int, MonitoringWindow] = {}
    for entry in selectors.windows_latest(model=model):
        window = entry.day
        if window is None:
            continue
        held = chosen.get(window.version_id)
        if held is None or (window.start, window.rows) > (held.start, held.rows):
            chosen[window.version_id] = window
    return list(chosen.values())


def _labelled_window(model: RegisteredModel, version_id: int) -> MonitoringWindow | None:
    minimum = int(settings.MLPLATFORM_MONITORING_MIN_LABELLED)
    for window in MonitoringWindow.objects.filter(
        model=model, version_id=version_id, granularity=MonitoringWindow.Granularity.DAY
    ).order_by("-start")[:14]:
        if "accuracy_drop" in window.accuracy and window.accuracy.get("labelled", 0) >= minimum:
            return window
    return None


def _figures(rule: AlertRule, window: MonitoringWindow) -> dict[str, float]:
    """{column: value} the rule reads in the window ("" for a figure of the whole version)."""
    found: dict[str, float] = {}
    if rule.metric in COLUMN_METRICS or rule.metric == Metric.PREDICTION_PSI:
        if window.rows < int(settings.MLPLATFORM_MONITORING_MIN_ROWS):
            return found
        source = window.outputs if rule.metric == Metric.PREDICTION_PSI else window.columns
        key = "psi" if rule.metric == Metric.PREDICTION_PSI else COLUMN_METRICS[rule.metric]
        for column, stats in (source or {}).items():
            value = stats.get(key) if isinstance(stats, dict) else None
            if isinstance(value, int | float) and math.isfinite(value):
                found[column] = float(value)
    elif rule.metric == Metric.SKEW:
        for feature, stats in (window.skew or {}).items():
            if isinstance(stats, dict) and stats.get("compared") and stats.get("rate") is not None:
                found[feature] = float(stats["rate"])
    elif rule.metric == Metric.ACCURACY_DROP:
        value = (window.accuracy or {}).get("accuracy_drop")
        if isinstance(value, int | float):
            found[""] = float(value)
    if rule.column:
        return {rule.column: found[rule.column]} if rule.column in found else {}
    return found


def _describe(rule: AlertRule, column: str, value: float, where: str) -> str:
    subject = f"{rule.metric} of {column}" if column else rule.metric
    return f"{subject} is {value:.4g}, above {rule.threshold:g}, {where}."


def _apply(
    *,
    rule: AlertRule,
    version: ModelVersion | None,
    column: str,
    value: float,
    window: MonitoringWindow | None,
    where: str,
    now: datetime,
) -> str | None:
    """Record the rule's verdict on one subject; returns the transition (`fired`, `resolved`)
    or None."""
    open_alert = (
        Alert.objects.select_for_update()
        .filter(rule=rule, version=version, column=column, state=Alert.State.FIRING)
        .first()
    )
    broken = rule.enabled and value > rule.threshold
    if broken:
        message = _describe(rule, column, value, where)
        if open_alert is None:
            Alert.objects.create(
                rule=rule,
                version=version,
                column=column,
                value=value,
                window=window,
                message=message,
            )
            return "fired"
        open_alert.value, open_alert.window, open_alert.message = value, window, message
        open_alert.save(update_fields=["value", "window", "message", "last_seen_at"])
        return None
    if open_alert is not None:
        open_alert.state = Alert.State.RESOLVED
        open_alert.value = value
        open_alert.window = window
        open_alert.resolved_at = now
        open_alert.save(update_fields=["state", "value", "window", "resolved_at", "last_seen_at"])
        return "resolved"
    return None


def _resolve_disabled(rules: Iterable[AlertRule], now: datetime) -> int:
    return Alert.objects.filter(
        rule__in=[r for r in rules if not r.enabled], state=Alert.State.FIRING
    ).update(state=Alert.State.RESOLVED, resolved_at=now, last_seen_at=now)


def model_alerts_evaluate(*, model: RegisteredModel, now: datetime | None = None) -> dict[str, int]:
    """Evaluate the model's rules on its newest figures; returns counts of transitions."""
    now = now or timezone.now()
    counts = {"fired": 0, "resolved": 0}
    with transaction.atomic():
        rules = list(AlertRule.objects.select_for_update().filter(model=model))
        counts["resolved"] += _resolve_disabled(rules, now)
        windows = _newest_day_windows(model)
        for rule in (r for r in rules if r.enabled):
            for day in windows:
                window = (
                    _labelled_window(model, day.version_id)
                    if rule.metric == Metric.ACCURACY_DROP
                    else day
                )
                if window is None:
                    continue
                where = (
                    f"for version {window.version.version} ({window.role}) on "
                    f"{window.start:%Y-%m-%d}"
                )
                for column, value in _figures(rule, window).items():
                    change = _apply(
                        rule=rule,
                        version=window.version,
                        column=column,
                        value=value,
                        window=window,
                        where=where,
                        now=now,
                    )
                    if change:
                        counts[change] += 1
    return counts


def group_alerts_evaluate(
    *, groups: Iterable[FeatureGroup], now: datetime | None = None
) -> dict[str, int]:
    """Evaluate the groups' `stale` rules on their freshness now."""
    now = now or timezone.now()
    groups = list(groups)
    group_rules_ensure(groups=groups)
    counts = {"fired": 0, "resolved": 0}
    with transaction.atomic():
        rules = list(
            AlertRule.objects.select_for_update().filter(
                feature_group__in=groups, metric=Metric.STALE
            )
        )
        counts["resolved"] += _resolve_disabled(rules, now)
        by_group = {r.feature_group_id: r for r in rules if r.enabled}
        for entry in freshness.groups_freshness(groups=groups, now=now):
            rule = by_group.get(entry.group.pk)
            found, ratio = entry.freshness, entry.ratio
            if rule is None or ratio is None or found.age_seconds is None:
                continue
            change = _apply(
                rule=rule,
                version=None,
                column="",
                value=ratio,
                window=None,
                where=(
                    f"for group {entry.group.name}: its newest row is "
                    f"{found.age_seconds / 3600:.1f} h old ({found.rule})"
                ),
                now=now,
            )
            if change:
                counts[change] += 1
    return counts
