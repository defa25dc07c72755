from django.db import models
from django.utils import timezone

from registry.models import ModelAlias, ModelVersion, RegisteredModel


class Role(models.TextChoices):
    """How a version took part in a request on an alias (serving/traffic.py)."""

    PRIMARY = "primary"  # the alias's own version answered
    CANARY = "canary"  # the alias's canary answered
    SHADOW = "shadow"  # scored a copy off the request path; never answered


class PredictionLog(models.Model):
    """One sampled prediction request: what came in, what went out, which version, how fast."""

    class Protocol(models.TextChoices):
        NATIVE = "native"
        MLFLOW = "mlflow"
        V2 = "v2", "Open Inference v2"
        V1 = "v1", "KServe V1"
        UI = "ui", "Try it"

    model = models.ForeignKey(
        RegisteredModel, on_delete=models.CASCADE, related_name="prediction_logs"
    )
    version = models.ForeignKey(
        ModelVersion, on_delete=models.CASCADE, related_name="prediction_logs"
    )
    protocol = models.CharField(max_length=10, choices=Protocol.choices)
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.PRIMARY)
    request_id = models.CharField(max_length=64, db_index=True, default="")
    # {column: [values…]} in the request's own order; outputs {"predictions", "probabilities"?}.
    inputs = models.JSONField()
    outputs = models.JSONField()
    n_rows = models.PositiveIntegerField(default=1)
    latency_ms = models.FloatField()
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["model", "-created_at"], name="predlog_model_recent")]

    def __str__(self) -> str:
        return f"{self.model.name} v{self.version.version} {self.request_id}"


class TrafficMinute(models.Model):
    """What one version did for an alias with a traffic policy in one minute, summed over every
    web process: the requests it answered (primary, canary) or scored off the request path
    (shadow), their errors, their latency (sum, max and a histogram over LATENCY_BOUNDS_MS), and
    for a shadow its agreement with the answer the caller got and the copies dropped."""

    alias = models.ForeignKey(ModelAlias, on_delete=models.CASCADE, related_name="traffic")
    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="+")
    role = models.CharField(max_length=10, choices=Role.choices)
    minute = models.DateTimeField()
    requests = models.PositiveBigIntegerField(default=0)
    rows = models.PositiveBigIntegerField(default=0)
    errors = models.PositiveBigIntegerField(default=0)
    drops = models.PositiveBigIntegerField(default=0)
    latency_sum_ms = models.FloatField(default=0.0)
    latency_max_ms = models.FloatField(default=0.0)
    # Counts per latency bucket: [<= 0.5 ms, <= 1 ms, …, above the last bound].
    latency_buckets = models.JSONField(default=list)
    # Rows compared with the caller's answer, how many agreed (labels) and the summed absolute
    # difference (numbers).
    compared_rows = models.PositiveBigIntegerField(default=0)
    agreed_rows = models.PositiveBigIntegerField(default=0)
    abs_diff_sum = models.FloatField(default=0.0)

    class Meta:
        ordering = ["alias", "minute"]
        constraints = [
            models.UniqueConstraint(
                fields=["alias", "version", "role", "minute"], name="unique_traffic_minute"
            ),
        ]
        indexes = [models.Index(fields=["alias", "minute"], name="traffic_alias_minute")]

    def __str__(self) -> str:
        return f"{self.alias} v{self.version.version} {self.role} {self.minute:%H:%M}"


class RejectionMinute(models.Model):
    """4xx answers of a model's prediction routes that named a field, in one minute: summed in
    memory per process and added here once a minute (serving/rejectionstats.py), never a write
    per request. `version` is the version the request resolved (None when it resolved none)."""

    model = models.ForeignKey(RegisteredModel, on_delete=models.CASCADE, related_name="+")
    version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    field = models.CharField(max_length=200)
    minute = models.DateTimeField()
    count = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["model", "minute"]
        indexes = [models.Index(fields=["model", "minute"], name="rejection_model_minute")]

    def __str__(self) -> str:
        return f"{self.model.name} {self.field} {self.minute:%H:%M}: {self.count}"
