"""Evaluation datasets, promotion gates and the evaluations measured per version."""

import uuid
from typing import Any

from django.conf import settings
from django.db import models

from jobs.models import Job
from registry.models import ModelVersion, RegisteredModel


def dataset_path(instance: "EvaluationDataset", filename: str) -> str:
    """A server-chosen name: never the client's file name."""
    return f"evaluation-datasets/{instance.model_id}/{uuid.uuid4().hex}.parquet"


class EvaluationDataset(models.Model):
    """A labelled table a model's versions are scored on, stored as Parquet."""

    class Source(models.TextChoices):
        UPLOAD = "upload"
        FEATURE_SERVICE = "feature_service"

    class Status(models.TextChoices):
        READY = "ready"
        BUILDING = "building"
        FAILED = "failed"

    model = models.ForeignKey(
        RegisteredModel, on_delete=models.CASCADE, related_name="evaluation_datasets"
    )
    name = models.CharField(max_length=200)
    file = models.FileField(upload_to=dataset_path, max_length=300, blank=True)
    label_column = models.CharField(max_length=200)
    rows = models.BigIntegerField(default=0)
    columns = models.JSONField(default=list, blank=True)
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.UPLOAD)
    feature_service = models.CharField(max_length=100, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.READY)
    message = models.TextField(blank=True)
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.model.name} dataset {self.name} (#{self.pk})"


class Gate(models.Model):
    """A model's promotion gate: rules its versions' evaluations on one dataset must pass
    before a gated alias (MLPLATFORM_GATED_ALIASES) points at them."""

    model = models.OneToOneField(RegisteredModel, on_delete=models.CASCADE, related_name="gate")
    dataset = models.ForeignKey(EvaluationDataset, on_delete=models.PROTECT, related_name="gates")
    rules = models.JSONField(default=list)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        permissions = [
            ("override_gate", "Can move production past a failed promotion gate"),
        ]

    def __str__(self) -> str:
        return f"gate of {self.model.name}"


class Evaluation(models.Model):
    """One version scored on one dataset; the latest per (version, dataset) is the one that
    counts."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="evaluations")
    dataset = models.ForeignKey(
        EvaluationDataset, on_delete=models.CASCADE, related_name="evaluations"
    )
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    error = models.TextField(blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    curves = models.JSONField(default=dict, blank=True)
    rows = models.BigIntegerField(default=0)
    seconds = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["version", "dataset", "-created_at"])]

    def __str__(self) -> str:
        return f"evaluation of {self.version} on dataset #{self.dataset_id} ({self.status})"

    @property
    def effective_status(self) -> str:
        """The status, `failed` when its job ended without it (a worker killed mid-way)."""
        pending = self.status in (self.Status.QUEUED, self.Status.RUNNING)
        if (
            pending
            and self.job is not None
            and self.job.status
            in (
                Job.Status.FAILED,
                Job.Status.CANCELLED,
            )
        ):
            return self.Status.FAILED
        return self.status

    @property
    def pending(self) -> bool:
        return self.effective_status in (self.Status.QUEUED, self.Status.RUNNING)

    def metric(self, name: str) -> Any:
        return (self.metrics or {}).get(name)
