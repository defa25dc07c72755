"""Shapes of monitoring's API: feedback in, alert rules in and out, alerts, the monitoring
summary."""

from typing import Any

from rest_framework import serializers

from monitoring import selectors
from monitoring.models import Alert, AlertRule


class FeedbackItemSerializer(serializers.Serializer):
    """One request's true label (a class as the model names it) or value."""

    request_id = serializers.CharField(max_length=64)
    actual = serializers.JSONField()


class FeedbackUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="CSV with `request_id` and `actual` columns.")


class FeedbackResultSerializer(serializers.Serializer):
    received = serializers.IntegerField()
    created = serializers.IntegerField()
    replaced = serializers.IntegerField(help_text="Earlier feedback of the same request replaced.")
    joined = serializers.IntegerField(help_text="Request ids found in the prediction log.")
    not_joined = serializers.IntegerField(
        help_text="Stored, not (yet) in the log: joined at the next monitoring run if logged."
    )


class AlertRuleSerializer(serializers.ModelSerializer):
    class Meta:
        model = AlertRule
        fields = ["id", "metric", "column", "threshold", "enabled"]


class AlertRuleInputSerializer(serializers.Serializer):
    """Schema only: the rules are checked by the service (monitoring/alerts.py)."""

    metric = serializers.ChoiceField(choices=AlertRule.Metric.choices)
    column = serializers.CharField(max_length=200, required=False, allow_blank=True)
    threshold = serializers.FloatField(min_value=0)
    enabled = serializers.BooleanField(required=False, default=True)


class AlertSerializer(serializers.ModelSerializer):
    metric = serializers.CharField(source="rule.metric", read_only=True)
    threshold = serializers.FloatField(source="rule.threshold", read_only=True)
    rule = serializers.IntegerField(source="rule_id", read_only=True)
    version = serializers.IntegerField(source="version.version", read_only=True, default=None)
    group = serializers.CharField(source="rule.feature_group.name", read_only=True, default=None)

    class Meta:
        model = Alert
        fields = [
            "id",
            "rule",
            "metric",
            "column",
            "threshold",
            "version",
            "group",
            "state",
            "value",
            "message",
            "window",
            "started_at",
            "last_seen_at",
            "resolved_at",
        ]


def freshness_data(entry: selectors.GroupFreshness) -> dict[str, Any]:
    found = entry.freshness
    return {
        "group": entry.group.name,
        "newest_available": found.newest_available,
        "age_seconds": found.age_seconds,
        "expected_seconds": found.expected_seconds,
        "rule": found.rule,
        "stale": found.stale,
    }


def monitoring_data(model: Any) -> dict[str, Any]:
    """GET monitoring/: per version and role its newest hour and day windows, the version's
    alerts; the model's rules and the freshness of the groups it reads."""
    entries = selectors.windows_latest(model=model)
    return {
        "model": model.name,
        "versions": [
            {
                "version": entry.version.version,
                "role": entry.role,
                "windows": {
                    "hour": selectors.window_data(entry.hour),
                    "day": selectors.window_data(entry.day),
                },
                "alerts": AlertSerializer(entry.alerts, many=True).data,
            }
            for entry in entries
        ],
        "alerts": AlertSerializer(selectors.alerts_recent(model=model), many=True).data,
        "rules": AlertRuleSerializer(selectors.rules_of(model=model), many=True).data,
        "groups": [
            {
                **freshness_data(entry),
                "alerts": AlertSerializer(
                    selectors.alerts_of_group(group=entry.group), many=True
                ).data,
            }
            for entry in selectors.groups_freshness(groups=selectors.groups_of_model(model=model))
        ],
    }
