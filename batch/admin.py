from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from batch import schedules
from batch.models import BatchChunk, BatchJob, BatchSchedule
from jobs import selectors as job_selectors
from tenancy.admin import OwnedModelAdmin

CHUNK_FIELDS = ("index", "row_start", "row_count", "status", "attempts", "claimed_by", "error")


class BatchChunkInline(admin.TabularInline):
    model = BatchChunk
    extra = 0
    can_delete = False
    fields = CHUNK_FIELDS
    readonly_fields = CHUNK_FIELDS


@admin.register(BatchJob)
class BatchJobAdmin(admin.ModelAdmin):
    list_display = ["job", "version", "input_format", "output_format", "rows_total"]
    readonly_fields = [field.name for field in BatchJob._meta.fields]
    inlines = [BatchChunkInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[BatchJob]:
        return (
            super()
            .get_queryset(request)
            .filter(job__in=job_selectors.jobs_visible(user=request.user).values("pk"))
        )

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is None:
            return super().has_delete_permission(request)
        return request.user.has_perm("jobs.delete_job", obj.job)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(BatchSchedule)
class BatchScheduleAdmin(OwnedModelAdmin):
    list_display = [
        "name",
        "model",
        "alias",
        "folder",
        "crontab",
        "enabled",
        "owner",
        "last_run_at",
    ]
    readonly_fields = ["periodic_task", "last_input", "last_run_at", "created_by"]

    # Every save, delete and bulk delete ("delete selected" included) goes through the schedule
    # services (OwnedModelAdmin calls these hooks), so a schedule's beat task is created, kept in
    # step and deleted with it however the schedule changes.
    def service_save(
        self, request: HttpRequest, obj: BatchSchedule, form: Any, change: bool
    ) -> BatchSchedule:
        if not change:
            obj.created_by = request.user  # type: ignore[assignment]
        return schedules.batch_schedule_save(schedule=obj)

    def service_delete(self, request: HttpRequest, obj: BatchSchedule) -> None:
        schedules.batch_schedule_delete(schedule=obj)
