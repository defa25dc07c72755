from typing import Any

from django.urls import reverse
from rest_framework import serializers

from jobs.models import Job


class JobOutputSerializer(serializers.ModelSerializer):
    progress = serializers.SerializerMethodField()
    output_url = serializers.SerializerMethodField()
    submitted_by = serializers.SerializerMethodField()
    model = serializers.SerializerMethodField()
    version = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = [
            "id",
            "kind",
            "status",
            "description",
            "model",
            "version",
            "progress",
            "error",
            "params",
            "result",
            "created_at",
            "started_at",
            "finished_at",
            "output_url",
            "submitted_by",
        ]

    def get_progress(self, job: Job) -> dict[str, Any]:
        rate = job.rate
        eta = job.eta_seconds
        return {
            "done": job.progress_done,
            "total": job.progress_total,
            "unit": job.progress_unit,
            "percent": round(job.percent, 1),
            "rate": round(rate, 1) if rate is not None else None,
            "eta_seconds": round(eta, 1) if eta is not None else None,
        }

    def get_output_url(self, job: Job) -> str | None:
        if not job.output:
            return None
        path = reverse("jobs_api:job-output", kwargs={"job_id": job.pk})
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path

    def get_submitted_by(self, job: Job) -> str | None:
        return job.submitted_by.get_username() if job.submitted_by else None

    def get_model(self, job: Job) -> str | None:
        model = job.params.get("model") if isinstance(job.params, dict) else None
        return str(model) if model else None

    def get_version(self, job: Job) -> int | None:
        version = job.params.get("version") if isinstance(job.params, dict) else None
        return int(version) if version is not None else None
