from django.conf import settings
from django.db import models
from django.utils import timezone


class Job(models.Model):
    """One piece of background work a user can watch: scoring, validation, ingestion, …"""

    class Kind(models.TextChoices):
        BATCH_SCORING = "batch_scoring", "Batch scoring"
        MODEL_VALIDATION = "model_validation", "Model validation"
        INGESTION = "ingestion", "Feature ingestion"
        TRANSFORMATION = "transformation", "Feature transformation"
        MATERIALISATION = "materialisation", "Materialisation"
        TRAINING_SET = "training_set", "Training set"
        EVALUATION = "evaluation", "Model evaluation"
        MONITORING = "monitoring", "Monitoring"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

    kind = models.CharField(max_length=32, choices=Kind.choices, db_index=True)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    description = models.CharField(max_length=300, blank=True)
    progress_done = models.BigIntegerField(default=0)
    progress_total = models.BigIntegerField(null=True, blank=True)
    progress_unit = models.CharField(max_length=16, default="rows")
    error = models.TextField(blank=True)
    # Kind-specific inputs (ids, options) and outcomes (counts, paths); never business state.
    params = models.JSONField(default=dict, blank=True)
    result = models.JSONField(default=dict, blank=True)
    input = models.FileField(upload_to="jobs/inputs/", max_length=300, blank=True)
    output = models.FileField(upload_to="jobs/outputs/", max_length=300, blank=True)
    output_content_type = models.CharField(max_length=100, blank=True)
    # Set when the retention period deleted the output (MLPLATFORM_JOB_OUTPUT_RETENTION_DAYS).
    output_expired_at = models.DateTimeField(null=True, blank=True)
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The team the job's inputs and outputs belong to: only its members (and the submitter, and
    # superusers) see, download or cancel it. Without one, only the submitter and superusers do.
    owner = models.ForeignKey(
        "auth.Group", null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} ({self.status})"

    def get_absolute_url(self) -> str:
        return f"/jobs/{self.pk}/"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def percent(self) -> float:
        if not self.progress_total:
            return 100.0 if self.status == self.Status.SUCCEEDED else 0.0
        return min(100.0, 100.0 * self.progress_done / self.progress_total)

    @property
    def elapsed_seconds(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.finished_at or timezone.now()
        return max(0.0, (end - self.started_at).total_seconds())

    @property
    def rate(self) -> float | None:
        """Units done per second since the job started."""
        elapsed = self.elapsed_seconds
        if not elapsed or not self.progress_done:
            return None
        return self.progress_done / elapsed

    @property
    def eta_seconds(self) -> float | None:
        """Seconds left at the current rate, while running."""
        rate = self.rate
        if self.status != self.Status.RUNNING or not rate or self.progress_total is None:
            return None
        return max(0.0, (self.progress_total - self.progress_done) / rate)
