from django.db import models
from django.utils import timezone

from registry.models import ModelVersion, RegisteredModel


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
