from typing import Any

from django.urls import reverse
from rest_framework import serializers

from jobs.models import Job


class JobOutputSerializer(serializers.ModelSerializer):
    progress = serializers.SerializerMethodField()
    output_url = serializers.SerializerMethodField()
    submitted_by = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = [
            "id",
            "kind",
            "status",
            "description",
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
        return {
            "done": job.progress_done,
            "total": job.progress_total,
            "unit": job.progress_unit,
            "percent": round(job.percent, 1),
        }

    def get_output_url(self, job: Job) -> str | None:
        if not job.output:
            return None
        path = reverse("jobs_api:job-output", kwargs={"job_id": job.pk})
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path

    def get_submitted_by(self, job: Job) -> str | None:
        return job.submitted_by.get_username() if job.submitted_by else None
