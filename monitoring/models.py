"""What monitoring keeps: each version's reference profile, the figures of each time window of
live traffic, ground truth sent back by users, alert rules and the alerts they raised.

The figures are computed by jobs, never on the request path: the prediction log (Parquet
partitions written by `serving.predictionlog`, read with DuckDB) is aggregated per window into
`MonitoringWindow` rows, compared with the version's `ReferenceProfile`.

JSON shapes (docs/monitoring.md has the full contract):
- a column profile: {"kind": "numeric" | "categorical", "count", "null_rate", "min", "max",
  "edges": [q0 … q10] (quantile bin edges, numeric), "counts": [per bin] (numeric),
  "categories": {value: share} (categorical)}
- `ReferenceProfile.profile`: {"columns": {name: column profile}, "outputs": {name: column
  profile}} — outputs are `prediction` and, for classifiers, `proba__<class>`.
- `MonitoringWindow.columns` / `.outputs`: {name: {"rows", "null_rate", "out_of_range",
  "unknown_categories", "psi", "ks", "ks_pvalue", "js", "counts": [per reference bin],
  "categories": {value: share}}} (statistics that do not apply to a column's kind are absent).
"""

from django.conf import settings
from django.db import models

from features.models import FeatureGroup
from registry.models import ModelVersion, RegisteredModel


class ReferenceProfile(models.Model):
    """The baseline a version's live traffic is compared with."""

    class Source(models.TextChoices):
        UPLOAD = "upload"  # POST /api/v1/models/{name}/versions/{n}/reference
        EVALUATION = "evaluation"  # the rows of its evaluation dataset
        TRAINING_SET = "training_set"  # built point in time from its feature service

    version = models.OneToOneField(
        ModelVersion, on_delete=models.CASCADE, related_name="reference_profile"
    )
    source = models.CharField(max_length=16, choices=Source.choices)
    rows = models.PositiveIntegerField(default=0)
    profile = models.JSONField(default=dict)
    # A bounded sample of the reference rows (inputs, outputs, the target if given), Parquet:
    # what the two-sample KS statistic compares live values with.
    sample = models.FileField(upload_to="monitoring/reference/", max_length=300, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"reference of {self.version}"


class MonitoringWindow(models.Model):
    """The figures of one version's live traffic over one hour or one day."""

    class Granularity(models.TextChoices):
        HOUR = "hour"
        DAY = "day"

    model = models.ForeignKey(
        RegisteredModel, on_delete=models.CASCADE, related_name="monitoring_windows"
    )
    version = models.ForeignKey(
        ModelVersion, on_delete=models.CASCADE, related_name="monitoring_windows"
    )
    # Who answered: the alias's own version, its canary, or a shadow (serving's log roles).
    role = models.CharField(max_length=10, default="primary")
    granularity = models.CharField(max_length=4, choices=Granularity.choices)
    start = models.DateTimeField()
    end = models.DateTimeField()
    requests = models.PositiveIntegerField(default=0)
    rows = models.PositiveIntegerField(default=0)
    columns = models.JSONField(default=dict)  # per input column: drift and quality
    outputs = models.JSONField(default=dict)  # per output: prediction drift
    rejections = models.JSONField(default=dict)  # {field: 4xx answers naming it}
    skew = models.JSONField(default=dict)  # {feature: {"compared", "mismatches", "rate"}}
    accuracy = models.JSONField(default=dict)  # {"labelled", "accuracy" | "roc_auc" | "mae"…}
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["model", "-start"]
        constraints = [
            models.UniqueConstraint(
                fields=["version", "role", "granularity", "start"], name="unique_window"
            )
        ]
        indexes = [models.Index(fields=["model", "granularity", "-start"], name="window_recent")]

    def __str__(self) -> str:
        return f"{self.version} {self.role} {self.granularity} {self.start:%Y-%m-%d %H:%M}"


class Feedback(models.Model):
    """The true label or value of a logged prediction, sent back by the user."""

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="feedback")
    request_id = models.CharField(max_length=64)
    # The label (a class as the model names it) or the value; one per request of one row.
    actual = models.JSONField()
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["model", "request_id"], name="unique_feedback")
        ]

    def __str__(self) -> str:
        return f"{self.model.name} {self.request_id}"


class AlertRule(models.Model):
    """A condition on a model's figures (or a feature group's freshness) that raises an alert."""

    class Metric(models.TextChoices):
        PSI = "psi"  # any (or the named) input column's PSI above the threshold
        KS = "ks"
        JS = "js"
        NULL_RATE = "null_rate"
        OUT_OF_RANGE = "out_of_range"
        UNKNOWN_CATEGORIES = "unknown_categories"
        PREDICTION_PSI = "prediction_psi"
        SKEW = "skew"  # a feature's online/offline mismatch rate
        ACCURACY_DROP = "accuracy_drop"  # reference (evaluated) accuracy minus live accuracy
        STALE = "stale"  # a feature group's newest row is older than its schedule allows

    model = models.ForeignKey(
        RegisteredModel, null=True, blank=True, on_delete=models.CASCADE, related_name="alert_rules"
    )
    feature_group = models.ForeignKey(
        FeatureGroup, null=True, blank=True, on_delete=models.CASCADE, related_name="alert_rules"
    )
    metric = models.CharField(max_length=24, choices=Metric.choices)
    column = models.CharField(max_length=200, blank=True)  # blank: any column
    threshold = models.FloatField(default=0.0)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(model__isnull=False) ^ models.Q(feature_group__isnull=False),
                name="alert_rule_has_one_subject",
            )
        ]

    def __str__(self) -> str:
        subject = self.model or self.feature_group
        return f"{subject}: {self.metric} {self.column or '*'} > {self.threshold:g}"


class Alert(models.Model):
    """One rule broken on one subject (a version's column, a feature group): firing until a
    later evaluation finds the rule holding again."""

    class State(models.TextChoices):
        FIRING = "firing"
        RESOLVED = "resolved"

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="alerts")
    version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.CASCADE, related_name="alerts"
    )
    column = models.CharField(max_length=200, blank=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.FIRING)
    value = models.FloatField(null=True, blank=True)
    message = models.TextField(blank=True)
    window = models.ForeignKey(
        MonitoringWindow, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(auto_now=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["rule", "state"], name="alert_rule_state")]

    def __str__(self) -> str:
        return f"{self.rule} [{self.state}]"
