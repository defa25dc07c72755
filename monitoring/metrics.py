"""Prometheus gauges of monitoring's figures, read from the database at scrape time (as
serving's job collector does), so an existing Alertmanager can page on them.

Series come from each version's newest hour and day windows (label `window`), for windows
started in the last two days only, and at most MAX_COLUMNS columns per window: label sets stay
bounded by the models' signatures. Every firing alert is a series of `mlplatform_alert_firing`.
"""

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from django.db import DatabaseError
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from monitoring import freshness
from monitoring.models import Alert, MonitoringWindow
from serving import metrics as serving_metrics

MAX_COLUMNS = 200
RECENT = timedelta(days=2)

WINDOW = ["model", "version", "role", "window"]
COLUMN_FIGURES = {
    "psi": "Population stability index of an input column against the version's reference.",
    "ks": "Two-sample Kolmogorov-Smirnov statistic of a numeric input column vs the reference.",
    "js": "Jensen-Shannon distance of a text input column's categories vs the reference.",
    "null_rate": "Share of an input column's values that were missing.",
    "out_of_range": "Share of a numeric input column's values outside the reference's range.",
    "unknown_categories": "Share of a text input column's values not among the reference's.",
}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


class MonitoringCollector(Collector):
    def collect(self) -> Iterator[Any]:
        try:
            families = list(self._families())
        except DatabaseError:
            return  # a scrape never fails because the DB blinked; the series are absent
        yield from families

    def _families(self) -> Iterator[GaugeMetricFamily]:
        columns = {
            key: GaugeMetricFamily(f"mlplatform_monitoring_{key}", text, labels=[*WINDOW, "column"])
            for key, text in COLUMN_FIGURES.items()
        }
        rows = GaugeMetricFamily(
            "mlplatform_monitoring_rows", "Logged rows in the window.", labels=WINDOW
        )
        prediction = GaugeMetricFamily(
            "mlplatform_monitoring_prediction_psi",
            "Population stability index of an output (prediction, class probability).",
            labels=[*WINDOW, "output"],
        )
        rejections = GaugeMetricFamily(
            "mlplatform_monitoring_rejections",
            "4xx answers naming an input field in the window.",
            labels=[*WINDOW, "field"],
        )
        skew = GaugeMetricFamily(
            "mlplatform_monitoring_skew_mismatch_rate",
            "Share of sampled requests whose served feature differs from the offline store's "
            "point-in-time value.",
            labels=[*WINDOW, "feature"],
        )
        accuracy = GaugeMetricFamily(
            "mlplatform_monitoring_accuracy",
            "Live metric from feedback joined to logged predictions (accuracy, roc_auc, mae, "
            "rmse, accuracy_drop, labelled).",
            labels=[*WINDOW, "metric"],
        )
        since = timezone.now() - RECENT
        latest: dict[tuple[int, str, str], MonitoringWindow] = {}
        for window in (
            MonitoringWindow.objects.filter(start__gte=since)
            .select_related("model", "version")
            .order_by("start")
        ):
            latest[(window.version_id, window.role, window.granularity)] = window
        for window in latest.values():
            labels = [
                window.model.name,
                str(window.version.version),
                window.role,
                window.granularity,
            ]
            rows.add_metric(labels, window.rows)
            for name, stats in list((window.columns or {}).items())[:MAX_COLUMNS]:
                for key, family in columns.items():
                    value = _number(stats.get(key)) if isinstance(stats, dict) else None
                    if value is not None:
                        family.add_metric([*labels, name], value)
            for name, stats in list((window.outputs or {}).items())[:MAX_COLUMNS]:
                value = _number(stats.get("psi")) if isinstance(stats, dict) else None
                if value is not None:
                    prediction.add_metric([*labels, name], value)
            for name, count in list((window.rejections or {}).items())[:MAX_COLUMNS]:
                if _number(count) is not None:
                    rejections.add_metric([*labels, name], float(count))
            for name, stats in list((window.skew or {}).items())[:MAX_COLUMNS]:
                value = _number(stats.get("rate")) if isinstance(stats, dict) else None
                if value is not None:
                    skew.add_metric([*labels, name], value)
            for key in ("labelled", "accuracy", "roc_auc", "mae", "rmse", "accuracy_drop"):
                value = _number((window.accuracy or {}).get(key))
                if value is not None:
                    accuracy.add_metric([*labels, key], value)
        yield rows
        yield from columns.values()
        yield prediction
        yield rejections
        yield skew
        yield accuracy
        yield from self._freshness()
        yield self._alerts()

    def _freshness(self) -> Iterator[GaugeMetricFamily]:
        age = GaugeMetricFamily(
            "mlplatform_feature_group_age_seconds",
            "Age of a feature group's newest available row.",
            labels=["group"],
        )
        expected = GaugeMetricFamily(
            "mlplatform_feature_group_expected_seconds",
            "Interval between loads a feature group's schedule or availability rule expects.",
            labels=["group"],
        )
        stale = GaugeMetricFamily(
            "mlplatform_feature_group_stale",
            "1 when the group's newest row is older than twice its expected interval.",
            labels=["group"],
        )
        for entry in freshness.groups_freshness():
            name = entry.group.name
            found = entry.freshness
            if found.age_seconds is not None:
                age.add_metric([name], found.age_seconds)
            if found.expected_seconds is not None:
                expected.add_metric([name], found.expected_seconds)
            stale.add_metric([name], 1.0 if found.stale else 0.0)
        yield age
        yield expected
        yield stale

    def _alerts(self) -> GaugeMetricFamily:
        firing = GaugeMetricFamily(
            "mlplatform_alert_firing",
            "1 for each firing alert: a model's rule broken by a version's column, or a feature "
            "group's staleness; `value` is the figure that broke it.",
            labels=["model", "group", "version", "metric", "column"],
        )
        for alert in Alert.objects.filter(state=Alert.State.FIRING).select_related(
            "rule__model", "rule__feature_group", "version"
        ):
            rule = alert.rule
            firing.add_metric(
                [
                    rule.model.name if rule.model else "",
                    rule.feature_group.name if rule.feature_group else "",
                    str(alert.version.version) if alert.version else "",
                    rule.metric,
                    alert.column,
                ],
                1.0,
            )
        return firing


_registered = False


def register() -> None:
    """Add the collector to what /metrics renders (once per process)."""
    global _registered
    if _registered:
        return
    serving_metrics.collector_register(MonitoringCollector())
    _registered = True
